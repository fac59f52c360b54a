"""Nested training corpora of N WikiText articles and one held-out evaluation corpus, for the NSP article curve.

Tutorial 07 asks whether NSP fails at our scale because the model is small or
because 60 training articles are too few for topic detection to become a
rule. This script pools the articles of the given WikiText raw files (in the
offline setting: the 60 of ``wiki.valid.raw`` and the 62 of ``wiki.test.raw``),
puts ``--heldout`` of them aside (drawn with ``--seed``), and writes, for each
N of ``--sizes``, ``train_N.raw`` with the first N articles of one fixed
shuffled order of the rest — so the corpora are nested, each adds articles to
the one before — plus ``heldout.raw``. Articles are copied line for line
(titles, headings, paragraphs), so ``minibert pretrain --train train_N.raw
--valid heldout.raw`` reads them as it reads WikiText::

    python scripts/article_subsets.py ../shared/data/wikitext-2-raw/wiki.valid.raw \\
        ../shared/data/wikitext-2-raw/wiki.test.raw --heldout 30 --sizes 23 46 92 --out runs/articles
    for n in 23 46 92; do
      python scripts/nsp_ablation.py --train runs/articles/train_$n.raw --valid runs/articles/heldout.raw \\
          --rows mimetic-lr-1e-3 --steps 2000 --eval-every 200 --out runs/articles/n$n
    done
    python scripts/article_subsets.py --summarise runs/articles/n23 runs/articles/n46 runs/articles/n92 \\
        --figure tutorials/figures/ch07_nsp_articles.png

``--summarise`` reads the ablation folders (their ``rows.json`` and each row's
``results.json``, which names its training corpus), counts the articles of
each corpus, and prints one table line per row and corpus: valid NSP
accuracy (final / best) on the held-out articles, its majority label, the
train NSP accuracy of the last 10% of the steps and the MLM margin; the
figure plots final and best valid NSP accuracy against the number of
training articles, one line per row.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minibert.wikitext import _is_title, read_text  # noqa: E402


def split_articles(path) -> list[list[str]]:
    """The article blocks of a WikiText raw file: each a list of its lines, from its title line to the next one."""
    articles: list[list[str]] = []
    for line in read_text(path).split("\n"):
        if _is_title(line):
            articles.append([])
        if articles:
            articles[-1].append(line)
    if not articles:
        raise SystemExit(f"{path} has no article title lines (' = Title = '); give WikiText raw files.")
    return articles


def write_corpus(path: Path, articles: list[list[str]]) -> None:
    """Write articles back in WikiText layout (one blank line between blocks, as in the release)."""
    path.write_text("".join("\n".join(a).rstrip("\n") + "\n\n" for a in articles), encoding="utf-8")


def summarise(folders: list[Path]) -> list[dict]:
    """One record per (row, corpus) of the given nsp_ablation --out folders, with the corpus's article count."""
    records = []
    for folder in folders:
        for row in json.loads((folder / "rows.json").read_text(encoding="utf-8")):
            results = json.loads((folder / row["row"] / "results.json").read_text(encoding="utf-8"))
            train = results["args"]["train"]
            records.append({**row, "train": train, "articles": len(split_articles(train))})
    return sorted(records, key=lambda r: (r["row"], r["articles"]))


def summary_table(records: list[dict]) -> str:
    """The article curve as a Markdown table (accuracies in %)."""
    lines = ["| row | training articles | steps | valid NSP acc, held-out articles (final / best) "
             "| majority label (of the training pairs) / best constant answer | train NSP acc (last 10%) | MLM margin over most frequent piece | train s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        lines.append(f"| `{r['row']}` | {r['articles']} | {r['steps']} | {100 * r['valid_nsp_accuracy']:.1f} / "
                     f"{100 * r['best_valid_nsp_accuracy']:.1f} | {100 * r['nsp_majority_accuracy']:.1f} / "
                     f"{100 * max(r['nsp_majority_accuracy'], 1 - r['nsp_majority_accuracy']):.1f} | "
                     f"{100 * r['train_nsp_accuracy_last_10pct']:.1f} | {r['mlm_margin_points']:+.2f} pts | "
                     f"{r['train_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def plot_summary(records: list[dict], path: Path) -> None:
    """Final and best valid NSP accuracy against the number of training articles, one colour per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name in sorted({r["row"] for r in records}):
        mine = [r for r in records if r["row"] == name]
        n = [r["articles"] for r in mine]
        line, = ax.plot(n, [r["valid_nsp_accuracy"] for r in mine], marker="o", label=f"{name}: final")
        ax.plot(n, [r["best_valid_nsp_accuracy"] for r in mine], marker="^", linestyle=":", color=line.get_color(),
                label=f"{name}: best evaluation")
    constant = {r["articles"]: max(r["nsp_majority_accuracy"], 1 - r["nsp_majority_accuracy"]) for r in records}
    ax.plot(sorted(constant), [constant[n] for n in sorted(constant)], color="grey", marker="s", linewidth=1,
            label="best constant answer")
    ax.axhline(0.65, color="grey", linestyle="--", linewidth=1, label="target 0.65")
    ax.set_xlabel("training articles (nested corpora)")
    ax.set_ylabel("valid NSP accuracy, held-out articles")
    steps = "/".join(str(s) for s in sorted({r["steps"] for r in records}))
    ax.set_title(f"tiny BERT, {steps} steps: NSP against the number of training articles")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="*", help="WikiText raw files whose articles are pooled")
    p.add_argument("--heldout", type=int, default=30, help="articles kept aside for evaluation (default 30)")
    p.add_argument("--sizes", type=int, nargs="+", help="training corpus sizes, in articles")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out draw and of the order (default 0)")
    p.add_argument("--out", help="output folder of the corpora")
    p.add_argument("--summarise", nargs="+", type=Path, metavar="ABLATION_DIR",
                   help="instead: tabulate nsp_ablation.py --out folders run on these corpora")
    p.add_argument("--figure", default=None, help="with --summarise: write the NSP-vs-articles plot here")
    args = p.parse_args(argv)
    if args.summarise:
        records = summarise(args.summarise)
        print(summary_table(records), end="")
        if args.figure:
            plot_summary(records, Path(args.figure))
        return 0
    if not (args.files and args.sizes and args.out):
        p.error("give the WikiText files, --sizes and --out (or --summarise).")
    pool = [a for f in args.files for a in split_articles(f)]
    order = list(range(len(pool)))
    random.Random(args.seed).shuffle(order)
    heldout, rest = order[:args.heldout], order[args.heldout:]
    too_big = [n for n in args.sizes if not 1 <= n <= len(rest)]
    if too_big:
        raise SystemExit(f"--sizes {too_big}: only {len(rest)} article(s) remain after {args.heldout} held out.")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_corpus(out / "heldout.raw", [pool[i] for i in heldout])
    for n in sorted(args.sizes):
        write_corpus(out / f"train_{n}.raw", [pool[i] for i in rest[:n]])
    print(f"{len(pool)} articles pooled; {args.heldout} held out -> {out / 'heldout.raw'}; "
          f"train corpora of {', '.join(map(str, sorted(args.sizes)))} articles in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
