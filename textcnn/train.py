"""``textcnn train``: train (or cross-validate) a Kim (2014) TextCNN.

Protocol (Kim's, all defaults): texts cleaned with
:func:`~minibert.classification_data.clean_text_kim`; vocabulary = every
word of the training examples (``--min-count 1``); mini-batches of 50;
Adadelta ($\\rho = 0.95$, $\\epsilon = 10^{-6}$, learning rate 1.0); 25
epochs; after every update the max-norm constraint $s = 3$ on the output
rows; the paper's narrow convolution (``--conv-padding wide`` pads every
sentence with $h-1$ zero vectors on both sides, as Kim's released code). The epoch with the best dev accuracy is kept (the earliest on ties),
and the test metrics reported are those of that epoch. Without ``--dev``,
10% of the training data (stratified, seeded) is held out as dev. With
``--cv K`` the ``--train`` file is split into K stratified folds; each fold is
trained as above (dev = 10% of the other K-1 folds) and tested on the fold
left out; the report is mean +- standard deviation over the folds.

Batches are drawn from a fresh shuffle every epoch; within pools of 50
batches the examples are sorted by length before being cut into batches
(less padding, same batch size and the same examples per epoch; padding
never changes the model's output). ``--no-bucket`` turns this off.

Output folder: ``metrics.jsonl`` (one line per epoch), ``results.json``,
``confusion_matrix.png``, ``model.pt`` (+ ``labels.json``), which
``textcnn predict`` loads. In ``--cv`` mode each fold has its own
``fold_XX/`` folder, and a fold whose ``results.json`` exists is not rerun,
so an interrupted cross-validation resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from minibert.classification_data import (ClassificationDataError, LabelMap, Vocabulary,
                                          clean_text_kim, dev_split, read_examples,
                                          stratified_kfold)
from minibert.metrics import classification_metrics, plot_confusion_matrix
from textcnn.model import CONV_PADDINGS, MODES, TextCNN, TextCNNConfig, pad_batch


# ---------------------------------------------------------------------------
# data


def tokenize(texts, lowercase: bool = True) -> list[list[str]]:
    """Kim's cleaning, then split on spaces."""
    return [clean_text_kim(t, lower=lowercase).split() for t in texts]


class EncodedSet:
    """Token ids and label ids of one split, kept as Python lists."""

    def __init__(self, token_lists, label_ids, vocab: Vocabulary):
        self.ids = [vocab.encode(tokens) for tokens in token_lists]
        self.labels = list(label_ids)

    def __len__(self) -> int:
        return len(self.labels)


def iterate_batches(data: EncodedSet, batch_size: int, min_length: int, shuffle: bool = False,
                    rng: random.Random | None = None, bucket: bool = True, pool_batches: int = 50):
    """Yield ``(ids (B, T), lengths (B,), labels (B,))`` covering ``data`` once.

    ``shuffle``: a fresh random order (from ``rng``); ``bucket``: sort each
    pool of ``pool_batches`` batches by length before cutting it, then
    shuffle the order of the batches.
    """
    order = list(range(len(data)))
    if shuffle:
        rng.shuffle(order)
    if bucket:
        pool = batch_size * pool_batches
        chunks = []
        for start in range(0, len(order), pool):
            part = sorted(order[start:start + pool], key=lambda i: len(data.ids[i]))
            chunks += [part[j:j + batch_size] for j in range(0, len(part), batch_size)]
        if shuffle:
            rng.shuffle(chunks)
    else:
        chunks = [order[j:j + batch_size] for j in range(0, len(order), batch_size)]
    for chunk in chunks:
        ids, lengths = pad_batch([data.ids[i] for i in chunk], min_length=min_length)
        yield ids, lengths, torch.tensor([data.labels[i] for i in chunk], dtype=torch.long)


@torch.no_grad()
def predict_ids(model: TextCNN, data: EncodedSet, device: torch.device,
                batch_size: int = 500) -> list[int]:
    """Predicted class ids of every example, in the order of ``data``."""
    model.eval()
    order = sorted(range(len(data)), key=lambda i: len(data.ids[i]))
    out = [0] * len(data)
    min_len = max(model.config.window_sizes)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        ids, lengths = pad_batch([data.ids[i] for i in chunk], min_length=min_len)
        pred = model(ids.to(device), lengths.to(device)).argmax(-1).tolist()
        for i, p in zip(chunk, pred):
            out[i] = p
    return out


def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA, then MPS, then CPU; anything else is passed to ``torch.device``."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


# ---------------------------------------------------------------------------
# optimizer


class Adadelta(torch.optim.Optimizer):
    """Adadelta (Zeiler 2012) that also takes sparse gradients, updating only the rows they touch.

    For a parameter $\\theta$ with gradient $g_t$ at step $t$:

    $$E[g^2]_t = \\rho E[g^2]_{t-1} + (1-\\rho) g_t^2, \\quad
      \\Delta_t = \\frac{\\sqrt{E[\\Delta^2]_{t-1} + \\epsilon}}{\\sqrt{E[g^2]_t + \\epsilon}} g_t, \\quad
      E[\\Delta^2]_t = \\rho E[\\Delta^2]_{t-1} + (1-\\rho) \\Delta_t^2, \\quad
      \\theta_t = \\theta_{t-1} - \\eta \\Delta_t.$$

    A row of an embedding matrix that is not in the batch has $g_t = 0$, so
    $\\Delta_t = 0$ and both averages just shrink by $\\rho$. Instead of
    touching all $V$ rows every step, the sparse path remembers the step at
    which each row was last updated and applies the missed $\\rho^k$ when the
    row comes back: the same numbers as dense Adadelta (``torch.optim.Adadelta``),
    at the cost of the batch's rows only. Dense gradients take the ordinary path.
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.95, eps: float = 1e-6):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            lr, rho, eps = group["lr"], group["rho"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["square_avg"] = torch.zeros_like(p)
                    state["acc_delta"] = torch.zeros_like(p)
                    if p.grad.is_sparse:
                        state["last"] = torch.zeros(p.shape[0], dtype=torch.long, device=p.device)
                state["step"] += 1
                sq, acc = state["square_avg"], state["acc_delta"]
                if not p.grad.is_sparse:
                    g = p.grad
                    sq.mul_(rho).addcmul_(g, g, value=1 - rho)
                    delta = acc.add(eps).sqrt_().div_(sq.add(eps).sqrt_()).mul_(g)
                    acc.mul_(rho).addcmul_(delta, delta, value=1 - rho)
                    p.add_(delta, alpha=-lr)
                    continue
                grad = p.grad.coalesce()
                rows, g = grad.indices()[0], grad.values()  # (n,), (n, k)
                # the k steps this row missed had g = 0: both averages shrank by rho^k
                missed = (state["step"] - 1 - state["last"][rows]).to(p.dtype)  # (n,)
                decay = torch.pow(torch.tensor(rho, dtype=p.dtype, device=p.device), missed)[:, None]
                sq_rows = sq[rows] * (decay * rho) + (1 - rho) * g * g  # E[g^2]_t
                acc_rows = acc[rows] * decay  # E[Delta^2]_{t-1}
                delta = (acc_rows + eps).sqrt() / (sq_rows + eps).sqrt() * g
                acc[rows] = rho * acc_rows + (1 - rho) * delta * delta
                sq[rows] = sq_rows
                p.index_add_(0, rows, delta, alpha=-lr)
                state["last"][rows] = state["step"]
        return None


# ---------------------------------------------------------------------------
# checkpoints


def save_model(path, model: TextCNN, vocab: Vocabulary, labels: LabelMap, lowercase: bool = True) -> None:
    """Write config, weights, vocabulary and label names to ``path`` atomically."""
    path = Path(path)
    state = {"config": model.config.to_dict(), "state_dict": model.state_dict(),
             "vocab": vocab.itos, "labels": labels.names, "lowercase": lowercase}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# one training run


def train_run(train: EncodedSet, dev: EncodedSet, test: EncodedSet | None, vocab: Vocabulary,
              labels: LabelMap, args, out: Path, vectors: torch.Tensor | None = None,
              tag: str = "", log=print) -> dict:
    """Train one model, pick the epoch by dev accuracy, return (and write) its results."""
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    config = TextCNNConfig(vocab_size=len(vocab), num_classes=len(labels), mode=args.mode,
                           embedding_dim=vectors.shape[1] if vectors is not None else args.embedding_dim,
                           num_filters=args.num_filters, window_sizes=tuple(args.window_sizes),
                           dropout=args.dropout, max_norm=args.max_norm,
                           conv_padding=args.conv_padding)
    sparse = args.optimizer == "adadelta"
    model = TextCNN(config, vectors, sparse_embedding=sparse).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if args.optimizer == "adadelta":
        optimizer = Adadelta(params, lr=args.lr if args.lr else 1.0, rho=0.95, eps=1e-6)
    else:
        optimizer = torch.optim.Adam(params, lr=args.lr if args.lr else 1e-3)
    min_len = max(config.window_sizes)
    best = {"dev_accuracy": -1.0}
    epoch_seconds = []
    t_start = time.perf_counter()
    metrics_file = (out / "metrics.jsonl").open("w", encoding="utf-8")
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        total_loss, correct, seen = 0.0, 0, 0
        for ids, lengths, y in iterate_batches(train, args.batch_size, min_len, shuffle=True, rng=rng,
                                               bucket=args.bucket):
            ids, lengths, y = ids.to(device), lengths.to(device), y.to(device)
            logits = model(ids, lengths)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            model.apply_max_norm()
            total_loss += loss.item() * len(y)
            correct += (logits.argmax(-1) == y).sum().item()
            seen += len(y)
        epoch_seconds.append(time.perf_counter() - t0)
        dev_pred = predict_ids(model, dev, device)
        dev_m = classification_metrics(dev.labels, dev_pred, len(labels))
        record = {"tag": tag, "epoch": epoch, "train_loss": total_loss / seen,
                  "train_accuracy": correct / seen, "dev_accuracy": dev_m["accuracy"],
                  "dev_f1_macro": dev_m["f1_macro"], "epoch_seconds": epoch_seconds[-1]}
        test_m = None
        if test is not None:
            test_m = classification_metrics(test.labels, predict_ids(model, test, device), len(labels))
            record.update(test_accuracy=test_m["accuracy"], test_f1_macro=test_m["f1_macro"])
        metrics_file.write(json.dumps(record) + "\n")
        metrics_file.flush()
        improved = dev_m["accuracy"] > best["dev_accuracy"]
        if improved:
            best = {"epoch": epoch, "dev_accuracy": dev_m["accuracy"], "dev": dev_m, "test": test_m}
            save_model(out / "model.pt", model, vocab, labels)
        eta = sum(epoch_seconds) / epoch * (args.epochs - epoch)
        log(f"{tag}epoch {epoch:2d}/{args.epochs}  loss {record['train_loss']:.4f}  "
            f"train {record['train_accuracy']:.4f}  dev {dev_m['accuracy']:.4f}"
            + (f"  test {test_m['accuracy']:.4f}" if test_m else "")
            + f"  {epoch_seconds[-1]:.1f} s/epoch  ETA {eta / 60:.1f} min" + ("  *" if improved else ""))
    metrics_file.close()
    labels.save(out / "labels.json")
    results = {
        "best_epoch": best["epoch"], "dev_accuracy": best["dev_accuracy"],
        "dev_f1_macro": best["dev"]["f1_macro"],
        "train_seconds": time.perf_counter() - t_start,
        "seconds_per_epoch": statistics.mean(epoch_seconds),
        "num_parameters": model.num_parameters(),
        "num_trainable_parameters": model.num_parameters(trainable_only=True),
        "train_examples": len(train), "dev_examples": len(dev), "vocab_size": len(vocab),
        "config": config.to_dict(), "protocol": protocol(args),
    }
    if best["test"] is not None:
        t = best["test"]
        results.update(test_examples=len(test), test_accuracy=t["accuracy"],
                       test_precision_macro=t["precision_macro"], test_recall_macro=t["recall_macro"],
                       test_f1_macro=t["f1_macro"], test_confusion_matrix=t["confusion_matrix"])
        plot_confusion_matrix(t["confusion_matrix"], labels.names, out / "confusion_matrix.png",
                              title=f"test, epoch {best['epoch']} (acc {t['accuracy']:.3f})")
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return results


def protocol(args) -> dict:
    """The settings that define a run, recorded in every ``results.json``."""
    return {k: getattr(args, k) for k in ("mode", "epochs", "batch_size", "optimizer", "lr", "seed",
                                          "min_count", "dev_fraction", "cv", "bucket", "vectors",
                                          "conv_padding")}


# ---------------------------------------------------------------------------
# CLI


def build_parser(prog: str = "textcnn train") -> argparse.ArgumentParser:
    """The command-line options of ``textcnn train``."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--train", required=True,
                   help="training examples: '<label> <text>' lines, .tsv (sentence/label header) or .csv (text/label)")
    p.add_argument("--dev", help="dev examples (same formats); default: 10%% of --train, stratified")
    p.add_argument("--test", help="test examples; the metrics are reported at the best dev epoch")
    p.add_argument("--cv", type=int, default=0, metavar="K",
                   help="K-fold cross-validation on --train (then --dev/--test are not allowed)")
    p.add_argument("--mode", choices=MODES, default="rand",
                   help="embeddings: rand (U[-0.25,0.25], trained), static (pretrained, frozen), "
                        "non-static (pretrained, trained), multichannel (one frozen + one trained copy)")
    p.add_argument("--vectors", help="word2vec/GloVe text file (needed by static, non-static, multichannel)")
    p.add_argument("--epochs", type=int, default=25, help="training epochs")
    p.add_argument("--batch-size", type=int, default=50, help="examples per mini-batch")
    p.add_argument("--optimizer", choices=("adadelta", "adam"), default="adadelta",
                   help="Adadelta (rho 0.95, eps 1e-6, as Kim) or Adam")
    p.add_argument("--lr", type=float, default=0.0, help="learning rate (0: 1.0 for Adadelta, 1e-3 for Adam)")
    p.add_argument("--embedding-dim", type=int, default=300, help="word-vector size in rand mode")
    p.add_argument("--num-filters", type=int, default=100, help="feature maps per window size")
    p.add_argument("--window-sizes", type=int, nargs="+", default=[3, 4, 5], help="filter widths h")
    p.add_argument("--conv-padding", choices=CONV_PADDINGS, default="narrow",
                   help="narrow: the paper's n-h+1 windows inside the sentence; wide: h-1 zero vectors "
                        "on both sides, n+h-1 windows (as Kim's released code)")
    p.add_argument("--dropout", type=float, default=0.5, help="dropout on the pooled features")
    p.add_argument("--max-norm", type=float, default=3.0, help="l2 max-norm s of each output row")
    p.add_argument("--min-count", type=int, default=1, help="keep training words seen at least this often")
    p.add_argument("--folds", type=int, nargs="+", metavar="F",
                   help="with --cv: run only these folds (1-based), e.g. to share the folds between "
                        "processes; the summary is written once every fold has its results.json")
    p.add_argument("--dev-fraction", type=float, default=0.1, help="dev share of train when no --dev")
    p.add_argument("--no-bucket", dest="bucket", action="store_false",
                   help="plain random batches instead of length-sorted pools")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits, the initialisation and the batches")
    p.add_argument("--out", default="runs/textcnn", help="output folder")
    p.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training examples (quick tests)")
    return p


def _load(path):
    """Read a labelled file and tokenise it with Kim's cleaning."""
    texts, raw_labels = read_examples(path)
    return tokenize(texts), raw_labels


def _vectors_for(args, vocab: Vocabulary, log):
    if args.mode == "rand":
        return None
    from textcnn.vectors import load_vectors

    loaded = load_vectors(args.vectors, vocab, seed=args.seed)
    log(f"vectors: {loaded.found} of {loaded.total} vocabulary words found in {args.vectors} "
        f"({loaded.coverage:.1%}); the others start U[-0.25, 0.25]")
    return loaded.weight


def run(args, log=print) -> dict:
    """Train as described by parsed ``args``; returns the summary written to ``results.json``."""
    if args.mode != "rand" and not args.vectors:
        raise ClassificationDataError(f"--mode {args.mode} needs --vectors <word2vec/GloVe text file>.")
    if args.cv and (args.dev or args.test):
        raise ClassificationDataError("--cv K splits --train itself; drop --dev and --test.")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tokens, raw = _load(args.train)
    if args.limit:
        tokens, raw = tokens[:args.limit], raw[:args.limit]
    labels = LabelMap.from_labels(raw, source=str(args.train))
    y = labels.encode(raw, source=str(args.train))
    log(f"train: {len(y)} examples from {args.train}, classes {labels.names}")

    def subset(idx):
        return [tokens[i] for i in idx], [y[i] for i in idx]

    if not args.cv:
        if args.dev:
            dev_tokens, dev_raw = _load(args.dev)
            train_tokens, train_y = tokens, y
            dev_y = labels.encode(dev_raw, source=str(args.dev))
        else:
            tr, dv = dev_split(y, args.dev_fraction, seed=args.seed)
            (train_tokens, train_y), (dev_tokens, dev_y) = subset(tr), subset(dv)
        vocab = Vocabulary.build(train_tokens, args.min_count)
        test = None
        if args.test:
            test_tokens, test_raw = _load(args.test)
            test = EncodedSet(test_tokens, labels.encode(test_raw, source=str(args.test)), vocab)
        log(f"vocabulary: {len(vocab)} words (min count {args.min_count}); "
            f"train {len(train_y)}, dev {len(dev_y)}" + (f", test {len(test)}" if test else ""))
        vectors = _vectors_for(args, vocab, log)
        result = train_run(EncodedSet(train_tokens, train_y, vocab), EncodedSet(dev_tokens, dev_y, vocab),
                           test, vocab, labels, args, out, vectors, log=log)
        log(f"best dev epoch {result['best_epoch']}: dev {result['dev_accuracy']:.4f}"
            + (f", test accuracy {result['test_accuracy']:.4f}, macro F1 {result['test_f1_macro']:.4f}"
               if "test_accuracy" in result else "")
            + f"; {result['seconds_per_epoch']:.1f} s/epoch; results in {out / 'results.json'}")
        return result

    folds = stratified_kfold(y, args.cv, seed=args.seed)
    fold_results = []
    for f, (train_idx, test_idx) in enumerate(folds, start=1):
        fold_out = out / f"fold_{f:02d}"
        done = fold_out / "results.json"
        if args.folds and f not in args.folds:
            if done.exists():
                fold_results.append(json.loads(done.read_text(encoding="utf-8")))
            continue
        if done.exists():
            fold_results.append(json.loads(done.read_text(encoding="utf-8")))
            log(f"fold {f}/{args.cv}: already done (test accuracy {fold_results[-1]['test_accuracy']:.4f})")
            continue
        train_labels = [y[i] for i in train_idx]
        tr, dv = dev_split(train_labels, args.dev_fraction, seed=args.seed + f)
        tr, dv = [train_idx[i] for i in tr], [train_idx[i] for i in dv]
        (train_tokens, train_y), (dev_tokens, dev_y) = subset(tr), subset(dv)
        (test_tokens, test_y) = subset(test_idx)
        vocab = Vocabulary.build(train_tokens + dev_tokens, args.min_count)
        vectors = _vectors_for(args, vocab, log)
        fold_args = argparse.Namespace(**{**vars(args), "seed": args.seed + f})
        result = train_run(EncodedSet(train_tokens, train_y, vocab), EncodedSet(dev_tokens, dev_y, vocab),
                           EncodedSet(test_tokens, test_y, vocab), vocab, labels, fold_args, fold_out,
                           vectors, tag=f"fold {f}/{args.cv} ", log=log)
        fold_results.append(result)
        log(f"fold {f}/{args.cv}: best dev epoch {result['best_epoch']}, "
            f"test accuracy {result['test_accuracy']:.4f}")
    if len(fold_results) < args.cv:
        log(f"{len(fold_results)} of {args.cv} folds have results; run the missing folds "
            f"(or rerun without --folds) to write the cross-validation summary.")
        return {"cv_folds_done": len(fold_results)}
    accs = [r["test_accuracy"] for r in fold_results]
    f1s = [r["test_f1_macro"] for r in fold_results]
    matrix = torch.tensor([r["test_confusion_matrix"] for r in fold_results]).sum(0)
    summary = {
        "cv_folds": args.cv,
        "cv_accuracy_mean": statistics.mean(accs), "cv_accuracy_std": statistics.stdev(accs),
        "test_accuracy": statistics.mean(accs),
        "test_f1_macro": statistics.mean(f1s), "cv_f1_macro_std": statistics.stdev(f1s),
        "fold_test_accuracy": accs, "fold_best_epoch": [r["best_epoch"] for r in fold_results],
        "train_seconds": sum(r["train_seconds"] for r in fold_results),
        "seconds_per_epoch": statistics.mean(r["seconds_per_epoch"] for r in fold_results),
        "num_parameters": round(statistics.mean(r["num_parameters"] for r in fold_results)),
        "test_confusion_matrix_summed": matrix.tolist(),
        "std_note": "sample standard deviation (n-1) over the folds",
        "protocol": protocol(args),
    }
    plot_confusion_matrix(matrix, labels.names, out / "confusion_matrix.png",
                          title=f"{args.cv}-fold CV, test folds summed")
    (out / "results.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    log(f"{args.cv}-fold CV: accuracy {summary['cv_accuracy_mean']:.4f} +- {summary['cv_accuracy_std']:.4f}, "
        f"macro F1 {summary['test_f1_macro']:.4f}; {summary['seconds_per_epoch']:.1f} s/epoch; "
        f"results in {out / 'results.json'}")
    return summary


def main(argv: list[str] | None = None, prog: str = "textcnn train") -> int:
    """Entry point of ``textcnn train``."""
    args = build_parser(prog).parse_args(argv)
    try:
        run(args, log=lambda s: print(s, flush=True))
    except ValueError as exc:  # data files (ClassificationDataError), vector files, configuration
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
