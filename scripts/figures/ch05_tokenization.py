"""Numbers and figure of tutorials/05_tokenization.md: WordPiece vs SentencePiece on WikiText-2.

    python scripts/figures/ch05_tokenization.py --data-dir ../shared/data

Trains three tokenizers with 8,000 entries (the ``tiny`` preset's vocabulary)
on ``wiki.valid.raw`` -- WordPiece uncased and cased (``build_wordpiece_vocab``,
a frequency-based vocabulary) and unigram SentencePiece -- and measures them on
``wiki.test.raw``: pieces per word, words kept whole, ``[UNK]`` rate, exact
round trips, training and tokenizing time. Prints a Markdown table and the first
sentence of a few test lines, segmented, and writes

* tutorials/figures/ch05_pieces_per_word.png: how many pieces a word of
  WikiText-2 test is cut into, per tokenizer.

About 20 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import collections
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from minibert.tokenization import (SentencePieceTokenizer, WordPieceTokenizer, basic_tokenize,  # noqa: E402
                                   build_wordpiece_vocab)

OUT = Path(__file__).resolve().parents[2] / "tutorials" / "figures"
EXAMPLE_LINES = (4, 35, 187)  # 1-based line numbers in wiki.test.raw; the first sentence of each is shown


def pieces_per_word(tokenizer, lines: list[str]) -> collections.Counter:
    """Histogram of the number of pieces each whitespace-separated word of ``lines`` is cut into."""
    counts: collections.Counter = collections.Counter()
    for line in lines:
        for word in line.split():
            counts[len(tokenizer.tokenize(word))] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("MINIBERT_DATA_DIR", "../shared/data"),
                        help="folder holding wikitext-2-raw/wiki.{valid,test}.raw (default: $MINIBERT_DATA_DIR)")
    parser.add_argument("--vocab-size", type=int, default=8000, help="entries per tokenizer (tiny preset: 8000)")
    args = parser.parse_args()
    wiki = Path(args.data_dir) / "wikitext-2-raw"
    train_lines = (wiki / "wiki.valid.raw").read_text(encoding="utf-8").split("\n")
    all_test_lines = (wiki / "wiki.test.raw").read_text(encoding="utf-8").split("\n")
    test_lines = [line.strip() for line in all_test_lines if line.strip()]
    examples = [all_test_lines[n - 1].strip().split(" . ")[0] + " ." for n in EXAMPLE_LINES]

    tokenizers, train_seconds = {}, {}
    for name, lower in (("WordPiece uncased", True), ("WordPiece cased", False)):
        start = time.perf_counter()
        tokenizers[name] = WordPieceTokenizer(build_wordpiece_vocab(train_lines, args.vocab_size, lower), lower)
        train_seconds[name] = time.perf_counter() - start
    start = time.perf_counter()
    tokenizers["SentencePiece (unigram)"] = SentencePieceTokenizer.train(train_lines, args.vocab_size, seed=0)
    train_seconds["SentencePiece (unigram)"] = time.perf_counter() - start

    n_words = sum(len(line.split()) for line in test_lines)
    print(f"WikiText-2 test: {len(test_lines)} non-empty lines, {n_words} words (split on spaces); "
          f"tokenizers trained on wiki.valid.raw with {args.vocab_size} entries\n")
    print("| tokenizer | train (s) | tokens / word | words kept whole | [UNK] per 10k tokens "
          "| lines decoded exactly | tokenize (s) |")
    print("|---|---|---|---|---|---|---|")
    histograms, inexact_with_unk, unk_words = {}, {}, {}
    for name, tok in tokenizers.items():
        start = time.perf_counter()
        ids = [tok.text_to_ids(line) for line in test_lines]
        seconds = time.perf_counter() - start
        n_tokens = sum(map(len, ids))
        n_unk = sum(x.count(tok.unk_id) for x in ids)
        exact = sum(tok.decode(x) == line for x, line in zip(ids, test_lines))
        inexact_with_unk[name] = sum(tok.unk_id in x for x, line in zip(ids, test_lines) if tok.decode(x) != line)
        unk_words[name] = collections.Counter(word for line in test_lines for word in line.split()
                                              if tok.unk_id in tok.text_to_ids(word))
        histograms[name] = pieces_per_word(tok, test_lines)
        whole = histograms[name][1] / n_words
        print(f"| {name} | {train_seconds[name]:.1f} | {n_tokens / n_words:.3f} | {100 * whole:.1f}% "
              f"| {1e4 * n_unk / n_tokens:.1f} | {100 * exact / len(test_lines):.1f}% | {seconds:.1f} |")

    for name in tokenizers:
        print(f"{name}: {inexact_with_unk[name]} of the lines not decoded exactly contain [UNK]; "
              f"most frequent words with [UNK]: {' '.join(w for w, _ in unk_words[name].most_common(12))}")
    sp = tokenizers["SentencePiece (unigram)"]
    bare = sum(sp.tokenize(word)[:1] == ["\u2581"] for line in test_lines for word in line.split())
    print(f"\nSentencePiece words that start with the bare piece '\u2581' (a space of its own): "
          f"{100 * bare / n_words:.1f}%")
    print("Basic tokenizer words per space-separated word (uncased): "
          f"{sum(len(basic_tokenize(line)) for line in test_lines) / n_words:.3f}")
    for n, text in zip(EXAMPLE_LINES, examples):
        print(f"\nwiki.test.raw line {n}: {text}")
        for name, tok in tokenizers.items():
            print(f"  {name:24s} {' '.join(tok.tokenize(text))}")

    OUT.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    bins = [1, 2, 3, 4, 5]
    width = 0.8 / len(histograms)
    for k, (name, hist) in enumerate(histograms.items()):
        total = sum(hist.values())
        shares = [hist[b] / total for b in bins[:-1]] + [sum(v for n, v in hist.items() if n >= 5) / total]
        ax.bar([b + (k - 1) * width for b in bins], [100 * s for s in shares], width, label=name)
    ax.set_xticks(bins, ["1", "2", "3", "4", "5+"])
    ax.set_xlabel("pieces per word")
    ax.set_ylabel("% of words")
    ax.set_title(f"WikiText-2 test, {n_words} words; {args.vocab_size}-entry vocabularies from WikiText-2 valid",
                 fontsize=9)
    ax.legend()
    fig.tight_layout()
    path = OUT / "ch05_pieces_per_word.png"
    fig.savefig(path, dpi=120)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
