r"""The distillation table (issue 12, tutorial 10): TextCNN rows, BERT teachers, distilled students.

Rows (``--rows``):

* ``textcnn-rand``: Kim's CNN-rand (``textcnn train``, as in
  ``scripts/compare_classifiers.py``);
* ``textcnn-static-bert``, ``textcnn-non-static-bert``,
  ``textcnn-multichannel-bert``: TextCNN with word vectors made from a
  BERT's input embeddings (mean over each word's sub-words,
  :func:`textcnn.vectors.vectors_from_bert`; BERT = ``--vectors-bert``,
  default ``--real``), written as a word2vec text file for ``textcnn train``;
* ``teacher-real``, ``teacher-tiny``: the teachers, ``minibert finetune
  --mode full`` from ``--real`` (e.g. all-MiniLM-L6-v2) and from ``--tiny``
  (our pretrained mini-BERT), one per seed / fold, trained by
  ``scripts/compare_classifiers.py``'s runner (rows ``real-full`` and
  ``tiny-full``, same folders);
* ``kd-real``, ``mse-real``, ``kd-real-aug``, ``mse-real-aug`` (and the same
  with ``tiny``): ``textcnn distill`` from that teacher, with ``--loss kd`` or
  ``mse``, without or with ``--augment N`` (``--augment``);
* ``kd-real-augl``, ``mse-real-augl`` (and ``tiny``): augmented from the long
  examples only, ``--augl-copies`` new sentences for each training example
  of at least ``--augl-min-words`` words (``textcnn distill
  --augment-min-words``). On GLUE's SST-2, nine examples in ten are short
  phrases the treebank already labels; this spends the teacher's passes on
  sentence-length text, where the test sentences are;
* ``kd-real-mc``, ``mse-real-mc`` (and ``-aug-mc``, and the same with
  ``tiny``): the same students in TextCNN's multichannel mode with the
  BERT-derived vectors of ``textcnn-multichannel-bert`` — distillation and
  pretrained vectors together; compare them with that row, not only with
  TextCNN-rand, to see what the teacher adds to the vectors. Every student of
  one teacher and transfer set reuses the teacher logits cached by the first.

Protocols as ``compare_classifiers.py``: SST-2 trains on ``--sst2-train``
(default GLUE ``train.tsv``), selects on ``stsa.binary.dev``, tests on
``stsa.binary.test``, mean +- std over ``--seeds``; MR is ``--mr-folds``-fold
cross-validation of ``rt-polarity.all`` (the teacher of fold $f$ is trained
on fold $f$'s training part only). A run whose ``results.json`` exists is
read, not rerun (refused if it trained for other epochs). Give the same
``--out`` as ``compare_classifiers.py`` to share its runs: its ``real-full``
and ``tiny-full`` runs are the teachers, its ``textcnn`` run is the
TextCNN-rand row. ``--real-teacher RUN`` uses one existing ``minibert
finetune`` run as the real teacher of every SST-2 seed (a reduced table).
The table goes to ``--out/distill_table.md`` and ``--out/distill_table.json`` (rows of other tasks and
rows an earlier invocation wrote there are kept; this invocation's replace theirs): accuracy,
macro F1, parameters, CPU sentences/s at batch 64 (student and teacher,
measured side by side by ``textcnn distill``), train seconds per run, and each row's paired difference
from TextCNN-rand (and a multichannel student's from the multichannel model without a teacher): the mean,
sample std and minimum over the seeds / folds both rows ran of (row's accuracy − baseline's), same test sentences.

Full protocol (many hours on a 2-core CPU)::

    python scripts/compare_distillation.py --real runs/minilm/model --tiny runs/tiny --augment 20

``--lanes N`` runs N runs at a time, each a child process of this script with ``--threads`` threads (two
one-thread lanes use a 2-core CPU best): a student starts once its teacher (and the sibling student whose
cached teacher logits it reuses) has finished, the dependants of a failed run are skipped and named at the end,
finished runs are not started again (an interrupted run's folder, files but no results.json, is named and
left alone: delete it to run it again), each run logs to ``--out/lanes/``; the table is written once all are
done.
``--figure PATH`` also draws the table (every run as a dot, mean +- std per row, TextCNN-rand's mean as a line).

Reduced (SST-2 sentences, 3 seeds; about 1.5 hours of one CPU thread after
the teachers of ``compare_classifiers.py --rows textcnn real-full tiny-full``
with the same ``--out``; tutorial 10)::

    python scripts/compare_distillation.py --real runs/minilm/model --tiny runs/tiny --tasks sst2 \
        --sst2-train ../shared/data/classification/SST-2/stsa.binary.train --seeds 0 1 2 \
        --epochs 10 --augment 4 --aug-epochs 5 --real-full-epochs 2 --threads 1 --out runs/compare_reduced
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))   # scripts/ is not a package: import compare_classifiers from it

import compare_classifiers as cc  # noqa: E402

from minibert.classification_data import Vocabulary  # noqa: E402
from minibert.textio import atomic_write_text  # noqa: E402
from textcnn.data import tokenize  # noqa: E402

TEACHERS = ("real", "tiny")
# transfer sets: none; "-aug": --augment new sentences per training example; "-augl": --augl-copies per
# training example of at least --augl-min-words words (the long ones: GLUE's SST-2 is mostly short phrases)
AUGMENTS = ("", "-aug", "-augl")
AUGMENT_WHAT = {"": "", "-aug": ", augmented", "-augl": ", augmented from the long examples"}
TABLE = "distill_table"  # not table.*: --out may be compare_classifiers.py's folder, whose runs are shared
ROWS = (["textcnn-rand", "textcnn-static-bert", "textcnn-non-static-bert", "textcnn-multichannel-bert"]
        + [f"teacher-{t}" for t in TEACHERS]
        + [f"{loss}-{t}{aug}{mc}" for mc in ("", "-mc") for t in TEACHERS for aug in AUGMENTS
           for loss in ("kd", "mse")])
LABELS = {"textcnn-rand": "TextCNN-rand", "textcnn-static-bert": "TextCNN static, BERT-derived vectors",
          "textcnn-non-static-bert": "TextCNN non-static, BERT-derived vectors",
          "textcnn-multichannel-bert": "TextCNN multichannel, BERT-derived vectors",
          "teacher-real": "teacher: MiniLM-L6 fine-tuned", "teacher-tiny": "teacher: our `tiny` fine-tuned"}
for _t, _name in (("real", "MiniLM-L6"), ("tiny", "our `tiny`")):
    for _loss in ("kd", "mse"):
        for _aug, _what in AUGMENT_WHAT.items():
            LABELS[f"{_loss}-{_t}{_aug}"] = f"TextCNN distilled from {_name}, {_loss}{_what}"
            LABELS[f"{_loss}-{_t}{_aug}-mc"] = (f"TextCNN multichannel, BERT-derived vectors, distilled from {_name}, "
                                                f"{_loss}{_what}")


def bert_vectors_file(bert: str, train_texts, path: Path) -> str:
    """Write the BERT-derived vectors of the training vocabulary as a word2vec text file (for ``textcnn train``)."""
    from textcnn.vectors import vectors_from_bert

    if path.is_file():
        return str(path)
    vocab = Vocabulary.build(tokenize(train_texts))
    loaded = vectors_from_bert(bert, vocab)
    words = vocab.itos[2:]  # <pad>, <unk> are the model's own rows
    lines = [f"{len(words)} {loaded.weight.shape[1]}"]
    lines += [w + " " + " ".join(f"{v:.7g}" for v in loaded.weight[i].tolist()) for i, w in enumerate(words, 2)]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text("\n".join(lines) + "\n", path)  # a parallel run never reads half a file
    return str(path)


def textcnn_run(files: dict, out: Path, seed: int, args, mode: str = "rand", vectors: str | None = None) -> dict:
    """``textcnn train`` with Kim's defaults except ``--epochs``."""
    from textcnn import train as textcnn_train

    argv = ["--train", files["train"], "--dev", files["dev"], "--test", files["test"], "--epochs", str(args.epochs),
            "--seed", str(seed), "--out", str(out), "--threads", str(args.threads), "--device", "cpu",
            "--mode", mode]
    if vectors:
        argv += ["--vectors", vectors]
    return textcnn_train.run(textcnn_train.build_parser().parse_args(argv), log=lambda s: print("  " + s, flush=True))


def transfer_settings(row: str, args) -> tuple[str, int, int, int]:
    """``(suffix, --augment, --augment-min-words, --epochs)`` of a student row (suffix: one of :data:`AUGMENTS`)."""
    flags = row.split("-")[2:]
    if "augl" in flags:
        return "-augl", args.augl_copies, args.augl_min_words, args.augl_epochs or args.epochs
    if "aug" in flags:
        return "-aug", args.augment, 1, args.aug_epochs or args.epochs
    return "", 0, 1, args.epochs


def distill_run(files: dict, out: Path, seed: int, teacher: Path, loss: str, row: str, reuse: Path | None,
                args, vectors: str | None = None) -> dict:
    """``textcnn distill`` from ``teacher`` of a TextCNN-rand student, or of a multichannel one given ``vectors``."""
    from textcnn import distill

    _, augment, min_words, epochs = transfer_settings(row, args)
    argv = ["--teacher", str(teacher), "--train", files["train"], "--dev", files["dev"], "--test", files["test"],
            "--loss", loss, "--temperature", str(args.temperature), "--augment", str(augment),
            "--augment-min-words", str(min_words),
            "--epochs", str(epochs), "--seed", str(seed), "--out", str(out), "--threads", str(args.threads),
            "--device", "cpu", "--throughput-sentences", str(args.throughput_sentences)]
    if vectors:
        argv += ["--mode", "multichannel", "--vectors", vectors]
    if reuse is not None and (reuse / distill.TRANSFER_FILE).is_file():
        argv += ["--reuse-teacher-logits", str(reuse)]
    return distill.run(distill.build_parser().parse_args(argv), log=lambda s: print("  " + s, flush=True))


def teacher_folder(task: str, name: str, model: str, args) -> Path:
    if model == "real" and args.real_teacher and task == "sst2":
        return Path(args.real_teacher)
    return Path(args.out) / task / f"{model}-full" / name


def row_folder(row: str) -> str:
    """The run folder of ``row``: TextCNN-rand is ``compare_classifiers.py``'s ``textcnn`` row (the same run)."""
    return "textcnn" if row == "textcnn-rand" else row


def read_existing(out: Path, row: str, args) -> dict | None:
    """The ``results.json`` of an earlier run of ``row`` in ``out``, refused if it trained for other epochs."""
    path = out / "results.json"
    if not path.exists():
        return None
    result = json.loads(path.read_text(encoding="utf-8"))
    student = row.startswith(("kd-", "mse-"))
    _, augment, min_words, wanted = transfer_settings(row, args) if student else ("", 0, 1, args.epochs)
    ran = result.get("args", {})
    if row.startswith(("textcnn-", "kd-", "mse-")) and ran.get("epochs", wanted) != wanted:
        raise SystemExit(f"{path} was trained for {ran['epochs']} epochs, this table asks for {wanted}: "
                         f"give another --out or the same --epochs / --aug-epochs / --augl-epochs")
    if student:
        if (ran.get("augment", augment), ran.get("augment_min_words", 1)) != (augment, min_words):
            raise SystemExit(f"{path} was distilled with --augment {ran.get('augment')} --augment-min-words "
                             f"{ran.get('augment_min_words', 1)}, this table asks for {augment} / {min_words}: "
                             f"give another --out or the same transfer-set options")
    return result


def run_row(row: str, task: str, name: str, seed: int, train, dev, test, names, args, caches) -> dict:
    out = Path(args.out) / task / row_folder(row) / name
    existing = read_existing(out, row, args)
    if existing is not None:
        return existing
    if row.startswith("teacher-"):
        model = row.split("-")[1]
        folder = teacher_folder(task, name, model, args)
        if (folder / "results.json").exists():
            return json.loads((folder / "results.json").read_text(encoding="utf-8"))
        return cc.run_row(f"{model}-full", task, name, seed, train, dev, test, names, args, caches)
    cc.refuse_unfinished(out)
    print(f"[{time.strftime('%H:%M:%S')}] {task} {row} {name}: train {len(train[1])}", flush=True)
    data = Path(args.out) / task / "_data" / name
    files = {k: cc.write_label_text(data / f"{k}.txt", *split, names)
             for k, split in (("train", train), ("dev", dev), ("test", test))}
    if row == "textcnn-rand":
        return textcnn_run(files, out, seed, args)
    if row.startswith("textcnn-"):
        mode = row[len("textcnn-"):-len("-bert")]
        return textcnn_run(files, out, seed, args, mode=mode, vectors=row_vectors(row, train, data, args))
    loss, model, *flags = row.split("-")
    suffix = transfer_settings(row, args)[0]
    vectors = row_vectors(row, train, data, args) if "mc" in flags else None
    run_row(f"teacher-{model}", task, name, seed, train, dev, test, names, args, caches)
    teacher = teacher_folder(task, name, model, args)
    # the teacher's logits on a transfer set do not depend on the student: a student reuses those cached by
    # the first student of the same teacher and transfer set (same seed and augmentation) that has finished
    others = [Path(args.out) / task / f"{other}-{model}{suffix}{mc}" / name
              for mc in ("", "-mc") for other in ("kd", "mse")]
    reuse = next((o for o in others if o != out and (o / "results.json").is_file()), None)
    return distill_run(files, out, seed, teacher, loss, row, reuse, args, vectors)


def row_vectors(row: str, train, data: Path, args) -> str:
    """The BERT-derived vectors file of a ``textcnn-*-bert`` or ``*-mc`` row (written once per split)."""
    bert = args.vectors_bert or args.real
    if not bert:
        raise SystemExit(f"row {row} needs --vectors-bert PATH (or --real)")
    return bert_vectors_file(bert, train[0], data / "bert_vectors.txt")


def summarise(results: list[dict]) -> dict:
    """Mean +- std of accuracy, macro F1, sizes and speeds over seeds / folds."""
    s = cc.summarise(results)
    s["num_parameters"] = results[0].get("num_parameters")
    speeds = [r["throughput"]["batch_64"] for r in results if "throughput" in r]
    if speeds:
        s["student_sentences_per_second_b64"] = statistics.mean(x["student_sentences_per_second"] for x in speeds)
        s["teacher_sentences_per_second_b64"] = statistics.mean(x["teacher_sentences_per_second"] for x in speeds)
        s["speedup_b64"] = statistics.mean(x["speedup"] for x in speeds)
        s["teacher_num_parameters"] = results[0].get("teacher_num_parameters")
    return s


def paired_difference(row: dict, base: dict) -> dict | None:
    """Accuracy of ``row`` minus ``base`` on the runs both have (same seed / same fold: the same test sentences).

    Each summary lists its runs' names (``runs``) beside their ``accuracies``; with d_i the difference on run i,
    returns n, mean(d), sample std(d) and min(d), or None when fewer than two runs are shared (or a summary was
    written before runs were named)."""
    if "runs" not in row or "runs" not in base:
        return None
    theirs = dict(zip(base["runs"], base["accuracies"]))
    d = [acc - theirs[name] for name, acc in zip(row["runs"], row["accuracies"]) if name in theirs]
    if len(d) < 2:
        return None
    return {"n": len(d), "mean": statistics.mean(d), "std": statistics.stdev(d), "min": min(d)}


def paired_baselines(row: str) -> list[str]:
    """The rows ``row`` is compared with, paired: TextCNN-rand, and for a multichannel student also the same
    multichannel model trained without a teacher (what the teacher adds to the vectors)."""
    bases = [] if row == "textcnn-rand" else ["textcnn-rand"]
    if row.endswith("-mc"):
        bases.append("textcnn-multichannel-bert")
    return bases


def paired_text(p: dict | None) -> str:
    return "–" if p is None else f"{p['mean']:+.1f} ± {p['std']:.1f} (n={p['n']}, min {p['min']:+.1f})"


def write_table(table: dict, args) -> None:
    """``--out/distill_table.json`` and ``.md``: this invocation's rows merged into what is already there.

    Besides each row's mean +- std, the paired differences of :func:`paired_baselines` (``paired`` in the JSON,
    the last column of the Markdown)."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table, settings = cc.merged_table(table, args, out / (TABLE + ".json"))
    for rows in table.values():
        for row, s in rows.items():
            s["paired"] = {base: paired_difference(s, rows[base]) for base in paired_baselines(row) if base in rows}
    atomic_write_text(json.dumps({"table": table, "args_by_task": settings}, indent=1) + "\n",
                      out / (TABLE + ".json"))
    lines = []
    for task, rows in table.items():
        lines += [f"**{task}**", "",
                  "| model | accuracy % | macro F1 % | parameters | CPU sentences/s, batch 64 (student / teacher) "
                  "| train s / run | paired difference (accuracy points) |", "|---|---|---|---|---|---|---|"]
        for row in ROWS:
            s = rows.get(row)
            if not s:
                continue
            speed = (f"{s['student_sentences_per_second_b64']:,.0f} / {s['teacher_sentences_per_second_b64']:,.0f} "
                     f"({s['speedup_b64']:.0f}x)" if "speedup_b64" in s else "–")
            params = f"{s['num_parameters']:,}" if s.get("num_parameters") else "–"
            paired = "; ".join(f"vs {LABELS[base].split(',')[0]}: {paired_text(p)}"
                               for base, p in s.get("paired", {}).items() if p is not None) or "–"
            lines.append(f"| {LABELS[row]} | {s['accuracy_mean']:.1f} ± {s['accuracy_std']:.1f} (n={s['n']}) | "
                         f"{s['f1_macro_mean']:.1f} | {params} | {speed} | {s['train_seconds_mean']:.0f} | {paired} |")
        lines.append("")
    atomic_write_text("\n".join(lines), out / (TABLE + ".md"))


def plot_table(table: dict, path: Path) -> None:
    """Draw ``table`` (``{task: {row: summary}}``), one panel per task: each row's runs (seeds or folds) as dots
    and their mean +- std as a diamond with whiskers, rows in :data:`ROWS` order; TextCNN rows blue, teachers
    grey, students of MiniLM green and of our `tiny` orange; a dashed line at TextCNN-rand's mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in table if table[t]]
    sizes = [len(table[t]) for t in tasks]
    fig, axes = plt.subplots(len(tasks), 1, figsize=(11, 0.32 * sum(sizes) + 1.4 * len(tasks)), squeeze=False,
                             gridspec_kw={"height_ratios": sizes})
    for ax, task in zip(axes[:, 0], tasks):
        rows = [r for r in ROWS if r in table[task]][::-1]       # the table's first row at the top
        for y, row in enumerate(rows):
            s = table[task][row]
            color = ("0.45" if row.startswith("teacher-") else "tab:blue" if row.startswith("textcnn-")
                     else "tab:green" if "-real" in row else "tab:orange")
            runs = s.get("accuracies") or []
            ax.plot(runs, [y] * len(runs), ".", color=color, alpha=0.45, ms=6)
            ax.errorbar(s["accuracy_mean"], y, xerr=s["accuracy_std"], fmt="D", color=color, ms=6, capsize=3)
            ax.annotate(f"{s['accuracy_mean']:.1f} ± {s['accuracy_std']:.1f} (n={s['n']})",
                        (max(runs + [s["accuracy_mean"] + s["accuracy_std"]]), y), xytext=(6, 0),
                        textcoords="offset points", va="center", fontsize=8)
        if "textcnn-rand" in table[task]:
            ax.axvline(table[task]["textcnn-rand"]["accuracy_mean"], ls="--", color="tab:blue", lw=1)
        values = [a for s in table[task].values() for a in (s.get("accuracies") or [s["accuracy_mean"]])]
        span = max(values) - min(values) + 1.0
        ax.set_xlim(min(values) - 0.05 * span, max(values) + 0.3 * span)   # room for the labels on the right
        ax.set_yticks(range(len(rows)), [textwrap.fill(LABELS[r], 52) for r in rows], fontsize=8)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.grid(axis="x", alpha=0.3)
        what = {"sst2": "SST-2, dots: seeds", "mr": "MR, dots: folds"}.get(task, task)
        ax.set_title(f"{what}; diamond and whiskers: mean ± std; dashed: TextCNN-rand's mean", fontsize=10)
        ax.set_xlabel("test accuracy %", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def lane_jobs(args) -> list[dict]:
    """The table's runs as jobs for ``--lanes``: one per (task, row, seed or fold), each with the jobs it waits for.

    A student waits for its teacher's job (added when ``--rows`` does not name the teacher: two students must not
    both train it) and for the first earlier student of the same teacher and transfer set, whose cached teacher
    logits it then reuses instead of recomputing them. ``argv`` selects the job's run in a child invocation of this
    script; ``result`` is the ``results.json`` whose existence means the job is done.
    """
    runs = {"sst2": [(cc.run_name("sst2", s), ["--seeds", str(s)]) for s in args.seeds],
            "mr": [(cc.run_name("mr", f), ["--mr-only-folds", str(f)])
                   for f in (args.mr_only_folds or range(1, args.mr_folds + 1))]}
    rows = list(args.rows)
    for row in args.rows:                     # the teachers first, so that they start first
        if row.startswith(("kd-", "mse-")) and f"teacher-{row.split('-')[1]}" not in rows:
            rows.insert(0, f"teacher-{row.split('-')[1]}")
    jobs = []
    for task in args.tasks:
        for name, select in runs[task]:
            first_student: dict = {}
            for row in rows:
                deps = []
                if row.startswith(("kd-", "mse-")):
                    model = row.split("-")[1]
                    deps.append(f"{task}/teacher-{model}/{name}")
                    key = (model, transfer_settings(row, args)[0])
                    if key in first_student:
                        deps.append(first_student[key])
                    else:
                        first_student[key] = f"{task}/{row}/{name}"
                if row.startswith("teacher-"):
                    result = teacher_folder(task, name, row.split("-")[1], args) / "results.json"
                else:
                    result = Path(args.out) / task / row_folder(row) / name / "results.json"
                jobs.append({"id": f"{task}/{row}/{name}", "deps": deps, "result": result,
                             "argv": ["--tasks", task, "--rows", row, *select]})
    return jobs


def run_lanes(jobs: list[dict], lanes: int, launch, log=print, poll: float = 2.0) -> dict:
    """Run ``jobs`` (:func:`lane_jobs`) ``lanes`` at a time, each once all its ``deps`` have finished.

    ``launch(job)`` starts a job and returns its ``subprocess.Popen``; a job whose ``result`` exists is done
    without being started. A failed job's dependants are skipped, the other jobs still run. Returns
    ``{id: "done" | "failed (exit N)" | "skipped"}``.
    """
    status = {j["id"]: "done" for j in jobs if j["result"].is_file()}
    pending = [j for j in jobs if j["id"] not in status]
    running: dict[str, tuple] = {}
    total, start = len(jobs), time.time()
    while pending or running:
        for job in list(pending):
            if any(status.get(d, "").startswith(("failed", "skipped")) for d in job["deps"]):
                status[job["id"]] = "skipped"
                pending.remove(job)
                log(f"[{time.strftime('%H:%M:%S')}] skipped {job['id']}: a job it needs failed")
        for job in list(pending):
            if len(running) >= lanes:
                break
            if all(status.get(d) == "done" for d in job["deps"]):
                pending.remove(job)
                running[job["id"]] = (launch(job), time.time())
                log(f"[{time.strftime('%H:%M:%S')}] started {job['id']} ({len(status)}/{total} finished, "
                    f"{len(running)} running)")
        finished = [(i, code, t) for i, (p, t) in running.items() if (code := p.poll()) is not None]
        for job_id, code, started in finished:
            del running[job_id]
            status[job_id] = "done" if code == 0 else f"failed (exit {code})"
            log(f"[{time.strftime('%H:%M:%S')}] {status[job_id]}: {job_id} in {time.time() - started:.0f} s "
                f"({len(status)}/{total} finished, {(time.time() - start) / 60:.0f} min so far)")
        if running and not finished:
            time.sleep(poll)
        elif not running and pending and not finished:   # nothing can start: a dependency is missing
            for job in pending:
                status[job["id"]] = "skipped"
            pending = []
    return status


def launch_child(job: dict, argv: list[str], out: Path):
    """Start this script on one job's run (``--lanes 1``), its output in ``--out/lanes/<task>_<row>_<run>.log``."""
    import subprocess

    logs = out / "lanes"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / (job["id"].replace("/", "_") + ".log"), "w", encoding="utf-8") as f:
        return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *argv, "--lanes", "1",
                                 *job["argv"]], stdout=f, stderr=subprocess.STDOUT)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--real-teacher", help="an existing `minibert finetune` run used as the real teacher of every "
                                          "SST-2 seed (reduced table)")
    p.add_argument("--vectors-bert", help="the BERT of the *-bert rows (default: --real)")
    cc.add_protocol_arguments(p, ROWS)
    p.add_argument("--epochs", type=int, default=25, help="TextCNN epochs (trained and distilled rows)")
    p.add_argument("--augment", type=int, default=20, help="new sentences per training sentence in the -aug rows")
    p.add_argument("--aug-epochs", type=int, default=0,
                   help="epochs of the -aug rows (their epochs are 1 + --augment times longer); 0 = --epochs")
    p.add_argument("--augl-copies", type=int, default=6,
                   help="new sentences per long training example in the -augl rows")
    p.add_argument("--augl-min-words", type=int, default=10,
                   help="the -augl rows augment only training examples of at least this many words")
    p.add_argument("--augl-epochs", type=int, default=0, help="epochs of the -augl rows; 0 = --epochs")
    p.add_argument("--temperature", type=float, default=4.0, help="temperature of the kd rows")
    p.add_argument("--throughput-sentences", type=int, default=256)
    cc.add_model_arguments(p)   # the teacher rows use compare_classifiers' runner and its settings
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="device of the teacher fine-tuning runs (auto, cuda, mps, cpu)")
    p.add_argument("--out", default="runs/compare_distill")
    p.add_argument("--figure", help="also draw the table (every task in --out/distill_table.json) to this PNG")
    p.add_argument("--lanes", type=int, default=1,
                   help="runs at a time, each a child process with --threads threads (lanes x threads <= cores); "
                        "a student starts once its teacher has finished; logs in --out/lanes/")
    args = p.parse_args(argv)
    if args.lanes < 1:
        p.error(f"--lanes must be at least 1, got {args.lanes}")
    args.textcnn_epochs = args.epochs          # for cc.run_row
    if args.lanes > 1:
        status = run_lanes(lane_jobs(args), args.lanes,
                           lambda job: launch_child(job, list(sys.argv[1:] if argv is None else argv), Path(args.out)))
        bad = {i: s for i, s in status.items() if s != "done"}
        if bad:
            print(f"{len(bad)} of {len(status)} runs did not finish (logs in {Path(args.out) / 'lanes'}):", flush=True)
            for job_id, what in bad.items():
                print(f"  {job_id}: {what}", flush=True)
            return 1
    args.table_only = False                    # cc.run_row then trains a missing teacher instead of skipping it
    caches: dict = {}
    table: dict = {}
    for task, (runs, names) in cc.splits(args).items():
        for row in args.rows:
            results = [run_row(row, task, name, seed, train, dev, test, names, args, caches)
                       for name, seed, train, dev, test in runs]
            table.setdefault(task, {})[row] = summarise(results)
            table[task][row]["runs"] = [name for name, *_ in runs]   # pairs rows run by run
            s = table[task][row]
            print(f"== {task} {row}: {s['accuracy_mean']:.1f} ± {s['accuracy_std']:.1f} (n={s['n']})", flush=True)
            write_table(table, args)
    if args.figure:
        saved = json.loads((Path(args.out) / (TABLE + ".json")).read_text(encoding="utf-8"))["table"]
        plot_table({task: rows for task, rows in saved.items() if task in args.tasks}, Path(args.figure))
        print(f"figure: {args.figure}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
