"""Pretrained word vectors for a TextCNN vocabulary: word2vec / GloVe files, or a BERT's input embeddings.

Files (:func:`load_vectors`):

* **text** (word2vec ``-binary 0``, GloVe): one word per line,
  ``word v1 v2 ... vk`` separated by spaces; word2vec text files start with a
  header line ``<count> <k>``, GloVe files do not (both are accepted);
* **binary** (word2vec ``-binary 1``, e.g. ``GoogleNews-vectors-negative300.bin``):
  the header line ``<count> <k>``, then for every word its bytes, one space,
  and $k$ little-endian float32 numbers (optionally followed by a newline).
  Chosen by the ``.bin`` suffix, or when the bytes after the first word are
  not text numbers.

Only the words of the vocabulary are kept, so a large file is streamed, never
loaded whole (GoogleNews: 3 million words, 3.6 GB). Words the file does not
have are initialised $U[-a, a]$ with $a = 0.25$, as Kim (2014) did, so that
unknown words have about the variance of the pretrained ones; ``<pad>`` is zero.

A BERT (:func:`vectors_from_bert`, ``--vectors-from-bert RUN``): a word's
vector is the mean of the input (word-piece) embeddings of its sub-words,
$\\mathbf{x}_w = \\frac{1}{|P(w)|} \\sum_{p \\in P(w)} E_p$, with $P(w)$ the pieces the
BERT's own tokenizer makes of $w$ and $E$ its ``word_embeddings`` matrix.
No network is needed, so the static / non-static / multichannel modes can run
offline with our pretrained mini-BERT or any BERT folder at hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from minibert.classification_data import PAD, UNK, Vocabulary


class VectorsError(ValueError):
    """A word-vector file (or BERT folder) cannot be read."""


@dataclass
class LoadedVectors:
    """Embedding matrix for a vocabulary, and how much of it the source covered."""

    weight: torch.Tensor  # (len(vocab), k)
    found: int  # vocabulary words (excluding <pad>, <unk>) found in the file
    total: int  # vocabulary words (excluding <pad>, <unk>)

    @property
    def coverage(self) -> float:
        """Fraction of vocabulary words that got a pretrained vector."""
        return self.found / max(self.total, 1)


def load_vectors(path, vocab: Vocabulary, init_range: float = 0.25, seed: int = 0,
                 lowercase: bool = False, binary: bool | None = None) -> LoadedVectors:
    """Embedding matrix for ``vocab`` from a word2vec (text or binary) or GloVe file.

    Row ``i`` holds the file's vector of ``vocab.itos[i]`` when the file has
    the word (the first occurrence wins; with ``lowercase=True`` the file's
    words are lower-cased before matching), else a draw from
    $U[-\\text{init\\_range}, \\text{init\\_range}]$ (seeded by ``seed``).
    ``binary``: ``None`` decides from the file (see the module text).
    Returns the matrix ``(len(vocab), k)`` and the coverage counts.
    """
    path = Path(path)
    if path.is_dir():
        raise VectorsError(f"{path} is a folder, not a vector file; give the file itself.")
    if not path.is_file():
        raise VectorsError(f"{path}: cannot open the vector file (no such file); give a word2vec "
                           f"(.bin or text) or GloVe file.")
    wanted = {w: i for i, w in enumerate(vocab.itos) if w not in (PAD, UNK)}
    if binary is None:
        binary = _looks_binary(path)
    rows, dim = (_read_binary(path, wanted, lowercase) if binary else _read_text(path, wanted, lowercase))
    generator = torch.Generator().manual_seed(seed)
    weight = torch.empty(len(vocab), dim).uniform_(-init_range, init_range, generator=generator)
    for i, row in rows.items():
        weight[i] = row
    weight[vocab.pad_id] = 0.0
    return LoadedVectors(weight=weight, found=len(rows), total=len(wanted))


def _read_text(path: Path, wanted: dict, lowercase: bool) -> tuple[dict, int]:
    """Rows ``{vocab id: vector}`` of a text vector file, and the dimension."""
    try:
        handle = path.open("r", encoding="utf-8", errors="replace")
    except OSError as exc:
        raise VectorsError(f"{path}: cannot open the vector file ({exc.strerror or exc}).") from None
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
    return rows, dim


_HEADER = re.compile(rb"\s*(\d+) (\d+)\s*")
_TEXT_NUMBER_BYTES = frozenset(b"0123456789.-+eE \t\r")


def _looks_binary(path: Path) -> bool:
    """``.bin``, or a word2vec header followed by a first vector that is not written as text."""
    if path.suffix.lower() == ".bin":
        return True
    with path.open("rb") as f:
        start = f.read(1 << 16)
    line, _, rest = start.partition(b"\n")
    header = _HEADER.fullmatch(line)
    if header is None:
        return False
    _, space, after = rest.partition(b" ")
    first_line = after.partition(b"\n")[0]  # text: "v1 v2 ... vk" of the first word
    as_text = set(first_line) <= _TEXT_NUMBER_BYTES and len(first_line.split()) == int(header.group(2))
    return bool(space) and not as_text


class _Chunks:
    """Read a binary file in 1 MB chunks: words up to a space, vectors of fixed size."""

    def __init__(self, handle, chunk: int = 1 << 20):
        self.handle, self.chunk = handle, chunk
        self.buf, self.pos = b"", 0

    def _more(self) -> bool:
        data = self.handle.read(self.chunk)
        if not data:
            return False
        self.buf, self.pos = self.buf[self.pos:] + data, 0
        return True

    def word(self, max_bytes: int = 4096) -> bytes | None:
        """The next word (leading newlines skipped), ``None`` at a clean end of file."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in b"\n\r":
                self.pos += 1
            end = self.buf.find(b" ", self.pos)
            if end >= 0:
                word, self.pos = self.buf[self.pos:end], end + 1
                return word
            if len(self.buf) - self.pos > max_bytes:
                raise ValueError("no space after a word")
            if not self._more():
                return None if self.pos >= len(self.buf) else b""

    def exactly(self, n: int) -> bytes | None:
        """The next ``n`` bytes, or ``None`` if the file ends first."""
        while len(self.buf) - self.pos < n:
            if not self._more():
                return None
        data, self.pos = self.buf[self.pos:self.pos + n], self.pos + n
        return data


def _read_binary(path: Path, wanted: dict, lowercase: bool) -> tuple[dict, int]:
    """Rows ``{vocab id: vector}`` of a binary word2vec file, and the dimension (streamed)."""
    rows: dict[int, torch.Tensor] = {}
    with path.open("rb") as handle:
        header = _HEADER.fullmatch(handle.readline())
        if header is None:
            raise VectorsError(f"{path}: not a binary word2vec file (the first line should be "
                               f"'<count> <dimension>'); for a text file pass binary=False.")
        count, dim = int(header.group(1)), int(header.group(2))
        if dim < 1:
            raise VectorsError(f"{path}: the header announces vectors of dimension {dim}.")
        stream = _Chunks(handle)
        for n in range(count):
            try:
                raw = stream.word()
            except ValueError:
                raise VectorsError(f"{path}: word {n + 1} of {count} is not followed by a space; "
                                   f"the file is not binary word2vec or is corrupt.") from None
            vector = None if not raw else stream.exactly(4 * dim)
            if vector is None:
                raise VectorsError(f"{path}: the file ends inside word {n + 1} of the {count} its header "
                                   f"announces; it is truncated (download it again).")
            word = raw.decode("utf-8", errors="replace")
            if lowercase:
                word = word.lower()
            i = wanted.get(word)
            if i is not None and i not in rows:
                rows[i] = torch.from_numpy(np.frombuffer(vector, dtype="<f4").astype(np.float32))
    return rows, dim


# ---------------------------------------------------------------------------
# vectors from a BERT's input embeddings


def bert_folder(path) -> Path:
    """The folder holding a BERT's ``config.json``: ``path`` itself or its ``export/`` (a run folder)."""
    from minibert.classify import ClassifierError, model_folder

    try:
        return model_folder(path)
    except ClassifierError as exc:
        raise VectorsError(str(exc)) from None


def bert_tokenizer(folder: Path):
    """The tokenizer saved with a BERT folder (:func:`minibert.tokenization.load_tokenizer`)."""
    from minibert.tokenization import load_tokenizer

    try:
        return load_tokenizer(folder)
    except (FileNotFoundError, ValueError) as exc:
        raise VectorsError(f"no tokenizer next to the BERT: {exc}.") from None


def bert_input_embeddings(folder: Path) -> torch.Tensor:
    """The ``word_embeddings`` matrix ``(V, C)`` of a BERT checkpoint folder (any key prefix)."""
    from minibert.hf import _read_weights

    try:
        state = _read_weights(folder)
    except (FileNotFoundError, ImportError) as exc:
        raise VectorsError(str(exc)) from None
    keys = [k for k in state if k.endswith("embeddings.word_embeddings.weight")]
    if len(keys) != 1:
        raise VectorsError(f"{folder}: expected one '...embeddings.word_embeddings.weight' tensor in the "
                           f"weights, found {len(keys)}.")
    return state[keys[0]].float()


def vectors_from_bert(path, vocab: Vocabulary) -> LoadedVectors:
    r"""Word vectors as the mean of each word's sub-word input embeddings in a BERT.

    $$\mathbf{x}_w = \frac{1}{|P(w)|} \sum_{p \in P(w)} E_p$$

    $P(w)$: the ids the BERT's tokenizer gives the word ``w`` (a vocabulary
    entry, e.g. ``"unwatchable"`` -> ``un ##watch ##able``); $E$: the BERT's
    ``word_embeddings`` ``(V_bert, C)``. ``<unk>`` gets the BERT's ``[UNK]``
    row, ``<pad>`` zero. A word counts as *found* when none of its pieces is
    ``[UNK]``. ``path``: a ``minibert pretrain`` run folder (its ``export/``
    is used), an export folder, or a transformers BERT folder. Returns the
    matrix ``(len(vocab), C)`` and the coverage counts.
    """
    folder = bert_folder(path)
    tokenizer = bert_tokenizer(folder)
    table = bert_input_embeddings(folder)  # (V_bert, C)
    if table.shape[0] < tokenizer.vocab_size:
        raise VectorsError(f"{folder}: the embeddings have {table.shape[0]} rows but the tokenizer "
                           f"{tokenizer.vocab_size} tokens; they do not belong together.")
    weight = torch.zeros(len(vocab), table.shape[1])
    found = total = 0
    for i, word in enumerate(vocab.itos):
        if word == PAD:
            continue
        if word == UNK:
            weight[i] = table[tokenizer.unk_id]
            continue
        ids = tokenizer.text_to_ids(word) or [tokenizer.unk_id]
        weight[i] = table[ids].mean(dim=0)
        total += 1
        found += tokenizer.unk_id not in ids
    return LoadedVectors(weight=weight, found=found, total=total)


# ---------------------------------------------------------------------------
# command-line options shared by the TextCNN commands


def add_vector_arguments(parser) -> None:
    """``--vectors FILE`` and ``--vectors-from-bert RUN`` (for the static, non-static and multichannel modes)."""
    parser.add_argument("--vectors", help="word2vec (text or binary .bin) or GloVe file "
                                          "(for --mode static, non-static, multichannel)")
    parser.add_argument("--vectors-from-bert", metavar="RUN",
                        help="instead of --vectors: a word's vector is the mean of its sub-word input "
                             "embeddings in this BERT (a 'minibert pretrain' run, its export/, or a "
                             "transformers folder)")


def check_vector_arguments(args) -> None:
    """The option checks of :func:`vectors_for`, without reading anything (commands run them first)."""
    source = getattr(args, "vectors", None)
    bert = getattr(args, "vectors_from_bert", None)
    if source and bert:
        raise VectorsError("give --vectors or --vectors-from-bert, not both.")
    if args.mode == "rand" and (source or bert):
        raise VectorsError(f"--vectors{'-from-bert' if bert else ''} is not used by --mode rand (it starts "
                           f"from random vectors); drop it, or choose --mode static, non-static or multichannel.")
    if args.mode != "rand" and not (source or bert):
        raise VectorsError(f"--mode {args.mode} needs --vectors FILE or --vectors-from-bert RUN.")


def vectors_for(args, vocab: Vocabulary, log=print) -> torch.Tensor | None:
    """The initial embedding matrix the parsed ``args`` ask for (``None`` in rand mode)."""
    check_vector_arguments(args)
    if args.mode == "rand":
        return None
    source = getattr(args, "vectors", None)
    bert = getattr(args, "vectors_from_bert", None)
    if bert:
        loaded = vectors_from_bert(bert, vocab)
        log(f"vectors: mean sub-word embeddings of {bert_folder(bert)}; {loaded.found} of {loaded.total} "
            f"vocabulary words without [UNK] pieces ({loaded.coverage:.1%})")
        return loaded.weight
    loaded = load_vectors(source, vocab, seed=args.seed)
    log(f"vectors: {loaded.found} of {loaded.total} vocabulary words found in {source} "
        f"({loaded.coverage:.1%}); the others start U[-0.25, 0.25]")
    return loaded.weight
