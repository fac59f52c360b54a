"""Reproduce the CNN-rand row of Kim (2014), Table 2, on MR and SST-2.

Rows (each one ``textcnn train`` run; CNN-rand, Adadelta, batch 50, dropout
0.5, max-norm 3, filters 3/4/5 x 100, 300-d random vectors):

* ``mr``: MR (``rt-polarity.all``, 10,662 sentences), 10-fold stratified CV;
  in each fold 10% of the nine training folds is the dev set that picks the
  epoch; mean +- std of the test-fold accuracy.
* ``sst2``: SST-2 trained on ``stsa.binary.train`` (6,920 sentences), epoch
  picked on ``stsa.binary.dev``, tested on ``stsa.binary.test`` (1,821).
* ``sst2-glue``: the same, trained on GLUE ``train.tsv`` (67,349 phrases and
  sentences, what Kim trained on).

Usage (2-core CPU; see --help)::

    nice -n 5 python scripts/reproduce_kim_cnn_rand.py --data-dir ../shared/data \\
        --out runs/kim_cnn_rand --rows mr sst2 sst2-glue

Every row writes its folder under ``--out``; a finished row (its
``results.json`` exists) is skipped and an unfinished MR cross-validation
resumes at the first fold without results, so the script can be rerun after
an interruption. At the end it writes ``summary.json`` and ``summary.md``
(the table, with the protocol actually run and the time per epoch).

``--conv-padding wide`` pads every sentence with h-1 zero vectors on both
sides (Kim's released code) instead of the paper's narrow convolution; use a
separate ``--out`` for it, since a finished fold is never rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from minibert.metrics import cv_summary
from textcnn import train as textcnn_train

KIM = {"mr": 76.1, "sst2": 82.7, "sst2-glue": 82.7}
TARGET = {"mr": 75.5, "sst2": 82.0, "sst2-glue": 82.0}


def row_argv(row: str, data: Path, out: Path, epochs: int, seed: int, threads: int) -> list[str]:
    """The ``textcnn train`` arguments of one row."""
    c = data / "classification"
    common = ["--epochs", str(epochs), "--seed", str(seed), "--out", str(out / row),
              "--threads", str(threads), "--device", "cpu"]
    if row == "mr":
        return ["--train", str(c / "MR" / "rt-polarity.all"), "--cv", "10"] + common
    sst = c / "SST-2"
    train = c / "GLUE-SST-2" / "train.tsv" if row == "sst2-glue" else sst / "stsa.binary.train"
    return ["--train", str(train), "--dev", str(sst / "stsa.binary.dev"),
            "--test", str(sst / "stsa.binary.test")] + common


def cpu_name() -> str:
    """The processor's model name (Linux), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().split("\n"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def partial_cv(folder: Path) -> dict | None:
    """Mean +- std over the MR folds finished so far (when the run was stopped early)."""
    done = sorted(folder.glob("fold_*/results.json"))
    if len(done) < 2:
        return None
    folds = [json.loads(p.read_text(encoding="utf-8")) for p in done]
    summary = cv_summary(folds)
    first = int(done[0].parent.name[len("fold_"):])
    summary["args"] = dict(folds[0]["args"], seed=folds[0]["args"]["seed"] - first)   # the fold seeds are seed + f
    summary["seconds_per_epoch"] = statistics.mean(f["seconds_per_epoch"] for f in folds)
    return summary


def summarize(out: Path, rows: list[str]) -> dict:
    """Collect finished rows into summary.json / summary.md."""
    table = {}
    for row in ("mr", "sst2", "sst2-glue"):
        path = out / row / "results.json"
        if row == "mr" and not path.exists():
            r = partial_cv(out / row)
            if r is None:
                continue
        elif not path.exists():
            continue
        else:
            r = json.loads(path.read_text(encoding="utf-8"))
        entry = {"accuracy": 100 * r["test_accuracy"], "f1_macro": 100 * r["test_f1_macro"],
                 "kim": KIM[row], "target": TARGET[row], "epochs": r["args"]["epochs"],
                 "seconds_per_epoch": r["seconds_per_epoch"], "train_seconds": r["train_seconds"],
                 "num_parameters": r["num_parameters"]}
        if "cv_accuracy_std" in r:
            entry["folds_done"] = len(r["fold_test_accuracy"])
            entry["std"] = 100 * r["cv_accuracy_std"]
            entry["fold_accuracy"] = [100 * a for a in r["fold_test_accuracy"]]
            entry["fold_best_epoch"] = r["fold_best_epoch"]
        else:
            entry["best_epoch"] = r["best_epoch"]
            entry["train_examples"] = r["train_examples"]
        entry["meets_target"] = entry["accuracy"] >= TARGET[row]
        pr = r["args"]
        entry["protocol"] = {k: pr[k] for k in ("mode", "epochs", "batch_size", "optimizer", "lr", "seed", "min_count",
                                                "dev_fraction", "cv", "bucket", "vectors", "conv_padding")}
        entry["protocol_text"] = (
            f"CNN-rand, {pr['epochs']} epochs, batch {pr['batch_size']}, {pr['optimizer']}, seed {pr['seed']}, "
            f"vocabulary = training words (min count {pr['min_count']}), "
            + ("length-sorted pools of 50 batches" if pr["bucket"] else "plain random batches")
            + (", wide convolution (h-1 zero vectors on both sides)" if pr.get("conv_padding") == "wide"
               else ", narrow convolution (the paper's)")
            + (f", {len(entry['fold_accuracy'])} of 10 folds, dev = 10% of each fold's training part"
               if "fold_accuracy" in entry else ", dev = stsa.binary.dev, test = stsa.binary.test")
            + f"; best dev epoch{'s' if 'fold_best_epoch' in entry else ''} "
            + f"{entry.get('fold_best_epoch', entry.get('best_epoch'))}")
        table[row] = entry
    machine = f"{cpu_name()}, {os.cpu_count()} cores (shared), torch {torch.__version__}, CPU only, no GPU"
    summary = {"rows": table, "machine": machine}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    names = {"mr": "MR (10-fold CV)", "sst2": "SST-2 (train: stsa sentences)",
             "sst2-glue": "SST-2 (train: GLUE phrases + sentences)"}
    lines = ["| data | Kim CNN-rand | target | ours (acc %) | macro F1 % | epochs | s/epoch |",
             "|---|---|---|---|---|---|---|"]
    for row, e in table.items():
        ours = f"{e['accuracy']:.1f}" + (f" ± {e['std']:.1f}" if "std" in e else "")
        if e.get("folds_done", 10) < 10:
            ours += f" ({e['folds_done']} of 10 folds)"
        lines.append(f"| {names[row]} | {e['kim']} | ≥ {e['target']} | {ours} | {e['f1_macro']:.1f} | "
                     f"{e['epochs']} | {e['seconds_per_epoch']:.1f} |")
    lines += ["", f"Machine: {machine}; {time.strftime('%Y-%m-%d')}.", "Protocol actually run:"]
    for row, e in table.items():
        lines.append(f"- {names[row]}: {e['protocol_text']}")
    (out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return summary


def main(argv=None) -> int:
    """Run the requested rows, then summarise everything finished so far."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="../shared/data", help="folder holding classification/")
    p.add_argument("--out", default="runs/kim_cnn_rand", help="output folder (one sub-folder per row)")
    p.add_argument("--rows", nargs="+", choices=list(KIM), default=list(KIM), help="rows to run")
    p.add_argument("--epochs", type=int, default=25, help="epochs per run (Kim: 25)")
    p.add_argument("--epochs-mr", type=int, default=0, help="override --epochs for the MR folds")
    p.add_argument("--epochs-glue", type=int, default=0, help="override --epochs for the GLUE row")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1 is fastest on a busy 2-core machine)")
    p.add_argument("--mr-folds", type=int, nargs="+", metavar="F",
                   help="run only these MR folds (to share them between processes); "
                        "a last run without it writes the MR summary")
    p.add_argument("--no-bucket", action="store_true",
                   help="plain random batches (ablation of the length-sorted pools)")
    p.add_argument("--conv-padding", choices=("narrow", "wide"), default="narrow",
                   help="narrow: the paper's convolution (n-h+1 windows); wide: h-1 zero vectors on "
                        "both sides of each sentence (n+h-1 windows), as Kim's released code")
    p.add_argument("--summary-only", action="store_true", help="only rebuild summary.json/.md")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.summary_only:
        for row in args.rows:
            if (out / row / "results.json").exists() and row != "mr":
                print(f"{row}: done already ({out / row / 'results.json'})")
                continue
            epochs = {"mr": args.epochs_mr, "sst2-glue": args.epochs_glue}.get(row) or args.epochs
            argv_row = row_argv(row, Path(args.data_dir), out, epochs, args.seed, args.threads)
            if args.no_bucket:
                argv_row.append("--no-bucket")
            argv_row += ["--conv-padding", args.conv_padding]
            if row == "mr" and args.mr_folds:
                argv_row += ["--folds"] + [str(f) for f in args.mr_folds]
            if row == "mr":   # continue at the first unfinished fold (several processes may share the folds)
                (out / row).mkdir(parents=True, exist_ok=True)
                argv_row.append("--resume")
            elif (out / row).is_dir() and any((out / row).iterdir()):
                argv_row.append("--overwrite")   # a single run stopped before its results.json starts again
            print(f"== {row}: textcnn train {' '.join(argv_row)}", flush=True)
            t0 = time.time()
            status = textcnn_train.main(argv_row)
            print(f"== {row}: exit {status} after {(time.time() - t0) / 60:.1f} min", flush=True)
            if status:
                return status
    summarize(out, args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
