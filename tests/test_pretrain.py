"""The pretraining loop: schedule, optimizer groups, outputs, DDP, resume, NaN stop, clear errors.

Every run here is a toy: a 2-layer BERT of hidden size 32 with a ~100-piece
SentencePiece vocabulary, trained for a few steps on a synthetic corpus
written into ``tmp_path`` (pseudo-words, 3 topics, so that documents differ).
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import load_script, max_abs_diff, require_reference, write_corpus
from minibert.pretrain import build_parser, main
from minibert.training_utils import MALLOC_SAYS

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
                 "--seed", "--eval-every", "--save-every", "--keep-every", "--log-every", "--grad-accum", "--tokenizer"):
        assert flag in text, f"{flag} is missing from --help"
    for action in build_parser()._actions:
        assert action.help, f"option {action.option_strings} has no help text"


# ---------------------------------------------------------------- a whole run


@pytest.fixture(scope="module")
def finished_run(corpus, tmp_path_factory):
    train, valid = corpus
    out = tmp_path_factory.mktemp("run") / "out"
    code = main([*TINY, "--train", str(train), "--valid", str(valid), "--out", str(out),
                 "--max-steps", "24", "--lr", "3e-3", "--eval-every", "12", "--save-every", "12", "--keep-every", "8"])
    assert code == 0
    return out


def test_keep_every_leaves_one_snapshot_per_budget_that_later_saves_do_not_overwrite(finished_run):
    """--keep-every 8 on a 24-step run: snapshots at steps 8, 16 and 24 (8 and 16 are not --save-every steps), each
    holding the weights of its own step; the last one equals checkpoint.pt, the earlier ones differ from it."""
    snapshots = sorted((finished_run / "snapshots").glob("*.pt"))
    assert [p.name for p in snapshots] == ["step_000008.pt", "step_000016.pt", "step_000024.pt"]
    states = [torch.load(p, weights_only=True) for p in snapshots]
    assert [s["step"] for s in states] == [8, 16, 24]
    final = torch.load(finished_run / "checkpoint.pt", weights_only=True)["model"]
    for state, same in zip(states, (False, False, True)):
        equal = all(torch.equal(state["model"][k], final[k]) for k in final)
        assert equal == same, f"snapshot of step {state['step']}: equal to the final weights = {equal}"


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
    assert results["malloc"] in MALLOC_SAYS                     # what --malloc-tuning auto did (test_training_utils)
    assert results["valid_perplexity"] == pytest.approx(math.exp(results["valid_mlm_loss"]), rel=1e-9)
    train = records(out, "train")
    assert [r["step"] for r in train] == list(range(1, 25))
    valid = records(out, "valid")
    assert [r["step"] for r in valid] == [12, 24]
    assert valid[-1]["mlm_accuracy"] == pytest.approx(results["valid_mlm_accuracy"], abs=0)


def test_results_and_progress_report_model_flops_utilisation(finished_run):
    """results.json's MFU is the run's matmul FLOPs / its training seconds / the measured peak, and every
    train record carries one: the FLOPs lie between those of a step with no and with every position masked."""
    from minibert.flops import training_step_flops
    from minibert.model import BertConfig
    results = json.loads((finished_run / "results.json").read_text())
    config = BertConfig.from_dict(results["config"])
    assert results["matmul_peak_gflops"] > 0
    assert results["mfu"] == pytest.approx(results["achieved_matmul_gflops"] / results["matmul_peak_gflops"],
                                           rel=1e-9)
    flops = results["achieved_matmul_gflops"] * 1e9 * results["train_seconds"]
    batch, seq = results["args"]["batch_size"], results["args"]["seq_len"]
    low = results["steps"] * training_step_flops(config, batch, 1, 0)
    high = results["steps"] * training_step_flops(config, batch, seq, batch * seq)
    assert low < flops <= high * (1 + 1e-9), f"{flops:.3e} FLOPs outside [{low:.3e}, {high:.3e}]"
    assert all(r["mfu"] > 0 for r in records(finished_run, "train"))


def test_the_matmul_peak_is_measured_again_and_the_highest_is_kept(corpus, tmp_path, monkeypatch):
    """A peak measured while the machine is slow for a moment would inflate MFU: the run measures it at the start,
    after its first step and at every validation, and divides by the highest so far (here 1, 4, 2 and 3 GFLOP/s:
    the run reports its MFU against 4)."""
    import minibert.pretrain as pretrain
    values = iter([1e9, 4e9, 2e9, 3e9])
    calls = []

    def fake_peak(*args, **kwargs):
        calls.append(1)
        return next(values)

    monkeypatch.setattr(pretrain, "measure_matmul_peak", fake_peak)
    train, valid = corpus
    out = tmp_path / "out"
    assert main([*TINY, "--train", str(train), "--valid", str(valid), "--out", str(out), "--max-steps", "4",
                 "--eval-every", "2", "--save-every", "4"]) == 0
    assert len(calls) == 4                                    # start, after step 1, validations at steps 2 and 4
    results = json.loads((out / "results.json").read_text())
    assert results["matmul_peak_gflops"] == pytest.approx(4.0)
    assert results["mfu"] == pytest.approx(results["achieved_matmul_gflops"] / 4.0, rel=1e-9)
    assert len(records(out, "train")) == 4 and all(r["mfu"] > 0 for r in records(out, "train"))


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
                 "--precision", "bf16", "--eval-batches", "2", "--malloc-tuning", "off"]) == 0
    losses = [r["loss"] for r in records(out, "train")]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses), f"losses {losses}"
    results = json.loads((out / "results.json").read_text())
    assert results["precision"] == "bf16" and results["malloc"] == "default"


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


def test_the_peak_learning_rate_defaults_by_preset_and_an_explicit_lr_wins(corpus, tmp_path):
    """No --lr: tiny 2e-3, mini 5e-4 (mini does not train at 2e-3), small/medium/base 1e-4; the resolved
    value is what the run trains with and stores, so --resume keeps it."""
    from minibert.pretrain import DEFAULT_LR, resolve_defaults
    from minibert.training_utils import learning_rate

    for preset, lr in {"tiny": 2e-3, "mini": 5e-4, "small": 1e-4, "medium": 1e-4, "base": 1e-4}.items():
        args = build_parser().parse_args(["--preset", preset])
        assert args.lr is None
        resolve_defaults(args)
        assert args.lr == lr == DEFAULT_LR[preset], (preset, args.lr)
        args = build_parser().parse_args(["--preset", preset, "--lr", "3e-4"])
        resolve_defaults(args)
        assert args.lr == 3e-4
    train, valid = corpus
    out = tmp_path / "mini"
    assert main([*TINY, "--preset", "mini", "--set", "num_hidden_layers=1", "--train", str(train),
                 "--valid", str(valid), "--out", str(out), "--max-steps", "3", "--eval-every", "100",
                 "--eval-batches", "1"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=True)["args"]["lr"] == 5e-4
    assert [r["lr"] for r in records(out, "train")] == pytest.approx(
        [learning_rate(s, 3, 2, 5e-4) for s in range(3)], rel=1e-12)


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

    module = load_script("unigram_baseline")
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


# ---------------------------------------------------------------- pairs per epoch, SOP, tokenizer, transformers export


def test_the_training_stream_resumed_in_a_later_epoch_serves_that_epochs_fresh_pairs():
    """Dynamic pairs: epoch 2 of a resumed stream == epoch 2 of the uninterrupted one, and differs from epoch 0."""
    from minibert.pretrain import training_stream
    from minibert.pretraining_data import EpochPairs
    from minibert.tokenization import SentencePieceTokenizer
    from minibert.training_utils import Distributed

    rng = random.Random(0)
    docs = [[[rng.randrange(5, 90) for _ in range(rng.randint(2, 9))] for _ in range(rng.randint(2, 8))]
            for _ in range(30)]
    tokenizer = SentencePieceTokenizer.train([f"w{i} w{i + 1} w{i * 3}" for i in range(300)], vocab_size=100)

    def stream(epoch, skip):
        pairs = EpochPairs(docs, tokenizer, 32, seed=5)
        return training_stream(pairs, 8, 5, epoch, skip, Distributed())

    full = [next_batch for _, next_batch in zip(range(200), stream(0, 0))]
    epoch_2 = [(i, b) for e, i, b in full if e == 2]
    assert epoch_2, "the stream never reached epoch 2; use more steps"
    index, expected = epoch_2[3]
    _, resumed_index, resumed = next(stream(2, index))
    assert resumed_index == index
    assert all(torch.equal(resumed[k], expected[k]) for k in expected), "resumed batch differs"
    first = {tuple(r.tolist()) for e, _, b in full if e == 0 for r in b["token_type_ids"]}
    third = {tuple(r.tolist()) for e, _, b in full if e == 2 for r in b["token_type_ids"]}
    assert first != third, "epoch 2 serves the pairs of epoch 0 (the A/B cuts did not change)"


def test_the_run_logs_train_nsp_accuracy_and_trains_sop_with_scaled_head_lr(corpus, tmp_path):
    """--pair-objective sop --head-lr-scale 4 --pair-loss-weight 2: train records carry nsp_accuracy; head lr x4.

    The logged ``loss`` is the weighted objective L_mlm + 2 L_sop, not the plain sum of the two.
    """
    train, valid = corpus
    out = tmp_path / "sop"
    assert main([*TINY, "--train", str(train), "--valid", str(valid), "--out", str(out), "--max-steps", "3",
                 "--eval-batches", "2", "--pair-objective", "sop", "--head-lr-scale", "4",
                 "--pair-loss-weight", "2"]) == 0
    train_records = records(out, "train")
    assert all(0.0 <= r["nsp_accuracy"] <= 1.0 for r in train_records), train_records
    for r in train_records:
        assert r["loss"] == pytest.approx(r["mlm_loss"] + 2 * r["nsp_loss"], rel=1e-9), r
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["args"]["pair_objective"] == "sop"
    scales = sorted({g["lr_scale"] for g in checkpoint["optimizer"]["param_groups"]})
    assert scales == [1.0, 4.0], scales
    lrs = {g["lr_scale"]: g["lr"] for g in checkpoint["optimizer"]["param_groups"]}
    assert lrs[4.0] == pytest.approx(4 * lrs[1.0], rel=1e-12), lrs


def test_the_tokenizer_is_trained_on_the_detokenised_sentences_the_model_reads(tmp_path):
    """A corpus full of WikiText's ' @-@ ': trained on the raw file SentencePiece learns '@' pieces; ours has none."""
    from minibert.tokenization import SentencePieceTokenizer, load_tokenizer

    raw = write_corpus(tmp_path / "raw.txt", 45, seed=3)
    text = raw.read_text(encoding="utf-8").replace(" of ", " @-@ ").replace(" and ", " @,@ ")
    raw.write_text(text, encoding="utf-8")
    valid = write_corpus(tmp_path / "valid.txt", 12, seed=4)
    out = tmp_path / "run"
    assert main([*TINY, "--train", str(raw), "--valid", str(valid), "--out", str(out), "--max-steps", "1",
                 "--eval-batches", "1"]) == 0
    ours = load_tokenizer(out / "tokenizer")
    on_raw = SentencePieceTokenizer.train(str(raw), vocab_size=100, seed=7)
    at_raw = [p for p in on_raw.convert_ids_to_tokens(range(on_raw.vocab_size)) if "@" in p]
    at_ours = [p for p in ours.convert_ids_to_tokens(range(ours.vocab_size)) if "@" in p]
    assert at_raw, "control: a tokenizer trained on the raw file should have '@' pieces"
    assert not at_ours, f"the run's tokenizer has pieces of WikiText artefacts: {at_ours}"


def test_fill_mask_pipeline_on_the_export_gives_minibert_top1(finished_run):
    """AutoTokenizer + AutoModelForMaskedLM (pipeline "fill-mask") on export/: the same top-1 piece as minibert."""
    transformers = require_reference("transformers")
    from minibert.hf import load_checkpoint
    from minibert.tokenization import load_tokenizer

    export = finished_run / "export"
    for name in ("tokenizer.json", "tokenizer_config.json", "spm.model", "minibert_tokenizer.json"):
        assert (export / name).is_file(), f"{name} missing from the export"
    fill = transformers.pipeline("fill-mask", model=str(export), device="cpu")
    ours = load_checkpoint(finished_run / "checkpoint.pt")
    tokenizer = load_tokenizer(export)
    sentences = ["The kalomi was in a [MASK].", "Of the [MASK] and the rusato.", "[MASK] the sa is a tovi.",
                 "A kane of mine ruto [MASK] vida.", "The mi was to the [MASK] of a sana."]
    for sentence in sentences:
        ids = torch.tensor([tokenizer.encode(sentence)["input_ids"]])
        with torch.no_grad():
            logits = ours(ids, sparse_mlm=False)["mlm_logits"][0, ids[0].tolist().index(tokenizer.mask_id)]  # (V,)
        top2 = logits.topk(2)
        theirs = fill(sentence, top_k=1)[0]
        assert theirs["token"] == int(top2.indices[0]), (
            f"{sentence!r}: transformers' top-1 {theirs['token_str']!r} ({theirs['token']}), ours "
            f"{tokenizer.convert_ids_to_tokens([int(top2.indices[0])])} (margin to 2nd {float(top2.values[0] - top2.values[1]):.2e})")


def test_every_nsp_ablation_row_is_a_pretrain_command_that_changes_something():
    """scripts/nsp_ablation.py: each row parses as `minibert pretrain` options and differs from the default row."""

    module = load_script("nsp_ablation")

    def parsed(name):
        command = module.row_command(name, Path("t.raw"), Path("v.raw"), Path("out"), 1000, 3, 100)
        assert command[1:3] == ["-m", "minibert.pretrain"]
        options = vars(build_parser().parse_args(command[3:]))
        options.pop("out")
        return options

    default = parsed("default")
    assert default["max_steps"] == 1000 and not default["static_pairs"] and default["pair_objective"] == "nsp"
    for name in module.ROWS:
        if name != "default":
            changed = {k for k, v in parsed(name).items() if v != default[k]}
            assert changed, f"row {name} runs the default command"
    assert parsed("long")["max_steps"] == 3000


def test_a_shared_token_cache_is_reused_by_the_next_run_with_the_same_stream(corpus, tmp_path, capsys, one_thread):
    """Run 2 (another --out, run 1's tokenizer, the same --token-cache) reuses the cache and trains identically."""
    train, valid = corpus
    shared = tmp_path / "shared_cache"
    args = [*TINY, "--train", str(train), "--valid", str(valid), "--max-steps", "3", "--eval-every", "100",
            "--eval-batches", "1", "--token-cache", str(shared)]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    first = capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "b"), "--tokenizer", str(tmp_path / "a" / "tokenizer")]) == 0
    second = capsys.readouterr().out
    assert "token cache: built" in first and "token cache: reused" in second, second
    assert len([p for p in shared.iterdir() if p.is_dir()]) == 1
    losses = [[r["loss"] for r in records(tmp_path / run, "train")] for run in ("a", "b")]
    assert losses[0] == losses[1], f"losses differ: {losses}"


def test_mlm_loss_weight_zero_trains_nsp_alone_and_fast_dropout_is_recorded(corpus, tmp_path):
    """--mlm-loss-weight 0: the MLM decoder bias (no weight decay, only MLM gradient) never moves; NSP still trains.

    Also: on the CPU ``--fast-dropout auto`` switches minibert.fast_dropout on, ``off`` leaves PyTorch's
    dropout, and results.json says which; ``--last-layer all`` runs the last layer at every position, which
    the FLOPs behind its MFU count (more matmul FLOPs per step than the default's, on the same batches).
    """
    from minibert.hf import load_checkpoint

    train, valid = corpus
    runs = {}
    for name, extra in (("nsp_only", ["--mlm-loss-weight", "0"]), ("torch_dropout", ["--fast-dropout", "off"]),
                        ("full_layer", ["--fast-dropout", "off", "--last-layer", "all"])):
        out = tmp_path / name
        assert main([*TINY, "--train", str(train), "--valid", str(valid), "--out", str(out), "--max-steps", "3",
                     "--eval-batches", "1", *extra]) == 0
        runs[name] = (out, json.loads((out / "results.json").read_text()))
    out, results = runs["nsp_only"]
    for r in records(out, "train"):                       # the logged loss is the objective: NSP alone
        assert r["loss"] == pytest.approx(r["nsp_loss"], rel=1e-9), r
    assert results["fast_dropout"] is True and results["args"]["fast_dropout"] == "auto"
    assert runs["torch_dropout"][1]["fast_dropout"] is False
    assert results["args"]["last_layer"] == "read" and runs["full_layer"][1]["args"]["last_layer"] == "all"
    flops = {name: runs[name][1]["achieved_matmul_gflops"] * runs[name][1]["train_seconds"]
             for name in ("torch_dropout", "full_layer")}          # same seed and batches, only the last layer differs
    assert flops["full_layer"] > 1.05 * flops["torch_dropout"], flops
    model = load_checkpoint(out / "checkpoint.pt")
    bias = model.mlm.decoder.bias.detach()
    assert torch.equal(bias, torch.zeros_like(bias)), "the MLM head moved without an MLM loss"
    torch.manual_seed(7)                                  # the run's --seed: its initial weights
    initial = type(model)(model.config)
    assert not torch.equal(initial.nsp.weight, model.nsp.weight), "the NSP head did not train"


def test_a_checkpoint_from_before_last_layer_existed_resumes_with_the_full_last_layer(finished_run, tmp_path):
    """A run begun before ``--last-layer`` existed ran its last layer at every position; --resume keeps that."""
    from minibert.pretrain import CHECKPOINT, run_settings
    checkpoint = torch.load(finished_run / CHECKPOINT, map_location="cpu", weights_only=True)
    assert checkpoint["args"]["last_layer"] == "read"
    del checkpoint["args"]["last_layer"]
    (tmp_path / "old").mkdir()
    torch.save(checkpoint, tmp_path / "old" / CHECKPOINT)
    assert run_settings(tmp_path / "old").last_layer == "all"
    assert run_settings(finished_run).last_layer == "read"


def test_nsp_diagnostics_rebuilds_the_batches_the_run_trained_on(corpus, tmp_path, monkeypatch):
    """scripts/nsp_diagnostics.py --batches: its 'random' fraction per logging window is that of the real batches.

    The run's own training forward passes record their NSP labels; the script rebuilds the stream from the
    run folder alone and must find the same label mix in every window, and mark a window "one label answered"
    exactly when the logged accuracy equals that mix or its complement.
    """

    import minibert.pretrain as pretrain

    train, valid = corpus
    out = tmp_path / "diag"
    forward, seen = pretrain.pretraining_sums, []

    def record(model, batch):
        if model.training:
            seen.append(batch["nsp_labels"].clone())
        return forward(model, batch)

    monkeypatch.setattr(pretrain, "pretraining_sums", record)
    assert main([*TINY, "--train", str(train), "--valid", str(valid), "--out", str(out), "--max-steps", "6",
                 "--log-every", "2", "--eval-batches", "1", "--keep-every", "3"]) == 0
    monkeypatch.setattr(pretrain, "pretraining_sums", forward)
    module = load_script("nsp_diagnostics")
    check = module.training_batches_check(out, 6)
    assert check["batch_rows"] == 6 * 8
    assert [w["step"] for w in check["windows"]] == [2, 4, 6]
    for i, window in enumerate(check["windows"]):
        labels = torch.cat(seen[2 * i:2 * i + 2]).double()
        assert window["random_fraction"] == pytest.approx(float(labels.mean()), abs=1e-12), (i, window)
        accuracy = window["logged_train_nsp_accuracy"]
        mix = window["random_fraction"]
        assert window["one_label_answered"] == (min(abs(accuracy - mix), abs(accuracy - 1 + mix)) < 1e-9)
    assert 0.0 <= check["overlap_auc"] <= 1.0

    # checks 1-3 score the run's own valid pairs with its final weights (= its last evaluation), the weights of a
    # --keep-every snapshot when given one, and every valid pair with --all-valid-pairs
    final = module.diagnose(out)
    results = json.loads((out / "results.json").read_text())
    assert final["model_nsp_accuracy_valid"] == pytest.approx(results["valid_nsp_accuracy"], abs=1e-9)
    last = module.diagnose(out, checkpoint=out / "snapshots" / "step_000006.pt")
    assert last["model_nsp_accuracy_valid"] == final["model_nsp_accuracy_valid"]
    assert last["checkpoint"].endswith("step_000006.pt")
    everything = module.diagnose(out, all_valid=True)
    assert final["valid_pairs"] <= 32 < everything["valid_pairs"], (final["valid_pairs"], everything["valid_pairs"])


def test_attention_init_mimetic_starts_the_run_from_mimetic_heads_and_is_recorded(corpus, tmp_path):
    """--attention-init mimetic: after one warm-up step W^O W^V still has the -0.4 diagonal it started with.

    Under BERT's init that diagonal is about 0 (products of N(0, 0.02^2) weights); the first step moves each
    weight by at most about lr/100 in warm-up, far less than 0.4. The choice is a run key, kept on --resume.
    """
    from minibert.hf import load_checkpoint

    train, valid = corpus
    diagonals = {}
    for init in ("bert", "mimetic"):
        out = tmp_path / init
        assert main([*TINY, "--train", str(train), "--valid", str(valid), "--out", str(out), "--max-steps", "1",
                     "--eval-batches", "1", "--attention-init", init]) == 0
        checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
        assert checkpoint["args"]["attention_init"] == init
        att = load_checkpoint(out / "checkpoint.pt").bert.layers[0].attention
        diagonals[init] = (att.output.weight @ att.value.weight).diagonal().mean().item()
    assert abs(diagonals["bert"]) < 0.01, diagonals
    assert diagonals["mimetic"] == pytest.approx(-0.4, abs=0.05), diagonals
