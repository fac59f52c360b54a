r"""Sentence pairs as index ranges into one flat token array: the scalable twin of the list pairs.

:func:`minibert.pretraining_data.create_nsp_examples` reads documents as
Python lists of lists of ints, which at WikiText-103 scale (~100 M tokens)
take several GB. Here the corpus is a flat token array ``tokens`` (e.g. the
``numpy`` memmap of :mod:`minibert.token_cache`) with two offset arrays:

* ``sentence_offsets`` (S+1,): sentence $s$ is ``tokens[sentence_offsets[s]:sentence_offsets[s+1]]``;
* ``document_offsets`` (D+1,): document $d$ is sentences ``document_offsets[d]:document_offsets[d+1]``.

Consecutive sentences of a document are contiguous in ``tokens``, so every
segment A or B of a pair is ONE range ``[start, end)`` of ``tokens``, and
truncation only moves its ends. :func:`create_nsp_ranges` and
:func:`create_sop_ranges` walk the documents exactly as the list versions do
and consume the ``random.Random`` in exactly the same order, so with the same
seed they give the same pairs (``tests/test_pair_ranges.py`` checks it on real
WikiText). :class:`RangePretrainingDataset` builds the padded rows of a batch
from the ranges only when the batch is served, and only the rows of the
calling DDP rank.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from minibert.pretraining_data import PretrainingDataset, pair_seed_for_epoch
from minibert.textio import atomic_write


@dataclass
class PairRanges:
    """N sentence pairs as ranges of the flat token array; every field is an int64 array of shape (N,).

    Pair $n$ is A = ``tokens[a_start[n]:a_end[n]]``, B = ``tokens[b_start[n]:b_end[n]]``;
    ``labels[n]`` is the pair label (1 = random B for NSP, swapped for SOP);
    ``document_a``/``document_b`` index the documents the segments came from.
    """

    a_start: np.ndarray
    a_end: np.ndarray
    b_start: np.ndarray
    b_end: np.ndarray
    labels: np.ndarray
    document_a: np.ndarray
    document_b: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def save(self, path) -> None:
        """Write the seven arrays to an ``.npz`` file atomically."""
        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, **{field.name: getattr(self, field.name) for field in fields(self)})
        atomic_write(path, write)

    @classmethod
    def load(cls, path) -> "PairRanges":
        """Read a file written by :meth:`save`; ``ValueError`` when it is damaged."""
        try:
            with np.load(path) as data:
                pairs = cls(*(data[field.name] for field in fields(cls)))
        except (OSError, KeyError, ValueError, EOFError) as exc:
            raise ValueError(f"pair file {path} is damaged ({type(exc).__name__})") from None
        if len({len(getattr(pairs, field.name)) for field in fields(cls)}) != 1:
            raise ValueError(f"pair file {path} is damaged (arrays of different lengths)")
        return pairs

    @classmethod
    def from_lists(cls, rows: list[tuple[int, int, int, int, int, int, int]]) -> "PairRanges":
        """From rows ``(a_start, a_end, b_start, b_end, label, document_a, document_b)``."""
        arr = np.asarray(rows, dtype=np.int64).reshape(-1, 7)
        return cls(*(np.ascontiguousarray(arr[:, i]) for i in range(7)))


def truncate_range_pair(a: list[int], b: list[int], max_num_tokens: int, rng: random.Random) -> None:
    """:func:`~minibert.pretraining_data.truncate_seq_pair` on ranges ``a = [start, end]``, ``b`` (in place).

    While $|A| + |B| >$ ``max_num_tokens`` the longer range (B on a tie) loses
    its first token (``start += 1``) or its last (``end -= 1``) with probability
    1/2 each: one ``rng.random()`` per removed token, as in the list version.
    """
    while (a[1] - a[0]) + (b[1] - b[0]) > max_num_tokens:
        longer = a if a[1] - a[0] > b[1] - b[0] else b
        if longer[1] - longer[0] <= 1:
            raise ValueError(f"cannot fit A and B into {max_num_tokens} tokens with one token left on each side.")
        if rng.random() < 0.5:
            longer[0] += 1
        else:
            longer[1] -= 1


def _document_sentences(sentence_offsets: np.ndarray, document_offsets: np.ndarray, d: int) -> list[int]:
    """The token offsets of document ``d``'s sentences and its end: ``[o_0, o_1, ..., o_n]`` (Python ints)."""
    s0, s1 = int(document_offsets[d]), int(document_offsets[d + 1])
    offsets = sentence_offsets[s0:s1 + 1].tolist()
    if any(hi <= lo for lo, hi in zip(offsets, offsets[1:])):
        raise ValueError(f"document {d} holds an empty sentence; the offsets must describe non-empty sentences.")
    return offsets


def create_nsp_ranges(sentence_offsets, document_offsets, max_seq_length: int, rng: random.Random,
                      short_seq_prob: float = 0.1, nsp_prob: float = 0.5) -> PairRanges:
    """:func:`~minibert.pretraining_data.create_nsp_examples` on offset arrays; the same pairs as ranges.

    Document $d$ with sentence offsets $o_0 < \\dots < o_n$: the budget is
    $L = $ ``max_seq_length`` $- 3$, the target $t = L$, or $t \\sim U\\{2, \\dots, L\\}$
    with probability ``short_seq_prob``; sentences $i..j$ are collected until
    $o_{j+1} - o_i \\ge t$ or the document ends, split at $k \\sim U\\{1, \\dots, n_c - 1\\}$
    into A = $[o_i, o_{i+k})$ and B = $[o_{i+k}, o_{j+1})$, or (probability
    ``nsp_prob``, always for one sentence) B = sentences of another document
    from a random start until $|B| \\ge t - |A|$, the unused sentences put back;
    then :func:`truncate_range_pair`. Documents without sentences are skipped,
    as the list version skips empty documents.
    """
    if max_seq_length < 5:
        raise ValueError(f"max_seq_length must be at least 5 ([CLS] a [SEP] b [SEP]), got {max_seq_length}.")
    sentence_offsets, document_offsets = np.asarray(sentence_offsets), np.asarray(document_offsets)
    counts = np.diff(document_offsets)
    nonempty = np.flatnonzero(counts > 0).tolist()
    if len(nonempty) < 2:
        raise ValueError(f"NSP needs at least 2 non-empty documents to draw random next sentences from, "
                         f"got {len(nonempty)}.")
    max_num_tokens = max_seq_length - 3
    rows: list[tuple[int, int, int, int, int, int, int]] = []
    for position, doc_index in enumerate(nonempty):
        off = _document_sentences(sentence_offsets, document_offsets, doc_index)
        n = len(off) - 1
        target = max_num_tokens
        if rng.random() < short_seq_prob:
            target = rng.randint(2, max_num_tokens)
        first = 0   # first sentence of the chunk being collected
        i = 0
        while i < n:
            if i == n - 1 or off[i + 1] - off[first] >= target:
                n_chunk = i - first + 1
                a_end = rng.randint(1, n_chunk - 1) if n_chunk >= 2 else 1
                a = [off[first], off[first + a_end]]
                if n_chunk == 1 or rng.random() < nsp_prob:
                    label = 1
                    other = rng.randrange(len(nonempty) - 1)  # uniform over the other documents
                    b_index = nonempty[other + (other >= position)]
                    roff = _document_sentences(sentence_offsets, document_offsets, b_index)
                    start = rng.randrange(len(roff) - 1)
                    need = target - (a[1] - a[0])
                    end = start + 1
                    while roff[end] - roff[start] < need and end < len(roff) - 1:
                        end += 1
                    b = [roff[start], roff[end]]
                    i -= n_chunk - a_end  # put the unused sentences back
                else:
                    label, b_index = 0, doc_index
                    b = [off[first + a_end], off[i + 1]]
                truncate_range_pair(a, b, max_num_tokens, rng)
                rows.append((a[0], a[1], b[0], b[1], label, doc_index, b_index))
                first = i + 1
            i += 1
    return PairRanges.from_lists(rows)


def create_sop_ranges(sentence_offsets, document_offsets, max_seq_length: int, rng: random.Random,
                      short_seq_prob: float = 0.1, swap_prob: float = 0.5) -> PairRanges:
    """:func:`~minibert.pretraining_data.create_sop_examples` on offset arrays; the same pairs as ranges.

    Chunks as in :func:`create_nsp_ranges`; B is always A's continuation and
    with probability ``swap_prob`` the two ranges are exchanged (label 1). A
    one-sentence chunk $[o_i, o_{i+1})$ is cut at $o_i + j$, $j \\sim U\\{1, \\dots, n - 1\\}$
    tokens; a one-token sentence gives no pair.
    """
    if max_seq_length < 5:
        raise ValueError(f"max_seq_length must be at least 5 ([CLS] a [SEP] b [SEP]), got {max_seq_length}.")
    sentence_offsets, document_offsets = np.asarray(sentence_offsets), np.asarray(document_offsets)
    if not (np.diff(document_offsets) > 0).any():
        raise ValueError("sentence-order pairs need at least one non-empty document, got none.")
    max_num_tokens = max_seq_length - 3
    rows: list[tuple[int, int, int, int, int, int, int]] = []
    for doc_index in range(len(document_offsets) - 1):
        if document_offsets[doc_index + 1] == document_offsets[doc_index]:
            continue
        off = _document_sentences(sentence_offsets, document_offsets, doc_index)
        n = len(off) - 1
        target = max_num_tokens
        if rng.random() < short_seq_prob:
            target = rng.randint(2, max_num_tokens)
        first = 0
        for i in range(n):
            if i == n - 1 or off[i + 1] - off[first] >= target:
                n_chunk = i - first + 1
                if n_chunk >= 2:
                    k = rng.randint(1, n_chunk - 1)
                    a, b = [off[first], off[first + k]], [off[first + k], off[i + 1]]
                elif off[i + 1] - off[i] >= 2:
                    cut = off[i] + rng.randint(1, off[i + 1] - off[i] - 1)
                    a, b = [off[i], cut], [cut, off[i + 1]]
                else:
                    first = i + 1
                    continue
                swapped = rng.random() < swap_prob
                if swapped:
                    a, b = b, a
                truncate_range_pair(a, b, max_num_tokens, rng)
                rows.append((a[0], a[1], b[0], b[1], int(swapped), doc_index, doc_index))
                first = i + 1
    return PairRanges.from_lists(rows)


RANGE_OBJECTIVES = {"nsp": create_nsp_ranges, "sop": create_sop_ranges}


class RangePretrainingDataset(PretrainingDataset):
    """A :class:`~minibert.pretraining_data.PretrainingDataset` whose rows are built when a batch is served.

    Holds only the flat ``tokens`` array (a memmap is fine: only the rows of
    a batch are read) and the :class:`PairRanges` (7 int64 per pair). Row $n$ is
    ``[CLS] tokens[a_start:a_end] [SEP] tokens[b_start:b_end] [SEP] [PAD]...``,
    token types 0 then 1, exactly the row the list dataset stores, so
    :meth:`batch` gives identical batches for the same indices and generator.
    """

    def __init__(self, tokens, pairs: PairRanges, tokenizer, seq_len: int, mlm_probability: float = 0.15,
                 whole_word_mask: bool = False):
        if len(pairs) == 0:
            raise ValueError("no examples to build a pretraining dataset from; is the corpus empty?")
        lengths = (pairs.a_end - pairs.a_start) + (pairs.b_end - pairs.b_start) + 3
        if int(lengths.max()) > seq_len:
            row = int(lengths.argmax())
            raise ValueError(f"example {row} has {int(lengths[row])} tokens with [CLS]/[SEP], more than "
                             f"seq_len={seq_len}; create the pairs with max_seq_length <= seq_len.")
        self.tokens, self.pairs, self.seq_len = tokens, pairs, seq_len
        self.mlm_probability, self.whole_word_mask = mlm_probability, whole_word_mask
        self.vocab_size, self.mask_id, self.pad_id = tokenizer.vocab_size, tokenizer.mask_id, tokenizer.pad_id
        self.cls_id, self.sep_id = tokenizer.cls_id, tokenizer.sep_id
        special_ids = sorted(set(tokenizer.special_ids))
        allowed = torch.ones(self.vocab_size, dtype=torch.bool)
        allowed[special_ids] = False
        self.replace_ids = allowed.nonzero().squeeze(1)  # (V - n_special,)
        self.is_special = torch.zeros(self.vocab_size, dtype=torch.bool)
        self.is_special[special_ids] = True  # (V,)
        self.word_start_table = None
        if whole_word_mask:
            self.word_start_table = torch.tensor([bool(tokenizer.is_word_start(i)) for i in range(self.vocab_size)])
        self.lengths = torch.from_numpy(lengths)  # (N,)
        self.nsp_labels = torch.from_numpy(pairs.labels)  # (N,)
        self.word_starts = None

    def __len__(self) -> int:
        return len(self.pairs)

    def _rows(self, indices: torch.Tensor) -> tuple:
        idx = indices.numpy()
        ids = np.full((len(idx), self.seq_len), self.pad_id, dtype=np.int64)
        types = np.zeros((len(idx), self.seq_len), dtype=np.int64)
        p = self.pairs
        for row, n in enumerate(idx):
            a0, a1, b0, b1 = int(p.a_start[n]), int(p.a_end[n]), int(p.b_start[n]), int(p.b_end[n])
            la, lb = a1 - a0, b1 - b0
            ids[row, 0] = self.cls_id
            ids[row, 1:1 + la] = self.tokens[a0:a1]
            ids[row, 1 + la] = self.sep_id
            ids[row, 2 + la:2 + la + lb] = self.tokens[b0:b1]
            ids[row, 2 + la + lb] = self.sep_id
            types[row, 2 + la:3 + la + lb] = 1
        ids_t = torch.from_numpy(ids)  # (B, T)
        starts = self.word_start_table[ids_t] if self.word_start_table is not None else None
        return (ids_t, self.is_special[ids_t], starts, self.lengths[indices], torch.from_numpy(types),
                self.nsp_labels[indices])


class RangeEpochPairs:
    """:class:`~minibert.pretraining_data.EpochPairs` on a token cache: pairs cut as ranges every epoch.

    ``cache`` has ``tokens``, ``sentence_offsets``, ``document_offsets``
    (:class:`minibert.token_cache.TokenCache`). Epoch $e$ cuts its pairs with
    ``random.Random(pair_seed_for_epoch(seed, e))`` (epoch 0 always when not
    ``dynamic``), exactly the pairs, and so the batches, of ``EpochPairs``
    on the same documents.

    With ``store`` (a folder, e.g. the token cache's), the pairs of epoch 0
    and of the latest epoch cut are kept there as ``.npz`` files and read back
    instead of being cut again: cutting is a Python loop over the sentences
    (seconds per 10 M tokens), reading them back is instant, so a second run
    or a resume starts at once. A damaged file is cut again.
    """

    def __init__(self, cache, tokenizer, seq_len: int, seed: int, mlm_probability: float = 0.15,
                 whole_word_mask: bool = False, objective: str = "nsp", dynamic: bool = True,
                 short_seq_prob: float = 0.1, nsp_prob: float = 0.5, store=None):
        if objective not in RANGE_OBJECTIVES:
            raise ValueError(f"unknown pair objective {objective!r}; choose one of {', '.join(RANGE_OBJECTIVES)}.")
        self._make_pairs = RANGE_OBJECTIVES[objective]
        self.cache, self.tokenizer, self.seq_len, self.seed = cache, tokenizer, seq_len, seed
        self.mlm_probability, self.whole_word_mask, self.dynamic = mlm_probability, whole_word_mask, dynamic
        self.short_seq_prob, self.nsp_prob = short_seq_prob, nsp_prob
        self.objective, self.store = objective, Path(store) if store is not None else None
        self._cached: tuple[int, RangePretrainingDataset] | None = None

    def _stored(self, epoch: int) -> Path:
        return self.store / (f"pairs_{self.objective}_len{self.seq_len}_seed{self.seed}_short{self.short_seq_prob:g}_"
                             f"p{self.nsp_prob:g}_epoch{epoch}.npz")

    def ranges(self, epoch: int) -> PairRanges:
        """The pairs of epoch ``epoch`` (those of epoch 0 when not dynamic), as ranges."""
        epoch = epoch if self.dynamic else 0
        path = self._stored(epoch) if self.store is not None else None
        if path is not None and path.is_file():
            try:
                return PairRanges.load(path)
            except ValueError:
                pass   # damaged: cut again below and overwrite it
        rng = random.Random(pair_seed_for_epoch(self.seed, epoch))
        pairs = self._make_pairs(self.cache.sentence_offsets, self.cache.document_offsets, self.seq_len, rng,
                                 self.short_seq_prob, self.nsp_prob)
        if path is not None:
            pairs.save(path)
            for old in self.store.glob(self._stored(0).name.replace("_epoch0.npz", "_epoch*.npz")):
                if old.name not in (path.name, self._stored(0).name):
                    old.unlink(missing_ok=True)   # keep epoch 0 and the latest epoch only
        return pairs

    def dataset(self, epoch: int) -> RangePretrainingDataset:
        """The maskable dataset of epoch ``epoch``'s pairs (rows built at batch time)."""
        key = epoch if self.dynamic else 0
        if self._cached is None or self._cached[0] != key:
            data = RangePretrainingDataset(self.cache.tokens, self.ranges(key), self.tokenizer, self.seq_len,
                                           self.mlm_probability, self.whole_word_mask)
            self._cached = (key, data)
        return self._cached[1]
