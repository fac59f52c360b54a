"""WordPiece: greedy longest-match-first, BERT's basic tokenizer, and equality with transformers.

The reference is ``transformers.BertTokenizer`` (in transformers v5 this is the
fast class backed by the ``tokenizers`` library; v4 called it
``BertTokenizerFast``), loaded from the very same ``vocab.txt``. The
vocabularies are built by the tests from WikiText-2 valid with
``build_wordpiece_vocab`` (4,000 entries), so that both ``[UNK]`` and words
cut into several pieces occur.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from helpers import require_reference
from minibert.tokenization import (SPECIAL_TOKENS, WordPieceTokenizer, basic_tokenize, build_wordpiece_vocab,
                                   load_tokenizer)

VOCAB_SIZE = 4000
CASINGS = [pytest.param(True, id="uncased"), pytest.param(False, id="cased")]


# ---------------------------------------------------------------------------
# Formula tests (also run against tutorials/exercises/ex05_wordpiece.py)
# ---------------------------------------------------------------------------

def test_wordpiece_takes_the_longest_piece_first(lib):
    """Each step takes the longest vocabulary piece; continuation pieces carry ##."""
    vocab = {"un", "##aff", "##able", "##a", "##ff", "##f", "u", "##n"}
    got = lib.wordpiece_tokenize("unaffable", vocab)
    assert got == ["un", "##aff", "##able"], got


def test_wordpiece_does_not_backtrack(lib):
    """Greedy: after taking "abc" nothing matches "d", so the word is [UNK] although "a ##bcd" exists."""
    vocab = {"abc", "a", "##bcd"}
    got = lib.wordpiece_tokenize("abcd", vocab)
    assert got == ["[UNK]"], got
    got = lib.wordpiece_tokenize("abcd", {"a", "##bcd"})
    assert got == ["a", "##bcd"], got


def test_wordpiece_unmatchable_or_over_long_word_is_unk(lib):
    """A word with a character outside the vocabulary, or longer than the limit, becomes one unk token."""
    vocab = {"a", "##a", "b", "##b"}
    assert lib.wordpiece_tokenize("abz", vocab, "[UNK]") == ["[UNK]"]
    assert lib.wordpiece_tokenize("ab" * 50, vocab) == ["a"] + ["##b", "##a"] * 49 + ["##b"]  # 100 chars: fine
    assert lib.wordpiece_tokenize("ab" * 50 + "a", vocab) == ["[UNK]"]  # 101 chars
    assert lib.wordpiece_tokenize("abab", vocab, "<unk>", 3) == ["<unk>"]
    assert lib.wordpiece_tokenize("", vocab) == []


def test_wordpiece_pieces_spell_the_word(lib):
    """Gluing the pieces back (dropping ##) gives the word, whenever it is not [UNK]."""
    vocab = {"t", "th", "the", "##e", "##r", "##re", "##h", "##t", "##he", "##ere", "##s", "o", "##o", "##th"}
    for word in ["the", "there", "tooth", "others", "thet", "ttt"]:
        pieces = lib.wordpiece_tokenize(word, vocab)
        assert pieces != ["[UNK]"], (word, pieces)
        assert pieces[0] in vocab and not pieces[0].startswith("##"), pieces
        assert all(p.startswith("##") and p in vocab for p in pieces[1:]), pieces
        assert "".join(p.removeprefix("##") for p in pieces) == word, (word, pieces)


# ---------------------------------------------------------------------------
# The basic tokenizer, by hand
# ---------------------------------------------------------------------------

def test_basic_tokenizer_splits_punctuation_and_chinese_and_cleans_text():
    """Punctuation and CJK ideographs become single tokens; control characters vanish; odd spaces split."""
    assert basic_tokenize("Don't stop!", do_lower_case=False) == ["Don", "'", "t", "stop", "!"]
    assert basic_tokenize("北京欢迎你 ok") == ["北", "京", "欢", "迎", "你", "ok"]
    assert basic_tokenize("a\x00b\x07c\ufffdd") == ["abcd"]
    assert basic_tokenize("a\u00a0b\u2028c\td\ne\u3000f") == ["a", "b", "c", "d", "e", "f"]
    assert basic_tokenize("zero\u200bwidth") == ["zerowidth"]  # U+200B is a format character (Cf): dropped
    assert basic_tokenize("$5+3^2") == ["$", "5", "+", "3", "^", "2"]  # ASCII symbols count as punctuation
    assert basic_tokenize("") == [] and basic_tokenize(" \n\t ") == []


def test_uncased_strips_accents_and_lowercases_cased_keeps_them():
    """Uncased: NFD, drop combining marks, lower-case (char by char: final Σ -> σ). Cased: unchanged."""
    assert basic_tokenize("Café Ÿ Ångström ΟΔΟΣ") == ["cafe", "y", "angstrom", "οδοσ"]
    assert basic_tokenize("Café ΟΔΟΣ", do_lower_case=False) == ["Café", "ΟΔΟΣ"]


# ---------------------------------------------------------------------------
# Equality with transformers' BertTokenizer
# ---------------------------------------------------------------------------

def _reference(folder: Path, do_lower_case: bool):
    transformers = require_reference("transformers")
    return transformers.BertTokenizer.from_pretrained(str(folder), do_lower_case=do_lower_case)


@pytest.fixture(scope="session")
def real_texts(data_dir) -> dict:
    """Every line of WikiText-2 valid, every MR sentence (cp1252) and every SST-2 sentence."""
    wiki = (data_dir / "wikitext-2-raw" / "wiki.valid.raw").read_text(encoding="utf-8").split("\n")[:-1]  # LF-ended
    mr_raw = (data_dir / "classification" / "MR" / "rt-polarity.all").read_bytes().decode("cp1252")
    mr = [line.split(" ", 1)[1] for line in mr_raw.split("\n") if line.strip()]
    sst = []
    for split in ("train", "dev", "test"):
        lines = (data_dir / "classification" / "SST-2" / f"stsa.binary.{split}").read_text(encoding="utf-8")
        sst += [line.split(" ", 1)[1] for line in lines.split("\n") if line.strip()]
    return {"wiki.valid.raw": wiki, "MR": mr, "SST-2": sst}


@pytest.fixture(scope="session")
def vocab_folders(real_texts, tmp_path_factory) -> dict:
    """A 4,000-entry vocab.txt per casing, built once from WikiText-2 valid."""
    folders = {}
    for do_lower_case in (True, False):
        folder = tmp_path_factory.mktemp("uncased" if do_lower_case else "cased")
        tokens = build_wordpiece_vocab(real_texts["wiki.valid.raw"], VOCAB_SIZE, do_lower_case=do_lower_case)
        (folder / "vocab.txt").write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
        folders[do_lower_case] = folder
    return folders


@pytest.mark.slow
@pytest.mark.parametrize("do_lower_case", CASINGS)
def test_ids_identical_to_transformers_on_every_real_text(do_lower_case, real_texts, vocab_folders):
    """Every WikiText-2 valid line and every MR/SST-2 sentence gets exactly transformers' ids."""
    folder = vocab_folders[do_lower_case]
    ours = WordPieceTokenizer.from_vocab_file(folder / "vocab.txt", do_lower_case=do_lower_case)
    ref = _reference(folder, do_lower_case)
    report = []
    for name, texts in real_texts.items():
        start = time.perf_counter()
        got = [ours.text_to_ids(t) for t in texts]
        seconds = time.perf_counter() - start
        want = ref(texts, add_special_tokens=False)["input_ids"]
        differ = [i for i in range(len(texts)) if got[i] != want[i]]
        first = f"; first: {texts[differ[0]][:120]!r}" if differ else ""
        assert not differ, f"{name}: {len(differ)} of {len(texts)} texts differ from transformers{first}"
        n_tokens = sum(map(len, got))
        n_unk = sum(ids.count(ours.unk_id) for ids in got)
        n_pieces = sum(1 for ids in got for i in ids if not ours.is_word_start(i))
        report.append(f"{name}: {len(texts)} texts identical, {n_tokens} tokens, {n_unk} [UNK], "
                      f"{n_pieces} ## pieces, ours {seconds:.2f} s")
        # the comparison must exercise unknown words and multi-piece words
        assert n_unk > 0 and n_pieces > 0, report[-1]
    print("\n" + "\n".join(report))


@pytest.mark.parametrize("do_lower_case", CASINGS)
def test_pairs_truncation_and_padding_identical_to_transformers(do_lower_case, real_texts, vocab_folders):
    """encode(a, b, max_length) and encode_batch give transformers' input_ids, token_type_ids and mask."""
    folder = vocab_folders[do_lower_case]
    ours = WordPieceTokenizer.from_vocab_file(folder / "vocab.txt", do_lower_case=do_lower_case)
    ref = _reference(folder, do_lower_case)
    wiki = [t for t in real_texts["wiki.valid.raw"] if t.strip()][:100]
    sst = real_texts["SST-2"][:100]
    ties = ["the cat sat on the mat", "the cat sat on the mat", "", "the", "one two three", "four five six"]
    cases = [(wiki, None), (wiki, 24), (wiki, 128), (sst, 7), (sst, 16), (ties, 5), (ties, 6)]
    # (very short max_length on long paragraphs is slow in transformers: it builds every overflow window)
    for lines, max_length in cases:
        firsts, seconds = lines[0::2], lines[1::2]
        kwargs = {} if max_length is None else {"truncation": True, "max_length": max_length}
        want = ref(firsts, seconds, **kwargs)
        want_single = ref(firsts, **kwargs)
        for i, (a, b) in enumerate(zip(firsts, seconds)):
            got = ours.encode(a, b, max_length=max_length)
            assert got["input_ids"] == want["input_ids"][i], (max_length, a[:60], b[:60])
            assert got["token_type_ids"] == want["token_type_ids"][i], (max_length, a[:60])
            got_single = ours.encode(a, max_length=max_length)
            assert got_single["input_ids"] == want_single["input_ids"][i], (max_length, a[:60])
        batch = ours.encode_batch(firsts[:16], seconds[:16], max_length=max_length)
        want = ref(firsts[:16], seconds[:16], padding=True, return_tensors="pt", **kwargs)
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            assert batch[key].dtype == torch.long and torch.equal(batch[key], want[key]), (max_length, key)


HAND_CASES = [
    "", " ", "\n\t", "Hello, World!", "Café au lait, Ångström, naïve façade, Über, İstanbul",
    "ΟΔΟΣ Σ σς ΣΑΣ", "北京欢迎你，我爱自然语言处理。", "日本語のテキスト と 한국어 텍스트",
    "I ❤️ emoji 😀😀 👍🏽 and 🇫🇷", "control\x00chars\x07and\x1bescape\ufffd\u200b\u200d\x7f",
    "non\u00a0breaking\u2028line\u2029para\u3000ideographic\x0bvt\x0cff\x85nel",
    "x" * 100, "y" * 101, "supercalifragilisticexpialidocious" * 3, "don't stop -- it's $3.50 (or ~4)!",
    "the [MASK] sat on [SEP] the[CLS]mat [mask] [PAD][UNK]", "ﬁne ﬂour ① ²", "e\u0301 a\u0300 combining",
    "Ǆ ǅ ǆ ẞ ß ﬀ", "\u0130 \u0131 I i", "tab\tseparated\r\nwindows", "@-@ @,@ @.@ = = Heading = =",
]


@pytest.mark.parametrize("do_lower_case", CASINGS)
def test_hand_cases_identical_to_transformers(do_lower_case, tmp_path):
    """Accents, Chinese, emoji, control characters, odd spaces, very long words, specials in text, empty."""
    # characters of the hand cases seen twice are in the vocabulary; the rest must become [UNK]
    corpus = HAND_CASES * 2 + ["the cat sat on the mat", "hello world breaking"]
    tokens = build_wordpiece_vocab(corpus, 400, do_lower_case=do_lower_case, min_char_count=3)
    (tmp_path / "vocab.txt").write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    ours = WordPieceTokenizer.from_vocab_file(tmp_path / "vocab.txt", do_lower_case=do_lower_case)
    ref = _reference(tmp_path, do_lower_case)
    extra = ["you'" + "z" * 98, "[MASK]" * 3, "nonvocabulary☃"]
    for text in HAND_CASES + extra:
        want = ref(text)["input_ids"]
        got = ours.encode(text)["input_ids"]
        assert got == want, (f"{text!r}: ours {ours.convert_ids_to_tokens(got)} "
                             f"vs transformers {ref.convert_ids_to_tokens(want)}")


# ---------------------------------------------------------------------------
# API properties
# ---------------------------------------------------------------------------

@pytest.fixture
def small(tmp_path) -> WordPieceTokenizer:
    tokens = list(SPECIAL_TOKENS) + ["the", "cat", "sat", "on", "mat", "un", "##aff", "##able", "a", ",", "."]
    (tmp_path / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return WordPieceTokenizer.from_vocab_file(tmp_path / "vocab.txt")


def test_encode_adds_cls_sep_and_segment_ids(small):
    """[CLS] A [SEP] B [SEP]: token type 0 up to the first [SEP], 1 after it."""
    e = small.encode("The cat", "sat on a mat.")
    assert small.convert_ids_to_tokens(e["input_ids"]) == \
        ["[CLS]", "the", "cat", "[SEP]", "sat", "on", "a", "mat", ".", "[SEP]"]
    assert e["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    assert small.encode("")["input_ids"] == [small.cls_id, small.sep_id]


def test_batch_pads_on_the_right_and_masks_padding(small):
    """Shorter rows are padded with [PAD] on the right; attention_mask is 1 exactly on real tokens."""
    batch = small.encode_batch(["the cat", "the cat sat on the mat", "unaffable"])
    lengths = [4, 8, 5]
    assert batch["input_ids"].shape == (3, 8)
    assert batch["attention_mask"].sum(1).tolist() == lengths
    for row, n in enumerate(lengths):
        assert (batch["input_ids"][row, n:] == small.pad_id).all()
        assert (batch["attention_mask"][row, :n] == 1).all()


def test_decode_glues_pieces_and_skips_specials(small):
    """decode(encode(x)) gives the basic-tokenized text; specials only when asked."""
    ids = small.encode("Unaffable cat, the mat")["input_ids"]
    assert small.decode(ids) == "unaffable cat , the mat"
    assert small.decode(torch.tensor(ids), skip_special_tokens=False) == "[CLS] unaffable cat , the mat [SEP]"
    assert [small.is_word_start(i) for i in ids] == [True, True, False, False, True, True, True, True, True]


def test_save_load_round_trip(small, tmp_path):
    """A saved folder (vocab.txt + json) loads back, by class or by load_tokenizer, with the same behaviour."""
    folder = small.save(tmp_path / "saved")
    for loaded in (WordPieceTokenizer.load(folder), load_tokenizer(folder)):
        assert isinstance(loaded, WordPieceTokenizer)
        assert loaded.tokens == small.tokens and loaded.do_lower_case == small.do_lower_case
        assert loaded.encode("The cat sat") == small.encode("The cat sat")
    assert (small.pad_id, small.unk_id, small.cls_id, small.sep_id, small.mask_id) == (0, 1, 2, 3, 4)
    assert small.special_ids == {0, 1, 2, 3, 4} and small.vocab_size == len(small) == 16


@pytest.mark.parametrize("missing", SPECIAL_TOKENS)
def test_vocab_without_a_special_token_is_a_clear_error(missing, tmp_path):
    """A vocabulary lacking [PAD], [UNK], [CLS], [SEP] or [MASK] is refused, naming the token."""
    tokens = [t for t in SPECIAL_TOKENS if t != missing] + ["the"]
    (tmp_path / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lacks the special token\(s\) " + missing.replace("[", r"\[")):
        WordPieceTokenizer.from_vocab_file(tmp_path / "vocab.txt")


def test_bad_input_gives_one_clear_sentence(small, tmp_path):
    """Missing file, duplicate token, impossible max_length, id out of range, empty batch."""
    with pytest.raises(FileNotFoundError, match="does not exist"):
        WordPieceTokenizer.from_vocab_file(tmp_path / "nope.txt")
    (tmp_path / "dup.txt").write_text("\n".join(SPECIAL_TOKENS + ("a", "a")), encoding="utf-8")
    with pytest.raises(ValueError, match="twice"):
        WordPieceTokenizer.from_vocab_file(tmp_path / "dup.txt")
    with pytest.raises(ValueError, match="no room"):
        small.encode("the", "cat", max_length=2)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        small.decode([99])
    with pytest.raises(ValueError, match="empty list"):
        small.encode_batch([])
    (tmp_path / "saved").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no tokenizer"):
        load_tokenizer(tmp_path / "saved")  # an empty folder


# ---------------------------------------------------------------------------
# Folders that ship only a tokenizer.json (the `tokenizers` library's format)
# ---------------------------------------------------------------------------

#: (lowercase, strip_accents, handle_chinese_chars) of transformers' BertNormalizer
NORMALIZERS = [pytest.param((True, None, True), id="uncased"), pytest.param((False, None, True), id="cased"),
               pytest.param((True, False, False), id="lower-keep-accents-glue-cjk"),
               pytest.param((False, True, True), id="cased-strip-accents")]


def _tokenizer_json_folder(folder: Path, tokens: list[str], settings) -> Path:
    """Write ``folder/tokenizer.json`` (and nothing else) with the `tokenizers` library, as transformers does."""
    tokenizers = require_reference("tokenizers")
    lowercase, strip_accents, chinese = settings
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = tokenizers.Tokenizer(tokenizers.models.WordPiece(vocab=vocab, unk_token="[UNK]",
                                                           max_input_chars_per_word=100))
    tok.normalizer = tokenizers.normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=chinese,
                                                           strip_accents=strip_accents, lowercase=lowercase)
    tok.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    tok.post_processor = tokenizers.processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    return folder


def _fast_reference(folder: Path):
    transformers = require_reference("transformers")
    return transformers.PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), unk_token="[UNK]",
                                                pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
                                                mask_token="[MASK]")


@pytest.mark.slow
@pytest.mark.parametrize("settings", [NORMALIZERS[0], NORMALIZERS[2]])
def test_tokenizer_json_only_folder_gives_transformers_ids_on_real_sentences(settings, real_texts, vocab_folders,
                                                                            tmp_path):
    """A folder with only tokenizer.json: our ids equal transformers' on every MR and SST-2 sentence."""
    tokens = (vocab_folders[settings[0]] / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    folder = _tokenizer_json_folder(tmp_path / "tj", tokens, settings)
    assert [p.name for p in folder.iterdir()] == ["tokenizer.json"]
    ours = load_tokenizer(folder)
    assert (ours.do_lower_case, ours.strip_accents, ours.tokenize_chinese_chars) == settings
    ref = _fast_reference(folder)
    for name in ("MR", "SST-2"):
        texts = real_texts[name]
        want = ref(texts)["input_ids"]
        differ = [i for i, t in enumerate(texts) if ours.encode(t)["input_ids"] != want[i]]
        assert not differ, f"{name}: {len(differ)} of {len(texts)} differ; first {texts[differ[0]][:100]!r}"


@pytest.mark.parametrize("settings", NORMALIZERS)
def test_tokenizer_json_hand_cases_identical_to_transformers(settings, tmp_path):
    """Accents, Chinese, odd spaces, long words and literal specials under each normaliser setting."""
    corpus = HAND_CASES * 2 + ["the cat sat on the mat", "hello world breaking"]
    tokens = build_wordpiece_vocab(corpus, 400, do_lower_case=settings[0], min_char_count=3)
    folder = _tokenizer_json_folder(tmp_path, tokens, settings)
    ours, ref = load_tokenizer(folder), _fast_reference(folder)
    for text in HAND_CASES:
        want, got = ref(text)["input_ids"], ours.encode(text)["input_ids"]
        assert got == want, (f"{text!r}: ours {ours.convert_ids_to_tokens(got)} "
                             f"vs transformers {ref.convert_ids_to_tokens(want)}")


def test_tokenizer_json_that_is_not_bert_wordpiece_is_a_clear_error(tmp_path):
    """A BPE model, another normaliser or pre-tokenizer: one ValueError naming what is not supported."""
    tokens = list(SPECIAL_TOKENS) + ["a", "b"]
    _tokenizer_json_folder(tmp_path, tokens, (True, None, True))
    spec = json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8"))
    for change, message in ((("model", "type"), "BPE"), (("normalizer", "type"), "NFC"),
                            (("pre_tokenizer", "type"), "Whitespace")):
        broken = json.loads(json.dumps(spec))
        broken[change[0]][change[1]] = message
        (tmp_path / "tokenizer.json").write_text(json.dumps(broken), encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            load_tokenizer(tmp_path)


def test_saved_wordpiece_keeps_normaliser_settings_and_loads_in_transformers(tmp_path):
    """save() writes minibert and transformers settings: both reload strip_accents / CJK handling."""
    transformers = require_reference("transformers")
    tokens = build_wordpiece_vocab(HAND_CASES * 2, 400, do_lower_case=True, min_char_count=3)
    ours = WordPieceTokenizer(tokens, do_lower_case=True, strip_accents=False, tokenize_chinese_chars=False)
    ours.save(tmp_path)
    again = load_tokenizer(tmp_path)
    assert (again.strip_accents, again.tokenize_chinese_chars) == (False, False)
    ref = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    for text in HAND_CASES:
        assert again.encode(text)["input_ids"] == ref(text)["input_ids"], text
