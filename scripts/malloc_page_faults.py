"""Page faults per training step of ``minibert pretrain`` under each glibc malloc setting.

    python scripts/malloc_page_faults.py --data-dir ../shared/data

Why ``minibert.training_utils.keep_freed_memory`` sets *two* thresholds.
Each setting runs ``minibert pretrain`` twice in fresh subprocesses, for
``--steps A B`` optimizer steps (same seed, data, out folder layout), and
counts the minor page faults of each (``ru_minflt`` of the finished child);
``(faults(B) - faults(A)) / (B - A)`` is the cost of one step, with start-up
(``import torch``, data preparation, the final evaluation) cancelled out.
Settings:

* ``defaults``: glibc as it comes (``--malloc-tuning off``): blocks above an
  mmap threshold (128 KiB, raised automatically up to 32 MiB as blocks are
  freed) get fresh pages from the kernel; the heap's top is given back
  beyond a trim threshold (kept at twice the mmap threshold);
* ``mmap-only``: ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1 GiB``: large
  blocks come from the heap, but the heap's top is still trimmed at the
  default 128 KiB;
* ``trim-only``: ``GLIBC_TUNABLES=glibc.malloc.trim_threshold=2 GiB - 1``;
  setting any threshold by hand switches off glibc's automatic raising of
  the mmap threshold, so every block above 128 KiB is mmapped again;
* ``both``: ``--malloc-tuning auto``, what ``minibert pretrain`` does by default.

Page faults are a count, not a time: they can be measured on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from minibert.training_utils import KEEP_MMAP_THRESHOLD, KEEP_TRIM_THRESHOLD  # noqa: E402

#: setting -> (--malloc-tuning, GLIBC_TUNABLES or None)
SETTINGS = {
    "defaults": ("off", None),
    "mmap-only": ("off", f"glibc.malloc.mmap_threshold={KEEP_MMAP_THRESHOLD}"),
    "trim-only": ("off", f"glibc.malloc.trim_threshold={KEEP_TRIM_THRESHOLD}"),
    "both": ("auto", None),
}


def faults_of(argv: list[str], env: dict) -> int:
    """Run ``argv`` to completion; return its minor page faults (raises with its stderr if it fails)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - before


def main(argv: list[str] | None = None) -> int:
    """Print one Markdown row per setting: faults of each run and per step."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True, help="folder holding wikitext-2-raw (as minibert pretrain)")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--steps", type=int, nargs=2, default=(10, 50), metavar=("A", "B"))
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the runs")
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    args = p.parse_args(argv)
    a, b = args.steps
    if not 0 < a < b:
        p.error("--steps A B needs 0 < A < B")
    base_env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    base_env["OMP_NUM_THREADS"] = str(args.threads)
    print(f"minibert pretrain --preset {args.preset}, {args.threads} thread(s), steps {a} and {b}\n")
    print(f"| setting | GLIBC_TUNABLES | page faults, {a} steps | page faults, {b} steps | per step |")
    print("|---|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as work:
        for name in args.settings:
            tuning, tunables = SETTINGS[name]
            env = dict(base_env, **({"GLIBC_TUNABLES": tunables} if tunables else {}))
            counts = [faults_of([sys.executable, "-m", "minibert.cli", "pretrain", "--preset", args.preset,
                                 "--data-dir", args.data_dir, "--max-steps", str(steps), "--eval-batches", "2",
                                 "--malloc-tuning", tuning, "--out", str(Path(work) / f"{name}_{steps}")], env)
                      for steps in (a, b)]
            print(f"| {name} | {tunables or '–'} | {counts[0]:,} | {counts[1]:,} | "
                  f"{(counts[1] - counts[0]) / (b - a):,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
