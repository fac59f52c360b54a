"""scripts/compare_classifiers.py: rows, labels and settings of the comparison table (issue 11, tutorial 09).

The table's runs are hours of training; these tests check the bookkeeping around them on a toy data folder:
every row has a name and the settings it is trained with, a missing model path is one clear error, and
``--table-only`` merges the runs that exist, in the order of ``ROWS``, with mean +- std over seeds.
"""

import json
from pathlib import Path

import pytest

from helpers import load_script


@pytest.fixture(scope="module")
def cc():
    return load_script("compare_classifiers")


def toy_data(root: Path) -> Path:
    """A data folder with the three SST-2 files the script reads (GLUE train TSV, stsa dev and test)."""
    cls = root / "classification"
    (cls / "GLUE-SST-2").mkdir(parents=True)
    (cls / "SST-2").mkdir()
    (cls / "GLUE-SST-2" / "train.tsv").write_text(
        "sentence\tlabel\n" + "".join(f"{w} film\t{i % 2}\n" for i, w in enumerate(["good", "bad"] * 4)))
    for name in ("stsa.binary.dev", "stsa.binary.test"):
        (cls / "SST-2" / name).write_text("1 a good film\n0 a bad film\n")
    return root


def test_every_row_has_a_label_and_every_bert_row_names_its_settings(cc):
    assert set(cc.LABELS) == set(cc.ROWS) and len(cc.ROWS) == len(set(cc.ROWS))
    assert cc.LABELS["mini-full"] == "our `mini`, full fine-tuning"
    assert cc.LABELS["real-probe-mean"] == "MiniLM-L6, probe (mean)"
    p = __import__("argparse").ArgumentParser()
    cc.add_model_arguments(p)
    args = p.parse_args(["--mini", "m", "--mini-full-epochs", "2", "--mini-full-lr", "1e-4"])
    assert (args.mini, args.mini_full_epochs, args.mini_full_lr, args.mini_pooling) == ("m", 2, 1e-4, "pooler")
    for row in cc.ROWS:
        model = row.partition("-")[0]
        if model in cc.MODELS:
            assert hasattr(args, model) and hasattr(args, f"{model}_pooling"), row


def test_a_bert_row_without_its_model_path_is_one_clear_error(cc, tmp_path):
    data = toy_data(tmp_path / "data")
    with pytest.raises(SystemExit, match="row mini-full needs --mini PATH"):
        cc.main(["--tasks", "sst2", "--rows", "mini-full", "--seeds", "0", "--data-dir", str(data),
                 "--out", str(tmp_path / "out")])


def test_an_interrupted_run_is_named_not_deleted_and_not_silently_rerun(cc, tmp_path):
    """A run folder holding files but no results.json (interrupted, or another process's run in progress) stops
    the table with one sentence naming the folder, and the folder is left as it was."""
    data = toy_data(tmp_path / "data")
    run = tmp_path / "out" / "sst2" / "textcnn" / "seed_0"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text('{"epoch": 1}\n')
    with pytest.raises(SystemExit, match="seed_0 holds an unfinished run .*delete that folder"):
        cc.main(["--tasks", "sst2", "--rows", "textcnn", "--seeds", "0", "--data-dir", str(data),
                 "--out", str(tmp_path / "out")])
    assert (run / "metrics.jsonl").is_file()
    cc.refuse_unfinished(tmp_path / "missing")               # nothing there yet: fine
    (tmp_path / "empty").mkdir()
    cc.refuse_unfinished(tmp_path / "empty")                 # an empty folder: fine


def test_table_only_merges_existing_runs_in_row_order_with_mean_and_std(cc, tmp_path):
    data = toy_data(tmp_path / "data")
    out = tmp_path / "out"
    accuracies = {"mini-full": [0.80, 0.82], "tiny-full": [0.70, 0.74]}
    for row, accs in accuracies.items():
        for seed, acc in enumerate(accs):
            run = out / "sst2" / row / f"seed_{seed}"
            run.mkdir(parents=True)
            (run / "results.json").write_text(json.dumps(
                {"test_accuracy": acc, "test_f1_macro": acc, "train_seconds": 10.0 * (seed + 1),
                 "num_trainable_parameters": 1234}))
    assert cc.main(["--tasks", "sst2", "--seeds", "0", "1", "--data-dir", str(data), "--out", str(out),
                    "--table-only"]) == 0
    lines = (out / "table.md").read_text().splitlines()
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| our `tiny`, full fine-tuning",
                                                            "| our `mini`, full fine-tuning"]
    assert lines[3] == "| our `mini`, full fine-tuning | 1,234 | 81.0 ± 1.4 (n=2) | 15 |", lines[3]
    table = json.loads((out / "table.json").read_text())["table"]["sst2"]
    assert table["tiny-full"]["accuracy_mean"] == pytest.approx(72.0)


def test_the_table_keeps_the_rows_and_tasks_other_invocations_wrote(cc, tmp_path):
    """Two lanes (or the SST-2 and MR halves) share ``--out``: each invocation adds its rows to ``table.*``
    instead of rewriting the table from its own rows only; a row run again replaces the old one."""
    import argparse

    def summary(acc):
        return {"accuracy_mean": acc, "accuracy_std": 0.5, "n": 3, "f1_macro_mean": acc, "train_seconds_mean": 2.0,
                "num_trainable_parameters": 10}

    cc.write_table({"mr": {"textcnn": summary(73.0)}}, argparse.Namespace(out=str(tmp_path), tasks=["mr"]))
    cc.write_table({"sst2": {"bow": summary(80.0), "textcnn": summary(82.0)}},
                   argparse.Namespace(out=str(tmp_path), tasks=["sst2"]))
    cc.write_table({"sst2": {"textcnn": summary(83.0)}}, argparse.Namespace(out=str(tmp_path), tasks=["sst2"]))
    saved = json.loads((tmp_path / "table.json").read_text())
    assert list(saved["table"]) == ["sst2", "mr"] and set(saved["args_by_task"]) == {"sst2", "mr"}
    assert saved["table"]["sst2"]["bow"]["accuracy_mean"] == 80.0
    assert saved["table"]["sst2"]["textcnn"]["accuracy_mean"] == 83.0
    md = (tmp_path / "table.md").read_text()
    assert "SST-2 accuracy %" in md and "MR accuracy %" in md
    assert "83.0 ± 0.5 (n=3)" in md and "80.0 ± 0.5 (n=3)" in md and "73.0 ± 0.5 (n=3)" in md
