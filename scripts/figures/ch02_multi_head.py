"""Figure of tutorials/02_multi_head_attention.md.

    python scripts/figures/ch02_multi_head.py

writes tutorials/figures/ch02_heads.png: the attention weights of each of the
4 heads of an *untrained* MultiHeadAttention (random weights, seed 0) on a toy
padded sentence. The patterns carry no linguistic meaning; they show that each
head computes its own weights from its own slice of Q and K, and that the
padding mask hides the same keys in every head.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from minibert.attention import MultiHeadAttention, padding_mask  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "tutorials" / "figures"
TOKENS = ["[CLS]", "the", "cat", "sat", "on", "the", "mat", "[SEP]", "[PAD]", "[PAD]"]


def main() -> Path:
    torch.manual_seed(0)
    C, H = 32, 4
    mha = MultiHeadAttention(C, H).eval()
    g = torch.Generator().manual_seed(1)
    vocab = {w: 2 * torch.randn(C, generator=g) for w in dict.fromkeys(TOKENS)}
    x = torch.stack([vocab[w] for w in TOKENS])[None]  # (1, T, C)
    attention_mask = torch.tensor([[w != "[PAD]" for w in TOKENS]]).long()  # (1, T)
    with torch.no_grad():
        _, weights = mha(x, mask=padding_mask(attention_mask), return_weights=True)  # (1, H, T, T)
    fig, axes = plt.subplots(1, H, figsize=(4 * H, 4.4), constrained_layout=True)
    for h, ax in enumerate(axes):
        ax.imshow(weights[0, h].numpy(), cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(len(TOKENS)), TOKENS, rotation=70, fontsize=7)
        ax.set_yticks(range(len(TOKENS)), TOKENS if h == 0 else [""] * len(TOKENS), fontsize=7)
        ax.set_title(f"head {h}")
        ax.set_xlabel("key")
    axes[0].set_ylabel("query")
    fig.suptitle("Untrained MultiHeadAttention(32, 4), seed 0: one weight matrix per head, same padding mask")
    path = OUT / "ch02_heads.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"wrote {main()}")
