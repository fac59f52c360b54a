"""Figures of tutorials/04_mini_bert.md.

    python scripts/figures/ch04_mini_bert.py [--checkpoint runs/tiny/checkpoint.pt --tokenizer runs/tiny/tokenizer]

writes two PNGs into tutorials/figures/:

- ``ch04_parameters.png``: where the parameters of each preset live
  (embeddings, encoder layers, pooler, pretraining heads), from the
  closed-form :func:`minibert.model.count_parameters` (no model is built);
- ``ch04_attention_untrained.png``: the attention weights of every head of
  the last layer on one sentence, for an *untrained* ``tiny`` BERT (seed 0)
  with ids from a toy word list: the mechanics (one matrix per head, padding
  hidden), not language;
- with ``--checkpoint`` (from ``minibert pretrain``) and its ``--tokenizer``
  folder, also ``ch04_attention_trained.png``: the same heads of the trained
  model on the same sentence. The chapter's figure comes from the tiny run of
  chapter 07 (``runs/tiny``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from minibert.model import PRESETS, BertConfig, BertForPreTraining, count_parameters  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "tutorials" / "figures"
SENTENCE = "the cat sat on the mat because it was tired"


def parameter_breakdown(config: BertConfig) -> dict:
    """Parameters per part, from the closed-form counts (tied decoder weight counted once)."""
    V, C, I, L = config.vocab_size, config.hidden_size, config.intermediate_size, config.num_hidden_layers
    embeddings = (V + config.max_position_embeddings + config.type_vocab_size) * C + 2 * C
    layers = L * (4 * C * C + 2 * C * I + 9 * C + I)
    pooler = C * C + C
    heads = count_parameters(config, "pretraining") - count_parameters(config)
    assert embeddings + layers + pooler == count_parameters(config)
    return {"embeddings": embeddings, "encoder layers": layers, "pooler": pooler, "MLM + NSP heads": heads}


def figure_parameters() -> Path:
    """Left: each part's share of a preset (%), so tiny and base compare at one glance. Right: the
    parts' sizes on a log axis, where tiny's 1.5 M and base's 110 M both stay readable."""
    names = list(PRESETS)
    parts = [parameter_breakdown(BertConfig.from_preset(n)) for n in names]
    colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), constrained_layout=True)
    bottom = [0.0] * len(names)
    totals = [sum(p.values()) for p in parts]
    for key, color in zip(parts[0], colors):
        shares = [100 * p[key] / t for p, t in zip(parts, totals)]
        left.bar(names, shares, bottom=bottom, label=key, color=color)
        for i, (b, v) in enumerate(zip(bottom, shares)):
            if v >= 6:
                left.text(i, b + v / 2, f"{v:.0f}%", ha="center", va="center", fontsize=8, color="white")
        bottom = [b + v for b, v in zip(bottom, shares)]
    for i, total in enumerate(totals):
        left.text(i, 101, f"{total / 1e6:.1f}M", ha="center", va="bottom", fontsize=8)
    left.set_ylim(0, 108)
    left.set_ylabel("share of the parameters (%)")
    left.set_title("Share of each part (total above the bar)", fontsize=10)
    width = 0.2
    for j, (key, color) in enumerate(zip(parts[0], colors)):
        xs = [i + (j - 1.5) * width for i in range(len(names))]
        right.bar(xs, [p[key] for p in parts], width=width, label=key, color=color)
    right.set_yscale("log")
    right.set_xticks(range(len(names)), names)
    right.set_ylabel("parameters (log scale)")
    right.set_title("Size of each part", fontsize=10)
    right.grid(axis="y", which="major", alpha=0.3)
    right.legend(fontsize=8, loc="upper left")
    fig.suptitle("BertForPreTraining presets: where the parameters are (closed-form count_parameters)")
    path = OUT / "ch04_parameters.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def figure_attention(checkpoint: str | None = None, tokenizer_folder: str | None = None) -> Path:
    if checkpoint:
        from minibert.hf import load_checkpoint
        from minibert.tokenization import load_tokenizer

        model = load_checkpoint(checkpoint)
        tokenizer = load_tokenizer(tokenizer_folder)
        encoded = tokenizer.encode_batch([SENTENCE])
        ids, tt, am = encoded["input_ids"], encoded["token_type_ids"], encoded["attention_mask"]
        tokens = tokenizer.convert_ids_to_tokens(ids[0].tolist())
        title = f"trained tiny BERT ({checkpoint})"
    else:
        torch.manual_seed(0)
        model = BertForPreTraining(BertConfig.from_preset("tiny")).eval()
        words = ["[CLS]"] + SENTENCE.split() + ["[SEP]", "[PAD]", "[PAD]"]
        toy_vocab = {w: i + 5 for i, w in enumerate(dict.fromkeys(SENTENCE.split()))}
        toy_vocab.update({"[PAD]": 0, "[CLS]": 2, "[SEP]": 3})
        ids = torch.tensor([[toy_vocab[w] for w in words]])
        tt = torch.zeros_like(ids)
        am = (ids != 0).long()
        tokens = words
        title = "untrained tiny BERT (seed 0)"
    with torch.no_grad():
        attentions = model.bert(ids, tt, am, output_attentions=True)["attentions"]
    last = attentions[-1][0]                                                 # (H, T, T)
    real = am[0].bool()
    on_real = last[:, real][:, :, real]
    on_padding = last[:, :, ~real].max().item() if (~real).any() else 0.0
    print(f"last layer: weights on the {int(real.sum())} real tokens range "
          f"{on_real.min():.3f}-{on_real.max():.3f}; on padding at most {on_padding:.3f}")
    H = last.shape[0]
    for h in range(H):
        received = last[h][real][:, real].mean(dim=0)                       # mean weight each key receives
        top = received.topk(3)
        names = [tokens[i] for i in torch.nonzero(real).flatten()[top.indices].tolist()]
        print(f"  head {h}: keys with the most attention (mean over queries): "
              + ", ".join(f"{n} {w:.2f}" for n, w in zip(names, top.values.tolist())))
    fig, axes = plt.subplots(1, H, figsize=(4.2 * H, 4.6), constrained_layout=True, squeeze=False)
    for h, ax in enumerate(axes[0]):
        image = ax.imshow(last[h].numpy(), cmap="viridis", vmin=0)        # colour scale per head
        fig.colorbar(image, ax=ax, shrink=0.7)
        ax.set_xticks(range(len(tokens)), tokens, rotation=70, fontsize=7)
        ax.set_yticks(range(len(tokens)), tokens if h == 0 else [""] * len(tokens), fontsize=7)
        ax.set_title(f"layer {len(attentions) - 1}, head {h}")
        ax.set_xlabel("key")
    axes[0][0].set_ylabel("query")
    fig.suptitle(f"Attention weights of the last layer, {title}")
    path = OUT / ("ch04_attention_trained.png" if checkpoint else "ch04_attention_untrained.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="a minibert pretraining checkpoint (.pt); default: untrained tiny")
    parser.add_argument("--tokenizer", help="the tokenizer folder of that checkpoint (needed with --checkpoint)")
    args = parser.parse_args(argv)
    if args.checkpoint and not args.tokenizer:
        parser.error("--checkpoint needs --tokenizer (the folder the tokenizer was saved to)")
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"wrote {figure_parameters()}")
    print(f"wrote {figure_attention()}")
    if args.checkpoint:
        print(f"wrote {figure_attention(args.checkpoint, args.tokenizer)}")


if __name__ == "__main__":
    main()
