"""Figures of chapter 08 from the trained SST-2 CNN-rand model and its training log.

    python scripts/figures/ch08_textcnn.py --run runs/kim_cnn_rand/sst2 --data-dir ../shared/data

Needs the ``sst2`` row of ``scripts/reproduce_kim_cnn_rand.py`` (its
``model.pt`` and ``metrics.jsonl``). Writes into ``tutorials/figures/``:

* ``ch08_curves.png``: train / dev / test accuracy per epoch;
* ``ch08_ngram_contributions.png``: the n-grams of the test sentences that
  push the class-score difference hardest (see :func:`ngram_contributions`);
* ``ch08_top_ngrams.png``: where single trained filters fire *inside* a
  sentence. For each class, the filters whose output weights favour it most
  ($w_{\\text{class},f} - w_{\\text{other},f}$ largest) are the rows; the
  columns are the window starts of two SST-2 test sentences (the ones with the
  strongest positive and negative n-gram); each cell is the filter's $c_i$,
  and a box marks the one window max-over-time keeps.

and prints the n-gram tables as Markdown (the chapter shows them).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from minibert.classification_data import read_examples  # noqa: E402
from textcnn.predict import TextCNNClassifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / "tutorials" / "figures"


def filter_activations(classifier: TextCNNClassifier, sentences: list[str]):
    """For every window size h: activations $c_i$ ``(N, F, positions)`` and the token lists."""
    model = classifier.model
    ids, lengths = classifier.encode(sentences)
    with torch.no_grad():
        x = model.embed(ids)  # (N, T, C)
        x = x * (torch.arange(x.shape[1])[None, :] < lengths[:, None]).unsqueeze(-1)
        out = {}
        for h, conv in zip(model.config.window_sizes, model.convs):
            c = F.relu(conv(x.transpose(1, 2)))  # (N, F, T-h+1)
            valid = torch.arange(c.shape[-1])[None, :] <= (lengths - h).clamp(min=0)[:, None]
            out[h] = c.masked_fill(~valid.unsqueeze(1), -1.0)
    tokens = [classifier.vocab.decode(row[:n].tolist()) for row, n in zip(ids, lengths.tolist())]
    return out, tokens


def top_ngrams(classifier, sentences, filters_per_class=4, ngrams_per_filter=3):
    """Rows (class, filter name, preference, [(n-gram, activation), ...])."""
    model = classifier.model
    acts, tokens = filter_activations(classifier, sentences)
    w = model.fc.weight.detach()  # (K, m)
    num_filters = model.config.num_filters
    rows = []
    for k, name in enumerate(classifier.label_names):
        others = torch.cat([w[:k], w[k + 1:]]).max(0).values
        preference = w[k] - others  # (m,)
        for j in preference.argsort(descending=True)[:filters_per_class].tolist():
            h = model.config.window_sizes[j // num_filters]
            f = j % num_filters
            best, pos = acts[h][:, f, :].max(dim=-1)  # per sentence: strongest window
            order = best.argsort(descending=True)
            found, seen = [], set()
            for s in order.tolist():
                words = tokens[s][pos[s]: pos[s] + h]
                gram = " ".join(t if t != "<unk>" else "?" for t in words)
                if gram in seen:
                    continue
                seen.add(gram)
                found.append((gram, best[s].item()))
                if len(found) == ngrams_per_filter:
                    break
            rows.append((name, f"h={h} #{f}", preference[j].item(), found))
    return rows


def ngram_contributions(classifier, sentences, top=8):
    r"""The n-grams that push the logit difference most towards each class (binary models).

    For a sentence, filter $f$ (window $h$) fires most at one window; it adds
    $\hat c_f (w_{1,f} - w_{0,f})$ to $y_1 - y_0$. Summing these over the
    filters that picked the same window gives that n-gram's contribution in
    that sentence. Returns ``{class_name: [(n-gram, contribution), ...]}``,
    the strongest distinct n-grams of the given sentences for each side.
    """
    model = classifier.model
    acts, tokens = filter_activations(classifier, sentences)
    w = model.fc.weight.detach()
    preference = w[1] - w[0]  # (m,)
    num_filters = model.config.num_filters
    scores: dict = {}
    for block, h in enumerate(model.config.window_sizes):
        pref = preference[block * num_filters:(block + 1) * num_filters]  # (F,)
        best, pos = acts[h].max(dim=-1)  # (N, F)
        contribution = best.clamp(min=0) * pref  # (N, F)
        for s in range(len(sentences)):
            per_window: dict = {}
            for f in range(num_filters):
                per_window[int(pos[s, f])] = per_window.get(int(pos[s, f]), 0.0) + contribution[s, f].item()
            for p, value in per_window.items():
                gram = " ".join(t if t != "<unk>" else "?" for t in tokens[s][p:p + h])
                if abs(value) > abs(scores.get(gram, 0.0)):
                    scores[gram] = value
    ranked = sorted(scores.items(), key=lambda kv: kv[1])
    return {classifier.label_names[0]: ranked[:top], classifier.label_names[1]: ranked[::-1][:top]}


def draw_curves(metrics_path: Path, path: Path) -> None:
    """Accuracy per epoch (train / dev / test) from metrics.jsonl."""
    records = [json.loads(line) for line in metrics_path.read_text().strip().split("\n")]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for split in ("train", "dev", "test"):
        rows = [r for r in records if r["split"] == split]
        ax.plot([r["epoch"] for r in rows], [100 * r["accuracy"] for r in rows], marker="o", ms=3, label=split)
    best = max((r for r in records if r["split"] == "dev"), key=lambda r: (r["accuracy"], -r["epoch"]))
    ax.axvline(best["epoch"], color="grey", ls=":", label=f"best dev (epoch {best['epoch']})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("CNN-rand on SST-2 (train: stsa sentences), 2-core CPU")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_activation_maps(classifier, rows, sentences: list[str], path: Path, names: dict) -> None:
    """Rows = the filters of ``rows`` (from :func:`top_ngrams`), columns = window starts of each sentence;
    the cell is $c_i$ and a box marks the window that max-over-time keeps."""
    acts, tokens = filter_activations(classifier, sentences)
    filters = [(name, label) for name, label, _, _ in rows]
    fig, axes = plt.subplots(1, len(sentences), figsize=(7.5 * len(sentences), 0.45 * len(filters) + 2.6),
                             constrained_layout=True, squeeze=False)
    for s, ax in enumerate(axes[0]):
        words = tokens[s]
        grid = torch.full((len(filters), len(words)), float("nan"))
        for r, (_, label) in enumerate(filters):
            h, f = (int(v) for v in label.removeprefix("h=").split(" #"))
            c = acts[h][s, f, :len(words)]
            valid = c >= 0
            grid[r, :valid.sum()] = c[valid]
        image = ax.imshow(grid.numpy(), cmap="magma", aspect="auto", vmin=0)
        fig.colorbar(image, ax=ax, shrink=0.8, label="$c_i$ of the window starting at this word")
        for r in range(len(filters)):
            row = grid[r]
            if torch.isfinite(row).any():
                j = int(torch.nan_to_num(row, nan=-1.0).argmax())
                ax.add_patch(plt.Rectangle((j - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="cyan", lw=2))
        ax.set_xticks(range(len(words)), [w if w != "<unk>" else "?" for w in words], rotation=60, fontsize=8)
        ax.set_yticks(range(len(filters)),
                      [f"{label} (favours {names.get(k, k)})" for k, label in filters], fontsize=8)
        ax.set_xlabel("window start (the window covers this word and the next h-1)")
        ax.set_title(" ".join(words)[:95] + ("..." if len(" ".join(words)) > 95 else ""), fontsize=9)
    fig.suptitle("Where single filters fire inside a sentence (CNN-rand, SST-2 test); "
                 "the box is the one value max-over-time keeps", fontsize=11)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_contributions(contributions: dict, path: Path, names: dict) -> None:
    """Horizontal bars: the strongest n-grams for each class and their contribution to $y_1 - y_0$."""
    items = []
    for k, grams in contributions.items():
        items += [(g, v, k) for g, v in grams]
    items.sort(key=lambda t: t[1])
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(items) + 1.2))
    colors = ["tab:red" if v < 0 else "tab:blue" for _, v, _ in items]
    ax.barh(range(len(items)), [v for _, v, _ in items], color=colors)
    ax.set_yticks(range(len(items)), [g for g, _, _ in items], fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("contribution to $y_{pos} - y_{neg}$ (sum over the filters that picked the n-gram)")
    ax.set_title("SST-2 test sentences: n-grams that push the CNN-rand model hardest", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    """Draw both figures and print the n-gram table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default="runs/kim_cnn_rand/sst2", help="output folder of the sst2 row")
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--out", default=str(FIGURES))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run = Path(args.run)
    classifier = TextCNNClassifier.load(run)
    texts, _ = read_examples(Path(args.data_dir) / "classification" / "SST-2" / "stsa.binary.test")
    rows = top_ngrams(classifier, texts)
    names = {"0": "negative", "1": "positive"}
    draw_curves(run / "metrics.jsonl", out / "ch08_curves.png")
    contributions = ngram_contributions(classifier, texts)
    draw_contributions(contributions, out / "ch08_ngram_contributions.png", names)
    # the two sentences holding the strongest negative and the strongest positive n-gram
    examples = [next(t for t in texts if grams[0][0] in " ".join(classifier.vocab.decode(
        classifier.encode([t])[0][0].tolist()))) for grams in contributions.values()]
    draw_activation_maps(classifier, rows, examples, out / "ch08_top_ngrams.png", names)
    print("| class | filter | $w_{class} - w_{other}$ | n-grams that fire it most ($c_i$) |")
    print("|---|---|---|---|")
    for k, filt, pref, grams in rows:
        shown = "; ".join(f"*{g}* ({v:.2f})" for g, v in grams)
        print(f"| {names.get(k, k)} | {filt} | {pref:+.2f} | {shown} |")
    print()
    print("| class | n-grams with the largest contribution to $y_1 - y_0$ |")
    print("|---|---|")
    for k, grams in contributions.items():
        print(f"| {names.get(k, k)} | " + "; ".join(f"*{g}* ({v:+.2f})" for g, v in grams) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
