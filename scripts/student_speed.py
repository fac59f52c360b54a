r"""CPU inference speed of finished distilled students against their teachers: eager, folded, side by side.

``textcnn distill`` measures its student and teacher once, at the end of its
run. This script measures finished runs again, all in one process and under
the same conditions: for every run folder, the student as trained
(``model.pt``), the same student folded into per-word tables
(:mod:`textcnn.folded`) and the teacher named in the run's ``results.json``,
one after the other on the first ``--sentences`` sentences of the run's test
file (raw text in, probabilities out, tokenisation included), at batch 1 and
64, ``--repeats`` times; each sentences/s figure is the median of the repeats
(and each speed-up the ratio of two medians). It also
checks that the folded student's probabilities equal the student's.

Writes ``<out>/speed.md`` (a table) and ``<out>/speed.json``.

Usage (tutorial 10's speed table)::

    python scripts/student_speed.py runs/compare_glue/sst2/kd-real-augl/seed_* \
        runs/compare_glue/sst2/kd-real-augl-mc/seed_* --threads 1 --out runs/student_speed
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from minibert.classification_data import read_examples  # noqa: E402
from minibert.classify import load_classifier  # noqa: E402
from minibert.training_utils import hardware_string  # noqa: E402
from textcnn.distill import measure_throughput  # noqa: E402
from textcnn.predict import TextCNNClassifier  # noqa: E402

SPEEDS = ("student_sentences_per_second", "folded_student_sentences_per_second", "teacher_sentences_per_second")


def measure_run(run: Path, sentences: int, repeats: int) -> dict:
    """Median over ``repeats`` of :func:`textcnn.distill.measure_throughput` for one ``textcnn distill`` folder."""
    results = json.loads((run / "results.json").read_text(encoding="utf-8"))
    if results.get("command") != "textcnn distill":
        raise SystemExit(f"{run} is not a textcnn distill run (its results.json says {results.get('command')!r})")
    args = results["args"]
    texts, _ = read_examples(args["test"] or args["dev"])
    texts = texts[:sentences]
    student = TextCNNClassifier.load(run)
    teacher = load_classifier(args["teacher"], device="cpu")
    teacher.model.eval()
    draws = [measure_throughput(student, teacher, texts) for _ in range(repeats)]
    out = {"run": str(run), "mode": student.model.config.mode, "sentences": len(texts),
           "num_parameters": student.model.num_parameters(),
           "folded_max_abs_diff": max(d["folded_max_abs_diff"] for d in draws)}
    for b in ("batch_1", "batch_64"):
        f = {k: statistics.median(d[b][k] for d in draws) for k in SPEEDS}
        f["speedup"] = f["student_sentences_per_second"] / f["teacher_sentences_per_second"]
        f["folded_speedup"] = f["folded_student_sentences_per_second"] / f["teacher_sentences_per_second"]
        out[b] = f
    return out


def table(rows: list[dict], threads: int) -> str:
    """The Markdown table of ``speed.md``."""
    lines = [f"CPU sentences/s (raw text in, probabilities out), {threads} torch thread(s), median of the repeats; "
             f"{hardware_string(torch.device('cpu'))}.", "",
             "| run | student | batch | student | folded student | teacher | student / teacher | "
             "folded / teacher | max abs diff of the probabilities |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        for b in ("batch_1", "batch_64"):
            f = r[b]
            lines.append(f"| {r['run']} | {r['mode']} | {b.split('_')[1]} | {f['student_sentences_per_second']:,.0f} | "
                         f"{f['folded_student_sentences_per_second']:,.0f} | {f['teacher_sentences_per_second']:,.0f} | "
                         f"{f['speedup']:.0f}x | {f['folded_speedup']:.0f}x | {r['folded_max_abs_diff']:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("runs", nargs="+", help="textcnn distill output folders")
    p.add_argument("--sentences", type=int, default=256, help="first N sentences of each run's test file")
    p.add_argument("--repeats", type=int, default=3, help="measurements per run (the median is reported)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--out", default="runs/student_speed")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for run in map(Path, args.runs):
        rows.append(measure_run(run, args.sentences, args.repeats))
        b64 = rows[-1]["batch_64"]
        print(f"{run}: batch 64 student {b64['speedup']:.1f}x, folded {b64['folded_speedup']:.1f}x the teacher",
              flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = table(rows, args.threads)
    (out / "speed.md").write_text(text + f"\nCommand: `python scripts/student_speed.py {' '.join(sys.argv[1:])}`\n",
                                  encoding="utf-8")
    (out / "speed.json").write_text(json.dumps({"command": sys.argv, "threads": args.threads, "rows": rows},
                                               indent=1) + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
