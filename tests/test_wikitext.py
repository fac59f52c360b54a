"""WikiText: finding the corpus, downloading it safely, parsing it into sentences.

The download tests start an HTTP server on 127.0.0.1 that serves zips the
test builds (no network): a good archive, one with the wrong checksum, a
truncated one, a connection that breaks off, and one whose member escapes the
target folder. Each must fail with one clear sentence and leave nothing
half-written in the cache folder.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from minibert import wikitext
from minibert.wikitext import (WikiTextError, detokenize, documents, download, find_corpus, read_articles,
                               split_sentences)

SAMPLE = """
 = Alpha Beta =

 Alpha Beta is a 1 @,@ 200 @-@ metre tall tower built in 1 @.@ 5 years . It is made of steel .
 The tower 's height ( 1 @,@ 200 m ) was a record . Dr. Smith designed it !

 = = History = =

 = = = Early years = = =

 Work began in 1901 . H. Smith said " it will stand " .

 = Gamma =

 Gamma is a letter .
"""


def make_zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)
    return buffer.getvalue()


GOOD = make_zip({"wikitext-2-raw/wiki.train.raw": SAMPLE, "wikitext-2-raw/wiki.valid.raw": SAMPLE,
                 "wikitext-2-raw/wiki.test.raw": SAMPLE})
EVIL = make_zip({"wikitext-2-raw/wiki.train.raw": SAMPLE, "../escaped.txt": "gotcha"})
NO_TRAIN = make_zip({"wikitext-2-raw/wiki.valid.raw": SAMPLE})


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):  # noqa: N802 (http.server's name)
        body, claimed = self.routes.get(self.path, (None, None))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(claimed if claimed is not None else len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    """A local HTTP server; ``routes[path] = (body, claimed_content_length_or_None)``."""
    _Handler.routes = {
        "/good/wikitext-2-raw-v1.zip": (GOOD, None),
        "/truncated/wikitext-2-raw-v1.zip": (GOOD[: len(GOOD) // 2], None),
        "/broken/wikitext-2-raw-v1.zip": (GOOD[: len(GOOD) // 2], len(GOOD)),  # promises more than it sends
        "/evil/wikitext-2-raw-v1.zip": (EVIL, None),
        "/notrain/wikitext-2-raw-v1.zip": (NO_TRAIN, None),
    }
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# --------------------------------------------------------------------------- download

def test_good_archive_is_verified_and_extracted_with_nothing_else_left(server, tmp_path):
    """A zip with the right size and sha256 is extracted to <cache>/wikitext-2-raw; no temp files remain."""
    folder = download("wikitext-2", tmp_path, url=server + "/good/", expected_size=len(GOOD),
                      expected_sha256=sha(GOOD), progress=False)
    assert folder == tmp_path / "wikitext-2-raw"
    assert (folder / "wiki.train.raw").read_text(encoding="utf-8") == SAMPLE
    assert listing(tmp_path) == ["wikitext-2-raw", "wikitext-2-raw/wiki.test.raw",
                                 "wikitext-2-raw/wiki.train.raw", "wikitext-2-raw/wiki.valid.raw"]


def test_base_url_comes_from_the_environment(server, tmp_path, monkeypatch):
    """$MINIBERT_WIKITEXT_URL replaces the public mirror."""
    monkeypatch.setenv("MINIBERT_WIKITEXT_URL", server + "/good")
    folder = download("wikitext-2-raw-v1", tmp_path, expected_size=len(GOOD), expected_sha256=sha(GOOD),
                      progress=False)
    assert (folder / "wiki.valid.raw").is_file()


@pytest.mark.parametrize("route, size, digest, message", [
    ("/good/", len(GOOD), "0" * 64, "sha256"),
    ("/good/", len(GOOD) - 10, sha(GOOD), "larger than"),
    ("/truncated/", len(GOOD), sha(GOOD), "truncated"),
    ("/broken/", len(GOOD), sha(GOOD), "broke off"),
    ("/evil/", len(EVIL), sha(EVIL), "outside"),
    ("/notrain/", len(NO_TRAIN), sha(NO_TRAIN), "does not contain"),
    ("/missing/", 1, "0" * 64, "could not download"),
], ids=["wrong-checksum", "too-large", "truncated", "connection-broken", "path-escape", "not-wikitext", "http-404"])
def test_bad_downloads_fail_with_one_sentence_and_leave_nothing_behind(server, tmp_path, route, size, digest,
                                                                       message):
    """Each bad download raises WikiTextError naming the problem; the cache folder stays empty."""
    cache = tmp_path / "cache"
    with pytest.raises(WikiTextError, match=message) as info:
        download("wikitext-2", cache, url=server + route, expected_size=size, expected_sha256=digest,
                 progress=False)
    text = str(info.value)
    assert text.count("\n") == 0 and text.endswith("."), f"not one sentence: {text!r}"
    assert listing(cache) == [], f"left behind: {listing(cache)}"
    assert not (tmp_path / "escaped.txt").exists() and not (cache.parent / "escaped.txt").exists()


def test_an_extracted_release_is_not_downloaded_again(tmp_path):
    """If <cache>/wikitext-2-raw/wiki.train.raw exists, download returns it without touching the network."""
    folder = tmp_path / "wikitext-2-raw"
    folder.mkdir()
    (folder / "wiki.train.raw").write_text(SAMPLE, encoding="utf-8")
    assert download("wikitext-2", tmp_path, url="http://127.0.0.1:9/never", progress=False) == folder


def test_unknown_release_name_is_one_sentence(tmp_path):
    with pytest.raises(WikiTextError, match="unknown WikiText name"):
        download("wikitext-7", tmp_path)


def test_the_release_constants_match_the_shared_data_readme():
    """Sizes and sha256 of the official zips, as documented in ../shared/data/README.md."""
    assert wikitext.RELEASES["wikitext-2"]["size"] == 4_721_645
    assert wikitext.RELEASES["wikitext-103"]["sha256"].startswith("91c00ae287f0")


# --------------------------------------------------------------------------- find_corpus

def write_split(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"wiki.{name}.raw").write_text(SAMPLE, encoding="utf-8")
    return folder


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("MINIBERT_DATA_DIR", raising=False)
    monkeypatch.setenv("MINIBERT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("MINIBERT_WIKITEXT_URL", raising=False)


def test_explicit_files_win(clean_env, tmp_path):
    train, valid = tmp_path / "a.txt", tmp_path / "b.txt"
    train.write_text(SAMPLE, encoding="utf-8")
    valid.write_text(SAMPLE, encoding="utf-8")
    assert find_corpus(train=train, valid=valid) == (train, valid, None)


@pytest.mark.parametrize("kwargs, message", [
    (dict(train="nope.txt", valid="nope2.txt"), "does not exist"),
    (dict(train="nope.txt"), "both a training and a validation"),
    (dict(data_dir="no/such/folder"), "does not exist"),
], ids=["missing-file", "only-train", "missing-data-dir"])
def test_bad_locations_are_one_sentence(clean_env, kwargs, message):
    with pytest.raises(WikiTextError, match=message):
        find_corpus(download=False, **kwargs)


def test_data_dir_then_environment_then_cache(clean_env, tmp_path, monkeypatch):
    """Search order: --data-dir, $MINIBERT_DATA_DIR (files or wikitext-2-raw/ inside), the cache."""
    env_dir = write_split(tmp_path / "env" / "wikitext-2-raw", "train", "valid")
    monkeypatch.setenv("MINIBERT_DATA_DIR", str(tmp_path / "env"))
    assert find_corpus(download=False)[0] == env_dir / "wiki.train.raw"
    data_dir = write_split(tmp_path / "mine", "train", "valid")
    assert find_corpus(data_dir=data_dir, download=False)[:2] == (data_dir / "wiki.train.raw",
                                                                    data_dir / "wiki.valid.raw")
    monkeypatch.delenv("MINIBERT_DATA_DIR")
    cache = write_split(tmp_path / "cache" / "wikitext-2-raw", "train", "valid")
    assert find_corpus(cache_dir=tmp_path / "cache", download=False)[0] == cache / "wiki.train.raw"


def test_offline_fallback_trains_on_valid_and_evaluates_on_test_loudly(clean_env, tmp_path, monkeypatch):
    """A folder with only wiki.valid.raw and wiki.test.raw gives (valid, test) and a note saying so."""
    folder = write_split(tmp_path / "shared" / "wikitext-2-raw", "valid", "test")
    monkeypatch.setenv("MINIBERT_DATA_DIR", str(tmp_path / "shared"))
    train, valid, note = find_corpus(download=False)
    assert (train, valid) == (folder / "wiki.valid.raw", folder / "wiki.test.raw")
    assert "VALID" in note and "TEST" in note, note


def test_a_full_corpus_anywhere_beats_the_offline_fallback(clean_env, tmp_path, monkeypatch):
    write_split(tmp_path / "shared" / "wikitext-2-raw", "valid", "test")
    monkeypatch.setenv("MINIBERT_DATA_DIR", str(tmp_path / "shared"))
    cache = write_split(tmp_path / "cache" / "wikitext-2-raw", "train", "valid")
    train, _, note = find_corpus(cache_dir=tmp_path / "cache", download=False)
    assert train == cache / "wiki.train.raw" and note is None


def test_nothing_found_without_download_is_one_sentence(clean_env):
    with pytest.raises(WikiTextError, match="no WikiText files"):
        find_corpus(download=False)


def test_find_corpus_downloads_into_the_cache_when_nothing_is_found(clean_env, server, tmp_path, monkeypatch):
    """As a last resort find_corpus downloads (here from the local server) into the cache folder."""
    monkeypatch.setenv("MINIBERT_WIKITEXT_URL", server + "/good/")
    monkeypatch.setitem(wikitext.RELEASES, "wikitext-2",
                        dict(wikitext.RELEASES["wikitext-2"], size=len(GOOD), sha256=sha(GOOD)))
    monkeypatch.setattr(wikitext, "_progress", lambda *a: None)
    train, valid, note = find_corpus(cache_dir=tmp_path / "c")
    assert train == tmp_path / "c" / "wikitext-2-raw" / "wiki.train.raw" and train.is_file() and note is None


# --------------------------------------------------------------------------- parsing

def test_articles_sections_and_paragraphs(tmp_path):
    """` = T = ` starts an article, `= = H = =` a level-2 section, `= = = H = = =` level 3."""
    path = tmp_path / "wiki.raw"
    path.write_text(SAMPLE, encoding="utf-8")
    articles = read_articles(path)
    assert [a.title for a in articles] == ["Alpha Beta", "Gamma"]
    assert [(s.heading, s.level) for s in articles[0].sections] == [("", 1), ("History", 2), ("Early years", 3)]
    assert len(articles[0].paragraphs) == 3 and articles[1].paragraphs == ["Gamma is a letter ."]


def test_detokenize_undoes_the_artefacts_and_punctuation_spaces():
    assert detokenize("a 1 @,@ 200 @-@ metre tower , built in 1 @.@ 5 years .") == \
        "a 1,200-metre tower, built in 1.5 years."
    assert detokenize("the tower 's height ( 1 @,@ 200 m ) was \" big \" ; isn 't it ?") == \
        "the tower's height (1,200 m) was \"big\"; isn't it?"


def test_sentence_splitter_keeps_initials_and_abbreviations():
    text = "It is made of steel. Dr. Smith designed it! H. Smith said \"it will stand\". 1901 was a year."
    assert split_sentences(text) == ["It is made of steel.", "Dr. Smith designed it!",
                                     "H. Smith said \"it will stand\".", "1901 was a year."]


def test_documents_are_articles_of_detokenised_sentences(tmp_path):
    path = tmp_path / "wiki.raw"
    path.write_text(SAMPLE, encoding="utf-8")
    docs = documents(path)
    assert docs[1] == ["Gamma is a letter."]
    assert docs[0][0] == "Alpha Beta is a 1,200-metre tall tower built in 1.5 years."
    assert len(docs[0]) == 6, docs[0]


def test_plain_text_without_titles_gives_one_document_per_blank_line_block(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("First doc. Second sentence.\n\nOther doc here.\nMore text.\n", encoding="utf-8")
    assert documents(path) == [["First doc.", "Second sentence."], ["Other doc here.", "More text."]]


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"), (b"  \n\n ", "is empty"), ("café …".encode("cp1252"), "not UTF-8"),
], ids=["empty", "blank", "cp1252"])
def test_bad_corpus_files_are_one_sentence(tmp_path, content, message):
    path = tmp_path / "bad.raw"
    path.write_bytes(content)
    with pytest.raises(WikiTextError, match=message):
        documents(path)
    with pytest.raises(WikiTextError, match="does not exist"):
        read_articles(tmp_path / "missing.raw")


def test_real_wikitext2_valid_parses_into_its_articles(data_dir):
    """wiki.valid.raw: 60 articles, no @-@ artefacts left, every sentence non-empty and ending sensibly."""
    path = data_dir / "wikitext-2-raw" / "wiki.valid.raw"
    assert wikitext.sha256_of(path) == "4cd0f6876d07a413aa911261ff6d363c72d757d47f0fdd6015702014c89cb9c7"
    articles = read_articles(path)
    assert len(articles) == 60 and articles[0].title == "Homarus gammarus", len(articles)
    docs = documents(path)
    sentences = [s for d in docs for s in d]
    assert not any("@-@" in s or "@,@" in s or "@.@" in s for s in sentences)
    ends = sum(s[-1] in ".!?\"')" for s in sentences) / len(sentences)
    assert ends > 0.9, f"only {ends:.3f} of {len(sentences)} sentences end with punctuation"
