"""Every command line over a table of bad inputs: exit code 2, one line on stderr naming the option or
file, no traceback, and no file of an earlier run changed or deleted.

The parse-level and data-level cases run in-process through each command's ``main(argv)`` (capsys
proves the single line); a real process is used only where one is needed (Ctrl-C). Two finished runs, a
2-step ``minibert pretrain`` and a 1-epoch ``textcnn train``, are prepared once and shared by the
cases; their folders are hashed before and after every case.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import write_corpus

TINY = ["--vocab-size", "100", "--set", "hidden_size=32", "--set", "intermediate_size=64",
        "--set", "num_attention_heads=2", "--set", "max_position_embeddings=64", "--seq-len", "32",
        "--batch-size", "8", "--warmup-steps", "1", "--log-every", "1", "--device", "cpu", "--seed", "7",
        "--eval-batches", "2"]
SMALL_CNN = ["--embedding-dim", "8", "--num-filters", "4", "--batch-size", "10", "--threads", "1", "--device", "cpu"]


def snapshot(folder: Path) -> dict:
    """sha256 and mode of every file under ``folder``."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Data files and two finished run folders, shared by every case."""
    root = tmp_path_factory.mktemp("world")
    w = {"root": root, "train": write_corpus(root / "train.txt", 30, seed=1),
         "valid": write_corpus(root / "valid.txt", 8, seed=2)}
    from minibert.pretrain import main as pretrain

    w["pretrain_run"] = root / "pretrain_run"
    assert pretrain([*TINY, "--train", str(w["train"]), "--valid", str(w["valid"]), "--max-steps", "2",
                     "--out", str(w["pretrain_run"])]) == 0
    rows = [f"{i % 2} {'good fine' if i % 2 else 'bad dull'} film number {i}" for i in range(40)]
    w["cnn_data"] = root / "cnn.txt"
    w["cnn_data"].write_text("\n".join(rows) + "\n", encoding="utf-8")
    from textcnn.train import main as cnn_train

    w["cnn_run"] = root / "cnn_run"
    assert cnn_train(["--train", str(w["cnn_data"]), "--epochs", "1", "--out", str(w["cnn_run"]), *SMALL_CNN]) == 0
    # damaged / foreign files, each in a folder of its own
    good = (w["pretrain_run"] / "checkpoint.pt").read_bytes()
    for name, data in (("truncated", good[:len(good) // 3]), ("empty", b""), ("random", os.urandom(4096)),
                       ("textcnn", (w["cnn_run"] / "model.pt").read_bytes())):
        folder = root / f"ckpt_{name}"
        shutil.copytree(w["pretrain_run"], folder)
        (folder / "checkpoint.pt").write_bytes(data)
        w[f"ckpt_{name}"] = folder
        model_folder = root / f"model_{name}"
        shutil.copytree(w["cnn_run"], model_folder)
        (model_folder / "model.pt").write_bytes(data if name != "textcnn" else good)
        w[f"model_{name}"] = model_folder
    w["a_file"] = root / "a_file.txt"
    w["a_file"].write_text("not a folder")
    w["one_class"] = root / "one_class.txt"
    w["one_class"].write_text("1 good\n1 fine\n", encoding="utf-8")
    w["bad_vectors"] = root / "vectors.txt"
    w["bad_vectors"].write_text("good 1 0\nbad nan 0\nfilm inf 1\n", encoding="utf-8")
    w["review_tsv"] = root / "reviews.tsv"
    w["review_tsv"].write_text("review\tlabel\n" + "".join(f"text {i}\t{i % 2}\n" for i in range(20)))
    w["long_line"] = root / "long_line.txt"
    w["long_line"].write_text(" ".join(["The sa of ka ru mi ."] * 260_000) + " ")   # 5 MB, no newline
    w["export_with_safetensors"] = root / "export_st"
    shutil.copytree(w["pretrain_run"] / "export", w["export_with_safetensors"])
    return w


def P(*parts):
    """A path in the shared world, filled in when the case runs: ``P("pretrain_run", "checkpoint.pt")``."""
    return ("path", parts)


def NEW(name="out"):
    """A fresh output folder for the case."""
    return ("new", name)


def resolve(argv, world, tmp_path):
    out = []
    for item in argv:
        if isinstance(item, tuple) and item[0] == "path":
            key, *rest = item[1]
            out.append(str(Path(world[key], *rest)))
        elif isinstance(item, tuple) and item[0] == "new":
            out.append(str(tmp_path / item[1]))
        else:
            out.append(item)
    return out


PRETRAIN_DATA = ["--train", P("train"), "--valid", P("valid")]
PT = [*TINY, *PRETRAIN_DATA]

# (id, command, argv, words the one line must contain)
CASES = [
    # ---- minibert pretrain: numbers, checked while parsing
    ("pretrain-lr-negative", "pretrain", [*PT, "--lr", "-1", "--out", NEW()], "argument --lr"),
    ("pretrain-lr-nan", "pretrain", [*PT, "--lr", "nan", "--out", NEW()], "argument --lr"),
    ("pretrain-mlm-probability-0", "pretrain", [*PT, "--mlm-probability", "0", "--out", NEW()],
     "argument --mlm-probability"),
    ("pretrain-clip-grad-negative", "pretrain", [*PT, "--clip-grad", "-1", "--out", NEW()], "argument --clip-grad"),
    ("pretrain-warmup-negative", "pretrain", [*PT, "--warmup-steps", "-1", "--out", NEW()], "argument --warmup-steps"),
    ("pretrain-weight-decay-negative", "pretrain", [*PT, "--weight-decay", "-1", "--out", NEW()],
     "argument --weight-decay"),
    ("pretrain-eval-batches-negative", "pretrain", [*PT, "--eval-batches", "-1", "--out", NEW()],
     "argument --eval-batches"),
    ("pretrain-max-steps-0", "pretrain", [*PT, "--max-steps", "0", "--out", NEW()], "argument --max-steps"),
    ("pretrain-batch-size-0", "pretrain", [*PT, "--batch-size", "0", "--out", NEW()], "argument --batch-size"),
    ("pretrain-seq-len-0", "pretrain", [*PT, "--seq-len", "0", "--out", NEW()], "argument --seq-len"),
    ("pretrain-vocab-size-0", "pretrain", [*PT, "--vocab-size", "0", "--out", NEW()], "argument --vocab-size"),
    ("pretrain-grad-accum-0", "pretrain", [*PT, "--grad-accum", "0", "--out", NEW()], "argument --grad-accum"),
    ("pretrain-device-unknown", "pretrain", [*PT, "--device", "tpu", "--out", NEW()], "argument --device"),
    ("pretrain-unknown-preset", "pretrain", [*PT, "--preset", "huge", "--out", NEW()], "'huge'"),
    ("pretrain-bad-set", "pretrain", [*PT, "--set", "hidden_size", "--out", NEW()], "--set"),
    ("pretrain-seq-len-over-positions", "pretrain", [*PT, "--seq-len", "65", "--out", NEW()],
     "max_position_embeddings (64)"),
    ("pretrain-fp16-on-cpu", "pretrain", [*PT, "--precision", "fp16", "--out", NEW()], "fp16"),
    # ---- data files
    ("pretrain-train-missing", "pretrain", [*TINY, "--train", P("root", "nope.txt"), "--valid", P("valid"),
                                            "--out", NEW()], "nope.txt does not exist"),
    ("pretrain-train-is-a-folder", "pretrain", [*TINY, "--train", P("root"), "--valid", P("valid"), "--out", NEW()],
     "is a folder"),
    ("pretrain-train-without-valid", "pretrain", [*TINY, "--train", P("train"), "--out", NEW()], "give both"),
    ("pretrain-5mb-single-line", "pretrain", [*TINY, "--train", P("long_line"), "--valid", P("valid"),
                                              "--out", NEW()], "one paragraph per line"),
    # ---- run folders
    ("pretrain-rerun-into-a-finished-run", "pretrain", [*PT, "--out", P("pretrain_run")], "--overwrite"),
    ("pretrain-out-is-a-file", "pretrain", [*PT, "--out", P("a_file")], "is a file, not a folder"),
    ("pretrain-out-read-only", "pretrain", [*PT, "--out", "/proc/minibert-run"], "cannot be written"),
    ("pretrain-resume-and-overwrite", "pretrain", [*PT, "--out", P("pretrain_run"), "--resume", "--overwrite"],
     "give one of them"),
    ("pretrain-resume-without-checkpoint", "pretrain", [*TINY, "--resume", "--out", P("cnn_run")],
     "checkpoint.pt does not exist"),
    ("pretrain-resume-missing-folder", "pretrain", [*TINY, "--resume", "--out", NEW()], "does not exist"),
    ("pretrain-resume-other-preset", "pretrain", ["--resume", "--preset", "mini", "--out", P("pretrain_run")],
     "--preset"),
    ("pretrain-resume-other-batch-size", "pretrain", ["--resume", "--batch-size", "4", "--out", P("pretrain_run")],
     "--batch-size"),
    ("pretrain-resume-fewer-steps", "pretrain", ["--resume", "--max-steps", "1", "--out", P("pretrain_run")],
     "--max-steps 1 is below the 2 steps"),
    ("pretrain-resume-truncated-checkpoint", "pretrain", ["--resume", "--out", P("ckpt_truncated")],
     "truncated or damaged"),
    ("pretrain-resume-empty-checkpoint", "pretrain", ["--resume", "--out", P("ckpt_empty")], "is empty"),
    ("pretrain-resume-random-checkpoint", "pretrain", ["--resume", "--out", P("ckpt_random")], "cannot be read"),
    ("pretrain-resume-foreign-checkpoint", "pretrain", ["--resume", "--out", P("ckpt_textcnn")],
     "is a textcnn model, not a minibert pretrain checkpoint"),
    # ---- minibert export
    ("export-truncated", "export", ["--checkpoint", P("ckpt_truncated", "checkpoint.pt"), "--out", NEW()],
     "truncated or damaged"),
    ("export-empty", "export", ["--checkpoint", P("ckpt_empty", "checkpoint.pt"), "--out", NEW()], "is empty"),
    ("export-random", "export", ["--checkpoint", P("ckpt_random", "checkpoint.pt"), "--out", NEW()], "cannot be read"),
    ("export-foreign", "export", ["--checkpoint", P("cnn_run", "model.pt"), "--out", NEW()],
     "is a textcnn model, not a minibert checkpoint"),
    ("export-missing", "export", ["--checkpoint", P("root", "none.pt"), "--out", NEW()], "none.pt does not exist"),
    ("export-bin-over-safetensors", "export", ["--checkpoint", P("pretrain_run", "checkpoint.pt"), "--format", "bin",
                                               "--out", P("export_with_safetensors")], "--overwrite"),
    ("export-out-is-a-file", "export", ["--checkpoint", P("pretrain_run", "checkpoint.pt"), "--out", P("a_file")],
     "is a file"),
    ("export-out-read-only", "export", ["--checkpoint", P("pretrain_run", "checkpoint.pt"), "--out", "/proc/export"],
     "cannot be written"),
    ("export-format-unknown", "export", ["--checkpoint", P("pretrain_run", "checkpoint.pt"), "--format", "onnx",
                                         "--out", NEW()], "argument --format"),
    # ---- textcnn predict
    ("predict-on-a-minibert-run", "predict", ["--model", P("pretrain_run"), "a film"],
     "minibert checkpoint.pt"),
    ("predict-on-a-minibert-checkpoint", "predict", ["--model", P("pretrain_run", "checkpoint.pt"), "a film"],
     "is a minibert pretrain checkpoint, not a textcnn model"),
    ("predict-truncated-model", "predict", ["--model", P("model_truncated"), "a film"], "truncated or damaged"),
    ("predict-empty-model", "predict", ["--model", P("model_empty"), "a film"], "is empty"),
    ("predict-random-model", "predict", ["--model", P("model_random"), "a film"], "cannot be read"),
    ("predict-missing-model", "predict", ["--model", P("root", "none"), "a film"], "does not exist"),
    ("predict-no-sentences", "predict", ["--model", P("cnn_run")], "give sentences"),
    ("predict-input-missing", "predict", ["--model", P("cnn_run"), "--input", P("root", "none.txt")],
     "none.txt does not exist"),
    ("predict-device-unknown", "predict", ["--model", P("cnn_run"), "--device", "tpu", "x"], "unknown device"),
    # ---- textcnn train
    *[(f"cnn-{flag[2:]}-{value}", "train", ["--train", P("cnn_data"), flag, value, "--out", NEW()], f"argument {flag}")
      for flag, value in (("--epochs", "0"), ("--batch-size", "0"), ("--num-filters", "0"), ("--embedding-dim", "0"),
                          ("--lr", "-1"), ("--lr", "nan"), ("--max-norm", "-1"), ("--max-norm", "0"),
                          ("--limit", "-1"), ("--dropout", "1"), ("--window-sizes", "0"), ("--min-count", "0"),
                          ("--dev-fraction", "1"), ("--cv", "-2"), ("--threads", "-1"))],
    ("cnn-cv-1", "train", ["--train", P("cnn_data"), "--cv", "1", "--out", NEW()], "--cv 1"),
    ("cnn-cv-with-dev", "train", ["--train", P("cnn_data"), "--cv", "3", "--dev", P("cnn_data"), "--out", NEW()],
     "drop --dev"),
    ("cnn-folds-without-cv", "train", ["--train", P("cnn_data"), "--folds", "2", "--out", NEW()], "needs --cv"),
    ("cnn-vectors-with-nan", "train", ["--train", P("cnn_data"), "--mode", "static", "--vectors", P("bad_vectors"),
                                       "--out", NEW(), *SMALL_CNN], "nan or inf"),
    ("cnn-vectors-with-rand", "train", ["--train", P("cnn_data"), "--vectors", P("bad_vectors"), "--out", NEW()],
     "--vectors is not used by --mode rand"),
    ("cnn-static-without-vectors", "train", ["--train", P("cnn_data"), "--mode", "static", "--out", NEW()],
     "needs --vectors"),
    ("cnn-tsv-text-column", "train", ["--train", P("review_tsv"), "--out", NEW()], "--text-column"),
    ("cnn-tsv-unknown-text-column", "train", ["--train", P("review_tsv"), "--text-column", "body", "--out", NEW()],
     "'body'"),
    ("cnn-train-is-a-folder", "train", ["--train", P("root"), "--out", NEW()], "is a folder"),
    ("cnn-train-missing", "train", ["--train", P("root", "none.txt"), "--out", NEW()], "none.txt"),
    ("cnn-one-class", "train", ["--train", P("one_class"), "--out", NEW()], "at least 2"),
    ("cnn-5mb-single-line", "train", ["--train", P("long_line"), "--out", NEW()], "1 class(es)"),
    ("cnn-rerun-into-a-finished-run", "train", ["--train", P("cnn_data"), "--out", P("cnn_run")], "--overwrite"),
    ("cnn-resume-without-cv", "train", ["--train", P("cnn_data"), "--resume", "--out", P("cnn_run")],
     "a single run keeps no checkpoint"),
    ("cnn-out-is-a-file", "train", ["--train", P("cnn_data"), "--out", P("a_file")], "is a file"),
    ("cnn-out-read-only", "train", ["--train", P("cnn_data"), "--out", "/proc/textcnn-run", *SMALL_CNN],
     "cannot be written"),
    ("cnn-device-unknown", "train", ["--train", P("cnn_data"), "--device", "tpu", "--out", NEW()], "unknown device"),
    # ---- the dispatchers
    ("minibert-unknown-command", "minibert", ["pretrian"], "'pretrian'"),
    ("textcnn-unknown-command", "textcnn", ["predcit"], "'predcit'"),
]

PROGS = {"pretrain": "minibert pretrain", "export": "minibert export", "predict": "textcnn predict",
         "train": "textcnn train", "minibert": "minibert", "textcnn": "textcnn"}


def command_main(name):
    if name == "pretrain":
        from minibert.pretrain import main
    elif name == "export":
        from minibert.hf import main
    elif name == "predict":
        from textcnn.predict import main
    elif name == "train":
        from textcnn.train import main
    elif name == "minibert":
        from minibert.cli import main
    else:
        from textcnn.cli import main
    return main


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_line_exit_2_and_changes_no_earlier_run(case, world, tmp_path, capsys):
    name, command, argv, words = case
    shared = [world[k] for k in world if isinstance(world[k], Path) and world[k].is_dir() and k != "root"]
    before = {folder: snapshot(folder) for folder in shared}
    capsys.readouterr()
    try:
        code = command_main(command)(resolve(argv, world, tmp_path))
    except SystemExit as exc:   # argparse's exit for parse errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, f"{name}: exit code {code}, stderr {err!r}"
    assert err.count("\n") == 1 and err.endswith("\n"), f"{name}: not exactly one line on stderr: {err!r}"
    assert err.startswith(f"{PROGS[command]}: error: "), f"{name}: {err!r}"
    assert words in err, f"{name}: {words!r} not in {err!r}"
    assert "Traceback" not in err and "weights_only" not in err, err
    for folder in shared:
        assert snapshot(folder) == before[folder], f"{name}: files of {folder.name} changed"


def test_no_bucket_help_shows_no_default(capsys):
    from textcnn.train import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "instead of length-sorted pools of 50 batches --seed" in text.replace("(default: 0) ", "") or \
        "length-sorted pools of 50 batches" in text, text
    assert "batches (default: True)" not in text and "default: False" not in text, text


# ---------------------------------------------------------------- failures after training, and Ctrl-C


def test_a_failed_export_keeps_the_results_and_resume_recovers_it(world, tmp_path, capsys, monkeypatch):
    """safetensors missing at the export: exit 1, one line naming --resume, results/curves/checkpoint kept."""
    from minibert.pretrain import main

    out = tmp_path / "run"
    argv = [*resolve(PT, world, tmp_path), "--max-steps", "2", "--out", str(out)]
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)   # `from safetensors.torch import ...` fails
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume" in err and "minibert export" in err and "Traceback" not in err, err
    for name in ("results.json", "curves.png", "checkpoint.pt", "metrics.jsonl"):
        assert (out / name).is_file(), f"{name} missing after a failed export"
    assert not (out / "export").exists(), "a half-written export folder was left behind"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], sorted(p.name for p in out.iterdir())
    monkeypatch.delitem(sys.modules, "safetensors.torch")
    assert main(["--resume", "--out", str(out)]) == 0
    assert (out / "export" / "model.safetensors").is_file()


def test_a_full_disk_during_a_checkpoint_save_leaves_no_temporary(world, tmp_path, capsys, monkeypatch):
    """torch.save dies half-way with ENOSPC: one line naming the file, exit 1, no .tmp file left behind."""
    import minibert.training_utils as tu

    real_save = torch.save

    def full_disk(obj, path, *a, **k):
        Path(path).write_bytes(b"x" * 10_000)
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(tu.torch, "save", full_disk)
    from minibert.pretrain import main

    out = tmp_path / "run"
    code = main([*resolve(PT, world, tmp_path), "--max-steps", "2", "--out", str(out)])
    monkeypatch.setattr(tu.torch, "save", real_save)
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and f"No space left on device at {out / 'checkpoint.pt'}" in err, err
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name], sorted(p.name for p in out.iterdir())


def test_ctrl_c_prints_one_line_with_the_checkpoint_and_the_resume_command(world, tmp_path):
    """SIGINT after the first checkpoint: exit 130, one line naming checkpoint.pt and the exact resume command."""
    # a terminal's Ctrl-C; the handler is set explicitly since a background shell starts children with SIGINT ignored
    program = ("import signal, sys, time; signal.signal(signal.SIGINT, signal.default_int_handler); "
               "import minibert.pretrain as p; forward = p.pretraining_sums; "
               "p.pretraining_sums = lambda model, batch: (time.sleep(0.3), forward(model, batch))[1]; "
               "sys.exit(p.main(sys.argv[1:]))")
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    process = subprocess.Popen([sys.executable, "-c", program, *resolve(PT, world, tmp_path), "--max-steps", "20",
                                "--save-every", "2", "--eval-every", "100", "--out", str(out)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while not (out / "checkpoint.pt").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    err = process.communicate(timeout=60)[1]
    assert process.returncode == 130, (process.returncode, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert str(out / "checkpoint.pt") in err and f"minibert pretrain --out {out} --resume" in err, err
