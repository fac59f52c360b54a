"""``textcnn predict``: classify new sentences with a model saved by ``textcnn train``.

    textcnn predict --model runs/textcnn "a gorgeous , witty film" "dull and lifeless"
    textcnn predict --model runs/textcnn --input sentences.txt     # one sentence per line

Prints one line per sentence: the label, the probability of that label, and
the sentence. From Python: ``TextCNNClassifier.load(folder).predict([...])``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from minibert.classification_data import Vocabulary, clean_text_kim
from textcnn.model import TextCNN, TextCNNConfig, pad_batch


class TextCNNClassifier:
    """A trained TextCNN with its vocabulary and label names, ready to classify raw text."""

    def __init__(self, model: TextCNN, vocab: Vocabulary, label_names: list[str], lowercase: bool = True):
        self.model = model.eval()
        self.vocab = vocab
        self.label_names = list(label_names)
        self.lowercase = lowercase

    @classmethod
    def load(cls, path, device: str = "cpu") -> "TextCNNClassifier":
        """Load ``model.pt`` (or the folder holding it) written by ``textcnn train``."""
        path = Path(path)
        if path.is_dir():
            path = path / "model.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model file; pass the --out folder of 'textcnn train'.")
        state = torch.load(path, map_location=device, weights_only=True)
        config = TextCNNConfig(**state["config"])
        model = TextCNN(config)
        model.load_state_dict(state["state_dict"])
        return cls(model.to(device), Vocabulary(state["vocab"]), state["labels"], state.get("lowercase", True))

    def encode(self, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Clean, tokenise and pad raw sentences into ``ids (B, T)``, ``lengths (B,)``."""
        ids = [self.vocab.encode(clean_text_kim(s, lower=self.lowercase).split()) for s in sentences]
        return pad_batch(ids, self.vocab.pad_id, min_length=max(self.model.config.window_sizes))

    @torch.no_grad()
    def predict_proba(self, sentences: list[str]) -> torch.Tensor:
        """Class probabilities ``(B, num_classes)`` (softmax of the logits, dropout off)."""
        if not sentences:
            return torch.zeros(0, len(self.label_names))
        ids, lengths = self.encode(sentences)
        device = next(self.model.parameters()).device
        return self.model(ids.to(device), lengths.to(device)).softmax(-1).cpu()

    def predict(self, sentences: list[str]) -> list[str]:
        """The most probable label name of every sentence."""
        return [self.label_names[i] for i in self.predict_proba(sentences).argmax(-1).tolist()]


def main(argv: list[str] | None = None, prog: str = "textcnn predict") -> int:
    """Entry point of ``textcnn predict``."""
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model.pt or the --out folder of 'textcnn train'")
    p.add_argument("--input", help="file with one sentence per line (UTF-8)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    p.add_argument("sentences", nargs="*", help="sentences to classify")
    args = p.parse_args(argv)
    sentences = list(args.sentences)
    if args.input:
        try:
            sentences += [line for line in Path(args.input).read_text(encoding="utf-8").split("\n") if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            print(f"{prog}: cannot read {args.input}: {exc}", file=sys.stderr)
            return 2
    if not sentences:
        print(f"{prog}: give sentences as arguments or with --input FILE.", file=sys.stderr)
        return 2
    try:
        classifier = TextCNNClassifier.load(args.model, device=args.device)
    except FileNotFoundError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    probs = classifier.predict_proba(sentences)
    for sentence, row in zip(sentences, probs):
        k = int(row.argmax())
        print(f"{classifier.label_names[k]}\t{row[k]:.3f}\t{sentence}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
