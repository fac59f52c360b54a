"""TextCNN inputs: token ids per split and length-bucketed mini-batches."""

from __future__ import annotations


def test_length_sorted_batches_cover_every_example_once_per_epoch():
    """Bucketing changes only the grouping: each example appears once, batches hold <= batch_size."""
    import random

    from minibert.classification_data import Vocabulary
    from textcnn.data import EncodedSet, bucketed_batches

    token_lists = [["w"] * (1 + i % 17) + [f"id{i}"] for i in range(237)]
    vocab = Vocabulary.build(token_lists)
    data = EncodedSet(token_lists, [i % 2 for i in range(237)], vocab)
    seen, sizes = [], []
    for ids, lengths, y in bucketed_batches(data, 50, 5, shuffle=True, rng=random.Random(0), pool_batches=2):
        sizes.append(len(y))
        for row, n in zip(ids, lengths.tolist()):
            seen.append(vocab.itos[int(row[n - 1])])  # the last real token names the example
    assert sorted(seen) == sorted(f"id{i}" for i in range(237)), "an example was lost or repeated"
    assert max(sizes) <= 50 and sum(sizes) == 237, sizes
