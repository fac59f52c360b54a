r"""Sentence classification with a (pre)trained BERT: the ``minibert finetune`` and ``minibert classify`` commands.

Three ways to turn an encoder into a classifier, chosen with ``--mode``:

* ``full`` -- fine-tuning (transfer learning): start from the weights of
  ``--init`` and train everything, encoder and a new linear head, with a small
  learning rate;
* ``probe`` -- frozen features: the encoder is frozen (no gradients, and eval
  mode, so no dropout), each sentence's vector is computed *once* and cached,
  and only a linear classifier ($C \cdot K + K$ parameters) is trained on
  the cached vectors;
* ``scratch`` -- the control: the same architecture and tokenizer as
  ``--init``, but randomly initialised weights, trained like ``full``.

The sentence vector (``--pooling``) is the pooler output $\tanh(W_p
h_{[CLS]} + b_p)$, the raw $h_{[CLS]}$, or the mean of the final hidden
states over the real (non-padding) tokens; see
:func:`minibert.model.sentence_features`. The loss is the softmax
cross-entropy over the $K$ classes (one label per sentence).

One run, top to bottom (:func:`train_run`): read the data (the readers and
options of ``textcnn train``); load the encoder and its tokenizer from
``--init`` (a ``minibert pretrain`` run folder or its ``export/``, or any
transformers BERT folder, including the sentence-transformers layout);
tokenize once; AdamW (no weight decay on biases and LayerNorm) with linear
warm-up then linear decay; after every epoch, dev metrics; keep the epoch with
the best dev accuracy; test metrics of that epoch; write ``metrics.jsonl``,
``results.json``, ``confusion_matrix.png`` and ``export/``, a folder that
``transformers.AutoModelForSequenceClassification`` and ``AutoTokenizer``
load (with ``id2label``/``label2id``), and that :func:`load_classifier` and
``minibert classify`` read.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

from minibert.classification_data import (ClassificationDataError, LabelMap, dev_split, read_examples,
                                          stratified_kfold)
from minibert.classify import (CLASSIFIER_FILE, Classifier, ClassifierError, batch_order, collate,  # noqa: F401
                               encode_texts, load_classifier, logits_of, model_folder, predict_logits)
from minibert.hf import _read_weights, load_hf_state_dict, save_pretrained
from minibert.metrics import classification_metrics, plot_confusion_matrix
from minibert.model import POOLINGS, BertConfig, BertForSequenceClassification, sentence_features
from minibert.tokenization import load_tokenizer
from minibert.training_utils import (PRECISIONS, atomic_write_text, autocast, hardware_string, learning_rate,
                                     parameter_groups, pick_device, resolve_precision)

MODES = ("full", "probe", "scratch")
#: Default peak learning rate per mode: small for fine-tuning, larger for a linear probe and from scratch.
DEFAULT_LR = {"full": 5e-5, "probe": 1e-2, "scratch": 5e-4}
#: Default epochs per mode: a probe is cheap (cached features), fine-tuning converges in a few epochs.
DEFAULT_EPOCHS = {"full": 3, "probe": 30, "scratch": 10}


class FinetuneError(ValueError):
    """Bad input: the message is one sentence saying what and what to do."""


# ----------------------------------------------------------------------------
# the initial model and its tokenizer


def load_initial_model(path, num_labels: int, pooling: str, mode: str):
    """``(model, tokenizer, folder)`` to start a run from: a new :class:`BertForSequenceClassification`.

    ``full``/``probe``: the encoder weights of ``path`` (any classification
    head in it is dropped: the head is always new). ``scratch``: the same
    config, weights freshly initialised. The tokenizer is the folder's own.
    """
    try:
        folder = model_folder(path)
        config = BertConfig.load(folder)
        tokenizer = load_tokenizer(folder)
    except ClassifierError as exc:
        raise FinetuneError(f"--init: {exc}") from None
    except (FileNotFoundError, ValueError) as exc:
        raise FinetuneError(f"cannot load --init {folder}: {exc}") from None
    if tokenizer.vocab_size > config.vocab_size:
        raise FinetuneError(f"--init {folder}: the tokenizer has {tokenizer.vocab_size} tokens but the model only "
                            f"{config.vocab_size} embeddings; they do not belong together.")
    model = BertForSequenceClassification(config, num_labels, pooling=pooling)
    if mode != "scratch":
        try:
            state = {k: v for k, v in _read_weights(folder).items() if not k.startswith("classifier.")}
        except (FileNotFoundError, ImportError) as exc:
            raise FinetuneError(f"cannot load --init {folder}: {exc}") from None
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="classification head")  # the head is new on purpose
            try:
                load_hf_state_dict(model, state)
            except ValueError as exc:
                raise FinetuneError(f"--init {folder}: {exc}") from None
    return model, tokenizer, folder


# ----------------------------------------------------------------------------
# probe: the frozen encoder's sentence vectors


@torch.no_grad()
def encoder_features(model: BertForSequenceClassification, id_lists: list[list[int]], pad_id: int,
                     device, batch_size: int = 128, precision: str = "fp32") -> dict:
    """Every kind of sentence vector, ``{pooling: (N, C)}``, in the order of ``id_lists``, in eval mode.

    One encoder pass gives all of :data:`~minibert.model.POOLINGS` (the
    pooler output, $h_{[CLS]}$ and the masked mean), so probes of the three
    poolings share it.
    """
    was_training = model.training
    model.eval()
    out = {pooling: torch.zeros(len(id_lists), model.config.hidden_size) for pooling in POOLINGS}
    for chunk in batch_order([len(x) for x in id_lists], batch_size):
        input_ids, mask = collate([id_lists[i] for i in chunk], pad_id)
        input_ids, mask = input_ids.to(device), mask.to(device)
        with autocast(device, precision):
            encoded = model.bert(input_ids, attention_mask=mask)
            for pooling in POOLINGS:
                out[pooling][chunk] = sentence_features(encoded, mask, pooling).float().cpu()
    model.train(was_training)
    return out


# ----------------------------------------------------------------------------
# one training run


def _format_seconds(seconds: float) -> str:
    m, s = divmod(int(max(seconds, 0)), 60)
    return f"{m}m{s:02d}s"


class FeatureCache:
    """Probe mode: each text's sentence vectors, computed once by one frozen encoder and reused.

    Reused across epochs, folds, seeds and poolings of the same ``--init``
    and ``--max-seq-len`` (``key``); a different encoder empties the cache.
    """

    def __init__(self):
        self.key = None
        self.rows: dict[str, dict] = {}
        self.seconds = 0.0

    def get(self, model, tokenizer, texts, max_seq_len, device, precision, key) -> torch.Tensor:
        """Vectors (N, C) of ``texts`` for ``model.pooling``; only texts not seen before go through the encoder."""
        if key != self.key:
            self.key, self.rows = key, {}
        new = sorted(set(t for t in texts if t not in self.rows))
        if new:
            t0 = time.perf_counter()
            feats = encoder_features(model, encode_texts(tokenizer, new, max_seq_len), tokenizer.pad_id,
                                     device, precision=precision)
            for i, text in enumerate(new):
                self.rows[text] = {pooling: feats[pooling][i] for pooling in POOLINGS}
            self.seconds += time.perf_counter() - t0
        return torch.stack([self.rows[t][model.pooling] for t in texts])


def train_run(train, dev, test, labels: LabelMap, args, out: Path, tag: str = "", log=print,
              cache: FeatureCache | None = None) -> dict:
    """Train one classifier; ``train``/``dev``/``test`` are ``(texts, label_ids)`` (``test`` may be None).

    Keeps the epoch with the best dev accuracy (the earliest on ties), reports
    the test metrics of that epoch, writes the run folder ``out`` and returns
    the results dict.
    """
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(args.device)
    precision = resolve_precision(args.precision, device)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.mode]
    epochs = args.epochs if args.epochs is not None else DEFAULT_EPOCHS[args.mode]
    model, tokenizer, init_folder = load_initial_model(args.init, len(labels), args.pooling, args.mode)
    model.to(device)
    pad = tokenizer.pad_id
    t_start = time.perf_counter()

    # ---- inputs: token ids for fine-tuning, cached sentence vectors for the probe
    if args.mode == "probe":
        for p in model.bert.parameters():
            p.requires_grad_(False)
        cache = cache if cache is not None else FeatureCache()
        key = (str(init_folder.resolve()), args.max_seq_len, precision)
        feats = {name: cache.get(model, tokenizer, split[0], args.max_seq_len, device, precision, key).to(device)
                 for name, split in (("train", train), ("dev", dev), ("test", test)) if split is not None}
        log(f"{tag}probe: {sum(len(f) for f in feats.values())} sentence vectors ({args.pooling}) from the frozen "
            f"encoder, {cache.seconds:.1f} s so far")
        lengths = [1] * len(train[1])
    else:
        ids = {name: encode_texts(tokenizer, split[0], args.max_seq_len)
               for name, split in (("train", train), ("dev", dev), ("test", test)) if split is not None}
        lengths = [len(x) for x in ids["train"]]
    y_train = torch.tensor(train[1], dtype=torch.long)

    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    optimizer = torch.optim.AdamW(parameter_groups(model, args.weight_decay), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    steps_per_epoch = math.ceil(len(y_train) / args.batch_size)
    total_steps = epochs * steps_per_epoch
    warmup = int(round(args.warmup * total_steps))

    def dev_logits(name):
        if args.mode == "probe":
            model.eval()
            with torch.no_grad():
                return model.classify_features(feats[name])["logits"].float().cpu()
        return logits_of(model, ids[name], pad, device, precision=precision)

    metrics_file = (out / "metrics.jsonl").open("w", encoding="utf-8")
    best = {"dev_accuracy": -1.0}
    step, tokens, train_time = 0, 0, 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        if args.mode == "probe":
            model.bert.eval()       # frozen means no dropout either
        t0 = time.perf_counter()
        loss_sum, seen = 0.0, 0
        for batch in batch_order(lengths, args.batch_size, rng):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, total_steps, warmup, lr)
            y = y_train[batch].to(device)
            with autocast(device, precision):
                if args.mode == "probe":
                    result = model.classify_features(feats["train"][batch], y)
                else:
                    input_ids, mask = collate([ids["train"][i] for i in batch], pad)
                    input_ids, mask = input_ids.to(device), mask.to(device)
                    result = model(input_ids, attention_mask=mask, labels=y)
                    tokens += int(mask.sum())
            loss = result["loss"]
            if not torch.isfinite(loss):
                raise FinetuneError(f"the training loss became {loss.item()} at step {step + 1}; "
                                    f"lower --lr or use --precision fp32.")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if args.clip_grad:
                torch.nn.utils.clip_grad_norm_(trainable, args.clip_grad)
            optimizer.step()
            step += 1
            loss_sum += loss.item() * len(batch)
            seen += len(batch)
            if args.log_every and step % args.log_every == 0:
                elapsed = train_time + time.perf_counter() - t0
                log(f"{tag}step {step:5d}/{total_steps} | epoch {epoch} | loss {loss_sum / seen:.4f} | "
                    f"lr {optimizer.param_groups[0]['lr']:.2e} | {tokens / max(elapsed, 1e-9):,.0f} tok/s | "
                    f"ETA {_format_seconds(elapsed / step * (total_steps - step))}")
        train_time += time.perf_counter() - t0
        dev_m = classification_metrics(dev[1], dev_logits("dev").argmax(-1), len(labels))
        record = {"tag": tag.strip(), "epoch": epoch, "step": step, "train_loss": loss_sum / seen,
                  "dev_accuracy": dev_m["accuracy"], "dev_f1_macro": dev_m["f1_macro"],
                  "lr": optimizer.param_groups[0]["lr"], "epoch_seconds": time.perf_counter() - t0}
        metrics_file.write(json.dumps(record) + "\n")
        metrics_file.flush()
        improved = dev_m["accuracy"] > best["dev_accuracy"]
        if improved:
            state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            best = {"epoch": epoch, "dev_accuracy": dev_m["accuracy"], "dev": dev_m, "state": state}
        log(f"{tag}epoch {epoch}/{epochs} | train loss {record['train_loss']:.4f} | dev accuracy "
            f"{dev_m['accuracy']:.4f} | {record['epoch_seconds']:.1f} s" + ("  *" if improved else ""))
    metrics_file.close()
    train_seconds = time.perf_counter() - t_start

    model.load_state_dict(best["state"])
    model.eval()
    results = {
        "mode": args.mode, "pooling": args.pooling, "init": str(init_folder),
        "best_epoch": best["epoch"], "dev_accuracy": best["dev_accuracy"], "dev_f1_macro": best["dev"]["f1_macro"],
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "num_trainable_parameters": n_trainable,
        "train_seconds": train_seconds,
        "tokens_per_second": tokens / max(train_time, 1e-9) if args.mode != "probe" else None,
        "feature_seconds": cache.seconds if args.mode == "probe" else None,
        "train_examples": len(train[1]), "dev_examples": len(dev[1]),
        "lr": lr, "epochs": epochs, "hardware": hardware_string(device), "precision": precision,
    }
    if test is not None:
        t = classification_metrics(test[1], dev_logits("test").argmax(-1), len(labels))
        results.update(test_examples=len(test[1]), test_accuracy=t["accuracy"],
                       test_precision_macro=t["precision_macro"], test_recall_macro=t["recall_macro"],
                       test_f1_macro=t["f1_macro"], test_confusion_matrix=t["confusion_matrix"])
        plot_confusion_matrix(t["confusion_matrix"], labels.names, out / "confusion_matrix.png",
                              title=f"test, epoch {best['epoch']} (accuracy {t['accuracy']:.3f})")
    export = out / "export"
    model.cpu()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the pooling note is recorded in results.json instead
        save_pretrained(model, export, label_names=labels.names)
    tokenizer.save(export)
    atomic_write_text(json.dumps({"labels": labels.names, "max_seq_len": args.max_seq_len, "mode": args.mode,
                                  "pooling": args.pooling}, indent=1) + "\n", export / CLASSIFIER_FILE)
    if args.pooling != "pooler":
        results["export_note"] = (f"transformers' BertForSequenceClassification classifies the pooler output, not "
                                  f"the {args.pooling} vector: load this export with minibert.finetune.load_classifier")
    atomic_write_text(json.dumps(results, indent=1) + "\n", out / "results.json")
    return results


# ----------------------------------------------------------------------------
# the command


def protocol(args) -> dict:
    """The settings that define a run, recorded in ``results.json``."""
    return {k: getattr(args, k) for k in ("init", "mode", "pooling", "max_seq_len", "epochs", "batch_size", "lr",
                                          "warmup", "weight_decay", "clip_grad", "seed", "cv", "dev_fraction",
                                          "train", "dev", "test", "limit")}


def run(args, log=print, cache: FeatureCache | None = None) -> dict:
    """Train (or cross-validate) as the parsed ``args`` say; returns what ``results.json`` holds.

    ``cache``: a :class:`FeatureCache` to share the probe's sentence vectors with other runs of the same process.
    """
    if args.cv and (args.dev or args.test):
        raise FinetuneError("--cv K splits --train itself; drop --dev and --test.")
    out = Path(args.out)
    if (out / "results.json").exists() and not args.overwrite:
        raise FinetuneError(f"{out} already holds a finished run (results.json); choose another --out or "
                            f"pass --overwrite.")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model_folder(args.init)   # fail on a wrong --init before reading the data
    except ClassifierError as exc:
        raise FinetuneError(f"--init: {exc}") from None
    texts, raw = read_examples(args.train)
    if args.limit:
        texts, raw = texts[:args.limit], raw[:args.limit]
    labels = LabelMap.from_labels(raw, source=str(args.train))
    y = labels.encode(raw, source=str(args.train))
    log(f"train: {len(y)} examples from {args.train}, classes {labels.names}")

    def subset(idx):
        return [texts[i] for i in idx], [y[i] for i in idx]

    def labelled(path):
        t, r = read_examples(path)
        return t, labels.encode(r, source=str(path))

    if cache is None and args.mode == "probe":
        cache = FeatureCache()
    if not args.cv:
        if args.dev:
            train, dev = (texts, y), labelled(args.dev)
        else:
            tr, dv = dev_split(y, args.dev_fraction, seed=args.seed)
            train, dev = subset(tr), subset(dv)
        test = labelled(args.test) if args.test else None
        log(f"{args.mode} ({args.pooling}) from {args.init}: train {len(train[1])}, dev {len(dev[1])}"
            + (f", test {len(test[1])}" if test else ""))
        result = train_run(train, dev, test, labels, args, out, log=log, cache=cache)
        result["protocol"] = protocol(args)
        atomic_write_text(json.dumps(result, indent=1) + "\n", out / "results.json")
        log(f"best dev epoch {result['best_epoch']}: dev accuracy {result['dev_accuracy']:.4f}"
            + (f", test accuracy {result['test_accuracy']:.4f}, macro F1 {result['test_f1_macro']:.4f}"
               if "test_accuracy" in result else "")
            + f"; {result['train_seconds']:.0f} s; results in {out / 'results.json'}")
        return result

    fold_results = []
    for f, (train_idx, test_idx) in enumerate(stratified_kfold(y, args.cv, seed=args.seed), start=1):
        fold_out = out / f"fold_{f:02d}"
        if (fold_out / "results.json").exists():
            fold_results.append(json.loads((fold_out / "results.json").read_text(encoding="utf-8")))
            log(f"fold {f}/{args.cv}: already done (test accuracy {fold_results[-1]['test_accuracy']:.4f})")
            continue
        tr, dv = dev_split([y[i] for i in train_idx], args.dev_fraction, seed=args.seed + f)
        fold_args = argparse.Namespace(**{**vars(args), "seed": args.seed + f})
        result = train_run(subset([train_idx[i] for i in tr]), subset([train_idx[i] for i in dv]), subset(test_idx),
                           labels, fold_args, fold_out, tag=f"fold {f}/{args.cv} ", log=log, cache=cache)
        fold_results.append(result)
        log(f"fold {f}/{args.cv}: best dev epoch {result['best_epoch']}, test accuracy {result['test_accuracy']:.4f}")
    summary = {"cv_folds": args.cv}
    for key in ("test_accuracy", "test_precision_macro", "test_recall_macro", "test_f1_macro"):
        values = [r[key] for r in fold_results]
        summary[key] = statistics.mean(values)
        summary[f"cv_{key[len('test_'):]}_mean"] = statistics.mean(values)
        summary[f"cv_{key[len('test_'):]}_std"] = statistics.stdev(values)
    matrix = torch.tensor([r["test_confusion_matrix"] for r in fold_results]).sum(0)
    summary.update(
        fold_test_accuracy=[r["test_accuracy"] for r in fold_results],
        best_epoch=[r["best_epoch"] for r in fold_results],
        num_parameters=fold_results[0]["num_parameters"],
        num_trainable_parameters=fold_results[0]["num_trainable_parameters"],
        train_seconds=sum(r["train_seconds"] for r in fold_results),
        test_confusion_matrix_summed=matrix.tolist(), mode=args.mode, pooling=args.pooling,
        std_note="sample standard deviation (n-1) over the folds", protocol=protocol(args))
    plot_confusion_matrix(matrix, labels.names, out / "confusion_matrix.png",
                          title=f"{args.cv}-fold CV, test folds summed")
    atomic_write_text(json.dumps(summary, indent=1) + "\n", out / "results.json")
    log(f"{args.cv}-fold CV: accuracy {summary['cv_accuracy_mean']:.4f} +- {summary['cv_accuracy_std']:.4f}, "
        f"macro F1 {summary['test_f1_macro']:.4f}; results in {out / 'results.json'}")
    return summary


def build_parser(prog: str = "minibert finetune") -> argparse.ArgumentParser:
    """The command-line options of ``minibert finetune``."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("model")
    g.add_argument("--init", required=True,
                   help="a `minibert pretrain` run folder or its export/, or a transformers BERT folder "
                        "(config.json + model.safetensors or pytorch_model.bin, with vocab.txt or tokenizer.json; "
                        "sentence-transformers folders too)")
    g.add_argument("--mode", choices=MODES, default="full",
                   help="full: fine-tune everything; probe: frozen encoder (eval mode), cached sentence vectors, "
                        "a linear classifier only; scratch: same architecture and tokenizer, random weights")
    g.add_argument("--pooling", choices=POOLINGS, default="pooler",
                   help="sentence vector: pooler = tanh(W h_CLS + b); cls = h_CLS; mean = mean over real tokens")
    g.add_argument("--max-seq-len", type=int, default=128, help="ids per sentence, [CLS] and [SEP] included")
    g = p.add_argument_group("data (as `textcnn train`)")
    g.add_argument("--train", required=True,
                   help="training examples: '<label> <text>' lines, .tsv (sentence/label header) or .csv (text/label)")
    g.add_argument("--dev", help="dev examples (same formats); default: --dev-fraction of --train, stratified")
    g.add_argument("--test", help="test examples; the metrics are reported at the best dev epoch")
    g.add_argument("--cv", type=int, default=0, metavar="K",
                   help="K-fold cross-validation on --train (then --dev/--test are not allowed)")
    g.add_argument("--dev-fraction", type=float, default=0.1, help="dev share of train when no --dev")
    g.add_argument("--limit", type=int, default=0, help="use only the first N training examples (quick tests)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=None,
                   help="epochs (default per mode: " + ", ".join(f"{m} {e}" for m, e in DEFAULT_EPOCHS.items()) + ")")
    g.add_argument("--batch-size", type=int, default=32, help="sentences per step")
    g.add_argument("--lr", type=float, default=None,
                   help="peak AdamW learning rate (default per mode: "
                        + ", ".join(f"{m} {v:g}" for m, v in DEFAULT_LR.items()) + ")")
    g.add_argument("--warmup", type=float, default=0.1,
                   help="fraction of the steps with linear warm-up from 0 to --lr; then linear decay to 0")
    g.add_argument("--weight-decay", type=float, default=0.01,
                   help="AdamW weight decay (never on biases and LayerNorm parameters)")
    g.add_argument("--clip-grad", type=float, default=1.0, help="clip the global gradient norm (0: off)")
    g.add_argument("--seed", type=int, default=0, help="seed of the splits, the head's initialisation, dropout and batches")
    g = p.add_argument_group("hardware and output")
    g.add_argument("--device", choices=("auto", "cuda", "mps", "cpu"), default="auto",
                   help="auto picks CUDA, then MPS, then CPU")
    g.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto = bf16 autocast on a CUDA GPU that supports it, else fp32")
    g.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    g.add_argument("--out", default="runs/finetune", help="output folder")
    g.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    g.add_argument("--log-every", type=int, default=50, help="print a progress line every N steps (0: never)")
    return p


def _check_args(args, prog: str) -> None:
    for name in ("max_seq_len", "batch_size"):
        if getattr(args, name) < 1:
            raise FinetuneError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}.")
    if args.max_seq_len < 3:
        raise FinetuneError(f"--max-seq-len {args.max_seq_len} leaves no room for a token between [CLS] and [SEP].")
    if args.epochs is not None and args.epochs < 1:
        raise FinetuneError(f"--epochs must be at least 1, got {args.epochs}.")
    if args.lr is not None and not args.lr > 0:
        raise FinetuneError(f"--lr must be > 0, got {args.lr}.")
    if not 0 <= args.warmup < 1:
        raise FinetuneError(f"--warmup is a fraction of the steps in [0, 1), got {args.warmup}.")
    if args.cv == 1 or args.cv < 0:
        raise FinetuneError(f"--cv K needs K >= 2 (or 0 for no cross-validation), got {args.cv}.")


def main(argv: list[str] | None = None, prog: str = "minibert finetune") -> int:
    """Entry point of ``minibert finetune``."""
    args = build_parser(prog).parse_args(argv)
    try:
        _check_args(args, prog)
        run(args, log=lambda s: print(s, flush=True))
    except (FinetuneError, ClassificationDataError, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
