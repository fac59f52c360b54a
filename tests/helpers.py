"""Small helpers the test modules share (import as ``from helpers import ...``)."""

from __future__ import annotations

import importlib
import os

import pytest


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


def max_abs_diff(a, b) -> float:
    """Largest absolute element-wise difference of two tensors, as a float."""
    return (a.detach().double() - b.detach().double()).abs().max().item()
