"""Helpers of a training loop that are not about BERT: device, precision,
learning-rate schedule, optimizer groups, distributed set-up, atomic
checkpoints, RNG state and the curves PNG.

``minibert/pretrain.py`` reads top to bottom as *the* training loop; the
machinery it leans on lives here, one small function per idea.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


# ----------------------------------------------------------------------------
# device and precision


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """The device to train on: ``auto`` picks CUDA, then Apple's MPS, then the CPU.

    Under ``torchrun`` each process on a node takes the GPU ``cuda:<LOCAL_RANK>``.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for but torch sees no CUDA GPU; "
                             "use --device auto or --device cpu.")
        return torch.device("cuda", local_rank)
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise ValueError("--device mps was asked for but MPS is not available; "
                             "use --device auto or --device cpu.")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {name!r}; choose auto, cuda, mps or cpu.")


def resolve_precision(precision: str, device: torch.device) -> str:
    """Turn ``auto`` into a concrete precision: bf16 on a CUDA GPU that supports it, else fp32.

    fp16 is never chosen automatically because it needs loss scaling
    (``torch.amp.GradScaler``); ask for it with ``--precision fp16``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("--precision fp16 needs a CUDA GPU (GradScaler); use bf16 or fp32 on "
                         f"{device.type}.")
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


def hardware_string(device: torch.device) -> str:
    """A one-line description of the machine, for results.json and tutorials."""
    cpu = platform.processor() or platform.machine()
    text = f"{os.cpu_count()}-core CPU ({cpu}), torch {torch.__version__}"
    if device.type == "cuda":
        text += f", GPU {torch.cuda.get_device_name(device)}"
    elif device.type == "mps":
        text += ", Apple MPS"
    else:
        text += f", no GPU, {torch.get_num_threads()} torch threads"
    return text


# ----------------------------------------------------------------------------
# learning rate and optimizer


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


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename it over ``path``.

    ``os.replace`` is atomic on one file system, so a reader (or a resumed
    run after a crash) sees either the old complete file or the new one.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Write a text file atomically (temporary file + rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
