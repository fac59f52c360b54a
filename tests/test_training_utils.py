"""The bookkeeping every training command shares: atomic writes, checkpoint reading, run folders,
the metrics log, the results.json schema, the progress line, device and seed."""

from __future__ import annotations

import json
import os
import platform
import resource
import stat
from argparse import Namespace

import pytest
import torch

from minibert import training_utils
from minibert.cli import CLIError
from minibert.training_utils import (MetricsLog, atomic_torch_save, atomic_write, atomic_write_folder,
                                     atomic_write_json, format_seconds, pick_device, prepare_run_folder,
                                     progress_line, read_checkpoint, read_metrics, set_seed, write_results)


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------- atomic writes


def test_an_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("old")
    atomic_write_json({"a": 1}, path)
    assert json.loads(path.read_text()) == {"a": 1}
    assert leftovers(tmp_path) == [], leftovers(tmp_path)


def test_a_failed_atomic_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    """A write that dies half-way (full disk, Ctrl-C) leaves the previous complete file and no temp."""
    path = tmp_path / "checkpoint.pt"
    atomic_torch_save({"step": 1}, path)

    def half_then_fail(tmp):
        tmp.write_bytes(b"x" * 1000)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(path, half_then_fail)
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert leftovers(tmp_path) == [], leftovers(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, lambda tmp: (tmp.write_bytes(b"x"), (_ for _ in ()).throw(KeyboardInterrupt)))
    assert leftovers(tmp_path) == [], leftovers(tmp_path)


def test_atomically_written_files_get_the_usual_mode_of_the_umask(tmp_path):
    """Not the 0600 of mkstemp: 0666 minus the umask (0644 with the usual 022)."""
    old = os.umask(0o022)
    try:
        atomic_torch_save({"x": torch.zeros(2)}, tmp_path / "a.pt")
        atomic_write_json({}, tmp_path / "b.json")
        atomic_write(tmp_path / "c.bin", lambda tmp: (tmp.write_bytes(b"x"), tmp.chmod(0o600)))  # like safetensors
    finally:
        os.umask(old)
    for name in ("a.pt", "b.json", "c.bin"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o644, f"{name} has mode {oct(mode)}"


def test_an_atomic_folder_swap_never_mixes_old_and_new_files(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "model.safetensors").write_text("old weights")
    atomic_write_folder(folder, lambda tmp: (tmp / "pytorch_model.bin").write_text("new"))
    assert sorted(p.name for p in folder.iterdir()) == ["pytorch_model.bin"]
    with pytest.raises(RuntimeError):
        atomic_write_folder(folder, lambda tmp: (_ for _ in ()).throw(RuntimeError("boom")))
    assert sorted(p.name for p in folder.iterdir()) == ["pytorch_model.bin"]
    assert leftovers(tmp_path) == [], leftovers(tmp_path)


# ---------------------------------------------------------------- checkpoints


@pytest.fixture
def good_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {"w": torch.ones(50, 50)}, "optimizer": {}, "config": {}, "step": 3, "args": {}}, path)
    return path


@pytest.mark.parametrize("damage,expected", [
    ("empty", "is empty"),
    ("truncated", "truncated or damaged"),
    ("random", "cannot be read"),
    ("missing", "does not exist"),
    ("folder", "is a folder"),
])
def test_a_damaged_checkpoint_is_one_sentence_that_never_advises_weights_only_false(good_checkpoint, damage,
                                                                                    expected):
    data = good_checkpoint.read_bytes()
    if damage == "empty":
        good_checkpoint.write_bytes(b"")
    elif damage == "truncated":
        good_checkpoint.write_bytes(data[:len(data) // 2])
    elif damage == "random":
        good_checkpoint.write_bytes(os.urandom(3000))
    elif damage == "missing":
        good_checkpoint.unlink()
    else:
        good_checkpoint.unlink()
        good_checkpoint.mkdir()
    with pytest.raises(CLIError) as info:
        read_checkpoint(good_checkpoint, "minibert pretrain checkpoint")
    message = str(info.value)
    assert expected in message and str(good_checkpoint) in message, message
    assert "weights_only" not in message and "\n" not in message, message


def test_a_checkpoint_of_another_kind_is_named(good_checkpoint):
    with pytest.raises(CLIError, match="is a minibert pretrain checkpoint, not a textcnn model"):
        read_checkpoint(good_checkpoint, "textcnn model")
    assert read_checkpoint(good_checkpoint, "minibert pretrain checkpoint")["step"] == 3


# ---------------------------------------------------------------- run folders


def test_a_run_folder_is_never_overwritten_implicitly(tmp_path):
    out = tmp_path / "run"
    assert prepare_run_folder(out) == out.absolute() and out.is_dir()
    (out / "results.json").write_text("{}")
    with pytest.raises(CLIError, match="--resume.*--overwrite"):
        prepare_run_folder(out)
    assert (out / "results.json").exists()
    assert prepare_run_folder(out, resume=True) == out
    (out / "sub").mkdir()
    (out / "sub" / "f").write_text("x")
    prepare_run_folder(out, overwrite=True)
    assert list(out.iterdir()) == [], "--overwrite must clear the whole folder"


def test_run_folder_errors_for_a_file_a_missing_resume_and_both_flags(tmp_path):
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    with pytest.raises(CLIError, match="is a file, not a folder"):
        prepare_run_folder(a_file)
    with pytest.raises(CLIError, match="does not exist"):
        prepare_run_folder(tmp_path / "none", resume=True)
    with pytest.raises(CLIError, match="give one of them"):
        prepare_run_folder(tmp_path / "x", resume=True, overwrite=True)


def test_a_place_that_cannot_be_written_is_one_sentence(tmp_path):
    """Under a regular file, in /proc, and (when not root, who may write anywhere) in a read-only folder."""
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    places = [a_file / "run", "/proc/minibert-run"]
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.geteuid() != 0:
        places.append(locked / "run")
    try:
        for place in places:
            with pytest.raises(CLIError, match="cannot be written") as info:
                prepare_run_folder(place)
            assert "\n" not in str(info.value)
    finally:
        locked.chmod(0o700)


# ---------------------------------------------------------------- metrics log, results, progress


def test_the_metrics_log_appends_records_and_keeps_those_up_to_the_resumed_step(tmp_path):
    path = tmp_path / "metrics.jsonl"
    with MetricsLog(path) as log:
        for step in range(1, 6):
            log.log("train", step, loss=1.0 / step)
        log.log("valid", 5, loss=0.3)
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3, 4, 5, 5]
    with MetricsLog(path, resume_step=3) as log:
        assert [r["step"] for r in log.records()] == [1, 2, 3]
        log.log("train", 4, loss=0.2)
    records = read_metrics(path)
    assert [(r["split"], r["step"]) for r in records] == [("train", 1), ("train", 2), ("train", 3), ("train", 4)]
    assert MetricsLog(tmp_path / "other.jsonl", enabled=False).records() == []
    assert not (tmp_path / "other.jsonl").exists()


def test_results_json_has_the_one_schema(tmp_path):
    results = write_results(tmp_path, "textcnn train", {"test_accuracy": 0.5, "test_f1_macro": 0.4},
                            num_parameters=10, train_seconds=1.5, args=Namespace(out=tmp_path, window_sizes=(3, 4)),
                            device="cpu", config={"k": 1})
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results, default=str))
    assert list(on_disk)[:4] == ["command", "test_accuracy", "test_f1_macro", "num_parameters"]
    for key in ("train_seconds", "device", "hardware", "args", "config"):
        assert key in on_disk, key
    assert on_disk["args"]["window_sizes"] == [3, 4] and on_disk["args"]["out"] == str(tmp_path)


def test_the_progress_line_format():
    line = progress_line("step", 10, 1000, ["loss 4.2000"], rate=4210.4, eta_seconds=62)
    assert line == "step   10/1000 | loss 4.2000 | 4,210 tok/s | ETA 1m02s", line
    line = progress_line("epoch", 3, 25, ["dev 0.7000"], rate=2.5, rate_unit="s/epoch", eta_seconds=3725, mark="*")
    assert line == "epoch  3/25 | dev 0.7000 | 2.5 s/epoch | ETA 1h02m05s *", line
    assert format_seconds(59.9) == "0m59s"


# ---------------------------------------------------------------- device and seed


def test_pick_device_accepts_the_cpu_and_refuses_unknown_names():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type in ("cpu", "cuda", "mps")
    for name in ("tpu", "cuda:x", "gpu"):
        with pytest.raises(CLIError, match="unknown device"):
            pick_device(name)
    if not torch.cuda.is_available():
        with pytest.raises(CLIError, match="no CUDA GPU"):
            pick_device("cuda:0")


def test_set_seed_makes_torch_and_random_repeat():
    import random

    set_seed(5)
    a = (torch.rand(3), random.random())
    set_seed(5)
    b = (torch.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and a[1] == b[1]


KEEP_FREED_PROBE = """
import resource, sys, torch
from minibert.training_utils import keep_freed_memory
print(keep_freed_memory() if sys.argv[1] == "keep" else "untouched")
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):                               # 64 MiB: above glibc's largest adaptive mmap threshold
    x = torch.ones(16 * 2 ** 20); del x
before = faults()
for _ in range(20):
    x = torch.ones(16 * 2 ** 20); del x          # what a training step does with its big buffers
print(faults() - before)
"""

@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_keeping_freed_memory_stops_the_page_faults_of_buffers_freed_and_allocated_again(monkeypatch):
    """keep_freed_memory (minibert pretrain's --malloc-tuning auto): a 64 MiB buffer freed and allocated twenty
    times is page-faulted in all twenty times by glibc's defaults (mmap, munmap), at most a few times when freed
    memory is kept (a freed block a few bytes short of the next aligned request waits until its neighbour is
    freed too; measured 0-5 of 20 here); a GLIBC_TUNABLES malloc setting of the user is left alone."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    runs = {}
    for mode in ("default", "keep"):
        out = subprocess.run([sys.executable, "-c", KEEP_FREED_PROBE, mode], capture_output=True, text=True,
                             env=env, check=True).stdout.splitlines()
        runs[mode] = (out[0], int(out[1]))
    assert runs["keep"][0] == "kept (mallopt)"
    pages = 64 * 2 ** 20 // resource.getpagesize()
    assert runs["default"][1] >= 20 * pages // 512, runs          # faulted in every time (even as huge pages)
    assert runs["keep"][1] * 3 < runs["default"][1], runs
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1")
    assert training_utils.keep_freed_memory() == "GLIBC_TUNABLES"


@pytest.mark.parametrize("command", ["minibert.pretrain", "minibert.finetune", "textcnn.train", "textcnn.distill"])
def test_every_training_command_has_the_malloc_tuning_switch(command):
    """--malloc-tuning is the same switch, default auto, on every training command."""
    import importlib

    action = importlib.import_module(command).build_parser()._option_string_actions["--malloc-tuning"]
    assert action.default == "auto" and tuple(action.choices) == ("auto", "off")


def test_malloc_tuning_auto_keeps_freed_memory_off_does_not(monkeypatch):
    """auto calls keep_freed_memory (once), off does not call it and reports glibc's defaults; with a log, one line."""
    calls = []
    monkeypatch.setattr(training_utils, "keep_freed_memory", lambda: calls.append(1) or "kept (mallopt)")
    assert training_utils.apply_malloc_tuning("off") == "default" and calls == []
    assert training_utils.apply_malloc_tuning("auto") == "kept (mallopt)" and calls == [1]
    said = []
    assert training_utils.apply_malloc_tuning("off", said.append) == "default"
    assert said == [f"memory: {training_utils.MALLOC_SAYS['default']} (--malloc-tuning)"]
