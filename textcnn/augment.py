"""A transfer set for distillation: new, unlabelled sentences made from the training sentences.

A small student learns from the teacher only where the teacher is asked. On
the training sentences alone a TextCNN can match the gold labels already; it
learns how the teacher *generalises* from sentences the teacher has not been
trained on. Tang et al. (2019, section 3.3) make such sentences from the
training set with three label-free rules, applied word by word and then to
the whole sentence, and let the teacher label them:

* **masking** (probability ``p_mask``): the word becomes the mask token. The
  student sees its ``<unk>`` row (the TextCNN vocabulary's explicit unknown
  word, :data:`MASK`), the teacher its ``[MASK]`` token: "what would you say
  without this word?";
* **swapping** (``p_swap``): the word becomes another word. Tang et al. draw
  it among the training words with the same part-of-speech tag; we have no
  tagger offline, so we draw it from the unigram distribution of the training
  words (each word with probability count / total). The sentence may then say
  something different, and that is fine: the teacher labels the new sentence,
  so no rule has to preserve the label, only produce text like the
  sentences the student will meet;
* **n-gram sampling** (``p_ngram``, after the word rules): keep only a random
  window of $n$ consecutive words, $n$ uniform in ``1..max_ngram``: short
  phrases, the kind of example that makes SST-2's phrase labels so useful
  for a CNN (tutorial 08).

Each word draws one $u \\sim U[0, 1)$: $u <$ ``p_mask`` masks it,
``p_mask`` $\\le u <$ ``p_mask + p_swap`` swaps it, otherwise it stays. Tang
et al. used ``p_mask = p_swap = 0.1``, ``p_ngram = 0.25`` and 20 new
sentences per training sentence, discarding duplicates.

No rule reads a label: the functions here take token lists only, so a label
can never leak into the student's inputs. Everything is drawn from one
``random.Random(seed)``: the same seed gives the same transfer set.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from itertools import accumulate
from typing import Sequence

from minibert.classification_data import UNK

MASK = UNK  # the student's mask token: the <unk> row of the TextCNN vocabulary


class UnigramSampler:
    """Draw words with probability proportional to their count in the training sentences."""

    def __init__(self, token_lists: Sequence[Sequence[str]]):
        counts = Counter(token for tokens in token_lists for token in tokens if token != MASK)
        if not counts:
            raise ValueError("cannot build a transfer set from sentences without words.")
        self.words = sorted(counts)  # sorted: the draw does not depend on dict order
        self.cumulative = list(accumulate(counts[w] for w in self.words))

    def draw(self, rng: random.Random) -> str:
        """One word $w$ with probability $\\mathrm{count}(w) / \\sum_v \\mathrm{count}(v)$."""
        r = rng.random() * self.cumulative[-1]
        return self.words[bisect.bisect_right(self.cumulative, r)]


def augment_sentence(tokens: Sequence[str], rng: random.Random, sampler: UnigramSampler,
                     p_mask: float = 0.1, p_swap: float = 0.1, p_ngram: float = 0.25,
                     max_ngram: int = 5) -> list[str]:
    """One new sentence from ``tokens``: mask / swap each word, then maybe keep one n-gram (see the module text)."""
    out = []
    for token in tokens:
        u = rng.random()
        if u < p_mask:
            out.append(MASK)
        elif u < p_mask + p_swap:
            out.append(sampler.draw(rng))
        else:
            out.append(token)
    if out and rng.random() < p_ngram:
        n = min(rng.randint(1, max_ngram), len(out))
        start = rng.randint(0, len(out) - n)
        out = out[start:start + n]
    return out


def augment(token_lists: Sequence[Sequence[str]], copies: int, seed: int = 0, p_mask: float = 0.1,
            p_swap: float = 0.1, p_ngram: float = 0.25, max_ngram: int = 5,
            attempts_per_copy: int = 3, min_words: int = 1) -> list[tuple[int, list[str]]]:
    """Up to ``copies`` new sentences per sentence of ``token_lists``, as ``(source_index, tokens)``.

    Only sources of at least ``min_words`` words get new sentences (all of
    them with the default 1). On GLUE's SST-2, nine examples in ten are short
    phrases the treebank already labels; ``min_words`` spends the teacher's
    passes on sentence-length text, where the test sentences are.

    A new sentence equal to its source or to an earlier new sentence of the
    same source is discarded (Tang et al. discard duplicates) and another one
    drawn, at most ``attempts_per_copy * copies`` draws per source, so a
    very short sentence can get fewer than ``copies``. The result is in the
    order of the sources and depends only on the token lists, the
    probabilities and ``seed``.
    """
    if copies < 0:
        raise ValueError(f"the number of new sentences per sentence must be >= 0, got {copies}.")
    for name, p in (("p_mask", p_mask), ("p_swap", p_swap), ("p_ngram", p_ngram)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p}.")
    if p_mask + p_swap > 1.0:
        raise ValueError(f"p_mask + p_swap must be <= 1, got {p_mask + p_swap}.")
    if max_ngram < 1:
        raise ValueError(f"max_ngram must be >= 1, got {max_ngram}.")
    if min_words < 1:
        raise ValueError(f"min_words must be >= 1, got {min_words}.")
    if copies == 0:
        return []
    rng = random.Random(seed)
    sampler = UnigramSampler(token_lists)
    out: list[tuple[int, list[str]]] = []
    for index, tokens in enumerate(token_lists):
        if len(tokens) < min_words:
            continue  # no draw for it: the random stream of the other sources does not depend on it
        seen = {tuple(tokens)}
        made = 0
        for _ in range(attempts_per_copy * copies):
            if made == copies:
                break
            new = augment_sentence(tokens, rng, sampler, p_mask, p_swap, p_ngram, max_ngram)
            key = tuple(new)
            if not new or key in seen:
                continue
            seen.add(key)
            out.append((index, new))
            made += 1
    return out


def teacher_text(tokens: Sequence[str], mask_token: str = "[MASK]") -> str:
    """The text the teacher reads for a transfer-set sentence: the words, the mask as its ``[MASK]``."""
    return " ".join(mask_token if token == MASK else token for token in tokens)
