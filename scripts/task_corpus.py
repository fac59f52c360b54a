r"""Write the *texts* of a labelled classification file as a plain-text pretraining corpus.

Task-adaptive pretraining (Gururangan et al. 2020, "Don't Stop Pretraining";
Krishna et al. 2023, "Downstream Datasets Make Surprisingly Good Pretraining
Corpora"): run masked-language modelling on the unlabelled text of the task's
own training set before fine-tuning on its labels. Tutorial 09 uses it to ask
whether *any* MLM pretraining transfers at our scale, when 60 Wikipedia
articles do not.

The labels are dropped: only the texts are written, one per line, in the
file's order, with a blank line after every ``--per-document`` lines, so that
``minibert pretrain --train CORPUS`` reads blocks of sentences as documents (the
format its ``--help`` describes). The classification sentences carry no
document structure, so the NSP/SOP pair task means nothing on such a corpus:
pretrain it with ``--pair-loss-weight 0`` (MLM alone).

Only ever write a corpus from a *training* split: a corpus that holds test
sentences leaks them into pretraining (and MR shares its source reviews with
SST-2, so MR's text is not clean pretraining data for an SST-2 test).

``minibert pretrain`` reads a corpus through :func:`minibert.wikitext.detokenize`
(``it 's`` -> ``it's``, ``wo n't`` -> ``won't``), while ``minibert finetune``
feeds a classification file's text as it is; SST-2 and MR are tokenised in
the Penn-Treebank way, so the two would see different pieces for the same
words (``n't`` among them, which matters for sentiment). ``--labelled OUT``
writes the labelled file with its texts detokenised the same way, to
fine-tune on exactly the text that was pretrained on (for dev and test
splits, give only ``--labelled``).

Usage (tutorial 09, "Does any pretraining transfer here?")::

    S=../shared/data/classification/SST-2; D=runs/sst2_detok/classification/SST-2
    python scripts/task_corpus.py $S/stsa.binary.train --corpus runs/sst2_text/train.txt --labelled $D/stsa.binary.train
    python scripts/task_corpus.py $S/stsa.binary.dev --corpus runs/sst2_text/valid.txt --labelled $D/stsa.binary.dev
    python scripts/task_corpus.py $S/stsa.binary.test --labelled $D/stsa.binary.test
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from minibert.classification_data import ClassificationDataError, read_examples
from minibert.textio import atomic_write_text
from minibert.wikitext import detokenize


def corpus_text(texts: list[str], per_document: int) -> str:
    """The texts one per line, a blank line after every ``per_document`` of them (documents for ``minibert pretrain``)."""
    if per_document < 1:
        raise ValueError(f"per_document must be >= 1, got {per_document}")
    blocks = ["\n".join(texts[i:i + per_document]) for i in range(0, len(texts), per_document)]
    return "\n\n".join(blocks) + "\n"


def main(argv=None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("input", help="labelled file: '<label> <text>' lines, GLUE .tsv or .csv")
    parser.add_argument("--corpus", metavar="OUT", help="plain-text pretraining corpus to write")
    parser.add_argument("--per-document", type=int, default=10, help="texts per document block")
    parser.add_argument("--labelled", default=None, metavar="OUT",
                        help="also write '<label> <text>' lines with the texts detokenised as minibert pretrain reads them")
    parser.add_argument("--encoding", default=None, help="encoding of the input (default: UTF-8, then cp1252)")
    args = parser.parse_args(argv)
    if not (args.corpus or args.labelled):
        parser.error("nothing to write: give --corpus OUT, --labelled OUT or both")
    try:
        texts, labels = read_examples(args.input, encoding=args.encoding)
        texts = [t.replace("\n", " ") for t in texts]
        text = corpus_text(texts, args.per_document)
    except (ClassificationDataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.corpus:
        Path(args.corpus).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(text, args.corpus)
        print(f"wrote {len(texts):,} texts in {-(-len(texts) // args.per_document):,} documents to {args.corpus}")
    if args.labelled:
        Path(args.labelled).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text("".join(f"{y} {detokenize(t)}\n" for t, y in zip(texts, labels)), args.labelled)
        print(f"wrote {len(texts):,} labelled detokenised texts to {args.labelled}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
