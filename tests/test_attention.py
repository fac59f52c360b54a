"""Scaled dot-product attention: softmax(Q K^T / sqrt(d_k) + M) V.

Three kinds of check, as in tutorials/01_scaled_dot_product_attention.md:
(1) the formula written differently (explicit loops in float64);
(2) equality with references: ``torch.nn.functional.scaled_dot_product_attention``
    and transformers' BERT eager attention with a padding mask;
(3) properties: rows sum to 1, masked keys get 0, masked values do not matter,
    permutation equivariance, the sqrt(d_k) scaling, gradients, fully masked rows.

Every test that takes ``lib`` is a formula test: ``pytest --exercises`` runs it
against tutorials/exercises/ex01_attention.py.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from helpers import max_abs_diff, require_reference

FLOAT32_TOL = 1e-5
FLOAT64_TOL = 1e-12


def _qkv(shape_q, shape_k, d_v, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*shape_q, generator=g, dtype=dtype)
    k = torch.randn(*shape_k, generator=g, dtype=dtype)
    v = torch.randn(*shape_k[:-1], d_v, generator=g, dtype=dtype)
    return q, k, v


def _random_mask(shape, seed=1, keep=0.7):
    """A random boolean mask in which every query row keeps at least its first key."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(*shape, generator=g) < keep
    mask[..., 0] = True
    return mask


def test_attention_equals_the_formula_written_as_loops(lib):
    """Each output entry is sum_j softmax_j(q_i . k_j / sqrt(d_k)) v_j, computed here with Python loops in float64."""
    q, k, v = _qkv((3, 4), (5, 4), 2, dtype=torch.float64)
    mask = _random_mask((3, 5))
    out, weights = lib.scaled_dot_product_attention(q, k, v, mask=mask)
    expected_w = torch.zeros(3, 5, dtype=torch.float64)
    for i in range(3):
        scores = [sum(q[i, c] * k[j, c] for c in range(4)).item() / math.sqrt(4) for j in range(5)]
        exps = [math.exp(s) if mask[i, j] else 0.0 for j, s in enumerate(scores)]
        for j in range(5):
            expected_w[i, j] = exps[j] / sum(exps)
    expected_out = torch.zeros(3, 2, dtype=torch.float64)
    for i in range(3):
        for j in range(5):
            expected_out[i] += expected_w[i, j] * v[j]
    assert max_abs_diff(weights, expected_w) <= FLOAT64_TOL, f"weights differ by {max_abs_diff(weights, expected_w):.3e}"
    assert max_abs_diff(out, expected_out) <= FLOAT64_TOL, f"outputs differ by {max_abs_diff(out, expected_out):.3e}"


@pytest.mark.parametrize("dtype, tol", [(torch.float32, FLOAT32_TOL), (torch.float64, FLOAT64_TOL)],
                         ids=["float32", "float64"])
@pytest.mark.parametrize("shape_q, shape_k, d_v, mask_shape", [
    ((7, 8), (7, 8), 8, None),                          # plain 2-D, self-attention sized
    ((2, 5, 16), (2, 9, 16), 4, (2, 5, 9)),             # batch, T_q != T_k, d_v != d_k, full mask
    ((2, 3, 6, 8), (2, 3, 6, 8), 8, (2, 1, 1, 6)),      # (B, H, T, d) with a padding mask broadcast over H and T_q
    ((2, 3, 6, 8), (2, 3, 6, 8), 8, (6, 6)),            # one (T_q, T_k) mask broadcast over B and H
    ((1, 4, 10, 32), (1, 4, 12, 32), 32, (1, 4, 10, 12)),  # per-head masks
], ids=["2d-nomask", "batched-fullmask", "padding-broadcast", "shared-2d-mask", "per-head-mask"])
def test_attention_equals_torch_scaled_dot_product_attention(lib, shape_q, shape_k, d_v, mask_shape, dtype, tol):
    """Output equals torch.nn.functional.scaled_dot_product_attention for several shapes, masks and dtypes."""
    q, k, v = _qkv(shape_q, shape_k, d_v, dtype=dtype)
    mask = None if mask_shape is None else _random_mask(mask_shape)
    out, _ = lib.scaled_dot_product_attention(q, k, v, mask=mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    diff = max_abs_diff(out, ref)
    print(f"max |ours - F.scaled_dot_product_attention| ({dtype}, {shape_q}) = {diff:.3e}")
    assert out.dtype == dtype, f"output dtype {out.dtype}, expected {dtype}"
    assert diff <= tol, f"max abs diff vs F.scaled_dot_product_attention = {diff:.3e} > {tol}"


def test_attention_equals_transformers_bert_eager_attention_with_padding(lib):
    """Output and weights equal transformers' BERT eager_attention_forward given the same padding (float32)."""
    require_reference("transformers")
    from transformers.models.bert.modeling_bert import eager_attention_forward

    B, H, T, d = 3, 4, 7, 16
    q, k, v = _qkv((B, H, T, d), (B, H, T, d), d)
    attention_mask = torch.ones(B, T, dtype=torch.long)  # 1 = token, 0 = padding
    attention_mask[1, 5:] = 0
    attention_mask[2, 2:] = 0
    # transformers adds a float mask: 0 for tokens, the most negative float for padding.
    additive = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    module = torch.nn.Module().eval()
    ref_out, ref_w = eager_attention_forward(module, q, k, v, additive, scaling=d ** -0.5, dropout=0.0)
    out, w = lib.scaled_dot_product_attention(q, k, v, mask=attention_mask.bool()[:, None, None, :])
    d_out = max_abs_diff(out.transpose(1, 2), ref_out)  # transformers returns (B, T, H, d)
    d_w = max_abs_diff(w, ref_w)
    print(f"max |ours - transformers eager attention|: output {d_out:.3e}, weights {d_w:.3e}")
    assert d_out <= FLOAT32_TOL, f"output differs from transformers by {d_out:.3e}"
    assert d_w <= FLOAT32_TOL, f"weights differ from transformers by {d_w:.3e}"


def test_attention_weight_rows_sum_to_one(lib):
    """Every row of the attention weights is a probability distribution over the keys."""
    q, k, v = _qkv((2, 3, 6, 8), (2, 3, 9, 8), 8, dtype=torch.float64)
    _, w = lib.scaled_dot_product_attention(q, k, v, mask=_random_mask((2, 1, 6, 9)))
    sums = w.sum(dim=-1)
    assert (w >= 0).all(), "attention weights must be non-negative"
    assert max_abs_diff(sums, torch.ones_like(sums)) <= 1e-12, f"row sums deviate by {max_abs_diff(sums, torch.ones_like(sums)):.3e}"


def test_masked_keys_get_exactly_zero_weight(lib):
    """A key hidden by the mask receives weight exactly 0.0, not merely a small number."""
    q, k, v = _qkv((2, 5, 8), (2, 7, 8), 4)
    mask = _random_mask((2, 5, 7))
    _, w = lib.scaled_dot_product_attention(q, k, v, mask=mask)
    hidden = w[~mask.expand_as(w)]
    assert hidden.numel() > 0
    assert (hidden == 0).all(), f"largest weight on a masked key: {hidden.abs().max().item():.3e}"


def test_changing_masked_keys_and_values_changes_nothing(lib):
    """Replacing the keys and values at padded positions by anything leaves the output unchanged."""
    q, k, v = _qkv((2, 6, 8), (2, 6, 8), 8)
    mask = torch.ones(2, 1, 6, dtype=torch.bool)
    mask[0, :, 4:] = False
    out, _ = lib.scaled_dot_product_attention(q, k, v, mask=mask)
    k2, v2 = k.clone(), v.clone()
    k2[0, 4:] = 1000.0 * torch.randn(2, 8)
    v2[0, 4:] = 1000.0 * torch.randn(2, 8)
    out2, _ = lib.scaled_dot_product_attention(q, k2, v2, mask=mask)
    assert max_abs_diff(out, out2) == 0.0, f"output moved by {max_abs_diff(out, out2):.3e}"


def test_without_positions_permuting_tokens_permutes_the_output(lib):
    """Self-attention is permutation-equivariant: attention(PX) = P attention(X) when Q, K, V come from X."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 8, 16, generator=g, dtype=torch.float64)
    perm = torch.randperm(8, generator=g)
    out, _ = lib.scaled_dot_product_attention(x, x, x)
    out_p, _ = lib.scaled_dot_product_attention(x[:, perm], x[:, perm], x[:, perm])
    diff = max_abs_diff(out_p, out[:, perm])
    assert diff <= FLOAT64_TOL, f"attention(PX) - P attention(X) = {diff:.3e}"


def test_scaling_by_sqrt_dk_gives_unit_variance_scores(lib):
    """With unit-variance q and k, q.k has variance d_k, and the scores inside the softmax have variance ~1.

    N = 50 000 independent problems, each one query and two keys. The scores are recovered from
    the returned weights: log w_1 - log w_0 = s_1 - s_0, and Var(s_1 - s_0) = 2 Var(s). The
    standard error of each variance estimate is about 0.7 %; the tolerance is 5 % relative.
    """
    d_k, n = 64, 50_000
    g = torch.Generator().manual_seed(0)
    q = torch.randn(n, 1, d_k, generator=g, dtype=torch.float64)
    k = torch.randn(n, 2, d_k, generator=g, dtype=torch.float64)
    v = torch.zeros(n, 2, 1, dtype=torch.float64)
    _, w = lib.scaled_dot_product_attention(q, k, v)  # (n, 1, 2)
    var_scaled = (w[:, 0, 1].log() - w[:, 0, 0].log()).var().item() / 2
    var_unscaled = (q[:, 0] * k[:, 0]).sum(-1).var().item()  # plain dot products q.k
    print(f"d_k={d_k}: Var(q.k) = {var_unscaled:.2f}, Var(q.k / sqrt(d_k)) inside the softmax = {var_scaled:.3f}")
    assert abs(var_unscaled / d_k - 1) < 0.05, f"Var(q.k) = {var_unscaled:.2f}, expected about d_k = {d_k}"
    assert abs(var_scaled - 1) < 0.05, f"variance of the scaled scores = {var_scaled:.3f}, expected about 1"


def test_attention_passes_gradcheck_in_float64(lib):
    """Analytic gradients with respect to q, k and v match finite differences (torch.autograd.gradcheck)."""
    q, k, v = _qkv((2, 3, 4), (2, 5, 4), 3, dtype=torch.float64)
    mask = _random_mask((2, 3, 5))
    for t in (q, k, v):
        t.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b, c: lib.scaled_dot_product_attention(a, b, c, mask=mask)[0],
                                    (q, k, v), eps=1e-6, atol=1e-8)


def test_fully_masked_query_row_gives_zeros_not_nan(lib):
    """A query that may attend to no key gets zero weights, a zero output and zero (finite) gradients."""
    q, k, v = _qkv((2, 4, 8), (2, 5, 8), 8)
    q.requires_grad_(True)
    mask = torch.ones(2, 4, 5, dtype=torch.bool)
    mask[1, 2, :] = False  # batch 1, query 2 sees nothing
    out, w = lib.scaled_dot_product_attention(q, k, v, mask=mask)
    assert not torch.isnan(out).any() and not torch.isnan(w).any(), "NaN in output or weights"
    assert (w[1, 2] == 0).all() and (out[1, 2] == 0).all(), f"fully masked row: weights {w[1, 2]}, output {out[1, 2]}"
    out.sum().backward()
    assert torch.isfinite(q.grad).all(), "gradient with a fully masked row is not finite"
    ref = F.scaled_dot_product_attention(q.detach(), k, v, attn_mask=mask)
    assert max_abs_diff(out, ref) <= FLOAT32_TOL, f"differs from torch by {max_abs_diff(out, ref):.3e}"


def test_dropout_zeroes_weights_and_rescales_the_rest(lib):
    """With dropout_p = 0.5 some weights become 0 and the survivors are doubled; with 0 nothing is dropped."""
    q, k, v = _qkv((4, 16, 8), (4, 16, 8), 8, dtype=torch.float64)
    _, w0 = lib.scaled_dot_product_attention(q, k, v)
    torch.manual_seed(0)
    _, w = lib.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    dropped = (w == 0).double().mean().item()
    kept = w != 0
    assert 0.4 < dropped < 0.6, f"fraction dropped = {dropped:.3f}, expected about 0.5"
    assert max_abs_diff(w[kept], 2 * w0[kept]) <= FLOAT64_TOL, "kept weights must be scaled by 1 / (1 - p) = 2"


def test_a_float_mask_is_rejected_with_a_clear_message():
    """A float or 0/1 integer mask is refused (it would be misread), with a hint how to convert it."""
    from minibert.attention import scaled_dot_product_attention

    q, k, v = _qkv((3, 4), (3, 4), 4)
    for bad in (torch.ones(3, 3), torch.ones(3, 3, dtype=torch.long)):
        with pytest.raises(TypeError, match="boolean"):
            scaled_dot_product_attention(q, k, v, mask=bad)


def test_mismatched_shapes_are_rejected_with_a_clear_message():
    """Different d_k in q and k, different lengths of k and v, or a mask of the wrong shape raise ValueError naming the shapes."""
    from minibert.attention import scaled_dot_product_attention

    with pytest.raises(ValueError, match="d_k"):
        scaled_dot_product_attention(torch.randn(3, 4), torch.randn(3, 5), torch.randn(3, 4))
    with pytest.raises(ValueError, match="T_k"):
        scaled_dot_product_attention(torch.randn(3, 4), torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="does not broadcast"):
        scaled_dot_product_attention(torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4),
                                     mask=torch.ones(3, 5, dtype=torch.bool))
