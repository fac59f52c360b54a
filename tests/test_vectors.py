"""Pretrained word vectors for TextCNN: binary word2vec files, and vectors made from a BERT's input embeddings."""

from __future__ import annotations

import json
import struct

import pytest
import torch

from helpers import max_abs_diff
from minibert.classification_data import Vocabulary
from textcnn import vectors as vectors_module
from textcnn.vectors import VectorsError, load_vectors, vectors_from_bert

WORDS = {"good": [0.5, -1.25, 3.0], "film": [1e-3, 2.0, -0.75], "café": [7.0, 8.0, 9.0],
         "other": [0.1, 0.2, 0.3], "bad": [-4.0, 0.0, 0.25]}


def _write_binary(path, words, newline=True, count=None, cut=0):
    """A word2vec binary file: '<count> <k>\\n', then per word its UTF-8 bytes, a space, k float32 (little-endian)."""
    dim = len(next(iter(words.values())))
    data = f"{len(words) if count is None else count} {dim}\n".encode()
    for word, vec in words.items():
        data += word.encode("utf-8") + b" " + struct.pack(f"<{dim}f", *vec) + (b"\n" if newline else b"")
    path.write_bytes(data[: len(data) - cut])
    return path


def _vocab():
    return Vocabulary.build([["good", "film", "café", "bad", "missing"]])


@pytest.mark.parametrize("newline", [True, False])
def test_binary_word2vec_gives_the_file_vectors_of_vocabulary_words(tmp_path, newline):
    """Every vocabulary word the file has gets exactly its float32 vector; words outside the vocabulary are skipped."""
    vocab = _vocab()
    loaded = load_vectors(_write_binary(tmp_path / "w2v.bin", WORDS, newline=newline), vocab)
    assert (loaded.found, loaded.total) == (4, 5), (loaded.found, loaded.total)
    for word in ("good", "film", "café", "bad"):
        want = torch.tensor(WORDS[word], dtype=torch.float32)
        assert torch.equal(loaded.weight[vocab.stoi[word]], want), word
    missing = loaded.weight[vocab.stoi["missing"]]
    assert 0 < missing.abs().max() <= 0.25
    assert loaded.weight[vocab.pad_id].abs().max() == 0


def test_binary_and_text_files_of_the_same_vectors_agree(tmp_path):
    """The same vectors written as text and as binary give the same matrix (text numbers round to float32)."""
    vocab = _vocab()
    text = tmp_path / "w2v.txt"
    text.write_text(f"{len(WORDS)} 3\n" + "".join(f"{w} {' '.join(map(repr, v))}\n" for w, v in WORDS.items()),
                    encoding="utf-8")
    a = load_vectors(text, vocab, seed=3)
    b = load_vectors(_write_binary(tmp_path / "w2v.bin", WORDS), vocab, seed=3)
    assert max_abs_diff(a.weight, b.weight) == 0.0


def test_binary_format_is_detected_without_the_bin_suffix(tmp_path):
    """A binary file named .txt is still read as binary; a text word2vec file with a header stays text."""
    vocab = _vocab()
    path = _write_binary(tmp_path / "vectors.txt", WORDS)
    assert vectors_module._looks_binary(path)
    assert torch.equal(load_vectors(path, vocab).weight[vocab.stoi["good"]], torch.tensor(WORDS["good"]))
    text = tmp_path / "w2v_text.vec"
    text.write_text("2 3\ngood 1 2 3\nfilm 4 5 6\n", encoding="utf-8")
    assert not vectors_module._looks_binary(text)


def test_binary_reader_streams_in_chunks(tmp_path, monkeypatch):
    """Reading in 7-byte chunks (words and vectors cut across chunk borders) gives the same vectors."""
    vocab = _vocab()
    path = _write_binary(tmp_path / "w2v.bin", WORDS)
    whole = load_vectors(path, vocab).weight
    original = vectors_module._Chunks.__init__
    monkeypatch.setattr(vectors_module._Chunks, "__init__", lambda self, handle, chunk=7: original(self, handle, 7))
    assert torch.equal(load_vectors(path, vocab).weight, whole)


@pytest.mark.parametrize("case,message", [
    ("cut", "truncated"), ("count", "truncated"), ("header", "first line should be"),
])
def test_malformed_or_truncated_binary_file_is_one_clear_sentence(tmp_path, case, message):
    """A file cut inside a vector, with fewer words than its header says, or without a header: one VectorsError."""
    path = tmp_path / "w2v.bin"
    if case == "cut":
        _write_binary(path, WORDS, cut=6)
    elif case == "count":
        _write_binary(path, WORDS, count=len(WORDS) + 2)
    else:
        path.write_bytes(b"good \x00\x00\x80?\n")
    with pytest.raises(VectorsError, match=message) as info:
        load_vectors(path, _vocab())
    text = str(info.value)
    assert str(path) in text and "\n" not in text, text


# --------------------------------------------------------------------------- vectors from a BERT

BERT_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "film", "un", "##watch", "##able",
               "bad", "n", "'", "t", "."]


def _tiny_bert_folder(folder, prefix_free=False):
    """A tiny random BERT saved as a transformers folder, with its vocab.txt tokenizer."""
    from minibert.hf import save_pretrained
    from minibert.model import BertConfig, BertModel
    from minibert.tokenization import WordPieceTokenizer

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(BERT_TOKENS), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=32)
    model = BertModel(config)
    save_pretrained(model, folder)
    WordPieceTokenizer(BERT_TOKENS).save(folder)
    return model.embeddings.word_embeddings.weight.detach().clone()


def test_bert_vectors_are_the_mean_of_the_sub_word_input_embeddings(tmp_path):
    """$x_w = \\frac{1}{|P(w)|}\\sum_{p \\in P(w)} E_p$: 'unwatchable' = mean(E[un], E[##watch], E[##able])."""
    E = _tiny_bert_folder(tmp_path / "bert")
    vocab = Vocabulary.build([["good", "unwatchable", "n't", "zebra"]])
    loaded = vectors_from_bert(tmp_path / "bert", vocab)
    ids = {t: i for i, t in enumerate(BERT_TOKENS)}
    cases = {"good": ["good"], "unwatchable": ["un", "##watch", "##able"], "n't": ["n", "'", "t"],
             "zebra": ["[UNK]"]}
    for word, pieces in cases.items():
        want = torch.stack([E[ids[p]] for p in pieces]).mean(0)
        diff = max_abs_diff(loaded.weight[vocab.stoi[word]], want)
        assert diff <= 1e-7, f"{word}: |vector - mean of {pieces}| = {diff:.2e}"
    assert torch.equal(loaded.weight[vocab.unk_id], E[ids["[UNK]"]])
    assert loaded.weight[vocab.pad_id].abs().max() == 0
    assert (loaded.found, loaded.total) == (3, 4), "a word made of [UNK] is not found"


def test_bert_vectors_from_a_run_folder_and_a_transformers_vocab_folder(tmp_path):
    """A run folder's export/ is used; a bare transformers folder (vocab.txt + tokenizer_config.json) works too."""
    E = _tiny_bert_folder(tmp_path / "run" / "export")
    vocab = Vocabulary.build([["good", "film"]])
    a = vectors_from_bert(tmp_path / "run", vocab)
    folder = tmp_path / "hf"
    _tiny_bert_folder(folder)
    (folder / "minibert_tokenizer.json").unlink()
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}), encoding="utf-8")
    b = vectors_from_bert(folder, vocab)
    assert torch.equal(a.weight, b.weight)
    assert torch.equal(a.weight[vocab.stoi["film"]], E[BERT_TOKENS.index("film")])


def test_bert_vectors_bad_folder_is_one_clear_sentence(tmp_path):
    """A folder without a BERT, or a BERT without a tokenizer, gets one VectorsError naming the folder."""
    with pytest.raises(VectorsError, match="neither a model folder"):
        vectors_from_bert(tmp_path, _vocab())
    _tiny_bert_folder(tmp_path / "b")
    for name in ("vocab.txt", "minibert_tokenizer.json"):
        (tmp_path / "b" / name).unlink()
    with pytest.raises(VectorsError, match="no tokenizer"):
        vectors_from_bert(tmp_path / "b", _vocab())
