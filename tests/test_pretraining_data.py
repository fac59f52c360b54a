"""BERT's pretraining data: NSP sentence pairs, 80/10/10 masking, batches.

Formula tests (they take ``lib``, so they also run on your exercise with
``pytest --exercises``) check the generator and the masking rules; the other
tests check the dataset and the batch stream (determinism, resume, DDP split).

Statistical tests use fixed seeds and a tolerance of 5 binomial standard
errors, $5\\sqrt{p(1-p)/n}$; a correct implementation fails one of them with
probability below $10^{-6}$.
"""

from __future__ import annotations

import math
import random

import pytest
import torch

from minibert.pretraining_data import (IGNORE_INDEX, EpochPairs, NspExample, PretrainingDataset, batches_per_epoch,
                                       build_examples, create_sop_examples, generator_for_epoch, iterate_batches)

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIALS = {PAD, UNK, CLS, SEP, MASK}


class FakeTokenizer:
    """The few attributes the data pipeline needs: ids 0-4 are specials, 5.. are words."""

    def __init__(self, vocab_size=200):
        self.vocab_size = vocab_size
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = PAD, UNK, CLS, SEP, MASK
        self.special_ids = set(SPECIALS)

    def is_word_start(self, token_id):
        return token_id % 4 != 0  # ids divisible by 4 continue the previous word ("##" pieces)

    def text_to_ids(self, text):
        return [5 + (sum(map(ord, w)) % (self.vocab_size - 5)) for w in text.split()]


def binomial_tolerance(p, n, k=5.0):
    return k * math.sqrt(p * (1 - p) / n)


def random_batch(seed=0, B=64, T=64, vocab_size=1000):
    """Ids of words with [CLS] ... [SEP] ... [SEP] and right padding of random length."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (B, T), generator=g)
    lengths = torch.randint(8, T + 1, (B,), generator=g)
    ids[:, 0] = CLS
    ids[torch.arange(B), lengths - 1] = SEP
    ids[:, T // 3] = SEP
    ids[torch.arange(T)[None, :] >= lengths[:, None]] = PAD
    special = (ids == CLS) | (ids == SEP) | (ids == PAD)
    return ids, special


def positional_documents(n_docs, sentences_per_doc, sentence_len, seed=0):
    """Documents whose token ids encode where they come from: id = 100000 * doc + position."""
    rng = random.Random(seed)
    docs = []
    for d in range(n_docs):
        pos, doc = 0, []
        for _ in range(sentences_per_doc if isinstance(sentences_per_doc, int) else rng.randint(*sentences_per_doc)):
            n = sentence_len if isinstance(sentence_len, int) else rng.randint(*sentence_len)
            doc.append([100000 * d + pos + i for i in range(n)])
            pos += n
        docs.append(doc)
    return docs


# --------------------------------------------------------------------------- masking (formula tests)

def test_exactly_15_percent_of_non_special_tokens_are_selected(lib):
    """Each row selects max(1, round(0.15 n)) of its n non-special tokens; overall 15% of them."""
    ids, special = random_batch(seed=1)
    _, labels = lib.mask_tokens(ids, special, 1000, MASK, torch.Generator().manual_seed(0))
    selected = labels != IGNORE_INDEX
    n = (~special).sum(1)
    expected = (n.double() * 0.15).round().long().clamp(min=1)
    assert torch.equal(selected.sum(1), expected), f"per-row counts {selected.sum(1).tolist()} vs {expected.tolist()}"
    frac = selected.sum().item() / n.sum().item()
    assert abs(frac - 0.15) <= 0.01, f"selected fraction {frac:.4f}, expected 0.15 +- 0.01 (rounding only)"


def test_selected_tokens_become_mask_random_or_unchanged_80_10_10(lib):
    """Of the selected tokens 80% become [MASK], 10% a random token, 10% stay (5 binomial SE)."""
    ids, special = random_batch(seed=2, B=512, T=128, vocab_size=30000)
    masked, labels = lib.mask_tokens(ids, special, 30000, MASK, torch.Generator().manual_seed(1))
    selected = labels != IGNORE_INDEX
    n = selected.sum().item()
    is_mask = (masked == MASK) & selected
    unchanged = (masked == ids) & selected
    is_random = selected & ~is_mask & ~unchanged
    # a random replacement equals the original with probability 1/(V - 5): counted as "unchanged"
    p_same = 0.1 / (30000 - 5)
    for name, count, p in [("[MASK]", is_mask.sum().item(), 0.8), ("random", is_random.sum().item(), 0.1 - p_same),
                           ("unchanged", unchanged.sum().item(), 0.1 + p_same)]:
        tol = binomial_tolerance(p, n)
        assert abs(count / n - p) <= tol, f"{name}: {count / n:.4f} of {n} selected, expected {p:.4f} +- {tol:.4f}"


def test_labels_hold_the_original_token_at_selected_positions_and_minus_100_elsewhere(lib):
    """labels == input_ids where selected, -100 elsewhere; unselected tokens are never changed."""
    ids, special = random_batch(seed=3)
    masked, labels = lib.mask_tokens(ids, special, 1000, MASK, torch.Generator().manual_seed(2))
    selected = labels != IGNORE_INDEX
    assert selected.any(), "nothing was selected"
    assert torch.equal(labels[selected], ids[selected]), "labels at selected positions must be the original ids"
    changed_outside = (masked != ids) & ~selected
    assert not changed_outside.any(), f"{changed_outside.sum().item()} unselected tokens were changed"


def test_special_tokens_are_never_masked_nor_used_as_replacements(lib):
    """[CLS]/[SEP]/[PAD] positions are never selected; random replacements come only from replace_ids."""
    ids, special = random_batch(seed=4, B=256, T=64, vocab_size=50)
    replace_ids = torch.arange(5, 50)
    masked, labels = lib.mask_tokens(ids, special, 50, MASK, torch.Generator().manual_seed(3),
                                     replace_ids=replace_ids)
    assert not (labels != IGNORE_INDEX)[special].any(), "a special position was selected"
    assert torch.equal(masked[special], ids[special]), "a special token was changed"
    selected = labels != IGNORE_INDEX
    replaced = selected & (masked != ids) & (masked != MASK)
    bad = replaced & (masked < 5)
    assert replaced.sum() > 100, f"too few random replacements to check: {replaced.sum().item()}"
    assert not bad.any(), f"{bad.sum().item()} replacements are special ids: {masked[bad][:10].tolist()}"


def test_default_replacements_avoid_the_special_ids_of_the_batch(lib):
    """Without replace_ids, replacements avoid mask_id and every id found at special positions."""
    ids, special = random_batch(seed=5, B=256, T=64, vocab_size=8)  # words are only ids 5, 6, 7
    masked, labels = lib.mask_tokens(ids, special, 8, MASK, torch.Generator().manual_seed(4))
    selected = labels != IGNORE_INDEX
    assert selected.sum() > 0
    out = set(masked[selected & (masked != MASK) & (masked != ids)].tolist())
    assert out, "no random replacement happened"
    # [UNK] (1) never appears in this batch, so by the documented default it may be drawn
    assert not out & {PAD, CLS, SEP, MASK}, f"replacement ids {sorted(out)} include the batch's specials"


def test_masking_is_deterministic_given_the_generator_and_fresh_for_a_new_draw(lib):
    """Same generator state -> same mask; the next draw from the generator gives another mask."""
    ids, special = random_batch(seed=6)
    g = torch.Generator().manual_seed(7)
    a = lib.mask_tokens(ids, special, 1000, MASK, torch.Generator().manual_seed(7))
    b = lib.mask_tokens(ids, special, 1000, MASK, g)
    c = lib.mask_tokens(ids, special, 1000, MASK, g)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), "same seed gave different masks"
    overlap = ((b[1] != IGNORE_INDEX) & (c[1] != IGNORE_INDEX)).sum().item() / (b[1] != IGNORE_INDEX).sum().item()
    assert overlap < 0.5, f"two consecutive draws select {overlap:.2f} of the same positions (expected ~0.15)"


def test_whole_word_masking_selects_all_pieces_of_a_word_or_none(lib):
    """With word_starts, a word's pieces are selected together, and about 15% of the words are chosen."""
    ids, special = random_batch(seed=8, B=128, T=96)
    g = torch.Generator().manual_seed(9)
    word_starts = torch.rand(ids.shape, generator=g) < 0.6
    _, labels = lib.mask_tokens(ids, special, 1000, MASK, torch.Generator().manual_seed(10),
                                word_starts=word_starts)
    selected = labels != IGNORE_INDEX
    starts = word_starts | special
    starts[:, 1:] |= special[:, :-1]
    starts[:, 0] = True
    word = starts.long().cumsum(1)
    n_words, n_chosen = 0, 0
    for b in range(ids.shape[0]):
        for w in word[b][~special[b]].unique():
            members = (word[b] == w) & ~special[b]
            sel = selected[b][members]
            assert sel.all() or not sel.any(), f"row {b}: word {w.item()} partly selected: {sel.tolist()}"
            n_words += 1
            n_chosen += int(sel.all())
    frac = n_chosen / n_words
    assert abs(frac - 0.15) <= 0.02, f"{frac:.4f} of {n_words} words chosen, expected 0.15 +- 0.02 (rounding)"


# --------------------------------------------------------------------------- NSP pairs (formula tests)

def test_truncation_trims_the_longer_side_at_both_ends(lib):
    """After truncation |A|+|B| <= max; only the longer side loses tokens; front and back both get cut."""
    fronts = backs = 0
    for seed in range(200):
        a, b = list(range(30)), list(range(100, 110))
        lib.truncate_seq_pair(a, b, 25, random.Random(seed))
        assert len(a) + len(b) == 25, f"seed {seed}: |A|+|B| = {len(a) + len(b)}"
        assert b == list(range(100, 110)), f"seed {seed}: the shorter side B was cut"
        assert a == list(range(a[0], a[0] + len(a))), "A must stay a contiguous run"
        fronts += a[0] > 0
        backs += a[-1] < 29
    assert fronts > 150 and backs > 150, f"cuts at the front in {fronts}, at the back in {backs} of 200 runs"


def test_pairs_never_exceed_the_budget_of_max_len_minus_three(lib):
    """|A| + |B| + 3 <= max_seq_length for every pair, and both sides are non-empty."""
    docs = positional_documents(60, (1, 30), (1, 40), seed=1)
    for max_len in (8, 32, 128):
        examples = lib.create_nsp_examples(docs, max_len, random.Random(max_len))
        worst = max(len(e.tokens_a) + len(e.tokens_b) + 3 for e in examples)
        assert worst <= max_len, f"max_seq_length {max_len}: a pair needs {worst} positions"
        assert all(e.tokens_a and e.tokens_b for e in examples), "an empty segment was produced"


def test_negative_b_never_comes_from_a_document_and_positive_b_follows_a(lib):
    """Random B comes from another document; a real B is the continuation of A in A's document."""
    docs = positional_documents(5, (1, 12), (2, 15), seed=2)  # few documents: same-document draws are likely
    examples = lib.create_nsp_examples(docs, 64, random.Random(3))
    for e in examples:
        doc_a = {t // 100000 for t in e.tokens_a}
        doc_b = {t // 100000 for t in e.tokens_b}
        assert len(doc_a) == 1 and len(doc_b) == 1, "a segment mixes documents"
        if e.is_random_next:
            assert doc_a != doc_b, f"negative B from A's own document {doc_a}"
        else:
            assert doc_a == doc_b, "positive B from another document"
            assert max(e.tokens_a) < min(e.tokens_b), "positive B does not come after A"
            assert e.tokens_b == list(range(e.tokens_b[0], e.tokens_b[0] + len(e.tokens_b))), "B not contiguous"


def test_half_of_the_pairs_have_a_random_next_sentence(lib):
    """With nsp_prob 0.5, 50% of pairs are random (5 binomial SE + the few forced single-sentence ends)."""
    docs = positional_documents(40, 400, (5, 25), seed=4)
    examples = lib.create_nsp_examples(docs, 64, random.Random(5))
    n = len(examples)
    frac = sum(e.is_random_next for e in examples) / n
    tol = binomial_tolerance(0.5, n) + len(docs) / n  # at most one forced random pair per document end
    assert abs(frac - 0.5) <= tol, f"{frac:.4f} of {n} pairs random, expected 0.5 +- {tol:.4f}"


def test_target_length_counts_the_three_special_tokens(lib):
    """Without short targets and with 1-token sentences, every full pair has exactly max_len - 3 tokens."""
    docs = [[[100000 * d + i] for i in range(500)] for d in range(3)]
    examples = lib.create_nsp_examples(docs, 20, random.Random(6), short_seq_prob=0.0, nsp_prob=0.0)
    lengths = [len(e.tokens_a) + len(e.tokens_b) for e in examples]
    full = lengths[:-1]  # the last pair of a document may be shorter
    assert len(full) >= 20 and set(full[:20]) == {17}, f"pair lengths {sorted(set(lengths))}, expected 17 = 20 - 3"


def test_short_targets_appear_with_probability_short_seq_prob(lib):
    """With short_seq_prob 1, pairs are shorter than the budget on average; with 0, they fill it."""
    docs = positional_documents(200, 30, 4, seed=7)
    full = lib.create_nsp_examples(docs, 64, random.Random(8), short_seq_prob=0.0)
    short = lib.create_nsp_examples(docs, 64, random.Random(8), short_seq_prob=1.0)
    mean_full = sum(len(e.tokens_a) + len(e.tokens_b) for e in full) / len(full)
    mean_short = sum(len(e.tokens_a) + len(e.tokens_b) for e in short) / len(short)
    assert mean_short < 0.75 * mean_full, f"mean length {mean_short:.1f} with short targets vs {mean_full:.1f}"


def test_sentences_unused_by_a_random_pair_are_put_back(lib):
    """With nsp_prob 1 every sentence of a document still appears in some segment A.

    (Truncation may trim up to 2 tokens off A's ends, so a sentence counts as
    used when any of its 3 tokens is in an A.)
    """
    docs = positional_documents(10, 20, 3, seed=9)
    examples = lib.create_nsp_examples(docs, 40, random.Random(10), short_seq_prob=0.0, nsp_prob=1.0)
    for d, doc in enumerate(docs):
        used = {t for e in examples if e.tokens_a[0] // 100000 == d for t in e.tokens_a}
        missing = [s[0] for s in doc if not used & set(s)]
        assert not missing, f"document {d}: sentences starting at {missing} never used as A"


def test_nsp_needs_two_documents(lib):
    """One document cannot provide random next sentences: a clear ValueError."""
    with pytest.raises(ValueError, match="at least 2"):
        lib.create_nsp_examples([[[5, 6], [7, 8]]], 16, random.Random(0))


# --------------------------------------------------------------------------- sentence-order pairs (ALBERT)

def test_sop_pairs_are_one_documents_text_in_order_or_swapped():
    """SOP: A and B come from the same document; label 0 = B follows A, label 1 = A follows B."""
    docs = positional_documents(6, (1, 12), (1, 15), seed=11)
    examples = create_sop_examples(docs, 48, random.Random(12))
    assert examples
    for e in examples:
        doc_a = {t // 100000 for t in e.tokens_a}
        doc_b = {t // 100000 for t in e.tokens_b}
        assert doc_a == doc_b and len(doc_a) == 1 and e.document_a == e.document_b, "SOP mixes documents"
        assert len(e.tokens_a) + len(e.tokens_b) + 3 <= 48 and e.tokens_a and e.tokens_b
        if e.nsp_label == 0:
            assert max(e.tokens_a) < min(e.tokens_b), "label 0 but B does not come after A"
        else:
            assert max(e.tokens_b) < min(e.tokens_a), "label 1 (swapped) but A does not come after B"


def test_sop_swaps_half_of_the_pairs_and_uses_text_once():
    """swap_prob 0.5 -> 50% label 1 (5 binomial SE); each piece of text is used at most once."""
    docs = positional_documents(40, 300, (5, 25), seed=13)
    examples = create_sop_examples(docs, 64, random.Random(14), short_seq_prob=0.0)
    n = len(examples)
    frac = sum(e.nsp_label for e in examples) / n
    assert abs(frac - 0.5) <= binomial_tolerance(0.5, n), f"{frac:.4f} of {n} SOP pairs swapped"
    tokens = [t for e in examples for t in e.tokens_a + e.tokens_b]
    assert len(tokens) == len(set(tokens)), "a token appears in two SOP pairs (text reused)"
    per_doc = sum(len(s) for s in docs[0])
    covered = sum(1 for t in tokens if t // 100000 == 0) / per_doc
    assert covered > 0.8, f"SOP pairs cover only {covered:.0%} of document 0's tokens (truncation aside)"


def test_sop_cuts_a_single_sentence_chunk_inside_the_sentence():
    """A chunk of one long sentence has no sentence boundary: SOP cuts it between two of its tokens."""
    docs = [[list(range(10, 40))]]  # one document, one 30-token sentence, budget 61
    (e,) = create_sop_examples(docs, 64, random.Random(0), short_seq_prob=0.0)
    first, second = (e.tokens_b, e.tokens_a) if e.nsp_label else (e.tokens_a, e.tokens_b)
    assert first + second == list(range(10, 40)), f"A={e.tokens_a} B={e.tokens_b} label={e.nsp_label}"


# --------------------------------------------------------------------------- pairs re-drawn every epoch

def test_epoch_pairs_are_cut_afresh_every_epoch_and_reproducibly():
    """Dynamic pairs differ between epochs, are equal for the same (seed, epoch); static pairs never change."""
    docs = positional_documents(20, (2, 20), (2, 12), seed=15)
    key = lambda examples: [(tuple(e.tokens_a), tuple(e.tokens_b), e.nsp_label) for e in examples]
    dynamic = EpochPairs(docs, FakeTokenizer(), 32, seed=3)
    again = EpochPairs(docs, FakeTokenizer(), 32, seed=3)
    assert key(dynamic.examples(1)) == key(again.examples(1)), "the pairs of an epoch depend on more than (seed, epoch)"
    epochs = [set(key(dynamic.examples(e))) for e in range(3)]
    shared = len(epochs[0] & epochs[1]) / len(epochs[0])
    assert shared < 0.5, f"{shared:.0%} of epoch 0's pairs reappear in epoch 1"
    static = EpochPairs(docs, FakeTokenizer(), 32, seed=3, dynamic=False)
    assert key(static.examples(0)) == key(static.examples(5))
    assert static.dataset(0) is static.dataset(7), "static pairs are rebuilt"
    assert torch.equal(dynamic.dataset(2).input_ids, again.dataset(2).input_ids)


def test_epoch_pairs_serve_sop_pairs_with_the_sop_objective():
    """objective='sop' cuts sentence-order pairs: both segments from one document."""
    docs = positional_documents(10, (2, 20), (2, 12), seed=16)
    pairs = EpochPairs(docs, FakeTokenizer(), 32, seed=4, objective="sop")
    assert all(e.document_a == e.document_b for e in pairs.examples(2))
    with pytest.raises(ValueError, match="unknown pair objective"):
        EpochPairs(docs, FakeTokenizer(), 32, seed=4, objective="nope")


# --------------------------------------------------------------------------- dataset and batches

def make_dataset(n_docs=40, seq_len=32, whole_word_mask=False, seed=0):
    rng = random.Random(seed)
    docs = [[[rng.randrange(5, 200) for _ in range(rng.randint(1, 12))] for _ in range(rng.randint(1, 10))]
            for _ in range(n_docs)]
    from minibert.pretraining_data import create_nsp_examples
    examples = create_nsp_examples(docs, seq_len, random.Random(seed))
    return PretrainingDataset(examples, FakeTokenizer(), seq_len, whole_word_mask=whole_word_mask), examples


def test_dataset_lays_out_cls_a_sep_b_sep_with_segment_ids_and_padding():
    """Row i is [CLS] A [SEP] B [SEP] [PAD].., token types 0 then 1, special_mask on specials and pads."""
    ds, examples = make_dataset()
    for i in (0, 7, len(ds) - 1):
        e = examples[i]
        tokens = [CLS, *e.tokens_a, SEP, *e.tokens_b, SEP]
        n = len(tokens)
        assert ds.input_ids[i, :n].tolist() == tokens and (ds.input_ids[i, n:] == PAD).all()
        types = [0] * (len(e.tokens_a) + 2) + [1] * (len(e.tokens_b) + 1)
        assert ds.token_type_ids[i, :n].tolist() == types and (ds.token_type_ids[i, n:] == 0).all()
        assert ds.special_mask[i].tolist() == [t in SPECIALS for t in ds.input_ids[i].tolist()]
        assert ds.nsp_labels[i].item() == int(e.is_random_next)


def test_batches_have_the_agreed_keys_shapes_and_attention_mask():
    """A batch holds input_ids, token_type_ids, attention_mask, mlm_labels (B, T) and nsp_labels (B,)."""
    ds, _ = make_dataset()
    batch = next(iterate_batches(ds, 8, torch.Generator().manual_seed(0)))
    for key in ("input_ids", "token_type_ids", "attention_mask", "mlm_labels"):
        assert batch[key].shape == (8, 32) and batch[key].dtype == torch.long, (key, batch[key].shape)
    assert batch["nsp_labels"].shape == (8,)
    real = batch["attention_mask"].bool()
    assert (batch["input_ids"][~real] == PAD).all(), "padding must stay [PAD] and be masked out"
    assert not (batch["mlm_labels"][~real] != IGNORE_INDEX).any(), "a padding position has an MLM label"


def test_one_epoch_serves_every_example_once_with_drop_last_false():
    """Without drop_last the epoch covers all examples exactly once, in a shuffled order."""
    ds, _ = make_dataset()
    seen = []
    for batch in iterate_batches(ds, 16, torch.Generator().manual_seed(1), drop_last=False):
        rows = batch["token_type_ids"].shape[0]
        seen.extend([rows])
    assert sum(seen) == len(ds), f"served {sum(seen)} rows, dataset has {len(ds)}"
    assert len(seen) == batches_per_epoch(ds, 16, drop_last=False)


def _stream(ds, seed, epoch, **kwargs):
    return list(iterate_batches(ds, 8, generator_for_epoch(seed, epoch), **kwargs))


def test_stream_is_deterministic_and_masks_are_dynamic_across_epochs():
    """Same (seed, epoch) -> identical batches; the next epoch masks the same example differently."""
    ds, _ = make_dataset()
    a, b = _stream(ds, 3, 0), _stream(ds, 3, 0)
    assert all(torch.equal(x[k], y[k]) for x, y in zip(a, b) for k in x), "same seed, different stream"
    example = torch.arange(len(ds))
    g0, g1 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    m0, m1 = ds.batch(example, g0)["mlm_labels"], ds.batch(example, g1)["mlm_labels"]
    same = (m0 != IGNORE_INDEX).eq(m1 != IGNORE_INDEX).all(1).float().mean().item()
    assert same < 0.2, f"{same:.2f} of the examples got the identical mask twice (dynamic masking expected)"


def test_resuming_at_batch_k_continues_the_uninterrupted_stream():
    """iterate_batches(start_batch=k) yields exactly batches k.. of the full stream."""
    ds, _ = make_dataset()
    full = _stream(ds, 5, 2)
    resumed = _stream(ds, 5, 2, start_batch=3)
    assert len(resumed) == len(full) - 3
    for x, y in zip(full[3:], resumed):
        assert all(torch.equal(x[k], y[k]) for k in x), "resumed stream differs from the uninterrupted one"


def test_two_ranks_split_the_global_batch_exactly():
    """Rank 0 and rank 1 of world_size 2 together give exactly the single-process global batch."""
    ds, _ = make_dataset()
    single = _stream(ds, 11, 0)
    r0 = _stream(ds, 11, 0, rank=0, world_size=2)
    r1 = _stream(ds, 11, 0, rank=1, world_size=2)
    assert len(single) == len(r0) == len(r1)
    for s, a, b in zip(single, r0, r1):
        for k in s:
            assert a[k].shape[0] == 4 and torch.equal(torch.cat([a[k], b[k]]), s[k]), f"{k} differs"


def test_whole_word_masking_in_the_dataset_uses_the_tokenizer_word_starts():
    """With whole_word_mask, a continuation piece (id % 4 == 0) is selected only with its word."""
    ds, _ = make_dataset(whole_word_mask=True)
    batch = ds.batch(torch.arange(len(ds)), torch.Generator().manual_seed(0))
    labels, ids = batch["mlm_labels"], ds.input_ids
    starts = ds.word_starts | ds.special_mask
    starts[:, 1:] |= ds.special_mask[:, :-1]  # a piece right after [CLS]/[SEP] starts a word
    selected = labels != IGNORE_INDEX
    # a selected continuation piece's predecessor (same word) must be selected too
    cont = selected[:, 1:] & ~starts[:, 1:]
    assert not (cont & ~selected[:, :-1]).any(), "a word was split by the mask"
    assert (selected & ~ds.word_starts).any(), "no continuation piece was ever selected"
    assert (ids[selected] >= 5).all()


def test_batching_restores_torch_thread_count():
    """Masking runs single-threaded for speed but leaves torch's thread setting as it found it."""
    ds, _ = make_dataset()
    before = torch.get_num_threads()
    ds.batch(torch.arange(4), torch.Generator().manual_seed(0))
    assert torch.get_num_threads() == before, f"{torch.get_num_threads()} threads after a batch, {before} before"


def test_bad_inputs_give_one_clear_sentence():
    """Too-long examples, a global batch not divisible by world_size, a tiny dataset: ValueErrors."""
    long = [NspExample(list(range(5, 30)), list(range(5, 30)), False)]
    with pytest.raises(ValueError, match="more than seq_len"):
        PretrainingDataset(long, FakeTokenizer(), 16)
    ds, _ = make_dataset()
    with pytest.raises(ValueError, match="multiple of world_size"):
        iterate_batches(ds, 7, torch.Generator(), world_size=2)
    with pytest.raises(ValueError, match="fewer than one batch"):
        iterate_batches(ds, 10 * len(ds), torch.Generator())


def test_build_examples_tokenises_sentence_strings():
    """build_examples turns documents of sentence strings into pairs via tokenizer.text_to_ids."""
    docs = [["the cat sat .", "it was warm ."], ["a dog ran .", "far away .", "then slept ."]]
    examples = build_examples(docs, FakeTokenizer(), 32, seed=0)
    tok = FakeTokenizer()
    all_ids = {t for d in docs for s in d for t in tok.text_to_ids(s)}
    assert examples and all(set(e.tokens_a) | set(e.tokens_b) <= all_ids for e in examples)


def test_real_wikitext_pairs_and_masks_have_bert_statistics(data_dir):
    """On WikiText-2 valid: no pair over budget, ~50% random B (more from 1-sentence chunks), 15% masked."""
    from minibert.wikitext import documents
    docs = documents(data_dir / "wikitext-2-raw" / "wiki.valid.raw")
    tok = FakeTokenizer(vocab_size=5000)
    examples = build_examples(docs, tok, 128, seed=0)
    assert max(len(e.tokens_a) + len(e.tokens_b) + 3 for e in examples) <= 128
    frac_random = sum(e.is_random_next for e in examples) / len(examples)
    assert 0.45 <= frac_random <= 0.6, f"random-next fraction {frac_random:.3f} on {len(examples)} pairs"
    ds = PretrainingDataset(examples, tok, 128)
    batch = ds.batch(torch.arange(len(ds)), torch.Generator().manual_seed(0))
    frac = (batch["mlm_labels"] != IGNORE_INDEX).sum().item() / (~ds.special_mask).sum().item()
    assert abs(frac - 0.15) <= 0.005, f"masked fraction {frac:.4f} of non-special tokens"
