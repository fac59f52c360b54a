"""Pretrained word vectors from word2vec / GloVe text files."""

from __future__ import annotations

import pytest


def test_vector_file_reader_handles_header_coverage_and_unknown_words(tmp_path):
    """word2vec header or not, vectors are matched by word; missing words are U[-0.25, 0.25]."""
    from minibert.classification_data import Vocabulary
    from textcnn.vectors import load_vectors

    vocab = Vocabulary.build([["good", "bad", "film", "zzz"]])
    lines = ["good 1 2 3", "film 0.5 -0.5 0", "other 9 9 9"]
    for name, text in (("glove.txt", "\n".join(lines)), ("w2v.txt", "3 3\n" + "\n".join(lines))):
        path = tmp_path / name
        path.write_text(text + "\n", encoding="utf-8")
        loaded = load_vectors(path, vocab)
        assert (loaded.found, loaded.total) == (2, 4), (loaded.found, loaded.total)
        assert loaded.coverage == 0.5
        assert loaded.weight[vocab.stoi["good"]].tolist() == [1.0, 2.0, 3.0]
        missing = loaded.weight[vocab.stoi["bad"]]
        assert missing.abs().max() <= 0.25 and missing.abs().max() > 0
        assert loaded.weight[0].abs().max() == 0, "<pad> is zero"


def test_vector_file_errors_name_file_and_line(tmp_path):
    """A ragged vector file or a missing file gives one sentence naming the file (and line)."""
    from minibert.classification_data import Vocabulary
    from textcnn.vectors import VectorsError, load_vectors

    vocab = Vocabulary.build([["a"]])
    bad = tmp_path / "bad.txt"
    bad.write_text("a 1 2\nb 1\n", encoding="utf-8")
    with pytest.raises(VectorsError, match=r"bad.txt, line 2"):
        load_vectors(bad, vocab)
    with pytest.raises(VectorsError, match="cannot open"):
        load_vectors(tmp_path / "none.txt", vocab)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_vector_holding_nan_or_inf_is_refused_with_its_line(tmp_path, value):
    """A non-finite vector would train a NaN model silently; the file and the line are named instead."""
    from minibert.classification_data import Vocabulary
    from textcnn.vectors import VectorsError, load_vectors

    path = tmp_path / "vec.txt"
    path.write_text(f"a 1 2\nb 1 {value}\n", encoding="utf-8")
    with pytest.raises(VectorsError, match=r"vec.txt, line 2: .*nan or inf"):
        load_vectors(path, Vocabulary.build([["a", "b"]]))
