"""``textcnn distill``: train a TextCNN student on the soft targets of a fine-tuned BERT teacher.

    textcnn distill --teacher runs/ft_sst2 --train stsa.binary.train --dev stsa.binary.dev \\
        --test stsa.binary.test --loss kd --temperature 4 --augment 10 --out runs/distill

The pipeline (Hinton et al. 2015; Tang et al. 2019), top to bottom:

1. read the data exactly as ``textcnn train`` does (Kim's cleaning, the
   vocabulary of the training sentences, a dev split when there is no
   ``--dev``);
2. build the **transfer set**: the training sentences plus ``--augment N``
   new sentences per training sentence (:mod:`textcnn.augment`: masking,
   word swaps, n-grams; no rule reads a label);
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
   process (sentences per second from raw text, batch 1 and batch 64).

Output folder: ``metrics.jsonl``, ``results.json`` (``textcnn train``'s
keys plus ``teacher_*``, ``throughput`` and ``speedup_*``),
``confusion_matrix.png``, ``model.pt`` (``textcnn predict`` loads it) and
``transfer_set.pt`` (the student's tokens, the teacher's texts and logits).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import time
from pathlib import Path

import torch

from minibert.classification_data import ClassificationDataError, LabelMap, Vocabulary, dev_split, read_examples
from minibert.metrics import classification_metrics, plot_confusion_matrix
from textcnn.augment import augment, teacher_text
from textcnn.kd import IGNORE_LABEL, LOSSES, student_loss
from textcnn.model import CONV_PADDINGS, MODES, TextCNN, TextCNNConfig
from textcnn.predict import TextCNNClassifier
from textcnn.train import Adadelta, EncodedSet, iterate_batches, pick_device, predict_ids, save_model, tokenize
from textcnn.vectors import VectorsError, add_vector_arguments, vectors_for


class DistillError(ValueError):
    """The teacher or the options cannot be used for distillation."""


# ---------------------------------------------------------------------------
# the teacher


def load_teacher(path, labels: LabelMap):
    """The fine-tuned BERT of a ``minibert finetune`` run, in eval mode, with classes in ``labels``' order.

    Returns ``(classifier, column_order)``: column ``j`` of the student's
    classes is column ``column_order[j]`` of the teacher's logits.
    """
    from minibert.finetune import load_classifier

    try:
        classifier = load_classifier(path, device="cpu")
    except (FileNotFoundError, ValueError) as exc:
        raise DistillError(f"--teacher {path}: {exc}") from None
    classifier.model.eval()
    for p in classifier.model.parameters():
        p.requires_grad_(False)
    names = list(classifier.labels.names)
    if sorted(names) != sorted(labels.names):
        raise DistillError(f"--teacher {path} was fine-tuned on the labels {names} but the data has "
                           f"{labels.names}; distil on the teacher's task.")
    return classifier, [names.index(name) for name in labels.names]


@torch.no_grad()
def teacher_logits(classifier, texts: list[str], column_order: list[int], batch_size: int = 64) -> torch.Tensor:
    """The teacher's logits ``(N, C)`` for ``texts`` (eval mode, no gradients), columns in the student's order."""
    from minibert.finetune import predict_logits

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
    ``labels`` (the gold label, or ``IGNORE_LABEL`` for a new sentence) and
    ``source`` (index of the training sentence it came from). Only ``tokens``
    enter :func:`textcnn.augment.augment`.
    """
    new = augment(tokens, args.augment, seed=args.seed, p_mask=args.p_mask, p_swap=args.p_swap,
                  p_ngram=args.p_ngram) if args.augment else []
    return {
        "tokens": list(tokens) + [t for _, t in new],
        "teacher_texts": list(texts) + [teacher_text(t, mask_token) for _, t in new],
        "labels": list(labels) + [IGNORE_LABEL] * len(new),
        "source": list(range(len(tokens))) + [i for i, _ in new],
    }


def _fingerprint(teacher: str, teacher_texts: list[str]) -> str:
    digest = hashlib.sha256(str(Path(teacher).resolve()).encode())
    for text in teacher_texts:
        digest.update(b"\0" + text.encode("utf-8"))
    return digest.hexdigest()


def cached_teacher_logits(path: Path, classifier, transfer: dict, column_order: list[int], teacher: str,
                          batch_size: int, log=print) -> torch.Tensor:
    """The teacher's logits on the transfer set, from ``path`` when it holds this teacher's logits of these texts."""
    key = _fingerprint(teacher, transfer["teacher_texts"])
    if path.is_file():
        cached = torch.load(path, map_location="cpu", weights_only=True)
        if cached.get("fingerprint") == key:
            log(f"teacher: logits of {len(transfer['tokens'])} transfer sentences read from {path}")
            return cached["teacher_logits"]
    t0 = time.perf_counter()
    logits = teacher_logits(classifier, transfer["teacher_texts"], column_order, batch_size)
    log(f"teacher: logits of {len(logits)} transfer sentences in {time.perf_counter() - t0:.1f} s")
    state = {"fingerprint": key, "teacher": str(teacher), "teacher_logits": logits,
             "tokens": transfer["tokens"], "teacher_texts": transfer["teacher_texts"],
             "labels": torch.tensor(transfer["labels"]), "source": torch.tensor(transfer["source"])}
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)
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
    """CPU sentences/s of student and teacher on the same raw sentences, side by side (tokenisation included)."""
    from minibert.finetune import predict_logits

    out = {}
    with torch.no_grad():
        for b in batch_sizes:
            sample = sentences[: max(b * 4, 64)] if b > 1 else sentences[:64]
            s = sentences_per_second(student.predict_proba, sample, b)
            t = sentences_per_second(lambda texts: predict_logits(classifier, texts, batch_size=b), sample, b)
            out[f"batch_{b}"] = {"student_sentences_per_second": s, "teacher_sentences_per_second": t,
                                 "speedup": s / t, "sentences": len(sample)}
    return out


# ---------------------------------------------------------------------------
# one distillation run


def distill_run(args, log=print) -> dict:
    """Distil the teacher into a TextCNN as described by parsed ``args``; returns ``results.json``'s content."""
    if args.cv:
        raise DistillError("--cv is not supported by distill: each fold would need a teacher that never saw "
                           "its test fold; give --train/--dev/--test.")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(args.device)

    # ---- data, exactly as textcnn train
    texts, raw = read_examples(args.train)
    if args.limit:
        texts, raw = texts[:args.limit], raw[:args.limit]
    labels = LabelMap.from_labels(raw, source=str(args.train))
    y = labels.encode(raw, source=str(args.train))
    tokens = tokenize(texts)
    if args.dev:
        dev_texts, dev_raw = read_examples(args.dev)
        train_idx, dev = list(range(len(y))), (tokenize(dev_texts), labels.encode(dev_raw, source=str(args.dev)))
    else:
        train_idx, dev_idx = dev_split(y, args.dev_fraction, seed=args.seed)
        dev = ([tokens[i] for i in dev_idx], [y[i] for i in dev_idx])
    train_tokens = [tokens[i] for i in train_idx]
    train_texts, train_y = [texts[i] for i in train_idx], [y[i] for i in train_idx]
    vocab = Vocabulary.build(train_tokens, args.min_count)
    dev_set = EncodedSet(dev[0], dev[1], vocab)
    test_set = test_texts = None
    if args.test:
        test_texts, test_raw = read_examples(args.test)
        test_set = EncodedSet(tokenize(test_texts), labels.encode(test_raw, source=str(args.test)), vocab)
    log(f"train: {len(train_y)} examples from {args.train}, classes {labels.names}; dev {len(dev_set)}"
        + (f", test {len(test_set)}" if test_set else "") + f"; vocabulary {len(vocab)} words")

    # ---- the teacher and the transfer set
    classifier, columns = load_teacher(args.teacher, labels)
    mask_token = classifier.tokenizer.convert_ids_to_tokens([classifier.tokenizer.mask_id])[0]
    transfer = build_transfer_set(train_tokens, train_texts, train_y, args, mask_token)
    log(f"transfer set: {len(train_y)} training sentences + {len(transfer['tokens']) - len(train_y)} "
        f"augmented (--augment {args.augment})")
    soft = cached_teacher_logits(out / "transfer_set.pt", classifier, transfer, columns, args.teacher,
                                 args.teacher_batch_size, log)  # (N, C), constants from here on
    gold = torch.tensor(transfer["labels"], dtype=torch.long)  # (N,), IGNORE_LABEL for augmented sentences
    # the batches carry each sentence's index into the transfer set in the place of a label
    train_set = EncodedSet(transfer["tokens"], list(range(len(gold))), vocab)

    # ---- the student
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    vectors = vectors_for(args, vocab, log)
    config = TextCNNConfig(vocab_size=len(vocab), num_classes=len(labels), mode=args.mode,
                           embedding_dim=vectors.shape[1] if vectors is not None else args.embedding_dim,
                           num_filters=args.num_filters, window_sizes=tuple(args.window_sizes),
                           dropout=args.dropout, max_norm=args.max_norm, conv_padding=args.conv_padding)
    model = TextCNN(config, vectors, sparse_embedding=args.optimizer == "adadelta").to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if args.optimizer == "adadelta":
        optimizer = Adadelta(params, lr=args.lr or 1.0, rho=0.95, eps=1e-6)
    else:
        optimizer = torch.optim.Adam(params, lr=args.lr or 1e-3)
    min_len = max(config.window_sizes)

    # ---- training: soft targets with a temperature
    best = {"dev_accuracy": -1.0}
    epoch_seconds = []
    t_start = time.perf_counter()
    with (out / "metrics.jsonl").open("w", encoding="utf-8") as metrics_file:
        for epoch in range(1, args.epochs + 1):
            model.train()
            t0 = time.perf_counter()
            total, seen = 0.0, 0
            for ids, lengths, index in iterate_batches(train_set, args.batch_size, min_len, shuffle=True,
                                                       rng=rng, bucket=args.bucket):
                z_t, y_b = soft[index].to(device), gold[index].to(device)  # (B, C), (B,)
                z_s = model(ids.to(device), lengths.to(device))  # (B, C)
                loss = student_loss(args.loss, z_s, z_t, y_b, temperature=args.temperature, alpha=args.alpha)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                model.apply_max_norm()
                total += loss.item() * len(index)
                seen += len(index)
            epoch_seconds.append(time.perf_counter() - t0)
            dev_m = classification_metrics(dev_set.labels, predict_ids(model, dev_set, device), len(labels))
            record = {"epoch": epoch, "train_loss": total / seen, "dev_accuracy": dev_m["accuracy"],
                      "dev_f1_macro": dev_m["f1_macro"], "epoch_seconds": epoch_seconds[-1]}
            test_m = None
            if test_set is not None:
                test_m = classification_metrics(test_set.labels, predict_ids(model, test_set, device), len(labels))
                record.update(test_accuracy=test_m["accuracy"], test_f1_macro=test_m["f1_macro"])
            metrics_file.write(json.dumps(record) + "\n")
            metrics_file.flush()
            improved = dev_m["accuracy"] > best["dev_accuracy"]
            if improved:
                best = {"epoch": epoch, "dev_accuracy": dev_m["accuracy"], "dev": dev_m, "test": test_m}
                save_model(out / "model.pt", model, vocab, labels)
            eta = statistics.mean(epoch_seconds) * (args.epochs - epoch)
            log(f"epoch {epoch:2d}/{args.epochs}  {args.loss} loss {record['train_loss']:.4f}  "
                f"dev {dev_m['accuracy']:.4f}" + (f"  test {test_m['accuracy']:.4f}" if test_m else "")
                + f"  {epoch_seconds[-1]:.1f} s/epoch  ETA {eta / 60:.1f} min" + ("  *" if improved else ""))
    labels.save(out / "labels.json")

    # ---- results: student, teacher, sizes and speeds
    results = {
        "best_epoch": best["epoch"], "dev_accuracy": best["dev_accuracy"], "dev_f1_macro": best["dev"]["f1_macro"],
        "train_seconds": time.perf_counter() - t_start, "seconds_per_epoch": statistics.mean(epoch_seconds),
        "num_parameters": model.num_parameters(),
        "num_trainable_parameters": model.num_parameters(trainable_only=True),
        "train_examples": len(train_y), "transfer_examples": len(gold),
        "augmented_examples": len(gold) - len(train_y), "dev_examples": len(dev_set), "vocab_size": len(vocab),
        "config": config.to_dict(), "protocol": protocol(args),
        "teacher": str(args.teacher), "teacher_num_parameters": num_teacher_parameters(classifier),
    }
    if best["test"] is not None:
        t = best["test"]
        results.update(test_examples=len(test_set), test_accuracy=t["accuracy"],
                       test_precision_macro=t["precision_macro"], test_recall_macro=t["recall_macro"],
                       test_f1_macro=t["f1_macro"], test_confusion_matrix=t["confusion_matrix"])
        plot_confusion_matrix(t["confusion_matrix"], labels.names, out / "confusion_matrix.png",
                              title=f"distilled TextCNN, test, epoch {best['epoch']} (acc {t['accuracy']:.3f})")
        teacher_pred = teacher_logits(classifier, test_texts, columns, args.teacher_batch_size).argmax(-1).tolist()
        tm = classification_metrics(test_set.labels, teacher_pred, len(labels))
        results.update(teacher_test_accuracy=tm["accuracy"], teacher_test_f1_macro=tm["f1_macro"])
    if args.throughput_sentences:
        sentences = (test_texts or [" ".join(s) for s in dev[0]])[: args.throughput_sentences]
        student = TextCNNClassifier.load(out / "model.pt", device="cpu")
        results["throughput"] = measure_throughput(student, classifier, sentences)
        results["throughput_note"] = (f"CPU, {torch.get_num_threads()} torch threads, raw text in, logits out, "
                                      f"student and teacher timed one after the other in one process")
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return results


def protocol(args) -> dict:
    """The settings that define a distillation run, recorded in ``results.json``."""
    keys = ("teacher", "loss", "temperature", "alpha", "augment", "p_mask", "p_swap", "p_ngram", "mode",
            "vectors", "vectors_from_bert", "epochs", "batch_size", "optimizer", "lr", "seed", "min_count",
            "dev_fraction", "bucket", "conv_padding")
    return {k: getattr(args, k) for k in keys}


# ---------------------------------------------------------------------------
# CLI


def build_parser(prog: str = "textcnn distill") -> argparse.ArgumentParser:
    """The command-line options of ``textcnn distill``."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--teacher", required=True, metavar="RUN",
                   help="the output folder of 'minibert finetune' (the fine-tuned BERT teacher)")
    p.add_argument("--loss", choices=LOSSES, default="kd",
                   help="kd: T^2 KL(teacher || student) at temperature T; kd+ce: alpha * kd + (1 - alpha) * "
                        "cross-entropy on the gold labels (training sentences only); mse: squared logit distance")
    p.add_argument("--temperature", type=float, default=4.0, help="softmax temperature T of kd and kd+ce")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the soft term in kd+ce")
    p.add_argument("--augment", type=int, default=0, metavar="N",
                   help="new sentences per training sentence in the transfer set (Tang et al. used 20); 0: none")
    p.add_argument("--p-mask", type=float, default=0.1, help="augmentation: probability to mask a word")
    p.add_argument("--p-swap", type=float, default=0.1,
                   help="augmentation: probability to swap a word for one drawn from the training unigrams")
    p.add_argument("--p-ngram", type=float, default=0.25, help="augmentation: probability to keep only an n-gram")
    p.add_argument("--teacher-batch-size", type=int, default=64, help="sentences per teacher forward pass")
    p.add_argument("--throughput-sentences", type=int, default=256,
                   help="test sentences for the student/teacher speed measurement (0: skip it)")
    p.add_argument("--train", required=True,
                   help="training examples: '<label> <text>' lines, .tsv (sentence/label header) or .csv (text/label)")
    p.add_argument("--dev", help="dev examples (same formats); default: 10%% of --train, stratified")
    p.add_argument("--test", help="test examples; the metrics are reported at the best dev epoch")
    p.add_argument("--cv", type=int, default=0, metavar="K", help="not supported by distill (see the error)")
    p.add_argument("--mode", choices=MODES, default="rand", help="the student's embeddings (as textcnn train)")
    add_vector_arguments(p)
    p.add_argument("--epochs", type=int, default=25, help="training epochs over the transfer set")
    p.add_argument("--batch-size", type=int, default=50, help="examples per mini-batch")
    p.add_argument("--optimizer", choices=("adadelta", "adam"), default="adadelta", help="as textcnn train")
    p.add_argument("--lr", type=float, default=0.0, help="learning rate (0: 1.0 for Adadelta, 1e-3 for Adam)")
    p.add_argument("--embedding-dim", type=int, default=300, help="word-vector size in rand mode")
    p.add_argument("--num-filters", type=int, default=100, help="feature maps per window size")
    p.add_argument("--window-sizes", type=int, nargs="+", default=[3, 4, 5], help="filter widths h")
    p.add_argument("--conv-padding", choices=CONV_PADDINGS, default="narrow", help="as textcnn train")
    p.add_argument("--dropout", type=float, default=0.5, help="dropout on the pooled features")
    p.add_argument("--max-norm", type=float, default=3.0, help="l2 max-norm s of each output row")
    p.add_argument("--min-count", type=int, default=1, help="keep training words seen at least this often")
    p.add_argument("--dev-fraction", type=float, default=0.1, help="dev share of train when no --dev")
    p.add_argument("--no-bucket", dest="bucket", action="store_false",
                   help="plain random batches instead of length-sorted pools")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the augmentation, the init and the batches")
    p.add_argument("--out", default="runs/distill", help="output folder")
    p.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, ...")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training examples (quick tests)")
    return p


def main(argv: list[str] | None = None, prog: str = "textcnn distill") -> int:
    """Entry point of ``textcnn distill``."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.temperature <= 0:
        parser.error(f"--temperature must be > 0, got {args.temperature}.")
    if not 0.0 <= args.alpha <= 1.0:
        parser.error(f"--alpha must be in [0, 1], got {args.alpha}.")
    if args.augment < 0:
        parser.error(f"--augment must be >= 0, got {args.augment}.")
    try:
        result = distill_run(args, log=lambda s: print(s, flush=True))
    except (ClassificationDataError, VectorsError, DistillError, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    print(f"best dev epoch {result['best_epoch']}: dev {result['dev_accuracy']:.4f}"
          + (f", test {result['test_accuracy']:.4f} (teacher {result['teacher_test_accuracy']:.4f})"
             if "test_accuracy" in result else "") + f"; results in {Path(args.out) / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
