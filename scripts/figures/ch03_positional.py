"""Figures of tutorials/03_positional_encoding.md.

    python scripts/figures/ch03_positional.py

writes tutorials/figures/ch03_pe_heatmap.png (the table, 128 positions x 64
dims), ch03_pe_curves.png (a few columns against the position, with the waves
they sample) and
ch03_pe_similarity.png (PE(p) . PE(p + k) / d against the offset k).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from minibert.positional import sinusoidal_positional_encoding  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "tutorials" / "figures"


def heatmap() -> Path:
    pe = sinusoidal_positional_encoding(128, 64)
    fig, ax = plt.subplots(figsize=(7, 5), constrained_layout=True)
    im = ax.imshow(pe.numpy(), cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
    ax.set_xlabel("dimension (even = sin, odd = cos; frequency falls to the right)")
    ax.set_ylabel("position")
    ax.set_title("Sinusoidal positional encoding, 128 positions x 64 dims")
    fig.colorbar(im, ax=ax)
    path = OUT / "ch03_pe_heatmap.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def curves() -> Path:
    """A few columns as the continuous waves they sample: the table holds only the dots (integer positions)."""
    d, n = 64, 40
    pe = sinusoidal_positional_encoding(n, d)
    fine = torch.linspace(0, n - 1, 2000, dtype=torch.float64)
    fig, ax = plt.subplots(figsize=(8.5, 4.8), constrained_layout=True)
    for col, color in zip((0, 1, 8, 20), ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        i = col // 2
        angle = fine * 10000 ** (-2 * i / d)
        wave = torch.sin(angle) if col % 2 == 0 else torch.cos(angle)
        kind = "sin" if col % 2 == 0 else "cos"
        period = 2 * math.pi * 10000 ** (2 * i / d)
        ax.plot(fine.numpy(), wave.numpy(), color=color, lw=1, alpha=0.6)
        ax.plot(range(n), pe[:, col].numpy(), "o", ms=3.5, color=color,
                label=f"dim {col}: {kind}(pos / 10000^({2 * i}/{d})), period {period:.1f} positions")
    ax.set_xlabel("position (the table stores only the integer positions, the dots)")
    ax.set_ylabel("PE value")
    ax.set_title("Each column samples a smooth wave at the integer positions;\n"
                 "dims 0-1 turn once every 6.3 positions, so their samples look jagged", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    path = OUT / "ch03_pe_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def similarity() -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.8), constrained_layout=True)
    for d in (32, 128, 512):
        pe = sinusoidal_positional_encoding(600, d).double()
        for p in (0, 200):
            sims = (pe[p : p + 400] @ pe[p]) / (d / 2)  # PE(p) . PE(p + k) / (d/2) for k = 0..399
            ax.plot(sims.numpy(), linestyle="-" if p == 0 else ":", label=f"d={d}, p={p}")
    ax.set_xlabel("offset k")
    ax.set_ylabel("PE(p) . PE(p+k) / (d/2)")
    ax.set_title("Similarity depends only on the offset k\n(solid: p = 0, dotted: p = 200; the curves coincide)", fontsize=10)
    ax.legend(fontsize=7, ncol=3)
    path = OUT / "ch03_pe_similarity.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for p in (heatmap(), curves(), similarity()):
        print(f"wrote {p}")
