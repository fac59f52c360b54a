"""Figure of tutorials/02_multi_head_attention.md.

    python scripts/figures/ch02_multi_head.py

writes tutorials/figures/ch02_heads.png: the four heads of one
``MultiHeadAttention(32, 4)`` whose query/key weights were *set by hand* so
that each head does one recognisable job, on a toy padded sentence. The input
is a toy where each token's vector holds a random word vector in features
0-15 and the sinusoidal position code of chapter 03 in features 16-31
(concatenated rather than added, so the heads can read them separately):

- head 0 reads the word features: a query matches keys of the same word
  ("the" finds both copies of "the");
- head 1 reads the position features and rotates the query back by one
  position (chapter 03's rotation): every token looks at the previous one;
- head 2 has a zero query: all scores are equal, so it averages the real
  tokens (a bag of words);
- head 3 keeps its random initial weights: what an untrained head does.

Each panel has its own colour bar; the padding mask removes the same two key
columns in every head. A trained BERT's heads are in chapter 04's figures.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from minibert.attention import MultiHeadAttention, padding_mask  # noqa: E402
from minibert.positional import sinusoidal_positional_encoding  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "tutorials" / "figures"
TOKENS = ["[CLS]", "the", "cat", "sat", "on", "the", "mat", "[SEP]", "[PAD]", "[PAD]"]
C, H = 32, 4
D = C // H          # 8 features per head
WORD = slice(0, 16)  # features holding the word vector
POS = slice(16, 32)  # features holding the position code


def toy_input() -> torch.Tensor:
    """(1, T, C): a random vector per distinct word (features 0-15) beside its position code (16-31)."""
    g = torch.Generator().manual_seed(1)
    vocab = {w: torch.randn(16, generator=g) for w in dict.fromkeys(TOKENS)}
    words = torch.stack([vocab[w] for w in TOKENS])
    positions = sinusoidal_positional_encoding(len(TOKENS), 16)
    return torch.cat([words, positions], dim=-1)[None]


def hand_built_heads() -> MultiHeadAttention:
    """MultiHeadAttention(32, 4) with heads 0-2 set to the jobs of the module docstring."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(C, H).eval()
    wq, wk = mha.query.weight, mha.key.weight        # (C_out, C_in): output rows h*D..(h+1)*D-1 are head h
    with torch.no_grad():
        # head 0: same word. Query and key = the first 8 word features, scaled so that a match is sharp.
        rows = slice(0, D)
        wq[rows], wk[rows] = 0.0, 0.0
        wq[rows, 0:D] = 2.0 * torch.eye(D)
        wk[rows, 0:D] = 2.0 * torch.eye(D)
        mha.query.bias[rows], mha.key.bias[rows] = 0.0, 0.0
        # head 1: previous token. Key = the 4 fastest (sin, cos) pairs of the position code; query = the
        # same pairs rotated back by one position, i.e. the code of position p - 1.
        rows = slice(D, 2 * D)
        wq[rows], wk[rows] = 0.0, 0.0
        for i in range(4):
            w = 10000 ** (-2 * i / 16)
            c, s = math.cos(w), math.sin(w)
            a, b = POS.start + 2 * i, POS.start + 2 * i + 1   # the sin and cos features of pair i
            r = D + 2 * i
            # (sin w(p-1), cos w(p-1)) = (c sin wp - s cos wp, s sin wp + c cos wp)
            wq[r, a], wq[r, b], wq[r + 1, a], wq[r + 1, b] = 4 * c, -4 * s, 4 * s, 4 * c
            wk[r, a], wk[r + 1, b] = 4.0, 4.0
        mha.query.bias[rows], mha.key.bias[rows] = 0.0, 0.0
        # head 2: a zero query scores every key the same: the average of the visible tokens.
        rows = slice(2 * D, 3 * D)
        wq[rows], mha.query.bias[rows] = 0.0, 0.0
    return mha


def main() -> Path:
    mha = hand_built_heads()
    x = toy_input()
    attention_mask = torch.tensor([[w != "[PAD]" for w in TOKENS]]).long()  # (1, T)
    with torch.no_grad():
        _, weights = mha(x, mask=padding_mask(attention_mask), return_weights=True)  # (1, H, T, T)
    titles = ["head 0: same word", "head 1: previous token", "head 2: average (zero query)",
              "head 3: random (untrained)"]
    fig, axes = plt.subplots(1, H, figsize=(4.3 * H, 4.6), constrained_layout=True)
    for h, ax in enumerate(axes):
        image = ax.imshow(weights[0, h].numpy(), cmap="viridis", vmin=0)
        fig.colorbar(image, ax=ax, shrink=0.75)
        ax.set_xticks(range(len(TOKENS)), TOKENS, rotation=70, fontsize=7)
        ax.set_yticks(range(len(TOKENS)), TOKENS if h == 0 else [""] * len(TOKENS), fontsize=7)
        ax.set_title(titles[h], fontsize=10)
        ax.set_xlabel("key")
    axes[0].set_ylabel("query")
    fig.suptitle("One MultiHeadAttention(32, 4), four weight matrices: heads 0-2 set by hand, "
                 "head 3 random; the same padding mask in all")
    path = OUT / "ch02_heads.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    for h in range(H):
        top = weights[0, h, :8].argmax(-1).tolist()
        print(f"head {h}: most attended key per real query: {[TOKENS[j] for j in top]}")
    return path


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"wrote {main()}")
