"""Small helpers the test modules share (import as ``from helpers import ...``)."""

from __future__ import annotations

import importlib
import os
import random
from pathlib import Path

import pytest
import torch


def require_reference(module_name: str = "transformers"):
    """Import a reference library, or skip the test when it is not installed.

    With ``MINIBERT_REQUIRE_REFERENCE=1`` (set by CI) a missing reference is a
    failure, so the verification against ``transformers`` can never be
    skipped silently.
    """
    if os.environ.get("MINIBERT_REQUIRE_REFERENCE") == "1":
        try:
            return importlib.import_module(module_name)
        except ImportError as exc:  # pragma: no cover - only on a broken CI
            pytest.fail(f"MINIBERT_REQUIRE_REFERENCE=1 but {module_name} cannot be imported: {exc}")
    return pytest.importorskip(module_name, reason=f"reference check: pip install '.[test]' for {module_name}")


def load_script(name: str):
    """Import ``scripts/<name>.py`` (the scripts folder is not a package) and return the module."""
    import importlib.util
    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def max_abs_diff(a, b) -> float:
    """Largest absolute element-wise difference of two tensors, as a float."""
    return (a.detach().double() - b.detach().double()).abs().max().item()


def toy_textcnn(mode="rand", vocab=30, dim=8, filters=5, dropout=0.0, seed=0, sparse=True, conv_padding="narrow"):
    """A small seeded TextCNN (3 classes) for the model and optimizer tests."""
    from textcnn.model import TextCNN, TextCNNConfig

    torch.manual_seed(seed)
    config = TextCNNConfig(vocab_size=vocab, num_classes=3, embedding_dim=dim, num_filters=filters,
                           dropout=dropout, mode=mode, conv_padding=conv_padding)
    vectors = torch.randn(vocab, dim) if mode != "rand" else None
    return TextCNN(config, vectors, sparse_embedding=sparse)


def random_token_batch(seed=0, vocab=30, n=6):
    """``n`` random token-id lists (lengths 1..8, ids >= 2) and 3-class labels."""
    g = torch.Generator().manual_seed(seed)
    lists = [torch.randint(2, vocab, (int(torch.randint(1, 9, (1,), generator=g)),), generator=g).tolist()
             for _ in range(n)]
    return lists, torch.randint(0, 3, (n,), generator=g)


def write_corpus(path: Path, n_docs: int, seed: int) -> Path:
    """A WikiText-like file: ``n_docs`` articles of pseudo-word sentences, each article on one of 3 topics."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "da", "pe", "go", "zu"]
    common = ["the", "a", "of", "and", "in", "to", "is", "was"]
    topics = [[rng.choice(syllables) + rng.choice(syllables) + rng.choice(syllables) for _ in range(40)]
              for _ in range(3)]
    lines = []
    for d in range(n_docs):
        topic = topics[d % 3]
        lines += [f" = Article {d} = ", ""]
        for _ in range(2):
            sentences = []
            for _ in range(rng.randint(4, 7)):
                words = [rng.choice(common if rng.random() < 0.4 else topic) for _ in range(rng.randint(5, 11))]
                sentences.append(" ".join(words).capitalize() + " .")
            lines += [" " + " ".join(sentences) + " ", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
