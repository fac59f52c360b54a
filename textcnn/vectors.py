"""Pretrained word vectors from word2vec / GloVe *text* files.

Format: one word per line, ``word v1 v2 ... vk`` separated by spaces; word2vec
text files start with a header line ``<count> <k>``, GloVe files do not (both
are accepted). Only the words of the vocabulary are kept, so a large file is
streamed, not loaded whole. Words the file does not have are initialised
$U[-a, a]$ with $a = 0.25$, as Kim (2014) did, so that unknown words have
about the variance of the pretrained ones; ``<pad>`` is zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from minibert.classification_data import PAD, UNK, Vocabulary


class VectorsError(ValueError):
    """A word-vector file cannot be read."""


@dataclass
class LoadedVectors:
    """Embedding matrix for a vocabulary, and how much of it the file covered."""

    weight: torch.Tensor  # (len(vocab), k)
    found: int  # vocabulary words (excluding <pad>, <unk>) found in the file
    total: int  # vocabulary words (excluding <pad>, <unk>)

    @property
    def coverage(self) -> float:
        """Fraction of vocabulary words that got a pretrained vector."""
        return self.found / max(self.total, 1)


def load_vectors(path, vocab: Vocabulary, init_range: float = 0.25, seed: int = 0,
                 lowercase: bool = False) -> LoadedVectors:
    """Embedding matrix for ``vocab`` from a word2vec/GloVe text file.

    Row ``i`` holds the file's vector of ``vocab.itos[i]`` when the file has
    the word (the first occurrence wins; with ``lowercase=True`` the file's
    words are lower-cased before matching), else a draw from
    $U[-\\text{init\\_range}, \\text{init\\_range}]$ (seeded by ``seed``).
    Returns the matrix ``(len(vocab), k)`` and the coverage counts.
    """
    path = Path(path)
    if path.is_dir():
        raise VectorsError(f"{path} is a folder, not a vector file; give the file itself.")
    try:
        handle = path.open("r", encoding="utf-8", errors="replace")
    except OSError as exc:
        raise VectorsError(f"{path}: cannot open the vector file ({exc.strerror or exc}).") from None
    wanted = {w: i for i, w in enumerate(vocab.itos) if w not in (PAD, UNK)}
    rows: dict[int, torch.Tensor] = {}
    dim = None
    with handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])  # word2vec header: "<count> <k>"
                continue
            if len(parts) < 2:
                if not line.strip():
                    continue
                raise VectorsError(f"{path}, line {number}: expected 'word v1 v2 ...', got {line[:60]!r}.")
            word, values = parts[0], parts[1:]
            if dim is None:
                dim = len(values)
            if len(values) != dim:
                raise VectorsError(f"{path}, line {number}: {len(values)} numbers where the file uses {dim}.")
            if lowercase:
                word = word.lower()
            i = wanted.get(word)
            if i is None or i in rows:
                continue
            try:
                rows[i] = torch.tensor([float(v) for v in values])
            except ValueError:
                raise VectorsError(f"{path}, line {number}: the vector of {word!r} is not numeric.") from None
            if not torch.isfinite(rows[i]).all():
                raise VectorsError(f"{path}, line {number}: the vector of {word!r} holds nan or inf; "
                                   f"fix or drop that line.")
    if dim is None:
        raise VectorsError(f"{path}: the file holds no vectors.")
    generator = torch.Generator().manual_seed(seed)
    weight = torch.empty(len(vocab), dim).uniform_(-init_range, init_range, generator=generator)
    for i, row in rows.items():
        weight[i] = row
    weight[vocab.pad_id] = 0.0
    return LoadedVectors(weight=weight, found=len(rows), total=len(wanted))
