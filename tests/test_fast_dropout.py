"""minibert.fast_dropout: the 16-bit dropout mask keeps the formula, its statistics and the model's numbers."""

import math

import pytest
import torch

from minibert.attention import MultiHeadAttention, padding_mask, scaled_dot_product_attention
from minibert.fast_dropout import (FastDropout, applies, attention_with_fast_dropout, drop_count, fast_dropout,
                                   keep_mask, scaled_keep_mask, use_fast_dropout)
from minibert.model import BertConfig, BertForPreTraining


def test_drop_count_is_round_65536_p():
    """d = round(65536 p); p' = d / 65536 is within 2^-17 of p."""
    assert drop_count(0.1) == 6554
    assert drop_count(0.0) == 0
    assert drop_count(0.5) == 32768
    for p in (0.01, 0.1, 0.137, 0.3, 0.9):
        assert abs(drop_count(p) / 65536 - p) <= 2 ** -17
    with pytest.raises(ValueError, match="p must be in"):
        drop_count(1.0)
    with pytest.raises(ValueError, match="p must be in"):
        drop_count(-0.1)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_each_of_the_four_lanes_drops_p_of_its_elements(lib, p):
    """Every 16-bit lane of the 64-bit words is uniform: each lane alone drops p' within 5 sigma.

    (A word drawn from [0, 2^63) only would leave the top lane's sign bit at 0 and that lane would
    almost never drop.)
    """
    torch.manual_seed(0)
    n = 4 * 250_000
    keep, scale = lib.keep_mask(torch.Size([n]), p)
    assert keep.dtype == torch.bool and keep.shape == (n,)
    p_eff = drop_count(p) / 65536
    assert scale == pytest.approx(1 / (1 - p_eff), rel=1e-12)
    sigma = math.sqrt(p_eff * (1 - p_eff) / (n // 4))
    dropped = (~keep).view(-1, 4).double().mean(dim=0)            # fraction dropped per lane
    assert torch.all((dropped - p_eff).abs() < 5 * sigma), dropped


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_scaled_keep_mask_is_the_keep_mask_times_its_scale(dtype):
    """The multiplier fast_dropout uses = keep_mask's m / (1 - p') from the same random draw, in x's dtype."""
    shape = torch.Size([101, 997, 11])     # 1,107,667 elements (not a multiple of 4): ~17 lanes sit at the threshold
    for p in (0.1, 0.3):
        torch.manual_seed(21)
        keep, scale = keep_mask(shape, p)
        torch.manual_seed(21)
        multiplier = scaled_keep_mask(shape, p, dtype)
        assert multiplier.dtype == dtype and multiplier.shape == shape
        expected = torch.where(keep, torch.tensor(scale, dtype=torch.float64), 0.0).to(dtype)
        assert torch.equal(multiplier, expected)
        assert 0 < (multiplier == 0).sum() < shape.numel()


def test_output_is_masked_and_scaled_and_unbiased():
    """y_i = m_i x_i / (1 - p'): survivors scaled exactly, dropped ones 0, mean of y close to mean of x."""
    torch.manual_seed(1)
    x = torch.rand(2_000_000) + 0.5                                # no zeros, so y == 0 means dropped
    y = fast_dropout(x, 0.1)
    kept = y != 0
    p_eff = drop_count(0.1) / 65536
    torch.testing.assert_close(y[kept], x[kept] / (1 - p_eff), rtol=1e-6, atol=0)
    assert abs((~kept).double().mean().item() - p_eff) < 5 * math.sqrt(p_eff * (1 - p_eff) / x.numel())
    assert abs(y.double().mean().item() - x.double().mean().item()) < 2e-3


def test_gradient_is_the_same_mask_and_scale():
    """dL/dx = m * dL/dy / (1 - p'), the mask of the forward pass."""
    torch.manual_seed(2)
    x = (torch.rand(64, 33) + 0.5).requires_grad_()
    g = torch.randn(64, 33)
    y = fast_dropout(x, 0.3)
    y.backward(g)
    scale = 65536 / (65536 - drop_count(0.3))
    expected = torch.where(y.detach() != 0, g * scale, torch.zeros_like(g))
    torch.testing.assert_close(x.grad, expected, rtol=1e-6, atol=0)


def test_seeded_masks_repeat_differ_between_seeds_and_keep_the_shape(lib):
    """The mask comes from torch's default generator: the same seed, the same mask; any shape, odd sizes too."""
    torch.manual_seed(3)
    a = lib.keep_mask(torch.Size([3, 7, 11]), 0.1)[0]
    torch.manual_seed(3)
    b = lib.keep_mask(torch.Size([3, 7, 11]), 0.1)[0]
    torch.manual_seed(4)
    c = lib.keep_mask(torch.Size([3, 7, 11]), 0.1)[0]
    assert a.shape == (3, 7, 11)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    with pytest.raises(ValueError):
        lib.keep_mask(torch.Size([4]), 1.0)


def test_identity_in_eval_mode_and_at_p_zero():
    x = torch.randn(5, 7)
    assert fast_dropout(x, 0.1, training=False) is x
    assert fast_dropout(x, 0.0) is x
    module = FastDropout(0.1).eval()
    assert module(x) is x


def _tiny_model(dropout: float) -> BertForPreTraining:
    config = BertConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=40,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    torch.manual_seed(0)
    return BertForPreTraining(config)


def test_use_fast_dropout_keeps_parameters_and_eval_outputs():
    """The swap changes no parameter, no state-dict key and no evaluation-mode number."""
    model = _tiny_model(0.1).eval()
    ids = torch.randint(5, 97, (3, 12))
    before = model(ids)["mlm_logits"]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    use_fast_dropout(model)
    assert all(m.training_attention is attention_with_fast_dropout
               for m in model.modules() if isinstance(m, MultiHeadAttention))
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())
    assert [m.p for m in model.modules() if isinstance(m, FastDropout)] == [0.1] * 3   # embeddings + one per layer (used twice)
    assert state.keys() == model.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert torch.equal(model(ids)["mlm_logits"], before)


def test_without_dropout_the_swapped_model_trains_identically():
    """p = 0: the swapped model's training-mode loss and gradients equal the original's exactly."""
    ref, fast = _tiny_model(0.0), use_fast_dropout(_tiny_model(0.0))
    ids = torch.randint(5, 97, (3, 12))
    labels = torch.where(torch.rand(3, 12) < 0.3, ids, torch.full_like(ids, -100))
    losses = []
    for model in (ref, fast):
        model.train()
        loss = model(ids, mlm_labels=labels, nsp_labels=torch.tensor([0, 1, 0]))["loss"]
        loss.backward()
        losses.append(loss)
    assert torch.equal(losses[0], losses[1])
    for (name, a), b in zip(ref.named_parameters(), fast.parameters()):
        assert torch.equal(a.grad, b.grad), name


def _reference_attention(q, k, v, mask, keep, scale):
    """The tutorial formula with a given dropout mask: (softmax(QK^T/sqrt(d) + M), rows with no key -> 0) * m * s @ V."""
    _, weights = scaled_dot_product_attention(q, k, v, mask=mask)            # no dropout: the formula's weights
    return (weights * keep * scale) @ v


@pytest.mark.parametrize("queries", [7, 4], ids=["every-position", "fewer-queries"])
@pytest.mark.parametrize("fully_masked_row", [False, True])
def test_training_attention_is_the_formula_with_the_fast_mask(fully_masked_row, queries):
    """attention_with_fast_dropout = the explicit formula with keep_mask's mask, output and gradients (<= 1e-6),
    also with fewer queries than keys (the trimmed last layer of pretraining)."""
    torch.manual_seed(6)
    q = torch.randn(3, 2, queries, 8, requires_grad=True)
    k, v = (torch.randn(3, 2, 7, 8, requires_grad=True) for _ in range(2))
    attention_mask = torch.ones(3, 7, dtype=torch.long)
    attention_mask[0, 5:] = 0
    mask = padding_mask(attention_mask)                                       # (3, 1, 1, 7)
    if fully_masked_row:
        mask = mask.expand(3, 1, queries, 7).clone()
        mask[1, 0, 2] = False                                                 # query 2 of sequence 1 sees nothing
    torch.manual_seed(11)
    y = attention_with_fast_dropout(q, k, v, mask, 0.3)
    torch.manual_seed(11)
    keep, scale = keep_mask(torch.Size([3, 2, queries, 7]), 0.3)
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    expected = _reference_attention(q2, k2, v2, mask, keep, scale)
    assert y.shape == (3, 2, queries, 8)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-6)
    if fully_masked_row:
        assert torch.equal(y[1, :, 2], torch.zeros_like(y[1, :, 2]))
    g = torch.randn_like(y)
    y.backward(g)
    expected.backward(g)
    for a, b in ((q, q2), (k, k2), (v, v2)):
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=1e-6)


def test_multi_head_attention_calls_its_training_attention_only_in_training():
    """``training_attention`` gets (q, k, v, mask, p) in training with dropout; eval uses the fused kernel."""
    torch.manual_seed(5)
    mha = MultiHeadAttention(16, 2, dropout=0.25).train()
    seen = []

    def plain(q, k, v, mask, p):                 # a deterministic stand-in that records what it got
        seen.append((tuple(q.shape), p))
        return scaled_dot_product_attention(q, k, v, mask=mask)[0] * 0.5

    mha.training_attention = plain
    x = torch.randn(2, 5, 16)
    mask = padding_mask(torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]))
    y, weights = mha(x, mask=mask)
    assert weights is None and seen == [((2, 2, 5, 8), 0.25)]
    with torch.no_grad():
        y_eval, _ = mha.eval()(x, mask=mask)
    assert len(seen) == 1, "eval mode must not call the training attention"
    b = mha.output.bias                          # halving the mix of the values halves the output before its bias
    torch.testing.assert_close(y - b, (y_eval - b) * 0.5, rtol=1e-5, atol=1e-6)


def test_fast_dropout_auto_means_the_eager_cpu():
    """--fast-dropout auto: on for an eager CPU model only; on and off mean what they say; anything else refused."""
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert applies("auto", cpu) and not applies("auto", cuda) and not applies("auto", cpu, compiled=True)
    assert applies("on", cuda) and applies("on", cpu, compiled=True) and not applies("off", cpu)
    with pytest.raises(ValueError, match="--fast-dropout must be one of auto, on, off"):
        applies("yes", cpu)
