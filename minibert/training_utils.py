"""Helpers of the training commands that are not about any one model: device,
seed, precision, learning-rate schedule, optimizer groups, distributed set-up,
the one atomic write, checkpoint reading, run folders, the metrics log, the
``results.json`` schema, the progress line, RNG state and the curves PNG.

Each training command (``minibert pretrain``, ``textcnn train``, ...) keeps
its loop top to bottom in its own module; the bookkeeping it leans on lives
here, one small function per idea and no control flow of a loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import platform
import random
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist

from minibert.cli import CLIError
from minibert.textio import _temporary_name, atomic_write, atomic_write_json, atomic_write_text  # noqa: F401

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


# ----------------------------------------------------------------------------
# device and precision


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """The device to train on: ``auto`` picks CUDA, then Apple's MPS, then the CPU.

    ``name`` is ``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:N``. Under
    ``torchrun`` each process on a node takes the GPU ``cuda:<LOCAL_RANK>``
    (for ``auto`` and ``cuda``). A device this machine does not have is a
    :class:`~minibert.cli.CLIError` naming ``--device``.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise CLIError("--device mps was asked for but MPS is not available; use --device auto or --device cpu")
        return torch.device("mps")
    kind, _, index = name.partition(":")
    if kind == "cuda" and (not index or index.isdigit()):
        if not torch.cuda.is_available():
            raise CLIError(f"--device {name} was asked for but torch sees no CUDA GPU; "
                           f"use --device auto or --device cpu")
        number = int(index) if index else local_rank
        if number >= torch.cuda.device_count():
            raise CLIError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
        return torch.device("cuda", number)
    raise CLIError(f"unknown device {name!r}; choose auto, cpu, mps, cuda or cuda:N")


def set_seed(seed: int) -> None:
    """Seed Python's ``random`` and torch (CPU and every GPU) with ``seed``."""
    random.seed(seed)
    torch.manual_seed(seed)


def resolve_precision(precision: str, device: torch.device) -> str:
    """Turn ``auto`` into a concrete precision: bf16 on a CUDA GPU that supports it, else fp32.

    fp16 is never chosen automatically because it needs loss scaling
    (``torch.amp.GradScaler``); ask for it with ``--precision fp16``.
    """
    if precision not in PRECISIONS:
        raise CLIError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise CLIError(f"--precision fp16 needs a CUDA GPU (GradScaler); use bf16 or fp32 on {device.type}")
    return precision


def autocast(device: torch.device, precision: str):
    """The autocast context for one forward pass: a no-op in fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def enable_tf32() -> None:
    """Let CUDA matmuls and convolutions use TensorFloat-32 (about 10 mantissa bits, much faster)."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def cpu_name() -> str:
    """The CPU's model name (Linux: ``model name`` in /proc/cpuinfo), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name") and ":" in line:
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_string(device: torch.device) -> str:
    """A one-line description of the machine, for results.json and tutorials."""
    text = f"{os.cpu_count()}-core CPU ({cpu_name()}), torch {torch.__version__}"
    if device.type == "cuda":
        text += f", GPU {torch.cuda.get_device_name(device)}"
    elif device.type == "mps":
        text += ", Apple MPS"
    else:
        text += f", no GPU, {torch.get_num_threads()} torch threads"
    return text


# ----------------------------------------------------------------------------
# learning rate and optimizer


#: glibc's mallopt parameters (malloc.h) and what :func:`keep_freed_memory` sets them to.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_MMAP_THRESHOLD, KEEP_TRIM_THRESHOLD = 2 ** 30, 2 ** 31 - 1


def keep_freed_memory() -> str:
    """Make glibc's malloc keep freed blocks in the process instead of handing them back to the kernel.

    By default glibc serves a block above a threshold (128 KiB, adapting up to 32 MiB) with fresh pages from
    the kernel and returns them when it is freed, and gives back the top of the heap beyond another
    threshold. A training step frees and re-allocates the same large buffers every step (activations,
    their gradients, the MLM logits), so every step page-faults them in again: kernel time, not arithmetic
    (tutorial 07, "The memory allocator is part of the measurement"). This sets ``M_MMAP_THRESHOLD`` to
    1 GiB and ``M_TRIM_THRESHOLD`` to 2 GiB - 1 through ``mallopt``: the same as
    ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...:glibc.malloc.trim_threshold=...`` but from inside the
    process, so ``minibert pretrain`` needs no environment variable. Numbers are unchanged; the peak memory
    grows by the blocks kept (a few percent in the tutorial's measurement).
    Both thresholds are needed: either one alone page-faults more than the defaults (setting one switches
    off glibc's adaptive mmap threshold; ``scripts/malloc_page_faults.py`` counts it per step).

    Returns what was done, for the run's log: ``"kept (mallopt)"``; ``"GLIBC_TUNABLES"`` when that variable
    already tunes malloc (the user's setting wins, nothing is changed); ``"default"`` when the C library is
    not glibc (nothing to do, e.g. macOS, musl) or ``mallopt`` refused a value.
    """
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "default"
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return "default"
    ok = libc.mallopt(M_MMAP_THRESHOLD, KEEP_MMAP_THRESHOLD) == 1
    ok = libc.mallopt(M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD) == 1 and ok
    return "kept (mallopt)" if ok else "default"


#: What each result of :func:`keep_freed_memory` means, for progress headers and benchmark logs.
MALLOC_SAYS = {
    "kept (mallopt)": (f"freed memory kept in the process (mallopt mmap_threshold={KEEP_MMAP_THRESHOLD}, "
                       f"trim_threshold={KEEP_TRIM_THRESHOLD})"),
    "GLIBC_TUNABLES": "malloc tuned by GLIBC_TUNABLES",
    "default": "malloc defaults",
}


def add_malloc_tuning_argument(group) -> None:
    """Add ``--malloc-tuning {auto,off}`` (default auto) to an argparse group: every training command has it."""
    group.add_argument("--malloc-tuning", default="auto", choices=("auto", "off"),
                       help="auto (default): on Linux with glibc, keep freed memory in the process instead of "
                            "returning it to the kernel every step (minibert.training_utils.keep_freed_memory: "
                            "fewer page faults, a faster CPU step, a few percent more peak memory, the same "
                            "numbers); off: glibc's defaults")


def apply_malloc_tuning(choice: str, log=None) -> str:
    """Act on ``--malloc-tuning``: :func:`keep_freed_memory` for ``"auto"``; returns what was done (a key of
    :data:`MALLOC_SAYS`), ``"default"`` for ``"off"``. With ``log``, also logs one line saying it."""
    done = keep_freed_memory() if choice == "auto" else "default"
    if log is not None:
        log(f"memory: {MALLOC_SAYS[done]} (--malloc-tuning)")
    return done


def learning_rate(step: int, max_steps: int, warmup_steps: int, peak_lr: float) -> float:
    r"""Linear warm-up to ``peak_lr``, then linear decay to zero at ``max_steps``.

    For optimizer step $s$ (0-based, ``step``), peak $\eta$ (``peak_lr``),
    warm-up length $W$ (``warmup_steps``) and total $S$ (``max_steps``):

    $$\eta_s = \eta \frac{s + 1}{W} \quad (s < W), \qquad
      \eta_s = \eta \frac{S - s}{S - W} \quad (s \ge W).$$

    The first step already uses a non-zero rate and the last one
    ($s = S - 1$) uses $\eta / (S - W)$.
    """
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    return peak_lr * max(0.0, (max_steps - step) / max(1, max_steps - warmup_steps))


#: Where ``torch.optim.AdamW(..., fused=True)`` (one kernel for every parameter) runs.
FUSED_ADAMW_DEVICES = ("cpu", "cuda")


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: weight decay on matrices (linear and embedding weights), none on the rest.

    The tensors with fewer than two dimensions are exactly the biases and the
    LayerNorm gains and shifts; decaying them towards zero only hurts (BERT,
    Devlin et al. 2019, excludes them too).
    """
    decay, no_decay = [], []
    for parameter in model.parameters():  # shared (tied) tensors are listed once
        if not parameter.requires_grad:
            continue
        (decay if parameter.dim() >= 2 else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


# ----------------------------------------------------------------------------
# distributed (torchrun)


@dataclass
class Distributed:
    """Where this process sits in a ``torchrun`` job (rank 0 of 1 when run alone)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process prints and writes files."""
        return self.rank == 0

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over all processes, in place; a no-op when alone."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def setup_distributed(device_name: str) -> Distributed:
    """Join the process group that ``torchrun`` described in ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``.

    Backend: NCCL when the processes train on CUDA GPUs, gloo otherwise (CPU,
    and the tests). Without those variables this is a single process.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Distributed(rank=rank, local_rank=local_rank, world_size=world_size)


def teardown_distributed(ctx: Distributed) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


# ----------------------------------------------------------------------------
# checkpoints and random state


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` ``obj`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def atomic_write_folder(folder: str | os.PathLike, fill: Callable[[Path], None]) -> Path:
    """Fill a temporary sibling folder with ``fill(tmp)``, then swap it in place of ``folder``.

    The old folder (if any) is renamed aside, the new one renamed in, and the
    old one deleted, so ``folder`` never mixes old and new files (e.g. an old
    ``model.safetensors`` next to a new ``pytorch_model.bin``). On failure the
    temporary folder is removed and ``folder`` is left as it was.
    """
    folder = Path(folder)
    tmp = _temporary_name(folder)
    old = folder.with_name(tmp.name[:-len(".tmp")] + ".old")
    try:
        tmp.mkdir(parents=True)
        fill(tmp)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not folder.exists():
            os.replace(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return folder


# kinds of checkpoint file and the entries that identify them (to name a mix-up in one sentence)
CHECKPOINT_KINDS = {
    "minibert pretrain checkpoint": ("model", "optimizer", "config", "step", "args"),   # resumable
    "minibert checkpoint": ("model", "config"),                                        # weights + BertConfig
    "textcnn model": ("config", "state_dict", "vocab", "labels"),
}


def read_checkpoint(path: str | os.PathLike, kind: str, hint: str = "") -> dict:
    """``torch.load(path, weights_only=True)`` of a checkpoint of ``kind`` (a key of :data:`CHECKPOINT_KINDS`).

    A missing, empty, truncated, random or foreign file (another kind, or not
    a checkpoint at all) is a :class:`~minibert.cli.CLIError` of one sentence
    naming the file; torch's own message is not repeated (it can advise
    ``weights_only=False``, which would let a file run arbitrary code).
    ``hint`` is appended to the sentence (e.g. which option to fix).
    """
    path = Path(path)
    tail = f"; {hint}" if hint else ""
    if path.is_dir():
        raise CLIError(f"{path} is a folder, not a {kind} file{tail}")
    if not path.is_file():
        raise CLIError(f"{path} does not exist{tail}")
    if path.stat().st_size == 0:
        raise CLIError(f"{path} is empty, so it is not a {kind}; it was probably cut off while being "
                       f"written{tail}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, zipfile.BadZipFile, KeyError,
            IndexError, TypeError, AttributeError, ImportError, UnicodeDecodeError, OSError) as exc:
        what = "truncated or damaged" if isinstance(exc, (EOFError, RuntimeError, zipfile.BadZipFile, OSError)) \
            else "not a torch file"
        raise CLIError(f"{path} cannot be read as a {kind}: the file is {what} "
                       f"({type(exc).__name__}){tail}") from None
    needed = CHECKPOINT_KINDS[kind]
    if not isinstance(state, dict) or not all(key in state for key in needed):
        other = [name for name, keys in CHECKPOINT_KINDS.items()
                 if name != kind and isinstance(state, dict) and all(key in state for key in keys)]
        found = f"a {other[0]}" if other else "not one"
        raise CLIError(f"{path} is {found}, not a {kind} (it lacks the entries "
                       f"{', '.join(k for k in needed if not (isinstance(state, dict) and k in state))}){tail}")
    return state


# ----------------------------------------------------------------------------
# run folders


def prepare_run_folder(out: str | os.PathLike, resume: bool = False, overwrite: bool = False,
                       create: bool = True) -> Path:
    """Check (and with ``create``, make) the output folder of a run; return it as an absolute path.

    A folder that holds anything is never overwritten implicitly: without
    ``resume`` it must be missing or empty, ``overwrite`` deletes everything
    in it first. ``resume`` needs the folder to exist. An ``out`` that is a
    regular file, or that cannot be created or written, is a one-sentence
    :class:`~minibert.cli.CLIError`. Under ``torchrun`` every process checks
    and only the main one passes ``create=True``.
    """
    out = Path(out).expanduser().absolute()
    if resume and overwrite:
        raise CLIError("--resume continues the run in --out and --overwrite deletes it; give one of them")
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is a file, not a folder; choose another --out")
    if resume:
        if not out.is_dir():
            raise CLIError(f"--resume: the folder {out} does not exist; give the --out of the run to continue")
        if not os.access(out, os.W_OK):
            raise CLIError(f"--out {out} is not writable; fix its permissions to resume there")
        return out
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        held = sorted(p.name for p in out.iterdir())
        listed = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
        raise CLIError(f"--out {out} already holds files ({listed}); pass --resume to continue that run, "
                       f"--overwrite to delete it and start again, or choose another --out")
    if not create:
        return out
    try:
        if out.is_dir() and overwrite:
            for entry in out.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text("", out / ".write_test")
        (out / ".write_test").unlink()
    except OSError as exc:
        raise CLIError(f"--out {out} cannot be written ({exc.strerror or exc}); choose a folder you can "
                       f"write to") from None
    return out


def absolute_path(path) -> str | None:
    """``path`` as an absolute string (``None`` stays ``None``), so a run folder works from any directory."""
    return None if path is None else str(Path(path).expanduser().absolute())


# ----------------------------------------------------------------------------
# metrics log, results, progress line


class RunningSums:
    """Named float64 sums (e.g. ``mlm_loss_sum``, ``mlm_count``, ``tokens``) accumulated over steps.

    :meth:`totals` adds them up over all processes in one all-reduce and
    returns plain floats by name, so a loop never indexes positional slots.
    """

    def __init__(self, names, device):
        self.names = tuple(names)
        self.values = torch.zeros(len(self.names), dtype=torch.float64, device=device)

    def add(self, sums: dict) -> None:
        """Add ``sums[name]`` (tensors or numbers) to each name's running sum."""
        self.values += torch.stack([torch.as_tensor(sums[name], device=self.values.device).detach().double()
                                    for name in self.names])

    def totals(self, ctx: "Distributed") -> dict:
        """The sums over all processes (in place) as ``{name: float}``."""
        ctx.all_reduce_sum(self.values)
        return dict(zip(self.names, self.values.tolist()))

    def reset(self) -> None:
        self.values.zero_()


class MetricsLog:
    """The ``metrics.jsonl`` of a run: one JSON object per line, appended and flushed as it comes.

    Every record has ``split`` (``train``, ``valid``, ``dev``, ``test``),
    ``step`` (optimizer steps so far) and, where the command counts epochs,
    ``epoch``; the other keys are the metrics of that split, without a split
    prefix (``loss``, ``accuracy``, ``f1_macro``, ``mlm_loss``, ...).

    A new run starts an empty file. ``resume_step=S`` keeps the records with
    ``step <= S`` (those of the checkpoint being resumed) and drops the rest,
    rewriting the file atomically. ``enabled=False`` (non-main processes)
    makes every call a no-op. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        self._file = None
        if not enabled:
            return
        kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step] \
            if resume_step is not None else []
        atomic_write_text("".join(json.dumps(r) + "\n" for r in kept), self.path)
        self._file = self.path.open("a", encoding="utf-8")

    def log(self, split: str, step: int, **values) -> dict:
        """Append ``{"split": split, "step": step, **values}`` and return it."""
        record = {"split": split, "step": step, **values}
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        return record

    def records(self) -> list[dict]:
        """Everything written so far."""
        return read_metrics(self.path) if self.enabled else []

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "MetricsLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def jsonable_args(args) -> dict:
    """The parsed options as a JSON-ready dict (paths as strings, tuples as lists)."""
    items = vars(args) if not isinstance(args, dict) else args
    out = {}
    for key, value in items.items():
        if isinstance(value, os.PathLike):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def write_results(out: str | os.PathLike, command: str, metrics: dict, *, num_parameters: int,
                  train_seconds: float, args, device: torch.device | str, **extra) -> dict:
    """Write ``out/results.json`` (atomically) in the one schema every training command uses; return it.

    Keys, in this order: ``command`` (e.g. ``"textcnn train"``), the
    command's ``metrics`` (classifiers: ``test_accuracy``, ``test_f1_macro``,
    ``dev_accuracy``, ``best_epoch``, ...; pretraining: ``valid_mlm_loss``,
    ``valid_perplexity``, ...), ``num_parameters``, ``train_seconds``,
    ``device``, ``hardware``, then ``extra`` (config, data, ...) and last
    ``args`` (every option, as parsed).
    """
    device = torch.device(device) if isinstance(device, str) else device
    results = {"command": command, **metrics, "num_parameters": int(num_parameters),
               "train_seconds": float(train_seconds), "device": str(device),
               "hardware": hardware_string(device), **extra, "args": jsonable_args(args)}
    atomic_write_json(results, Path(out) / "results.json")
    return results


def format_seconds(seconds: float) -> str:
    """``62`` -> ``1m02s``, ``3725`` -> ``1h02m05s``."""
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def progress_line(unit: str, done: int, total: int, fields: list[str], rate: float | None = None,
                  rate_unit: str = "tok/s", eta_seconds: float | None = None, mark: str = "",
                  mfu: float | None = None) -> str:
    """The one progress-line format: ``step  10/1000 | loss 4.2000 | ... | 4,210 tok/s | MFU 0.45 | ETA 1m02s``.

    ``unit`` is ``step`` or ``epoch``; ``fields`` are already formatted
    (``"loss 4.2000"``); ``mfu`` is the model FLOPs utilisation (:mod:`minibert.flops`);
    ``mark`` (e.g. ``"*"`` for a new best dev epoch) ends the line.
    """
    parts = [f"{unit} {done:>{len(str(total))}}/{total}", *fields]
    if rate is not None:
        parts.append(f"{rate:,.0f} {rate_unit}" if rate >= 100 else f"{rate:.1f} {rate_unit}")
    if mfu is not None:
        parts.append(f"MFU {mfu:.2f}")
    if eta_seconds is not None:
        parts.append(f"ETA {format_seconds(eta_seconds)}")
    return " | ".join(parts) + (f" {mark}" if mark else "")

def rng_state() -> dict:
    """The torch random states (CPU and every CUDA device) as tensors, loadable with ``weights_only=True``."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` saved (dropout masks then continue as if never stopped)."""
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------
# curves


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The records of a ``metrics.jsonl`` file (one JSON object per line)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_curves(records: list[dict], path: str | os.PathLike, title: str = "",
                baselines: dict | None = None) -> None:
    """Draw the train/valid losses, valid accuracies and learning rate of a run into one PNG.

    ``baselines`` optionally maps ``"mlm_loss"``, ``"mlm_accuracy"`` or
    ``"nsp_accuracy"`` to ``(value, label)``, drawn as dashed horizontal lines
    (e.g. the unigram and majority-label predictors of scripts/unigram_baseline.py).
    """
    baselines = baselines or {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in records if r.get("split") == "train"]
    valid = [r for r in records if r.get("split") == "valid"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))

    ax = axes[0]
    if train:
        steps = [r["step"] for r in train]
        ax.plot(steps, [r["mlm_loss"] for r in train], label="train MLM", color="tab:blue", alpha=0.6)
        ax.plot(steps, [r["nsp_loss"] for r in train], label="train NSP", color="tab:orange", alpha=0.6)
    if valid:
        steps = [r["step"] for r in valid]
        ax.plot(steps, [r["mlm_loss"] for r in valid], "o-", label="valid MLM", color="tab:blue")
        ax.plot(steps, [r["nsp_loss"] for r in valid], "o-", label="valid NSP", color="tab:orange")
    if "mlm_loss" in baselines:
        value, label = baselines["mlm_loss"]
        ax.axhline(value, ls="--", color="tab:blue", alpha=0.7, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_title("losses")
    ax.legend(fontsize=8, loc="center right")
    ax.grid(alpha=0.3)

    ax = axes[1]
    if valid:
        steps = [r["step"] for r in valid]
        ax.plot(steps, [r["mlm_accuracy"] for r in valid], "o-", label="valid MLM accuracy", color="tab:blue")
        ax.plot(steps, [r["nsp_accuracy"] for r in valid], "o-", label="valid NSP accuracy", color="tab:orange")
    for key, color in (("mlm_accuracy", "tab:blue"), ("nsp_accuracy", "tab:orange")):
        if key in baselines:
            value, label = baselines[key]
            ax.axhline(value, ls="--", color=color, alpha=0.7, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("valid accuracy")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[2]
    if train:
        ax.plot([r["step"] for r in train], [r["lr"] for r in train], color="tab:green")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title("schedule")
    ax.grid(alpha=0.3)

    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)
