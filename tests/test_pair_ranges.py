"""The scalable data path: token cache, pairs as ranges, rows built at batch time, per rank.

The range pairs must be *the same pairs* as the list pairs of
``create_nsp_examples`` / ``create_sop_examples`` for the same seed (same
random-number order), and the batches built from the cache the same batches
as ``PretrainingDataset`` builds, so ``minibert pretrain`` trains on the same
stream as before. Checked on real WikiText and on edge cases.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from minibert.pair_ranges import (RangeEpochPairs, RangePretrainingDataset, create_nsp_ranges, create_sop_ranges)
from minibert.pretraining_data import (EpochPairs, PretrainingDataset, create_nsp_examples, create_sop_examples,
                                       generator_for_epoch, iterate_batches, tokenize_documents)
from minibert.token_cache import TokenCacheError, load_token_cache, token_cache, write_token_cache
from minibert.wikitext import documents, iter_documents
from test_pretraining_data import FakeTokenizer, positional_documents

PAIRS = {"nsp": (create_nsp_examples, create_nsp_ranges), "sop": (create_sop_examples, create_sop_ranges)}


def flatten(docs):
    """List documents -> (tokens, sentence_offsets, document_offsets), as the token cache stores them."""
    sentences = [s for d in docs for s in d]
    tokens = np.array([t for s in sentences for t in s], dtype=np.int64)
    sentence_offsets = np.concatenate([[0], np.cumsum([len(s) for s in sentences])]).astype(np.int64)
    document_offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
    return tokens, sentence_offsets, document_offsets


def assert_same_pairs(docs, objective, seq_len, seed, short_seq_prob, prob=0.5):
    """The list pairs and the range pairs of ``docs`` are identical, and leave the RNG in the same state."""
    make_list, make_ranges = PAIRS[objective]
    tokens, so, do = flatten(docs)
    rng_list, rng_ranges = random.Random(seed), random.Random(seed)
    examples = make_list(docs, seq_len, rng_list, short_seq_prob, prob)
    ranges = make_ranges(so, do, seq_len, rng_ranges, short_seq_prob, prob)
    assert len(ranges) == len(examples), f"{len(ranges)} range pairs vs {len(examples)} list pairs"
    for n, ex in enumerate(examples):
        a = tokens[ranges.a_start[n]:ranges.a_end[n]].tolist()
        b = tokens[ranges.b_start[n]:ranges.b_end[n]].tolist()
        got = (a, b, int(ranges.labels[n]), int(ranges.document_a[n]), int(ranges.document_b[n]))
        want = (ex.tokens_a, ex.tokens_b, ex.nsp_label, ex.document_a, ex.document_b)
        assert got == want, f"pair {n} of {len(examples)} differs: {got} vs {want}"
    assert rng_list.random() == rng_ranges.random(), "the two versions consumed the RNG differently"
    return len(examples)


@pytest.mark.parametrize("objective", ["nsp", "sop"])
@pytest.mark.parametrize("seq_len,short_seq_prob", [(32, 0.1), (12, 0.5), (6, 1.0)])
def test_range_pairs_are_the_list_pairs_on_edge_cases(objective, seq_len, short_seq_prob):
    """Short documents, one-sentence documents, one-token sentences, short targets: the same pairs."""
    docs = positional_documents(30, (1, 6), (1, 9), seed=seq_len)
    docs += [[[7]], [[8, 9]], [[10], [11]]]   # one one-token sentence; one sentence; two one-token sentences
    n = assert_same_pairs(docs, objective, seq_len, seed=11, short_seq_prob=short_seq_prob)
    assert n > 20, f"only {n} pairs: the edge cases were not exercised"


def test_range_pairs_skip_empty_documents_like_the_list_version():
    docs = positional_documents(6, 3, 4)
    docs.insert(2, [])
    for objective in PAIRS:
        assert_same_pairs(docs, objective, 16, seed=2, short_seq_prob=0.3)


def test_range_pairs_reject_empty_sentences_and_too_few_documents():
    tokens, so, do = flatten(positional_documents(1, 3, 4))
    with pytest.raises(ValueError, match="at least 2 non-empty documents"):
        create_nsp_ranges(so, do, 16, random.Random(0))
    so = np.array([0, 2, 2, 5]), np.array([0, 1, 3])
    with pytest.raises(ValueError, match="empty sentence"):
        create_nsp_ranges(*so, 16, random.Random(0))


@pytest.fixture(scope="module")
def wikitext_cache(data_dir, tmp_path_factory):
    """A SentencePiece tokenizer trained on WikiText-2 valid, and that file's token cache."""
    from minibert.tokenization import SentencePieceTokenizer, load_tokenizer

    path = data_dir / "wikitext-2-raw" / "wiki.valid.raw"
    folder = tmp_path_factory.mktemp("wikitext_cache")
    docs = documents(path)
    SentencePieceTokenizer.train([s for d in docs for s in d], 1000, folder=str(folder / "tok"), seed=0)
    tokenizer = load_tokenizer(folder / "tok")
    cache, built = token_cache(folder / "cache", path, tokenizer, folder / "tok", say=lambda *a: None)
    assert built
    return path, tokenizer, cache, folder


def test_streamed_documents_are_the_documents_of_the_file(data_dir):
    for name in ("wiki.valid.raw", "wiki.test.raw"):
        path = data_dir / "wikitext-2-raw" / name
        assert list(iter_documents(path)) == documents(path), name


def test_streamed_documents_of_untitled_text_are_its_blocks(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("First one. Second one.\nA second line.\n\n\nNext block here.\n", encoding="utf-8")
    assert list(iter_documents(path)) == documents(path) == [["First one.", "Second one.", "A second line."],
                                                             ["Next block here."]]


def test_the_cache_holds_the_tokenised_documents_and_is_reused(wikitext_cache):
    path, tokenizer, cache, folder = wikitext_cache
    assert cache.documents() == tokenize_documents(documents(path), tokenizer)
    assert cache.tokens.dtype == np.uint16 and isinstance(cache.tokens, np.memmap)
    again, built = token_cache(folder / "cache", path, tokenizer, folder / "tok", say=lambda *a: None)
    assert not built and again.folder == cache.folder


def test_the_cache_key_changes_with_the_corpus_content_and_the_tokenizer(wikitext_cache, tmp_path):
    path, tokenizer, cache, folder = wikitext_cache
    copy = tmp_path / "copy.raw"
    copy.write_bytes(path.read_bytes())
    same, built = token_cache(folder / "cache", copy, tokenizer, folder / "tok", say=lambda *a: None)
    assert not built and same.folder == cache.folder, "a copy of the same corpus must hit the cache"
    copy.write_bytes(path.read_bytes().replace(b" the ", b" The ", 1))
    other, built = token_cache(tmp_path / "c", copy, tokenizer, folder / "tok", say=lambda *a: None)
    assert built and other.folder.name != cache.folder.name
    tok2 = tmp_path / "tok2"
    tokenizer.save(tok2)
    (tok2 / "extra.txt").write_text("x")
    _, built = token_cache(tmp_path / "c", path, tokenizer, tok2, say=lambda *a: None)
    assert built


def test_a_damaged_cache_is_named_in_one_line_and_rebuilt(wikitext_cache, tmp_path):
    path, tokenizer, cache, folder = wikitext_cache
    first, _ = token_cache(tmp_path, path, tokenizer, folder / "tok", say=lambda *a: None)
    tokens_file = first.folder / "tokens.bin"
    del first
    with open(tokens_file, "r+b") as f:
        f.truncate(100)   # an incomplete copy
    with pytest.raises(TokenCacheError, match="incomplete or corrupt"):
        load_token_cache(tokens_file.parent)
    notes = []
    rebuilt, built = token_cache(tmp_path, path, tokenizer, folder / "tok", say=notes.append)
    assert built and len(notes) == 1 and "\n" not in notes[0] and "rebuilding" in notes[0], notes
    assert rebuilt.num_tokens == cache.num_tokens


def test_a_failed_build_leaves_no_cache_folder(tmp_path):
    def boom(sentences):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_token_cache(tmp_path / "key", iter([["a b"]]), boom, 100)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("objective", ["nsp", "sop"])
def test_range_pairs_are_the_list_pairs_on_real_wikitext(wikitext_cache, objective):
    path, tokenizer, cache, _ = wikitext_cache
    docs = tokenize_documents(documents(path), tokenizer)
    for seq_len, ssp in ((128, 0.1), (24, 0.5)):
        assert_same_pairs(docs, objective, seq_len, seed=seq_len, short_seq_prob=ssp)


@pytest.mark.parametrize("objective,whole_word_mask,static", [("nsp", False, False), ("sop", True, False),
                                                                ("nsp", True, True)])
def test_cached_and_uncached_preparation_give_identical_batches_on_every_rank(wikitext_cache, objective,
                                                                              whole_word_mask, static):
    """EpochPairs on token lists vs RangeEpochPairs on the cache: the same masked batches, epochs 0 and 1, 1 and 2 ranks."""
    path, tokenizer, cache, _ = wikitext_cache
    docs = tokenize_documents(documents(path), tokenizer)
    kwargs = dict(whole_word_mask=whole_word_mask, objective=objective, dynamic=not static)
    lists, ranges = EpochPairs(docs, tokenizer, 64, 7, **kwargs), RangeEpochPairs(cache, tokenizer, 64, 7, **kwargs)
    for epoch in (0, 1):
        a, b = lists.dataset(epoch), ranges.dataset(epoch)
        assert isinstance(b, RangePretrainingDataset) and len(a) == len(b)
        for world_size in (1, 2):
            for rank in range(world_size):
                got = list(iterate_batches(b, 16, generator_for_epoch(7, epoch), rank, world_size))
                want = list(iterate_batches(a, 16, generator_for_epoch(7, epoch), rank, world_size))
                assert len(got) == len(want) > 10
                for j, (x, y) in enumerate(zip(got, want)):
                    for key in y:
                        assert torch.equal(x[key], y[key]), f"epoch {epoch} rank {rank}/{world_size} batch {j} {key}"


def test_a_rank_builds_only_its_own_rows_and_they_match_the_whole_batch():
    """rows=(lo, hi) builds hi - lo rows, equal to rows lo:hi of the batch built whole."""
    tok = FakeTokenizer()
    docs = positional_documents(20, (2, 6), (3, 9))
    docs = [[[5 + t % 190 for t in s] for s in d] for d in docs]
    tokens, so, do = flatten(docs)
    pairs = create_nsp_ranges(so, do, 32, random.Random(1))
    ds = RangePretrainingDataset(tokens, pairs, tok, 32)
    built = []
    original = ds._rows
    ds._rows = lambda idx: built.append(len(idx)) or original(idx)
    indices = torch.arange(12)
    whole = ds.batch(indices, torch.Generator().manual_seed(3))
    part = ds.batch(indices, torch.Generator().manual_seed(3), rows=(4, 8))
    assert built == [12, 4], f"rows built per call: {built}"
    for key in whole:
        assert torch.equal(part[key], whole[key][4:8]), key
    listed = PretrainingDataset(create_nsp_examples(docs, 32, random.Random(1)), tok, 32)
    same = listed.batch(indices, torch.Generator().manual_seed(3), rows=(4, 8))
    for key in whole:
        assert torch.equal(part[key], same[key]), key


def test_stored_pairs_are_read_back_identical_and_only_epoch_0_and_the_latest_are_kept(wikitext_cache, tmp_path):
    path, tokenizer, cache, _ = wikitext_cache
    fresh = RangeEpochPairs(cache, tokenizer, 64, 7)
    stored = RangeEpochPairs(cache, tokenizer, 64, 7, store=tmp_path)
    for epoch in (0, 1, 2):
        stored.ranges(epoch)
    assert sorted(p.name.rsplit("_", 1)[1] for p in tmp_path.iterdir()) == ["epoch0.npz", "epoch2.npz"]
    again = RangeEpochPairs(cache, tokenizer, 64, 7, store=tmp_path)
    again._make_pairs = None   # reading back must not cut
    for epoch in (0, 2):
        a, b = again.ranges(epoch), fresh.ranges(epoch)
        assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in vars(b)), f"epoch {epoch}"
    damaged = next(tmp_path.glob("*epoch2.npz"))
    damaged.write_bytes(b"not a zip")
    a = RangeEpochPairs(cache, tokenizer, 64, 7, store=tmp_path).ranges(2)
    assert np.array_equal(a.a_start, fresh.ranges(2).a_start), "a damaged pair file must be cut again"
