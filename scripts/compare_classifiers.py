r"""The comparison table of sentence classifiers on SST-2 and MR (issue 11, tutorial 09).

Rows: majority class; bag-of-words logistic regression; TextCNN-rand; our
BERTs (``--tiny`` and ``--mini``: ``minibert pretrain`` runs of those presets)
trained from scratch, probed (pooler / cls / mean) and fine-tuned; a real
pretrained checkpoint (``--real``, e.g. all-MiniLM-L6-v2) probed and fine-tuned.

Protocols: SST-2 -- train on ``--sst2-train`` (default GLUE ``train.tsv``,
phrases + sentences), select the epoch on ``stsa.binary.dev``, test on
``stsa.binary.test``; mean +- std over ``--seeds``. MR -- ``--mr-folds``-fold
cross-validation of ``rt-polarity.all`` (one seed per fold, dev = 10% of the
training folds). Every run writes its folder under ``--out``; a run whose
``results.json`` exists is read, not rerun, so the script resumes and a
reduced table can be extended later. The table goes to ``--out/table.md``
and ``--out/table.json``; rows and tasks that other invocations wrote there
are kept (this invocation's rows replace theirs), so two lanes or the SST-2
and MR halves sharing ``--out`` end in one table.

Full protocol (hours on a 2-core CPU)::

    python scripts/compare_classifiers.py --real /path/to/all-MiniLM-L6-v2 --tiny runs/tiny

A reduced one (what fits in minutes), e.g.::

    python scripts/compare_classifiers.py --real ... --tiny runs/tiny --tasks sst2 \
        --sst2-train ../shared/data/classification/SST-2/stsa.binary.train --seeds 0 \
        --rows majority bow real-probe-mean real-full --real-full-epochs 2

Nothing in the library depends on the real checkpoint: its path is an argument.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import torch

from minibert import finetune
from minibert.classification_data import (LabelMap, Vocabulary, clean_text_kim, dev_split,
                                          read_examples, stratified_kfold)
from minibert.metrics import classification_metrics
from minibert.textio import atomic_write_text

#: The BERTs of the table: the command-line flag of each is ``--<name>``, its name in the table the value.
MODELS = {"tiny": "our `tiny`", "mini": "our `mini`", "real": "MiniLM-L6"}
ROWS = ["majority", "bow", "textcnn",
        *(f"{m}-{mode}" for m in ("tiny", "mini") for mode in ("scratch", "probe-pooler", "probe-cls", "probe-mean",
                                                                "full")),
        "real-probe-pooler", "real-probe-cls", "real-probe-mean", "real-full"]
LABELS = {"majority": "majority class", "bow": "bag-of-words logistic regression", "textcnn": "TextCNN-rand (Kim 2014)",
          **{f"{m}-{mode}": f"{name}, {what}" for m, name in MODELS.items()
             for mode, what in (("scratch", "from scratch"), ("probe-pooler", "probe (pooler)"),
                                ("probe-cls", "probe ([CLS])"), ("probe-mean", "probe (mean)"),
                                ("full", "full fine-tuning"))
             if f"{m}-{mode}" in ROWS}}


# ----------------------------------------------------------------------------
# the two baselines without a neural encoder


def majority_run(train, dev, test, out: Path) -> dict:
    """Predict the most frequent training label for everything."""
    t0 = time.perf_counter()
    counts = torch.bincount(torch.tensor(train[1]))
    k = int(counts.argmax())
    m = classification_metrics(test[1], [k] * len(test[1]), len(counts))
    return _results(m, 1, 0, 0, time.perf_counter() - t0, out)


def bow_run(train, dev, test, out: Path, seed: int, epochs: int = 30, lr: float = 0.02,
            weight_decay: float = 1e-4) -> dict:
    r"""Logistic regression on binary bag-of-words features of Kim-cleaned tokens.

    $p(y \mid x) = \mathrm{softmax}(W^\top \phi(x) + b)$ with $\phi(x) \in \{0,1\}^V$
    (word present), trained with Adam on the softmax cross-entropy plus
    ``weight_decay`` $\cdot \|W\|^2$; the epoch with the best dev accuracy is kept.
    ``EmbeddingBag(mode="sum")`` computes $W^\top \phi(x)$ without the dense (N, V) matrix.
    """
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    tok = lambda texts: [sorted(set(clean_text_kim(t).split())) or ["<unk>"] for t in texts]  # noqa: E731
    vocab = Vocabulary.build(tok(train[0]))
    K = max(train[1]) + 1

    def encode(texts):
        ids = [vocab.encode(x) for x in tok(texts)]
        offsets = torch.tensor([0] + [len(x) for x in ids[:-1]]).cumsum(0)
        return torch.tensor([i for x in ids for i in x]), offsets

    bag = torch.nn.EmbeddingBag(len(vocab), K, mode="sum")
    torch.nn.init.zeros_(bag.weight)
    bias = torch.nn.Parameter(torch.zeros(K))
    opt = torch.optim.Adam([bag.weight, bias], lr=lr)
    x_dev, x_test = encode(dev[0]), encode(test[0])
    train_ids = [vocab.encode(x) for x in tok(train[0])]
    y = torch.tensor(train[1])
    best = (-1.0, None, 0)
    n = len(y)
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n)
        for start in range(0, n, 256):
            idx = perm[start:start + 256].tolist()
            flat = torch.tensor([i for j in idx for i in train_ids[j]])
            offsets = torch.tensor([0] + [len(train_ids[j]) for j in idx[:-1]]).cumsum(0)
            logits = bag(flat, offsets) + bias
            loss = torch.nn.functional.cross_entropy(logits, y[idx]) + weight_decay * bag.weight.pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            dev_acc = ((bag(*x_dev) + bias).argmax(-1) == torch.tensor(dev[1])).double().mean().item()
            if dev_acc > best[0]:
                best = (dev_acc, (bag(*x_test) + bias).argmax(-1).tolist(), epoch)
    m = classification_metrics(test[1], best[1], K)
    return _results(m, best[2], len(vocab) * K + K, len(vocab) * K + K, time.perf_counter() - t0, out)


def _results(m: dict, best_epoch: int, n_params: int, n_trainable: int, seconds: float, out: Path) -> dict:
    results = {"test_accuracy": m["accuracy"], "test_precision_macro": m["precision_macro"],
               "test_recall_macro": m["recall_macro"], "test_f1_macro": m["f1_macro"],
               "test_confusion_matrix": m["confusion_matrix"], "best_epoch": best_epoch,
               "num_parameters": n_params, "num_trainable_parameters": n_trainable, "train_seconds": seconds}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return results


# ----------------------------------------------------------------------------
# the neural rows: textcnn train and minibert finetune, in this process


def textcnn_run(files: dict, out: Path, seed: int, epochs: int, threads: int) -> dict:
    """``textcnn train`` (CNN-rand, Kim's defaults except ``epochs``) on prepared label-text files."""
    from textcnn import train as textcnn_train

    args = textcnn_train.build_parser().parse_args(
        ["--train", files["train"], "--dev", files["dev"], "--test", files["test"], "--epochs", str(epochs),
         "--seed", str(seed), "--out", str(out), "--threads", str(threads), "--device", "cpu"])
    return textcnn_train.run(args, log=lambda s: print("  " + s, flush=True))


def finetune_run(files: dict, out: Path, seed: int, init: str, mode: str, pooling: str, epochs, lr,
                 max_seq_len: int, threads: int, cache, device: str = "cpu") -> dict:
    """``minibert finetune`` on prepared label-text files."""
    argv = ["--init", init, "--mode", mode, "--pooling", pooling, "--train", files["train"],
            "--dev", files["dev"], "--test", files["test"], "--seed", str(seed), "--out", str(out),
            "--max-seq-len", str(max_seq_len), "--threads", str(threads), "--device", device, "--log-every", "100"]
    if epochs:
        argv += ["--epochs", str(epochs)]
    if lr:
        argv += ["--lr", str(lr)]
    args = finetune.build_parser().parse_args(argv)
    return finetune.run(args, log=lambda s: print("  " + s, flush=True), cache=cache)


# ----------------------------------------------------------------------------
# tasks


def write_label_text(path: Path, texts, labels, names) -> str:
    """Write ``<label> <text>`` lines (the neural commands read files).

    Written to a temporary name and renamed, so two invocations sharing ``--out`` (one per core) never read a
    half-written file of the other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text("".join(f"{names[y]} {' '.join(t.split())}\n" for t, y in zip(texts, labels)), path)
    return str(path)


def run_name(task: str, number: int) -> str:
    """The folder name of one run of a table: ``seed_<s>`` for SST-2, ``fold_<ff>`` (1-based) for MR."""
    return f"seed_{number}" if task == "sst2" else f"fold_{number:02d}"


def splits(args) -> dict:
    """``{task: [(name, seed, train, dev, test), ...]}`` with ``(texts, label_ids)`` triples."""
    data = Path(args.data_dir) / "classification"
    out = {}
    if "sst2" in args.tasks:
        texts, raw = read_examples(args.sst2_train or data / "GLUE-SST-2" / "train.tsv")
        labels = LabelMap.from_labels(raw)
        train = (texts, labels.encode(raw))
        dev_t, dev_r = read_examples(data / "SST-2" / "stsa.binary.dev")
        test_t, test_r = read_examples(data / "SST-2" / "stsa.binary.test")
        dev, test = (dev_t, labels.encode(dev_r)), (test_t, labels.encode(test_r))
        out["sst2"] = ([(run_name("sst2", s), s, train, dev, test) for s in args.seeds], labels.names)
    if "mr" in args.tasks:
        texts, raw = read_examples(data / "MR" / "rt-polarity.all")
        labels = LabelMap.from_labels(raw)
        y = labels.encode(raw)
        runs = []
        for f, (train_idx, test_idx) in enumerate(stratified_kfold(y, args.mr_folds, seed=0), start=1):
            if args.mr_only_folds and f not in args.mr_only_folds:
                continue
            tr, dv = dev_split([y[i] for i in train_idx], 0.1, seed=f)
            sub = lambda idx: ([texts[i] for i in idx], [y[i] for i in idx])  # noqa: E731
            runs.append((run_name("mr", f), f, sub([train_idx[i] for i in tr]), sub([train_idx[i] for i in dv]),
                         sub(test_idx)))
        out["mr"] = (runs, labels.names)
    return out


def refuse_unfinished(out: Path) -> None:
    """Stop with one sentence when ``out`` holds files but no ``results.json``: a run that was interrupted, or
    that another process is running right now. The table never deletes it (that could be the other process's
    run); the user does, and the next invocation runs it again."""
    if out.is_dir() and any(out.iterdir()) and not (out / "results.json").exists():
        raise SystemExit(f"{out} holds an unfinished run (no results.json): if no other process is running it, "
                         f"it was interrupted; delete that folder and run the table again to redo it")


def run_row(row: str, task: str, name: str, seed: int, train, dev, test, names, args, caches) -> dict:
    out = Path(args.out) / task / row / name
    if (out / "results.json").exists():
        return json.loads((out / "results.json").read_text(encoding="utf-8"))
    if args.table_only:
        return None
    refuse_unfinished(out)
    print(f"[{time.strftime('%H:%M:%S')}] {task} {row} {name}: train {len(train[1])}, dev {len(dev[1])}, "
          f"test {len(test[1])}", flush=True)
    if row == "majority":
        return majority_run(train, dev, test, out)
    if row == "bow":
        return bow_run(train, dev, test, out, seed)
    data = Path(args.out) / task / "_data" / name
    files = {k: write_label_text(data / f"{k}.txt", *split, names)
             for k, split in (("train", train), ("dev", dev), ("test", test))}
    if row == "textcnn":
        return textcnn_run(files, out, seed, args.textcnn_epochs, args.threads)
    model, _, rest = row.partition("-")
    init = {"tiny": args.tiny, "mini": args.mini, "real": args.real}[model]
    if not init:
        raise SystemExit(f"row {row} needs --{model} PATH")
    mode, _, pooling = rest.partition("-")
    pooling = pooling or {"tiny": args.tiny_pooling, "mini": args.mini_pooling, "real": args.real_pooling}[model]
    epochs = {"tiny-full": args.tiny_full_epochs, "tiny-scratch": args.scratch_epochs,
              "mini-full": args.mini_full_epochs, "mini-scratch": args.mini_scratch_epochs,
              "real-full": args.real_full_epochs}.get(row, args.probe_epochs)
    lr = {"tiny-full": args.tiny_full_lr, "mini-full": args.mini_full_lr, "real-full": args.real_full_lr}.get(row)
    cache = caches.setdefault((model, task), finetune.FeatureCache())
    return finetune_run(files, out, seed, init, mode, pooling, epochs, lr, args.max_seq_len, args.threads, cache,
                        args.device)


def summarise(results: list[dict]) -> dict:
    accs = [100 * r["test_accuracy"] for r in results]
    f1s = [100 * r["test_f1_macro"] for r in results]
    return {"n": len(accs), "accuracy_mean": statistics.mean(accs),
            "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "f1_macro_mean": statistics.mean(f1s), "accuracies": accs,
            "train_seconds_mean": statistics.mean(r["train_seconds"] for r in results),
            "num_trainable_parameters": results[0].get("num_trainable_parameters"),
            "tokens_per_second": [r.get("tokens_per_second") for r in results]}


def add_protocol_arguments(p: argparse.ArgumentParser, rows) -> None:
    """The data and protocol flags every comparison script shares (data folder, tasks, rows, seeds, folds)."""
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"), help="folder holding classification/")
    p.add_argument("--tasks", nargs="+", choices=("sst2", "mr"), default=["sst2", "mr"])
    p.add_argument("--rows", nargs="+", choices=rows, default=list(rows))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="SST-2 seeds")
    p.add_argument("--sst2-train", help="SST-2 training file (default GLUE-SST-2/train.tsv: phrases + sentences)")
    p.add_argument("--mr-folds", type=int, default=10)
    p.add_argument("--mr-only-folds", nargs="+", type=int, help="run only these MR folds (1-based)")


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The BERTs of the table and how each is fine-tuned (shared with ``compare_distillation.py``'s teachers)."""
    p.add_argument("--real", help="a real pretrained BERT folder (e.g. all-MiniLM-L6-v2, sentence-transformers layout)")
    p.add_argument("--tiny", help="our pretrained `tiny`: a `minibert pretrain` run folder or its export/")
    p.add_argument("--mini", help="our pretrained `mini`: a `minibert pretrain --preset mini` run folder or its export/")
    p.add_argument("--max-seq-len", type=int, default=64, help="BERT ids per sentence (SST-2/MR sentences fit)")
    p.add_argument("--probe-epochs", type=int, default=30, help="epochs of every probe row")
    p.add_argument("--scratch-epochs", type=int, default=10, help="epochs of the tiny-scratch row")
    p.add_argument("--tiny-full-epochs", type=int, default=10)
    p.add_argument("--tiny-full-lr", type=float, default=5e-4)
    p.add_argument("--mini-scratch-epochs", type=int, default=3)
    p.add_argument("--mini-full-epochs", type=int, default=3)
    p.add_argument("--mini-full-lr", type=float, default=2e-4)
    p.add_argument("--real-full-epochs", type=int, default=3)
    p.add_argument("--real-full-lr", type=float, default=5e-5)
    p.add_argument("--tiny-pooling", default="pooler", help="pooling of the tiny scratch/full rows")
    p.add_argument("--mini-pooling", default="pooler", help="pooling of the mini scratch/full rows")
    p.add_argument("--real-pooling", default="mean", help="pooling of the real full row (MiniLM was trained mean-pooled)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(p)
    add_protocol_arguments(p, ROWS)
    p.add_argument("--textcnn-epochs", type=int, default=25)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="device of the BERT rows (auto, cuda, mps, cpu)")
    p.add_argument("--out", default="runs/compare")
    p.add_argument("--table-only", action="store_true",
                   help="train nothing: write the table from the runs that have results (n says how many)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)   # also for the baselines, which run in this process
    caches: dict = {}
    table = {}
    for task, (runs, names) in splits(args).items():
        for row in args.rows:
            results = [run_row(row, task, name, seed, train, dev, test, names, args, caches)
                       for name, seed, train, dev, test in runs]
            results = [r for r in results if r is not None]
            if not results:
                continue
            table.setdefault(task, {})[row] = summarise(results)
            s = table[task][row]
            print(f"== {task} {row}: {s['accuracy_mean']:.1f} ± {s['accuracy_std']:.1f} (n={s['n']}), "
                  f"{s['train_seconds_mean']:.0f} s per run", flush=True)
            write_table(table, args)
    return 0


def merged_table(table: dict, args, path: Path) -> tuple[dict, dict]:
    """``table`` over the one an earlier invocation wrote to ``path``: its other tasks and rows are kept.

    The SST-2 and MR halves (and two lanes of one table) are separate invocations sharing ``--out``; each adds
    its rows instead of erasing the other's. A kept row was summarised from the same ``--out`` folders.
    Used for ``table.json`` here and ``distill_table.json`` by ``compare_distillation.py``.
    Returns the table and, per task, the arguments of the invocation that last wrote it.
    """
    old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    merged = {task: dict(rows) for task, rows in old.get("table", {}).items()}
    settings = dict(old.get("args_by_task", {}))
    for task, rows in table.items():
        merged.setdefault(task, {}).update(rows)
        settings[task] = vars(args)
    order = [task for task in ("sst2", "mr") if task in merged]
    return {task: merged[task] for task in order}, {task: settings[task] for task in order if task in settings}


def write_table(table: dict, args) -> None:
    """``--out/table.json`` and ``.md``: this invocation's rows merged into what is already there."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table, settings = merged_table(table, args, out / "table.json")
    atomic_write_text(json.dumps({"table": table, "args_by_task": settings}, indent=1) + "\n", out / "table.json")
    names = {"sst2": "SST-2", "mr": "MR"}
    lines = ["| model | trained parameters | " + " | ".join(f"{names[t]} accuracy % | {names[t]} train s/run"
                                                          for t in table) + " |",
             "|---|---|" + "---|---|" * len(table)]
    rows = [r for r in ROWS if any(r in table[t] for t in table)]
    for row in rows:
        cells = []
        for t in table:
            s = table[t].get(row)
            mean = (f"{s['accuracy_mean']:.1f} ± {s['accuracy_std']:.1f}" if s["n"] > 1
                    else f"{s['accuracy_mean']:.1f}") if s else ""
            cells += ([f"{mean} (n={s['n']})",
                       f"{s['train_seconds_mean']:.0f}"] if s else ["–", "–"])
        n_params = next(table[t][row]["num_trainable_parameters"] for t in table if row in table[t])
        lines.append(f"| {LABELS[row]} | {n_params:,} | " + " | ".join(cells) + " |")
    atomic_write_text("\n".join(lines) + "\n", out / "table.md")


if __name__ == "__main__":
    sys.exit(main())
