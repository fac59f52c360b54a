"""``textcnn train``: train (or cross-validate) a Kim (2014) TextCNN.

Protocol (Kim's, all defaults): texts cleaned with
:func:`~minibert.classification_data.clean_text_kim`; vocabulary = every
word of the training examples (``--min-count 1``); mini-batches of 50;
Adadelta ($\\rho = 0.95$, $\\epsilon = 10^{-6}$, learning rate 1.0); 25
epochs; after every update the max-norm constraint $s = 3$ on the output
rows; the paper's narrow convolution (``--conv-padding wide`` pads every
sentence with $h-1$ zero vectors on both sides, as Kim's released code). The
epoch with the best dev accuracy is kept (the earliest on ties), and the test
metrics reported are those of that epoch. Without ``--dev``, 10% of the
training data (stratified, seeded) is held out as dev. With ``--cv K`` the
``--train`` file is split into K stratified folds; each fold is trained as
above (dev = 10% of the other K-1 folds) and tested on the fold left out;
the report is mean +- standard deviation over the folds.

Output folder (never overwritten implicitly: ``--overwrite`` starts again,
``--resume`` continues a cross-validation at its first unfinished fold):
``metrics.jsonl`` (per epoch: a ``train``, a ``dev`` and a ``test`` record),
``results.json``, ``confusion_matrix.png``, ``model.pt`` (+ ``labels.json``),
which ``textcnn predict`` loads. In ``--cv`` mode each fold has its own
``fold_XX/`` folder.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from minibert.classification_data import (ClassificationDataError, LabelMap, Split, Vocabulary,
                                          add_data_arguments, load_splits, train_all_splits)
from minibert.cli import (ArgumentParser, CLIError, dropout_probability, non_negative_float, non_negative_int,
                          positive_float, positive_int, run_command)
from minibert.metrics import BestEpoch, classification_metrics, plot_confusion_matrix
from minibert.training_utils import (MetricsLog, add_malloc_tuning_argument, apply_malloc_tuning,
                                     atomic_torch_save, pick_device, prepare_run_folder, progress_line, set_seed,
                                     write_results)
from textcnn.data import EncodedSet, bucketed_batches, tokenize
from textcnn.model import CONV_PADDINGS, MODES, TextCNN, TextCNNConfig
from textcnn.optim import Adadelta
from textcnn.predict import predict_ids
from textcnn.vectors import VectorsError, add_vector_arguments, check_vector_arguments, vectors_for

COMMAND = "textcnn train"


def save_model(path, model: TextCNN, vocab: Vocabulary, labels: LabelMap, lowercase: bool = True) -> None:
    """Write config, weights, vocabulary and label names to ``path`` atomically (``textcnn predict`` reads it)."""
    atomic_torch_save({"config": model.config.to_dict(), "state_dict": model.state_dict(),
                       "vocab": vocab.itos, "labels": labels.names, "lowercase": lowercase}, path)


def build_model_and_optimizer(args, num_words: int, num_classes: int, vectors: torch.Tensor | None,
                              device: torch.device) -> tuple[TextCNN, torch.optim.Optimizer]:
    """The TextCNN the student flags describe, and its optimizer (Kim's Adadelta, or Adam).

    Shared by ``textcnn train`` and ``textcnn distill``, so both build the same
    student from the same flags. Adadelta gets sparse embedding gradients.
    """
    config = TextCNNConfig(vocab_size=num_words, num_classes=num_classes, mode=args.mode,
                           embedding_dim=vectors.shape[1] if vectors is not None else args.embedding_dim,
                           num_filters=args.num_filters, window_sizes=tuple(args.window_sizes),
                           dropout=args.dropout, max_norm=args.max_norm, conv_padding=args.conv_padding)
    model = TextCNN(config, vectors, sparse_embedding=args.optimizer == "adadelta").to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if args.optimizer == "adadelta":
        optimizer = Adadelta(params, lr=args.lr or 1.0, rho=0.95, eps=1e-6)
    else:
        optimizer = torch.optim.Adam(params, lr=args.lr or 1e-3)
    return model, optimizer


# ---------------------------------------------------------------------------
# one training run


def fit_epochs(model: TextCNN, optimizer, train: EncodedSet, dev: EncodedSet, test: EncodedSet | None,
               vocab: Vocabulary, labels: LabelMap, args, out: Path, batch_loss, device, loss_name: str = "loss",
               tag: str = "", log=print) -> tuple[BestEpoch, list[float]]:
    """The epoch loop of ``textcnn train`` and ``textcnn distill``: train, evaluate, keep the best dev epoch.

    Each epoch runs over ``train`` in length-bucketed batches; ``batch_loss(logits, targets)`` (logits
    ``(B, C)``, ``targets`` the batch's ``EncodedSet`` labels on ``device``) returns the loss and the number
    of correct training predictions (``None`` when the targets are not labels). After each step the
    max-norm constraint is applied; after each epoch dev (and test) are scored, written to
    ``metrics.jsonl``, and the model of a new best dev epoch is saved to ``out/model.pt``.
    Returns the :class:`BestEpoch` and the seconds of each epoch.
    """
    rng = random.Random(args.seed)
    min_len = max(model.config.window_sizes)
    best, epoch_seconds, step = BestEpoch(), [], 0
    with MetricsLog(out / "metrics.jsonl") as metrics:
        for epoch in range(1, args.epochs + 1):
            model.train()
            t0 = time.perf_counter()
            total_loss, correct, seen = 0.0, 0, 0
            for ids, lengths, targets in bucketed_batches(train, args.batch_size, min_len, shuffle=True, rng=rng,
                                                          bucket=args.bucket):
                targets = targets.to(device)
                loss, right = batch_loss(model(ids.to(device), lengths.to(device)), targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                model.apply_max_norm()
                step += 1
                total_loss += loss.item() * len(targets)
                correct = None if right is None else correct + right
                seen += len(targets)
            epoch_seconds.append(time.perf_counter() - t0)
            train_fields = {"loss": total_loss / seen, **({} if correct is None else {"accuracy": correct / seen})}
            metrics.log("train", step, epoch=epoch, **train_fields, epoch_seconds=epoch_seconds[-1])
            dev_m = classification_metrics(dev.labels, predict_ids(model, dev, device), len(labels))
            metrics.log("dev", step, epoch=epoch, accuracy=dev_m["accuracy"], f1_macro=dev_m["f1_macro"])
            test_m = None
            if test is not None:
                test_m = classification_metrics(test.labels, predict_ids(model, test, device), len(labels))
                metrics.log("test", step, epoch=epoch, accuracy=test_m["accuracy"], f1_macro=test_m["f1_macro"])
            improved = best.update(epoch, dev_m, test_m)
            if improved:
                save_model(out / "model.pt", model, vocab, labels)
            fields = [f"{loss_name} {total_loss / seen:.4f}"]
            if correct is not None:
                fields.append(f"train {correct / seen:.4f}")
            fields.append(f"dev {dev_m['accuracy']:.4f}")
            if test_m:
                fields.append(f"test {test_m['accuracy']:.4f}")
            log(tag + progress_line("epoch", epoch, args.epochs, fields, rate=epoch_seconds[-1], rate_unit="s/epoch",
                                    eta_seconds=statistics.mean(epoch_seconds) * (args.epochs - epoch),
                                    mark="*" if improved else ""))
    return best, epoch_seconds


def train_run(train: EncodedSet, dev: EncodedSet, test: EncodedSet | None, vocab: Vocabulary,
              labels: LabelMap, args, out: Path, vectors: torch.Tensor | None = None,
              tag: str = "", log=print) -> dict:
    """Train one model, pick the epoch by dev accuracy, return (and write) its results."""
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(args.device)
    set_seed(args.seed)
    model, optimizer = build_model_and_optimizer(args, len(vocab), len(labels), vectors, device)
    config = model.config
    t_start = time.perf_counter()

    def batch_loss(logits, y):
        return F.cross_entropy(logits, y), (logits.argmax(-1) == y).sum().item()

    best, epoch_seconds = fit_epochs(model, optimizer, train, dev, test, vocab, labels, args, out, batch_loss,
                                     device, tag=tag, log=log)
    labels.save(out / "labels.json")
    results = {**best.results(), "seconds_per_epoch": statistics.mean(epoch_seconds),
               "num_trainable_parameters": model.num_parameters(trainable_only=True),
               "train_examples": len(train), "dev_examples": len(dev), "vocab_size": len(vocab)}
    if test is not None:
        results["test_examples"] = len(test)
        plot_confusion_matrix(best.test["confusion_matrix"], labels.names, out / "confusion_matrix.png",
                              title=f"test, epoch {best.epoch} (acc {best.test['accuracy']:.3f})")
    return write_results(out, COMMAND, results, num_parameters=model.num_parameters(),
                         train_seconds=time.perf_counter() - t_start, args=args, device=device,
                         config=config.to_dict())


# ---------------------------------------------------------------------------
# CLI


def build_parser(prog: str = COMMAND) -> argparse.ArgumentParser:
    """The command-line options of ``textcnn train``; every number is checked here, before any work."""
    p = ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    add_data_arguments(p)
    g = p.add_argument_group("model")
    g.add_argument("--mode", choices=MODES, default="rand",
                   help="embeddings: rand (U[-0.25,0.25], trained), static (pretrained, frozen), "
                        "non-static (pretrained, trained), multichannel (one frozen + one trained copy)")
    add_vector_arguments(g)
    g.add_argument("--embedding-dim", type=positive_int, default=300, help="word-vector size in rand mode")
    g.add_argument("--num-filters", type=positive_int, default=100, help="feature maps per window size")
    g.add_argument("--window-sizes", type=positive_int, nargs="+", default=[3, 4, 5], help="filter widths h")
    g.add_argument("--conv-padding", choices=CONV_PADDINGS, default="narrow",
                   help="narrow: the paper's n-h+1 windows inside the sentence; wide: h-1 zero vectors "
                        "on both sides, n+h-1 windows (as Kim's released code)")
    g.add_argument("--dropout", type=dropout_probability, default=0.5,
                   help="dropout on the pooled features (0 <= p < 1)")
    g.add_argument("--max-norm", type=positive_float, default=3.0, help="l2 max-norm s of each output row (> 0)")
    g.add_argument("--min-count", type=positive_int, default=1, help="keep training words seen at least this often")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=positive_int, default=25, help="training epochs")
    g.add_argument("--batch-size", type=positive_int, default=50, help="examples per mini-batch")
    g.add_argument("--optimizer", choices=("adadelta", "adam"), default="adadelta",
                   help="Adadelta (rho 0.95, eps 1e-6, as Kim) or Adam")
    g.add_argument("--lr", type=non_negative_float, default=0.0,
                   help="learning rate (0: 1.0 for Adadelta, 1e-3 for Adam)")
    g.add_argument("--no-bucket", dest="bucket", action="store_false",
                   help="plain random batches instead of length-sorted pools of 50 batches")
    g.add_argument("--seed", type=int, default=0, help="seed of the splits, the initialisation and the batches")
    g = p.add_argument_group("output and hardware")
    g.add_argument("--out", default="runs/textcnn", help="output folder")
    g.add_argument("--overwrite", action="store_true", help="delete everything in --out first")
    g.add_argument("--resume", action="store_true",
                   help="with --cv: continue the cross-validation in --out at its first fold without results.json")
    g.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, mps, cuda, cuda:N")
    g.add_argument("--threads", type=non_negative_int, default=0, help="CPU threads for torch (0: torch's default)")
    add_malloc_tuning_argument(g)
    return p


def check_arguments(args) -> None:
    """The checks between options (each number alone is checked by the parser)."""
    check_vector_arguments(args)
    if args.resume and not args.cv:
        raise CLIError("--resume continues a --cv run at its first unfinished fold; a single run keeps no "
                       "checkpoint to resume, so start it again with --overwrite")
    pick_device(args.device)


def run(args, log=print) -> dict:
    """Train as described by parsed ``args``; returns the summary written to ``results.json``."""
    check_arguments(args)
    prepare_run_folder(args.out, args.resume, args.overwrite, create=False)   # refuse before any work
    if args.threads:
        torch.set_num_threads(args.threads)
    apply_malloc_tuning(args.malloc_tuning, log)
    labels, splits = load_splits(args, prepare=tokenize, log=log)
    out = prepare_run_folder(args.out, args.resume, args.overwrite)

    def train_split(split: Split, folder: Path) -> dict:
        # in cross-validation the vocabulary is built from the fold's train + dev words
        vocab = Vocabulary.build(split.train_texts + (split.dev_texts if split.number else []), args.min_count)
        test = EncodedSet(split.test_texts, split.test_labels, vocab) if split.test_texts is not None else None
        if not split.number:
            log(f"vocabulary: {len(vocab)} words (min count {args.min_count}); train {len(split.train_labels)}, "
                f"dev {len(split.dev_labels)}" + (f", test {len(test)}" if test else ""))
        vectors = vectors_for(args, vocab, log)
        run_args = argparse.Namespace(**{**vars(args), "seed": split.seed})
        return train_run(EncodedSet(split.train_texts, split.train_labels, vocab),
                         EncodedSet(split.dev_texts, split.dev_labels, vocab), test, vocab, labels, run_args,
                         prepare_run_folder(folder, overwrite=True) if split.number else folder, vectors,
                         tag=f"{split.name} " if split.name else "", log=log)

    return train_all_splits(args, labels, splits, out, train_split, COMMAND, log=log, summary_extra=lambda folds: {
        "seconds_per_epoch": statistics.mean(r["seconds_per_epoch"] for r in folds)})


def _interrupted(args) -> str:
    out = Path(args.out).absolute()
    if args.cv:
        return (f"interrupted; the finished folds are kept in {out}: rerun the same command with --resume "
                f"to continue at the first unfinished fold")
    return f"interrupted; {out} holds an unfinished run: rerun the same command with --overwrite to start again"


def main(argv: list[str] | None = None, prog: str = COMMAND) -> int:
    """Entry point of ``textcnn train``."""
    return run_command(prog, build_parser(prog), lambda args: run(args, log=lambda s: print(s, flush=True)),
                       argv, known_errors=(ClassificationDataError, VectorsError), on_interrupt=_interrupted)


if __name__ == "__main__":
    sys.exit(main())

