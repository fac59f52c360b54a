"""Scale of the pretraining data path: token cache preparation, peak memory, start-up from the cache, pair cutting.

    OMP_NUM_THREADS=1 python scripts/benchmark_token_cache.py --data-dir ../shared/data --sizes 1e6 1e7 1e8

Synthetic corpora: the shared WikiText-2 text (``wiki.valid.raw`` then
``wiki.test.raw``) concatenated $k$ times, $k = \\lceil$ target tokens / tokens
of one copy $\\rceil$, where copy $i$ renames every article title ``= T =`` to
``= T (copy i) =`` so the documents stay distinct (the text inside them
repeats). A SentencePiece tokenizer (``--vocab-size``) is trained once on one
copy. For every corpus, each measurement runs in a *fresh* subprocess and
reports its peak resident memory (``VmHWM`` of ``/proc/self/status``):

* ``prepare``: the first run: hash the corpus and tokenizer, stream-tokenise
  into the memmap cache (:func:`minibert.token_cache.token_cache`), then cut one
  epoch of NSP pairs as ranges;
* ``startup``: the second run: hash, open the cache, read epoch 0's pairs
  (stored in the cache folder by the first run) and build the first masked
  batch (what ``minibert pretrain`` does before its first step, model aside);
* ``cut``: the cost of cutting one epoch's pairs afresh (every later epoch;
  the start-up's reading of stored pairs is not cutting);
* ``lists`` (only up to ``--lists-up-to`` tokens): the old path for comparison:
  ``wikitext.documents`` + ``tokenize_documents`` (Python lists) +
  ``create_nsp_examples`` + ``PretrainingDataset``.

Results go to ``<work>/results.json`` and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

TITLE = re.compile(r"^ = ([^=].*?) = $")


def peak_rss_mb() -> float:
    """``VmHWM`` (peak resident set size) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_corpus(base: list[str], copies: int, path: Path) -> None:
    """``copies`` copies of the lines ``base``, titles of copy i suffixed with ``(copy i)``; streamed to ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(copies):
            for line in base:
                m = TITLE.match(line.rstrip("\n"))
                f.write(f" = {m.group(1)} (copy {i}) = \n" if m else line)
    os.replace(tmp, path)


def worker(args) -> None:
    import random

    from minibert.tokenization import load_tokenizer

    tokenizer = load_tokenizer(args.tokenizer)
    out = {}
    if args.worker == "lists":
        from minibert.pretraining_data import PretrainingDataset, create_nsp_examples, tokenize_documents
        from minibert.wikitext import documents

        t = time.perf_counter()
        docs = tokenize_documents(documents(args.corpus), tokenizer)
        out["tokenise_s"] = time.perf_counter() - t
        t = time.perf_counter()
        examples = create_nsp_examples(docs, 128, random.Random(0))
        out["pairs_s"] = time.perf_counter() - t
        t = time.perf_counter()
        PretrainingDataset(examples, tokenizer, 128)
        out["tensors_s"] = time.perf_counter() - t
        out["tokens"] = sum(len(s) for d in docs for s in d)
    elif args.worker == "cut":
        from minibert.pair_ranges import create_nsp_ranges
        from minibert.token_cache import token_cache

        cache, _ = token_cache(args.cache, args.corpus, tokenizer, args.tokenizer, say=lambda *a: None)
        t = time.perf_counter()
        out["pairs"] = len(create_nsp_ranges(cache.sentence_offsets, cache.document_offsets, 128, random.Random(1)))
        out["cut_s"] = time.perf_counter() - t
    else:
        from minibert.pair_ranges import RangeEpochPairs
        from minibert.pretraining_data import generator_for_epoch, iterate_batches
        from minibert.token_cache import token_cache

        t = time.perf_counter()
        cache, built = token_cache(args.cache, args.corpus, tokenizer, args.tokenizer, say=lambda *a: None)
        out["cache_s"], out["built"], out["tokens"] = time.perf_counter() - t, built, cache.num_tokens
        t = time.perf_counter()
        pairs = RangeEpochPairs(cache, tokenizer, 128, 0, store=cache.folder)   # as minibert pretrain does
        data = pairs.dataset(0)
        out["pairs_s"], out["pairs"] = time.perf_counter() - t, len(data)
        t = time.perf_counter()
        next(iter(iterate_batches(data, 32, generator_for_epoch(0, 0))))
        out["first_batch_s"] = time.perf_counter() - t
        out["startup_s"] = out["cache_s"] + out["pairs_s"] + out["first_batch_s"]
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))


def measure(mode: str, corpus: Path, work: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode, "--corpus", str(corpus), "--cache", str(work / "cache"),
           "--tokenizer", str(work / "tokenizer")]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = time.perf_counter() - t   # imports included
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("MINIBERT_DATA_DIR", "../shared/data"),
                   help="folder holding wikitext-2-raw/wiki.valid.raw and wiki.test.raw")
    p.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7], help="target corpus sizes in tokens")
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--work", default="runs/benchmark_token_cache", help="folder for corpora, tokenizer, caches")
    p.add_argument("--lists-up-to", type=float, default=1e7, help="measure the old list path up to this size")
    p.add_argument("--worker", choices=("prepare", "startup", "cut", "lists"), help=argparse.SUPPRESS)
    p.add_argument("--corpus", help=argparse.SUPPRESS)
    p.add_argument("--cache", help=argparse.SUPPRESS)
    p.add_argument("--tokenizer", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    from minibert.tokenization import SentencePieceTokenizer, load_tokenizer
    from minibert.token_cache import token_cache
    from minibert.wikitext import documents

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    raw = Path(args.data_dir) / "wikitext-2-raw"
    base = [line for name in ("wiki.valid.raw", "wiki.test.raw")
            for line in (raw / name).read_text(encoding="utf-8").splitlines(keepends=True)]
    one = work / "copy1.raw"
    write_corpus(base, 1, one)
    if not (work / "tokenizer").is_dir():
        SentencePieceTokenizer.train([s for d in documents(one) for s in d], args.vocab_size,
                                     folder=str(work / "tokenizer"), seed=0)
    tokenizer = load_tokenizer(work / "tokenizer")
    per_copy = token_cache(work / "cache", one, tokenizer, work / "tokenizer", say=lambda *a: None)[0].num_tokens
    print(f"one copy of valid+test: {per_copy:,} tokens (vocab {tokenizer.vocab_size}); "
          f"torch threads from OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}", flush=True)

    rows = []
    for size in args.sizes:
        copies = math.ceil(size / per_copy)
        corpus = work / f"corpus_{copies}x.raw"
        write_corpus(base, copies, corpus)
        row = {"target_tokens": size, "copies": copies, "corpus_mb": corpus.stat().st_size / 1e6}
        for folder in (work / "cache").iterdir():   # the first run must build
            if folder.is_dir() and json.loads((folder / "meta.json").read_text())["corpus"] == str(corpus.absolute()):
                import shutil
                shutil.rmtree(folder)
        row["prepare"] = measure("prepare", corpus, work)
        row["startup"] = measure("startup", corpus, work)
        row["cut"] = measure("cut", corpus, work)
        assert row["prepare"]["built"] and not row["startup"]["built"]
        if size <= args.lists_up_to:
            row["lists"] = measure("lists", corpus, work)
        rows.append(row)
        print(json.dumps(row), flush=True)
        (work / "results.json").write_text(json.dumps(rows, indent=2) + "\n")

    print("\n| tokens | corpus MB | first run: prepare s (tokens/s) | peak RSS MB | 2nd run start-up s "
          "(hash+open cache / read pairs / 1st batch) | peak RSS MB | cutting one epoch's pairs | old list path: s, peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        a, b = r["prepare"], r["startup"]
        old = f"{r['lists']['tokenise_s'] + r['lists']['pairs_s'] + r['lists']['tensors_s']:.1f} s, " \
              f"{r['lists']['peak_rss_mb']:,.0f}" if "lists" in r else "-"
        print(f"| {a['tokens']:,} | {r['corpus_mb']:,.0f} | {a['cache_s']:.1f} ({a['tokens'] / a['cache_s'] / 1e6:.2f} M) "
              f"| {a['peak_rss_mb']:,.0f} | {b['startup_s']:.1f} ({b['cache_s']:.1f} / {b['pairs_s']:.1f} / "
              f"{b['first_batch_s']:.2f}) | {b['peak_rss_mb']:,.0f} | {r['cut']['pairs']:,} pairs in {r['cut']['cut_s']:.1f} s | {old} |")


if __name__ == "__main__":
    main()
