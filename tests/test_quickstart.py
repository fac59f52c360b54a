"""The README quick start, run as written (shortened with --max-steps / --epochs) on the shared data.

The main job produces every file the README promises, its export loads in transformers, running it a
second time refuses to touch the first run, and the TextCNN example trains and predicts.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import require_reference

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def console(name: str) -> list[str]:
    """The ``minibert`` / ``textcnn`` console script as pyproject.toml defines it, run by this Python."""
    return [sys.executable, "-c", f"import sys; from {name}.cli import main; sys.exit(main())"]


def run(argv, cwd, env) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                          preexec_fn=lambda: os.umask(0o022))


def folder_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def env(data_dir):
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg",
                MINIBERT_DATA_DIR=str(data_dir), PYTHONPATH=path)


def test_the_main_job_writes_every_promised_file_and_a_rerun_keeps_the_run(data_dir, tmp_path, env):
    command = "minibert pretrain --preset tiny --data-dir ../shared/data"
    assert command in README, "the README no longer shows the command this test runs"
    argv = [*console("minibert"), "pretrain", "--preset", "tiny", "--data-dir", str(data_dir), "--max-steps", "3",
            "--eval-batches", "4"]
    first = run(argv, tmp_path, env)
    assert first.returncode == 0, first.stderr[-2000:]
    out = tmp_path / "runs" / "tiny"
    for name in ("metrics.jsonl", "results.json", "curves.png", "checkpoint.pt", "tokenizer", "export"):
        assert (out / name).exists(), f"{name} missing: {sorted(p.name for p in out.iterdir())}"
    assert "note: --warmup-steps 100 is longer than --max-steps 3" in first.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 3 and results["command"] == "minibert pretrain", results
    assert Path(results["args"]["data_dir"]).is_absolute(), results["args"]["data_dir"]
    modes = {str(p.relative_to(out)): oct(p.stat().st_mode & 0o777) for p in out.rglob("*") if p.is_file()}
    assert set(modes.values()) == {"0o644"}, f"file modes under the usual umask 022: {modes}"
    transformers = require_reference("transformers")
    model, info = transformers.BertForPreTraining.from_pretrained(str(out / "export"), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info

    before = folder_hash(out)
    second = run(argv, tmp_path, env)
    assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
    assert "--resume" in second.stderr and "--overwrite" in second.stderr, second.stderr
    assert folder_hash(out) == before, "the second run changed the first one"



def test_the_textcnn_example_trains_then_predicts(data_dir, tmp_path, env):
    assert "textcnn predict --model runs/textcnn" in README and "--out runs/textcnn" in README
    sst = data_dir / "classification" / "SST-2"
    train = run([*console("textcnn"), "train", "--train", str(sst / "stsa.binary.train"),
                 "--dev", str(sst / "stsa.binary.dev"), "--test", str(sst / "stsa.binary.test"),
                 "--out", "runs/textcnn", "--epochs", "1", "--limit", "600", "--num-filters", "10", "--threads", "1"],
                tmp_path, env)
    assert train.returncode == 0, train.stderr[-2000:]
    out = tmp_path / "runs" / "textcnn"
    for name in ("metrics.jsonl", "results.json", "confusion_matrix.png", "model.pt"):
        assert (out / name).exists(), name
    predicted = run([*console("textcnn"), "predict", "--model", "runs/textcnn",
                     "a gorgeous , witty , seductive movie .", "a dull , lifeless mess ."], tmp_path, env)
    assert predicted.returncode == 0, predicted.stderr
    lines = predicted.stdout.strip().split("\n")
    assert len(lines) == 2 and all(line.split("\t")[0] in ("0", "1") for line in lines), lines
