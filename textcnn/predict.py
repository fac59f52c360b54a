"""``textcnn predict``: classify new sentences with a model saved by ``textcnn train``.

    textcnn predict --model runs/textcnn "a gorgeous , witty film" "dull and lifeless"
    textcnn predict --model runs/textcnn --input sentences.txt     # one sentence per line
    textcnn predict --model runs/textcnn --folded --input big.txt  # faster: see textcnn.folded

Prints one line per sentence: the label, the probability of that label, and
the sentence. From Python: ``TextCNNClassifier.load(folder).predict([...])``.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import torch

from minibert.classification_data import Vocabulary, clean_text_kim
from minibert.cli import ArgumentParser, CLIError, run_command
from minibert.textio import read_utf8
from minibert.training_utils import pick_device, read_checkpoint
from textcnn.data import EncodedSet
from textcnn.folded import FoldedTextCNN
from textcnn.model import TextCNN, TextCNNConfig, pad_batch


@torch.no_grad()
def predict_ids(model: TextCNN, data: EncodedSet, device: torch.device,
                batch_size: int = 500) -> list[int]:
    """Predicted class ids of every example, in the order of ``data``."""
    model.eval()
    order = sorted(range(len(data)), key=lambda i: len(data.ids[i]))
    out = [0] * len(data)
    min_len = max(model.config.window_sizes)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        ids, lengths = pad_batch([data.ids[i] for i in chunk], min_length=min_len)
        pred = model(ids.to(device), lengths.to(device)).argmax(-1).tolist()
        for i, p in zip(chunk, pred):
            out[i] = p
    return out


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
        hint = "pass the --out folder of 'textcnn train' (or its model.pt)"
        if path.is_dir():
            if not (path / "model.pt").exists():
                other = " (it holds a minibert checkpoint.pt)" if (path / "checkpoint.pt").exists() else ""
                raise CLIError(f"{path} has no model.pt, so it is not a textcnn train run folder{other}; {hint}")
            path = path / "model.pt"
        state = read_checkpoint(path, "textcnn model", hint=hint)
        try:
            model = TextCNN(TextCNNConfig(**state["config"]))
            model.load_state_dict(state["state_dict"])
            vocab = Vocabulary(state["vocab"])
        except (TypeError, ValueError, RuntimeError, KeyError):
            raise CLIError(f"{path} holds a textcnn model whose config and weights do not fit together; "
                           f"it is damaged, train it again") from None
        return cls(model.to(device), vocab, state["labels"], state.get("lowercase", True))

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
        device = next(itertools.chain(self.model.parameters(), self.model.buffers())).device  # folded: buffers only
        return self.model(ids.to(device), lengths.to(device)).softmax(-1).cpu()

    def folded(self) -> "TextCNNClassifier":
        """The same classifier with the model folded into per-word tables (:mod:`textcnn.folded`): the same
        probabilities up to float32 round-off, faster, more memory, inference only."""
        model = self.model if isinstance(self.model, FoldedTextCNN) else FoldedTextCNN.from_model(self.model)
        return TextCNNClassifier(model, self.vocab, self.label_names, self.lowercase)

    def predict(self, sentences: list[str]) -> list[str]:
        """The most probable label name of every sentence."""
        return [self.label_names[i] for i in self.predict_proba(sentences).argmax(-1).tolist()]


def build_parser(prog: str = "textcnn predict") -> ArgumentParser:
    """The options of ``textcnn predict``."""
    p = ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="model.pt or the --out folder of 'textcnn train'")
    p.add_argument("--input", help="file with one sentence per line (UTF-8)")
    p.add_argument("--device", default="cpu", help="cpu, mps, cuda, cuda:N or auto")
    p.add_argument("--folded", action="store_true",
                   help="classify with the model folded into per-word look-up tables (textcnn.folded): the same "
                        "probabilities up to float32 round-off, several times faster, (V+1) x sum(h) x filters "
                        "numbers of memory")
    p.add_argument("sentences", nargs="*", help="sentences to classify")
    return p


def classify_sentences(args) -> int:
    """Classify the sentences of ``args`` and print one line per sentence."""
    sentences = list(args.sentences)
    if args.input:
        text = read_utf8(args.input, what="--input file", error=CLIError, missing=CLIError)
        sentences += [line for line in text.split("\n") if line.strip()]
    if not sentences:
        raise CLIError("give sentences as arguments or with --input FILE")
    classifier = TextCNNClassifier.load(args.model, device=pick_device(args.device))
    if args.folded:
        classifier = classifier.folded()
    probs = classifier.predict_proba(sentences)
    for sentence, row in zip(sentences, probs):
        k = int(row.argmax())
        print(f"{classifier.label_names[k]}\t{row[k]:.3f}\t{sentence}")
    return 0


def main(argv: list[str] | None = None, prog: str = "textcnn predict") -> int:
    """Entry point of ``textcnn predict``."""
    return run_command(prog, build_parser(prog), classify_sentences, argv)


if __name__ == "__main__":
    sys.exit(main())
