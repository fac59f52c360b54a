"""Exercise mode itself: untouched stubs fail with a pointer, correct code passes.

``pytest --exercises`` must route the formula tests to the learner's files. We
check the mechanism from the outside, in a subprocess: (1) on the untouched
stubs every formula test fails and the failure names the exercise file;
(2) on a copy of the stubs completed with correct code (each file's names
imported from its ``REFERENCE`` module, overriding the stubs) every formula
test passes. This test also guarantees that no formula test can pass on a
stub, i.e. that each of them can fail.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "tutorials" / "exercises"


def _public_names(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")]


def _run_exercises(folder: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MINIBERT_EXERCISES_DIR="")
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "tests"), "--exercises", "--exercises-dir", str(folder),
         "-q", "-p", "no:cacheprovider", "--tb=line"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def _counts(output: str) -> dict:
    tail = output.strip().splitlines()[-1] if output.strip() else ""
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|error|errors)", tail)}


@pytest.mark.slow
def test_untouched_stubs_fail_and_point_to_the_exercise():
    """Every formula test fails on the stubs, and the message names tutorials/exercises."""
    stubs = sorted(p for p in EXERCISES.glob("*.py") if not p.name.startswith("_"))
    assert stubs, "tutorials/exercises/ holds no exercise stubs"
    result = _run_exercises(EXERCISES)
    out = result.stdout + result.stderr
    counts = _counts(result.stdout)
    assert result.returncode != 0, out[-3000:]
    assert counts.get("passed", 0) == 0, f"some formula tests pass on untouched stubs:\n{out[-3000:]}"
    assert counts.get("failed", 0) > 0, out[-3000:]
    assert "tutorials/exercises/" in out, "failures should point the learner to the exercise file"


@pytest.mark.slow
def test_correct_solutions_pass(tmp_path):
    """Stubs completed with correct code pass every formula test in exercise mode."""
    for stub in sorted(EXERCISES.glob("*.py")):
        target = tmp_path / stub.name
        shutil.copy(stub, target)
        if stub.name.startswith("_"):
            continue
        names = _public_names(stub)
        namespace: dict = {}
        exec(compile(ast.parse(stub.read_text(encoding="utf-8")), str(stub), "exec"), namespace)
        reference = namespace["REFERENCE"]
        with target.open("a", encoding="utf-8") as f:
            f.write(f"\n\n# --- filled in by the test with the library's answer ---\n"
                    f"from {reference} import {', '.join(names)}  # noqa: E402,F811\n")
    result = _run_exercises(tmp_path)
    out = result.stdout + result.stderr
    counts = _counts(result.stdout)
    assert result.returncode == 0, out[-5000:]
    assert counts.get("passed", 0) > 0 and counts.get("failed", 0) == 0, out[-3000:]
