"""Chapter 07's figure: the curves of the real tiny pretraining run, redrawn from its metrics.jsonl.

    minibert pretrain --preset tiny --train ../shared/data/wikitext-2-raw/wiki.valid.raw \
        --valid ../shared/data/wikitext-2-raw/wiki.test.raw --out runs/tiny
    python scripts/figures/ch07_pretraining_curves.py runs/tiny

    python scripts/unigram_baseline.py runs/tiny --json runs/tiny/unigram_baseline.json
    python scripts/figures/ch07_pretraining_curves.py runs/tiny

writes ``tutorials/figures/ch07_tiny_curves.png``: the drawing the run saves
as ``runs/tiny/curves.png``, plus the context-free baselines as dashed lines
when ``unigram_baseline.json`` is there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from minibert.training_utils import plot_curves, read_metrics

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, nargs="?", default=ROOT / "runs" / "tiny",
                        help="output folder of the run (default: runs/tiny)")
    parser.add_argument("--out", type=Path, default=ROOT / "tutorials" / "figures" / "ch07_tiny_curves.png")
    args = parser.parse_args()
    records = read_metrics(args.run / "metrics.jsonl")
    if not records:
        raise SystemExit(f"no metrics.jsonl records in {args.run}; run minibert pretrain first.")
    results = json.loads((args.run / "results.json").read_text()) if (args.run / "results.json").exists() else {}
    hardware = results.get("hardware", "")
    title = f"minibert pretrain --preset tiny, trained on {Path(results.get('data', {}).get('train', '?')).name}"
    if hardware:
        title += f" ({hardware.split(',')[0]}, no GPU)" if "no GPU" in hardware else f" ({hardware})"
    baselines = {}
    baseline_path = args.run / "unigram_baseline.json"
    if baseline_path.exists():
        b = json.loads(baseline_path.read_text())
        baselines = {
            "mlm_loss": (b["unigram_cross_entropy"], "unigram cross-entropy"),
            "mlm_accuracy": (b["most_frequent_token_accuracy"], f"always '{b['most_frequent_token']}'"),
            "nsp_accuracy": (b["nsp_majority_accuracy"], "NSP majority label"),
        }
    plot_curves(records, args.out, title=title, baselines=baselines)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
