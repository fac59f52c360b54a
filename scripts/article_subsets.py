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
"""
from __future__ import annotations

import argparse
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", help="WikiText raw files whose articles are pooled")
    p.add_argument("--heldout", type=int, default=30, help="articles kept aside for evaluation (default 30)")
    p.add_argument("--sizes", type=int, nargs="+", required=True, help="training corpus sizes, in articles")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out draw and of the order (default 0)")
    p.add_argument("--out", required=True, help="output folder")
    args = p.parse_args(argv)
    pool = [a for f in args.files for a in split_articles(f)]
    order = list(range(len(pool)))
    random.Random(args.seed).shuffle(order)
    heldout, rest = order[:args.heldout], order[args.heldout:]
    too_big = [n for n in args.sizes if not 1 <= n <= len(rest)]
    if too_big:
        raise SystemExit(f"--sizes {too_big}: only {len(rest)} articles remain after {args.heldout} held out.")
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
