r"""Does pretraining help fine-tuning, and after how many steps? Fine-tuned accuracy against pretraining steps.

Takes checkpoints of one ``minibert pretrain`` run saved at different steps
(``minibert pretrain --keep-every N`` keeps one every N steps under the run's
``snapshots/``; any ``checkpoint.pt`` copies do as well), exports each one
with the run's tokenizer, fine-tunes it in full on SST-2 (the protocol and
the data files of ``scripts/compare_classifiers.py``) for every seed, and
trains the same architecture and tokenizer from scratch as the control
(step 0). Writes

* ``<out>/curve.md`` and ``<out>/curve.json``: one line per pretraining
  step: test accuracy mean +- std over the seeds and the gain over scratch;
* ``<out>/curve.png``: the same as a plot (mean +- std, scratch as a line).

Every fine-tuning run keeps its folder under ``<out>``; a run whose
``results.json`` exists is read, not rerun, so the script resumes.

Usage (the curve of tutorial 09: the 3000-step ``long`` row of
``scripts/nsp_ablation.py``, run with ``--save-every 250``, snapshots copied
to ``runs/ablation_quiet/long_snapshots/``)::

    python scripts/transfer_curve.py --run runs/ablation_quiet/long \
        --checkpoints runs/ablation_quiet/long_snapshots/*.pt --steps 500 1000 2000 3000 \
        --sst2-train ../shared/data/classification/SST-2/stsa.binary.train --seeds 0 1 2 \
        --out runs/transfer_curve --figure tutorials/figures/ch09_transfer_curve.png
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_compare():
    """``scripts/compare_classifiers.py`` as a module (scripts are not a package)."""
    spec = importlib.util.spec_from_file_location("compare_classifiers", ROOT / "scripts" / "compare_classifiers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def checkpoint_step(path: Path) -> int:
    """The optimizer step a ``minibert pretrain`` checkpoint was saved at."""
    from minibert.training_utils import read_checkpoint
    return int(read_checkpoint(path, "minibert pretrain checkpoint")["step"])


def export_checkpoint(checkpoint: Path, tokenizer: Path, out: Path) -> Path:
    """``minibert export --checkpoint ... --tokenizer ...`` into ``out`` (skipped when it is there)."""
    from minibert.hf import main as export_main
    if not (out / "config.json").exists():
        if out.exists():
            shutil.rmtree(out)
        code = export_main(["--checkpoint", str(checkpoint), "--out", str(out), "--tokenizer", str(tokenizer)])
        if code != 0:
            raise SystemExit(f"exporting {checkpoint} failed (exit {code})")
    return out


def build_parser() -> argparse.ArgumentParser:
    """The options of this script."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--run", required=True, help="the minibert pretrain run folder (its tokenizer/ is used)")
    p.add_argument("--checkpoints", nargs="+", required=True, help="checkpoint.pt copies saved at different steps")
    p.add_argument("--steps", nargs="+", type=int, default=None,
                   help="use only the checkpoints of these steps (default: all of them)")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"), help="folder holding classification/")
    p.add_argument("--sst2-train", default=None,
                   help="SST-2 training file (default GLUE-SST-2/train.tsv: phrases + sentences)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs (the scratch control too)")
    p.add_argument("--lr", type=float, default=5e-4, help="fine-tuning peak learning rate of the pretrained rows")
    p.add_argument("--scratch-lr", type=float, default=None, help="learning rate of scratch (default: finetune's)")
    p.add_argument("--pooling", default="pooler", choices=("pooler", "cls", "mean"))
    p.add_argument("--max-seq-len", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="runs/transfer_curve")
    p.add_argument("--figure", default=None, help="also copy the PNG here")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    compare = load_compare()
    out = Path(args.out)
    run = Path(args.run)
    by_step = {}
    for path in map(Path, args.checkpoints):
        by_step[checkpoint_step(path)] = path
    steps = sorted(by_step) if args.steps is None else args.steps
    missing = [s for s in steps if s not in by_step]
    if missing:
        raise SystemExit(f"no checkpoint for step(s) {missing}; have {sorted(by_step)}")
    exports = {s: export_checkpoint(by_step[s], run / "tokenizer", out / "exports" / f"step_{s}") for s in steps}

    data_args = argparse.Namespace(data_dir=args.data_dir, tasks=["sst2"], sst2_train=args.sst2_train,
                                   seeds=args.seeds, mr_folds=10, mr_only_folds=None)
    runs, names = compare.splits(data_args)["sst2"]
    rows = {0: ("scratch", exports[steps[0]], args.scratch_lr), **{s: ("full", exports[s], args.lr) for s in steps}}
    table = {}
    for step, (mode, init, lr) in rows.items():
        results = []
        for name, seed, train, dev, test in runs:
            folder = out / f"step_{step}" / name
            if (folder / "results.json").exists():
                results.append(json.loads((folder / "results.json").read_text(encoding="utf-8")))
                continue
            data = out / "_data" / name
            files = {k: compare.write_label_text(data / f"{k}.txt", *split, names)
                     for k, split in (("train", train), ("dev", dev), ("test", test))}
            print(f"pretraining step {step} ({mode}), {name}", flush=True)
            results.append(compare.finetune_run(files, folder, seed, str(init), mode, args.pooling, args.epochs, lr,
                                                args.max_seq_len, args.threads, None))
        accs = [100 * r["test_accuracy"] for r in results]
        table[step] = {"mode": mode, "accuracies": accs, "mean": statistics.mean(accs),
                       "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                       "train_seconds_mean": statistics.mean(r["train_seconds"] for r in results)}
    write_outputs(table, args, out)
    return 0


def write_outputs(table: dict, args, out: Path) -> None:
    """``curve.md``, ``curve.json`` and ``curve.png``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scratch = table[0]["mean"]
    command = "python scripts/transfer_curve.py " + " ".join(sys.argv[1:])
    lines = [f"SST-2 test accuracy (%) of the fine-tuned model against the pretraining steps of its initialisation; "
             f"mean ± std over seeds {args.seeds}, {args.epochs} epochs, pooling {args.pooling}, dev-selected epoch.",
             "", "| pretraining steps | mode | test accuracy | vs scratch | fine-tuning s (mean) |",
             "|---:|---|---:|---:|---:|"]
    for step, r in sorted(table.items()):
        gain = "" if step == 0 else f"{r['mean'] - scratch:+.1f}"
        lines.append(f"| {step} | {r['mode']} | {r['mean']:.1f} ± {r['std']:.1f} | {gain} | "
                     f"{r['train_seconds_mean']:.0f} |")
    lines += ["", f"Command: `{command}`"]
    out.mkdir(parents=True, exist_ok=True)
    (out / "curve.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "curve.json").write_text(json.dumps({"command": command, "rows": table}, indent=1) + "\n",
                                    encoding="utf-8")
    steps = [s for s in sorted(table) if s]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.errorbar(steps, [table[s]["mean"] for s in steps], yerr=[table[s]["std"] for s in steps], marker="o",
                capsize=3, label="pretrained, full fine-tuning")
    ax.axhline(scratch, color="grey", linestyle="--", label=f"from scratch ({scratch:.1f})")
    ax.set_xlabel("pretraining steps of the initialisation")
    ax.set_ylabel("SST-2 test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=120)
    plt.close(fig)
    if args.figure:
        shutil.copy(out / "curve.png", args.figure)
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
