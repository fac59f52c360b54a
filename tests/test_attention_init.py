"""Mimetic initialisation of attention (Trockman & Kolter 2023): W^Q_h^T W^K_h ~ a1 Z + b1 I, W^O W^V = a2 Z - b2 I.

The factors are checked against the matrix they factor, the per-head products
against its best rank-d approximation, and the point of it all — at step 0 a
token attends to its own copies — on a real forward pass. Tests that take
``lib`` run against tutorials/exercises/ex07_mimetic_init.py with
``pytest --exercises 07``.
"""

from __future__ import annotations

import pytest
import torch

from minibert import BertConfig, BertForPreTraining
from minibert.attention_init import mimetic_attention_init_

FLOAT32_TOL = 1e-5


def _target(size, alpha, beta, seed):
    """The matrix alpha Z + beta I that mimetic_factors draws with this generator seed (same random stream)."""
    z = torch.randn(size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) / size ** 0.5
    return alpha * z + beta * torch.eye(size, dtype=torch.float64)


def test_full_rank_factors_multiply_back_to_alpha_z_plus_beta_identity(lib):
    """At full rank L R is exactly alpha Z + beta I (beta may be negative, as for W^O W^V)."""
    left, right = lib.mimetic_factors(16, 0.4, -0.4, 16, torch.Generator().manual_seed(3))
    assert left.shape == right.shape == (16, 16)
    assert (left @ right).double().sub(_target(16, 0.4, -0.4, 3)).abs().max() < FLOAT32_TOL


def test_low_rank_factors_are_the_best_rank_r_approximation(lib):
    """At rank r < size L R is the truncated SVD of alpha Z + beta I (Eckart-Young), not A itself."""
    a = _target(12, 0.7, 0.7, 5)
    left, right = lib.mimetic_factors(12, 0.7, 0.7, 4, torch.Generator().manual_seed(5))
    assert left.shape == (12, 4) and right.shape == (4, 12)
    u, s, vh = torch.linalg.svd(a)
    best = (u[:, :4] * s[:4]) @ vh[:4]                      # Eckart-Young: truncated SVD
    assert (left @ right).double().sub(best).abs().max() < FLOAT32_TOL
    # the rank-4 error is the 5th singular value in spectral norm, so it is not the full matrix
    assert torch.linalg.matrix_norm(a - (left @ right).double(), ord=2) == pytest.approx(s[4].item(), rel=1e-4)


def test_rank_out_of_range_is_refused(lib):
    """A rank outside 1..size raises ValueError."""
    with pytest.raises(ValueError):
        lib.mimetic_factors(8, 0.7, 0.7, 9)
    with pytest.raises(ValueError):
        lib.mimetic_factors(8, 0.7, 0.7, 0)


def test_every_head_of_every_layer_gets_the_mimetic_products():
    torch.manual_seed(0)
    config = BertConfig.from_preset("tiny")
    model = BertForPreTraining(config)
    assert mimetic_attention_init_(model) == config.num_hidden_layers
    C, H = config.hidden_size, config.num_attention_heads
    d = C // H
    for layer in model.bert.layers:
        att = layer.attention
        vo = att.output.weight @ att.value.weight                               # (C, C) = a2 Z - b2 I
        # the diagonal of a2 Z - b2 I has mean -b2; Z's off-diagonal entries have std a2 / sqrt(C)
        assert vo.diagonal().mean().item() == pytest.approx(-0.4, abs=0.05)
        off = vo - torch.diag(vo.diagonal())
        assert off.std().item() == pytest.approx(0.4 / C ** 0.5, rel=0.1)
        for h in range(H):
            rows = slice(h * d, (h + 1) * d)
            qk = att.query.weight[rows].T @ att.key.weight[rows]               # (C, C), rank d
            assert torch.linalg.matrix_rank(qk).item() == d
            # a positive diagonal that stands out: rank d keeps the largest singular directions of a1 Z + b1 I
            off = qk - torch.diag(qk.diagonal())
            assert 0.7 * d / C < qk.diagonal().mean().item() < 0.7
            assert qk.diagonal().mean().item() > 5 * off.std().item()
        for lin in (att.query, att.key, att.value, att.output):
            assert lin.bias.abs().max().item() == 0.0


def test_at_step_zero_a_piece_attends_to_its_own_copy_only_under_mimetic_init():
    """The reason for the option: a repeated piece's attention goes to its copies, unlike under BERT's init."""
    config = BertConfig.from_preset("tiny", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, config.vocab_size, (4, 64), generator=g)
    ids[:, 40] = ids[:, 8]                                                     # position 40 repeats position 8

    def attention_to_copy(mimetic: bool) -> float:
        torch.manual_seed(1)
        model = BertForPreTraining(config).eval()
        if mimetic:
            mimetic_attention_init_(model)
        out = model.bert(ids, output_attentions=True)
        w = out["attentions"][0]                                                   # (B, H, T, T), first layer
        return w[:, :, 40, 8].max(dim=1).values.mean().item()                   # best head, mean over the batch

    uniform = 1 / 64
    assert attention_to_copy(False) == pytest.approx(uniform, rel=0.2)         # BERT's init: about uniform
    assert attention_to_copy(True) > 5 * uniform                               # mimetic: the copy stands out
