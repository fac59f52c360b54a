r"""What makes next-sentence prediction learnable for the tiny BERT? Run the ablation rows and tabulate them.

Each row is one ``minibert pretrain`` run on WikiText-2 (train on
``wiki.valid.raw``, evaluate on the first 1,600 fixed pairs of
``wiki.test.raw``, as in the README) that changes one thing with respect to
the default command. The script runs the rows one after the other (a row
whose folder already holds ``results.json`` is reused, unless ``--force``),
then writes

* ``<out>/table.md``: one line per row with valid NSP accuracy (final and
  best), the train NSP accuracy over the last 10% of the steps, valid MLM
  accuracy, its margin over the most-frequent-piece baseline of the same
  tokenizer (``scripts/unigram_baseline.py``), steps and training seconds;
* ``<out>/nsp_curves.png``: valid NSP accuracy against the step, one line per row.

Usage::

    python scripts/nsp_ablation.py --data-dir ../shared/data --out runs/nsp_ablation               # every row
    python scripts/nsp_ablation.py --data-dir ../shared/data --rows default,static --steps 300    # a quick look
    python scripts/nsp_ablation.py --data-dir ../shared/data --list                               # the rows

``--steps`` sets the step budget of the rows that do not fix their own
(``long`` runs ``--long-factor`` times as many). ``--figure PATH`` also copies
the PNG there (tutorial 07 uses ``tutorials/figures/ch07_nsp_ablation.png``).
``--train FILE --valid FILE`` replace WikiText-2 valid/test (the article curve
of tutorial 07 runs a row on corpora of 23, 46 and 92 articles this way).
``--also DIR ...`` adds the rows of earlier ``--out`` folders (their
``rows.json``) to the table and the figure, for rows run at another time.
Training seconds depend on what else runs on the machine; the table says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: name -> (what the row changes, extra ``minibert pretrain`` arguments). ``{long}`` is the long budget.
ROWS = {
    "default": ("the default: dynamic NSP pairs, lr 2e-3, 100 warm-up steps", []),
    "static": ("NSP pairs cut once and reused every epoch (the old pipeline)", ["--static-pairs"]),
    "lr-1e-3": ("peak learning rate 1e-3", ["--lr", "1e-3"]),
    "lr-4e-3": ("peak learning rate 4e-3", ["--lr", "4e-3"]),
    "warmup-30pct": ("warm-up over 30% of the steps (default: 100 steps)", ["--warmup-steps", "{warmup30}"]),
    "head-lr-x10": ("pooler and NSP head at 10x the learning rate", ["--head-lr-scale", "10"]),
    "nsp-weight-5": ("NSP loss weighted 5x: L = L_mlm + 5 L_nsp", ["--pair-loss-weight", "5"]),
    "nsp-only": ("NSP alone, no MLM loss: L = L_nsp (a diagnostic)", ["--mlm-loss-weight", "0"]),
    "nsp-only-lr-5e-4": ("NSP alone at peak learning rate 5e-4", ["--mlm-loss-weight", "0", "--lr", "5e-4"]),
    "nsp-only-lr-2e-4": ("NSP alone at peak learning rate 2e-4", ["--mlm-loss-weight", "0", "--lr", "2e-4"]),
    "lr-5e-4": ("peak learning rate 5e-4", ["--lr", "5e-4"]),
    "no-dropout": ("dropout 0 (hidden and attention)",
                   ["--set", "hidden_dropout_prob=0", "--set", "attention_probs_dropout_prob=0"]),
    "nsp-weight-5-no-dropout": ("NSP loss weighted 5x and dropout 0",
                                ["--pair-loss-weight", "5", "--set", "hidden_dropout_prob=0",
                                 "--set", "attention_probs_dropout_prob=0"]),
    "wwm": ("whole-word masking", ["--whole-word-mask"]),
    "sop": ("ALBERT's sentence-order prediction instead of NSP", ["--pair-objective", "sop"]),
    "mini": ("the mini preset (4 layers x 256) with the default's 8000 pieces (wiki.valid.raw is too small "
             "for mini's 16000), at tiny's peak learning rate 2e-3", ["--preset", "mini", "--vocab-size", "8000", "--lr", "2e-3"]),
    "mini-lr-5e-4": ("the mini preset with 8000 pieces at peak learning rate 5e-4 (at 2e-3 it does not train)",
                     ["--preset", "mini", "--vocab-size", "8000", "--lr", "5e-4"]),
    "long": ("the default, {long} steps", ["--max-steps", "{long}"]),
    "mimetic": ("mimetic attention initialisation (Trockman & Kolter 2023)", ["--attention-init", "mimetic"]),
    "mimetic-lr-1e-3": ("mimetic attention initialisation at peak learning rate 1e-3",
                        ["--attention-init", "mimetic", "--lr", "1e-3"]),
    "mimetic-nsp-only": ("NSP alone from mimetic attention at peak learning rate 1e-3 (a diagnostic)",
                         ["--attention-init", "mimetic", "--mlm-loss-weight", "0", "--lr", "1e-3"]),
}


def load_unigram_baseline():
    """``scripts/unigram_baseline.py``'s ``baseline(run)`` (scripts are not a package)."""
    spec = importlib.util.spec_from_file_location("unigram_baseline", ROOT / "scripts" / "unigram_baseline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.baseline


def row_command(name: str, train: Path, valid: Path, out: Path, steps: int, long_factor: int,
                eval_every: int) -> list[str]:
    """The ``python -m minibert.pretrain`` command of one row."""
    values = {"long": str(steps * long_factor), "warmup30": str(max(1, 3 * steps // 10))}
    extra = [a.format(**values) for a in ROWS[name][1]]
    budget = [] if "--max-steps" in extra else ["--max-steps", str(steps)]
    return [sys.executable, "-m", "minibert.pretrain", "--train", str(train), "--valid", str(valid),
            "--out", str(out / name), "--eval-every", str(eval_every), "--save-every", "100000",
            *budget, *extra]


def summarise(name: str, folder: Path, baseline) -> dict:
    """The numbers of one finished row, read from its ``metrics.jsonl``/``results.json``."""
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    valid = [r for r in records if r["split"] == "valid"]
    train = [r for r in records if r["split"] == "train"]
    tail = [r for r in train if r["step"] > 0.9 * results["steps"]]
    base = baseline(folder)
    top = base["most_frequent_token_accuracy"]
    return {
        "row": name, "changes": ROWS[name][0].format(long=results["steps"]), "steps": results["steps"],
        "valid_nsp_accuracy": results["valid_nsp_accuracy"],
        "best_valid_nsp_accuracy": max(r["nsp_accuracy"] for r in valid),
        "train_nsp_accuracy_last_10pct": sum(r.get("nsp_accuracy", float("nan")) for r in tail) / max(len(tail), 1),
        "nsp_majority_accuracy": base["nsp_majority_accuracy"],
        "valid_mlm_accuracy": results["valid_mlm_accuracy"], "most_frequent_piece_accuracy": top,
        "mlm_margin_points": 100 * (results["valid_mlm_accuracy"] - top),
        "train_seconds": results["train_seconds"], "tokens_per_second": results["tokens_per_second"],
        "curve": [(r["step"], r["nsp_accuracy"]) for r in valid],
    }


def markdown_table(rows: list[dict]) -> str:
    """The ablation as a Markdown table (accuracies in %)."""
    lines = ["| row | changes | steps | valid NSP acc (final / best) | majority label | train NSP acc (last 10%) "
             "| valid MLM acc | MLM margin over most frequent piece | train s* |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| `{r['row']}` | {r['changes']} | {r['steps']} | {100 * r['valid_nsp_accuracy']:.1f} / "
                     f"{100 * r['best_valid_nsp_accuracy']:.1f} | {100 * r['nsp_majority_accuracy']:.1f} | "
                     f"{100 * r['train_nsp_accuracy_last_10pct']:.1f} | "
                     f"{100 * r['valid_mlm_accuracy']:.2f} | {r['mlm_margin_points']:+.2f} pts | "
                     f"{r['train_seconds']:.0f} |")
    lines.append("")
    lines.append("\\* seconds of training steps, measured while other jobs shared the 2 CPU cores: "
                 "compare them with care.")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Valid NSP accuracy against the step, one line per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for r in rows:
        steps, accuracy = zip(*r["curve"])
        same_name = sum(other["row"] == r["row"] for other in rows) > 1
        ax.plot(steps, accuracy, marker="o", markersize=3,
                label=f"{r['row']} ({r['steps']} steps)" if same_name else r["row"])
    ax.axhline(0.65, color="grey", linestyle="--", linewidth=1, label="target 0.65")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("valid NSP accuracy (1,600 pairs of wiki.test.raw)")
    ax.set_title("tiny BERT on WikiText-2 valid: what makes NSP learnable")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nsp_ablation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("MINIBERT_DATA_DIR"),
                        help="folder holding wikitext-2-raw/ (default: $MINIBERT_DATA_DIR)")
    parser.add_argument("--train", default=None,
                        help="another training corpus instead of WikiText-2 valid (with --valid; e.g. the nested "
                             "article corpora of scripts/article_subsets.py)")
    parser.add_argument("--valid", default=None, help="the evaluation corpus that goes with --train")
    parser.add_argument("--out", default="runs/nsp_ablation", help="folder of the rows' runs and the table")
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows to run (default: all)")
    parser.add_argument("--steps", type=int, default=1000, help="step budget of the rows (default: 1000)")
    parser.add_argument("--long-factor", type=int, default=3, help="the long row runs this x --steps (default: 3)")
    parser.add_argument("--eval-every", type=int, default=100, help="valid evaluation every N steps (default: 100)")
    parser.add_argument("--force", action="store_true", help="rerun rows that already have results.json")
    parser.add_argument("--figure", default=None, help="also copy the PNG to this path")
    parser.add_argument("--list", action="store_true", help="print the rows and exit")
    parser.add_argument("--also", nargs="+", type=Path, default=[],
                        help="earlier ablation --out folders whose rows (their rows.json) join the table and the "
                             "figure, for rows run at another time; a row of --out wins over one of the same name "
                             "and step budget")
    args = parser.parse_args(argv)
    if args.list:
        for name, (what, extra) in ROWS.items():
            print(f"{name:14s} {what}: {' '.join(extra)}")
        return 0
    names = [n.strip() for n in args.rows.split(",") if n.strip()]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}; --list shows the rows.")
    if args.train or args.valid:
        if not (args.train and args.valid):
            parser.error("give --train and --valid together (or neither, for WikiText-2 from --data-dir).")
        train, valid = Path(args.train), Path(args.valid)
        if not (train.is_file() and valid.is_file()):
            parser.error(f"no such file: {train if not train.is_file() else valid}.")
    else:
        if not args.data_dir:
            parser.error("give --data-dir (the folder holding wikitext-2-raw/) or set MINIBERT_DATA_DIR.")
        folder = Path(args.data_dir) / "wikitext-2-raw"
        train, valid = folder / "wiki.valid.raw", folder / "wiki.test.raw"
        if not (train.is_file() and valid.is_file()):
            parser.error(f"{folder} lacks wiki.valid.raw or wiki.test.raw.")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (out / name / "results.json").is_file() and not args.force:
            print(f"{name}: reusing {out / name}", flush=True)
            continue
        command = row_command(name, train, valid, out, args.steps, args.long_factor, args.eval_every)
        print(f"{name}: {' '.join(command[1:])}", flush=True)
        with open(out / f"{name}.log", "w", encoding="utf-8") as log:
            code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        if code != 0:
            print(f"{name}: failed with exit code {code}; see {out / (name + '.log')}", flush=True)
            return 1
    baseline = load_unigram_baseline()
    rows = [summarise(n, out / n, baseline) for n in names if (out / n / "results.json").is_file()]
    for earlier in args.also:   # a row run again with another step budget is another row
        have = {(r["row"], r["steps"]) for r in rows}
        rows += [r for r in json.loads((earlier / "rows.json").read_text(encoding="utf-8"))
                 if (r["row"], r["steps"]) not in have]
    rows.sort(key=lambda r: (list(ROWS).index(r["row"]), r["steps"]))
    (out / "table.md").write_text(markdown_table(rows), encoding="utf-8")
    (out / "rows.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    plot(rows, out / "nsp_curves.png")
    if args.figure:
        shutil.copy(out / "nsp_curves.png", args.figure)
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
