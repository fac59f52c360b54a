"""Sentence-classification data: readers, label ids, Kim's cleaning, vocabulary, splits.

Shared by the TextCNN (``textcnn``) and, later, BERT fine-tuning. Three file
formats are read, each into a list of texts and a parallel list of *raw*
labels (strings, as written in the file):

* ``<label> <text>`` lines (MR ``rt-polarity.all``, SST ``stsa.binary.*``):
  the label, one space, the text. The file is split on the byte ``\\n`` only,
  never with ``str.splitlines()``: MR is cp1252 and contains byte 0x85, which
  ``splitlines`` would treat as a line break and so add lines.
* TSV with a header line (GLUE: ``sentence<TAB>label``).
* CSV with a header line.

:class:`LabelMap` turns raw labels of any kind into ids ``0..K-1`` and is
saved next to a model; :class:`Vocabulary` turns tokens into ids;
:func:`stratified_kfold` and :func:`dev_split` make seeded, class-balanced
splits. Bad input raises :class:`ClassificationDataError` with one sentence
that names the file and the line.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from minibert.textio import atomic_write_text

PAD, UNK = "<pad>", "<unk>"


class ClassificationDataError(ValueError):
    """A data file (or a list of labels) cannot be used for classification."""


# ---------------------------------------------------------------------------
# readers


def _read_bytes(path) -> bytes:
    path = Path(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ClassificationDataError(
            f"{path}: cannot read the file ({exc.strerror or exc}); check the path.") from None


def _decode(raw: bytes, path, encoding: str | None) -> str:
    """Decode with ``encoding``, or try UTF-8 then cp1252 when it is ``None``."""
    candidates = [encoding] if encoding else ["utf-8", "cp1252"]
    for name in candidates:
        try:
            return raw.decode(name)
        except UnicodeDecodeError as exc:
            error = exc
    line = raw[: error.start].count(b"\n") + 1
    raise ClassificationDataError(
        f"{path}, line {line}: bytes are not valid {' or '.join(candidates)}; "
        f"pass the file's encoding.")


def read_label_text_lines(path, encoding: str | None = None) -> tuple[list[str], list[str]]:
    """Read a ``<label> <text>`` file: one example per line, label first.

    Splits on ``\\n`` only (a final newline ends the last line and adds no
    example; ``\\r\\n`` endings are accepted). Returns ``(texts, labels)``,
    both lists of ``str`` with one entry per line of the file.
    """
    text = _decode(_read_bytes(path), path, encoding)
    lines = text.split("\n")  # never str.splitlines(): U+0085 etc. are not line ends here
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ClassificationDataError(f"{path}: the file is empty; expected '<label> <text>' lines.")
    texts, labels = [], []
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        label, sep, text = line.partition(" ")
        if not label.strip() or not sep or not text.strip():
            raise ClassificationDataError(
                f"{path}, line {number}: expected '<label> <text>' but got {line[:60]!r}.")
        labels.append(label)
        texts.append(text.strip())
    return texts, labels


def _read_table(path, delimiter: str, text_column: str, label_column: str | None,
                encoding: str | None) -> tuple[list[str], list[str] | None]:
    text = _decode(_read_bytes(path), path, encoding)
    if not text.strip():
        raise ClassificationDataError(f"{path}: the file is empty; expected a header line and rows.")
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    header = next(rows)
    for column in (text_column, label_column):
        if column is not None and column not in header:
            raise ClassificationDataError(
                f"{path}, line 1: the header {header} has no column {column!r}; "
                f"name the right one with --text-column / --label-column.")
    if text_column == label_column:
        raise ClassificationDataError(f"{path}: the text and the label column are both {text_column!r}.")
    t = header.index(text_column)
    y = header.index(label_column) if label_column is not None else None
    texts, labels = [], []
    for number, row in enumerate(rows, start=2):
        if not row:
            raise ClassificationDataError(f"{path}, line {number}: empty row; remove it.")
        if len(row) != len(header):
            raise ClassificationDataError(
                f"{path}, line {number}: {len(row)} fields where the header has {len(header)}.")
        if not row[t].strip():
            raise ClassificationDataError(f"{path}, line {number}: the text is empty.")
        texts.append(row[t].strip())
        if y is not None:
            if not row[y].strip():
                raise ClassificationDataError(f"{path}, line {number}: the row has no label.")
            labels.append(row[y].strip())
    if not texts:
        raise ClassificationDataError(f"{path}: the file has a header but no rows.")
    return texts, (labels if y is not None else None)


def read_tsv(path, text_column: str = "sentence", label_column: str | None = "label",
             encoding: str | None = None) -> tuple[list[str], list[str] | None]:
    """Read a tab-separated file with a header line (GLUE); labels are ``None`` if no label column."""
    return _read_table(path, "\t", text_column, label_column, encoding)


def read_csv(path, text_column: str = "text", label_column: str | None = "label",
             encoding: str | None = None) -> tuple[list[str], list[str] | None]:
    """Read a comma-separated file with a header line (quoted fields allowed)."""
    return _read_table(path, ",", text_column, label_column, encoding)


def read_examples(path, encoding: str | None = None, text_column: str | None = None,
                  label_column: str | None = None) -> tuple[list[str], list[str]]:
    """Read labelled examples, choosing the reader by extension.

    ``.tsv`` -> :func:`read_tsv` (columns ``sentence``/``label`` unless
    ``text_column``/``label_column`` name others), ``.csv`` -> :func:`read_csv`
    (``text``/``label``), anything else -> :func:`read_label_text_lines`.
    """
    suffix = Path(path).suffix.lower()
    if Path(path).is_dir():
        raise ClassificationDataError(f"{path} is a folder, not a data file; give the file itself.")
    if suffix in (".tsv", ".csv"):
        reader = read_tsv if suffix == ".tsv" else read_csv
        columns = {}
        if text_column:
            columns["text_column"] = text_column
        if label_column:
            columns["label_column"] = label_column
        texts, labels = reader(path, encoding=encoding, **columns)
    else:
        texts, labels = read_label_text_lines(path, encoding=encoding)
    if labels is None:  # pragma: no cover - both table readers above ask for a label column
        raise ClassificationDataError(f"{path}: no labels found.")
    return texts, labels


# ---------------------------------------------------------------------------
# labels


class LabelMap:
    """Raw labels (any strings) <-> ids ``0..K-1``, saved as JSON next to a model.

    Labels that all look like integers are ordered numerically (``"0" -> 0``,
    ``"1" -> 1``); others alphabetically, so the mapping does not depend on
    the order of the file.
    """

    def __init__(self, names: Sequence[str]):
        self.names = [str(n) for n in names]
        self.index = {name: i for i, name in enumerate(self.names)}
        if len(self.index) != len(self.names):
            raise ClassificationDataError(f"label names repeat: {self.names}.")

    @classmethod
    def from_labels(cls, labels: Iterable[str], source: str = "the training data") -> "LabelMap":
        """Build from raw labels; at least two distinct classes are required."""
        distinct = set(str(label) for label in labels)
        if len(distinct) < 2:
            raise ClassificationDataError(
                f"{source} has {len(distinct)} class(es) ({sorted(distinct)}); "
                f"classification needs at least 2.")
        if all(re.fullmatch(r"-?\d+", d) for d in distinct):
            names = sorted(distinct, key=int)
        else:
            names = sorted(distinct)
        return cls(names)

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, labels: Iterable[str], source: str = "the data") -> list[int]:
        """Raw labels -> ids; a label the map does not know is an error."""
        ids = []
        for i, label in enumerate(labels):
            if str(label) not in self.index:
                raise ClassificationDataError(
                    f"{source}, example {i + 1}: label {label!r} is not one of {self.names}.")
            ids.append(self.index[str(label)])
        return ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids -> raw label names."""
        return [self.names[int(i)] for i in ids]

    def save(self, path) -> None:
        """Write ``{"names": [...]}`` as JSON."""
        atomic_write_text(json.dumps({"names": self.names}, indent=1) + "\n", path)

    @classmethod
    def load(cls, path) -> "LabelMap":
        """Read a map written by :meth:`save`."""
        return cls(json.loads(Path(path).read_text(encoding="utf-8"))["names"])


# ---------------------------------------------------------------------------
# text cleaning and vocabulary

_CONTRACTIONS = [("'s", " 's"), ("'ve", " 've"), ("n't", " n't"), ("'re", " 're"),
                 ("'d", " 'd"), ("'ll", " 'll")]
_SPACED = [",", "!", "(", ")", "?"]


def clean_text_kim(text: str, lower: bool = True) -> str:
    """Kim (2014)'s tokenisation for sentence classification.

    Every character other than ASCII letters, digits and ``( ) , ! ? ' `` ` ``
    becomes a space; the clitics ``'s 've n't 're 'd 'll`` are split off the
    word before them; ``, ! ( ) ?`` become tokens of their own; runs of spaces
    collapse to one; the result is lower-cased (``lower=True``). The text is
    then split on spaces into tokens. Applied the same way to MR, SST and
    GLUE SST-2, so already-tokenised and raw text end up alike.
    """
    text = re.sub(r"[^A-Za-z0-9(),!?'`]", " ", text)
    for clitic, spaced in _CONTRACTIONS:
        text = text.replace(clitic, spaced)
    for mark in _SPACED:
        text = text.replace(mark, f" {mark} ")
    text = re.sub(r"\s{2,}", " ", text).strip()
    return text.lower() if lower else text


class Vocabulary:
    """Tokens <-> ids, with ``<pad>`` = 0 and ``<unk>`` = 1.

    Built from tokenised training texts, keeping tokens seen at least
    ``min_count`` times, most frequent first (ties alphabetically, so the
    ids are reproducible).
    """

    def __init__(self, itos: Sequence[str]):
        if list(itos[:2]) != [PAD, UNK]:
            raise ClassificationDataError(f"a vocabulary must start with {PAD!r}, {UNK!r}; got {list(itos[:2])}.")
        self.itos = list(itos)
        self.stoi = {token: i for i, token in enumerate(self.itos)}
        self.pad_id, self.unk_id = 0, 1

    @classmethod
    def build(cls, tokenised: Iterable[Sequence[str]], min_count: int = 1) -> "Vocabulary":
        """Vocabulary of the tokens that occur at least ``min_count`` times."""
        if min_count < 1:
            raise ClassificationDataError(f"min_count must be >= 1, got {min_count}.")
        counts = Counter(token for tokens in tokenised for token in tokens)
        kept = sorted((t for t, c in counts.items() if c >= min_count and t not in (PAD, UNK)),
                      key=lambda t: (-counts[t], t))
        return cls([PAD, UNK] + kept)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Tokens -> ids; unknown tokens map to ``<unk>``."""
        return [self.stoi.get(token, self.unk_id) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids -> tokens."""
        return [self.itos[int(i)] for i in ids]

    def save(self, path) -> None:
        """One token per line, id = line number - 1."""
        atomic_write_text("\n".join(self.itos) + "\n", path)

    @classmethod
    def load(cls, path) -> "Vocabulary":
        """Read a vocabulary written by :meth:`save`."""
        return cls(Path(path).read_text(encoding="utf-8").split("\n")[:-1])


# ---------------------------------------------------------------------------
# splits


def _by_class(labels: Sequence, seed: int) -> list[list[int]]:
    """Indices of each class (classes in sorted order), each list shuffled with ``seed``."""
    rng = random.Random(seed)
    groups: dict = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    out = []
    for label in sorted(groups, key=str):
        idx = groups[label]
        rng.shuffle(idx)
        out.append(idx)
    return out


def stratified_kfold(labels: Sequence, k: int, seed: int = 0) -> list[tuple[list[int], list[int]]]:
    """Seeded stratified ``k``-fold split: a list of ``(train_indices, test_indices)``.

    Each class's indices are shuffled and dealt to the folds in turn (the
    deal continues across classes), so the test folds partition
    ``range(len(labels))``, their sizes differ by at most one, and each
    fold's class counts differ from ``count/k`` by less than one.
    """
    if k < 2:
        raise ClassificationDataError(f"k-fold needs k >= 2, got {k}.")
    if k > len(labels):
        raise ClassificationDataError(f"cannot make {k} folds of {len(labels)} examples.")
    folds: list[list[int]] = [[] for _ in range(k)]
    position = 0
    for idx in _by_class(labels, seed):
        for i in idx:
            folds[position % k].append(i)
            position += 1
    out = []
    for f in range(k):
        test = sorted(folds[f])
        test_set = set(test)
        out.append(([i for i in range(len(labels)) if i not in test_set], test))
    return out


def dev_split(labels: Sequence, fraction: float = 0.1, seed: int = 0) -> tuple[list[int], list[int]]:
    """Seeded stratified hold-out: ``(train_indices, dev_indices)`` with ``fraction`` of each class in dev.

    Used when no dev file is given (Kim held out 10% of the training data).
    """
    if not 0.0 < fraction < 1.0:
        raise ClassificationDataError(f"the dev fraction must be in (0, 1), got {fraction}.")
    train, dev = [], []
    for idx in _by_class(labels, seed):
        n_dev = int(round(fraction * len(idx)))
        dev += idx[:n_dev]
        train += idx[n_dev:]
    if not dev or not train:
        raise ClassificationDataError(f"{len(labels)} examples are too few for a {fraction:.0%} dev split.")
    return sorted(train), sorted(dev)


# ---------------------------------------------------------------------------
# the data options of every classifier command, and the splits they give


def add_data_arguments(parser) -> None:
    """Add the data options every classifier command shares (``textcnn train``, ``minibert finetune``, ...).

    ``--train/--dev/--test``, ``--text-column``/``--label-column`` (tables),
    ``--cv K`` with ``--folds``, ``--dev-fraction`` and ``--limit``. The
    numbers are checked while parsing (see :mod:`minibert.cli`). With the
    same ``--seed`` every command sees the very same splits and MR folds.
    """
    from minibert.cli import non_negative_int, open_fraction, positive_int

    g = parser.add_argument_group("data")
    g.add_argument("--train", required=True,
                   help="training examples: '<label> <text>' lines, .tsv (header; columns sentence/label) "
                        "or .csv (header; columns text/label)")
    g.add_argument("--dev", help="dev examples (same formats); default: --dev-fraction of --train, stratified")
    g.add_argument("--test", help="test examples; the metrics reported are those of the best dev epoch")
    g.add_argument("--text-column", default=None,
                   help="column holding the text in a .tsv/.csv (default: sentence for .tsv, text for .csv)")
    g.add_argument("--label-column", default=None, help="column holding the label in a .tsv/.csv (default: label)")
    g.add_argument("--cv", type=non_negative_int, default=0, metavar="K",
                   help="K-fold stratified cross-validation on --train (K >= 2; then --dev/--test are not "
                        "allowed); 0 = off")
    g.add_argument("--folds", type=positive_int, nargs="+", metavar="F",
                   help="with --cv: run only these folds (1-based), e.g. to share the folds between "
                        "processes (with --resume); the summary is written once every fold has its results.json")
    g.add_argument("--dev-fraction", type=open_fraction, default=0.1,
                   help="share of the training data held out as dev when there is no --dev (0 < f < 1)")
    g.add_argument("--limit", type=non_negative_int, default=0,
                   help="use only the first N training examples (quick tests); 0 = all")


@dataclass
class Split:
    """One train / dev (/ test) split of raw texts with label ids, and the seed of its run.

    ``name`` is ``""`` for a single run and ``"fold 3/10"`` in
    cross-validation (then ``number`` is 3); ``test_texts`` is ``None``
    without a test set.
    """

    name: str
    number: int
    seed: int
    train_texts: list
    train_labels: list
    dev_texts: list
    dev_labels: list
    test_texts: list | None = None
    test_labels: list | None = None


def check_data_arguments(args) -> None:
    """The checks between data options (each option alone is checked by argparse)."""
    if args.cv == 1:
        raise ClassificationDataError("--cv 1 is not cross-validation; give K >= 2, or 0 for a single run.")
    if args.cv and (args.dev or args.test):
        raise ClassificationDataError("--cv K splits --train itself; drop --dev and --test.")
    if args.folds and not args.cv:
        raise ClassificationDataError("--folds selects cross-validation folds; it needs --cv K.")
    if args.folds and max(args.folds) > args.cv:
        raise ClassificationDataError(f"--folds {max(args.folds)} does not exist with --cv {args.cv}.")


def load_splits(args, prepare=lambda texts: texts, log=print) -> tuple[LabelMap, list[Split]]:
    """Read the files named by the :func:`add_data_arguments` options; return the label map and the splits.

    ``prepare`` maps a list of raw texts to what the command trains on (e.g.
    Kim's cleaning + splitting); it is applied to each file once. Without
    ``--cv``: one split, dev = ``--dev`` or a stratified ``--dev-fraction`` of
    ``--train`` (seed ``args.seed``). With ``--cv K``:
    :func:`stratified_kfold` (seed ``args.seed``); fold ``f`` (1-based) is
    tested on its fold, its dev set is a stratified ``--dev-fraction`` of
    the other folds (seed ``args.seed + f``), and its run uses seed
    ``args.seed + f``.
    """
    check_data_arguments(args)

    def read(path):
        texts, raw = read_examples(path, text_column=args.text_column, label_column=args.label_column)
        return prepare(texts), raw

    texts, raw = read(args.train)
    if args.limit:
        texts, raw = texts[:args.limit], raw[:args.limit]
    labels = LabelMap.from_labels(raw, source=str(args.train))
    y = labels.encode(raw, source=str(args.train))
    log(f"train: {len(y)} examples from {args.train}, classes {labels.names}")

    def subset(idx):
        return [texts[i] for i in idx], [y[i] for i in idx]

    if not args.cv:
        if args.dev:
            dev_texts, dev_raw = read(args.dev)
            split = Split("", 0, args.seed, texts, y, dev_texts, labels.encode(dev_raw, source=str(args.dev)))
        else:
            tr, dv = dev_split(y, args.dev_fraction, seed=args.seed)
            split = Split("", 0, args.seed, *subset(tr), *subset(dv))
        if args.test:
            test_texts, test_raw = read(args.test)
            split.test_texts, split.test_labels = test_texts, labels.encode(test_raw, source=str(args.test))
        return labels, [split]

    splits = []
    for f, (train_idx, test_idx) in enumerate(stratified_kfold(y, args.cv, seed=args.seed), start=1):
        tr, dv = dev_split([y[i] for i in train_idx], args.dev_fraction, seed=args.seed + f)
        tr, dv = [train_idx[i] for i in tr], [train_idx[i] for i in dv]
        splits.append(Split(f"fold {f}/{args.cv}", f, args.seed + f, *subset(tr), *subset(dv), *subset(test_idx)))
    return labels, splits


def fold_folder(out: Path, split: Split) -> Path:
    """Where the run of a split writes: ``out`` itself, or ``out/fold_XX`` in cross-validation."""
    return Path(out) / f"fold_{split.number:02d}" if split.number else Path(out)


def run_cross_validation(splits: Sequence[Split], out: Path, train_split, only: Sequence[int] | None = None,
                         log=print) -> list[dict]:
    """Train every fold that has no ``fold_XX/results.json`` yet; return the results of the finished folds.

    ``train_split(split, folder) -> dict`` trains one fold into ``folder`` and
    returns its results (with ``test_accuracy``, ``test_f1_macro``,
    ``test_confusion_matrix``, ``best_epoch``, ``train_seconds``,
    ``num_parameters``). ``only`` restricts training to those fold numbers
    (finished others are still collected). An interrupted cross-validation
    resumes at the first fold without results.
    """
    results = []
    for split in splits:
        done = fold_folder(out, split) / "results.json"
        if done.exists():
            results.append(json.loads(done.read_text(encoding="utf-8")))
            log(f"{split.name}: already done (test accuracy {results[-1]['test_accuracy']:.4f})")
            continue
        if only and split.number not in only:
            continue
        results.append(train_split(split, fold_folder(out, split)))
        log(f"{split.name}: best dev epoch {results[-1]['best_epoch']}, "
            f"test accuracy {results[-1]['test_accuracy']:.4f}")
    return results


def train_all_splits(args, labels: LabelMap, splits: Sequence[Split], out: Path, train_split, command: str,
                     log=print, summary_extra=None) -> dict:
    """Train the one split of a single run, or cross-validate, and return what ``out/results.json`` holds.

    Single run: ``train_split(split, out)`` (which writes its own results).
    ``--cv K``: :func:`run_cross_validation` (fold folders, resumable), then,
    once every fold has results, :func:`~minibert.metrics.cv_summary` plus
    ``summary_extra(fold_results)`` (a dict of command-specific entries), the
    summed confusion matrix as a PNG and ``results.json`` in the shared
    schema. Shared by ``textcnn train`` and ``minibert finetune``.
    """
    from minibert.metrics import cv_summary, plot_confusion_matrix
    from minibert.training_utils import pick_device, write_results

    if not args.cv:
        result = train_split(splits[0], out)
        log(f"best dev epoch {result['best_epoch']}: dev {result['dev_accuracy']:.4f}"
            + (f", test accuracy {result['test_accuracy']:.4f}, macro F1 {result['test_f1_macro']:.4f}"
               if "test_accuracy" in result else "")
            + (f"; {result['seconds_per_epoch']:.1f} s/epoch" if "seconds_per_epoch" in result
               else f"; {result['train_seconds']:.0f} s") + f"; results in {out / 'results.json'}")
        return result
    fold_results = run_cross_validation(splits, out, train_split, only=args.folds, log=log)
    if len(fold_results) < args.cv:
        log(f"{len(fold_results)} of {args.cv} folds have results; run the missing folds with --resume "
            f"(and without --folds) to write the cross-validation summary.")
        return {"cv_folds_done": len(fold_results)}
    summary = {**cv_summary(fold_results), **(summary_extra(fold_results) if summary_extra else {})}
    plot_confusion_matrix(summary["test_confusion_matrix_summed"], labels.names, out / "confusion_matrix.png",
                          title=f"{args.cv}-fold CV, test folds summed")
    summary = write_results(out, command, summary, num_parameters=summary.pop("num_parameters"),
                            train_seconds=summary.pop("train_seconds"), args=args, device=pick_device(args.device))
    log(f"{args.cv}-fold CV: accuracy {summary['cv_accuracy_mean']:.4f} +- {summary['cv_accuracy_std']:.4f}, "
        f"macro F1 {summary['test_f1_macro']:.4f}"
        + (f"; {summary['seconds_per_epoch']:.1f} s/epoch" if "seconds_per_epoch" in summary else "")
        + f"; results in {out / 'results.json'}")
    return summary
