"""`textcnn train` and `textcnn predict` on toy data: run folder, best epoch, cross-validation, resume."""

from __future__ import annotations

import json

POS = ["a good film", "good fun", "really good acting", "so good", "good and warm", "a good story"]
NEG = ["a bad film", "bad fun", "really bad acting", "so bad", "bad and cold", "a bad story"]


def _toy_file(path, n=60, seed=0):
    import random

    rng = random.Random(seed)
    rows = [f"1 {rng.choice(POS)}" if i % 2 else f"0 {rng.choice(NEG)}" for i in range(n)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


SMALL = ["--embedding-dim", "16", "--num-filters", "8", "--batch-size", "10", "--threads", "1"]


def test_train_cli_learns_a_toy_task_and_predict_uses_the_saved_model(tmp_path, capsys):
    """`textcnn train` writes metrics.jsonl, results.json, a confusion PNG and a model `textcnn predict` uses."""
    from textcnn.cli import main as cli
    from textcnn.predict import TextCNNClassifier

    train, test = _toy_file(tmp_path / "train.txt"), _toy_file(tmp_path / "test.txt", n=20, seed=1)
    out = tmp_path / "run"
    assert cli(["train", "--train", str(train), "--test", str(test), "--epochs", "6", "--out", str(out)] + SMALL) == 0
    results = json.loads((out / "results.json").read_text())
    for key in ("test_accuracy", "test_f1_macro", "train_seconds", "num_parameters", "best_epoch"):
        assert key in results, f"results.json lacks {key}"
    assert "(--malloc-tuning)" in capsys.readouterr().out and results["args"]["malloc_tuning"] == "auto"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().strip().split("\n")]
    assert [(r["split"], r["epoch"]) for r in records] == [(s, e) for e in range(1, 7) for s in ("train", "dev", "test")]
    steps_per_epoch = 6  # 60 examples in batches of 10
    assert [r["step"] for r in records[::3]] == [steps_per_epoch * e for e in range(1, 7)]
    dev = [r["accuracy"] for r in records if r["split"] == "dev"]
    assert results["best_epoch"] == dev.index(max(dev)) + 1 and results["dev_accuracy"] == max(dev)
    assert results["test_accuracy"] >= 0.9, f"toy task test accuracy {results['test_accuracy']:.3f}"
    assert (out / "confusion_matrix.png").stat().st_size > 1000
    classifier = TextCNNClassifier.load(out)
    assert classifier.predict(["a good story", "a bad story"]) == ["1", "0"]
    capsys.readouterr()
    assert cli(["predict", "--model", str(out), "really good acting", "really bad acting"]) == 0
    printed = capsys.readouterr().out.strip().split("\n")
    assert [line.split("\t")[0] for line in printed] == ["1", "0"], printed
    assert cli(["predict", "--model", str(out), "--folded", "really good acting", "really bad acting"]) == 0
    assert capsys.readouterr().out.strip().split("\n") == printed, "--folded printed other labels or probabilities"


def test_train_cli_conv_padding_wide_is_recorded_and_reloaded(tmp_path):
    """`--conv-padding wide` lands in results.json (config and protocol) and the saved model predicts with it."""
    from textcnn.predict import TextCNNClassifier
    from textcnn.train import main

    train = _toy_file(tmp_path / "train.txt", n=40)
    out = tmp_path / "wide"
    assert main(["--train", str(train), "--epochs", "1", "--conv-padding", "wide", "--out", str(out)] + SMALL) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["conv_padding"] == "wide" and results["args"]["conv_padding"] == "wide", results
    assert TextCNNClassifier.load(out).model.config.conv_padding == "wide"


def test_train_cli_cross_validation_reports_mean_and_std_and_resumes(tmp_path, capsys):
    """--cv K writes one folder per fold and cv_accuracy_mean/std; a rerun needs --resume and reuses finished folds."""
    from textcnn.train import main

    data = _toy_file(tmp_path / "all.txt", n=60)
    out = tmp_path / "cv"
    argv = ["--train", str(data), "--cv", "3", "--epochs", "2", "--out", str(out)] + SMALL
    assert main(argv) == 0
    summary = json.loads((out / "results.json").read_text())
    accs = summary["fold_test_accuracy"]
    assert len(accs) == 3 and all((out / f"fold_{f:02d}" / "results.json").exists() for f in (1, 2, 3))
    mean = sum(accs) / 3
    assert abs(summary["cv_accuracy_mean"] - mean) <= 1e-12, (summary["cv_accuracy_mean"], mean)
    assert summary["cv_accuracy_std"] >= 0.0 and "test_f1_macro" in summary
    capsys.readouterr()
    assert main(argv) == 2, "a finished run folder must not be reused without --resume"
    assert "--resume" in capsys.readouterr().err
    assert main(argv + ["--resume"]) == 0
    assert capsys.readouterr().out.count("already done") == 3


def test_train_cli_static_mode_with_a_vector_file_reports_coverage(tmp_path, capsys):
    """--mode static --vectors FILE loads the vectors and prints how many words were found."""
    from textcnn.train import main

    vectors = tmp_path / "vec.txt"
    vectors.write_text("good 1 0 0 0\nbad -1 0 0 0\nfilm 0 1 0 0\n", encoding="utf-8")
    data = _toy_file(tmp_path / "train.txt", n=40)
    argv = ["--train", str(data), "--mode", "static", "--vectors", str(vectors), "--epochs", "1",
            "--out", str(tmp_path / "s"), "--num-filters", "4", "--batch-size", "10", "--threads", "1"]
    assert main(argv) == 0
    assert "vectors: 3 of" in capsys.readouterr().out


def test_train_cli_bad_input_is_one_sentence(tmp_path, capsys):
    """A training file with a single class, or a mode without vectors, fails with one clear line."""
    from textcnn.train import main

    one = tmp_path / "one.txt"
    one.write_text("1 good\n1 fine\n", encoding="utf-8")
    assert main(["--train", str(one), "--out", str(tmp_path / "x")]) == 2
    assert "at least 2" in capsys.readouterr().err
    assert main(["--train", str(one), "--mode", "static", "--out", str(tmp_path / "x")]) == 2
    assert "needs --vectors" in capsys.readouterr().err


def test_a_second_run_into_the_same_folder_is_refused_and_overwrite_starts_again(tmp_path, capsys):
    from textcnn.train import main

    train = _toy_file(tmp_path / "train.txt", n=40)
    out = tmp_path / "run"
    argv = ["--train", str(train), "--epochs", "1", "--out", str(out)] + SMALL
    assert main(argv) == 0
    before = (out / "results.json").read_bytes()
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume" in err and "--overwrite" in err, err
    assert (out / "results.json").read_bytes() == before
    (out / "stray.txt").write_text("x")
    assert main(argv + ["--overwrite"]) == 0
    assert not (out / "stray.txt").exists()


def test_train_static_mode_with_vectors_from_bert(tmp_path):
    """``textcnn train --mode static --vectors-from-bert BERT``: the frozen embedding of a word is the mean of
    its sub-word rows in the BERT's input embeddings (computed here by hand), and stays so after training."""
    from minibert.hf import save_pretrained
    from minibert.model import BertConfig, BertModel
    from minibert.tokenization import WordPieceTokenizer
    import torch

    from textcnn.train import main

    bert = tmp_path / "bert"
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film", "un", "##watch", "##able"]
    config = BertConfig(vocab_size=len(pieces), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=32)
    torch.manual_seed(0)
    encoder = BertModel(config)
    save_pretrained(encoder, bert)
    WordPieceTokenizer(pieces).save(bert)
    data = tmp_path / "train.txt"
    data.write_text("".join(f"{y} {t}\n" for y, t in [(1, "good film"), (0, "bad film"), (0, "unwatchable film"),
                                                       (1, "good good film"), (0, "bad unwatchable")] * 4),
                    encoding="utf-8")
    out = tmp_path / "run"
    assert main(["--train", str(data), "--mode", "static", "--vectors-from-bert", str(bert), "--epochs", "1",
                 "--num-filters", "2", "--window-sizes", "1", "--out", str(out), "--threads", "1"]) == 0
    saved = torch.load(out / "model.pt", weights_only=True)
    weight = saved["state_dict"]["embedding.weight"]                         # (V, 8), frozen
    table = encoder.embeddings.word_embeddings.weight.detach()
    row = saved["vocab"].index("unwatchable")
    expected = table[[pieces.index("un"), pieces.index("##watch"), pieces.index("##able")]].mean(0)
    diff = (weight[row] - expected).abs().max().item()
    assert diff < 1e-6, f"'unwatchable' vector differs from the mean of its 3 pieces by {diff:.2e}"
    assert (weight[saved["vocab"].index("good")] - table[pieces.index("good")]).abs().max().item() < 1e-6
