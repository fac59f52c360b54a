"""Figures of tutorials/01_scaled_dot_product_attention.md.

    python scripts/figures/ch01_attention.py

writes tutorials/figures/ch01_attention_padding.png (weights of a toy sentence
without and with its padding mask), tutorials/figures/ch01_scaling.png
(why the scores are divided by sqrt(d_k)) and tutorials/figures/ch01_masks.png
(the padding mask of an encoder, the causal mask of a decoder, and the two
combined, as boolean key masks). Runs in a few seconds on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from minibert.attention import scaled_dot_product_attention  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "tutorials" / "figures"
TOKENS = ["the", "cat", "sat", "on", "the", "mat", "[PAD]", "[PAD]"]


def toy_vectors(tokens: list[str], dim: int = 16, seed: int = 0) -> torch.Tensor:
    """One fixed random vector per distinct word (the same word gets the same vector); (T, dim)."""
    g = torch.Generator().manual_seed(seed)
    vocab = {w: torch.randn(dim, generator=g) for w in dict.fromkeys(tokens)}
    return torch.stack([vocab[w] for w in tokens])


def heatmap(ax, weights: torch.Tensor, title: str) -> None:
    ax.imshow(weights.numpy(), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(TOKENS)), TOKENS, rotation=60)
    ax.set_yticks(range(len(TOKENS)), TOKENS)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    ax.set_title(title)
    for i in range(weights.shape[0]):
        for j in range(weights.shape[1]):
            value = weights[i, j].item()
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                    color="black" if value > 0.5 else "white")


def padding_figure() -> Path:
    x = toy_vectors(TOKENS)  # (T, C); Q = K = V = X: no learned projections
    mask = torch.tensor([w != "[PAD]" for w in TOKENS])[None, :]  # (1, T): every query sees the real tokens
    _, w_plain = scaled_dot_product_attention(x, x, x)
    _, w_masked = scaled_dot_product_attention(x, x, x, mask=mask)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), constrained_layout=True)
    heatmap(axes[0], w_plain, "no mask: [PAD] columns get weight")
    heatmap(axes[1], w_masked, "padding mask: [PAD] columns are exactly 0")
    fig.suptitle("softmax(X X^T / sqrt(16)) for Q = K = V = X (one fixed random vector per word)")
    path = OUT / "ch01_attention_padding.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def scaling_figure() -> Path:
    """Largest weight per query row, for unit-variance q, k with d_k = 64 and 16 keys."""
    g = torch.Generator().manual_seed(0)
    d_k, T, n = 64, 16, 4000
    q = torch.randn(n, 1, d_k, generator=g)
    k = torch.randn(n, T, d_k, generator=g)
    v = torch.zeros(n, T, 1)
    _, w_scaled = scaled_dot_product_attention(q, k, v)
    # "forgetting sqrt(d_k)" is the same as scaling q up by sqrt(d_k)
    _, w_unscaled = scaled_dot_product_attention(q * d_k ** 0.5, k, v)
    fig, ax = plt.subplots(figsize=(6.5, 3.8), constrained_layout=True)
    bins = torch.linspace(0, 1, 41).tolist()
    ax.hist(w_scaled.amax(-1).flatten().tolist(), bins=bins, alpha=0.7, label="softmax(QK^T / sqrt(d_k))")
    ax.hist(w_unscaled.amax(-1).flatten().tolist(), bins=bins, alpha=0.7, label="softmax(QK^T)  (forgot sqrt(d_k))")
    ax.set_xlabel("largest attention weight in a row (16 keys, d_k = 64)")
    ax.set_ylabel(f"rows (of {n})")
    ax.set_title("Without the scaling, the softmax saturates to one-hot")
    ax.legend()
    path = OUT / "ch01_scaling.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def masks_figure() -> Path:
    """Which key each query may see (True = may attend): encoder padding, decoder causal, both."""
    words = ["the", "cat", "sat", "down", "[PAD]", "[PAD]"]
    T = len(words)
    real = torch.tensor([w != "[PAD]" for w in words])
    padding = real[None, :].expand(T, T)                            # every query sees the real keys
    causal = torch.ones(T, T, dtype=torch.bool).tril()              # query i sees keys 0..i
    panels = [(padding, "padding mask (encoder: BERT)\nkeys that are [PAD] are hidden"),
              (causal, "causal mask (decoder: GPT)\nkey j is hidden from query i when j > i"),
              (causal & padding, "causal AND padding\n(a padded decoder batch)")]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.7), constrained_layout=True)
    for ax, (mask, title) in zip(axes, panels):
        ax.imshow(mask.float().numpy(), cmap="Greens", vmin=-0.3, vmax=1.2)
        for i in range(T):
            for j in range(T):
                ax.text(j, i, "✓" if mask[i, j] else "·", ha="center", va="center",
                        fontsize=11 if mask[i, j] else 14, color="white" if mask[i, j] else "grey")
        ax.set_xticks(range(T), words, rotation=45)
        ax.set_yticks(range(T), words)
        ax.set_xlabel("key (attended to)")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("query (attending)")
    fig.suptitle("Boolean masks, True (✓) = may attend: a hidden key gets score -inf, so weight exactly 0")
    path = OUT / "ch01_masks.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for p in (padding_figure(), scaling_figure(), masks_figure()):
        print(f"wrote {p}")
