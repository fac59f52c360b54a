"""Exercise 06: BERT's pretraining data — NSP sentence pairs and 80/10/10 masking.

Fill in the three functions below, then run the formula tests against your code:

    python -m pytest tests/test_pretraining_data.py --exercises -q

Read tutorials/06_pretraining_data.md first. The library's answer lives in
``minibert/pretraining_data.py`` (don't peek until the tests pass!).
"""

from __future__ import annotations

import random

import torch

from minibert.pretraining_data import IGNORE_INDEX, NspExample  # noqa: F401  (use them in your answer)

REFERENCE = "minibert.pretraining_data"

# Graded hints, shown by `python -m pytest --exercises 06 --hint N`: a nudge, the approach, the formula in detail.
HINTS = {
    "truncate_seq_pair": [
        "one token at a time, in a loop that stops as soon as the pair fits; the lists are changed in place.",
        "each round: the longer list (B on a tie) loses one token, from its front or its back, decided by one "
        "rng.random() draw per round.",
    ],
    "create_nsp_examples": [
        "work document by document, collecting consecutive sentences into a chunk until it is long enough; "
        "every chunk becomes one pair.",
        "a chunk is cut at a random sentence boundary into A and B. For a random next sentence, B comes from "
        "a different document and the chunk's unused sentences go back, so the next chunk starts with them.",
        "L = max_seq_length - 3; target t = L, or rng.randint(2, L) with probability short_seq_prob; cut "
        "a = rng.randint(1, n - 1) (1 for a single sentence); random B (probability nsp_prob, always for a "
        "single sentence) fills t - len(A) tokens from a random start in a document drawn uniformly among the "
        "other non-empty ones; finally truncate_seq_pair(A, B, L, rng).",
    ],
    "mask_tokens": [
        "'exactly k of the n allowed positions, uniformly at random' is the same as giving every position a "
        "random score and keeping the k smallest.",
        "per row: k = max(1, round(p n)) among the non-special positions (whole words when word_starts is "
        "given); then a second draw splits the chosen positions 80/10/10 into [MASK], a random id, unchanged.",
        "labels = original id where chosen, -100 elsewhere; random ids come from replace_ids, by default every "
        "id except mask_id and the ids at special positions. Special positions must never be chosen: give "
        "them a score that can never be among the k smallest.",
    ],
}


def truncate_seq_pair(tokens_a: list[int], tokens_b: list[int], max_num_tokens: int, rng: random.Random) -> None:
    """Trim A and B in place until len(A) + len(B) <= max_num_tokens.

    Each step removes one token from the LONGER list (B on a tie), from its
    front if ``rng.random() < 0.5`` else from its back.
    """
    raise NotImplementedError("Exercise 06 (tutorials/exercises/ex06_masking_nsp.py): "
                              "truncate_seq_pair is not written yet")


def create_nsp_examples(documents, max_seq_length: int, rng: random.Random, short_seq_prob: float = 0.1,
                        nsp_prob: float = 0.5) -> list[NspExample]:
    """Cut documents (lists of sentences, each a list of token ids) into NSP pairs.

    For each document: budget L = max_seq_length - 3; target t = L, or with
    probability ``short_seq_prob`` t = rng.randint(2, L). Collect consecutive
    sentences until their total length reaches t (or the document ends); split
    them at a = rng.randint(1, n - 1) (a = 1 for a single sentence) into A and
    B. With probability ``nsp_prob`` (always for a single sentence) replace B
    by consecutive sentences of ANOTHER document from a random start, up to
    t - len(A) tokens, and put the unused collected sentences back. Trim with
    truncate_seq_pair(A, B, L, rng). Return NspExample(A, B, is_random_next,
    document_a, document_b) objects. Raise ValueError if there are fewer than
    2 non-empty documents ("at least 2").
    """
    raise NotImplementedError("Exercise 06 (tutorials/exercises/ex06_masking_nsp.py): "
                              "create_nsp_examples is not written yet")


def mask_tokens(input_ids: torch.Tensor, special_mask: torch.Tensor, vocab_size: int, mask_id: int,
                generator: torch.Generator | None, mlm_probability: float = 0.15,
                replace_ids: torch.Tensor | None = None, word_starts: torch.Tensor | None = None):
    """Return (masked_input_ids, labels) for a (B, T) batch.

    In each row choose exactly max(1, round(p * n)) of the n non-special
    positions (or of the words, when ``word_starts`` is given: all pieces of a
    chosen word are selected). Of the chosen positions 80% -> ``mask_id``,
    10% -> a random id from ``replace_ids`` (default: all ids except
    ``mask_id`` and the ids at special positions), 10% unchanged.
    labels = original id at chosen positions, IGNORE_INDEX (-100) elsewhere.
    """
    raise NotImplementedError("Exercise 06 (tutorials/exercises/ex06_masking_nsp.py): "
                              "mask_tokens is not written yet")
