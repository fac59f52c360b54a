"""Shared pytest set-up: exercise mode, the reference requirement, real data.

Exercise mode
-------------
``pytest --exercises`` runs the *formula* tests against the learner's code in
``tutorials/exercises/`` instead of the library. A formula test asks for the
``lib`` fixture and calls ``lib.<name>(...)``; every other test is deselected
in exercise mode. Which library module answers ``lib.<name>`` is declared by
the exercise file that defines ``<name>`` (its ``REFERENCE`` constant), so the
exercise files are the one registry. ``--exercises-dir DIR`` (or
``$MINIBERT_EXERCISES_DIR``) points at another folder of solutions.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EXERCISES = ROOT / "tutorials" / "exercises"


def pytest_addoption(parser):
    group = parser.getgroup("minibert")
    group.addoption("--exercises", action="store_true", default=False,
                    help="run the formula tests against tutorials/exercises/ "
                         "(your solutions) instead of the minibert/textcnn library")
    group.addoption("--exercises-dir", default=os.environ.get("MINIBERT_EXERCISES_DIR"),
                    help="folder of exercise solutions (default: tutorials/exercises)")


def pytest_configure(config):
    config.addinivalue_line("markers", "formula: a test of one formula (runs in exercise mode)")


def pytest_collection_modifyitems(config, items):
    """In exercise mode keep only the tests that use the ``lib`` fixture."""
    if not config.getoption("--exercises"):
        return
    keep, drop = [], []
    for item in items:
        (keep if "lib" in getattr(item, "fixturenames", ()) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


class Implementations:
    """Look up a formula by name in the library or in the learner's exercises.

    ``exercise_modules`` are the imported exercise files; each names the
    library module that holds the reference answer in ``REFERENCE``.
    """

    def __init__(self, exercise_modules: list, use_exercises: bool):
        self._use_exercises = use_exercises
        self._owner = {}
        for module in exercise_modules:
            for name in exercise_names(Path(module.__file__)):
                if name in self._owner:
                    raise RuntimeError(f"exercise name {name!r} is defined twice: in "
                                       f"{self._owner[name].__file__} and {module.__file__}")
                self._owner[name] = module

    def __getattr__(self, name: str):
        module = self._owner.get(name)
        if module is None:
            raise AttributeError(f"no exercise defines {name!r}; add it to a file in "
                                 f"tutorials/exercises/ with a REFERENCE module")
        if self._use_exercises:
            return getattr(module, name)
        return getattr(importlib.import_module(module.REFERENCE), name)


def exercise_names(path: Path) -> list[str]:
    """The public functions and classes a learner writes in one exercise file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")]


def load_exercise_modules(folder: Path) -> list:
    """Import every ``*.py`` file of ``folder`` as its own module."""
    modules = []
    for path in sorted(Path(folder).glob("*.py")):
        if path.name.startswith("_"):
            continue
        name = f"_exercise_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        if not hasattr(module, "REFERENCE"):
            raise RuntimeError(f"{path} has no REFERENCE = '<library module>' line")
        modules.append(module)
    return modules


@pytest.fixture(scope="session")
def lib(request):
    """The implementation under test: the library's, or yours with ``--exercises``."""
    use = request.config.getoption("--exercises")
    folder = request.config.getoption("--exercises-dir") or DEFAULT_EXERCISES
    if not use:
        folder = DEFAULT_EXERCISES
    return Implementations(load_exercise_modules(Path(folder)), use_exercises=use)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``$MINIBERT_DATA_DIR`` as an absolute path; skips the test when it is unset."""
    value = os.environ.get("MINIBERT_DATA_DIR")
    if not value:
        pytest.skip("real-data test: set MINIBERT_DATA_DIR (e.g. ../shared/data) to run it")
    path = Path(value).resolve()
    if not path.is_dir():
        pytest.fail(f"MINIBERT_DATA_DIR={value} is not a folder")
    return path
