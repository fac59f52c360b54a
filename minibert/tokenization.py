"""Tokenizers: BERT's WordPiece and a SentencePiece model, behind one API.

A tokenizer turns text into the integer ids a model reads, and back.

``WordPieceTokenizer`` reads a BERT ``vocab.txt`` (one token per line, the
line number is the id) and reproduces ``transformers``' ``BertTokenizer`` id
for id (``tests/test_wordpiece.py`` checks it on real text):

1. *basic tokenizer*: drop control characters, turn every kind of white
   space into a plain space, put spaces around CJK ideographs; when uncased,
   strip accents (NFD, then drop the combining marks) and lower-case; split
   on white space and make every punctuation character its own word;
2. *WordPiece*: cut each word greedily into the longest pieces found in the
   vocabulary, left to right; pieces after the first carry a ``##`` prefix;
   a word that cannot be cut (or is longer than 100 characters) becomes
   ``[UNK]``.

``SentencePieceTokenizer`` wraps a unigram SentencePiece model that we train
on raw text, with BERT's special tokens pinned to ids 0..4.

Both share ``encode`` / ``encode_batch`` / ``decode``: ``[CLS] A [SEP]`` or
``[CLS] A [SEP] B [SEP]`` with token type (segment) ids 0 for A and 1 for B,
right padding with ``[PAD]`` and an attention mask (1 = real token).
Special tokens written literally in the text (``"the [MASK] sat"``) become
their ids, as in ``transformers``.

A saved tokenizer is a folder: ``vocab.txt`` or ``spm.model``, plus
``minibert_tokenizer.json`` saying which kind it is (and, for WordPiece,
whether it lower-cases). ``load_tokenizer(folder)`` loads either, and also
the folders ``transformers`` writes: ``tokenizer.json`` alone (the WordPiece
vocabulary and the normaliser settings are read from it, see
:meth:`WordPieceTokenizer.from_tokenizer_json`) or ``vocab.txt`` with a
``tokenizer_config.json``.
"""

from __future__ import annotations

import collections
import io
import json
import os
import random
import re
import unicodedata
from pathlib import Path
from typing import Iterable

import torch

from minibert.textio import atomic_write, atomic_write_text, read_utf8

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = SPECIAL_TOKENS
MAX_INPUT_CHARS_PER_WORD = 100  # as in Google's BERT: longer words become [UNK]
CONFIG_FILE = "minibert_tokenizer.json"
VOCAB_FILE = "vocab.txt"
HF_TOKENIZER_FILE = "tokenizer.json"          # the `tokenizers` library's single-file format
HF_TOKENIZER_CONFIG = "tokenizer_config.json"  # transformers' settings next to a vocab.txt
SPM_FILE = "spm.model"
_SPECIAL_SPLIT = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")")


# ----------------------------------------------------------------------------
# The basic tokenizer: character classes, cleaning, punctuation split
# ----------------------------------------------------------------------------

def is_cjk_character(ch: str) -> bool:
    """True for a CJK Unified Ideograph (the blocks BERT splits into one token each).

    Hangul, Hiragana and Katakana are *not* in these blocks; BERT treats them
    like letters.
    """
    cp = ord(ch)
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def is_punctuation(ch: str) -> bool:
    """True for BERT punctuation: any ASCII non-letter, non-digit symbol, or Unicode category P*.

    ASCII symbols such as ``$``, ``+``, ``^`` and the backquote are not Unicode
    punctuation, but BERT splits them off too.
    """
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


class _CleanTable(dict):
    """A ``str.translate`` table, filled lazily, for BERT's text clean-up.

    Each character maps to: nothing (NUL, U+FFFD and control/format/unassigned
    characters, categories C*, except tab, newline and carriage return), one
    space (white space: tab, newline, CR, categories Zs, Zl, Zp), itself with
    spaces around it (CJK ideographs, when ``cjk``), or itself.
    """

    def __init__(self, cjk: bool = True):
        super().__init__()
        self.cjk = cjk

    def __missing__(self, cp: int):
        ch = chr(cp)
        if ch in "\t\n\r" or unicodedata.category(ch) in ("Zs", "Zl", "Zp"):
            out = " "
        elif cp == 0 or cp == 0xFFFD or unicodedata.category(ch).startswith("C"):
            out = None
        elif self.cjk and is_cjk_character(ch):
            out = f" {ch} "
        else:
            out = ch
        self[cp] = out
        return out


class _MarkTable(dict):
    """A ``str.translate`` table that deletes combining marks (category Mn)."""

    def __missing__(self, cp: int):
        out = None if unicodedata.category(chr(cp)) == "Mn" else chr(cp)
        self[cp] = out
        return out


_CLEAN = _CleanTable()
_CLEAN_KEEP_CJK = _CleanTable(cjk=False)
_MARKS = _MarkTable()


def normalize_text(text: str, do_lower_case: bool = True, strip_accents: bool | None = None,
                   tokenize_chinese_chars: bool = True) -> str:
    """BERT's normalizer: clean the text, pad CJK ideographs, strip accents, lower-case.

    ``strip_accents=None`` (BERT's default) strips accents exactly when
    ``do_lower_case``; ``tokenize_chinese_chars=False`` leaves CJK ideographs
    glued to their neighbours. These are the settings ``transformers`` calls
    ``lowercase``, ``strip_accents`` and ``handle_chinese_chars``.
    Lower-casing is done character by character (a final capital sigma becomes
    ``σ``, not ``ς``), as in ``transformers``' fast ``BertTokenizer``.
    """
    text = text.translate(_CLEAN if tokenize_chinese_chars else _CLEAN_KEEP_CJK)
    if strip_accents is None:
        strip_accents = do_lower_case
    if not text.isascii():
        if strip_accents:
            text = unicodedata.normalize("NFD", text).translate(_MARKS)  # "é" -> "e" + U+0301 -> "e"
        if do_lower_case:
            text = text.replace("\u03a3", "\u03c3")  # Σ -> σ everywhere (str.lower would give ς at word ends)
    if do_lower_case:
        text = text.lower()
    return text


def split_on_punctuation(word: str) -> list[str]:
    """Split a word so that every punctuation character is a word of its own: ``"don't"`` -> ``don ' t``."""
    pieces: list[str] = []
    current: list[str] = []
    for ch in word:
        if is_punctuation(ch):
            if current:
                pieces.append("".join(current))
                current = []
            pieces.append(ch)
        else:
            current.append(ch)
    if current:
        pieces.append("".join(current))
    return pieces


def basic_tokenize(text: str, do_lower_case: bool = True) -> list[str]:
    """BERT's basic tokenizer: normalize, split on white space, split off punctuation.

    >>> basic_tokenize("Héllo, WORLD! 你好")
    ['hello', ',', 'world', '!', '你', '好']
    """
    words: list[str] = []
    for chunk in normalize_text(text, do_lower_case).split(" "):
        if chunk:
            words.extend(split_on_punctuation(chunk))
    return words


# ----------------------------------------------------------------------------
# WordPiece: greedy longest-match-first
# ----------------------------------------------------------------------------

def wordpiece_tokenize(word: str, vocab, unk_token: str = UNK,
                       max_input_chars_per_word: int = MAX_INPUT_CHARS_PER_WORD) -> list[str]:
    """Cut one word into vocabulary pieces, greedily taking the longest match first.

    From position $i$ (starting at 0) take the longest piece in the vocabulary $V$:
    $j^* = \\max\\{\\, j > i : p(w_{i:j}) \\in V \\,\\}$, where $p(s) = s$ when $i = 0$
    and $p(s) = \\texttt{\\#\\#}s$ otherwise; emit $p(w_{i:j^*})$ and continue from $j^*$.
    If at some $i$ no $j$ exists, or $|w| >$ ``max_input_chars_per_word``, the
    whole word is ``[unk_token]``.

    word: one word from the basic tokenizer (no spaces); vocab: any container of
    strings supporting ``in`` (set, dict); returns the list of pieces (``[]`` for ``""``).

    >>> wordpiece_tokenize("unaffable", {"un", "##aff", "##able", "##a"})
    ['un', '##aff', '##able']
    """
    if len(word) > max_input_chars_per_word:
        return [unk_token]
    pieces: list[str] = []
    start = 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        else:  # not even one character matched at this position
            return [unk_token]
        pieces.append(piece)
        start = end
    return pieces


# ----------------------------------------------------------------------------
# Unigram: the most probable segmentation (Viterbi)
# ----------------------------------------------------------------------------

def viterbi_segment(text: str, log_probs: dict) -> tuple[list[str], float]:
    r"""The most probable segmentation of ``text`` under a unigram model, found by Viterbi.

    A segmentation $x = (x_1, \dots, x_n)$ of ``text`` into pieces of the
    vocabulary $V$ has log-probability $\sum_i \log p(x_i)$; this returns
    $x^* = \arg\max_{x \in S(\text{text})} \sum_i \log p(x_i)$ without listing
    $S(\text{text})$, by dynamic programming over the end positions $j$:

    $$\mathrm{best}(0) = 0, \qquad
      \mathrm{best}(j) = \max_{i < j,\ \text{text}_{i:j} \in V} \mathrm{best}(i) + \log p(\text{text}_{i:j})$$

    and following the argmax back from $j = |\text{text}|$.

    text: the string to cut (for SentencePiece, with ``▁`` for every space);
    log_probs: ``{piece: log p(piece)}`` ($V$ and $\log p$). Returns
    ``(pieces, total log-probability)``; ``("", ...)`` gives ``([], 0.0)``.
    Raises ``ValueError`` when no segmentation exists.

    >>> pieces, score = viterbi_segment("hugs", {"h": -3.0, "u": -3.0, "g": -3.0, "s": -2.0, "hug": -1.5})
    >>> pieces, score
    (['hug', 's'], -3.5)
    """
    longest = max((len(piece) for piece in log_probs), default=0)
    best = [0.0] + [float("-inf")] * len(text)      # best(j): score of the best cut of text[:j]
    back = [0] * (len(text) + 1)                    # where the last piece of that cut starts
    for j in range(1, len(text) + 1):
        for i in range(max(0, j - longest), j):
            piece = text[i:j]
            if best[i] > float("-inf") and piece in log_probs:
                score = best[i] + log_probs[piece]
                if score > best[j]:
                    best[j], back[j] = score, i
    if best[-1] == float("-inf"):
        raise ValueError(f"viterbi_segment: {text!r} cannot be cut into pieces of the vocabulary "
                         f"(some character is in no piece).")
    pieces, j = [], len(text)
    while j > 0:
        pieces.append(text[back[j]:j])
        j = back[j]
    return pieces[::-1], best[-1]


# ----------------------------------------------------------------------------
# The shared API
# ----------------------------------------------------------------------------

def _truncated_lengths(n_a: int, n_b: int, budget: int) -> tuple[int, int]:
    """Lengths of a pair after "longest first" truncation to ``budget`` tokens (as ``tokenizers`` does).

    If the shorter sequence fits in what the longer leaves, only the longer is
    cut; otherwise each keeps half the budget, the longer one (the second on a
    tie) getting the odd token.
    """
    if n_a + n_b <= budget:
        return n_a, n_b
    swap = n_a > n_b
    short, long = (n_b, n_a) if swap else (n_a, n_b)
    long = max(short, budget - short)
    if short + long > budget:
        short = budget // 2
        long = short + budget % 2
    return (long, short) if swap else (short, long)


class _Tokenizer:
    """What WordPiece and SentencePiece tokenizers share: specials, encode, batch, decode.

    Attributes set from the vocabulary: ``pad_id``, ``unk_id``, ``cls_id``,
    ``sep_id``, ``mask_id`` and ``special_ids`` (the set of those five).
    """

    kind = "base"

    # --- to be provided by a subclass ---------------------------------------
    def _tokenize_plain(self, text: str) -> list[str]:  # text without special tokens
        raise NotImplementedError

    def _token_to_id(self, token: str) -> int:
        raise NotImplementedError

    def _id_to_token(self, token_id: int) -> str:
        raise NotImplementedError

    def _detokenize(self, tokens: list[str]) -> str:
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        """Number of tokens in the vocabulary (ids are ``0 .. vocab_size - 1``)."""
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------
    def _check_specials(self, where: str) -> None:
        missing = [t for t in SPECIAL_TOKENS if self._token_to_id(t) is None]
        if missing:
            raise ValueError(f"{where} lacks the special token(s) {', '.join(missing)}; "
                             f"a BERT vocabulary needs all of {' '.join(SPECIAL_TOKENS)}")
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            self._token_to_id(t) for t in SPECIAL_TOKENS)
        self.special_ids = {self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id}

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text``, without ``[CLS]``/``[SEP]``; specials written in the text are kept whole."""
        if not isinstance(text, str):
            raise TypeError(f"tokenize expects a str, got {type(text).__name__}")
        if "[" not in text:
            return self._tokenize_plain(text)
        tokens: list[str] = []
        for i, part in enumerate(_SPECIAL_SPLIT.split(text)):
            if i % 2:
                tokens.append(part)  # a literal "[MASK]", "[SEP]", ...
            elif part:
                tokens.extend(self._tokenize_plain(part))
        return tokens

    def convert_tokens_to_ids(self, tokens: list[str]) -> list[int]:
        """Ids of tokens; a token not in the vocabulary gets ``unk_id``."""
        ids = []
        for token in tokens:
            token_id = self._token_to_id(token)
            ids.append(self.unk_id if token_id is None else token_id)
        return ids

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ids; an id outside ``0 .. vocab_size - 1`` is an error."""
        tokens = []
        for token_id in ids:
            token_id = int(token_id)
            if not 0 <= token_id < self.vocab_size:
                raise ValueError(f"token id {token_id} is outside the vocabulary (0 .. {self.vocab_size - 1})")
            tokens.append(self._id_to_token(token_id))
        return tokens

    def text_to_ids(self, text: str) -> list[int]:
        """The ids of ``text``'s tokens, without ``[CLS]``/``[SEP]``."""
        return self.convert_tokens_to_ids(self.tokenize(text))

    def encode(self, text: str, pair: str | None = None, max_length: int | None = None) -> dict:
        """``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]`` as ids, with token type ids 0 for A and 1 for B.

        With ``max_length`` the result has at most that many ids, specials
        included: a single text is cut at its end; a pair is cut "longest
        first" (only the longer one if that suffices, else both to half).
        Returns ``dict(input_ids=list[int], token_type_ids=list[int])``.
        """
        ids_a = self.text_to_ids(text)
        ids_b = self.text_to_ids(pair) if pair is not None else None
        if max_length is not None:
            n_special = 2 if ids_b is None else 3
            if max_length < n_special:
                raise ValueError(f"max_length={max_length} leaves no room for the {n_special} special tokens "
                                 f"[CLS]/[SEP]; use max_length >= {n_special}")
            budget = max_length - n_special
            if ids_b is None:
                ids_a = ids_a[:budget]
            else:
                n_a, n_b = _truncated_lengths(len(ids_a), len(ids_b), budget)
                ids_a, ids_b = ids_a[:n_a], ids_b[:n_b]
        input_ids = [self.cls_id] + ids_a + [self.sep_id]
        token_type_ids = [0] * len(input_ids)
        if ids_b is not None:
            input_ids += ids_b + [self.sep_id]
            token_type_ids += [1] * (len(ids_b) + 1)
        return {"input_ids": input_ids, "token_type_ids": token_type_ids}

    def encode_batch(self, texts: list[str], pairs: list[str] | None = None,
                     max_length: int | None = None) -> dict:
        """Encode several texts (or pairs) and pad them on the right to the longest one.

        Returns LongTensors of shape (B, T): ``input_ids`` (padding = ``pad_id``),
        ``token_type_ids`` (0 on padding) and ``attention_mask`` (1 = real token, 0 = padding).
        """
        if isinstance(texts, str):
            raise TypeError("encode_batch expects a list of texts, got one str; use encode(text) for one text")
        texts = list(texts)
        if not texts:
            raise ValueError("encode_batch got an empty list of texts; pass at least one text")
        if pairs is not None:
            pairs = list(pairs)
            if len(pairs) != len(texts):
                raise ValueError(f"encode_batch got {len(texts)} texts but {len(pairs)} pairs; "
                                 f"pass one pair per text")
        encoded = [self.encode(t, None if pairs is None else pairs[i], max_length)
                   for i, t in enumerate(texts)]
        T = max(len(e["input_ids"]) for e in encoded)
        input_ids = torch.full((len(encoded), T), self.pad_id, dtype=torch.long)  # (B, T)
        token_type_ids = torch.zeros((len(encoded), T), dtype=torch.long)  # (B, T)
        attention_mask = torch.zeros((len(encoded), T), dtype=torch.long)  # (B, T)
        for i, e in enumerate(encoded):
            n = len(e["input_ids"])
            input_ids[i, :n] = torch.tensor(e["input_ids"])
            token_type_ids[i, :n] = torch.tensor(e["token_type_ids"])
            attention_mask[i, :n] = 1
        return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text of ids: pieces are glued back into words; specials dropped unless ``skip_special_tokens=False``.

        ``ids`` may be a list or a 1-D tensor. The basic tokenizer's changes
        (lower case, stripped accents, spaces around punctuation) are not undone.
        """
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        words: list[str] = []
        run: list[str] = []
        for token_id in ids:
            token_id = int(token_id)
            if token_id in self.special_ids:
                if skip_special_tokens:
                    continue
                if run:
                    words.append(self._detokenize(run))
                    run = []
                words.append(self.convert_ids_to_tokens([token_id])[0])
            else:
                run.extend(self.convert_ids_to_tokens([token_id]))
        if run:
            words.append(self._detokenize(run))
        return " ".join(w for w in words if w)

    def is_word_start(self, token_id: int) -> bool:
        """True when the token begins a word (specials count as words of their own); for whole-word masking."""
        raise NotImplementedError

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def _write_config(folder: Path, config: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(config, indent=2) + "\n", folder / CONFIG_FILE)


def _read_config(folder: Path) -> dict:
    path = folder / CONFIG_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); re-save the tokenizer with .save(folder)") from None


# ----------------------------------------------------------------------------
# WordPiece tokenizer
# ----------------------------------------------------------------------------

class WordPieceTokenizer(_Tokenizer):
    """BERT's tokenizer: basic tokenizer + greedy WordPiece over a ``vocab.txt``.

    ``tokens`` is the vocabulary in id order. ``do_lower_case`` selects the
    uncased model (lower-case and strip accents) or the cased one;
    ``strip_accents`` (``None``: as ``do_lower_case``), ``tokenize_chinese_chars``
    and ``max_input_chars_per_word`` are the finer settings of
    :func:`normalize_text` and :func:`wordpiece_tokenize`, as in transformers.
    """

    kind = "wordpiece"

    def __init__(self, tokens: list[str], do_lower_case: bool = True, where: str = "the vocabulary",
                 strip_accents: bool | None = None, tokenize_chinese_chars: bool = True,
                 max_input_chars_per_word: int = MAX_INPUT_CHARS_PER_WORD):
        self.tokens = list(tokens)
        self.vocab = {}
        for i, token in enumerate(self.tokens):
            if token in self.vocab:
                raise ValueError(f"{where} lists the token {token!r} twice (ids {self.vocab[token]} and {i}); "
                                 f"each token must appear once")
            self.vocab[token] = i
        self.do_lower_case = bool(do_lower_case)
        self.strip_accents = None if strip_accents is None else bool(strip_accents)
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self.max_input_chars_per_word = int(max_input_chars_per_word)
        self._cache: dict[str, list[str]] = {}  # chunk of text between spaces -> its pieces
        self._check_specials(where)

    @classmethod
    def from_vocab_file(cls, path, do_lower_case: bool = True, **options) -> "WordPieceTokenizer":
        """Read a BERT ``vocab.txt`` (UTF-8, one token per line, id = line number from 0).

        ``options``: ``strip_accents``, ``tokenize_chinese_chars``, ``max_input_chars_per_word``.
        """
        path = Path(path)
        if path.is_dir():
            path = path / VOCAB_FILE
        tokens = read_utf8(path, "vocabulary file (a BERT vocab.txt)").split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()  # the final newline
        return cls([t.rstrip("\r") for t in tokens], do_lower_case=do_lower_case, where=f"vocabulary file {path}",
                   **options)

    @classmethod
    def from_tokenizer_json(cls, path) -> "WordPieceTokenizer":
        """Read the WordPiece vocabulary and BERT normaliser settings of a ``tokenizer.json``.

        ``tokenizer.json`` is the single file of the ``tokenizers`` library that
        many ``transformers`` folders ship instead of ``vocab.txt``. We use its
        ``model`` (type ``WordPiece``: ``vocab`` token -> id, ``unk_token``,
        ``continuing_subword_prefix`` ``##``, ``max_input_chars_per_word``), its
        ``normalizer`` (``BertNormalizer``: ``lowercase``, ``strip_accents``,
        ``handle_chinese_chars``) and check that the pre-tokenizer is BERT's.
        Its truncation and padding settings are not used: callers pass
        ``max_length`` and batches are padded to their longest text.
        """
        path = Path(path)
        if path.is_dir():
            path = path / HF_TOKENIZER_FILE
        where = f"tokenizer file {path}"
        try:
            spec = json.loads(read_utf8(path, "tokenizer file (a tokenizers tokenizer.json)"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where} is not valid JSON ({exc}).") from None
        model = spec.get("model") or {}
        if model.get("type") != "WordPiece":
            raise ValueError(f"{where} holds a {model.get('type')!r} model; minibert reads only WordPiece "
                             f"tokenizer.json files (BERT's).")
        if model.get("continuing_subword_prefix", "##") != "##" or model.get("unk_token", UNK) != UNK:
            raise ValueError(f"{where}: WordPiece with prefix {model.get('continuing_subword_prefix')!r} and "
                             f"unknown token {model.get('unk_token')!r} is not BERT's ('##', '[UNK]').")
        normalizer = spec.get("normalizer") or {}
        if normalizer.get("type") == "Sequence" and len(normalizer.get("normalizers", [])) == 1:
            normalizer = normalizer["normalizers"][0]
        if normalizer.get("type") != "BertNormalizer" or not normalizer.get("clean_text", True):
            raise ValueError(f"{where}: the normalizer {normalizer.get('type')!r} is not BERT's "
                             f"(BertNormalizer with clean_text); minibert cannot reproduce it.")
        pre = (spec.get("pre_tokenizer") or {}).get("type")
        if pre != "BertPreTokenizer":
            raise ValueError(f"{where}: the pre-tokenizer {pre!r} is not BertPreTokenizer; minibert splits "
                             f"words BERT's way only.")
        vocab = model.get("vocab") or {}
        tokens = [None] * len(vocab)
        for token, token_id in vocab.items():
            if not isinstance(token_id, int) or not 0 <= token_id < len(vocab) or tokens[token_id] is not None:
                raise ValueError(f"{where}: the vocabulary ids are not 0..{len(vocab) - 1}, each once "
                                 f"(token {token!r} has id {token_id!r}).")
            tokens[token_id] = token
        for added in sorted(spec.get("added_tokens") or [], key=lambda a: a["id"]):
            if added["id"] == len(tokens):
                tokens.append(added["content"])  # an added token beyond the WordPiece vocabulary
            elif not (0 <= added["id"] < len(tokens) and tokens[added["id"]] == added["content"]):
                raise ValueError(f"{where}: added token {added['content']!r} has id {added['id']}, which "
                                 f"clashes with the vocabulary.")
        return cls(tokens, do_lower_case=normalizer.get("lowercase", True), where=where,
                   strip_accents=normalizer.get("strip_accents"),
                   tokenize_chinese_chars=normalizer.get("handle_chinese_chars", True),
                   max_input_chars_per_word=model.get("max_input_chars_per_word", MAX_INPUT_CHARS_PER_WORD))

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def _token_to_id(self, token: str):
        return self.vocab.get(token)

    def _id_to_token(self, token_id: int) -> str:
        return self.tokens[token_id]

    def _tokenize_plain(self, text: str) -> list[str]:
        tokens: list[str] = []
        cache = self._cache
        normalized = normalize_text(text, self.do_lower_case, self.strip_accents, self.tokenize_chinese_chars)
        for chunk in normalized.split(" "):
            if not chunk:
                continue
            pieces = cache.get(chunk)
            if pieces is None:
                pieces = []
                for word in split_on_punctuation(chunk):
                    pieces.extend(wordpiece_tokenize(word, self.vocab, UNK, self.max_input_chars_per_word))
                if len(cache) > 200_000:
                    cache.clear()
                cache[chunk] = pieces
            tokens.extend(pieces)
        return tokens

    def _detokenize(self, tokens: list[str]) -> str:
        return " ".join(tokens).replace(" ##", "")

    def is_word_start(self, token_id: int) -> bool:
        return not self.tokens[int(token_id)].startswith("##")

    def _options(self) -> dict:
        return {"strip_accents": self.strip_accents, "tokenize_chinese_chars": self.tokenize_chinese_chars,
                "max_input_chars_per_word": self.max_input_chars_per_word}

    def save(self, folder) -> Path:
        """Write ``vocab.txt``, ``minibert_tokenizer.json`` and transformers' ``tokenizer_config.json``.

        With the last one, ``transformers.AutoTokenizer.from_pretrained(folder)``
        loads a ``BertTokenizer`` with the same settings. Returns the folder.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text("".join(t + "\n" for t in self.tokens), folder / VOCAB_FILE)
        _write_config(folder, {"kind": self.kind, "do_lower_case": self.do_lower_case, **self._options()})
        hf = {"tokenizer_class": "BertTokenizer", "do_lower_case": self.do_lower_case,
              "strip_accents": self.strip_accents, "tokenize_chinese_chars": self.tokenize_chinese_chars,
              "unk_token": UNK, "pad_token": PAD, "cls_token": CLS, "sep_token": SEP, "mask_token": MASK}
        atomic_write_text(json.dumps(hf, indent=2) + "\n", folder / HF_TOKENIZER_CONFIG)
        return folder

    @classmethod
    def load(cls, folder) -> "WordPieceTokenizer":
        """Load a folder written by ``save``."""
        folder = Path(folder)
        config = _read_config(folder) if (folder / CONFIG_FILE).is_file() else None
        if config is None:
            raise FileNotFoundError(f"{folder} has no {CONFIG_FILE}; for a bare vocab.txt use "
                                    f"WordPieceTokenizer.from_vocab_file(path, do_lower_case=...)")
        options = {k: config[k] for k in ("strip_accents", "tokenize_chinese_chars", "max_input_chars_per_word")
                   if k in config}
        return cls.from_vocab_file(folder / VOCAB_FILE, do_lower_case=config.get("do_lower_case", True), **options)


def build_wordpiece_vocab(lines: Iterable[str], vocab_size: int, do_lower_case: bool = True,
                          min_char_count: int = 2, max_piece_chars: int = 8) -> list[str]:
    """A simple WordPiece vocabulary from word frequencies (not Google's likelihood-based training).

    In id order: the five specials; every character seen at least
    ``min_char_count`` times (rarer ones will become ``[UNK]``), bare and with
    ``##``; then, to fill ``vocab_size``, alternately the most frequent whole
    words and the most frequent word pieces (word prefixes, and ``##`` inner
    pieces of 2..``max_piece_chars`` characters), counted over word occurrences.
    Ties are broken alphabetically, so the result is deterministic.
    """
    words: collections.Counter = collections.Counter()
    for line in lines:
        words.update(basic_tokenize(line, do_lower_case))
    if not words:
        raise ValueError("build_wordpiece_vocab got no words; pass non-empty lines of text")
    chars: collections.Counter = collections.Counter()
    for word, n in words.items():
        for ch in word:
            chars[ch] += n
    alphabet = sorted((c for c, n in chars.items() if n >= min_char_count), key=lambda c: (-chars[c], c))
    vocab = list(SPECIAL_TOKENS) + alphabet + ["##" + c for c in alphabet]
    if vocab_size < len(vocab):
        raise ValueError(f"vocab_size={vocab_size} is too small: the specials and the {len(alphabet)} characters "
                         f"alone need {len(vocab)}; use a larger vocab_size or a larger min_char_count")
    known = set(vocab)
    pieces: collections.Counter = collections.Counter()
    for word, n in words.items():
        if len(word) > MAX_INPUT_CHARS_PER_WORD:
            continue
        for start in range(len(word)):
            for end in range(start + 2, min(len(word), start + max_piece_chars) + 1):
                if start == 0 and end == len(word):
                    continue  # the whole word is counted separately
                pieces[word[start:end] if start == 0 else "##" + word[start:end]] += n
    by_count = lambda counter: sorted((t for t in counter if t not in known), key=lambda t: (-counter[t], t))
    ranked_words = iter(by_count({w: n for w, n in words.items() if len(w) > 1}))
    ranked_pieces = iter(by_count(pieces))
    sources = [ranked_words, ranked_pieces]
    while len(vocab) < vocab_size and sources:
        for source in list(sources):
            token = next(source, None)
            while token is not None and token in known:
                token = next(source, None)
            if token is None:
                sources.remove(source)
                continue
            vocab.append(token)
            known.add(token)
            if len(vocab) == vocab_size:
                break
    return vocab


# ----------------------------------------------------------------------------
# SentencePiece tokenizer
# ----------------------------------------------------------------------------

def _read_training_file(path: Path) -> list[str]:
    return read_utf8(path, "training file").split("\n")


def _training_lines(source) -> list[str]:
    """Non-blank stripped lines from: one file path, a list of file paths, or an iterable of str lines.

    A single ``str``/``Path`` is a file; a list whose items are all ``Path``
    objects or names of existing files is a list of files; anything else is lines.
    """
    if isinstance(source, (str, os.PathLike)):
        raw_lines = _read_training_file(Path(source))
    else:
        items = list(source)
        is_file = lambda x: isinstance(x, os.PathLike) or (isinstance(x, str) and "\n" not in x and os.path.isfile(x))
        if items and all(is_file(x) for x in items):
            raw_lines = [line for x in items for line in _read_training_file(Path(x))]
        else:
            bad = next((x for x in items if not isinstance(x, str)), None)
            if bad is not None:
                raise TypeError(f"training text must be file paths or str lines, got a {type(bad).__name__}")
            raw_lines = items
    return [line.strip() for line in raw_lines if line.strip()]


class SentencePieceTokenizer(_Tokenizer):
    """A unigram SentencePiece model with BERT's specials at ids 0..4: [PAD] [UNK] [CLS] [SEP] [MASK].

    Pieces that begin a word carry the prefix ``▁`` (U+2581, SentencePiece's
    visible space). Unknown characters map to ``[UNK]``.
    """

    kind = "sentencepiece"

    def __init__(self, model_proto: bytes, where: str = "the SentencePiece model"):
        import sentencepiece as spm

        self.model_proto = bytes(model_proto)
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(self.model_proto)
        except Exception as exc:  # sentencepiece raises RuntimeError/OSError on a bad file
            raise ValueError(f"{where} is not a SentencePiece model ({exc})") from None
        self._pieces = [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())]
        self._ids = {p: i for i, p in enumerate(self._pieces)}
        self._check_specials(where)
        if [self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id] != [0, 1, 2, 3, 4]:
            raise ValueError(f"{where} does not have {' '.join(SPECIAL_TOKENS)} at ids 0..4; "
                             f"train it with SentencePieceTokenizer.train")

    @classmethod
    def train(cls, text_files_or_iterable_of_lines, vocab_size: int, folder=None, seed: int = 0,
              character_coverage: float = 0.9999, num_threads: int = 1, max_lines: int | None = None,
              verbose: bool = False) -> "SentencePieceTokenizer":
        """Train a unigram SentencePiece model on raw text (deterministic for a seed).

        The unigram model gives a segmentation $x = (x_1, \\dots, x_n)$ of a
        sentence the probability $P(x) = \\prod_i p(x_i)$; training (EM) finds
        piece probabilities $p$ and a vocabulary $V$ of ``vocab_size`` pieces
        that maximise $\\sum_s \\log \\sum_{x \\in S(s)} P(x)$ over the sentences
        $s$, where $S(s)$ is the set of segmentations of $s$ into pieces of $V$.
        Encoding picks the most probable segmentation (Viterbi).

        text_files_or_iterable_of_lines: a UTF-8 file path, a list of paths,
        or an iterable of str lines (empty lines are skipped). ``[PAD]`` and
        ``[UNK]`` are SentencePiece's pad and unk pieces at ids 0 and 1;
        ``[CLS] [SEP] [MASK]`` are control symbols at 2, 3, 4 (never produced
        from text). No BOS/EOS. ``folder``: if given, the tokenizer is saved there.
        ``max_lines``: train on a random sample of that many lines (drawn in
        Python with ``seed``) when the text has more, e.g. for WikiText-103;
        None = all. ``seed`` also seeds SentencePiece's generator. With one
        thread the model bytes are identical run after run and process after
        process (more threads may change the result, so ``num_threads=1``).
        """
        import sentencepiece as spm

        if int(vocab_size) <= len(SPECIAL_TOKENS):
            raise ValueError(f"vocab_size={vocab_size} must exceed the {len(SPECIAL_TOKENS)} special tokens")
        if max_lines is not None and int(max_lines) < 1:
            raise ValueError(f"max_lines={max_lines} must be a positive number of lines, or None for all lines")
        lines = list(_training_lines(text_files_or_iterable_of_lines))
        if not lines:
            raise ValueError("the training text is empty (no non-blank line); pass a file or lines with text")
        if max_lines is not None and len(lines) > int(max_lines):
            # sample here, not in SentencePiece: its own sampling differs from one process to the next
            keep = sorted(random.Random(int(seed)).sample(range(len(lines)), int(max_lines)))
            lines = [lines[i] for i in keep]
        spm.set_random_generator_seed(int(seed))
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines), model_writer=model,
                model_type="unigram", vocab_size=int(vocab_size),
                pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, pad_piece=PAD, unk_piece=UNK,
                control_symbols=[CLS, SEP, MASK],
                character_coverage=character_coverage, max_sentence_length=1 << 16,
                num_threads=int(num_threads), minloglevel=0 if verbose else 2,
            )
        except RuntimeError as exc:
            limit = re.search(r"value <= (\d+)", str(exc))
            if limit:
                raise ValueError(f"SentencePiece cannot make {vocab_size} pieces from these {len(lines)} lines "
                                 f"(at most {limit.group(1)}); use a smaller vocab_size or more text") from None
            raise ValueError(f"SentencePiece could not train a vocabulary of {vocab_size} on "
                             f"{len(lines)} lines ({str(exc).strip()}); use a smaller vocab_size or more text") from None
        tokenizer = cls(model.getvalue())
        if folder is not None:
            tokenizer.save(folder)
        return tokenizer

    def __getstate__(self) -> dict:  # picklable (DataLoader workers): the model bytes are the whole state
        return {"model_proto": self.model_proto}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["model_proto"])

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    def _token_to_id(self, token: str):
        return self._ids.get(token)

    def _id_to_token(self, token_id: int) -> str:
        return self._pieces[token_id]

    def _tokenize_plain(self, text: str) -> list[str]:
        return [self._pieces[i] for i in self.sp.encode(text)]  # unknown characters show as [UNK]

    def text_to_ids(self, text: str) -> list[int]:
        if "[" not in text:
            return self.sp.encode(text)  # fast path: no special token written in the text
        return super().text_to_ids(text)

    def texts_to_ids(self, texts: list[str]) -> list[list[int]]:
        """:meth:`text_to_ids` of each text, in one SentencePiece call when no text holds a ``[``."""
        if not any("[" in t for t in texts):
            return self.sp.encode(list(texts))
        return [self.text_to_ids(t) for t in texts]

    def _detokenize(self, tokens: list[str]) -> str:
        return self.sp.decode_pieces(tokens)

    def is_word_start(self, token_id: int) -> bool:
        token_id = int(token_id)
        return token_id in self.special_ids or self._pieces[token_id].startswith("\u2581")

    def save(self, folder) -> Path:
        """Write ``spm.model``, ``minibert_tokenizer.json`` and, for transformers, ``tokenizer.json``,
        ``tokenizer_config.json`` and ``special_tokens_map.json`` (see :func:`save_for_transformers`)
        into ``folder``; returns the folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / SPM_FILE, lambda tmp: tmp.write_bytes(self.model_proto))
        _write_config(folder, {"kind": self.kind})
        save_for_transformers(self, folder)
        return folder

    @classmethod
    def load(cls, folder) -> "SentencePieceTokenizer":
        """Load a folder holding ``spm.model`` (written by ``save`` or ``train(..., folder=...)``)."""
        path = Path(folder) / SPM_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; train one with SentencePieceTokenizer.train")
        return cls(path.read_bytes(), where=f"SentencePiece model {path}")


# ----------------------------------------------------------------------------
# SentencePiece as a transformers tokenizer (tokenizer.json)
# ----------------------------------------------------------------------------
#
# ``transformers.AutoTokenizer`` loads a folder through the ``tokenizers``
# library's ``tokenizer.json``: a pipeline normalizer -> pre-tokenizer -> model
# -> post-processor. SentencePiece does the same steps inside one binary
# ``.model`` file (a protobuf), so writing ``tokenizer.json`` means reading
# that file and saying each step in ``tokenizers``' words:
#
# =====================  =========================================  ===========================

# SentencePiece          what it does                               tokenizer.json
# =====================  =========================================  ==================================
# normalizer_spec        nmt_nfkc: NFKC plus a few rules, compiled  ``Precompiled`` (the same table),
#                        into a character map stored in the model   then ``Strip`` and ``Replace``
# remove_extra_white...  drop leading/trailing spaces, squeeze runs   ``Strip``, ``Replace(" {2,}", " ")``
# add_dummy_prefix,      " " -> "▁", and a "▁" before the text       ``Metaspace`` (prepend always)
# escape_whitespaces
# pieces + scores        unigram model, Viterbi segmentation        ``Unigram`` with [piece, score]
# (our specials 0..4)    [PAD] [UNK] and control [CLS] [SEP] [MASK] ``added_tokens`` (special)
# (minibert's encode)    [CLS] A [SEP] B [SEP], token types 0 / 1   ``TemplateProcessing``
# =====================  =========================================  ==================================

HF_SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"


def sentencepiece_normalizer_spec(model_proto: bytes) -> dict:
    """The ``normalizer_spec`` of a SentencePiece model file (field 3 of its ``ModelProto``).

    Returns ``name`` (e.g. ``"nmt_nfkc"``), ``precompiled_charsmap`` (bytes:
    the normalisation rules compiled into a character map), and the booleans
    ``add_dummy_prefix``, ``remove_extra_whitespaces``, ``escape_whitespaces``
    (SentencePiece's defaults, true, when the file omits them).
    """
    spec = {"name": "", "precompiled_charsmap": b"", "add_dummy_prefix": True,
            "remove_extra_whitespaces": True, "escape_whitespaces": True}
    names = {1: "name", 2: "precompiled_charsmap", 3: "add_dummy_prefix", 4: "remove_extra_whitespaces",
             5: "escape_whitespaces"}
    for number, _, value in _protobuf_fields(model_proto):
        if number != 3:
            continue
        for inner, _, inner_value in _protobuf_fields(value):
            key = names.get(inner)
            if key == "name":
                spec[key] = inner_value.decode("utf-8")
            elif key == "precompiled_charsmap":
                spec[key] = bytes(inner_value)
            elif key is not None:
                spec[key] = bool(inner_value)
    return spec


def sentencepiece_to_tokenizer_json(tokenizer: "SentencePieceTokenizer") -> dict:
    """The ``tokenizers`` pipeline (``tokenizer.json`` as a dict) that encodes like ``tokenizer``.

    Model: ``Unigram`` with every piece and its log-probability score
    $\\log p(x_i)$, so Viterbi finds the same $\\arg\\max_x \\sum_i \\log p(x_i)$;
    ``[UNK]`` is ``unk_id``. Normalizer: SentencePiece's own compiled
    character map (``Precompiled``), then strip the ends and squeeze runs of
    spaces (``remove_extra_whitespaces``). Pre-tokenizer: ``Metaspace``
    (spaces become ``▁``, one ``▁`` is put in front). Post-processor:
    ``[CLS] A [SEP]`` and ``[CLS] A [SEP] B [SEP]`` with token type ids 0 on
    ``[CLS] A [SEP]`` and 1 on ``B [SEP]``. The five specials are added
    tokens, so ``"[MASK]"`` written in a text is one token, as in minibert.
    """
    import base64

    spec = sentencepiece_normalizer_spec(tokenizer.model_proto)
    if not spec["escape_whitespaces"]:
        raise ValueError("this SentencePiece model does not escape white space as ▁; "
                         "it cannot be written as a Metaspace tokenizer.json")
    normalizers = []
    if spec["precompiled_charsmap"]:
        normalizers.append({"type": "Precompiled",
                            "precompiled_charsmap": base64.b64encode(spec["precompiled_charsmap"]).decode("ascii")})
    if spec["remove_extra_whitespaces"]:
        normalizers += [{"type": "Strip", "strip_left": True, "strip_right": True},
                        {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]
    metaspace = {"type": "Metaspace", "replacement": "\u2581",
                 "prepend_scheme": "always" if spec["add_dummy_prefix"] else "never", "split": True}
    sp = tokenizer.sp
    vocab = [[tokenizer.convert_ids_to_tokens([i])[0], 0.0 if sp.is_control(i) or sp.is_unknown(i)
              else float(sp.get_score(i))] for i in range(tokenizer.vocab_size)]
    special_ids = [tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id]
    added = [{"id": i, "content": token, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, token in zip(special_ids, SPECIAL_TOKENS)]

    def piece(kind: str, name: str, type_id: int) -> dict:
        return {kind: {"id": name, "type_id": type_id}}

    post = {
        "type": "TemplateProcessing",
        "single": [piece("SpecialToken", CLS, 0), piece("Sequence", "A", 0), piece("SpecialToken", SEP, 0)],
        "pair": [piece("SpecialToken", CLS, 0), piece("Sequence", "A", 0), piece("SpecialToken", SEP, 0),
                 piece("Sequence", "B", 1), piece("SpecialToken", SEP, 1)],
        "special_tokens": {t: {"id": t, "ids": [i], "tokens": [t]}
                           for t, i in ((CLS, tokenizer.cls_id), (SEP, tokenizer.sep_id))},
    }
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": normalizers} if normalizers else None,
        "pre_tokenizer": metaspace,
        "post_processor": post,
        "decoder": dict(metaspace),
        "model": {"type": "Unigram", "unk_id": tokenizer.unk_id, "vocab": vocab, "byte_fallback": False},
    }


def save_for_transformers(tokenizer: "SentencePieceTokenizer", folder, model_max_length: int = 512) -> Path:
    """Write ``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json`` into ``folder``.

    ``transformers.AutoTokenizer.from_pretrained(folder)`` then builds a fast
    tokenizer that gives the ids of ``tokenizer.encode`` (checked on every line
    of WikiText-2 valid and test in ``tests/test_sentencepiece.py``), with
    BERT's special tokens named, so ``pipeline("fill-mask")`` finds ``[MASK]``.
    ``model_max_length``: the longest input the model takes (its
    ``max_position_embeddings``). The files our own loader reads are not touched.
    """
    if not isinstance(tokenizer, SentencePieceTokenizer):
        raise TypeError(f"save_for_transformers writes SentencePiece tokenizers, got a {type(tokenizer).__name__}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specials = {"pad_token": PAD, "unk_token": UNK, "cls_token": CLS, "sep_token": SEP, "mask_token": MASK}
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": int(model_max_length),
              "model_input_names": ["input_ids", "token_type_ids", "attention_mask"],
              "clean_up_tokenization_spaces": False, **specials}
    files = {HF_TOKENIZER_FILE: sentencepiece_to_tokenizer_json(tokenizer),
             HF_TOKENIZER_CONFIG: config, HF_SPECIAL_TOKENS_MAP_FILE: specials}
    for name, content in files.items():
        atomic_write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", folder / name)
    return folder


def _hf_vocab_tokenizer(folder: Path) -> WordPieceTokenizer:
    """A transformers folder with ``vocab.txt`` and ``tokenizer_config.json`` (BertTokenizer settings)."""
    path = folder / HF_TOKENIZER_CONFIG
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}).") from None
    return WordPieceTokenizer.from_vocab_file(folder / VOCAB_FILE, do_lower_case=settings.get("do_lower_case", True),
                                              strip_accents=settings.get("strip_accents"),
                                              tokenize_chinese_chars=settings.get("tokenize_chinese_chars", True))


def _protobuf_fields(data: bytes):
    """Yield ``(field_number, wire_type, value)`` of one protobuf message (varints and length-delimited only)."""
    i = 0

    def varint():
        nonlocal i
        shift = result = 0
        while True:
            byte = data[i]
            i += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return result

    while i < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            yield field, wire, varint()
        elif wire == 2:
            n = varint()
            yield field, wire, data[i:i + n]
            i += n
        elif wire == 5:
            yield field, wire, data[i:i + 4]
            i += 4
        elif wire == 1:
            yield field, wire, data[i:i + 8]
            i += 8
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")


def load_tokenizer(folder):
    """Load the tokenizer saved in ``folder``, whichever kind it is.

    In this order: ``minibert_tokenizer.json`` (our own folders), ``spm.model``,
    a transformers ``tokenizer.json`` (WordPiece only), a ``vocab.txt`` with
    transformers' ``tokenizer_config.json``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"tokenizer folder {folder} does not exist")
    if (folder / CONFIG_FILE).is_file():
        kind = _read_config(folder).get("kind")
    elif (folder / SPM_FILE).is_file():
        kind = SentencePieceTokenizer.kind
    elif (folder / HF_TOKENIZER_FILE).is_file():
        return WordPieceTokenizer.from_tokenizer_json(folder / HF_TOKENIZER_FILE)
    elif (folder / VOCAB_FILE).is_file() and (folder / HF_TOKENIZER_CONFIG).is_file():
        return _hf_vocab_tokenizer(folder)
    elif (folder / VOCAB_FILE).is_file():
        raise FileNotFoundError(f"{folder} has a vocab.txt but no {CONFIG_FILE} saying whether it is lower-cased; "
                                f"use WordPieceTokenizer.from_vocab_file(path, do_lower_case=...)")
    else:
        raise FileNotFoundError(f"{folder} holds no tokenizer ({VOCAB_FILE} or {SPM_FILE}); "
                                f"save one with tokenizer.save(folder)")
    if kind == WordPieceTokenizer.kind:
        return WordPieceTokenizer.load(folder)
    if kind == SentencePieceTokenizer.kind:
        return SentencePieceTokenizer.load(folder)
    raise ValueError(f"{folder / CONFIG_FILE} names an unknown tokenizer kind {kind!r}; "
                     f"expected 'wordpiece' or 'sentencepiece'")


__all__ = [
    "SPECIAL_TOKENS", "WordPieceTokenizer", "SentencePieceTokenizer", "load_tokenizer",
    "basic_tokenize", "normalize_text", "wordpiece_tokenize", "build_wordpiece_vocab",
    "is_punctuation", "is_cjk_character",
    "sentencepiece_normalizer_spec", "sentencepiece_to_tokenizer_json", "save_for_transformers",
]
