r"""Pretrain a mini-BERT with masked-language modelling (MLM) and next-sentence
prediction (NSP): the ``minibert pretrain`` command.

One run, top to bottom:

1. find the corpus (``--train``/``--valid`` files, ``--data-dir``, or a
   WikiText-2 download), train a SentencePiece tokenizer on the training file
   (or load ``--tokenizer``);
2. cut documents into NSP sentence pairs of at most ``--seq-len`` tokens and
   mask 15% of the tokens (80% ``[MASK]``, 10% random, 10% kept) afresh each
   epoch; the valid pairs are masked once with a fixed seed, so every
   evaluation scores the very same predictions and the curves are comparable;
3. optimise the summed objective

   $$\mathcal{L} = \frac{1}{|M|}\sum_{i \in M} -\log p_\theta(x_i \mid \tilde{x})
                 + \frac{1}{N}\sum_{n=1}^{N} -\log p_\theta(y_n \mid \tilde{x}^{(n)})$$

   where $M$ is the set of masked positions of the *global* batch (all
   micro-batches and all processes), $\tilde{x}$ the masked input, $N$ the
   number of sentence pairs and $y_n$ their NSP labels, with AdamW (no weight
   decay on biases and LayerNorm), linear warm-up then linear decay, gradient
   clipping and gradient accumulation;
4. every ``--eval-every`` steps and at the end, evaluate on the valid pairs:
   MLM loss, MLM accuracy, perplexity $\exp(\text{MLM loss})$, NSP accuracy;
5. write ``metrics.jsonl``, ``curves.png``, ``checkpoint.pt`` (every
   ``--save-every`` steps, atomically), ``results.json`` and an ``export/``
   folder that ``transformers.BertForPreTraining.from_pretrained`` loads.

Dividing by the global $|M|$ (not by each micro-batch's own count) is what
makes gradient accumulation and ``torchrun`` with $P$ processes give the same
gradient as one process with the whole batch: each process backpropagates
$P \cdot \mathcal{L}_{\text{local}}$ and DDP averages over the $P$ processes.

Multi-GPU / multi-node: ``torchrun --nproc_per_node 4 -m minibert.pretrain ...``.
Only rank 0 prints and writes. The global batch is
``--batch-size`` x processes x ``--grad-accum``.

Test hooks (environment variables, used by ``tests/test_pretrain.py``):
``MINIBERT_FAULT_NONFINITE_AT_STEP=N`` turns the loss of step ``N`` into NaN
(to test the stop-on-NaN path); ``MINIBERT_STEP_DELAY=SECONDS`` sleeps after
every step (so a test can SIGKILL a run mid-way).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

from minibert.cli import CLIError
from minibert.model import PRESETS, BertConfig, BertForPreTraining
from minibert.pretraining_data import PretrainingDataset, build_examples, generator_for_epoch, iterate_batches
from minibert.tokenization import SentencePieceTokenizer, load_tokenizer
from minibert.training_utils import (
    PRECISIONS,
    Distributed,
    atomic_torch_save,
    atomic_write_text,
    autocast,
    enable_tf32,
    hardware_string,
    learning_rate,
    parameter_groups,
    pick_device,
    plot_curves,
    read_metrics,
    resolve_precision,
    rng_state,
    set_rng_state,
    setup_distributed,
    teardown_distributed,
)
from minibert.wikitext import documents, find_corpus

IGNORE_INDEX = -100
CHECKPOINT = "checkpoint.pt"
VALID_BATCH_SIZE = 32   # fixed, so the valid masks do not depend on --batch-size or the number of processes

# The settings that define a run; ``--resume`` takes them from the checkpoint.
RUN_KEYS = ("preset", "set", "vocab_size", "train", "valid", "data_dir", "tokenizer",
            "max_steps", "batch_size", "grad_accum", "seq_len", "lr", "warmup_steps",
            "weight_decay", "clip_grad", "mlm_probability", "whole_word_mask", "seed",
            "eval_batches")


class PretrainError(CLIError):
    """Bad input or state: the message is one sentence saying what and what to do."""


class NonFiniteLoss(Exception):
    """The training loss became NaN or infinite."""


# ----------------------------------------------------------------------------
# command line


class _HelpFormatter(argparse.HelpFormatter):
    """Append "(default: X)" to an option's help when it has a meaningful default not already explained."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" not in text and action.default not in (None, False, [], argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


def build_parser(prog: str = "minibert pretrain") -> argparse.ArgumentParser:
    """The ``minibert pretrain`` options; the defaults train the ``tiny`` preset on a laptop CPU."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Pretrain a mini-BERT with masked-language modelling and next-sentence "
                    "prediction. Without --train/--valid/--data-dir it uses WikiText-2 "
                    "($MINIBERT_DATA_DIR, the cache, or a download on first use).",
        formatter_class=_HelpFormatter)
    g = p.add_argument_group("model")
    g.add_argument("--preset", default="tiny",
                   help="model size: tiny, mini, small, medium or base (see minibert.model.PRESETS)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one BertConfig field, e.g. --set hidden_dropout_prob=0; repeatable")
    g.add_argument("--vocab-size", type=int, default=None,
                   help="SentencePiece vocabulary size to train (default: the preset's vocab_size)")
    g = p.add_argument_group("data")
    g.add_argument("--train", default=None, help="training text file (WikiText raw format or plain "
                                                 "text: one paragraph per line, blank lines between documents)")
    g.add_argument("--valid", default=None, help="validation text file, same format")
    g.add_argument("--data-dir", default=None,
                   help="folder holding wikitext-2-raw/ (default: $MINIBERT_DATA_DIR, then the cache)")
    g.add_argument("--no-download", action="store_true",
                   help="never download WikiText; fail if it is not found locally")
    g.add_argument("--tokenizer", default=None,
                   help="folder of a saved minibert tokenizer to use instead of training one")
    g.add_argument("--seq-len", type=int, default=128,
                   help="tokens per sentence pair, [CLS] and [SEP]s included (<= max_position_embeddings)")
    g.add_argument("--mlm-probability", type=float, default=0.15, help="fraction of tokens to predict")
    g.add_argument("--whole-word-mask", action="store_true",
                   help="mask all pieces of a word together")
    g = p.add_argument_group("optimisation")
    g.add_argument("--max-steps", type=int, default=1000, help="optimizer steps to train for")
    g.add_argument("--batch-size", type=int, default=32,
                   help="sentence pairs per micro-batch and process; global batch = this x processes x --grad-accum")
    g.add_argument("--grad-accum", type=int, default=1,
                   help="micro-batches whose gradients are summed before each optimizer step")
    g.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of AdamW")
    g.add_argument("--warmup-steps", type=int, default=100,
                   help="steps of linear warm-up from 0 to --lr; then linear decay to 0 at --max-steps")
    g.add_argument("--weight-decay", type=float, default=0.01,
                   help="AdamW weight decay (never on biases and LayerNorm parameters)")
    g.add_argument("--clip-grad", type=float, default=1.0, help="clip the global gradient norm to this")
    g.add_argument("--seed", type=int, default=1234,
                   help="seed of the initialisation, NSP pairing, masking and dropout")
    g = p.add_argument_group("hardware")
    g.add_argument("--device", default="auto", choices=("auto", "cuda", "mps", "cpu"),
                   help="auto picks CUDA, then MPS, then CPU")
    g.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto = bf16 autocast on a CUDA GPU that supports it, else fp32; "
                        "fp16 = float16 autocast with a GradScaler (CUDA only)")
    g.add_argument("--compile", action="store_true", help="compile the model with torch.compile")
    g = p.add_argument_group("output")
    g.add_argument("--out", default=None, help="output folder (default: runs/<preset>)")
    g.add_argument("--resume", action="store_true",
                   help="continue the run saved in --out/checkpoint.pt exactly where it stopped "
                        "(run settings are read from the checkpoint)")
    g.add_argument("--log-every", type=int, default=10, help="print a progress line every N steps")
    g.add_argument("--eval-every", type=int, default=200,
                   help="evaluate on the valid split every N steps (and at the end)")
    g.add_argument("--eval-batches", type=int, default=50,
                   help="evaluate on the first N valid batches of 32 pairs (0 = all of them)")
    g.add_argument("--save-every", type=int, default=200,
                   help="write checkpoint.pt every N steps (and at the end)")
    return p


def parse_overrides(items: list[str]) -> dict:
    """``["hidden_size=32", "hidden_act=gelu"]`` -> ``{"hidden_size": 32, "hidden_act": "gelu"}``."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise PretrainError(f"--set {item!r} is not KEY=VALUE; write e.g. --set hidden_size=64.")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


# ----------------------------------------------------------------------------
# data


def read_documents(path: str | os.PathLike, role: str) -> list[list[str]]:
    """The documents (lists of sentences) of a text file, or one clear error."""
    path = Path(path)
    if not path.is_file():
        raise PretrainError(f"the {role} file {path} does not exist; check --{role} or --data-dir.")
    try:
        docs = documents(path)
    except ValueError as exc:   # WikiTextError: not UTF-8, empty, no document (one sentence each)
        raise PretrainError(f"{role} corpus: {str(exc).rstrip('.')}.") from None
    docs = [[s for s in doc if s.strip()] for doc in docs]
    docs = [doc for doc in docs if doc]
    if not docs:
        raise PretrainError(f"the {role} file {path} contains no text; give a file with paragraphs "
                            f"of running text.")
    return docs


def build_dataset(docs, tokenizer, args, seed: int, role: str):
    """NSP pairs of a corpus wrapped in a masking ``PretrainingDataset``."""
    try:
        examples = build_examples(docs, tokenizer, args.seq_len, seed=seed)
    except ValueError as exc:
        raise PretrainError(f"the {role} corpus cannot give sentence pairs: {exc}".rstrip(".") + ".") from None
    if len(examples) == 0:
        raise PretrainError(f"the {role} corpus gives no sentence pair of at most {args.seq_len} tokens; "
                            f"give more text (an NSP pair needs at least two sentences).")
    return PretrainingDataset(examples, tokenizer, args.seq_len, mlm_probability=args.mlm_probability,
                              whole_word_mask=args.whole_word_mask)


def fixed_valid_batches(docs, tokenizer, args) -> tuple:
    """The valid pairs and their batches, masked once with seeds derived from ``args.seed``.

    Every evaluation (and ``scripts/unigram_baseline.py``) scores exactly these
    masked positions, so numbers at different steps, or of different
    predictors, are comparable. Returns ``(dataset, list_of_batches)``.
    """
    valid_set = build_dataset(docs, tokenizer, args, args.seed + 1, "valid")
    batches = list(iterate_batches(valid_set, VALID_BATCH_SIZE, torch.Generator().manual_seed(args.seed + 2),
                                   shuffle=False, drop_last=False))
    if args.eval_batches:
        batches = batches[:args.eval_batches]
    return valid_set, batches


def training_stream(dataset, global_batch: int, seed: int, epoch: int, skip: int, ctx: Distributed):
    """Yield ``(epoch, index_in_epoch, batch)`` forever, starting at batch ``skip`` of ``epoch``.

    Epoch ``e`` shuffles and masks with a generator that depends only on
    ``(seed, e)``, so the stream is a pure function of (seed, epoch, index):
    a resumed run skips the batches it already trained on and continues with
    exactly the batches an uninterrupted run would have seen. Every process
    masks the same *global* batch and keeps its own rows, so the data do not
    depend on the number of processes either.
    """
    while True:
        batches = iterate_batches(dataset, global_batch, generator_for_epoch(seed, epoch), rank=ctx.rank,
                                  world_size=ctx.world_size, shuffle=True, drop_last=True, start_batch=skip)
        for index, batch in enumerate(batches, start=skip):
            yield epoch, index, batch
        epoch, skip = epoch + 1, 0


# ----------------------------------------------------------------------------
# loss and evaluation


def pretraining_sums(model, batch: dict) -> dict:
    r"""Forward one batch; return the *summed* MLM/NSP losses and counts (to be divided globally).

    The model decodes only the masked positions and computes each mean
    cross-entropy once; the sums are mean x count,
    $\sum_{i \in M} \ell_i = |M| \cdot \bar\ell$, so no loss is computed twice.
    ``mlm_logits`` is ``(N_masked, V)``, aligned with ``labels[labels != -100]``.
    """
    labels = batch["mlm_labels"]                                        # (B, T), -100 = not predicted
    nsp_labels = batch["nsp_labels"]                                    # (B,)
    out = model(batch["input_ids"], token_type_ids=batch["token_type_ids"],
                attention_mask=batch["attention_mask"], mlm_labels=labels, nsp_labels=nsp_labels)
    targets = labels[labels != IGNORE_INDEX]                            # (N_masked,)
    n_masked = torch.tensor(targets.numel(), device=labels.device)
    # a batch with nothing masked has a NaN mean; its sum is 0
    mlm_loss_sum = torch.where(n_masked > 0, out["mlm_loss"].float() * n_masked, torch.zeros_like(n_masked,
                               dtype=torch.float32))
    return {
        "mlm_loss_sum": mlm_loss_sum,
        "mlm_correct": (out["mlm_logits"].argmax(-1) == targets).sum(),
        "mlm_count": n_masked,
        "nsp_loss_sum": out["nsp_loss"].float() * nsp_labels.numel(),
        "nsp_correct": (out["nsp_logits"].argmax(-1) == nsp_labels).sum(),
        "nsp_count": torch.tensor(nsp_labels.numel(), device=nsp_labels.device),
    }


STAT_KEYS = ("mlm_loss_sum", "mlm_correct", "mlm_count", "nsp_loss_sum", "nsp_correct", "nsp_count")


@torch.no_grad()
def evaluate(model, batches: list[dict], device, precision: str, ctx: Distributed) -> dict:
    """MLM loss, MLM accuracy, perplexity and NSP loss/accuracy over the fixed valid batches.

    $\\text{perplexity} = \\exp(\\text{MLM loss})$, the loss being the mean
    negative log-likelihood of the masked tokens in nats. Batches are shared
    out over the processes and the sums added up.
    """
    was_training = model.training
    model.eval()
    totals = torch.zeros(len(STAT_KEYS), dtype=torch.float64, device=device)
    for batch in batches[ctx.rank::ctx.world_size]:
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast(device, precision):
            sums = pretraining_sums(model, batch)
        totals += torch.stack([sums[k].double() for k in STAT_KEYS])
    ctx.all_reduce_sum(totals)
    model.train(was_training)
    t = dict(zip(STAT_KEYS, totals.tolist()))
    mlm_loss = t["mlm_loss_sum"] / max(t["mlm_count"], 1)
    return {
        "mlm_loss": mlm_loss,
        "mlm_accuracy": t["mlm_correct"] / max(t["mlm_count"], 1),
        "perplexity": math.exp(min(mlm_loss, 700.0)),
        "nsp_loss": t["nsp_loss_sum"] / max(t["nsp_count"], 1),
        "nsp_accuracy": t["nsp_correct"] / max(t["nsp_count"], 1),
        "masked_tokens": int(t["mlm_count"]),
        "pairs": int(t["nsp_count"]),
    }


# ----------------------------------------------------------------------------
# the run


def _format_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _resolve_data(args, say) -> tuple[Path, Path, str]:
    """The (train, valid) files and a note about any offline fallback."""
    if args.train or args.valid:
        if not (args.train and args.valid):
            raise PretrainError("give both --train and --valid (or neither, to use WikiText-2).")
        return Path(args.train), Path(args.valid), ""
    try:
        train, valid, note = find_corpus(data_dir=args.data_dir, download=not args.no_download)
    except (FileNotFoundError, OSError, ValueError, RuntimeError) as exc:
        raise PretrainError(str(exc).rstrip(".") + ".") from None
    if note:
        say(note if note.lower().startswith("note") else f"note: {note}")
    return Path(train), Path(valid), note or ""


def _load_or_train_tokenizer(args, train_path: Path, out: Path, ctx: Distributed, vocab_size: int, say):
    """Rank 0 trains (or copies) the tokenizer into ``out/tokenizer``; every rank then loads it."""
    folder = out / "tokenizer"
    if ctx.is_main and not (args.resume and folder.is_dir()):
        if args.tokenizer:
            if not Path(args.tokenizer).is_dir():
                raise PretrainError(f"--tokenizer {args.tokenizer} is not a folder; give a folder "
                                    f"written by a tokenizer's save().")
            load_tokenizer(args.tokenizer).save(folder)
            say(f"tokenizer: loaded {args.tokenizer}")
        else:
            t0 = time.time()
            try:
                SentencePieceTokenizer.train([str(train_path)], vocab_size, folder=str(folder), seed=args.seed)
            except (ValueError, RuntimeError) as exc:
                raise PretrainError(f"tokenizer training on {train_path} failed: "
                                    f"{str(exc).strip().splitlines()[-1].rstrip('.')} (--vocab-size).") from None
            say(f"tokenizer: trained SentencePiece ({vocab_size} pieces) on {train_path} "
                f"in {time.time() - t0:.1f}s")
    ctx.barrier()
    return load_tokenizer(folder)


def run(args, prog: str = "minibert pretrain") -> dict:
    """Train as ``args`` says and return the results dict (also written to ``results.json``)."""
    ctx = setup_distributed(args.device)
    say = (lambda *a: print(*a, flush=True)) if ctx.is_main else (lambda *a: None)
    try:
        return _run(args, ctx, say)
    finally:
        teardown_distributed(ctx)


def _run(args, ctx: Distributed, say) -> dict:
    started = time.time()
    out = Path(args.out or f"runs/{args.preset}")

    # ---- resume: the run's settings come from its checkpoint ---------------------------
    checkpoint = None
    if args.resume:
        path = out / CHECKPOINT
        if not path.is_file():
            raise PretrainError(f"--resume: there is no {CHECKPOINT} in {out}; start without --resume "
                                f"or point --out at the folder of the run to continue.")
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        for key in RUN_KEYS:
            setattr(args, key, checkpoint["args"][key])
        say(f"resuming {out} from step {checkpoint['step']}")

    # ---- checks that need no data -------------------------------------------------------
    if args.preset not in PRESETS:
        raise PretrainError(f"unknown preset {args.preset!r}; choose one of {', '.join(PRESETS)}.")
    for name in ("max_steps", "batch_size", "grad_accum", "seq_len", "log_every", "eval_every", "save_every"):
        if getattr(args, name) < 1:
            raise PretrainError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(args, name)}.")
    overrides = parse_overrides(args.set)
    try:
        probe = BertConfig.from_preset(args.preset, **{k: v for k, v in overrides.items() if k != "vocab_size"})
    except (TypeError, ValueError) as exc:
        raise PretrainError(f"--set: {exc}".rstrip(".") + ".") from None
    vocab_size = args.vocab_size or overrides.get("vocab_size") or probe.vocab_size
    if args.seq_len > probe.max_position_embeddings:
        raise PretrainError(f"--seq-len {args.seq_len} is longer than the model's max_position_embeddings "
                            f"({probe.max_position_embeddings}); lower --seq-len or "
                            f"--set max_position_embeddings={args.seq_len}.")

    try:
        device = pick_device(args.device, ctx.local_rank)
        precision = resolve_precision(args.precision, device)
    except ValueError as exc:
        raise PretrainError(str(exc)) from None
    if device.type == "cuda":
        enable_tf32()
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if not args.resume and (out / CHECKPOINT).exists():
            say(f"note: starting a new run in {out}; its old {CHECKPOINT} will be overwritten "
                f"(use --resume to continue it instead)")
    ctx.barrier()

    # ---- data and tokenizer ------------------------------------------------------------
    train_path, valid_path, data_note = _resolve_data(args, say)
    train_docs = read_documents(train_path, "train")
    valid_docs = read_documents(valid_path, "valid")
    tokenizer = _load_or_train_tokenizer(args, train_path, out, ctx, vocab_size, say)
    config = BertConfig.from_preset(args.preset, **{**overrides, "vocab_size": tokenizer.vocab_size})

    t0 = time.time()
    train_set = build_dataset(train_docs, tokenizer, args, args.seed, "train")
    valid_set, valid_batches = fixed_valid_batches(valid_docs, tokenizer, args)
    if len(train_set) < args.batch_size * ctx.world_size:
        raise PretrainError(f"the training corpus gives {len(train_set)} sentence pairs, fewer than one global "
                            f"micro-batch of {args.batch_size * ctx.world_size}; lower --batch-size or give more text.")
    n_valid = sum(len(b["nsp_labels"]) for b in valid_batches)
    say(f"data: {len(train_set):,} train pairs from {train_path}; valid: {n_valid:,} of the {len(valid_set):,} "
        f"pairs of {valid_path} (masked once), prepared in {time.time() - t0:.1f}s")

    # ---- model and optimizer -----------------------------------------------------------
    torch.manual_seed(args.seed)                       # the same initial weights on every process
    raw_model = BertForPreTraining(config).to(device)
    n_params = sum(p.numel() for p in raw_model.parameters())
    optimizer = torch.optim.AdamW(parameter_groups(raw_model, args.weight_decay), lr=args.lr,
                                  betas=(0.9, 0.999), eps=1e-6, fused=device.type == "cuda")
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    step, epoch, position, train_seconds, tokens_seen = 0, 0, 0, 0.0, 0
    if checkpoint is not None:
        raw_model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if checkpoint.get("scaler"):
            scaler.load_state_dict(checkpoint["scaler"])
        step, epoch, position = checkpoint["step"], checkpoint["epoch"], checkpoint["position"]
        train_seconds, tokens_seen = checkpoint["train_seconds"], checkpoint["tokens_seen"]
        states = checkpoint["rng"]
        set_rng_state(states[ctx.rank] if len(states) == ctx.world_size else states[0])
    else:
        torch.manual_seed(args.seed + 1000 * (ctx.rank + 1))   # dropout differs between processes
    model = raw_model
    if args.compile:
        model = torch.compile(model)
    if ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=[ctx.local_rank] if device.type == "cuda" else None)

    global_micro = args.batch_size * ctx.world_size
    global_batch = global_micro * args.grad_accum
    say(f"model: {args.preset} ({config.num_hidden_layers} layers, hidden {config.hidden_size}, "
        f"{config.num_attention_heads} heads, vocab {config.vocab_size}), {n_params:,} parameters; "
        f"device {device}, precision {precision}, {ctx.world_size} process(es), "
        f"global batch {global_batch} x {args.seq_len} tokens")

    # ---- bookkeeping -------------------------------------------------------------------
    metrics_path = out / "metrics.jsonl"
    if ctx.is_main:
        kept = [r for r in read_metrics(metrics_path) if r["step"] <= step] if checkpoint else []
        atomic_write_text("".join(json.dumps(r) + "\n" for r in kept), metrics_path)

    def log(record: dict) -> None:
        if ctx.is_main:
            with open(metrics_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def save_checkpoint() -> None:
        states = [rng_state()]
        if ctx.enabled:
            states = [None] * ctx.world_size
            torch.distributed.all_gather_object(states, rng_state())
        if ctx.is_main:
            atomic_torch_save({
                "model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(), "config": config.to_dict(),
                "step": step, "epoch": epoch, "position": position,
                "train_seconds": train_seconds, "tokens_seen": tokens_seen, "rng": states,
                "args": {k: getattr(args, k) for k in RUN_KEYS},
            }, out / CHECKPOINT)
        ctx.barrier()

    fault_step = int(os.environ.get("MINIBERT_FAULT_NONFINITE_AT_STEP", "0"))
    step_delay = float(os.environ.get("MINIBERT_STEP_DELAY", "0"))
    stream = training_stream(train_set, global_micro, args.seed, epoch, position, ctx)
    window = torch.zeros(len(STAT_KEYS) + 1, dtype=torch.float64, device=device)  # + real tokens
    window_time, window_start_step, valid_result = 0.0, step, None
    params = [p for p in raw_model.parameters() if p.requires_grad]
    model.train()

    # ---- the loop ----------------------------------------------------------------------
    while step < args.max_steps:
        tick = time.time()
        lr = learning_rate(step, args.max_steps, args.warmup_steps, args.lr)
        for group in optimizer.param_groups:
            group["lr"] = lr

        micro_batches = []
        for _ in range(args.grad_accum):
            epoch, index, batch = next(stream)
            micro_batches.append({k: v.to(device) for k, v in batch.items()})
        position = index + 1
        # the global numbers of masked tokens and of pairs: the denominators of the loss
        counts = torch.stack([sum(b["mlm_labels"].ne(IGNORE_INDEX).sum() for b in micro_batches),
                              sum(torch.tensor(b["nsp_labels"].numel(), device=device) for b in micro_batches)]
                             ).double()
        n_masked, n_pairs = ctx.all_reduce_sum(counts).tolist()

        step_loss = 0.0
        for m, batch in enumerate(micro_batches):
            last = m == len(micro_batches) - 1       # DDP all-reduces the gradients only then
            no_sync = model.no_sync() if ctx.enabled and not last else contextlib.nullcontext()
            with no_sync:
                with autocast(device, precision):
                    sums = pretraining_sums(model, batch)
                loss = sums["mlm_loss_sum"] / max(n_masked, 1) + sums["nsp_loss_sum"] / n_pairs
                if step + 1 == fault_step:
                    loss = loss * float("nan")
                scaler.scale(loss * ctx.world_size).backward()   # DDP averages: x P gives the global sum
            step_loss += loss.item()
            window[:-1] += torch.stack([sums[key].detach().double() for key in STAT_KEYS])
            window[-1] += batch["attention_mask"].sum()

        finite = torch.tensor([0.0 if math.isfinite(step_loss) else 1.0], device=device)
        if ctx.all_reduce_sum(finite).item() > 0:
            raise NonFiniteLoss(step + 1)

        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, args.clip_grad)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        if step_delay:
            time.sleep(step_delay)
        elapsed = time.time() - tick
        train_seconds += elapsed
        window_time += elapsed

        if step % args.log_every == 0 or step == args.max_steps:
            ctx.all_reduce_sum(window)
            w = dict(zip(STAT_KEYS, window[:-1].tolist()))
            tokens = int(window[-1].item())
            tokens_seen += tokens
            tps = tokens / max(window_time, 1e-9)
            eta = (args.max_steps - step) * window_time / max(step - window_start_step, 1)
            record = {"split": "train", "step": step, "epoch": epoch,
                      "loss": w["mlm_loss_sum"] / max(w["mlm_count"], 1) + w["nsp_loss_sum"] / max(w["nsp_count"], 1),
                      "mlm_loss": w["mlm_loss_sum"] / max(w["mlm_count"], 1),
                      "nsp_loss": w["nsp_loss_sum"] / max(w["nsp_count"], 1),
                      "mlm_accuracy": w["mlm_correct"] / max(w["mlm_count"], 1),
                      "lr": lr, "tokens_per_second": tps, "train_seconds": train_seconds}
            log(record)
            say(f"step {step:>{len(str(args.max_steps))}}/{args.max_steps} | loss {record['loss']:.4f} | "
                f"mlm {record['mlm_loss']:.4f} | nsp {record['nsp_loss']:.4f} | lr {lr:.2e} | "
                f"{tps:,.0f} tok/s | ETA {_format_seconds(eta)}")
            window.zero_()
            window_time, window_start_step = 0.0, step

        if step % args.eval_every == 0 or step == args.max_steps:
            valid_result = evaluate(raw_model, valid_batches, device, precision, ctx)
            log({"split": "valid", "step": step, **valid_result})
            say(f"  valid @ {step}: mlm loss {valid_result['mlm_loss']:.4f} | mlm acc "
                f"{valid_result['mlm_accuracy']:.4f} | ppl {valid_result['perplexity']:.1f} | "
                f"nsp acc {valid_result['nsp_accuracy']:.4f}")
            if ctx.is_main:
                plot_curves(read_metrics(metrics_path), out / "curves.png",
                            title=f"minibert pretrain --preset {args.preset} ({train_path.name})")

        if step % args.save_every == 0 or step == args.max_steps:
            save_checkpoint()

    # ---- the end: results and export ---------------------------------------------------
    if valid_result is None:   # resumed a finished run
        valid_result = evaluate(raw_model, valid_batches, device, precision, ctx)
    results = {
        "steps": step,
        "tokens_per_second": tokens_seen / max(train_seconds, 1e-9),
        "valid_mlm_loss": valid_result["mlm_loss"],
        "valid_mlm_accuracy": valid_result["mlm_accuracy"],
        "valid_perplexity": valid_result["perplexity"],
        "valid_nsp_loss": valid_result["nsp_loss"],
        "valid_nsp_accuracy": valid_result["nsp_accuracy"],
        "valid_masked_tokens": valid_result["masked_tokens"],
        "valid_pairs": valid_result["pairs"],
        "train_seconds": train_seconds,
        "wall_seconds_this_process": time.time() - started,
        "tokens_seen": tokens_seen,
        "parameters": n_params,
        "global_batch_size": global_batch,
        "world_size": ctx.world_size,
        "device": str(device),
        "precision": precision,
        "compiled": bool(args.compile),
        "hardware": hardware_string(device),
        "config": config.to_dict(),
        "data": {"train": str(train_path), "valid": str(valid_path), "note": data_note,
                 "train_pairs": len(train_set), "valid_pairs_used": valid_result["pairs"]},
        "tokenizer": {"kind": type(tokenizer).__name__, "vocab_size": tokenizer.vocab_size,
                      "folder": str(out / "tokenizer")},
        "args": {k: getattr(args, k) for k in RUN_KEYS},
    }
    if ctx.is_main:
        export = out / "export"
        try:
            from minibert.hf import save_pretrained
        except ImportError as exc:
            say(f"note: no export folder written (minibert.hf.save_pretrained unavailable: {exc})")
        else:
            save_pretrained(raw_model, export)
            tokenizer.save(export)
            results["export"] = str(export)
            say(f"export: {export} (transformers.BertForPreTraining.from_pretrained loads it)")
        atomic_write_text(json.dumps(results, indent=2) + "\n", out / "results.json")
        plot_curves(read_metrics(metrics_path), out / "curves.png",
                    title=f"minibert pretrain --preset {args.preset} ({train_path.name})")
        say(f"done: {step} steps in {_format_seconds(train_seconds)} of training; valid MLM accuracy "
            f"{results['valid_mlm_accuracy']:.4f}, perplexity {results['valid_perplexity']:.1f}, NSP accuracy "
            f"{results['valid_nsp_accuracy']:.4f}; results in {out / 'results.json'}")
    ctx.barrier()
    return results


def main(argv: list[str] | None = None, prog: str = "minibert pretrain") -> int:
    """Entry point of ``minibert pretrain`` and ``python -m minibert.pretrain``; returns the exit code."""
    args = build_parser(prog).parse_args(argv)
    try:
        run(args, prog)
    except CLIError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except NonFiniteLoss as exc:
        out = Path(args.out or f"runs/{args.preset}")
        kept = out / CHECKPOINT
        where = (f"the last good checkpoint {kept} is kept" if kept.exists()
                 else "no checkpoint had been written yet")
        print(f"{prog}: error: the training loss became NaN or infinite at step {exc.args[0]}, so the run "
              f"stopped; {where} (lower --lr or use --precision fp32, then --resume).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
