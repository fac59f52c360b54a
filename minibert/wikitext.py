"""WikiText: find it, download it safely, and parse it into documents of sentences.

WikiText (Merity et al. 2016, CC BY-SA 3.0) is Wikipedia text, one paragraph
per line, pre-tokenised with spaces around punctuation::

     = Homarus gammarus =                      <- article title (level 1)
     = = Description = =                       <- section heading (level 2, deeper: more '=')
     Homarus gammarus is 0 @.@ 7 @-@ 2 kg ...  <- a paragraph

The pipeline in this module::

    find_corpus()  ->  (train.raw, valid.raw)     explicit files, --data-dir, $MINIBERT_DATA_DIR,
                                                  user cache, else download()
    read_articles(path) -> [Article(title, sections[Section(heading, level, paragraphs)])]
    documents(path)     -> [[sentence, sentence, ...], ...]   one document per article

``documents`` is what BERT's data generator wants: each article becomes one
document, its paragraphs are detokenised (``@-@`` -> ``-`` and friends, no
space before ``,`` ...) and split into sentences by a small rule-based splitter
(:func:`split_sentences`; its limits are listed there).

Every failure is one sentence in a :class:`WikiTextError` (a ``ValueError``):
missing file, empty corpus, wrong encoding, bad download.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from minibert.textio import read_utf8

DEFAULT_BASE_URL = "https://wikitext.smerity.com/"

# The official releases: archive name, size in bytes, sha256, folder inside the zip.
RELEASES = {
    "wikitext-2": dict(archive="wikitext-2-raw-v1.zip", size=4_721_645, folder="wikitext-2-raw",
                       sha256="ef7edb566e3e2b2d31b29c1fdb0c89a4cc683597484c3dc2517919c615435a11"),
    "wikitext-103": dict(archive="wikitext-103-raw-v1.zip", size=191_984_949, folder="wikitext-103-raw",
                         sha256="91c00ae287f0d699e18605c84afc9e45c192bc6b7797ff8837e5474655a33794"),
}
_ALIASES = {"wikitext-2-raw-v1": "wikitext-2", "wikitext-2-raw": "wikitext-2",
            "wikitext-103-raw-v1": "wikitext-103", "wikitext-103-raw": "wikitext-103"}

OFFLINE_NOTE = ("NOTE: only wiki.valid.raw and wiki.test.raw were found in {folder} (no wiki.train.raw): "
                "training on the VALID split and evaluating on the TEST split; say so wherever you report "
                "these numbers.")


class WikiTextError(ValueError):
    """A corpus problem explained in one sentence (missing file, empty corpus, encoding, download)."""


# --------------------------------------------------------------------------- finding the corpus

def release(name: str) -> dict:
    """The release record (archive, size, sha256, folder) for ``wikitext-2`` or ``wikitext-103``."""
    key = _ALIASES.get(name, name)
    if key not in RELEASES:
        raise WikiTextError(f"unknown WikiText name {name!r}; choose one of: {', '.join(RELEASES)}.")
    return RELEASES[key]


def default_cache_dir() -> Path:
    """``$MINIBERT_CACHE`` if set, else ``~/.cache/minibert``."""
    value = os.environ.get("MINIBERT_CACHE")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "minibert"


def _check_file(path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise WikiTextError(f"{what} file {path} does not exist; check the path or drop the option "
                            f"to let minibert find or download WikiText.")
    return path


def _candidate_folders(folder: Path, name: str) -> list[Path]:
    """A data folder may hold the files directly or in ``<release folder>/``."""
    return [folder / release(name)["folder"], folder]


def find_corpus(train=None, valid=None, data_dir=None, name: str = "wikitext-2", download: bool = True,
                cache_dir=None) -> tuple[Path, Path, str | None]:
    """Locate a WikiText corpus and return ``(train_path, valid_path, note)``.

    Search order:

    1. explicit ``train`` and ``valid`` files (both must exist; ``note`` is None);
    2. the folders ``data_dir``, ``$MINIBERT_DATA_DIR``, the user cache
       (``cache_dir`` / ``$MINIBERT_CACHE`` / ``~/.cache/minibert``), each either
       holding ``wiki.{train,valid}.raw`` or a ``wikitext-2-raw/`` sub-folder
       that does; the first full corpus wins;
    3. offline fallback: if no folder has ``wiki.train.raw`` but one has
       ``wiki.valid.raw`` and ``wiki.test.raw``, return ``(valid, test)`` and a
       loud ``note`` (train on valid, evaluate on test);
    4. :func:`download` into the cache when ``download`` is true.

    Raises :class:`WikiTextError` with one sentence when nothing is found.
    """
    if train is not None or valid is not None:
        if train is None or valid is None:
            raise WikiTextError("give both a training and a validation file (--train and --valid), "
                                "or neither to let minibert find WikiText.")
        return _check_file(train, "training"), _check_file(valid, "validation"), None

    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    folders: list[Path] = []
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        if not data_dir.is_dir():
            raise WikiTextError(f"data folder {data_dir} does not exist; pass an existing folder to --data-dir.")
        folders.append(data_dir)
    env = os.environ.get("MINIBERT_DATA_DIR")
    if env:
        folders.append(Path(env).expanduser())
    folders.append(cache)

    candidates = [c for f in folders for c in _candidate_folders(f, name)]
    for c in candidates:
        if (c / "wiki.train.raw").is_file() and (c / "wiki.valid.raw").is_file():
            return c / "wiki.train.raw", c / "wiki.valid.raw", None
    for c in candidates:
        if (c / "wiki.valid.raw").is_file() and (c / "wiki.test.raw").is_file():
            return c / "wiki.valid.raw", c / "wiki.test.raw", OFFLINE_NOTE.format(folder=c)
    if not download:
        searched = ", ".join(str(f) for f in folders)
        raise WikiTextError(f"no WikiText files (wiki.train.raw, wiki.valid.raw) found in {searched}; "
                            f"pass --train/--valid, --data-dir, or allow the download.")
    folder = _download_release(name, cache)
    return folder / "wiki.train.raw", folder / "wiki.valid.raw", None


# --------------------------------------------------------------------------- downloading

def _resolve_url(archive: str, url: str | None) -> str:
    """``url`` (argument, else ``$MINIBERT_WIKITEXT_URL``, else the public mirror) as a full zip URL.

    A URL ending in ``.zip`` is used as is; anything else is a base URL the
    archive name is appended to.
    """
    url = url or os.environ.get("MINIBERT_WIKITEXT_URL") or DEFAULT_BASE_URL
    if url.endswith(".zip"):
        return url
    return url.rstrip("/") + "/" + archive


def _progress(done: int, total: int, start: float, label: str) -> None:
    width = 30
    frac = done / total if total else 0.0
    bar = "#" * int(width * frac)
    rate = done / max(time.time() - start, 1e-9) / 1e6
    sys.stderr.write(f"\r  {label} [{bar:<{width}}] {100 * frac:5.1f}%  "
                     f"{done / 1e6:.1f}/{total / 1e6:.1f} MB  {rate:.1f} MB/s")
    sys.stderr.flush()


def _fetch(url: str, dest: Path, expected_size: int, label: str, progress: bool) -> None:
    """Stream ``url`` into ``dest``, checking the byte count against ``expected_size``."""
    try:
        response = urllib.request.urlopen(url, timeout=60)
    except (urllib.error.URLError, OSError) as exc:
        raise WikiTextError(f"could not download {url} ({exc}); check the network or pass local files "
                            f"with --train/--valid or --data-dir.") from None
    done, start = 0, time.time()
    try:
        with response, open(dest, "wb") as out:
            while True:
                try:
                    chunk = response.read(1 << 20)
                except (OSError, ValueError) as exc:  # e.g. http.client.IncompleteRead
                    raise WikiTextError(f"download of {url} broke off after {done} bytes ({exc}); "
                                        f"try again.") from None
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if done > expected_size:
                    raise WikiTextError(f"download of {url} is larger than the release's {expected_size} "
                                        f"bytes, so it is not that file; check the URL.")
                if progress:
                    _progress(done, expected_size, start, label)
    finally:
        if progress:
            sys.stderr.write("\n")
    claimed = response.headers.get("Content-Length")
    if claimed is not None and claimed.isdigit() and done < int(claimed):
        raise WikiTextError(f"download of {url} broke off after {done} of {claimed} bytes; try again.")
    if done != expected_size:
        raise WikiTextError(f"download of {url} is {done} bytes but the release has {expected_size} "
                            f"bytes (truncated or wrong file); try again.")


def sha256_of(path) -> str:
    """Hex sha256 of a file, read in 1 MB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def safe_extract(zip_path, dest) -> None:
    """Extract a zip into ``dest``, refusing any member whose path leaves ``dest``.

    Absolute paths, ``..`` components and drive letters are rejected before
    anything is written.
    """
    dest = Path(dest).resolve()
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise WikiTextError(f"{zip_path} is not a valid zip archive; delete it and download again.") from None
    with archive:
        for member in archive.infolist():
            target = (dest / member.filename).resolve()
            if member.filename.startswith(("/", "\\")) or ":" in member.filename or not (
                    target == dest or dest in target.parents):
                raise WikiTextError(f"refusing to extract {zip_path}: member {member.filename!r} would be "
                                    f"written outside {dest}.")
        archive.extractall(dest)


def download(name: str, cache_dir=None, url: str | None = None, *, expected_size: int | None = None,
             expected_sha256: str | None = None, progress: bool = True) -> Path:
    """Download and extract a WikiText release into ``cache_dir``; return its folder.

    ``name`` is ``wikitext-2`` or ``wikitext-103`` (``-raw-v1`` also accepted).
    The zip is fetched from ``url`` (a full ``.zip`` URL or a base URL; default
    ``$MINIBERT_WIKITEXT_URL`` or the public mirror), its size and sha256 are
    checked against the release (``expected_size``/``expected_sha256`` override
    them, e.g. for a test archive), and it is extracted into a temporary folder
    that is renamed into place only when everything succeeded. On any failure
    nothing is left behind but what was there before. An already extracted
    release is returned without downloading.
    """
    info = release(name)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    final = cache / info["folder"]
    if (final / "wiki.train.raw").is_file():
        return final
    cache.mkdir(parents=True, exist_ok=True)
    size = info["size"] if expected_size is None else expected_size
    digest = info["sha256"] if expected_sha256 is None else expected_sha256
    full_url = _resolve_url(info["archive"], url)

    fd, tmp_zip = tempfile.mkstemp(prefix=".download-", suffix=".zip", dir=cache)
    os.close(fd)
    tmp_dir = Path(tempfile.mkdtemp(prefix=".extract-", dir=cache))
    try:
        _fetch(full_url, Path(tmp_zip), size, info["archive"], progress)
        actual = sha256_of(tmp_zip)
        if actual != digest:
            raise WikiTextError(f"sha256 of {full_url} is {actual}, expected {digest}; the file is corrupt "
                                f"or not the official release, so it was deleted.")
        safe_extract(tmp_zip, tmp_dir)
        extracted = tmp_dir / info["folder"]
        if not (extracted / "wiki.train.raw").is_file():
            raise WikiTextError(f"{info['archive']} does not contain {info['folder']}/wiki.train.raw; "
                                f"it is not a WikiText raw release.")
        if final.exists():  # a partial folder from an older tool: replace it
            shutil.rmtree(final)
        os.replace(extracted, final)
    finally:
        Path(tmp_zip).unlink(missing_ok=True)
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return final


_download_release = download  # find_corpus's ``download`` argument shadows the function's name


# --------------------------------------------------------------------------- parsing

@dataclass
class Section:
    """One section of an article: its heading (``""`` for the lead), level (1 = lead) and paragraphs."""

    heading: str
    level: int
    paragraphs: list[str] = field(default_factory=list)


@dataclass
class Article:
    """One WikiText article: a title and its sections, in order."""

    title: str
    sections: list[Section] = field(default_factory=list)

    @property
    def paragraphs(self) -> list[str]:
        """All paragraphs of the article, section after section (headings excluded)."""
        return [p for s in self.sections for p in s.paragraphs]


_HEADING = re.compile(r"^((?:= )+)(.*?)((?: =)+)$")


def read_text(path) -> str:
    """The UTF-8 text of ``path``; one clear error for a missing, non-UTF-8 or empty file."""
    text = read_utf8(path, "corpus file", error=WikiTextError, missing=WikiTextError)
    if not text.strip():
        raise WikiTextError(f"corpus file {path} is empty; it needs at least one line of text.")
    return text


def read_articles(path) -> list[Article]:
    """Parse a WikiText ``.raw`` file into articles, sections and paragraphs.

    A line `` = Title = `` starts an article, `` = = Heading = = `` a section
    (level = number of ``=``), any other non-blank line is a paragraph (kept
    as in the file, artefacts and all; see :func:`detokenize`). A file without
    any title line (your own text) is read as one document per block of
    lines separated by blank lines, each block an untitled article.
    """
    lines = read_text(path).split("\n")
    if not any(_is_title(line) for line in lines):
        return _read_blocks(lines)
    articles: list[Article] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        m = _HEADING.match(line)
        if m:
            level, heading = m.group(1).count("="), detokenize(m.group(2))
            if level == 1:
                articles.append(Article(heading, [Section("", 1)]))
                continue
            if not articles:
                articles.append(Article("", [Section("", 1)]))
            articles[-1].sections.append(Section(heading, level))
            continue
        if not articles:  # text before the first title
            articles.append(Article("", [Section("", 1)]))
        articles[-1].sections[-1].paragraphs.append(line)
    return articles


def _is_title(line: str) -> bool:
    m = _HEADING.match(line.strip())
    return bool(m) and m.group(1).count("=") == 1 and m.group(3).count("=") == 1


def _read_blocks(lines: list[str]) -> list[Article]:
    articles, current = [], []
    for raw in lines + [""]:
        line = raw.strip()
        if line:
            current.append(line)
        elif current:
            articles.append(Article("", [Section("", 1, current)]))
            current = []
    return articles


_ARTEFACT = re.compile(r" ?@([-,.])@ ?")  # " @-@ " -> "-", also at a line end
_NO_SPACE_BEFORE = re.compile(r"^(?:[,.;:!?%)\]}]+|'s|'re|'ve|'d|'ll|'m|'t|n't|')$")
_NO_SPACE_AFTER = {"(", "[", "{", "$", "£", "€"}


def detokenize(text: str) -> str:
    """Undo WikiText's tokenisation: ``@-@ @,@ @.@`` artefacts, spaces around punctuation, quotes.

    ``"0 @.@ 7 kg ( 1 @,@ 500 lb ) , it 's"`` -> ``"0.7 kg (1,500 lb), it's"``.
    Tokens are joined left to right: closing punctuation and clitics stick to
    the previous token, opening brackets to the next; double quotes alternate
    opening (stick to the next token) and closing (stick to the previous one).
    """
    text = _ARTEFACT.sub(r"\1", text)
    out: list[str] = []
    glue_next = True  # no space before the next token
    quote_open = False
    for token in text.split():
        if token == '"':
            if quote_open:
                out.append('"')
                glue_next = False
            else:
                out.append(('' if glue_next else ' ') + '"')
                glue_next = True
            quote_open = not quote_open
            continue
        glue = glue_next or bool(_NO_SPACE_BEFORE.match(token))
        out.append(('' if glue else ' ') + token)
        glue_next = token in _NO_SPACE_AFTER
    return "".join(out)


ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "no", "nos", "mt", "lt",
                 "gen", "col", "capt", "sgt", "cpl", "rev", "hon", "gov", "sen", "rep", "inc", "ltd", "co",
                 "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
                 "fig", "vol", "ch", "pp", "ca", "approx", "e.g", "i.e", "u.s", "u.k", "a.d", "b.c"}
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Split detokenised text into sentences with a few rules.

    A sentence ends at ``.``, ``!`` or ``?`` (plus any closing quote or
    bracket) followed by a space and an upper-case letter, digit or opening
    quote, unless the word before the period is a known abbreviation
    (:data:`ABBREVIATIONS`) or a single letter (an initial, ``H. gammarus``).

    Limits: abbreviations not in the list (``approx. 5``, ``Ave. Maria``)
    cause false splits; sentences starting with a lower-case word (``iPod``)
    are not split; ellipses and sentence-final abbreviations (``... in the
    U.S. The``) stay joined.
    """
    pieces, start = [], 0
    for m in _BOUNDARY.finditer(text):
        candidate = text[start:m.start()].rstrip("\"')]")
        last = candidate.rsplit(None, 1)[-1] if candidate.split() else ""
        word = last.rstrip(".!?").lstrip("\"'([").lower()
        if candidate.endswith(".") and (word in ABBREVIATIONS or (len(word) == 1 and word.isalpha())):
            continue
        pieces.append(text[start:m.start() + len(m.group(0).rstrip())].strip())
        start = m.end()
    pieces.append(text[start:].strip())
    return [p for p in pieces if p]


def documents(path, min_sentences: int = 1) -> list[list[str]]:
    """One document per article, each a list of detokenised sentences (headings dropped).

    Articles with fewer than ``min_sentences`` sentences are left out. Raises
    :class:`WikiTextError` when no document remains.
    """
    docs = []
    for article in read_articles(path):
        sentences = [s for p in article.paragraphs for s in split_sentences(detokenize(p))]
        if len(sentences) >= min_sentences:
            docs.append(sentences)
    if not docs:
        raise WikiTextError(f"{path} holds no document with at least {min_sentences} sentence(s); "
                            f"is it a text corpus?")
    return docs


def _utf8_lines(path) -> Iterator[str]:
    """The lines of ``path`` split at ``\\n`` only (as ``str.split("\\n")``), decoded one at a time."""
    offset = 0
    with open(path, "rb") as f:
        for raw in f:
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise WikiTextError(f"corpus file {path} is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset "
                                    f"{offset + exc.start}); convert it, e.g. with `iconv -f cp1252 -t utf-8`.") from None
            offset += len(raw)


def iter_documents(path, min_sentences: int = 1) -> Iterator[list[str]]:
    """:func:`documents` streamed: the same documents, one at a time, without reading the whole file.

    One pass looks for a title line (no title: documents are blocks of lines
    between blank lines, as :func:`read_articles` does), a second pass yields
    each article's sentences when the next title starts. Empty sentences are
    dropped. Memory: one article. Raises :class:`WikiTextError` when the file
    is missing, not UTF-8, empty or holds no document.
    """
    path = Path(path)
    if path.is_dir():
        raise WikiTextError(f"corpus file {path} is a folder, not a file; give the file itself.")
    if not path.is_file():
        raise WikiTextError(f"corpus file {path} does not exist; check the path.")
    titled = any(_is_title(line) for line in _utf8_lines(path))
    found = False

    def finish(paragraphs: list[str]) -> list[str]:
        return [s for p in paragraphs for s in split_sentences(detokenize(p)) if s.strip()]

    paragraphs: list[str] | None = None
    for raw in _utf8_lines(path):
        line = raw.strip()
        if not titled:   # blocks of non-blank lines
            if line:
                paragraphs = [] if paragraphs is None else paragraphs
                paragraphs.append(line)
                continue
            if paragraphs:
                sentences = finish(paragraphs)
                if len(sentences) >= min_sentences and sentences:
                    found = True
                    yield sentences
            paragraphs = None
            continue
        if not line:
            continue
        m = _HEADING.match(line)
        if m and m.group(1).count("=") == 1:
            if paragraphs is not None:
                sentences = finish(paragraphs)
                if len(sentences) >= min_sentences and sentences:
                    found = True
                    yield sentences
            paragraphs = []
            continue
        if paragraphs is None:
            paragraphs = []   # text (or a section heading) before the first title
        if not m:
            paragraphs.append(line)
    if paragraphs:
        sentences = finish(paragraphs)
        if len(sentences) >= min_sentences and sentences:
            found = True
            yield sentences
    if not found:
        raise WikiTextError(f"{path} holds no document with at least {min_sentences} sentence(s); "
                            f"is it a text corpus?")
