"""The pretraining loop: schedule, optimizer groups, outputs, DDP, resume, NaN stop, clear errors.

Every run here is a toy: a 2-layer BERT of hidden size 32 with a ~100-piece
SentencePiece vocabulary, trained for a few steps on a synthetic corpus
written into ``tmp_path`` (pseudo-words, 3 topics, so that documents differ).
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import max_abs_diff, require_reference, write_corpus
from minibert.pretrain import build_parser, main

ROOT = Path(__file__).resolve().parent.parent

TINY = ["--vocab-size", "100", "--set", "hidden_size=32", "--set", "intermediate_size=64",
        "--set", "num_attention_heads=2", "--set", "max_position_embeddings=64",
        "--seq-len", "32", "--batch-size", "8", "--warmup-steps", "2", "--log-every", "1",
        "--device", "cpu", "--seed", "7"]
NO_DROPOUT = ["--set", "hidden_dropout_prob=0", "--set", "attention_probs_dropout_prob=0"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("corpus")
    return write_corpus(folder / "train.txt", 45, seed=1), write_corpus(folder / "valid.txt", 12, seed=2)


def records(out: Path, split: str) -> list[dict]:
    lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == split]


def final_weights(out: Path) -> dict:
    return torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)["model"]


@pytest.fixture
def one_thread():
    """Run in-process training on one thread, like the subprocesses (OMP_NUM_THREADS=1), for equal numerics."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def subprocess_env(**extra) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0", MPLBACKEND="Agg")
    env.update({k: str(v) for k, v in extra.items()})
    return env


# `python -c` program: `minibert pretrain` whose every forward pass sleeps, so a test can signal it mid-run
SLOW_PRETRAIN = ("import sys, time; import minibert.pretrain as p; forward = p.pretraining_sums; "
                 "p.pretraining_sums = lambda model, batch: (time.sleep({delay}), forward(model, batch))[1]; "
                 "sys.exit(p.main(sys.argv[1:]))")


def slow_pretrain_command(delay: float) -> list[str]:
    """A command line that runs ``minibert pretrain`` with a sleep of ``delay`` seconds in every forward pass."""
    return [sys.executable, "-c", SLOW_PRETRAIN.format(delay=delay)]


# ---------------------------------------------------------------- schedule and optimizer


def test_learning_rate_rises_linearly_during_warmup_then_falls_linearly_to_zero(lib):
    """eta_s = eta (s+1)/W for s < W, then eta (S-s)/(S-W): peak at s = W-1, zero at s = S."""
    peak, warmup, total = 1e-3, 10, 110
    lrs = [lib.learning_rate(s, total, warmup, peak) for s in range(total + 1)]
    assert lrs[0] == pytest.approx(peak / warmup, rel=1e-12), f"first step lr {lrs[0]}"
    assert lrs[warmup - 1] == pytest.approx(peak, rel=1e-12), f"end of warm-up lr {lrs[warmup - 1]}"
    rises = [b - a for a, b in zip(lrs[:warmup], lrs[1:warmup])]
    assert max(rises) - min(rises) < 1e-15, f"warm-up increments are not constant: {rises}"
    falls = [a - b for a, b in zip(lrs[warmup:total], lrs[warmup + 1:total + 1])]
    assert max(falls) - min(falls) < 1e-15, f"decay decrements are not constant: {falls[:3]}..."
    assert falls[0] == pytest.approx(peak / (total - warmup), rel=1e-9)
    assert lrs[total - 1] > 0 and lrs[total] == 0.0, f"last step {lrs[total - 1]}, after the end {lrs[total]}"


def test_weight_decay_applies_to_matrices_and_never_to_biases_or_layernorm(lib):
    """AdamW groups: every bias and LayerNorm parameter has decay 0; every other weight is decayed."""
    from minibert.model import BertConfig, BertForPreTraining

    model = BertForPreTraining(BertConfig.from_preset("tiny", vocab_size=50, hidden_size=16,
                                                      intermediate_size=32))
    expected_no_decay = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if isinstance(module, torch.nn.LayerNorm) or name == "bias" or "LayerNorm" in type(module).__name__:
                expected_no_decay.add(id(p))
    decay, no_decay = lib.parameter_groups(model, weight_decay=0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    got = {id(p) for p in no_decay["params"]}
    assert got == expected_no_decay, f"{len(got)} undecayed tensors, expected {len(expected_no_decay)}"
    all_ids = {id(p) for p in model.parameters()}
    assert {id(p) for p in decay["params"]} == all_ids - expected_no_decay


def test_help_explains_every_flag():
    """``minibert pretrain --help`` lists and explains each required option."""
    text = build_parser().format_help()
    for flag in ("--preset", "--train", "--valid", "--data-dir", "--out", "--max-steps", "--batch-size",
                 "--seq-len", "--lr", "--warmup-steps", "--device", "--precision", "--compile", "--resume",
                 "--seed", "--eval-every", "--save-every", "--log-every", "--grad-accum", "--tokenizer"):
        assert flag in text, f"{flag} is missing from --help"
    for action in build_parser()._actions:
        assert action.help, f"option {action.option_strings} has no help text"


# ---------------------------------------------------------------- a whole run


@pytest.fixture(scope="module")
def finished_run(corpus, tmp_path_factory):
    train, valid = corpus
    out = tmp_path_factory.mktemp("run") / "out"
    code = main([*TINY, "--train", str(train), "--valid", str(valid), "--out", str(out),
                 "--max-steps", "24", "--lr", "3e-3", "--eval-every", "12", "--save-every", "12"])
    assert code == 0
    return out


def test_a_run_writes_metrics_results_curves_checkpoint_and_tokenizer(finished_run):
    """results.json has the agreed fields, perplexity = exp(valid MLM loss), metrics.jsonl has every step."""
    out = finished_run
    for name in ("metrics.jsonl", "results.json", "curves.png", "checkpoint.pt", "tokenizer", "export"):
        assert (out / name).exists(), f"{name} missing from {sorted(p.name for p in out.iterdir())}"
    results = json.loads((out / "results.json").read_text())
    for key in ("steps", "tokens_per_second", "valid_mlm_loss", "valid_mlm_accuracy", "valid_perplexity",
                "valid_nsp_accuracy", "train_seconds", "config", "data", "device", "hardware"):
        assert key in results, f"results.json lacks {key}"
    assert results["steps"] == 24
    assert results["valid_perplexity"] == pytest.approx(math.exp(results["valid_mlm_loss"]), rel=1e-9)
    train = records(out, "train")
    assert [r["step"] for r in train] == list(range(1, 25))
    valid = records(out, "valid")
    assert [r["step"] for r in valid] == [12, 24]
    assert valid[-1]["mlm_accuracy"] == pytest.approx(results["valid_mlm_accuracy"], abs=0)


def test_a_short_run_lowers_the_mlm_loss(finished_run):
    """After 24 steps the train MLM loss (mean of the last 4 steps) is below that of the first 4."""
    train = records(finished_run, "train")
    first = sum(r["mlm_loss"] for r in train[:4]) / 4
    last = sum(r["mlm_loss"] for r in train[-4:]) / 4
    assert last < first - 0.1, f"MLM loss went from {first:.4f} to {last:.4f}"


def test_the_export_folder_loads_in_transformers_and_predicts_like_the_checkpoint(finished_run):
    """transformers' BertForPreTraining.from_pretrained(export) gives our model's logits (<= 1e-4)."""
    transformers = require_reference("transformers")
    from minibert.hf import load_checkpoint
    from minibert.tokenization import load_tokenizer

    export = finished_run / "export"
    theirs = transformers.BertForPreTraining.from_pretrained(str(export)).eval()
    ours = load_checkpoint(finished_run / "checkpoint.pt")
    tokenizer = load_tokenizer(export)
    batch = tokenizer.encode_batch(["The kalomi was in a rusato.", "Of the sa"])
    with torch.no_grad():
        mine = ours(batch["input_ids"], token_type_ids=batch["token_type_ids"],
                    attention_mask=batch["attention_mask"])
        ref = theirs(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                     attention_mask=batch["attention_mask"])
    keep = batch["attention_mask"].bool()
    diff_mlm = max_abs_diff(mine["mlm_logits"][keep], ref.prediction_logits[keep])
    diff_nsp = max_abs_diff(mine["nsp_logits"], ref.seq_relationship_logits)
    assert diff_mlm <= 1e-4 and diff_nsp <= 1e-4, f"MLM logits differ by {diff_mlm:.2e}, NSP by {diff_nsp:.2e}"


def test_bf16_autocast_runs_on_cpu_with_finite_losses(corpus, tmp_path):
    """``--precision bf16`` trains (CPU autocast) and logs finite losses."""
    train, valid = corpus
    out = tmp_path / "bf16"
    assert main([*TINY, "--train", str(train), "--valid", str(valid), "--out", str(out), "--max-steps", "3",
                 "--precision", "bf16", "--eval-batches", "2"]) == 0
    losses = [r["loss"] for r in records(out, "train")]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses), f"losses {losses}"
    assert json.loads((out / "results.json").read_text())["precision"] == "bf16"


# ---------------------------------------------------------------- resume, NaN, DDP


def test_a_run_killed_with_sigkill_and_resumed_ends_with_the_same_parameters(corpus, tmp_path, one_thread):
    """SIGKILL after the first checkpoint, then --resume: bit-identical weights to an uninterrupted run."""
    train, valid = corpus
    args = [*TINY, "--train", str(train), "--valid", str(valid), "--max-steps", "12", "--save-every", "4",
            "--eval-every", "6", "--eval-batches", "2"]
    cmd = [sys.executable, "-m", "minibert.pretrain", *args]
    reference = tmp_path / "uninterrupted"
    assert main([*args, "--out", str(reference)]) == 0

    out = tmp_path / "killed"
    process = subprocess.Popen([*slow_pretrain_command(0.5), *args, "--out", str(out)], env=subprocess_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not (out / "checkpoint.pt").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, f"the run ended by itself ({process.returncode}) before the kill"
    killed_at = torch.load(out / "checkpoint.pt", weights_only=True)["step"]
    assert 4 <= killed_at < 12, f"checkpoint at step {killed_at}"

    resumed = subprocess.run([*cmd, "--out", str(out), "--resume"], env=subprocess_env(), capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr
    a, b = final_weights(reference), final_weights(out)
    worst = max(max_abs_diff(a[k], b[k]) for k in a)
    print(f"killed at checkpoint step {killed_at}, resumed: weights differ by {worst:.1e}")
    assert worst == 0.0, f"resumed weights differ from the uninterrupted run by up to {worst:.3e}"
    steps = [r["step"] for r in records(out, "train")]
    assert steps == list(range(1, 13)), f"metrics.jsonl steps after resume: {steps}"


def test_a_nan_loss_stops_the_run_with_one_sentence_and_keeps_the_last_good_checkpoint(corpus, tmp_path, capsys,
                                                                                        monkeypatch):
    """Fault injection: step 6's loss is NaN; exit code 1, a one-line message, checkpoint of step 4 intact."""
    import minibert.pretrain as pretrain

    train, valid = corpus
    out = tmp_path / "nan"
    forward, calls = pretrain.pretraining_sums, []

    def nan_at_step_6(model, batch):
        sums = forward(model, batch)
        if model.training:
            calls.append(1)
            if len(calls) == 6:   # one micro-batch per step: the 6th training forward pass is step 6
                sums["mlm_loss_sum"] = sums["mlm_loss_sum"] * float("nan")
        return sums

    monkeypatch.setattr(pretrain, "pretraining_sums", nan_at_step_6)
    code = main([*TINY, "--train", str(train), "--valid", str(valid), "--out", str(out), "--max-steps", "10",
                 "--save-every", "4", "--eval-every", "100", "--eval-batches", "2"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.count("\n") == 0 and "NaN or infinite at step 6" in err and "checkpoint.pt is kept" in err, err
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 4
    assert all(torch.isfinite(t).all() for t in checkpoint["model"].values())
    assert not (out / "results.json").exists()


def test_resume_from_another_directory_with_moved_data_extends_the_run(corpus, tmp_path, monkeypatch, capsys):
    """Relative paths are stored absolute; data flags given on --resume win; --max-steps 6 extends a 4-step run
    and steps 5-6 follow the linear decay to 0 at step 6 (no new warm-up)."""
    from minibert.training_utils import learning_rate

    data = tmp_path / "data"
    data.mkdir()
    for path in corpus:
        (data / path.name).write_bytes(path.read_bytes())
    monkeypatch.chdir(data)
    argv = [*TINY, "--train", "train.txt", "--valid", "valid.txt", "--out", "../run", "--max-steps", "4",
            "--eval-every", "100", "--eval-batches", "2", "--lr", "3e-3"]
    assert main(argv) == 0
    out = tmp_path / "run"
    stored = torch.load(out / "checkpoint.pt", weights_only=True)["args"]
    assert stored["train"] == str(data / "train.txt"), stored["train"]
    moved = tmp_path / "moved"
    data.rename(moved)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["--resume", "--out", str(out), "--max-steps", "6", "--train", str(moved / "train.txt"),
                 "--valid", str(moved / "valid.txt")]) == 0
    said = capsys.readouterr().out
    assert "extending the run from --max-steps 4 to 6" in said, said
    train = records(out, "train")
    assert [r["step"] for r in train] == [1, 2, 3, 4, 5, 6]
    expected = [learning_rate(s - 1, 4, 2, 3e-3) for s in (1, 2, 3, 4)] + [learning_rate(s - 1, 6, 2, 3e-3)
                                                                            for s in (5, 6)]
    assert [r["lr"] for r in train] == pytest.approx(expected, rel=1e-12), [r["lr"] for r in train]
    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 6 and results["args"]["train"] == str(moved / "train.txt")


def test_both_run_folders_share_the_results_schema(finished_run, tmp_path):
    """A pretrain run and a textcnn train run write results.json with the same shared keys and metrics.jsonl
    records with split and step."""
    from textcnn.train import main as textcnn_main

    data = tmp_path / "cnn.txt"
    data.write_text("".join(f"{i % 2} {'good' if i % 2 else 'bad'} film {i}\n" for i in range(30)))
    cnn = tmp_path / "cnn"
    assert textcnn_main(["--train", str(data), "--epochs", "1", "--embedding-dim", "8", "--num-filters", "4",
                         "--out", str(cnn), "--device", "cpu"]) == 0
    shared = ["command", "num_parameters", "train_seconds", "device", "hardware", "args"]
    for folder, command in ((finished_run, "minibert pretrain"), (cnn, "textcnn train")):
        results = json.loads((folder / "results.json").read_text())
        assert [k for k in shared if k not in results] == [], f"{folder.name} lacks some of {shared}"
        assert results["command"] == command and isinstance(results["num_parameters"], int)
        for line in (folder / "metrics.jsonl").read_text().splitlines():
            record = json.loads(line)
            assert {"split", "step"} <= set(record), record


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_with_two_processes_follows_the_loss_curve_of_one_process(corpus, tmp_path, one_thread):
    """gloo, 2 processes x batch 4 == 1 process x batch 8: same losses and weights (<= 1e-5), dropout off."""
    train, valid = corpus
    args = [*TINY, *NO_DROPOUT, "--train", str(train), "--valid", str(valid), "--max-steps", "5",
            "--eval-every", "5", "--eval-batches", "2"]
    one = tmp_path / "one"
    assert main([*args, "--out", str(one)]) == 0
    two = tmp_path / "two"
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
                          "-m", "minibert.pretrain", *args, "--batch-size", "4", "--out", str(two)],
                         env=subprocess_env(), capture_output=True, text=True, timeout=180)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a, b = records(one, "train"), records(two, "train")
    assert len(a) == len(b) == 5
    worst = max(abs(x[k] - y[k]) for x, y in zip(a, b) for k in ("loss", "mlm_loss", "nsp_loss"))
    assert worst <= 1e-5, f"loss curves differ by up to {worst:.2e}"
    va, vb = records(one, "valid")[-1], records(two, "valid")[-1]
    assert abs(va["mlm_loss"] - vb["mlm_loss"]) <= 1e-5, f"valid MLM loss {va['mlm_loss']} vs {vb['mlm_loss']}"
    wa, wb = final_weights(one), final_weights(two)
    worst_w = max(max_abs_diff(wa[k], wb[k]) for k in wa)
    print(f"1 vs 2 processes: losses differ by <= {worst:.2e}, final weights by <= {worst_w:.2e}")
    assert worst_w <= 1e-5, f"weights differ by up to {worst_w:.2e}"
    assert json.loads((two / "results.json").read_text())["world_size"] == 2


# ---------------------------------------------------------------- bad input: one clear sentence


def _error_of(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, f"exit code {code}, stderr {err!r}"
    assert err.count("\n") == 0, f"the error is not one line: {err!r}"
    assert err.startswith("minibert pretrain: error: ")
    return err


def test_error_for_a_missing_training_file(corpus, tmp_path, capsys):
    err = _error_of(capsys, [*TINY, "--train", str(tmp_path / "nope.txt"), "--valid", str(corpus[1]),
                             "--out", str(tmp_path / "o")])
    assert "nope.txt" in err and "does not exist" in err, err


def test_error_for_an_empty_corpus(corpus, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    err = _error_of(capsys, [*TINY, "--train", str(empty), "--valid", str(corpus[1]), "--out", str(tmp_path / "o")])
    assert "empty.txt" in err and "empty" in err, err


def test_error_for_a_file_that_is_not_utf8(corpus, tmp_path, capsys):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes(" = T = \n\n caf\xe9 au lait . \n".encode("latin-1"))
    err = _error_of(capsys, [*TINY, "--train", str(latin), "--valid", str(corpus[1]), "--out", str(tmp_path / "o")])
    assert "latin1.txt" in err and "UTF-8" in err, err


def test_error_for_an_unknown_preset(corpus, tmp_path, capsys):
    err = _error_of(capsys, ["--preset", "huge", "--train", str(corpus[0]), "--valid", str(corpus[1]),
                             "--out", str(tmp_path / "o")])
    assert "'huge'" in err and "tiny" in err, err


def test_error_for_a_seq_len_longer_than_the_position_table(corpus, tmp_path, capsys):
    err = _error_of(capsys, [*TINY, "--seq-len", "65", "--train", str(corpus[0]), "--valid", str(corpus[1]),
                             "--out", str(tmp_path / "o")])
    assert "--seq-len 65" in err and "max_position_embeddings (64)" in err, err


def test_error_for_resume_from_a_folder_without_checkpoint(tmp_path, capsys):
    err = _error_of(capsys, [*TINY, "--resume", "--out", str(tmp_path)])
    assert "checkpoint.pt" in err and str(tmp_path) in err, err


def test_unigram_baseline_scores_the_same_masked_valid_tokens_as_the_run(finished_run):
    """scripts/unigram_baseline.py rebuilds the run's fixed valid masks: same number of masked tokens."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("unigram_baseline", ROOT / "scripts" / "unigram_baseline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.baseline(finished_run)
    results = json.loads((finished_run / "results.json").read_text())
    assert result["masked_tokens"] == results["valid_masked_tokens"], (result["masked_tokens"],
                                                                       results["valid_masked_tokens"])
    assert 0.0 < result["unigram_sampling_expected_accuracy"] < 1.0
    assert 0.0 < result["most_frequent_token_accuracy"] < 1.0
    assert result["valid_pairs"] == results["valid_pairs"]
    assert result["unigram_perplexity"] == pytest.approx(math.exp(result["unigram_cross_entropy"]), rel=1e-9)


def test_error_for_fp16_without_a_gpu(corpus, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU, where fp16 is allowed")
    err = _error_of(capsys, [*TINY, "--precision", "fp16", "--train", str(corpus[0]), "--valid", str(corpus[1]),
                             "--out", str(tmp_path / "o")])
    assert "fp16" in err and "CUDA" in err, err
