"""TextCNN inputs: Kim's tokenisation, token ids per split, and length-bucketed mini-batches.

Batches are drawn from a fresh shuffle every epoch; within pools of 50
batches the examples are sorted by length before being cut into batches
(less padding, same batch size and the same examples per epoch; padding
never changes the model's output). ``bucket=False`` turns this off.
"""

from __future__ import annotations

import random

import torch

from minibert.classification_data import Vocabulary, clean_text_kim
from textcnn.model import pad_batch


def tokenize(texts, lowercase: bool = True) -> list[list[str]]:
    """Kim's cleaning, then split on spaces."""
    return [clean_text_kim(t, lower=lowercase).split() for t in texts]


class EncodedSet:
    """Token ids and label ids of one split, kept as Python lists."""

    def __init__(self, token_lists, label_ids, vocab: Vocabulary):
        self.ids = [vocab.encode(tokens) for tokens in token_lists]
        self.labels = list(label_ids)

    def __len__(self) -> int:
        return len(self.labels)


def bucketed_batches(data: EncodedSet, batch_size: int, min_length: int, shuffle: bool = False,
                     rng: random.Random | None = None, bucket: bool = True, pool_batches: int = 50):
    """Yield ``(ids (B, T), lengths (B,), labels (B,))`` covering ``data`` once.

    ``shuffle``: a fresh random order (from ``rng``); ``bucket``: sort each
    pool of ``pool_batches`` batches by length before cutting it, then
    shuffle the order of the batches.
    """
    order = list(range(len(data)))
    if shuffle:
        rng.shuffle(order)
    if bucket:
        pool = batch_size * pool_batches
        chunks = []
        for start in range(0, len(order), pool):
            part = sorted(order[start:start + pool], key=lambda i: len(data.ids[i]))
            chunks += [part[j:j + batch_size] for j in range(0, len(part), batch_size)]
        if shuffle:
            rng.shuffle(chunks)
    else:
        chunks = [order[j:j + batch_size] for j in range(0, len(order), batch_size)]
    for chunk in chunks:
        ids, lengths = pad_batch([data.ids[i] for i in chunk], min_length=min_length)
        yield ids, lengths, torch.tensor([data.labels[i] for i in chunk], dtype=torch.long)
