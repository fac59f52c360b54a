"""The ``textcnn`` command: ``textcnn train``, ``textcnn predict``, ``textcnn distill``."""

from __future__ import annotations

import sys

from minibert.cli import dispatch

COMMANDS = {
    "train": ("textcnn.train", "train (and cross-validate) a Kim (2014) TextCNN"),
    "predict": ("textcnn.predict", "classify sentences with a trained TextCNN"),
    "distill": ("textcnn.distill", "train a TextCNN on the soft targets of a fine-tuned BERT teacher"),
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``textcnn`` console script."""
    return dispatch("textcnn", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
