"""SentencePiece: a unigram model trained on our text, BERT's specials at ids 0..4, the shared API.

The offline tests train on a small synthetic corpus (a few hundred lines from
a fixed word list); the real-data tests train the ``tiny`` preset's 8,000-piece
vocabulary on WikiText-2 valid and check it on WikiText-2 test.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest
import torch

from helpers import require_reference
from minibert.tokenization import SPECIAL_TOKENS, SentencePieceTokenizer, load_tokenizer

WORDS = ("the cat sat on mat dog ran quickly under table while birds sang loudly outside "
         "window morning evening people walked through quiet streets city river bridge").split()


def _corpus(n_lines: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) + " ." for _ in range(n_lines)]


@pytest.fixture(scope="module")
def sp() -> SentencePieceTokenizer:
    return SentencePieceTokenizer.train(_corpus(), vocab_size=40, seed=0)


def test_specials_have_fixed_ids_0_to_4(sp):
    """[PAD] [UNK] [CLS] [SEP] [MASK] are ids 0, 1, 2, 3, 4, whatever the text."""
    assert sp.convert_ids_to_tokens(range(5)) == list(SPECIAL_TOKENS)
    assert (sp.pad_id, sp.unk_id, sp.cls_id, sp.sep_id, sp.mask_id) == (0, 1, 2, 3, 4)
    assert sp.special_ids == {0, 1, 2, 3, 4}
    assert sp.vocab_size == 40, sp.vocab_size


def test_specials_are_never_produced_from_ordinary_text(sp):
    """Ordinary text maps to ids >= 5, except characters never seen in training, which become [UNK]."""
    ids = [i for line in _corpus(50, seed=1) for i in sp.text_to_ids(line)]
    assert min(ids) >= 5, min(ids)
    assert sp.text_to_ids("cat \u2603 sat").count(sp.unk_id) == 1  # the snowman was never seen


def test_training_is_deterministic_for_a_seed():
    """Two trainings with the same seed and text give byte-identical models."""
    a = SentencePieceTokenizer.train(_corpus(), vocab_size=40, seed=3)
    b = SentencePieceTokenizer.train(iter(_corpus()), vocab_size=40, seed=3)
    assert a.model_proto == b.model_proto


def test_sampling_lines_is_deterministic_for_a_seed_and_pickling_keeps_the_model():
    """With max_lines the sample depends on the seed only; a pickled tokenizer encodes the same."""
    import pickle

    lines = _corpus(600)
    a = SentencePieceTokenizer.train(lines, vocab_size=40, seed=5, max_lines=200)
    b = SentencePieceTokenizer.train(lines, vocab_size=40, seed=5, max_lines=200)
    assert a.model_proto == b.model_proto
    c = pickle.loads(pickle.dumps(a))
    assert c.model_proto == a.model_proto and c.encode("the cat sat") == a.encode("the cat sat")


def test_encode_pair_and_batch_follow_bert_layout(sp):
    """[CLS] A [SEP] B [SEP], segments 0/1, right padding with [PAD], mask 1 on real tokens."""
    a, b = "the cat sat", "on the mat ."
    e = sp.encode(a, b)
    n_a, n_b = len(sp.text_to_ids(a)), len(sp.text_to_ids(b))
    assert e["input_ids"] == [2] + sp.text_to_ids(a) + [3] + sp.text_to_ids(b) + [3]
    assert e["token_type_ids"] == [0] * (n_a + 2) + [1] * (n_b + 1)
    cut = sp.encode(a, b, max_length=6)
    assert len(cut["input_ids"]) == 6 and cut["input_ids"].count(3) == 2, cut
    batch = sp.encode_batch(["the cat", a + " " + b, "dog"])
    lengths = batch["attention_mask"].sum(1).tolist()
    assert batch["input_ids"].shape == (3, max(lengths)) and batch["input_ids"].dtype == torch.long
    for row, n in enumerate(lengths):
        assert batch["input_ids"][row, :n].tolist() == sp.encode(["the cat", a + " " + b, "dog"][row])["input_ids"]
        assert (batch["input_ids"][row, n:] == 0).all() and (batch["token_type_ids"][row, n:] == 0).all()


def test_decode_inverts_encode_and_word_starts_count_words(sp):
    """decode(encode(x)) == x for normalized text, and exactly one piece per word starts with ▁."""
    for line in _corpus(50, seed=2):
        ids = sp.encode(line)["input_ids"]
        assert sp.decode(ids) == line, (line, sp.convert_ids_to_tokens(ids))
        starts = sum(sp.is_word_start(i) for i in sp.text_to_ids(line))
        assert starts == len(line.split()), (line, sp.tokenize(line))


def test_specials_written_in_text_are_kept(sp):
    """A literal [MASK] or [SEP] in the text becomes that special id; tokenize agrees with the ids."""
    text = "the cat [MASK] on the mat [SEP] dog"
    ids = sp.text_to_ids(text)
    assert ids.count(sp.mask_id) == 1 and ids.count(sp.sep_id) == 1, sp.tokenize(text)
    assert sp.convert_tokens_to_ids(sp.tokenize(text)) == ids
    assert sp.decode(ids, skip_special_tokens=False) == "the cat [MASK] on the mat [SEP] dog"


def test_save_load_round_trip_by_folder(sp, tmp_path):
    """train(..., folder=) and save() write spm.model + json; load_tokenizer returns the same tokenizer."""
    sp.save(tmp_path / "tok")
    trained = SentencePieceTokenizer.train(_corpus(), vocab_size=40, seed=0, folder=tmp_path / "trained")
    for folder in (tmp_path / "tok", tmp_path / "trained"):
        loaded = load_tokenizer(folder)
        assert isinstance(loaded, SentencePieceTokenizer) and loaded.model_proto == sp.model_proto
        assert loaded.encode("the cat sat", "on the mat") == sp.encode("the cat sat", "on the mat")
    assert trained.model_proto == sp.model_proto


def test_bad_input_gives_one_clear_sentence(tmp_path):
    """Empty text, a cp1252 file, a missing file, a vocabulary the text cannot fill, a missing model."""
    with pytest.raises(ValueError, match="training text is empty"):
        SentencePieceTokenizer.train(["", "   "], vocab_size=40)
    cp1252 = tmp_path / "mr.txt"
    cp1252.write_bytes("a review \u2026 of a film\n".encode("cp1252"))
    with pytest.raises(ValueError, match=r"not UTF-8 \(byte 0x85 at offset 9\)"):
        SentencePieceTokenizer.train(cp1252, vocab_size=40)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SentencePieceTokenizer.train(tmp_path / "missing.txt", vocab_size=40)
    with pytest.raises(ValueError, match="smaller vocab_size"):
        SentencePieceTokenizer.train(_corpus(20), vocab_size=5000)
    with pytest.raises(FileNotFoundError, match="spm.model does not exist"):
        SentencePieceTokenizer.load(tmp_path)
    with pytest.raises(ValueError, match="not a SentencePiece model"):
        SentencePieceTokenizer(b"not a model")


def test_training_files_and_lines_give_the_same_model(tmp_path):
    """A UTF-8 file, a list of files, and the same lines as strings train the same model."""
    lines = _corpus(300)
    (tmp_path / "a.txt").write_text("\n".join(lines[:150]) + "\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("\n".join(lines[150:]) + "\n", encoding="utf-8")
    (tmp_path / "all.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    from_lines = SentencePieceTokenizer.train(lines, vocab_size=40)
    assert SentencePieceTokenizer.train(tmp_path / "all.txt", vocab_size=40).model_proto == from_lines.model_proto
    both = [str(tmp_path / "a.txt"), tmp_path / "b.txt"]
    assert SentencePieceTokenizer.train(both, vocab_size=40).model_proto == from_lines.model_proto


# ---------------------------------------------------------------------------
# Real data: the tiny preset's vocabulary on WikiText-2
# ---------------------------------------------------------------------------

@pytest.mark.slow
def test_wikitext_vocabulary_trains_fast_deterministically_and_round_trips(data_dir, tmp_path):
    """8,000 pieces on wiki.valid.raw: same bytes in another process, specials 0..4, WikiText-2 test decodes back exactly."""
    train_file = data_dir / "wikitext-2-raw" / "wiki.valid.raw"
    start = time.perf_counter()
    sp = SentencePieceTokenizer.train(train_file, vocab_size=8000, seed=0, folder=tmp_path / "tok")
    seconds = time.perf_counter() - start
    # train again in a fresh process: the bytes must not depend on the process
    code = ("import sys; from minibert.tokenization import SentencePieceTokenizer as S; "
            "sys.stdout.buffer.write(S.train(sys.argv[1], vocab_size=8000, seed=0).model_proto)")
    again = subprocess.run([sys.executable, "-c", code, str(train_file)], capture_output=True, check=True).stdout
    assert sp.model_proto == again, "training twice with one seed gave different models"
    assert sp.vocab_size == 8000 and sp.convert_ids_to_tokens(range(5)) == list(SPECIAL_TOKENS)

    test_lines = [line.strip() for line in
                  (data_dir / "wikitext-2-raw" / "wiki.test.raw").read_text(encoding="utf-8").split("\n")
                  if line.strip()]
    loaded = load_tokenizer(tmp_path / "tok")
    ids = [loaded.text_to_ids(line) for line in test_lines]
    exact = sum(loaded.decode(x) == line for x, line in zip(ids, test_lines))
    n_tokens = sum(map(len, ids))
    n_unk = sum(x.count(loaded.unk_id) for x in ids)
    n_words = sum(len(line.split()) for line in test_lines)
    message = (f"trained in {seconds:.1f} s; wiki.test: {len(test_lines)} lines, {exact} decode exactly, "
               f"{n_tokens} tokens for {n_words} words ({n_tokens / n_words:.3f} per word), {n_unk} [UNK]")
    print("\n" + message)
    assert exact / len(test_lines) >= 0.95, message
    assert n_unk / n_tokens <= 0.001, message
    assert seconds < 60, message


def test_saved_folder_loads_in_transformers_with_the_same_ids(data_dir, tmp_path):
    """save() also writes tokenizer.json: AutoTokenizer gives our ids on every SST-2 sentence and WikiText line."""
    from helpers import require_reference
    from minibert.classification_data import read_examples

    transformers = require_reference("transformers")
    wiki = (data_dir / "wikitext-2-raw" / "wiki.valid.raw").read_text(encoding="utf-8").split("\n")
    ours = SentencePieceTokenizer.train(wiki, 2000, folder=tmp_path / "tok")
    ref = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    sst, _ = read_examples(data_dir / "classification" / "SST-2" / "stsa.binary.test")
    for name, texts in (("SST-2 test", sst), ("wiki.valid.raw", wiki[:1500])):
        want = ref(texts)["input_ids"]
        differ = [i for i, t in enumerate(texts) if ours.encode(t)["input_ids"] != want[i]]
        assert len(differ) <= len(texts) // 1000, (f"{name}: {len(differ)} of {len(texts)} differ; first "
                                                  f"{texts[differ[0]][:80]!r}")
    pair = ours.encode("the [MASK] sat", "on [SEP] it")
    want = ref("the [MASK] sat", "on [SEP] it")
    assert pair["input_ids"] == want["input_ids"] and pair["token_type_ids"] == want["token_type_ids"]


# ---------------------------------------------------------------- Viterbi: the most probable segmentation
# Formula tests (they take ``lib``): ``pytest --exercises 05`` runs them on tutorials/exercises/ex05_wordpiece.py.


def _all_segmentations(text: str, vocab) -> list[list[str]]:
    if not text:
        return [[]]
    return [[text[:j]] + rest for j in range(1, len(text) + 1) if text[:j] in vocab
            for rest in _all_segmentations(text[j:], vocab)]


def test_viterbi_picks_the_most_probable_segmentation_of_a_hand_computed_case(lib):
    """'hugs' with p(hug) = 0.25, p(s) = 0.15, ...: the best of its six cuts is 'hug s', probability 0.0375."""
    import math

    p = {"h": 0.05, "u": 0.05, "g": 0.05, "s": 0.15, "hu": 0.1, "ug": 0.2, "hug": 0.25, "gs": 0.15}
    pieces, score = lib.viterbi_segment("hugs", {t: math.log(q) for t, q in p.items()})
    assert pieces == ["hug", "s"], pieces
    assert abs(score - math.log(0.0375)) < 1e-9, f"log-probability {score}, expected {math.log(0.0375)}"


def test_viterbi_equals_a_brute_force_search_over_all_segmentations(lib):
    """On random vocabularies and words, Viterbi's cut is a valid segmentation with the best score of all of them."""
    rng = random.Random(0)
    for trial in range(200):
        letters = "abc"
        vocab = set(letters) | {"".join(rng.choice(letters) for _ in range(rng.randint(2, 4))) for _ in range(8)}
        log_probs = {piece: -rng.uniform(0.1, 5.0) for piece in vocab}
        word = "".join(rng.choice(letters) for _ in range(rng.randint(1, 9)))
        scored = [(sum(log_probs[t] for t in cut), cut) for cut in _all_segmentations(word, vocab)]
        best_score = max(score for score, _ in scored)   # ties: the same pieces in another order score the same
        pieces, score = lib.viterbi_segment(word, log_probs)
        assert abs(score - best_score) < 1e-9, f"trial {trial}: {word!r} scored {score}, best is {best_score}"
        assert "".join(pieces) == word and all(t in vocab for t in pieces), f"trial {trial}: {pieces} for {word!r}"
        assert abs(sum(log_probs[t] for t in pieces) - score) < 1e-9, f"trial {trial}: {pieces} do not score {score}"


def test_viterbi_with_the_model_scores_cuts_words_exactly_as_sentencepiece(lib, sp):
    """With the trained model's piece log-probabilities, Viterbi gives SentencePiece's own pieces for every word."""
    model = sp.sp
    log_probs = {model.id_to_piece(i): model.get_score(i) for i in range(model.get_piece_size())
                 if not (model.is_control(i) or model.is_unknown(i) or model.is_unused(i))}
    texts = list(WORDS) + [" ".join(WORDS[i:i + 5]) for i in range(0, len(WORDS), 5)]
    for text in texts:
        pieces, _ = lib.viterbi_segment("\u2581" + text.replace(" ", "\u2581"), log_probs)
        assert pieces == sp.tokenize(text), f"{text!r}: {pieces} vs SentencePiece {sp.tokenize(text)}"


def test_viterbi_refuses_text_no_piece_can_spell_and_cuts_the_empty_string_into_nothing(lib):
    """A character in no piece is a ValueError naming the text; '' has the empty segmentation."""
    with pytest.raises(ValueError, match="'abz'"):
        lib.viterbi_segment("abz", {"a": -1.0, "b": -1.0, "ab": -0.5})
    assert lib.viterbi_segment("", {"a": -1.0}) == ([], 0.0)


# ---------------------------------------------------------------------------
# SentencePiece as a transformers tokenizer (tokenizer.json)
# ---------------------------------------------------------------------------

def test_normalizer_spec_is_read_from_the_model_file(sp):
    """Our protobuf reader finds nmt_nfkc, its compiled character map and the white-space rules."""
    from minibert.tokenization import sentencepiece_normalizer_spec

    spec = sentencepiece_normalizer_spec(sp.model_proto)
    assert spec["name"] == "nmt_nfkc", spec["name"]
    assert len(spec["precompiled_charsmap"]) > 1000, len(spec["precompiled_charsmap"])
    assert spec["add_dummy_prefix"] and spec["remove_extra_whitespaces"] and spec["escape_whitespaces"]


def test_tokenizer_json_encodes_single_texts_pairs_and_literal_specials_like_minibert(sp, tmp_path):
    """tokenizers' Tokenizer from our tokenizer.json: same ids and token types as sp.encode, [MASK] kept whole."""
    tokenizers = require_reference("tokenizers")
    from minibert.tokenization import save_for_transformers

    save_for_transformers(sp, tmp_path, model_max_length=64)
    theirs = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    texts = ["the cat sat on the mat .", "  the   dog ran  quickly ", "the [MASK] sat on mat .",
             "birds sang loudly outside, the window!", "zebra ü é 42"]
    for text in texts:
        assert theirs.encode(text).ids == sp.encode(text)["input_ids"], text
    mine = sp.encode(texts[0], pair=texts[2])
    encoding = theirs.encode(texts[0], texts[2])
    assert (encoding.ids, encoding.type_ids) == (mine["input_ids"], mine["token_type_ids"])
    assert sp.mask_id in encoding.ids and encoding.ids.count(sp.mask_id) == 1


@pytest.fixture(scope="module")
def wikitext_tokenizer(data_dir, tmp_path_factory):
    """The tiny preset's 8,000 pieces, trained as `minibert pretrain` does: on the detokenised sentences."""
    from minibert.pretrain import read_documents

    docs = read_documents(data_dir / "wikitext-2-raw" / "wiki.valid.raw", "train")
    return SentencePieceTokenizer.train([s for d in docs for s in d], vocab_size=8000, seed=0,
                                        folder=tmp_path_factory.mktemp("wikitext_sp"))


def _wikitext_lines(data_dir) -> list[str]:
    return [line for name in ("wiki.valid.raw", "wiki.test.raw")
            for line in (data_dir / "wikitext-2-raw" / name).read_text(encoding="utf-8").split("\n")]


@pytest.mark.slow
def test_autotokenizer_on_the_export_gives_minibert_ids_on_every_wikitext_line(data_dir, wikitext_tokenizer, tmp_path):
    """transformers.AutoTokenizer(folder) == our encode on all 8,120 lines of WikiText-2 valid + test, and on pairs."""
    transformers = require_reference("transformers")
    from minibert.tokenization import save_for_transformers

    ours = wikitext_tokenizer
    save_for_transformers(ours, tmp_path, model_max_length=128)
    theirs = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    lines = _wikitext_lines(data_dir)
    got = theirs(lines)
    wrong = [i for i, line in enumerate(lines)
             if got["input_ids"][i] != ours.encode(line)["input_ids"]]
    assert not wrong, (f"{len(wrong)} of {len(lines)} lines differ, first {lines[wrong[0]][:80]!r}: "
                       f"ours {ours.encode(lines[wrong[0]])['input_ids'][:12]}, "
                       f"theirs {got['input_ids'][wrong[0]][:12]}")
    a, b = lines[1:-1:7], lines[2::7]
    pairs = theirs(a, b[:len(a)])
    for i, (x, y) in enumerate(zip(a, b)):
        mine = ours.encode(x, pair=y)
        assert pairs["input_ids"][i] == mine["input_ids"] and pairs["token_type_ids"][i] == mine["token_type_ids"]
    assert theirs.mask_token_id == ours.mask_id and theirs.pad_token_id == ours.pad_id
    assert theirs.convert_ids_to_tokens(range(5)) == list(SPECIAL_TOKENS)


@pytest.mark.slow
def test_every_normalizer_step_of_tokenizer_json_is_needed_on_wikitext(data_dir, wikitext_tokenizer):
    """Drop Precompiled (nmt_nfkc), Strip or Replace(" {2,}") from tokenizer.json: some WikiText line changes."""
    tokenizers = require_reference("tokenizers")
    import json

    from minibert.tokenization import sentencepiece_to_tokenizer_json

    ours = wikitext_tokenizer
    full = sentencepiece_to_tokenizer_json(ours)
    lines = _wikitext_lines(data_dir)
    expected = [ours.text_to_ids(line) for line in lines]

    def differing(spec: dict) -> int:
        encoded = tokenizers.Tokenizer.from_str(json.dumps(spec)).encode_batch(lines, add_special_tokens=False)
        return sum(e.ids != x for e, x in zip(encoded, expected))

    assert differing(full) == 0
    counts = {}
    for i, step in enumerate(full["normalizer"]["normalizers"]):
        reduced = json.loads(json.dumps(full))
        del reduced["normalizer"]["normalizers"][i]
        counts[step["type"]] = differing(reduced)
    print(f"\nlines (of {len(lines)}) that change without each normalizer step: {counts}")
    assert all(n > 0 for n in counts.values()), counts
