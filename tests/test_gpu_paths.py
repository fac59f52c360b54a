"""The lines a GPU user runs first, exercised on the CPU: bf16 autocast, torch.compile, fused AdamW.

No GPU is available where this suite runs, so these are the closest checks:
the same calls with ``device_type="cpu"``. They catch a broken autocast
region, a model that does not compile, or a fused optimizer that drifts from
the reference loop, before a user finds out on a rented GPU.
"""

from __future__ import annotations

import pytest
import torch

from helpers import max_abs_diff
from minibert.model import BertConfig, BertForPreTraining
from minibert.training_utils import autocast


def _small_model(seed: int = 0) -> BertForPreTraining:
    config = BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(seed)
    return BertForPreTraining(config)


def _batch(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 200, (4, 16), generator=g)
    attention_mask = torch.ones_like(ids)
    attention_mask[1, 12:] = 0                                   # one padded row
    labels = torch.full_like(ids, -100)
    labels[:, 2:5] = ids[:, 2:5]
    return dict(input_ids=ids, token_type_ids=torch.zeros_like(ids), attention_mask=attention_mask,
                mlm_labels=labels, nsp_labels=torch.tensor([0, 1, 0, 1]))


def _loss(model, b):
    return model(b["input_ids"], b["token_type_ids"], b["attention_mask"],
                 mlm_labels=b["mlm_labels"], nsp_labels=b["nsp_labels"])["loss"]


def test_bf16_autocast_loss_is_within_bf16_round_off_of_fp32():
    """Under the bf16 autocast the training loop uses, the loss is fp32's to bf16 precision (8 mantissa bits)."""
    model, b = _small_model(), _batch()
    fp32 = _loss(model, b)
    with autocast(torch.device("cpu"), "bf16"):
        bf16 = _loss(model, b)
    bf16.backward()
    rel = abs(bf16.item() - fp32.item()) / abs(fp32.item())
    assert rel < 1e-2, f"bf16 loss {bf16.item():.6f} vs fp32 {fp32.item():.6f}: relative {rel:.2e}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_fused_adamw_equals_the_reference_loop():
    """``AdamW(fused=True)`` (what pretrain uses on CUDA) takes the same steps as the for-loop AdamW."""
    ref, fused = _small_model(), _small_model()
    opt_ref = torch.optim.AdamW(ref.parameters(), lr=1e-3, foreach=False)
    opt_fused = torch.optim.AdamW(fused.parameters(), lr=1e-3, fused=True)
    b = _batch()
    for _ in range(3):
        for model, opt in ((ref, opt_ref), (fused, opt_fused)):
            _loss(model, b).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    diff = max(max_abs_diff(p, q) for p, q in zip(ref.parameters(), fused.parameters()))
    assert diff < 1e-5, f"fused vs loop AdamW after 3 steps: max abs weight diff {diff:.2e}"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # torch's own inductor internals, not ours
def test_compiled_model_gives_eager_loss_and_gradients():
    """``torch.compile`` (inductor, as ``--compile`` does) gives eager's loss and gradients to float32 round-off."""
    eager, compiled_base = _small_model(), _small_model()
    b = _batch()
    loss_e = _loss(eager, b)
    loss_e.backward()
    compiled = torch.compile(compiled_base)
    loss_c = _loss(compiled, b)
    loss_c.backward()
    d_loss = abs(loss_e.item() - loss_c.item())
    d_grad = max(max_abs_diff(p.grad, q.grad) for p, q in zip(eager.parameters(), compiled_base.parameters())
                 if p.grad is not None)
    assert d_loss < 1e-5, f"compiled vs eager loss: {d_loss:.2e}"
    assert d_grad < 1e-5, f"compiled vs eager gradients: max abs diff {d_grad:.2e}"
