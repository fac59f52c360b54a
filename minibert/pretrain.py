r"""Pretrain a mini-BERT with masked-language modelling (MLM) and next-sentence
prediction (NSP): the ``minibert pretrain`` command.

One run, top to bottom:

1. find the corpus (``--train``/``--valid`` files, ``--data-dir``, or a
   WikiText-2 download), train a SentencePiece tokenizer on the detokenised
   sentences of the training documents, the very text the model reads (or
   load ``--tokenizer``);
2. tokenise the training corpus once into a flat token memmap (``--token-cache``,
   :mod:`minibert.token_cache`; streamed, reused by the next run with the
   same corpus and tokenizer), cut it into NSP sentence pairs (or, with ``--pair-objective sop``,
   sentence-order pairs) of at most ``--seq-len`` tokens, afresh each epoch,
   and mask 15% of the tokens (80% ``[MASK]``, 10% random, 10% kept) afresh
   each epoch; the valid pairs are cut and masked once with a fixed seed, so
   every evaluation scores the very same predictions and the curves are comparable;
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
   ``--save-every`` steps, atomically; a copy under ``snapshots/`` every
   ``--keep-every`` steps), ``results.json`` and an ``export/``
   folder that ``transformers.BertForPreTraining.from_pretrained`` loads.

Dividing by the global $|M|$ (not by each micro-batch's own count) is what
makes gradient accumulation and ``torchrun`` with $P$ processes give the same
gradient as one process with the whole batch: each process backpropagates
$P \cdot \mathcal{L}_{\text{local}}$ and DDP averages over the $P$ processes.

Multi-GPU / multi-node: ``torchrun --nproc_per_node 4 -m minibert.pretrain ...``.
Only rank 0 prints and writes. The global batch is
``--batch-size`` x processes x ``--grad-accum``.

Run folders are never overwritten implicitly: a folder that holds files is
refused unless ``--resume`` (continue it) or ``--overwrite`` (delete it and
start again) is given. ``--resume`` takes the run's settings from its
checkpoint; data paths given on the resume command line win (the stored
ones are absolute, so resuming works from any directory), a different
model or optimisation setting is refused, and ``--max-steps N`` extends the
run (see ``--help``). Ctrl-C prints where the last checkpoint is and the
command that resumes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import torch

from minibert.attention_init import ATTENTION_INITS, mimetic_attention_init_
from minibert.cli import (ArgumentParser, CLIError, given_options, non_negative_float, non_negative_int,
                          positive_float, positive_int, probability, run_command)
from minibert import fast_dropout as fast_dropout_lib
from minibert.fast_dropout import use_fast_dropout
from minibert.flops import last_layer_rows, measure_matmul_peak, mfu, training_step_flops
from minibert.model import IGNORE_INDEX, LAST_LAYER_CHOICES, PRESETS, BertConfig, BertForPreTraining
from minibert.pretraining_data import (
    PAIR_OBJECTIVES,
    EpochPairs,
    PretrainingDataset,
    build_examples,
    generator_for_epoch,
    iterate_batches,
)
from minibert.pair_ranges import RangeEpochPairs
from minibert.token_cache import token_cache
from minibert.tokenization import SentencePieceTokenizer, load_tokenizer, save_for_transformers
from minibert.training_utils import (
    FUSED_ADAMW_DEVICES,
    MALLOC_SAYS,
    PRECISIONS,
    Distributed,
    MetricsLog,
    RunningSums,
    absolute_path,
    add_malloc_tuning_argument,
    apply_malloc_tuning,
    atomic_torch_save,
    atomic_write_folder,
    autocast,
    enable_tf32,
    format_seconds,
    learning_rate,
    parameter_groups,
    pick_device,
    plot_curves,
    prepare_run_folder,
    progress_line,
    read_checkpoint,
    read_metrics,
    resolve_precision,
    rng_state,
    set_rng_state,
    setup_distributed,
    teardown_distributed,
    write_results,
)
from minibert.wikitext import WikiTextError, documents, find_corpus

COMMAND = "minibert pretrain"
CHECKPOINT = "checkpoint.pt"
SNAPSHOTS = "snapshots"   # --keep-every copies of checkpoint.pt
VALID_BATCH_SIZE = 32   # fixed, so the valid masks do not depend on --batch-size or the number of processes

# The settings that define a run; ``--resume`` takes them from the checkpoint.
RUN_KEYS = ("preset", "set", "vocab_size", "train", "valid", "data_dir", "tokenizer",
            "max_steps", "batch_size", "grad_accum", "seq_len", "lr", "warmup_steps",
            "weight_decay", "clip_grad", "mlm_probability", "whole_word_mask", "seed",
            "eval_batches", "pair_objective", "static_pairs", "head_lr_scale",
            "pair_loss_weight", "mlm_loss_weight", "fast_dropout", "attention_init", "last_layer")
#: What a checkpoint written before a RUN_KEY existed ran with.
RUN_KEY_DEFAULTS = {"pair_objective": "nsp", "static_pairs": True, "head_lr_scale": 1.0, "pair_loss_weight": 1.0,
                    "mlm_loss_weight": 1.0, "fast_dropout": "off", "attention_init": "bert", "last_layer": "all"}
#: The peak learning rate of a preset when ``--lr`` is not given. Larger models need smaller steps: the
#: ``mini`` preset at tiny's 2e-3 never leaves the stage of predicting piece frequencies (tutorial 07's
#: ablation, row ``mini``), at 5e-4 it trains; the larger presets take BERT's own 1e-4.
DEFAULT_LR = {"tiny": 2e-3, "mini": 5e-4, "small": 1e-4, "medium": 1e-4, "base": 1e-4}
DATA_KEYS = ("train", "valid", "data_dir")   # may be given again on --resume (the data moved)
OUTPUT_KEYS = ("log_every", "eval_every", "save_every", "keep_every", "token_cache")   # kept on --resume unless given again


class PretrainError(CLIError):
    """Bad input or state: the message is one sentence saying what and what to do."""


class NonFiniteLoss(Exception):
    """The training loss became NaN or infinite."""


# ----------------------------------------------------------------------------
# command line


def build_parser(prog: str = "minibert pretrain") -> argparse.ArgumentParser:
    """The ``minibert pretrain`` options; the defaults train the ``tiny`` preset on a laptop CPU."""
    p = ArgumentParser(
        prog=prog,
        description="Pretrain a mini-BERT with masked-language modelling and next-sentence "
                    "prediction. Without --train/--valid/--data-dir it uses WikiText-2 "
                    "($MINIBERT_DATA_DIR, the cache, or a download on first use).")
    g = p.add_argument_group("model")
    g.add_argument("--preset", default="tiny",
                   help="model size: tiny, mini, small, medium or base (see minibert.model.PRESETS)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one BertConfig field, e.g. --set hidden_dropout_prob=0; repeatable")
    g.add_argument("--vocab-size", type=positive_int, default=None,
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
    g.add_argument("--token-cache", default=None, metavar="DIR",
                   help="folder of token caches: the training corpus tokenised once into a flat memmap, keyed by "
                        "the hashes of the corpus, the tokenizer and the splitting rules, and reused by any run "
                        "that has the same three (default: --out/token_cache, i.e. per run and reused on "
                        "--resume; give one shared DIR together with --tokenizer to tokenise WikiText-103 once "
                        "for many runs)")
    g.add_argument("--seq-len", type=positive_int, default=128,
                   help="tokens per sentence pair, [CLS] and [SEP]s included (<= max_position_embeddings)")
    g.add_argument("--mlm-probability", type=probability, default=0.15,
                   help="fraction of tokens to predict (0 < p <= 1)")
    g.add_argument("--whole-word-mask", action="store_true",
                   help="mask all pieces of a word together")
    g.add_argument("--pair-objective", default="nsp", choices=sorted(PAIR_OBJECTIVES),
                   help="sentence-pair task: nsp = BERT's next-sentence prediction (B follows A, or is from "
                        "another document); sop = ALBERT's sentence-order prediction (B follows A, or A and B "
                        "are swapped)")
    g.add_argument("--pair-loss-weight", type=non_negative_float, default=1.0,
                   help="weight lambda of the pair (NSP/SOP) loss in L = mu L_mlm + lambda L_pair")
    g.add_argument("--mlm-loss-weight", type=non_negative_float, default=1.0,
                   help="weight mu of the MLM loss in L = mu L_mlm + lambda L_pair; 0 trains the pair task alone "
                        "(a diagnostic: can the encoder learn NSP without MLM?)")
    g.add_argument("--static-pairs", action="store_true",
                   help="cut the training pairs once and reuse them every epoch, instead of cutting new "
                        "pairs from the documents each epoch")
    g = p.add_argument_group("optimisation")
    g.add_argument("--max-steps", type=positive_int, default=2500,
                   help="optimizer steps to train for; with --resume a larger N extends the run: the "
                        "learning rate then follows the linear decay to 0 at N from the resumed step on, as "
                        "if N had been given from the start (no new warm-up)")
    g.add_argument("--batch-size", type=positive_int, default=32,
                   help="sentence pairs per micro-batch and process; global batch = this x processes x --grad-accum")
    g.add_argument("--grad-accum", type=positive_int, default=1,
                   help="micro-batches whose gradients are summed before each optimizer step")
    g.add_argument("--lr", type=positive_float, default=None,
                   help="peak learning rate of AdamW (default per preset: tiny 2e-3, mini 5e-4, "
                        "small/medium/base 1e-4)")
    g.add_argument("--warmup-steps", type=non_negative_int, default=100,
                   help="steps of linear warm-up from 0 to --lr (at most --max-steps); then linear decay to 0 "
                        "at --max-steps")
    g.add_argument("--head-lr-scale", type=positive_float, default=1.0,
                   help="multiply the learning rate of the pooler and the pair (NSP/SOP) head by this")
    g.add_argument("--weight-decay", type=non_negative_float, default=0.01,
                   help="AdamW weight decay (never on biases and LayerNorm parameters)")
    g.add_argument("--clip-grad", type=positive_float, default=1.0, help="clip the global gradient norm to this (> 0)")
    g.add_argument("--seed", type=int, default=1234,
                   help="seed of the initialisation, NSP pairing, masking and dropout")
    g = p.add_argument_group("hardware")
    g.add_argument("--device", default="auto", choices=("auto", "cuda", "mps", "cpu"),
                   help="auto picks CUDA, then MPS, then CPU")
    g.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto = bf16 autocast on a CUDA GPU that supports it, else fp32; "
                        "fp16 = float16 autocast with a GradScaler (CUDA only)")
    g.add_argument("--compile", action="store_true", help="compile the model with torch.compile")
    g.add_argument("--attention-init", default="bert", choices=ATTENTION_INITS,
                   help="initial attention weights: bert = N(0, initializer_range^2) as BERT (default); mimetic = "
                        "Trockman & Kolter (2023): every head starts attending to tokens like itself "
                        "(minibert.attention_init; tutorial 07)")
    g.add_argument("--fast-dropout", default="auto", choices=fast_dropout_lib.SETTINGS,
                   help="draw dropout masks from 16 random bits per element (minibert.fast_dropout) instead of "
                        "PyTorch's bernoulli; auto = on for the CPU without --compile, where it makes a step "
                        "faster, off elsewhere (a GPU's dropout is already one fused kernel)")
    g.add_argument("--last-layer", default="read", choices=LAST_LAYER_CHOICES,
                   help="where the last encoder layer runs after its keys and values: read = only at the positions "
                        "the heads read ([CLS] and the masked ones; same loss and gradients, less work; default), "
                        "all = at every position (runs begun before 2026-12-06, which --resume continues so)")
    add_malloc_tuning_argument(g)
    g = p.add_argument_group("output")
    g.add_argument("--out", default=None, help="output folder (default: runs/<preset>)")
    g.add_argument("--resume", action="store_true",
                   help="continue the run saved in --out/checkpoint.pt exactly where it stopped; the run's "
                        "settings are read from the checkpoint: --train/--valid/--data-dir given again win "
                        "(data moved), --max-steps N extends the run, any other setting that differs is refused")
    g.add_argument("--overwrite", action="store_true",
                   help="delete everything in --out first (a folder holding files is otherwise refused)")
    g.add_argument("--log-every", type=positive_int, default=10, help="print a progress line every N steps")
    g.add_argument("--eval-every", type=positive_int, default=200,
                   help="evaluate on the valid split every N steps (and at the end)")
    g.add_argument("--eval-batches", type=non_negative_int, default=50,
                   help="evaluate on the first N valid batches of 32 pairs (0 = all of them)")
    g.add_argument("--save-every", type=positive_int, default=200,
                   help="write checkpoint.pt every N steps (and at the end)")
    g.add_argument("--keep-every", type=non_negative_int, default=0,
                   help="also keep a copy of the checkpoint every N steps as snapshots/step_<N>.pt, which the "
                        "next save does not overwrite: encoders at several pretraining budgets of one run, for "
                        "scripts/transfer_curve.py (0 = keep none)")
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
    _check_corpus_file(path, role)
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


def _check_corpus_file(path: Path, role: str) -> None:
    """One clear error when the corpus file is a folder or missing."""
    if path.is_dir():
        raise PretrainError(f"the {role} file {path} is a folder; give the text file itself (--{role}).")
    if not path.is_file():
        raise PretrainError(f"the {role} file {path} does not exist; check --{role} or --data-dir.")


def token_cache_folder(args, out: Path) -> Path:
    """Where a run keeps its token caches: ``--token-cache`` if given, else ``<out>/token_cache``."""
    return Path(args.token_cache).absolute() if args.token_cache else Path(out) / "token_cache"


def training_pairs(args, cache, tokenizer) -> RangeEpochPairs:
    """The run's training pairs, cut from ``cache`` afresh every epoch (or once, ``--static-pairs``)."""
    return RangeEpochPairs(cache, tokenizer, args.seq_len, args.seed, args.mlm_probability, args.whole_word_mask,
                           args.pair_objective, dynamic=not args.static_pairs, store=cache.folder)


def _train_token_cache(args, train_path: Path, tokenizer, out: Path, ctx: Distributed, say):
    """The training corpus's token cache (:mod:`minibert.token_cache`): rank 0 builds it if needed, all ranks open it."""
    cache_dir = token_cache_folder(args, out)
    t0 = time.time()
    try:
        if ctx.is_main:
            cache, built = token_cache(cache_dir, train_path, tokenizer, out / "tokenizer", say=say)
            say(f"token cache: {'built' if built else 'reused'} {cache.folder} ({cache.num_tokens:,} tokens, "
                f"{cache.num_documents:,} documents) in {time.time() - t0:.1f}s")
        ctx.barrier()
        if not ctx.is_main:
            cache, _ = token_cache(cache_dir, train_path, tokenizer, out / "tokenizer", say=say)
    except (WikiTextError, ValueError) as exc:
        raise PretrainError(f"train corpus: {str(exc).rstrip('.')}.") from None
    return cache


def build_dataset(docs, tokenizer, args, seed: int, role: str):
    """The sentence pairs (``args.pair_objective``) of a corpus, cut once, in a masking ``PretrainingDataset``."""
    try:
        examples = build_examples(docs, tokenizer, args.seq_len, seed=seed,
                                  objective=getattr(args, "pair_objective", "nsp"))
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


def training_stream(pairs: EpochPairs | RangeEpochPairs, global_batch: int, seed: int, epoch: int, skip: int, ctx: Distributed):
    """Yield ``(epoch, index_in_epoch, batch)`` forever, starting at batch ``skip`` of ``epoch``.

    Epoch ``e`` serves the pairs ``pairs.dataset(e)`` (cut with a seed of
    ``(seed, e)``, see :class:`EpochPairs`) and shuffles and masks them with a
    generator that depends only on ``(seed, e)``, so the stream is a pure
    function of (seed, epoch, index):
    a resumed run skips the batches it already trained on and continues with
    exactly the batches an uninterrupted run would have seen. Every process
    masks the same *global* batch and keeps its own rows, so the data do not
    depend on the number of processes either.
    """
    while True:
        batches = iterate_batches(pairs.dataset(epoch), global_batch, generator_for_epoch(seed, epoch), rank=ctx.rank,
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


def pretraining_metrics(sums: dict, mlm_weight: float = 1.0, pair_weight: float = 1.0) -> dict:
    """Means from summed statistics: the two losses, the two accuracies, and ``loss``.

    ``loss`` = mu L_mlm + lambda L_nsp with the run's weights (``mlm_weight``
    mu, ``pair_weight`` lambda; both 1 by default): the objective the step
    minimised, so a run with ``--pair-loss-weight 0`` shows its MLM loss there.
    """
    mlm_loss = sums["mlm_loss_sum"] / max(sums["mlm_count"], 1)
    nsp_loss = sums["nsp_loss_sum"] / max(sums["nsp_count"], 1)
    return {"loss": mlm_weight * mlm_loss + pair_weight * nsp_loss, "mlm_loss": mlm_loss, "nsp_loss": nsp_loss,
            "mlm_accuracy": sums["mlm_correct"] / max(sums["mlm_count"], 1),
            "nsp_accuracy": sums["nsp_correct"] / max(sums["nsp_count"], 1)}


@torch.no_grad()
def evaluate(model, batches: list[dict], device, precision: str, ctx: Distributed) -> dict:
    """MLM loss, MLM accuracy, perplexity and NSP loss/accuracy over the fixed valid batches.

    $\\text{perplexity} = \\exp(\\text{MLM loss})$, the loss being the mean
    negative log-likelihood of the masked tokens in nats. Batches are shared
    out over the processes and the sums added up.
    """
    was_training = model.training
    model.eval()
    totals = RunningSums(STAT_KEYS, device)
    for batch in batches[ctx.rank::ctx.world_size]:
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast(device, precision):
            totals.add(pretraining_sums(model, batch))
    t = totals.totals(ctx)
    model.train(was_training)
    m = pretraining_metrics(t)
    return {
        "mlm_loss": m["mlm_loss"],
        "mlm_accuracy": m["mlm_accuracy"],
        "perplexity": math.exp(min(m["mlm_loss"], 700.0)),
        "nsp_loss": m["nsp_loss"],
        "nsp_accuracy": m["nsp_accuracy"],
        "masked_tokens": int(t["mlm_count"]),
        "pairs": int(t["nsp_count"]),
    }


def _scaled_head_groups(model, weight_decay: float, head_lr_scale: float) -> list[dict]:
    """:func:`parameter_groups`, with the pooler and pair head in groups of their own at ``head_lr_scale`` x lr.

    Each group carries ``lr_scale``; the loop sets ``lr = schedule x lr_scale``.
    """
    groups = parameter_groups(model, weight_decay)
    if head_lr_scale == 1.0:
        return [{**g, "lr_scale": 1.0} for g in groups]
    head = {id(p) for p in [*model.bert.pooler.parameters(), *model.nsp.parameters()]}
    out = []
    for g in groups:
        for scale, params in ((1.0, [p for p in g["params"] if id(p) not in head]),
                              (head_lr_scale, [p for p in g["params"] if id(p) in head])):
            if params:
                out.append({**g, "params": params, "lr_scale": scale})
    return out


# ----------------------------------------------------------------------------
# the run: settings, data, tokenizer


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


def _longest_line(path: Path) -> int:
    with open(path, "rb") as f:
        return max((len(line) for line in f), default=0)


def _load_or_train_tokenizer(args, train_path: Path, read_train_docs, out: Path, ctx: Distributed, vocab_size: int,
                             say):
    """Rank 0 trains (or copies) the tokenizer into ``out/tokenizer``; every rank then loads it.

    The SentencePiece model is trained on the sentences of ``read_train_docs()``
    (called only when a tokenizer is trained)
    (detokenised, one per line), the text the model is trained on, not on the
    raw file with WikiText's `` @-@ `` and spaces before punctuation.
    """
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
                sentences = [sentence for doc in read_train_docs() for sentence in doc]
                SentencePieceTokenizer.train(sentences, vocab_size, folder=str(folder), seed=args.seed)
            except (ValueError, RuntimeError) as exc:
                longest = _longest_line(train_path)
                if longest > 4192:   # SentencePiece's max_sentence_length: longer lines are skipped
                    raise PretrainError(f"tokenizer training on {train_path} failed: its lines are up to "
                                        f"{longest:,} bytes long and SentencePiece skips lines over 4,192 bytes; "
                                        f"put one paragraph per line (blank lines between documents)") from None
                raise PretrainError(f"tokenizer training on {train_path} failed: "
                                    f"{str(exc).strip().splitlines()[-1].rstrip('.')} (--vocab-size).") from None
            say(f"tokenizer: trained SentencePiece ({vocab_size} pieces) on the {len(sentences):,} sentences "
                f"of {train_path} in {time.time() - t0:.1f}s")
    ctx.barrier()
    return load_tokenizer(folder)


def apply_resume_settings(args, stored: dict, given: set, step: int) -> str:
    """Take the run's settings from its checkpoint (``stored``) and say what the resume does.

    Options written on the command line (``given``) win for the data paths
    (:data:`DATA_KEYS`) and for how often to log, evaluate and save
    (:data:`OUTPUT_KEYS`); ``--max-steps`` may extend the run; any other
    setting given with a different value than the run's is refused (the
    model shape, tokenizer and optimisation of a run are fixed).
    """
    for key in OUTPUT_KEYS:
        if key not in given and key in stored:
            setattr(args, key, stored[key])
    for key in RUN_KEYS:
        if key in DATA_KEYS and key in given:
            continue
        if key == "max_steps" and key in given:
            if args.max_steps < step:
                raise PretrainError(f"--max-steps {args.max_steps} is below the {step} steps this run has "
                                    f"already trained; give --max-steps >= {step} to continue or extend it")
            continue
        if key in given and getattr(args, key) != stored[key]:
            flag = "--" + key.replace("_", "-")
            raise PretrainError(f"--resume continues the run with its own {flag} {stored[key]!r}, but "
                                f"{getattr(args, key)!r} was given; drop {flag}, or start a new run in "
                                f"another --out")
        setattr(args, key, stored[key])
    if args.max_steps > stored["max_steps"]:
        return (f"extending the run from --max-steps {stored['max_steps']} to {args.max_steps}: the learning "
                f"rate follows the linear decay to 0 at step {args.max_steps} from step {step} on")
    return ""


def run_settings(out) -> argparse.Namespace:
    """The settings of the run saved in folder ``out``, as ``--resume`` would use them.

    The parser's defaults with the checkpoint's :data:`RUN_KEYS` on top; a
    run that found WikiText by itself (no ``--train``) gets the files it used
    from its ``results.json``. For scripts that rebuild a run's data (e.g.
    ``scripts/unigram_baseline.py``).
    """
    out = Path(out)
    stored = {**RUN_KEY_DEFAULTS, **read_checkpoint(out / CHECKPOINT, "minibert pretrain checkpoint",
                                                    hint="point at the --out folder of a minibert pretrain run")["args"]}
    args = build_parser().parse_args([])
    for key in RUN_KEYS:
        setattr(args, key, stored[key])
    args.out = str(out.absolute())
    results = out / "results.json"
    if args.train is None and results.is_file():
        data = json.loads(results.read_text(encoding="utf-8"))["data"]
        args.train, args.valid = data["train"], data["valid"]
    return args


def resolve_defaults(args) -> None:
    """Fill the settings whose default depends on others: ``--lr`` from :data:`DEFAULT_LR` by ``--preset``."""
    if args.lr is None:
        args.lr = DEFAULT_LR.get(args.preset, DEFAULT_LR["tiny"])


def check_settings(args, say) -> None:
    """Checks between options (each one alone is checked by the parser)."""
    if args.preset not in PRESETS:
        raise PretrainError(f"unknown preset {args.preset!r}; choose one of {', '.join(PRESETS)}.")
    if args.warmup_steps > args.max_steps:
        peak = learning_rate(args.max_steps - 1, args.max_steps, args.warmup_steps, args.lr)
        say(f"note: --warmup-steps {args.warmup_steps} is longer than --max-steps {args.max_steps}, so the "
            f"learning rate never reaches --lr {args.lr:g} (it peaks at {peak:.3g} in the last step)")


def run(args, prog: str = COMMAND, given: set | None = None) -> dict:
    """Train as ``args`` says and return the results dict (also written to ``results.json``).

    ``given`` are the options written on the command line (they win over a
    resumed run's stored settings where that is safe; see :func:`apply_resume_settings`).
    """
    ctx = setup_distributed(args.device)
    say = (lambda *a: print(*a, flush=True)) if ctx.is_main else (lambda *a: None)
    try:
        return _run(args, ctx, say, given if given is not None else set())
    finally:
        teardown_distributed(ctx)


def _run(args, ctx: Distributed, say, given: set) -> dict:
    started = time.time()
    out = prepare_run_folder(args.out or f"runs/{args.preset}", args.resume, args.overwrite, create=False)
    ctx.barrier()   # every process has checked the folder before the main one creates or clears it
    for key in ("train", "valid", "data_dir", "tokenizer", "token_cache"):   # stored absolute: resume works anywhere
        setattr(args, key, absolute_path(getattr(args, key)))

    # ---- resume: the run's settings come from its checkpoint ---------------------------
    checkpoint = None
    if args.resume:
        checkpoint = read_checkpoint(out / CHECKPOINT, "minibert pretrain checkpoint",
                                     hint="start without --resume, or point --out at the folder of the run")
        note = apply_resume_settings(args, {**RUN_KEY_DEFAULTS, **checkpoint["args"]}, given, checkpoint["step"])
        say(f"resuming {out} from step {checkpoint['step']}" + (f"; {note}" if note else ""))
    resolve_defaults(args)
    check_settings(args, say)

    # ---- checks that need no data -------------------------------------------------------
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
    device = pick_device(args.device, ctx.local_rank)
    precision = resolve_precision(args.precision, device)
    if device.type == "cuda":
        enable_tf32()

    # ---- data and tokenizer ------------------------------------------------------------
    train_path, valid_path, data_note = _resolve_data(args, say)
    _check_corpus_file(train_path, "train")
    valid_docs = read_documents(valid_path, "valid")
    if ctx.is_main:
        prepare_run_folder(out, args.resume, args.overwrite)
    ctx.barrier()
    tokenizer = _load_or_train_tokenizer(args, train_path, lambda: read_documents(train_path, "train"), out, ctx,
                                         vocab_size, say)
    config = BertConfig.from_preset(args.preset, **{**overrides, "vocab_size": tokenizer.vocab_size})

    t0 = time.time()
    cache = _train_token_cache(args, train_path, tokenizer, out, ctx, say)
    train_pairs = training_pairs(args, cache, tokenizer)
    try:
        train_set = train_pairs.dataset(0)
    except ValueError as exc:
        raise PretrainError(f"the train corpus cannot give sentence pairs: {exc}".rstrip(".") + ".") from None
    valid_set, valid_batches = fixed_valid_batches(valid_docs, tokenizer, args)
    if len(train_set) < args.batch_size * ctx.world_size:
        raise PretrainError(f"the training corpus gives {len(train_set)} sentence pairs, fewer than one global "
                            f"micro-batch of {args.batch_size * ctx.world_size}; lower --batch-size or give more text.")
    n_valid = sum(len(b["nsp_labels"]) for b in valid_batches)
    say(f"data: {len(train_set):,} {args.pair_objective.upper()} train pairs from {train_path} "
        f"({'the same every epoch' if args.static_pairs else 'cut afresh every epoch'}); valid: {n_valid:,} "
        f"of the {len(valid_set):,} pairs of {valid_path} (cut and masked once), prepared in {time.time() - t0:.1f}s")

    # ---- model and optimizer -----------------------------------------------------------
    malloc = apply_malloc_tuning(args.malloc_tuning)
    torch.manual_seed(args.seed)                       # the same initial weights on every process
    raw_model = BertForPreTraining(config)
    if args.attention_init == "mimetic":
        mimetic_attention_init_(raw_model)             # drawn from the seeded generator: the same on every process
    raw_model = raw_model.to(device)
    # auto: on for the eager CPU step; a compiled model fuses its own dropout masks
    fast_dropout = fast_dropout_lib.applies(args.fast_dropout, device, compiled=args.compile)
    if fast_dropout:
        use_fast_dropout(raw_model)                    # same parameters; only the dropout masks are drawn faster
    raw_model.sparse_last_layer = args.last_layer == "read"   # same loss and gradients either way
    n_params = sum(p.numel() for p in raw_model.parameters())
    # the fused (one-kernel) AdamW exists for CUDA and the CPU; the benchmark gives it to our model on both
    optimizer = torch.optim.AdamW(_scaled_head_groups(raw_model, args.weight_decay, args.head_lr_scale), lr=args.lr,
                                  betas=(0.9, 0.999), eps=1e-6, fused=device.type in FUSED_ADAMW_DEVICES)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    step, epoch, position, train_seconds, tokens_seen = 0, 0, 0, 0.0, 0
    if checkpoint is not None:
        try:
            raw_model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
        except (RuntimeError, ValueError, KeyError):
            raise PretrainError(f"{out / CHECKPOINT} does not fit the model it describes; the file is damaged "
                                f"(start again with --overwrite)") from None
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
        f"global batch {global_batch} x {args.seq_len} tokens; dropout masks "
        f"{'16-bit (--fast-dropout)' if fast_dropout else 'from PyTorch'}; last layer at "
        f"{'the positions the heads read' if raw_model.sparse_last_layer else 'every position'} (--last-layer); "
        f"{MALLOC_SAYS[malloc]} (--malloc-tuning)")
    # the matmul limit of this machine on this model's shapes: MFU = achieved matmul FLOP/s / this
    peak_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    expected_masked = round(args.mlm_probability * args.seq_len)   # per sequence; the last layer runs there

    def matmul_peak() -> float:
        # its random matrices must not consume the training RNG: a resumed run restores that state just above
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            return measure_matmul_peak(config, args.batch_size, args.seq_len,
                                       max(1, args.batch_size * expected_masked), repeats=2, dtype=peak_dtype,
                                       device=device,
                                       last_layer_rows=args.batch_size * min(1 + expected_masked, args.seq_len)
                                       if raw_model.sparse_last_layer else None)

    # A machine can be slow for a moment (a fresh process's memory, a neighbour on a shared host): the peak is
    # measured again after the first step and at every validation, and the highest so far is the one used.
    peak = matmul_peak()
    say(f"matmul peak on this model's shapes: {peak / 1e9:,.0f} GFLOP/s per process, measured again after the "
        f"first step and at every validation, the highest kept (MFU = the step's matmul FLOP/s / this)")

    # ---- bookkeeping -------------------------------------------------------------------
    metrics = MetricsLog(out / "metrics.jsonl", resume_step=step if checkpoint else None, enabled=ctx.is_main)
    title = f"minibert pretrain --preset {args.preset} ({train_path.name})"

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
                "args": {k: getattr(args, k) for k in RUN_KEYS + OUTPUT_KEYS},
            }, out / CHECKPOINT)
        ctx.barrier()

    stream = training_stream(train_pairs, global_micro, args.seed, epoch, position, ctx)
    window = RunningSums(STAT_KEYS + ("tokens",), device)   # the statistics since the last progress line
    window_time, window_start_step, valid_result = 0.0, step, None
    start_step = step                                       # 0, or the step a resumed run continues from
    window_flops = run_flops = run_seconds = 0.0   # matmul FLOPs of this process's steps (for MFU)
    params = [p for p in raw_model.parameters() if p.requires_grad]
    model.train()

    # ---- the loop ----------------------------------------------------------------------
    while step < args.max_steps:
        tick = time.time()
        lr = learning_rate(step, args.max_steps, args.warmup_steps, args.lr)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)

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
                loss = (args.mlm_loss_weight * sums["mlm_loss_sum"] / max(n_masked, 1)
                        + args.pair_loss_weight * sums["nsp_loss_sum"] / n_pairs)
                scaler.scale(loss * ctx.world_size).backward()   # DDP averages: x P gives the global sum
            step_loss += loss.item()
            window_flops += training_step_flops(config, batch["input_ids"].shape[0], batch["input_ids"].shape[1],
                                                int(sums["mlm_count"]),
                                                last_layer_rows(batch["mlm_labels"]) if raw_model.sparse_last_layer
                                                else None)
            window.add({**sums, "tokens": batch["attention_mask"].sum()})

        finite = torch.tensor([0.0 if math.isfinite(step_loss) else 1.0], device=device)
        if ctx.all_reduce_sum(finite).item() > 0:
            raise NonFiniteLoss(step + 1)

        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, args.clip_grad)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        elapsed = time.time() - tick
        train_seconds += elapsed
        window_time += elapsed
        if step == start_step + 1 or step % args.eval_every == 0:   # outside the timed step
            peak = max(peak, matmul_peak())

        if step % args.log_every == 0 or step == args.max_steps:
            w = window.totals(ctx)
            tokens_seen += int(w["tokens"])
            tps = int(w["tokens"]) / max(window_time, 1e-9)
            eta = (args.max_steps - step) * window_time / max(step - window_start_step, 1)
            train = pretraining_metrics(w, args.mlm_loss_weight, args.pair_loss_weight)
            step_mfu = mfu(window_flops, max(window_time, 1e-9), peak)
            run_flops, run_seconds = run_flops + window_flops, run_seconds + window_time
            metrics.log("train", step, epoch=epoch, loss=train["loss"], mlm_loss=train["mlm_loss"],
                        nsp_loss=train["nsp_loss"], mlm_accuracy=train["mlm_accuracy"],
                        nsp_accuracy=train["nsp_accuracy"], lr=lr,
                        tokens_per_second=tps, mfu=step_mfu, train_seconds=train_seconds)
            say(progress_line("step", step, args.max_steps,
                              [f"loss {train['loss']:.4f}", f"mlm {train['mlm_loss']:.4f}",
                               f"nsp {train['nsp_loss']:.4f}", f"lr {lr:.2e}"], rate=tps, eta_seconds=eta,
                              mfu=step_mfu))
            window.reset()
            window_time, window_start_step, window_flops = 0.0, step, 0.0

        if step % args.eval_every == 0 or step == args.max_steps:
            valid_result = evaluate(raw_model, valid_batches, device, precision, ctx)
            metrics.log("valid", step, **valid_result)
            say(f"  valid @ {step}: mlm loss {valid_result['mlm_loss']:.4f} | mlm acc "
                f"{valid_result['mlm_accuracy']:.4f} | ppl {valid_result['perplexity']:.1f} | "
                f"nsp acc {valid_result['nsp_accuracy']:.4f}")
            if ctx.is_main:
                plot_curves(metrics.records(), out / "curves.png", title=title)

        keep = args.keep_every > 0 and step % args.keep_every == 0
        if step % args.save_every == 0 or step == args.max_steps or keep:
            save_checkpoint()
        if keep and ctx.is_main:
            (out / SNAPSHOTS).mkdir(exist_ok=True)
            shutil.copyfile(out / CHECKPOINT, out / SNAPSHOTS / f"step_{step:06d}.pt")
    metrics.close()

    # ---- the end: results, then the export ---------------------------------------------
    if valid_result is None:   # resumed a finished run
        valid_result = evaluate(raw_model, valid_batches, device, precision, ctx)
    results = {
        "steps": step,
        "tokens_per_second": tokens_seen / max(train_seconds, 1e-9),
        # this process's steps (a resumed run: since the resume); per process with DDP
        "mfu": mfu(run_flops, run_seconds, peak) if run_seconds else None,
        "achieved_matmul_gflops": run_flops / run_seconds / 1e9 if run_seconds else None,
        "matmul_peak_gflops": peak / 1e9,
        "valid_mlm_loss": valid_result["mlm_loss"],
        "valid_mlm_accuracy": valid_result["mlm_accuracy"],
        "valid_perplexity": valid_result["perplexity"],
        "valid_nsp_loss": valid_result["nsp_loss"],
        "valid_nsp_accuracy": valid_result["nsp_accuracy"],
        "valid_masked_tokens": valid_result["masked_tokens"],
        "valid_pairs": valid_result["pairs"],
        "wall_seconds_this_process": time.time() - started,
        "tokens_seen": tokens_seen,
        "global_batch_size": global_batch,
        "world_size": ctx.world_size,
    }
    extra = {
        "precision": precision,
        "compiled": bool(args.compile),
        "fast_dropout": fast_dropout,
        "malloc": malloc,
        "config": config.to_dict(),
        "data": {"train": str(train_path), "valid": str(valid_path), "note": data_note,
                 "train_pairs": len(train_set), "valid_pairs_used": valid_result["pairs"]},
        "tokenizer": {"kind": type(tokenizer).__name__, "vocab_size": tokenizer.vocab_size,
                      "folder": str(out / "tokenizer")},
        "export": str(out / "export"),
    }
    if ctx.is_main:
        results = write_results(out, COMMAND, results, num_parameters=n_params, train_seconds=train_seconds,
                                args={k: getattr(args, k) for k in RUN_KEYS + OUTPUT_KEYS}, device=device, **extra)
        plot_curves(read_metrics(out / "metrics.jsonl"), out / "curves.png", title=title)
        say(f"done: {step} steps in {format_seconds(train_seconds)} of training; valid MLM accuracy "
            f"{results['valid_mlm_accuracy']:.4f}, perplexity {results['valid_perplexity']:.1f}, NSP accuracy "
            f"{results['valid_nsp_accuracy']:.4f}; results in {out / 'results.json'}")
        export_run(raw_model, tokenizer, out)
        say(f"export: {out / 'export'} (transformers' AutoTokenizer and BertForPreTraining.from_pretrained load it)")
    ctx.barrier()
    return results


class ExportFailed(Exception):
    """Training finished and its results are written, but the transformers export did not succeed."""


def export_run(model: BertForPreTraining, tokenizer, out: Path) -> Path:
    """Write ``out/export`` (weights, config, tokenizer) through a temporary folder swapped into place."""
    from minibert.hf import save_pretrained

    def fill(folder: Path) -> None:
        save_pretrained(model, folder)
        tokenizer.save(folder)
        if isinstance(tokenizer, SentencePieceTokenizer):   # + tokenizer.json, so AutoTokenizer loads it
            save_for_transformers(tokenizer, folder, model.config.max_position_embeddings)

    try:
        return atomic_write_folder(out / "export", fill)
    except (ImportError, OSError, RuntimeError, ValueError) as exc:
        raise ExportFailed(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None


def _resume_command(out: Path) -> str:
    return f"minibert pretrain --out {out} --resume"


def _interrupted(args) -> str:
    out = Path(args.out or f"runs/{args.preset}").absolute()
    path = out / CHECKPOINT
    if not path.is_file():
        return (f"interrupted before the first checkpoint; nothing to resume in {out} "
                f"(rerun the command with --overwrite to start again)")
    try:
        step = f" (step {read_checkpoint(path, 'minibert pretrain checkpoint')['step']})"
    except CLIError:
        step = ""
    return f"interrupted; the last checkpoint is {path}{step}; resume with: {_resume_command(out)}"


def main(argv: list[str] | None = None, prog: str = COMMAND) -> int:
    """Entry point of ``minibert pretrain`` and ``python -m minibert.pretrain``; returns the exit code."""
    parser = build_parser(prog)
    given = given_options(parser, argv)

    def train(args) -> int:
        out = Path(args.out or f"runs/{args.preset}").absolute()
        try:
            run(args, prog, given)
        except NonFiniteLoss as exc:
            kept = out / CHECKPOINT
            where = (f"the last good checkpoint {kept} is kept" if kept.exists()
                     else "no checkpoint had been written yet")
            print(f"{prog}: error: the training loss became NaN or infinite at step {exc.args[0]}, so the run "
                  f"stopped; {where} (lower --lr or use --precision fp32, then --resume).", file=sys.stderr)
            return 1
        except ExportFailed as exc:
            print(f"{prog}: error: training finished and results.json, curves.png and {CHECKPOINT} are in {out}, "
                  f"but the export failed ({exc}); fix that, then run `{_resume_command(out)}` or "
                  f"`minibert export --checkpoint {out / CHECKPOINT} --out {out / 'export'} --overwrite`.",
                  file=sys.stderr)
            return 1
        return 0

    return run_command(prog, parser, train, argv, on_interrupt=_interrupted)


if __name__ == "__main__":
    sys.exit(main())
