"""``textcnn distill``: train a TextCNN student on the soft targets of a fine-tuned BERT teacher.

    textcnn distill --teacher runs/ft_sst2 --train stsa.binary.train --dev stsa.binary.dev \\
        --test stsa.binary.test --loss kd --temperature 4 --augment 10 --out runs/distill

The pipeline (Hinton et al. 2015; Tang et al. 2019), top to bottom:

1. read the data exactly as ``textcnn train`` does (Kim's cleaning, the
   vocabulary of the training sentences, a dev split when there is no
   ``--dev``);
2. build the **transfer set**: the training sentences plus ``--augment N``
   new sentences per training sentence (:mod:`textcnn.augment`: masking,
   word swaps, n-grams; no rule reads a label), or per training sentence of
   at least ``--augment-min-words M`` words;
3. run the **teacher** (a ``minibert finetune`` run folder) once over the
   transfer set, in eval mode and without gradients, and cache its logits in
   ``<out>/transfer_set.pt`` (a rerun with the same teacher and transfer set
   reuses them);
4. train the student with ``--loss``: ``kd`` ($T^2$ KL between the softened
   distributions), ``kd+ce`` (Hinton's $\\alpha$-weighted sum with the gold
   label's cross-entropy; augmented sentences have no gold label and add only
   the soft term) or ``mse`` (Tang's squared logit distance), with Kim's
   optimiser, max-norm and dev-selected epoch, as ``textcnn train``;
5. report the student's test metrics, the teacher's, both parameter counts
   and the CPU inference speed of both, measured side by side in this
   process (sentences per second from raw text, batch 1 and batch 64), the
   student also folded into per-word tables (:mod:`textcnn.folded`).

Output folder: ``metrics.jsonl``, ``results.json`` (``textcnn train``'s
keys plus ``teacher_*``, ``throughput`` and ``speedup_*``),
``confusion_matrix.png``, ``model.pt`` (``textcnn predict`` loads it) and
``transfer_set.pt`` (the student's tokens, the teacher's texts and logits).
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import time
from pathlib import Path

import torch

from minibert.classification_data import (ClassificationDataError, LabelMap, Vocabulary, add_data_arguments,
                                          load_splits)
from minibert.classify import ClassifierError
from minibert.cli import (ArgumentParser, CLIError, dropout_probability, non_negative_float, non_negative_int,
                          positive_float, positive_int, run_command)
from minibert.metrics import classification_metrics, plot_confusion_matrix
from minibert.model import IGNORE_INDEX, LAST_LAYER_CHOICES
from minibert.training_utils import (add_malloc_tuning_argument, apply_malloc_tuning, atomic_torch_save,
                                     pick_device, prepare_run_folder, set_seed, write_results)
from textcnn.augment import augment, teacher_text
from textcnn.kd import LOSSES, student_loss
from textcnn.model import CONV_PADDINGS, MODES
from textcnn.predict import TextCNNClassifier
from textcnn.data import EncodedSet, tokenize
from textcnn.train import build_model_and_optimizer, fit_epochs
from textcnn.vectors import VectorsError, add_vector_arguments, vectors_for

TRANSFER_FILE = "transfer_set.pt"  # the transfer set and the teacher's logits on it, cached with the run


# ---------------------------------------------------------------------------
# the teacher


def load_teacher(path, labels: LabelMap, last_layer: str = "all"):
    """The fine-tuned BERT of a ``minibert finetune`` run, in eval mode, with classes in ``labels``' order.

    ``last_layer="read"``: its last encoder layer runs only at [CLS] (see
    :func:`minibert.classify.load_classifier`). Returns ``(classifier,
    column_order)``: column ``j`` of the student's classes is column
    ``column_order[j]`` of the teacher's logits.
    """
    from minibert.classify import load_classifier

    try:
        classifier = load_classifier(path, device="cpu", last_layer=last_layer)
    except (ClassifierError, FileNotFoundError) as exc:
        raise CLIError(f"--teacher {path}: {exc}") from None
    classifier.model.eval()
    for p in classifier.model.parameters():
        p.requires_grad_(False)
    names = list(classifier.labels.names)
    if sorted(names) != sorted(labels.names):
        raise CLIError(f"--teacher {path} was fine-tuned on the labels {names} but the data has "
                       f"{labels.names}; distil on the teacher's task")
    return classifier, [names.index(name) for name in labels.names]


@torch.no_grad()
def teacher_logits(classifier, texts: list[str], column_order: list[int], batch_size: int = 64) -> torch.Tensor:
    """The teacher's logits ``(N, C)`` for ``texts`` (eval mode, no gradients), columns in the student's order."""
    from minibert.classify import predict_logits

    was_training = classifier.model.training
    classifier.model.eval()
    logits = predict_logits(classifier, texts, batch_size=batch_size)
    classifier.model.train(was_training)
    return logits.float()[:, column_order].contiguous()


def num_teacher_parameters(classifier) -> int:
    """Parameters of the teacher's network."""
    return sum(p.numel() for p in classifier.model.parameters())


# ---------------------------------------------------------------------------
# the transfer set


def build_transfer_set(tokens: list[list[str]], texts: list[str], labels: list[int], args,
                       mask_token: str) -> dict:
    """The training sentences plus ``args.augment`` new ones per sentence.

    Returns a dict of parallel lists: ``tokens`` (what the student reads),
    ``teacher_texts`` (what the teacher reads: the original text for a
    training sentence, the words with ``[MASK]`` for a new one),
    ``labels`` (the gold label, or ``IGNORE_INDEX`` for a new sentence) and
    ``source`` (index of the training sentence it came from). Only ``tokens``
    enter :func:`textcnn.augment.augment`.
    """
    new = augment(tokens, args.augment, seed=args.seed, p_mask=args.p_mask, p_swap=args.p_swap,
                  p_ngram=args.p_ngram, min_words=args.augment_min_words) if args.augment else []
    return {
        "tokens": list(tokens) + [t for _, t in new],
        "teacher_texts": list(texts) + [teacher_text(t, mask_token) for _, t in new],
        "labels": list(labels) + [IGNORE_INDEX] * len(new),
        "source": list(range(len(tokens))) + [i for i, _ in new],
    }


def _fingerprint(teacher: str, teacher_texts: list[str]) -> str:
    """sha256 of the teacher's folder, its weight files' sizes and times, and every transfer-set text."""
    from minibert.classify import model_folder

    folder = model_folder(teacher).resolve()
    digest = hashlib.sha256(str(folder).encode())
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        stat = weights.stat()
        digest.update(f"{weights.name} {stat.st_size} {stat.st_mtime_ns}".encode())
    for text in teacher_texts:
        digest.update(b"\0" + text.encode("utf-8"))
    return digest.hexdigest()


def cached_teacher_logits(out: Path, classifier, transfer: dict, column_order: list[int], teacher: str,
                          batch_size: int, reuse: str | None = None, log=print) -> torch.Tensor:
    """The teacher's logits on the transfer set, computed once and saved to ``out/transfer_set.pt``.

    ``reuse``: the folder of an earlier ``textcnn distill`` run whose
    ``transfer_set.pt`` holds the logits of the same teacher on the very same
    texts (checked by a fingerprint); then nothing is recomputed (e.g. ``kd``
    and ``mse`` students of one teacher and transfer set).
    """
    key = _fingerprint(teacher, transfer["teacher_texts"])
    logits = None
    if reuse:
        cache = Path(reuse) / TRANSFER_FILE
        if not cache.is_file():
            raise CLIError(f"--reuse-teacher-logits {reuse} has no {TRANSFER_FILE}; give the --out of an "
                           f"earlier textcnn distill run")
        cached = torch.load(cache, map_location="cpu", weights_only=True)
        if cached.get("fingerprint") != key:
            raise CLIError(f"--reuse-teacher-logits {cache} holds another teacher's logits or another transfer "
                           f"set (teacher, data, --augment, --augment-min-words, --seed and --p-* must be the same); "
                           f"drop the option")
        logits = cached["teacher_logits"]
        log(f"teacher: logits of {len(logits)} transfer sentences read from {cache}")
    else:
        t0 = time.perf_counter()
        logits = teacher_logits(classifier, transfer["teacher_texts"], column_order, batch_size)
        log(f"teacher: logits of {len(logits)} transfer sentences in {time.perf_counter() - t0:.1f} s")
    atomic_torch_save({"fingerprint": key, "teacher": str(teacher), "teacher_logits": logits,
                       "tokens": transfer["tokens"], "teacher_texts": transfer["teacher_texts"],
                       "labels": torch.tensor(transfer["labels"]), "source": torch.tensor(transfer["source"])},
                      out / TRANSFER_FILE)
    return logits


# ---------------------------------------------------------------------------
# inference speed


def sentences_per_second(predict, sentences: list[str], batch_size: int, repeats: int = 1) -> float:
    """Sentences per second of ``predict(list_of_texts)`` over ``sentences`` in batches (after one warm-up batch)."""
    predict(sentences[:batch_size])
    t0 = time.perf_counter()
    for _ in range(repeats):
        for start in range(0, len(sentences), batch_size):
            predict(sentences[start:start + batch_size])
    return repeats * len(sentences) / (time.perf_counter() - t0)


def measure_throughput(student: TextCNNClassifier, classifier, sentences: list[str], batch_sizes=(1, 64)) -> dict:
    """CPU sentences/s of student, folded student (:mod:`textcnn.folded`) and teacher on the same raw sentences,
    side by side (tokenisation included), and the largest difference between the two students' probabilities."""
    from minibert.classify import predict_logits

    folded = student.folded()
    out = {}
    with torch.no_grad():
        for b in batch_sizes:
            sample = sentences[: max(b * 4, 64)] if b > 1 else sentences[:64]
            s = sentences_per_second(student.predict_proba, sample, b)
            f = sentences_per_second(folded.predict_proba, sample, b)
            t = sentences_per_second(lambda texts: predict_logits(classifier, texts, batch_size=b), sample, b)
            out[f"batch_{b}"] = {"student_sentences_per_second": s, "teacher_sentences_per_second": t,
                                 "speedup": s / t, "folded_student_sentences_per_second": f,
                                 "folded_speedup": f / t, "sentences": len(sample)}
    out["folded_max_abs_diff"] = float((folded.predict_proba(sentences) - student.predict_proba(sentences))
                                       .abs().max()) if sentences else 0.0
    return out


# ---------------------------------------------------------------------------
# one distillation run


def run(args, log=print) -> dict:
    """Distil the teacher into a TextCNN as described by parsed ``args``; returns ``results.json``'s content."""
    if args.cv:
        raise CLIError("--cv is not supported by textcnn distill: each fold would need its own teacher that never "
                       "saw the fold's test part; give --train/--dev/--test")
    out = prepare_run_folder(args.out, overwrite=args.overwrite)
    if args.threads:
        torch.set_num_threads(args.threads)
    apply_malloc_tuning(args.malloc_tuning, log)
    device = pick_device(args.device)

    # ---- data, read as textcnn train reads it; the teacher gets the raw texts, the student Kim's tokens
    labels, (split,) = load_splits(args, log=log)
    train_tokens = tokenize(split.train_texts)
    vocab = Vocabulary.build(train_tokens, args.min_count)
    dev_set = EncodedSet(tokenize(split.dev_texts), split.dev_labels, vocab)
    test_set = EncodedSet(tokenize(split.test_texts), split.test_labels, vocab) if split.test_texts else None
    log(f"vocabulary: {len(vocab)} words; train {len(train_tokens)}, dev {len(dev_set)}"
        + (f", test {len(test_set)}" if test_set else ""))
    vectors = vectors_for(args, vocab, log)  # the student's initial embeddings (None in rand mode)

    # ---- the teacher, once, over the transfer set
    classifier, columns = load_teacher(args.teacher, labels, args.teacher_last_layer)
    mask_token = classifier.tokenizer.convert_ids_to_tokens([classifier.tokenizer.mask_id])[0]
    transfer = build_transfer_set(train_tokens, split.train_texts, split.train_labels, args, mask_token)
    sources = sum(len(t) >= args.augment_min_words for t in train_tokens)
    log(f"transfer set: {len(train_tokens)} training sentences + {len(transfer['tokens']) - len(train_tokens)} "
        f"new ones (--augment {args.augment}, made from the {sources} training sentences of at least "
        f"{args.augment_min_words} words)")
    soft = cached_teacher_logits(out, classifier, transfer, columns, args.teacher, args.teacher_batch_size,
                                 args.reuse_teacher_logits, log)  # (N, C): constants from here on
    gold = torch.tensor(transfer["labels"], dtype=torch.long)  # (N,), IGNORE_INDEX for new sentences
    # the batches carry each sentence's index into the transfer set where textcnn train has its label
    train_set = EncodedSet(transfer["tokens"], list(range(len(gold))), vocab)

    # ---- the student, trained to match the teacher's soft targets
    set_seed(args.seed)
    model, optimizer = build_model_and_optimizer(args, len(vocab), len(labels), vectors, device)
    config = model.config
    t_start = time.perf_counter()
    soft_on_device, gold_on_device = soft.to(device), gold.to(device)

    def batch_loss(z_s, index):
        z_t, y = soft_on_device[index], gold_on_device[index]  # (B, C) teacher logits, (B,) gold or -100
        return student_loss(args.loss, z_s, z_t, y, temperature=args.temperature, alpha=args.alpha), None

    best, epoch_seconds = fit_epochs(model, optimizer, train_set, dev_set, test_set, vocab, labels, args, out,
                                     batch_loss, device, loss_name=f"{args.loss} loss", log=log)
    train_seconds = time.perf_counter() - t_start
    labels.save(out / "labels.json")

    # ---- results: the student, the teacher, their sizes and speeds
    student = TextCNNClassifier.load(out / "model.pt", device="cpu")
    summary = best.results()
    extra = {"num_trainable_parameters": model.num_parameters(trainable_only=True),
             "seconds_per_epoch": statistics.mean(epoch_seconds), "train_examples": len(train_tokens),
             "transfer_examples": len(gold), "augmented_examples": len(gold) - len(train_tokens),
             "dev_examples": len(dev_set), "vocab_size": len(vocab), "config": config.to_dict(),
             "teacher": str(Path(args.teacher).absolute()),
             "teacher_num_parameters": num_teacher_parameters(classifier)}
    if test_set is not None:
        extra["test_examples"] = len(test_set)
        plot_confusion_matrix(summary["test_confusion_matrix"], labels.names, out / "confusion_matrix.png",
                              title=f"distilled TextCNN, test, epoch {best.epoch} (acc {summary['test_accuracy']:.3f})")
        teacher_pred = teacher_logits(classifier, split.test_texts, columns, args.teacher_batch_size).argmax(-1)
        tm = classification_metrics(test_set.labels, teacher_pred.tolist(), len(labels))
        extra.update(teacher_test_accuracy=tm["accuracy"], teacher_test_f1_macro=tm["f1_macro"])
    if args.throughput_sentences:
        sentences = (split.test_texts or split.dev_texts)[: args.throughput_sentences]
        extra["throughput"] = measure_throughput(student, classifier, sentences)
        teacher_layer = ("at [CLS] only (--teacher-last-layer read)" if args.teacher_last_layer == "read"
                         else "at every position")
        extra["throughput_note"] = (f"CPU, {torch.get_num_threads()} torch threads; raw text in, logits out "
                                    f"(tokenisation included); student and teacher timed one after the other "
                                    f"in one process on the same sentences; the teacher's last layer {teacher_layer}")
    results = write_results(out, "textcnn distill", summary, num_parameters=model.num_parameters(),
                            train_seconds=train_seconds, args=args, device=device, **extra)
    line = f"best dev epoch {best.epoch}: dev {summary['dev_accuracy']:.4f}"
    if "test_accuracy" in summary:
        line += f", test {summary['test_accuracy']:.4f} (teacher {extra['teacher_test_accuracy']:.4f})"
    if "throughput" in extra:
        b64 = extra["throughput"]["batch_64"]
        line += (f"; student {b64['speedup']:.1f}x the teacher's sentences/s at batch 64 "
                 f"({b64['folded_speedup']:.1f}x folded)")
    log(line + f"; results in {out / 'results.json'}")
    return results


# ---------------------------------------------------------------------------
# CLI


def build_parser(prog: str = "textcnn distill") -> ArgumentParser:
    """The command-line options of ``textcnn distill``."""
    p = ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    g = p.add_argument_group("teacher and loss")
    g.add_argument("--teacher", required=True, metavar="RUN",
                   help="the --out folder of 'minibert finetune' (or its export/): the fine-tuned BERT teacher")
    g.add_argument("--loss", choices=LOSSES, default="kd",
                   help="kd: T^2 KL(teacher || student) of the softened distributions; kd+ce: alpha * kd + "
                        "(1 - alpha) * cross-entropy on the gold labels (training sentences only); "
                        "mse: squared distance of the logits")
    g.add_argument("--temperature", type=positive_float, default=4.0, help="softmax temperature T of kd, kd+ce")
    g.add_argument("--alpha", type=non_negative_float, default=0.5, help="weight of the soft term in kd+ce (<= 1)")
    g.add_argument("--augment", type=non_negative_int, default=0, metavar="N",
                   help="new sentences per training sentence in the transfer set (Tang et al. used 20); 0 = none")
    g.add_argument("--augment-min-words", type=positive_int, default=1, metavar="M",
                   help="augment only training sentences of at least M words (default 1: all); e.g. 10 on GLUE's "
                        "SST-2, where most examples are short phrases that already carry a label")
    g.add_argument("--p-mask", type=dropout_probability, default=0.1, help="augmentation: mask a word")
    g.add_argument("--p-swap", type=dropout_probability, default=0.1,
                   help="augmentation: swap a word for one drawn from the training unigrams")
    g.add_argument("--p-ngram", type=dropout_probability, default=0.25, help="augmentation: keep only an n-gram")
    g.add_argument("--teacher-batch-size", type=positive_int, default=64, help="sentences per teacher forward pass")
    g.add_argument("--teacher-last-layer", choices=LAST_LAYER_CHOICES, default="all",
                   help="read: the teacher's last encoder layer runs only at [CLS], the one position a pooler or "
                        "cls classifier reads (same logits up to float round-off, faster); all: everywhere")
    g.add_argument("--reuse-teacher-logits", metavar="RUN",
                   help="an earlier distill run with the same teacher and transfer set: take its cached logits")
    g.add_argument("--throughput-sentences", type=non_negative_int, default=256,
                   help="test sentences for the student-vs-teacher CPU speed measurement; 0 = skip it")
    add_data_arguments(p)
    g = p.add_argument_group("student (as textcnn train)")
    g.add_argument("--mode", choices=MODES, default="rand",
                   help="embeddings: rand, static, non-static, multichannel (the last three need vectors)")
    add_vector_arguments(g)
    g.add_argument("--epochs", type=positive_int, default=25, help="training epochs over the transfer set")
    g.add_argument("--batch-size", type=positive_int, default=50, help="examples per mini-batch")
    g.add_argument("--optimizer", choices=("adadelta", "adam"), default="adadelta",
                   help="Adadelta (rho 0.95, eps 1e-6, as Kim) or Adam")
    g.add_argument("--lr", type=non_negative_float, default=0.0,
                   help="learning rate; 0 = 1.0 for Adadelta, 1e-3 for Adam")
    g.add_argument("--embedding-dim", type=positive_int, default=300, help="word-vector size in rand mode")
    g.add_argument("--num-filters", type=positive_int, default=100, help="feature maps per window size")
    g.add_argument("--window-sizes", type=positive_int, nargs="+", default=[3, 4, 5], help="filter widths h")
    g.add_argument("--conv-padding", choices=CONV_PADDINGS, default="narrow",
                   help="narrow (the paper) or wide (h-1 zero vectors on both sides, Kim's code)")
    g.add_argument("--dropout", type=dropout_probability, default=0.5, help="dropout on the pooled features")
    g.add_argument("--max-norm", type=positive_float, default=3.0, help="l2 max-norm s of each output row")
    g.add_argument("--min-count", type=positive_int, default=1, help="keep training words seen at least this often")
    g.add_argument("--no-bucket", dest="bucket", action="store_false",
                   help="plain random batches instead of length-sorted pools")
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=0, help="seed of the dev split, the augmentation, the init, the batches")
    g.add_argument("--out", default="runs/distill", help="output folder (must be new or empty)")
    g.add_argument("--overwrite", action="store_true", help="delete what --out holds and start again")
    g.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:N")
    g.add_argument("--threads", type=non_negative_int, default=0, help="CPU threads for torch; 0 = torch's default")
    add_malloc_tuning_argument(g)
    return p


def _run_checked(args):
    if args.alpha > 1.0:
        raise CLIError(f"--alpha must be in [0, 1], got {args.alpha}")
    if args.p_mask + args.p_swap > 1.0:
        raise CLIError(f"--p-mask + --p-swap must be <= 1, got {args.p_mask + args.p_swap}")
    run(args, log=lambda s: print(s, flush=True))


def main(argv: list[str] | None = None, prog: str = "textcnn distill") -> int:
    """Entry point of ``textcnn distill``."""
    return run_command(prog, build_parser(prog), _run_checked, argv,
                       known_errors=(ClassificationDataError, VectorsError, ClassifierError))


if __name__ == "__main__":
    sys.exit(main())
