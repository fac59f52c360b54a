"""Sinusoidal positional encoding: PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(same angle).

Checked against a hand computation, the formula as loops, transformers'
DistilBERT ``create_sinusoidal_embeddings``, and the two properties that make
the table useful: each frequency pair rotates by an angle that depends only on
the offset k, so PE(p) . PE(p + k) does not depend on p. Tests that take
``lib`` run against tutorials/exercises/ex03_positional.py with ``pytest --exercises``.
"""

from __future__ import annotations

import math

import pytest
import torch

from helpers import max_abs_diff, require_reference

FLOAT32_TOL = 1e-5


def test_hand_computed_values_for_four_dimensions(lib):
    """d = 4: row pos is [sin(pos), cos(pos), sin(pos/100), cos(pos/100)] since 10000^(2/4) = 100."""
    pe = lib.sinusoidal_positional_encoding(3, 4)
    expected = torch.tensor([[math.sin(p), math.cos(p), math.sin(p / 100), math.cos(p / 100)] for p in range(3)])
    assert pe.shape == (3, 4) and pe.dtype == torch.float32, f"got {tuple(pe.shape)} {pe.dtype}"
    assert max_abs_diff(pe, expected) <= 1e-7, f"differs from the hand computation by {max_abs_diff(pe, expected):.3e}"
    assert pe[0].tolist() == [0.0, 1.0, 0.0, 1.0], "position 0 must be [sin 0, cos 0, ...] = [0, 1, 0, 1]"


@pytest.mark.parametrize("num_positions, dim", [(50, 16), (20, 7), (5, 1), (128, 64)])
def test_table_equals_the_formula_written_as_loops(lib, num_positions, dim):
    """Every entry equals the paper's formula evaluated entry by entry with math.sin / math.cos (odd dims included)."""
    pe = lib.sinusoidal_positional_encoding(num_positions, dim)
    expected = torch.empty(num_positions, dim, dtype=torch.float64)
    for pos in range(num_positions):
        for col in range(dim):
            i = col // 2
            angle = pos / 10000 ** (2 * i / dim)
            expected[pos, col] = math.sin(angle) if col % 2 == 0 else math.cos(angle)
    assert pe.shape == (num_positions, dim), f"shape {tuple(pe.shape)}"
    assert max_abs_diff(pe, expected) <= 1e-6, f"differs from the loops by {max_abs_diff(pe, expected):.3e}"


@pytest.mark.parametrize("num_positions, dim", [(512, 128), (64, 33)])
def test_table_equals_transformers_distilbert_sinusoidal_embeddings(lib, num_positions, dim):
    """Equals DistilBERT's create_sinusoidal_embeddings (float32, also for odd dim)."""
    require_reference("transformers")
    from transformers.models.distilbert.modeling_distilbert import create_sinusoidal_embeddings

    ref = create_sinusoidal_embeddings(num_positions, dim, torch.empty(num_positions, dim))
    pe = lib.sinusoidal_positional_encoding(num_positions, dim)
    diff = max_abs_diff(pe, ref)
    print(f"max |ours - DistilBERT create_sinusoidal_embeddings| ({num_positions}x{dim}) = {diff:.3e}")
    assert diff <= FLOAT32_TOL, f"differs from transformers by {diff:.3e}"


def test_each_frequency_pair_rotates_by_an_angle_that_depends_only_on_the_offset(lib):
    """(PE[p+k, 2i], PE[p+k, 2i+1]) is (PE[p, 2i], PE[p, 2i+1]) rotated by k * omega_i, for every p.

    The rotation angle is measured from the table (atan2 of cross and dot product), so
    the test does not assume the frequencies; it then checks angle = k / 10000^(2i/d).
    """
    P, d = 200, 32
    pe = lib.sinusoidal_positional_encoding(P, d).double()
    pairs = pe.view(P, d // 2, 2)  # (P, d/2, [sin, cos])
    worst = 0.0
    for k in (1, 5, 37):
        a, b = pairs[:-k], pairs[k:]  # (P-k, d/2, 2): positions p and p + k
        # angle that rotates a onto b, in the (cos, sin) plane: components (x=cos, y=sin)
        cross = a[..., 1] * b[..., 0] - a[..., 0] * b[..., 1]
        dot = a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1]
        angle = torch.atan2(cross, dot)  # (P-k, d/2)
        spread = (angle - angle[:1]).abs().max().item()  # same angle for every p
        omega = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
        expected = torch.remainder(k * omega + math.pi, 2 * math.pi) - math.pi  # wrapped to (-pi, pi]
        off = (angle[0] - expected).abs().max().item()
        worst = max(worst, spread, off)
        assert spread <= 1e-5, f"k={k}: rotation angle varies with p by {spread:.3e}"
        assert off <= 1e-5, f"k={k}: rotation angle differs from k * omega_i by {off:.3e}"
    print(f"largest deviation of the measured rotation angle: {worst:.3e} rad")


def test_dot_product_of_two_positions_depends_only_on_their_offset(lib):
    """PE(p) . PE(p + k) = sum_i cos(k omega_i) for every p (and does not depend on p)."""
    P, d = 300, 64
    pe = lib.sinusoidal_positional_encoding(P, d).double()
    omega = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    for k in (0, 1, 10, 100):
        dots = (pe[: P - k] * pe[k:]).sum(-1)  # (P - k,)
        expected = torch.cos(k * omega).sum().item()
        spread = (dots.max() - dots.min()).item()
        assert spread <= 1e-4, f"k={k}: PE(p).PE(p+k) varies with p by {spread:.3e}"
        assert abs(dots.mean().item() - expected) <= 1e-4, f"k={k}: mean {dots.mean().item():.6f}, expected {expected:.6f}"


def test_every_position_gets_a_different_vector(lib):
    """No two of 512 positions share an encoding (their distance is well above float32 noise)."""
    pe = lib.sinusoidal_positional_encoding(512, 64).double()
    dist = torch.cdist(pe, pe) + torch.eye(512, dtype=torch.float64) * 1e9
    assert dist.min().item() > 0.1, f"closest pair of positions is only {dist.min().item():.3e} apart"


def test_module_adds_the_table_as_a_buffer_never_a_parameter():
    """SinusoidalPositionalEncoding holds PE in a buffer (no trainable parameter) and returns x + PE[:T]."""
    from minibert.positional import SinusoidalPositionalEncoding, sinusoidal_positional_encoding

    module = SinusoidalPositionalEncoding(16, 8)
    assert list(module.parameters()) == [], "the table must not be a parameter"
    assert "pe" in dict(module.named_buffers()), "the table should be the buffer `pe`"
    x = torch.randn(2, 5, 8)
    out = module(x)
    diff = max_abs_diff(out, x + sinusoidal_positional_encoding(16, 8)[:5])
    assert diff == 0.0, f"x + PE[:T] off by {diff:.3e}"


def test_module_rejects_too_long_or_wrongly_sized_inputs():
    """A sequence longer than the table, or a wrong hidden size, raises ValueError saying what to change."""
    from minibert.positional import SinusoidalPositionalEncoding

    module = SinusoidalPositionalEncoding(4, 8)
    with pytest.raises(ValueError, match="exceeds"):
        module(torch.zeros(1, 5, 8))
    with pytest.raises(ValueError, match="shape"):
        module(torch.zeros(1, 3, 6))
