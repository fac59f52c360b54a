"""Check our WordPiece reading of a real ``tokenizer.json`` against transformers, on every real sentence.

    python scripts/check_tokenizer_json.py /path/to/all-MiniLM-L6-v2 --data-dir ../shared/data

Loads the folder's tokenizer with ``minibert.tokenization.load_tokenizer`` (which
reads ``tokenizer.json`` when there is no ``vocab.txt``) and with
``transformers.AutoTokenizer``, and compares the ids (``[CLS]``/``[SEP]``
included) of every MR, SST-2 and GLUE SST-2 sentence. Prints the counts and the
first difference, exits 1 if any. A script, not a test: CI does not have the
checkpoint.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from minibert.classification_data import read_examples
from minibert.tokenization import load_tokenizer


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", help="a transformers folder with tokenizer.json")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    args = p.parse_args(argv)
    import transformers

    ours = load_tokenizer(args.folder)
    ref = transformers.AutoTokenizer.from_pretrained(args.folder)
    print(f"ours: {ours} lowercase={ours.do_lower_case} strip_accents={ours.strip_accents} "
          f"chinese={ours.tokenize_chinese_chars}; transformers: {type(ref).__name__}")
    data = Path(args.data_dir) / "classification"
    files = [data / "MR" / "rt-polarity.all"] + [data / "SST-2" / f"stsa.binary.{s}" for s in ("train", "dev", "test")]
    files += [data / "GLUE-SST-2" / f"{s}.tsv" for s in ("train", "dev")]
    bad = 0
    for path in files:
        texts, _ = read_examples(path)
        t0 = time.perf_counter()
        got = [ours.encode(t)["input_ids"] for t in texts]
        seconds = time.perf_counter() - t0
        want = ref(texts)["input_ids"]
        differ = [i for i in range(len(texts)) if got[i] != want[i]]
        unk = sum(ids.count(ours.unk_id) for ids in got)
        print(f"{path.relative_to(data)}: {len(texts) - len(differ)} of {len(texts)} identical, "
              f"{sum(map(len, got))} ids, {unk} [UNK], ours {seconds:.1f} s")
        if differ:
            i = differ[0]
            print(f"  first difference: {texts[i][:100]!r}\n  ours {got[i][:20]}\n  ref  {want[i][:20]}")
        bad += len(differ)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
