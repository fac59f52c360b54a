"""BERT's pretraining data: next-sentence pairs, 80/10/10 masking, fast batches.

Two ideas, as in Devlin et al. (2019) and their reference data generator:

1. **NSP pairs** (:func:`create_nsp_examples`). Walk each document, collect
   consecutive sentences until a target length is reached, cut them at a
   random sentence boundary into segment A and segment B. Half of the time B
   is replaced by sentences from a *different* document (label 1, "random");
   the sentences that were not used are put back for the next pair. Pairs
   longer than the budget are trimmed, the longer side first, at a random end.

2. **Masking** (:func:`mask_tokens`). Select 15% of the non-special tokens of
   each sequence; of those, 80% become ``[MASK]``, 10% a random non-special
   token, 10% stay unchanged. The model must predict the original token at
   every selected position (label), and nowhere else (label ``-100``).
   Masking is *dynamic*: :func:`iterate_batches` draws a fresh mask every time
   an example is served, so epoch 2 sees different masks from epoch 1.

:class:`PretrainingDataset` turns pairs into padded id tensors once;
:func:`iterate_batches` then only gathers rows and masks them in torch, which
is what makes the pipeline much faster than the model that consumes it.

Pairs are *dynamic* too (:class:`EpochPairs`): every epoch cuts the documents
into new pairs with a generator seeded by (seed, epoch) — new split points,
new random partners — the reference generator's ``dupe_factor`` done on the
fly, still a pure function of (seed, epoch) so a resumed run sees the same data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from minibert.model import IGNORE_INDEX  # label of positions the MLM loss ignores (-100)


# --------------------------------------------------------------------------- NSP pairs

@dataclass
class NspExample:
    """One sentence pair: token ids of A and B, the NSP label, and where each side came from.

    ``is_random_next`` is True when B was drawn from another document (NSP
    label 1), False when B really follows A (label 0). For sentence-order
    pairs (:func:`create_sop_examples`) it is True when A and B were swapped.
    ``document_a`` and ``document_b`` are indices into the ``documents`` list.
    """

    tokens_a: list[int]
    tokens_b: list[int]
    is_random_next: bool
    document_a: int = -1
    document_b: int = -1

    @property
    def nsp_label(self) -> int:
        """0 = B follows A, 1 = B is random or, for SOP, swapped (transformers' convention)."""
        return int(self.is_random_next)


def truncate_seq_pair(tokens_a: list[int], tokens_b: list[int], max_num_tokens: int, rng: random.Random) -> None:
    """Trim A and B in place until $|A| + |B| \\le$ ``max_num_tokens``.

    Each step removes one token from the *longer* side (B on a tie), from its
    front or its back with probability 1/2 each, so that neither side is
    always cut at the same end (the reference generator's rule).
    """
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if len(longer) <= 1:
            raise ValueError(f"cannot fit A and B into {max_num_tokens} tokens with one token left on each side.")
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def create_nsp_examples(documents: Sequence[Sequence[Sequence[int]]], max_seq_length: int, rng: random.Random,
                        short_seq_prob: float = 0.1, nsp_prob: float = 0.5) -> list[NspExample]:
    """Cut documents of tokenised sentences into NSP sentence pairs, as BERT's reference generator does.

    ``documents[d][s]`` is the list of token ids of sentence ``s`` of document
    ``d`` (no special tokens). For each document:

    * the budget is $L = $ ``max_seq_length`` $- 3$ (room for ``[CLS] A [SEP] B [SEP]``);
      with probability ``short_seq_prob`` the target length is a random
      $t \\sim U\\{2, \\dots, L\\}$ instead of $L$ (the model must also see short inputs);
    * consecutive sentences are collected until their length reaches $t$ or
      the document ends, then split at a random sentence boundary
      $k \\sim U\\{1, \\dots, n-1\\}$ into A = sentences $[0, k)$ and B = $[k, n)$;
    * with probability ``nsp_prob`` (always when only one sentence was
      collected) B is replaced by consecutive sentences from a random start in
      a *different* document, filling up to $t - |A|$ tokens; the collected
      sentences after $k$ are put back and start the next pair;
    * the pair is trimmed to $L$ tokens by :func:`truncate_seq_pair`.

    Unlike the reference code, which gives up after 10 tries to find another
    document, the random document is drawn uniformly among the *other*
    documents, so a negative B never comes from A's document. Empty sentences
    are ignored. Returns the pairs in document order (shuffle them later).
    """
    if max_seq_length < 5:
        raise ValueError(f"max_seq_length must be at least 5 ([CLS] a [SEP] b [SEP]), got {max_seq_length}.")
    docs = [[list(s) for s in doc if len(s) > 0] for doc in documents]
    nonempty = [i for i, d in enumerate(docs) if d]
    if len(nonempty) < 2:
        raise ValueError(f"NSP needs at least 2 non-empty documents to draw random next sentences from, "
                         f"got {len(nonempty)}.")
    max_num_tokens = max_seq_length - 3
    examples: list[NspExample] = []
    for position, doc_index in enumerate(nonempty):
        document = docs[doc_index]
        target = max_num_tokens
        if rng.random() < short_seq_prob:
            target = rng.randint(2, max_num_tokens)
        chunk: list[list[int]] = []
        length = 0
        i = 0
        while i < len(document):
            chunk.append(document[i])
            length += len(document[i])
            if i == len(document) - 1 or length >= target:
                a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
                tokens_a = [t for s in chunk[:a_end] for t in s]
                if len(chunk) == 1 or rng.random() < nsp_prob:
                    is_random = True
                    other = rng.randrange(len(nonempty) - 1)  # uniform over the other documents
                    other_index = nonempty[other + (other >= position)]
                    random_document = docs[other_index]
                    tokens_b: list[int] = []
                    for sentence in random_document[rng.randrange(len(random_document)):]:
                        tokens_b.extend(sentence)
                        if len(tokens_b) >= target - len(tokens_a):
                            break
                    i -= len(chunk) - a_end  # put the unused sentences back
                    b_index = other_index
                else:
                    is_random = False
                    tokens_b = [t for s in chunk[a_end:] for t in s]
                    b_index = doc_index
                truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
                examples.append(NspExample(tokens_a, tokens_b, is_random, doc_index, b_index))
                chunk, length = [], 0
            i += 1
    return examples


def create_sop_examples(documents: Sequence[Sequence[Sequence[int]]], max_seq_length: int, rng: random.Random,
                        short_seq_prob: float = 0.1, swap_prob: float = 0.5) -> list[NspExample]:
    r"""Cut documents into sentence-ORDER pairs (ALBERT, Lan et al. 2020): B is always A's continuation.

    Chunks are collected exactly as in :func:`create_nsp_examples` (target
    length $t$, split at a random sentence boundary $k$), but B is never taken
    from another document: with probability ``swap_prob`` the two segments are
    exchanged, giving ``[CLS] B [SEP] A [SEP]`` and label 1 ("swapped");
    otherwise label 0. A chunk of a single sentence (which NSP would pair with
    a random B) is cut inside the sentence at a random token boundary
    $j \sim U\{1, \dots, n-1\}$; a one-token sentence gives no pair. Both
    labels therefore come from the *same* text, so the topic cannot tell them
    apart — only the order can. ``document_a == document_b`` always.
    """
    if max_seq_length < 5:
        raise ValueError(f"max_seq_length must be at least 5 ([CLS] a [SEP] b [SEP]), got {max_seq_length}.")
    docs = [[list(s) for s in doc if len(s) > 0] for doc in documents]
    if not any(docs):
        raise ValueError("sentence-order pairs need at least one non-empty document, got none.")
    max_num_tokens = max_seq_length - 3
    examples: list[NspExample] = []
    for doc_index, document in enumerate(docs):
        if not document:
            continue
        target = max_num_tokens
        if rng.random() < short_seq_prob:
            target = rng.randint(2, max_num_tokens)
        chunk: list[list[int]] = []
        length = 0
        for i, sentence in enumerate(document):
            chunk.append(sentence)
            length += len(sentence)
            if i == len(document) - 1 or length >= target:
                if len(chunk) >= 2:
                    a_end = rng.randint(1, len(chunk) - 1)
                    tokens_a = [t for s in chunk[:a_end] for t in s]
                    tokens_b = [t for s in chunk[a_end:] for t in s]
                elif len(chunk[0]) >= 2:
                    cut = rng.randint(1, len(chunk[0]) - 1)
                    tokens_a, tokens_b = list(chunk[0][:cut]), list(chunk[0][cut:])
                else:
                    chunk, length = [], 0
                    continue
                swapped = rng.random() < swap_prob
                if swapped:
                    tokens_a, tokens_b = tokens_b, tokens_a
                truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
                examples.append(NspExample(tokens_a, tokens_b, swapped, doc_index, doc_index))
                chunk, length = [], 0
    return examples


PAIR_OBJECTIVES = {"nsp": create_nsp_examples, "sop": create_sop_examples}


# --------------------------------------------------------------------------- masking

def mask_tokens(input_ids: torch.Tensor, special_mask: torch.Tensor, vocab_size: int, mask_id: int,
                generator: torch.Generator | None, mlm_probability: float = 0.15,
                replace_ids: torch.Tensor | None = None,
                word_starts: torch.Tensor | None = None, row_offset: int = 0,
                total_rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masked-language-model corruption of a batch; returns ``(masked_input_ids, labels)``.

    ``input_ids`` (B, T) long; ``special_mask`` (B, T) bool, True at
    ``[CLS] [SEP] [PAD]`` and any other position that must never be chosen.
    In row $b$ with $n_b$ selectable tokens exactly
    $k_b = \\max(1, \\mathrm{round}(p \\, n_b))$ positions are chosen uniformly
    ($p$ = ``mlm_probability``; none when $n_b = 0$). Each chosen position gets,
    independently, with probability 0.8 ``mask_id``, 0.1 a token drawn
    uniformly from ``replace_ids``, 0.1 its own token. ``labels`` (B, T) hold
    the original id at chosen positions and ``-100`` elsewhere.

    ``replace_ids`` (1-D long) are the ids random replacements come from;
    pass the tokenizer's non-special ids. When None, every id in
    ``[0, vocab_size)`` except ``mask_id`` and the ids that sit at special
    positions of ``input_ids`` is used.

    Whole-word masking: with ``word_starts`` (B, T) bool (True where a token
    starts a word), $k_b = \\max(1, \\mathrm{round}(p \\, w_b))$ of the $w_b$ words are
    chosen and all their tokens are selected (each then gets its own 80/10/10 draw).

    Deterministic given ``generator``'s state. Rows are independent given
    their random draws, so a DDP rank can mask only its own rows
    ``[row_offset, row_offset + B)`` of a global batch of ``total_rows`` rows:
    the draws are made for all ``total_rows`` rows (cheap) and sliced, which
    gives exactly the rows that masking the whole global batch gives
    (with ``replace_ids`` given; the default set depends on the whole batch).
    """
    if input_ids.dim() != 2 or special_mask.shape != input_ids.shape:
        raise ValueError(f"input_ids and special_mask must both be (B, T), got {tuple(input_ids.shape)} "
                         f"and {tuple(special_mask.shape)}.")
    if not 0.0 < mlm_probability < 1.0:
        raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}.")
    special = special_mask.bool()
    B, T = input_ids.shape
    device = input_ids.device

    if word_starts is None:
        unit = torch.arange(T, device=device).expand(B, T)  # (B, T) each token is its own unit
        unit_valid = ~special  # (B, T) selectable units
    else:
        if word_starts.shape != input_ids.shape:
            raise ValueError(f"word_starts must be (B, T) like input_ids, got {tuple(word_starts.shape)}.")
        prev_special = torch.ones_like(special)
        prev_special[:, 1:] = special[:, :-1]
        starts = word_starts.bool() | special | prev_special  # (B, T) a new unit begins here
        unit = starts.long().cumsum(1) - 1  # (B, T) index of the word each token belongs to
        unit_valid = torch.zeros_like(special)
        unit_valid.scatter_(1, unit, ~special)  # word w is selectable when its tokens are not special
    n_units = unit_valid.sum(1, keepdim=True)  # (B, 1)
    k = (n_units.double() * mlm_probability).round().long().clamp(min=1)
    k = torch.minimum(k, n_units)  # (B, 1) how many units to choose per row

    total = B if total_rows is None else total_rows
    rows = slice(row_offset, row_offset + B)
    if total < row_offset + B:
        raise ValueError(f"rows [{row_offset}, {row_offset + B}) do not fit a global batch of {total} rows.")
    scores = torch.rand(total, T, generator=generator, device=device)[rows]
    scores = scores.masked_fill(~unit_valid, 2.0)  # invalid units sort last
    kth = scores.sort(1).values.gather(1, (k - 1).clamp(min=0))  # (B, 1) k-th smallest score per row
    chosen_unit = (scores <= kth) & (k > 0) & unit_valid  # (B, T) the k lowest-scoring units
    selected = torch.gather(chosen_unit, 1, unit) & ~special  # (B, T) over tokens

    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    u = torch.rand(total, T, generator=generator, device=device)[rows]
    to_mask = selected & (u < 0.8)
    to_random = selected & (u >= 0.8) & (u < 0.9)

    if replace_ids is None:
        allowed = torch.ones(vocab_size, dtype=torch.bool, device=device)
        allowed[mask_id] = False
        allowed[input_ids[special]] = False
        replace_ids = allowed.nonzero().squeeze(1)
    replace_ids = torch.as_tensor(replace_ids, device=device)
    if replace_ids.numel() == 0:
        raise ValueError("replace_ids is empty; random replacements need at least one non-special id.")
    random_tokens = replace_ids[torch.randint(replace_ids.numel(), (total, T), generator=generator,
                                              device=device)[rows]]

    masked = input_ids.clone()
    masked[to_mask] = mask_id
    masked[to_random] = random_tokens[to_random]
    return masked, labels


# --------------------------------------------------------------------------- dataset and batches

class PretrainingDataset:
    """NSP pairs as padded id tensors, ready to be masked and batched.

    Each example becomes ``[CLS] A [SEP] B [SEP] [PAD]...`` of length
    ``seq_len`` with ``token_type_ids`` 0 on ``[CLS] A [SEP]`` and 1 on
    ``B [SEP]``. Tensors (N = number of examples):
    ``input_ids`` (N, seq_len), ``token_type_ids`` (N, seq_len),
    ``lengths`` (N,), ``nsp_labels`` (N,), ``special_mask`` (N, seq_len) and,
    with ``whole_word_mask``, ``word_starts`` (N, seq_len) from
    ``tokenizer.is_word_start``.

    Ids and token types are stored as int32 (half the memory of int64 for
    WikiText-103's million pairs) and served as int64.

    ``tokenizer`` needs ``vocab_size``, ``pad_id``, ``cls_id``, ``sep_id``,
    ``mask_id``, ``special_ids`` (and ``is_word_start`` for whole words).
    """

    def __init__(self, examples: Sequence[NspExample], tokenizer, seq_len: int, mlm_probability: float = 0.15,
                 whole_word_mask: bool = False):
        if not examples:
            raise ValueError("no examples to build a pretraining dataset from; is the corpus empty?")
        self.seq_len = seq_len
        self.mlm_probability = mlm_probability
        self.whole_word_mask = whole_word_mask
        self.vocab_size = tokenizer.vocab_size
        self.mask_id = tokenizer.mask_id
        self.pad_id = tokenizer.pad_id
        special_ids = sorted(set(tokenizer.special_ids))
        allowed = torch.ones(self.vocab_size, dtype=torch.bool)
        allowed[special_ids] = False
        self.replace_ids = allowed.nonzero().squeeze(1)  # (V - n_special,) ids random replacements use

        n = len(examples)
        ids = torch.full((n, seq_len), tokenizer.pad_id, dtype=torch.int32)
        types = torch.zeros((n, seq_len), dtype=torch.int32)
        lengths = torch.zeros(n, dtype=torch.long)
        for row, ex in enumerate(examples):
            tokens = [tokenizer.cls_id, *ex.tokens_a, tokenizer.sep_id, *ex.tokens_b, tokenizer.sep_id]
            if len(tokens) > seq_len:
                raise ValueError(f"example {row} has {len(tokens)} tokens with [CLS]/[SEP], more than "
                                 f"seq_len={seq_len}; create the examples with max_seq_length <= seq_len.")
            ids[row, :len(tokens)] = torch.tensor(tokens, dtype=torch.int32)
            types[row, len(ex.tokens_a) + 2:len(tokens)] = 1
            lengths[row] = len(tokens)
        self.input_ids = ids  # (N, T)
        self.token_type_ids = types  # (N, T)
        self.lengths = lengths  # (N,)
        self.nsp_labels = torch.tensor([ex.nsp_label for ex in examples], dtype=torch.long)  # (N,)
        is_special = torch.zeros(max(self.vocab_size, int(ids.max()) + 1), dtype=torch.bool)
        is_special[special_ids] = True
        self.special_mask = is_special[ids]  # (N, T) True at [CLS] [SEP] [PAD] and other specials
        self.word_starts = None
        if whole_word_mask:
            table = torch.tensor([bool(tokenizer.is_word_start(i)) for i in range(self.vocab_size)])
            self.word_starts = table[ids]  # (N, T)

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def batch(self, indices: torch.Tensor, generator: torch.Generator | None,
              rows: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
        """The masked batch of the examples at ``indices`` (1-D long), with a fresh mask from ``generator``.

        Returns LongTensors ``input_ids, token_type_ids, attention_mask,
        mlm_labels`` (B, seq_len) and ``nsp_labels`` (B,). With ``rows=(lo, hi)``
        only rows ``lo:hi`` of the batch are built (one DDP rank's share), masked
        exactly as in the whole batch (see :func:`mask_tokens`).
        """
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny ops: waking a thread pool costs more than the work (10x on a busy CPU)
        try:
            lo, hi = rows if rows is not None else (0, indices.numel())
            return self._batch(indices[lo:hi], generator, lo, indices.numel())
        finally:
            torch.set_num_threads(threads)

    def _rows(self, indices: torch.Tensor) -> tuple:
        """``(ids, special_mask, word_starts or None, lengths, token_type_ids, nsp_labels)`` of ``indices``."""
        starts = self.word_starts[indices] if self.word_starts is not None else None
        return (self.input_ids[indices].long(), self.special_mask[indices], starts, self.lengths[indices],
                self.token_type_ids[indices].long(), self.nsp_labels[indices])

    def _batch(self, indices: torch.Tensor, generator: torch.Generator | None, row_offset: int,
               total_rows: int) -> dict[str, torch.Tensor]:
        ids, special, starts, lengths, types, nsp_labels = self._rows(indices)  # (B, T) ... (B,)
        masked, labels = mask_tokens(ids, special, self.vocab_size, self.mask_id, generator,
                                     self.mlm_probability, self.replace_ids, starts, row_offset, total_rows)
        positions = torch.arange(self.seq_len)
        attention_mask = (positions[None, :] < lengths[:, None]).long()  # (B, T) 1 = real token
        return dict(input_ids=masked, token_type_ids=types, attention_mask=attention_mask,
                    mlm_labels=labels, nsp_labels=nsp_labels)


def tokenize_documents(documents: Sequence[Sequence[str]], tokenizer) -> list[list[list[int]]]:
    """Documents of sentence strings -> documents of token-id lists, via ``tokenizer.text_to_ids``.

    Sentences that give no token, and documents left empty, are dropped.
    """
    out = []
    for doc in documents:
        ids = [s for s in (tokenizer.text_to_ids(sentence) for sentence in doc) if s]
        if ids:
            out.append(ids)
    return out


def build_examples(documents: Sequence[Sequence[str]], tokenizer, max_seq_length: int, seed: int = 0,
                   short_seq_prob: float = 0.1, nsp_prob: float = 0.5, objective: str = "nsp") -> list[NspExample]:
    """Tokenise documents of sentence strings (:func:`tokenize_documents`) and cut them into pairs.

    ``documents`` as returned by :func:`minibert.wikitext.documents`; the pairs
    depend only on ``seed``. ``objective`` is ``"nsp"`` (:func:`create_nsp_examples`,
    ``nsp_prob`` = share of random B) or ``"sop"`` (:func:`create_sop_examples`,
    ``nsp_prob`` = share of swapped pairs).
    """
    return _pair_function(objective)(tokenize_documents(documents, tokenizer), max_seq_length,
                                     random.Random(seed), short_seq_prob, nsp_prob)


def _pair_function(objective: str):
    if objective not in PAIR_OBJECTIVES:
        raise ValueError(f"unknown pair objective {objective!r}; choose one of {', '.join(PAIR_OBJECTIVES)}.")
    return PAIR_OBJECTIVES[objective]


def pair_seed_for_epoch(seed: int, epoch: int) -> int:
    """The seed of the ``random.Random`` that cuts epoch ``epoch``'s pairs: a function of (seed, epoch) only."""
    return seed * 1_000_003 + epoch


class EpochPairs:
    """Training pairs that are cut afresh from the documents every epoch (dynamic pairs).

    ``documents`` are token-id documents (:func:`tokenize_documents`).
    :meth:`dataset` ``(epoch)`` returns the :class:`PretrainingDataset` of the
    pairs cut with ``random.Random(pair_seed_for_epoch(seed, epoch))``: new
    split points, new targets, new random partners each epoch, so over $E$
    epochs the model sees up to $E$ times as many distinct pairs (and
    negatives) as with pairs cut once. With ``dynamic=False`` every epoch
    reuses the pairs of epoch 0 (the static pairs of the reference generator
    with ``dupe_factor = 1``). The last dataset is cached; the pair count may
    differ slightly from one epoch to the next.
    """

    def __init__(self, documents: Sequence[Sequence[Sequence[int]]], tokenizer, seq_len: int, seed: int,
                 mlm_probability: float = 0.15, whole_word_mask: bool = False, objective: str = "nsp",
                 dynamic: bool = True, short_seq_prob: float = 0.1, nsp_prob: float = 0.5):
        self._make_pairs = _pair_function(objective)
        self.documents, self.tokenizer, self.seq_len, self.seed = documents, tokenizer, seq_len, seed
        self.mlm_probability, self.whole_word_mask, self.dynamic = mlm_probability, whole_word_mask, dynamic
        self.short_seq_prob, self.nsp_prob = short_seq_prob, nsp_prob
        self._cached: tuple[int, PretrainingDataset] | None = None

    def examples(self, epoch: int) -> list[NspExample]:
        """The pairs of epoch ``epoch`` (those of epoch 0 when not dynamic)."""
        epoch = epoch if self.dynamic else 0
        rng = random.Random(pair_seed_for_epoch(self.seed, epoch))
        return self._make_pairs(self.documents, self.seq_len, rng, self.short_seq_prob, self.nsp_prob)

    def dataset(self, epoch: int) -> PretrainingDataset:
        """The padded, maskable dataset of epoch ``epoch``'s pairs."""
        key = epoch if self.dynamic else 0
        if self._cached is None or self._cached[0] != key:
            data = PretrainingDataset(self.examples(key), self.tokenizer, self.seq_len, self.mlm_probability,
                                      self.whole_word_mask)
            self._cached = (key, data)
        return self._cached[1]


def generator_for_epoch(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator whose state depends only on ``(seed, epoch)``: the stream of one epoch."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def batches_per_epoch(dataset: PretrainingDataset, batch_size: int, drop_last: bool = True) -> int:
    """How many global batches :func:`iterate_batches` yields in one pass."""
    n = len(dataset)
    return n // batch_size if drop_last else -(-n // batch_size)


def iterate_batches(dataset: PretrainingDataset, batch_size: int, generator: torch.Generator, rank: int = 0,
                    world_size: int = 1, shuffle: bool = True, drop_last: bool = True,
                    start_batch: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """One pass over ``dataset`` in masked batches; deterministic given ``generator``'s state.

    ``batch_size`` is the GLOBAL batch (all ranks together); rank ``r`` of
    ``world_size`` yields rows ``[r B / W, (r+1) B / W)`` of every global batch,
    so W processes x B/W rows see exactly the examples *and masks* that one
    process x B rows sees (each rank builds and masks only its own rows, with
    the random draws of the whole global batch: exact, see :func:`mask_tokens`).

    The generator is consumed when this function is *called* (not lazily):
    one permutation and one seed; batch $j$ is masked with a generator seeded
    by (seed, $j$). So a resumed run recreates the generator of its epoch
    (e.g. :func:`generator_for_epoch`) and passes ``start_batch=k`` to skip the
    first k batches without computing them; the stream that follows is
    identical to the uninterrupted one.
    """
    n = len(dataset)
    if batch_size < 1 or batch_size % world_size != 0:
        raise ValueError(f"the global batch_size ({batch_size}) must be a positive multiple of "
                         f"world_size ({world_size}).")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}.")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    base_seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    total = batches_per_epoch(dataset, batch_size, drop_last)
    if total == 0:
        raise ValueError(f"the dataset has {n} examples, fewer than one batch of {batch_size}; "
                         f"use a smaller batch or a larger corpus.")

    def stream() -> Iterator[dict[str, torch.Tensor]]:
        for j in range(start_batch, total):
            indices = order[j * batch_size:(j + 1) * batch_size]  # (B,) global batch
            g = torch.Generator().manual_seed(base_seed + j)
            m = indices.numel()
            yield dataset.batch(indices, g, rows=(rank * m // world_size, (rank + 1) * m // world_size))

    return stream()
