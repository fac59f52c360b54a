"""Classification data: readers on the real MR / SST-2 files, labels, cleaning, vocabulary, splits."""

from __future__ import annotations

from collections import Counter

import pytest

from minibert.classification_data import (ClassificationDataError, LabelMap, Vocabulary, clean_text_kim,
                                          dev_split, read_csv, read_examples, read_label_text_lines,
                                          read_tsv, stratified_kfold)


# ---------------------------------------------------------------------------
# real files


def test_mr_has_exactly_10662_examples_5331_per_class(data_dir):
    """MR (cp1252, with byte 0x85 inside lines): one example per b'\\n' line, none lost or added."""
    path = data_dir / "classification" / "MR" / "rt-polarity.all"
    texts, labels = read_label_text_lines(path)
    raw = path.read_bytes()
    assert len(texts) == raw.count(b"\n") == 10662, (len(texts), raw.count(b"\n"))
    assert Counter(labels) == {"0": 5331, "1": 5331}, Counter(labels)
    assert b"\x85" in raw and any("\u2026" in t for t in texts), "the 0x85 byte decodes to an ellipsis in a line"


def test_sst2_files_have_their_published_sizes(data_dir):
    """stsa.binary train/dev/test: 6,920 / 872 / 1,821; GLUE train.tsv: 67,349 phrases with labels."""
    sst = data_dir / "classification" / "SST-2"
    sizes = {split: len(read_examples(sst / f"stsa.binary.{split}")[0]) for split in ("train", "dev", "test")}
    assert sizes == {"train": 6920, "dev": 872, "test": 1821}, sizes
    texts, labels = read_tsv(data_dir / "classification" / "GLUE-SST-2" / "train.tsv")
    assert len(texts) == len(labels) == 67349 and set(labels) == {"0", "1"}, (len(texts), set(labels))


def test_glue_test_file_without_labels_is_refused_with_its_header(data_dir):
    """GLUE test.tsv has no label column: asking for labels names the file and the header."""
    path = data_dir / "classification" / "GLUE-SST-2" / "test.tsv"
    with pytest.raises(ClassificationDataError, match=r"test.tsv, line 1: the header .* no column 'label'"):
        read_examples(path)
    texts, labels = read_tsv(path, label_column=None)
    assert len(texts) == 1821 and labels is None


def test_mr_folds_partition_the_data_and_keep_the_class_ratio(data_dir):
    """10 stratified folds of MR: disjoint, cover all 10,662 examples, 533 or 534 per class each."""
    _, labels = read_label_text_lines(data_dir / "classification" / "MR" / "rt-polarity.all")
    folds = stratified_kfold(labels, 10, seed=0)
    tests = [set(test) for _, test in folds]
    assert sum(len(t) for t in tests) == len(set().union(*tests)) == 10662
    for train, test in folds:
        assert set(train).isdisjoint(test) and len(train) + len(test) == 10662
        counts = Counter(labels[i] for i in test)
        assert set(counts.values()) <= {533, 534}, counts


# ---------------------------------------------------------------------------
# formats and bad input


def test_label_text_lines_keep_every_line_and_accept_crlf(tmp_path):
    """Lines split on \\n only: \\x85 and \\u2028 inside a line stay in the text; \\r\\n is accepted."""
    path = tmp_path / "d.txt"
    path.write_bytes("pos fine\u2028still one line\r\nneg bad \x85 film\n".encode("utf-8"))
    texts, labels = read_label_text_lines(path)
    assert labels == ["pos", "neg"] and texts[0] == "fine\u2028still one line" and "\x85" in texts[1]


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"0 good\n\n1 bad\n", "line 2: expected '<label> <text>'"),
    (b"0 good\n1\n", "line 2: expected '<label> <text>'"),
    (b"0 good\n  bad\n", "line 2: expected '<label> <text>'"),
])
def test_bad_line_files_name_the_file_and_line(tmp_path, content, message):
    """Empty file, blank line, a label with no text, a line with no label: one sentence with file and line."""
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ClassificationDataError, match=message) as err:
        read_label_text_lines(path)
    assert "bad.txt" in str(err.value)


def test_unreadable_file_is_one_sentence(tmp_path):
    """A missing file: the message names it and says to check the path."""
    with pytest.raises(ClassificationDataError, match="cannot read the file"):
        read_examples(tmp_path / "missing.txt")


def test_tsv_and_csv_readers_with_headers(tmp_path):
    """TSV by header names (any column order); CSV with quoted commas; a row with no label is refused."""
    tsv = tmp_path / "d.tsv"
    tsv.write_text("label\tsentence\npos\tgood , fun\nneg\tdull\n", encoding="utf-8")
    assert read_tsv(tsv) == (["good , fun", "dull"], ["pos", "neg"])
    csv_path = tmp_path / "d.csv"
    csv_path.write_text('text,label\n"warm, funny",yes\nboring,no\n', encoding="utf-8")
    assert read_csv(csv_path) == (["warm, funny", "boring"], ["yes", "no"])
    csv_path.write_text("text,label\nwarm,\n", encoding="utf-8")
    with pytest.raises(ClassificationDataError, match=r"d.csv, line 2: the row has no label"):
        read_csv(csv_path)


# ---------------------------------------------------------------------------
# labels, cleaning, vocabulary, splits


def test_label_map_orders_numbers_numerically_and_round_trips(tmp_path):
    """'10' comes after '2'; names map to 0..K-1; save/load keeps the mapping; unknown labels are refused."""
    m = LabelMap.from_labels(["10", "2", "2", "-1"])
    assert m.names == ["-1", "2", "10"] and m.encode(["10", "-1"]) == [2, 0]
    words = LabelMap.from_labels(["pos", "neg", "neutral"])
    assert words.names == ["neg", "neutral", "pos"] and words.decode([2, 0]) == ["pos", "neg"]
    words.save(tmp_path / "labels.json")
    assert LabelMap.load(tmp_path / "labels.json").names == words.names
    with pytest.raises(ClassificationDataError, match="example 2: label 'maybe' is not one of"):
        words.encode(["pos", "maybe"])


def test_a_single_class_is_refused():
    """Classification needs two classes; the message says how many were found."""
    with pytest.raises(ClassificationDataError, match=r"train.txt has 1 class"):
        LabelMap.from_labels(["1", "1"], source="train.txt")


@pytest.mark.parametrize("raw, clean", [
    ("It's not a film, isn't it?", "it 's not a film , is n't it ?"),
    ("We've (sadly) seen it!!", "we 've ( sadly ) seen it ! !"),
    ("the   best -- film  ever : 10/10", "the best film ever 10 10"),
    ("they'd say you'll like it ... they're right", "they 'd say you 'll like it they 're right"),
    ("it 's already tokenised , lower-case", "it 's already tokenised , lower case"),
])
def test_kim_cleaning(raw, clean):
    """Kim's clean_str: only letters, digits and ( ) , ! ? ' ` survive; clitics split; lower-cased."""
    assert clean_text_kim(raw) == clean


def test_vocabulary_min_count_and_unknown_words():
    """Tokens below min_count map to <unk>; ids are by frequency, then alphabetical; <pad> = 0, <unk> = 1."""
    vocab = Vocabulary.build([["b", "a", "b"], ["c", "a", "b"]], min_count=2)
    assert vocab.itos == ["<pad>", "<unk>", "b", "a"]
    assert vocab.encode(["a", "c", "zzz"]) == [3, 1, 1]


def test_folds_partition_and_keep_class_ratios_on_unbalanced_labels():
    """5 folds of 100 'a' + 30 'b': test folds disjoint, cover everything, 20 a + 6 b each; seeded."""
    labels = ["a"] * 100 + ["b"] * 30
    folds = stratified_kfold(labels, 5, seed=3)
    assert sorted(i for _, test in folds for i in test) == list(range(130))
    for _, test in folds:
        assert Counter(labels[i] for i in test) == {"a": 20, "b": 6}
    assert stratified_kfold(labels, 5, seed=3) == folds and stratified_kfold(labels, 5, seed=4) != folds


def test_dev_split_takes_ten_percent_of_each_class():
    """No dev file: 10% of each class goes to dev, the rest stays in train, nothing shared."""
    labels = [0] * 90 + [1] * 50
    train, dev = dev_split(labels, 0.1, seed=0)
    assert Counter(labels[i] for i in dev) == {0: 9, 1: 5}
    assert set(train).isdisjoint(dev) and len(train) + len(dev) == 140


# ---------------------------------------------------------------------------
# the shared data options and splits


def _parse(argv):
    from minibert.classification_data import add_data_arguments
    from minibert.cli import ArgumentParser

    p = ArgumentParser(prog="t")
    add_data_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def _toy(path, n=40):
    path.write_text("".join(f"{i % 2} word{i % 5} text{i}\n" for i in range(n)), encoding="utf-8")
    return path


def test_cross_validation_splits_partition_the_data_and_are_the_same_for_every_command(tmp_path):
    """K folds: test folds partition train; each fold's dev is inside its training part; seeds are seed + f."""
    from minibert.classification_data import load_splits

    path = _toy(tmp_path / "d.txt")
    labels, splits = load_splits(_parse(["--train", str(path), "--cv", "4", "--seed", "3"]), log=lambda s: None)
    assert [s.number for s in splits] == [1, 2, 3, 4] and [s.seed for s in splits] == [4, 5, 6, 7]
    tests = sorted(t for s in splits for t in s.test_texts)
    assert tests == sorted(line.split(" ", 1)[1] for line in path.read_text().splitlines())
    for s in splits:
        assert not set(s.test_texts) & set(s.train_texts + s.dev_texts)
        assert len(s.train_texts) + len(s.dev_texts) + len(s.test_texts) == 40
    _, again = load_splits(_parse(["--train", str(path), "--cv", "4", "--seed", "3"]), log=lambda s: None)
    assert [s.test_texts for s in again] == [s.test_texts for s in splits]


def test_a_tsv_text_column_can_be_named(tmp_path):
    from minibert.classification_data import load_splits

    path = tmp_path / "d.tsv"
    path.write_text("review\tlabel\n" + "".join(f"text {i}\t{i % 2}\n" for i in range(20)), encoding="utf-8")
    with pytest.raises(ClassificationDataError, match="--text-column"):
        load_splits(_parse(["--train", str(path)]), log=lambda s: None)
    _, (split,) = load_splits(_parse(["--train", str(path), "--text-column", "review"]), log=lambda s: None)
    assert len(split.train_texts) + len(split.dev_texts) == 20


def test_data_option_combinations_get_one_sentence(tmp_path):
    from minibert.classification_data import load_splits

    path = _toy(tmp_path / "d.txt")
    for argv, words in ((["--cv", "1"], "--cv 1"), (["--cv", "3", "--dev", str(path)], "drop --dev"),
                        (["--folds", "2"], "needs --cv"), (["--cv", "3", "--folds", "4"], "--folds 4")):
        with pytest.raises(ClassificationDataError, match=words):
            load_splits(_parse(["--train", str(path), *argv]), log=lambda s: None)
    with pytest.raises(ClassificationDataError, match="is a folder"):
        load_splits(_parse(["--train", str(tmp_path)]), log=lambda s: None)


def test_cross_validation_trains_only_the_folds_without_results(tmp_path):
    from minibert.classification_data import fold_folder, load_splits, run_cross_validation

    _, splits = load_splits(_parse(["--train", str(_toy(tmp_path / "d.txt")), "--cv", "3"]), log=lambda s: None)
    trained = []

    def train(split, folder):
        trained.append(split.number)
        folder.mkdir(parents=True)
        result = {"test_accuracy": 0.5, "best_epoch": 1}
        (folder / "results.json").write_text(__import__("json").dumps(result))
        return result

    out = tmp_path / "cv"
    assert len(run_cross_validation(splits, out, train, only=[2], log=lambda s: None)) == 1
    assert trained == [2] and fold_folder(out, splits[1]).name == "fold_02"
    assert len(run_cross_validation(splits, out, train, log=lambda s: None)) == 3 and trained == [2, 1, 3]
