"""Using a classifier trained by ``minibert finetune``: load it, get logits, and the ``minibert classify`` command.

    minibert classify --model runs/sst2 "a gorgeous , witty film" "dull and lifeless"
    minibert classify --model runs/sst2 --input sentences.txt     # one sentence per line

From Python (this is also the teacher interface of ``textcnn distill``)::

    from minibert.classify import load_classifier, predict_logits
    clf = load_classifier("runs/sst2")          # the run folder or its export/
    logits = predict_logits(clf, ["a gorgeous , witty film"])   # (N, C) float32
    clf.labels.decode(logits.argmax(-1))

The batching helpers here (:func:`encode_texts`, :func:`collate`,
:func:`batch_order`) are shared with the training loop of
:mod:`minibert.finetune`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from minibert.classification_data import LabelMap
from minibert.cli import ArgumentParser, CLIError, positive_int, run_command
from minibert.hf import load_pretrained
from minibert.model import LAST_LAYER_CHOICES, BertForSequenceClassification
from minibert.tokenization import load_tokenizer
from minibert.training_utils import autocast

CLASSIFIER_FILE = "minibert_classifier.json"   # labels, max_seq_len, mode, pooling, next to an export


class ClassifierError(CLIError):
    """A model folder cannot be used: the message is one sentence saying what and what to do."""


# ----------------------------------------------------------------------------
# model folders


def model_folder(path) -> Path:
    """The checkpoint folder inside ``path``: ``path`` itself if it holds ``config.json``, else ``path/export``.

    A ``minibert pretrain`` or ``minibert finetune`` run folder keeps its
    transformers-format model in ``export/``.
    """
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    if (path / "export" / "config.json").is_file():
        return path / "export"
    raise ClassifierError(f"{path} is neither a model folder (config.json + model.safetensors) nor a run folder "
                          f"with an export/ folder; pass a `minibert pretrain` run or a transformers BERT folder.")


# ----------------------------------------------------------------------------
# batches


def encode_texts(tokenizer, texts: list[str], max_seq_len: int) -> list[list[int]]:
    """``[CLS] text [SEP]`` ids of every text, cut to at most ``max_seq_len`` ids."""
    return [tokenizer.encode(t, max_length=max_seq_len)["input_ids"] for t in texts]


def collate(id_lists: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists to the longest: ``input_ids`` (B, T) and ``attention_mask`` (B, T), 1 = real token."""
    T = max(len(ids) for ids in id_lists)
    input_ids = torch.full((len(id_lists), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(id_lists), T), dtype=torch.long)
    for i, ids in enumerate(id_lists):
        input_ids[i, :len(ids)] = torch.tensor(ids)
        mask[i, :len(ids)] = 1
    return input_ids, mask


def batch_order(lengths: list[int], batch_size: int, rng: random.Random | None = None,
                pool_batches: int = 50) -> list[list[int]]:
    """Index batches covering every example once, each of similar lengths (less padding).

    With ``rng`` (training): shuffle, sort each pool of ``pool_batches``
    batches by length, cut, and shuffle the batches. Without: sorted by
    length (evaluation; the order of the outputs is restored by the caller).
    """
    order = list(range(len(lengths)))
    if rng is None:
        order.sort(key=lambda i: lengths[i])
        return [order[j:j + batch_size] for j in range(0, len(order), batch_size)]
    rng.shuffle(order)
    pool = batch_size * pool_batches
    batches = []
    for start in range(0, len(order), pool):
        part = sorted(order[start:start + pool], key=lambda i: lengths[i])
        batches += [part[j:j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


@torch.no_grad()
def logits_of(model: BertForSequenceClassification, id_lists: list[list[int]], pad_id: int, device,
              batch_size: int = 64, precision: str = "fp32") -> torch.Tensor:
    """Logits (N, K) float32 of every id list, in their order, in eval mode."""
    was_training = model.training
    model.eval()
    out = torch.zeros(len(id_lists), model.num_labels)
    for chunk in batch_order([len(x) for x in id_lists], batch_size):
        input_ids, mask = collate([id_lists[i] for i in chunk], pad_id)
        with autocast(device, precision):
            logits = model(input_ids.to(device), attention_mask=mask.to(device))["logits"]
        out[chunk] = logits.float().cpu()
    model.train(was_training)
    return out


@dataclass
class Classifier:
    """A fine-tuned classifier ready for raw text: ``model`` (eval mode), ``tokenizer``, ``labels``, ``max_seq_len``."""

    model: BertForSequenceClassification
    tokenizer: object
    labels: LabelMap
    max_seq_len: int


def load_classifier(path, device="cpu", last_layer: str = "all") -> Classifier:
    """Load a ``minibert finetune`` run folder (or its ``export/``) as a :class:`Classifier` (eval mode).

    ``last_layer="read"`` runs the last encoder layer only at [CLS] after its
    keys and values (``BertForSequenceClassification.sparse_last_layer``):
    the same logits up to float round-off, faster; not for mean pooling.
    """
    if last_layer not in LAST_LAYER_CHOICES:
        raise ValueError(f"last_layer must be 'all' or 'read', got {last_layer!r}.")
    folder = model_folder(path)
    info_file = folder / CLASSIFIER_FILE
    if not info_file.is_file():
        raise ClassifierError(f"{folder} has no {CLASSIFIER_FILE}; pass the --out folder of `minibert finetune` "
                              f"(or its export/).")
    info = json.loads(info_file.read_text(encoding="utf-8"))
    try:
        model = load_pretrained(folder, BertForSequenceClassification, num_labels=len(info["labels"]),
                                pooling=info["pooling"])
        tokenizer = load_tokenizer(folder)
    except (FileNotFoundError, ValueError) as exc:
        raise ClassifierError(f"cannot load the classifier in {folder}: {exc}") from None
    if last_layer == "read":
        if model.pooling == "mean":
            raise ClassifierError(f"{folder} classifies the mean over every position (pooling mean), so its last "
                                  f"layer must run everywhere; use --last-layer all")
        model.sparse_last_layer = True
    return Classifier(model.to(device).eval(), tokenizer, LabelMap(info["labels"]), int(info["max_seq_len"]))


def predict_logits(classifier: Classifier, texts: list[str], batch_size: int = 64) -> torch.Tensor:
    """Logits (N, C) float32 of raw ``texts`` under ``torch.no_grad()``, dropout off, in the order of ``texts``."""
    texts = list(texts)
    if not texts:
        return torch.zeros(0, len(classifier.labels))
    device = next(classifier.model.parameters()).device
    ids = encode_texts(classifier.tokenizer, texts, classifier.max_seq_len)
    return logits_of(classifier.model, ids, classifier.tokenizer.pad_id, device, batch_size)


def _classify(args) -> int:
    sentences = list(args.sentences)
    if args.input:
        try:
            sentences += [line for line in Path(args.input).read_text(encoding="utf-8").split("\n") if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise ClassifierError(f"cannot read --input {args.input} ({getattr(exc, 'strerror', None) or exc}); "
                                  f"give a UTF-8 file with one sentence per line") from None
    if not sentences:
        raise ClassifierError("give sentences as arguments or with --input FILE")
    classifier = load_classifier(args.model, device=args.device, last_layer=args.last_layer)
    probs = predict_logits(classifier, sentences, args.batch_size).softmax(-1)
    for sentence, row in zip(sentences, probs):
        k = int(row.argmax())
        print(f"{classifier.labels.names[k]}\t{row[k]:.3f}\t{sentence}")
    return 0


def build_parser(prog: str = "minibert classify") -> argparse.ArgumentParser:
    """The command-line options of ``minibert classify``."""
    p = ArgumentParser(prog=prog, description="Classify sentences with a model trained by `minibert finetune`: "
                                              "prints label, probability and sentence, tab-separated, one per line.")
    p.add_argument("--model", required=True, help="the --out folder of `minibert finetune`, or its export/")
    p.add_argument("--input", help="file with one sentence per line (UTF-8); blank lines are skipped")
    p.add_argument("--device", choices=("cpu", "cuda", "mps"), default="cpu", help="where to run the model")
    p.add_argument("--batch-size", type=positive_int, default=64, help="sentences per forward pass")
    p.add_argument("--last-layer", choices=LAST_LAYER_CHOICES, default="all",
                   help="read: run the last encoder layer only at [CLS], the one position a pooler or cls "
                        "classifier reads (same probabilities up to float round-off, faster); all: everywhere")
    p.add_argument("sentences", nargs="*", help="sentences to classify")
    return p


def main(argv: list[str] | None = None, prog: str = "minibert classify") -> int:
    """Entry point of ``minibert classify``: label and probability of every sentence, one line each."""
    return run_command(prog, build_parser(prog), _classify, argv)


if __name__ == "__main__":
    sys.exit(main())
