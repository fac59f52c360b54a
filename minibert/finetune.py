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
load (with ``id2label``/``label2id``), and that :func:`minibert.classify.load_classifier` and
``minibert classify`` read.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
import warnings
from pathlib import Path

import torch

from minibert.classification_data import (ClassificationDataError, LabelMap, Split, add_data_arguments,
                                          check_data_arguments, load_splits, train_all_splits)
from minibert.classify import (CLASSIFIER_FILE, ClassifierError, batch_order, collate, encode_texts, logits_of,
                               model_folder)
from minibert.cli import (ArgumentParser, CLIError, non_negative_float, non_negative_int, positive_float,
                          positive_int, run_command)
from minibert import fast_dropout as fast_dropout_lib
from minibert.fast_dropout import use_fast_dropout
from minibert.hf import _read_weights, load_hf_state_dict, save_pretrained
from minibert.metrics import BestEpoch, classification_metrics, plot_confusion_matrix
from minibert.model import LAST_LAYER_CHOICES, POOLINGS, BertConfig, BertForSequenceClassification, sentence_features
from minibert.tokenization import load_tokenizer
from minibert.training_utils import (FUSED_ADAMW_DEVICES, PRECISIONS, MetricsLog, add_malloc_tuning_argument,
                                     apply_malloc_tuning, atomic_write_folder, atomic_write_json, autocast,
                                     learning_rate, parameter_groups, pick_device, prepare_run_folder,
                                     progress_line, resolve_precision, set_seed, write_results)

COMMAND = "minibert finetune"
MODES = ("full", "probe", "scratch")
#: Default peak learning rate per mode: small for fine-tuning, larger for a linear probe and from scratch.
DEFAULT_LR = {"full": 5e-5, "probe": 1e-2, "scratch": 5e-4}
#: Default epochs per mode: a probe is cheap (cached features), fine-tuning converges in a few epochs.
DEFAULT_EPOCHS = {"full": 3, "probe": 30, "scratch": 10}


class FinetuneError(CLIError):
    """Bad input or a failed run: the message is one sentence saying what and what to do."""


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


def train_run(split: Split, labels: LabelMap, args, out: Path, log=print,
              cache: FeatureCache | None = None) -> dict:
    """Train one classifier on a :class:`~minibert.classification_data.Split` into the run folder ``out``.

    Keeps the epoch with the best dev accuracy (the earliest on ties), reports
    the test metrics of that epoch, writes ``metrics.jsonl``, ``results.json``,
    ``confusion_matrix.png`` and ``export/``, and returns the results dict.
    """
    tag = f"{split.name} " if split.name else ""
    device = pick_device(args.device)
    precision = resolve_precision(args.precision, device)
    set_seed(split.seed)
    rng = random.Random(split.seed)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.mode]
    epochs = args.epochs if args.epochs is not None else DEFAULT_EPOCHS[args.mode]
    model, tokenizer, init_folder = load_initial_model(args.init, len(labels), args.pooling, args.mode)
    model.sparse_last_layer = args.last_layer == "read"
    model.to(device)
    fast_dropout = fast_dropout_lib.applies(args.fast_dropout, device)
    if fast_dropout:
        use_fast_dropout(model)     # same parameters and eval outputs; the training masks are drawn faster
    fused_adamw = args.fused_adamw and device.type in FUSED_ADAMW_DEVICES
    pad = tokenizer.pad_id
    texts = {"train": split.train_texts, "dev": split.dev_texts, "test": split.test_texts}
    texts = {name: t for name, t in texts.items() if t is not None}
    t_start = time.perf_counter()

    # ---- inputs: token ids for fine-tuning, cached sentence vectors for the probe
    if args.mode == "probe":
        for p in model.bert.parameters():
            p.requires_grad_(False)
        cache = cache if cache is not None else FeatureCache()
        key = (str(init_folder.resolve()), args.max_seq_len, precision)
        feats = {name: cache.get(model, tokenizer, t, args.max_seq_len, device, precision, key).to(device)
                 for name, t in texts.items()}
        log(f"{tag}probe: {sum(len(f) for f in feats.values())} sentence vectors ({args.pooling}) from the frozen "
            f"encoder, {cache.seconds:.1f} s so far")
        lengths = [1] * len(split.train_labels)
    else:
        ids = {name: encode_texts(tokenizer, t, args.max_seq_len) for name, t in texts.items()}
        lengths = [len(x) for x in ids["train"]]
    y_train = torch.tensor(split.train_labels, dtype=torch.long)

    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    optimizer = torch.optim.AdamW(parameter_groups(model, args.weight_decay), lr=lr, betas=(0.9, 0.999), eps=1e-8,
                                  fused=fused_adamw or None)
    total_steps = epochs * math.ceil(len(y_train) / args.batch_size)
    warmup = int(round(args.warmup * total_steps))

    def metrics_of(name: str, gold: list) -> dict:
        """Accuracy, macro P/R/F1 and confusion matrix of the current model on one split (eval mode)."""
        if args.mode == "probe":
            model.eval()
            with torch.no_grad():
                logits = model.classify_features(feats[name])["logits"]
        else:
            logits = logits_of(model, ids[name], pad, device, precision=precision)
        return classification_metrics(gold, logits.argmax(-1).cpu(), len(labels))

    best, best_state = BestEpoch(), None
    step, tokens, train_time = 0, 0, 0.0
    with MetricsLog(out / "metrics.jsonl") as metrics:
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
                        result = model.classify_features(feats["train"][batch], y)          # (B, C) -> loss
                    else:
                        input_ids, mask = collate([ids["train"][i] for i in batch], pad)   # (B, T)
                        input_ids, mask = input_ids.to(device), mask.to(device)
                        result = model(input_ids, attention_mask=mask, labels=y)
                        tokens += int(mask.sum())
                loss = result["loss"]
                if not torch.isfinite(loss):
                    raise FinetuneError(f"the training loss became {loss.item()} at step {step + 1}; "
                                        f"lower --lr or use --precision fp32")
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
                    fields = [f"epoch {epoch}", f"loss {loss_sum / seen:.4f}",
                              f"lr {optimizer.param_groups[0]['lr']:.2e}"]
                    log(tag + progress_line("step", step, total_steps, fields,
                                            rate=tokens / elapsed if tokens else None,
                                            eta_seconds=elapsed / step * (total_steps - step)))
            train_time += time.perf_counter() - t0
            metrics.log("train", step, epoch=epoch, loss=loss_sum / seen, lr=optimizer.param_groups[0]["lr"],
                        epoch_seconds=time.perf_counter() - t0)
            dev_m = metrics_of("dev", split.dev_labels)
            metrics.log("dev", step, epoch=epoch, accuracy=dev_m["accuracy"], f1_macro=dev_m["f1_macro"])
            improved = best.update(epoch, dev_m)
            if improved:   # keep the weights of the best dev epoch; the test set is scored once, at the end
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            log(tag + progress_line("epoch", epoch, epochs, [f"train loss {loss_sum / seen:.4f}",
                                                             f"dev {dev_m['accuracy']:.4f}"],
                                    rate=time.perf_counter() - t0, rate_unit="s/epoch", mark="*" if improved else ""))
    train_seconds = time.perf_counter() - t_start

    model.load_state_dict(best_state)
    model.eval()
    if split.test_texts is not None:
        best.test = metrics_of("test", split.test_labels)
        plot_confusion_matrix(best.test["confusion_matrix"], labels.names, out / "confusion_matrix.png",
                              title=f"test, epoch {best.epoch} (accuracy {best.test['accuracy']:.3f})")
    results = {**best.results(), "mode": args.mode, "pooling": args.pooling, "last_layer": args.last_layer,
               "fast_dropout": fast_dropout, "fused_adamw": fused_adamw,
               "init": str(init_folder),
               "num_trainable_parameters": n_trainable, "lr": lr, "epochs": epochs, "precision": precision,
               "tokens_per_second": tokens / train_time if tokens else None,
               "feature_seconds": cache.seconds if args.mode == "probe" else None,
               "train_examples": len(split.train_labels), "dev_examples": len(split.dev_labels)}
    if split.test_texts is not None:
        results["test_examples"] = len(split.test_labels)
    if args.pooling != "pooler":
        results["export_note"] = (f"transformers' BertForSequenceClassification classifies the pooler output, not "
                                  f"the {args.pooling} vector: load this export with minibert.classify.load_classifier")

    def fill_export(folder: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # the pooling note is in results.json
            save_pretrained(model.cpu(), folder, label_names=labels.names)
        tokenizer.save(folder)
        atomic_write_json({"labels": labels.names, "max_seq_len": args.max_seq_len, "mode": args.mode,
                           "pooling": args.pooling}, folder / CLASSIFIER_FILE)

    atomic_write_folder(out / "export", fill_export)
    return write_results(out, COMMAND, results, num_parameters=sum(p.numel() for p in model.parameters()),
                         train_seconds=train_seconds, args=args, device=device, config=model.config.to_dict())


# ----------------------------------------------------------------------------
# the command


def run(args, log=print, cache: FeatureCache | None = None) -> dict:
    """Train (or cross-validate) as the parsed ``args`` say; returns what ``results.json`` holds.

    ``cache``: a :class:`FeatureCache` to share the probe's sentence vectors with other runs of the same process.
    """
    check_data_arguments(args)
    if args.last_layer == "read" and (args.pooling == "mean" or args.mode == "probe"):
        why = ("--pooling mean reads every position" if args.pooling == "mean" else
               "--mode probe computes every pooling from one full pass, once per sentence")
        raise FinetuneError(f"--last-layer read runs the last layer only at [CLS], but {why}; use --last-layer all")
    prepare_run_folder(args.out, args.resume, args.overwrite, create=False)   # refuse before any work
    try:
        model_folder(args.init)   # a wrong --init fails before the data are read
    except ClassifierError as exc:
        raise FinetuneError(f"--init: {exc}") from None
    device = pick_device(args.device)
    if args.fused_adamw and device.type not in FUSED_ADAMW_DEVICES:
        log(f"--fused-adamw: PyTorch has no fused AdamW for {device.type}; using its default AdamW")
    if args.threads:
        torch.set_num_threads(args.threads)
    apply_malloc_tuning(args.malloc_tuning, log)
    labels, splits = load_splits(args, log=log)
    out = prepare_run_folder(args.out, args.resume, args.overwrite)
    if cache is None and args.mode == "probe":
        cache = FeatureCache()

    def train_split(split: Split, folder: Path) -> dict:
        if not split.number:
            log(f"{args.mode} ({args.pooling}) from {args.init}: train {len(split.train_labels)}, dev "
                f"{len(split.dev_labels)}" + (f", test {len(split.test_labels)}" if split.test_labels else ""))
        return train_run(split, labels, args, prepare_run_folder(folder, overwrite=True) if split.number else folder,
                         log=log, cache=cache)

    return train_all_splits(args, labels, splits, out, train_split, COMMAND, log=log, summary_extra=lambda folds: {
        "best_epoch": [r["best_epoch"] for r in folds],
        "num_trainable_parameters": folds[0]["num_trainable_parameters"]})


def build_parser(prog: str = COMMAND) -> argparse.ArgumentParser:
    """The command-line options of ``minibert finetune``; every number is checked here, before any work."""
    p = ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
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
    g.add_argument("--last-layer", choices=LAST_LAYER_CHOICES, default="all",
                   help="all: the last encoder layer runs at every position; read: after the keys and values, "
                        "only at [CLS], the one position the pooler and cls poolings read (same logits up to "
                        "float round-off, faster; in training other dropout draws). Not with --pooling mean or "
                        "--mode probe")
    g.add_argument("--max-seq-len", type=_seq_len, default=128, help="ids per sentence, [CLS] and [SEP] included (>= 3)")
    add_data_arguments(p)
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=positive_int, default=None,
                   help="epochs (default per mode: " + ", ".join(f"{m} {e}" for m, e in DEFAULT_EPOCHS.items()) + ")")
    g.add_argument("--batch-size", type=positive_int, default=32, help="sentences per step")
    g.add_argument("--lr", type=positive_float, default=None,
                   help="peak AdamW learning rate (default per mode: "
                        + ", ".join(f"{m} {v:g}" for m, v in DEFAULT_LR.items()) + ")")
    g.add_argument("--warmup", type=_warmup_fraction, default=0.1,
                   help="fraction of the steps with linear warm-up from 0 to --lr (0 <= f < 1); then linear decay to 0")
    g.add_argument("--weight-decay", type=non_negative_float, default=0.01,
                   help="AdamW weight decay (never on biases and LayerNorm parameters)")
    g.add_argument("--clip-grad", type=non_negative_float, default=1.0, help="clip the global gradient norm (0: off)")
    g.add_argument("--fast-dropout", choices=fast_dropout_lib.SETTINGS, default="off",
                   help="draw dropout masks from 16 random bits per element (minibert.fast_dropout, as minibert "
                        "pretrain does on the CPU) instead of PyTorch's bernoulli: the same p up to 7.6e-6, other "
                        "random draws, a faster CPU step; auto = on for the CPU. Default off, so that a seeded run "
                        "repeats the tutorials' tables step for step")
    g.add_argument("--fused-adamw", action="store_true",
                   help="the one-kernel AdamW (torch's fused=True, CPU and CUDA): the same update up to float32 "
                        "round-off, a faster step; off by default for the same reason as --fast-dropout")
    g.add_argument("--seed", type=int, default=0,
                   help="seed of the splits, the head's initialisation, dropout and batches")
    g = p.add_argument_group("hardware and output")
    g.add_argument("--device", choices=("auto", "cuda", "mps", "cpu"), default="auto",
                   help="auto picks CUDA, then MPS, then CPU")
    g.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto = bf16 autocast on a CUDA GPU that supports it, else fp32")
    g.add_argument("--threads", type=non_negative_int, default=0, help="CPU threads for torch (0: torch's default)")
    add_malloc_tuning_argument(g)
    g.add_argument("--out", default="runs/finetune", help="output folder")
    g.add_argument("--overwrite", action="store_true", help="delete everything in --out first")
    g.add_argument("--resume", action="store_true",
                   help="with --cv: continue the cross-validation in --out at its first fold without results.json")
    g.add_argument("--log-every", type=non_negative_int, default=50, help="print a progress line every N steps (0: never)")
    return p


def _seq_len(text: str) -> int:
    value = positive_int(text)
    if value < 3:
        raise argparse.ArgumentTypeError(f"{value} leaves no room for a token between [CLS] and [SEP]; give >= 3")
    return value


def _warmup_fraction(text: str) -> float:
    value = non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"is a fraction of the steps, 0 <= f < 1, not {text}")
    return value


def main(argv: list[str] | None = None, prog: str = COMMAND) -> int:
    """Entry point of ``minibert finetune``."""
    return run_command(prog, build_parser(prog), lambda args: run(args, log=lambda s: print(s, flush=True)),
                       argv, known_errors=(ClassificationDataError, FinetuneError))


if __name__ == "__main__":
    sys.exit(main())
