r"""A corpus tokenised once into a flat ``numpy`` memmap, keyed by what it was made from, reused next time.

At WikiText-103 scale (~100 M tokens) the token ids as Python lists of lists
of ints take several GB; as one flat ``uint16`` array they take 200 MB, and as
a memmap the operating system pages in only what is read. A cache folder
``<cache_dir>/<key>/`` holds

* ``tokens.bin``: the ids of every sentence, one after the other (``uint16``
  when the vocabulary has fewer than 65,536 ids, else ``int32``), $N$ values;
* ``sentence_offsets.npy`` (S+1,) int64: sentence $s$ is ``tokens[o_s:o_{s+1}]``;
* ``document_offsets.npy`` (D+1,) int64: document $d$ is sentences ``[q_d, q_{d+1})``;
* ``meta.json``: the sizes, dtype and what the key was made of.

The folder is filled under a temporary name and renamed into place
(:func:`minibert.training_utils.atomic_write_folder`), so a folder with the
final name is complete unless damaged afterwards; :func:`load_token_cache`
checks the sizes anyway and :func:`token_cache` rebuilds a damaged one.

The key is $\mathrm{sha256}$ of (the corpus file's *content* hash, the hash
of every file of the tokenizer's saved folder, :data:`FORMAT_VERSION`). The
content, not size + mtime + path: a copied or moved corpus still hits, a
same-size edit or a ``touch`` cannot give stale ids, and hashing 500 MB costs
a few seconds once per start-up, well inside the start-up budget.
:data:`FORMAT_VERSION` names the document splitting, detokenisation and
sentence splitting of :mod:`minibert.wikitext` and this layout; bump it when
any of them changes.

Building streams: :func:`minibert.wikitext.iter_documents` yields one
document at a time, its sentences are encoded and appended to ``tokens.bin``
in chunks; only the offsets (8 bytes per sentence) stay in memory.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from minibert.training_utils import atomic_write_folder

#: Version of (document/sentence splitting, detokenisation, sentence filtering, file layout).
FORMAT_VERSION = "minibert-token-cache-1 (wikitext.documents + drop empty sentences and documents)"
TOKENS, SENTENCES, DOCUMENTS, META = "tokens.bin", "sentence_offsets.npy", "document_offsets.npy", "meta.json"
CHUNK_TOKENS = 1 << 20   # tokens buffered before they are appended to tokens.bin


class TokenCacheError(ValueError):
    """A cache folder that is incomplete or corrupt; the message is one sentence."""


@dataclass
class TokenCache:
    """A loaded cache: ``tokens`` (N,) memmap, ``sentence_offsets`` (S+1,), ``document_offsets`` (D+1,), ``folder``."""

    tokens: np.ndarray
    sentence_offsets: np.ndarray
    document_offsets: np.ndarray
    folder: Path

    @property
    def num_tokens(self) -> int:
        return int(self.sentence_offsets[-1])

    @property
    def num_documents(self) -> int:
        return len(self.document_offsets) - 1

    def documents(self) -> list[list[list[int]]]:
        """The cache as documents of sentences of ids (Python lists: for tests and small corpora only)."""
        out = []
        so, do = self.sentence_offsets, self.document_offsets
        for d in range(self.num_documents):
            out.append([self.tokens[so[s]:so[s + 1]].tolist() for s in range(do[d], do[d + 1])])
        return out


def file_sha256(path, block: int = 1 << 22) -> str:
    """The hex sha256 of a file's bytes, read in blocks of ``block`` bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def tokenizer_hash(folder) -> str:
    """sha256 over the names and bytes of every file of a saved tokenizer folder (sorted by name)."""
    h = hashlib.sha256()
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file()):
        h.update(path.name.encode() + b"\0" + file_sha256(path).encode() + b"\0")
    return h.hexdigest()


def cache_key(corpus, tokenizer_folder) -> tuple[str, dict]:
    """``(key, parts)``: the folder name of a corpus's cache and what it was made of."""
    parts = {"corpus_sha256": file_sha256(corpus), "tokenizer_sha256": tokenizer_hash(tokenizer_folder),
             "format": FORMAT_VERSION}
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]
    return key, parts


def token_dtype(vocab_size: int) -> np.dtype:
    """``uint16`` when every id fits ($V \\le 65536$), else ``int32``."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.int32)


def write_token_cache(folder, documents: Iterable[list[str]], encode: Callable[[list[str]], list[list[int]]],
                      vocab_size: int, meta: dict | None = None) -> Path:
    """Tokenise ``documents`` (an iterable of sentence lists) into a cache ``folder``, atomically.

    ``encode`` maps a list of sentences to their id lists (e.g. one
    SentencePiece call per document). Sentences that give no id and documents
    left empty are dropped, as :func:`minibert.pretraining_data.tokenize_documents`
    does. Memory: one chunk of ids plus 8 bytes per sentence and per document.
    """
    dtype = token_dtype(vocab_size)

    def fill(tmp: Path) -> None:
        sentence_offsets, document_offsets = array("q", [0]), array("q", [0])
        buffer, n_tokens, n_buffered = [], 0, 0
        with open(tmp / TOKENS, "wb") as f:
            for doc in documents:
                kept = 0
                for ids in encode(doc):
                    if ids:
                        buffer.append(ids)
                        n_buffered += len(ids)
                        n_tokens += len(ids)
                        sentence_offsets.append(n_tokens)
                        kept += 1
                if kept:
                    document_offsets.append(document_offsets[-1] + kept)
                if n_buffered >= CHUNK_TOKENS:
                    f.write(_flat(buffer, dtype).tobytes())
                    buffer, n_buffered = [], 0
            f.write(_flat(buffer, dtype).tobytes())
        if len(document_offsets) == 1:
            raise ValueError("the corpus gives no token; is it empty?")
        np.save(tmp / SENTENCES, np.frombuffer(sentence_offsets, dtype=np.int64))
        np.save(tmp / DOCUMENTS, np.frombuffer(document_offsets, dtype=np.int64))
        info = {**(meta or {}), "dtype": dtype.name, "num_tokens": n_tokens,
                "num_sentences": len(sentence_offsets) - 1, "num_documents": len(document_offsets) - 1}
        (tmp / META).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")

    Path(folder).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_folder(folder, fill)


def _flat(buffer: list[list[int]], dtype: np.dtype) -> np.ndarray:
    if not buffer:
        return np.zeros(0, dtype=dtype)
    return np.fromiter((t for ids in buffer for t in ids), dtype=dtype, count=sum(map(len, buffer)))


def load_token_cache(folder) -> TokenCache:
    """Open a cache folder (tokens as a read-only memmap); :class:`TokenCacheError` if it is incomplete or corrupt."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        dtype = np.dtype(meta["dtype"])
        sentences = np.load(folder / SENTENCES)
        docs = np.load(folder / DOCUMENTS)
        size = (folder / TOKENS).stat().st_size
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TokenCacheError(f"token cache {folder} is incomplete or corrupt ({type(exc).__name__})") from None
    n = meta.get("num_tokens")
    problems = [size != n * dtype.itemsize, len(sentences) != meta.get("num_sentences", -1) + 1,
                len(docs) != meta.get("num_documents", -1) + 1, sentences.size == 0 or sentences[-1] != n,
                docs.size == 0 or docs[-1] != len(sentences) - 1,
                bool((np.diff(sentences) <= 0).any()), bool((np.diff(docs) <= 0).any())]
    if any(problems):
        raise TokenCacheError(f"token cache {folder} is incomplete or corrupt (sizes do not match meta.json)")
    tokens = np.memmap(folder / TOKENS, dtype=dtype, mode="r", shape=(n,)) if n else np.zeros(0, dtype)
    return TokenCache(tokens, sentences, docs, folder)


def token_cache(cache_dir, corpus, tokenizer, tokenizer_folder, say=print) -> tuple[TokenCache, bool]:
    """The cache of ``corpus`` tokenised by ``tokenizer``: loaded if present, else built. Returns ``(cache, built)``.

    A damaged cache is reported in one line through ``say`` and rebuilt.
    """
    from minibert.wikitext import iter_documents

    key, parts = cache_key(corpus, tokenizer_folder)
    folder = Path(cache_dir) / key
    if folder.is_dir():
        try:
            return load_token_cache(folder), False
        except TokenCacheError as exc:
            say(f"note: {exc}; rebuilding it")
            shutil.rmtree(folder, ignore_errors=True)
    encode = getattr(tokenizer, "texts_to_ids", None) or (lambda texts: [tokenizer.text_to_ids(t) for t in texts])
    write_token_cache(folder, iter_documents(corpus), encode, tokenizer.vocab_size,
                      meta={**parts, "corpus": str(Path(corpus).absolute())})
    return load_token_cache(folder), True
