"""Exercise mode itself: untouched stubs fail with a pointer, correct code passes.

``pytest --exercises`` must route the formula tests to the learner's files. We
check the mechanism from the outside, in a subprocess: (1) on the untouched
stubs every formula test fails, and the summary has one "not written yet" line
per exercise; (2) on a copy of the stubs completed with correct code (each
file's names imported from its ``REFERENCE`` module, overriding the stubs)
every formula test passes and every exercise is "passed". This guarantees
that no formula test can pass on a stub, i.e. that each of them can fail.
Then the learner's view: a wrong solution is named with the property that
failed, ``--exercises 03`` runs one chapter, ``--hint`` grades the hints, and
``--exercises-full`` brings back pytest's tracebacks. Every exercise file
``tutorials/exercises/exNN_*.py`` takes part without being listed here.
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
SUMMARY_LINE = re.compile(r"^  (\d\d|--) (\S+)\s+(passed|not written yet|wrong|cannot run|skipped|not checked):")


def _stubs() -> list[Path]:
    return sorted(p for p in EXERCISES.glob("*.py") if not p.name.startswith("_"))


def _public_names(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return list(dict.fromkeys(node.name for node in tree.body
                              if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")))


def _hints(path: Path) -> dict:
    """The file's HINTS table ({} when it has none)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "HINTS":
            return ast.literal_eval(node.value)
    return {}


def _chapter(path: Path) -> str:
    return re.match(r"ex(\d+)_", path.name).group(1)


def _run_exercises(folder: Path, *args: str) -> subprocess.CompletedProcess:
    # the mechanism needs no real data: the formula tests that read $MINIBERT_DATA_DIR skip in the subprocess
    env = {k: v for k, v in os.environ.items() if k not in ("MINIBERT_DATA_DIR", "MINIBERT_EXERCISES_DIR")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--exercises", *args, f"--exercises-dir={folder}",
         "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def _counts(output: str) -> dict:
    tail = output.strip().splitlines()[-1] if output.strip() else ""
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|error|errors)", tail)}


def _summary(output: str) -> dict:
    """{exercise name: (chapter, status, whole line)} from the one-line-per-exercise summary."""
    found = {}
    for line in output.splitlines():
        match = SUMMARY_LINE.match(line)
        if match:
            found[match.group(2)] = (match.group(1), match.group(3), line)
    return found


def _complete(stub: Path, target: Path) -> None:
    """Copy a stub and append the library's answer for every name it defines."""
    shutil.copy(stub, target)
    namespace: dict = {}
    exec(compile(ast.parse(stub.read_text(encoding="utf-8")), str(stub), "exec"), namespace)
    with target.open("a", encoding="utf-8") as f:
        f.write(f"\n\n# --- filled in by the test with the library's answer ---\n"
                f"from {namespace['REFERENCE']} import {', '.join(_public_names(stub))}  # noqa: E402,F811\n")


def _folder(tmp_path: Path, completed: set[str] = frozenset(), extra: dict | None = None) -> Path:
    """A copy of the stubs; the chapters in ``completed`` filled in correctly; ``extra`` appended to files."""
    folder = tmp_path / "solutions"
    folder.mkdir()
    for stub in sorted(EXERCISES.glob("*.py")):
        target = folder / stub.name
        if not stub.name.startswith("_") and _chapter(stub) in completed:
            _complete(stub, target)
        else:
            shutil.copy(stub, target)
        if extra and stub.name in extra:
            with target.open("a", encoding="utf-8") as f:
                f.write(extra[stub.name])
    return folder


@pytest.mark.slow
def test_untouched_stubs_fail_and_the_summary_says_not_written_yet_for_each():
    """Every formula test fails on the stubs; one short line per exercise says "not written yet"."""
    stubs = _stubs()
    assert stubs, "tutorials/exercises/ holds no exercise stubs"
    result = _run_exercises(EXERCISES)
    out = result.stdout + result.stderr
    counts = _counts(result.stdout)
    assert result.returncode != 0, out[-3000:]
    assert counts.get("passed", 0) == 0, f"some formula tests pass on untouched stubs:\n{out[-3000:]}"
    assert counts.get("failed", 0) > 0, out[-3000:]
    summary = _summary(result.stdout)
    expected = {name: _chapter(stub) for stub in stubs for name in _public_names(stub)}
    assert set(summary) == set(expected), f"summary lines {sorted(summary)} != exercises {sorted(expected)}\n{out}"
    for name, (chapter, status, line) in summary.items():
        assert status == "not written yet" and chapter == expected[name], line
    for stub in stubs:                      # the default hint is the first (the nudge) of the file's HINTS
        for name, levels in _hints(stub).items():
            assert levels[0] in summary[name][2], summary[name][2]
    assert "tutorials/exercises/" in out, "the summary should point the learner to the exercise file"
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) <= len(expected) + 6, f"{len(lines)} lines: no tracebacks or tensor dumps by default\n{out}"


@pytest.mark.slow
def test_correct_solutions_pass(tmp_path):
    """Stubs completed with correct code pass every formula test, and every exercise is "passed"."""
    folder = _folder(tmp_path, completed={_chapter(s) for s in _stubs()})
    result = _run_exercises(folder)
    out = result.stdout + result.stderr
    counts = _counts(result.stdout)
    assert result.returncode == 0, out[-5000:]
    assert counts.get("passed", 0) > 0 and counts.get("failed", 0) == 0, out[-3000:]
    summary = _summary(result.stdout)
    assert summary and all(status == "passed" for _, status, _ in summary.values()), out[-3000:]


WRONG_PE = '''

def sinusoidal_positional_encoding(num_positions, dim):  # noqa: F811  (the column index instead of the pair index)
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)[None, :]
    angle = pos / 10000 ** (j / dim)
    return torch.where(j.long() % 2 == 0, torch.sin(angle), torch.cos(angle)).float()
'''


@pytest.mark.slow
def test_chapters_run_alone_and_a_wrong_solution_names_the_failed_property(tmp_path):
    """``--exercises 03,05`` runs only those chapters; a wrong ex03 is "wrong" with a test's own sentence."""
    folder = _folder(tmp_path, completed={"05"}, extra={"ex03_positional.py": WRONG_PE})
    result = _run_exercises(folder, "03,05")
    out = result.stdout + result.stderr
    summary = _summary(result.stdout)
    assert {chapter for chapter, _, _ in summary.values()} == {"03", "05"}, out[-3000:]
    ex05 = set(_public_names(next(s for s in _stubs() if _chapter(s) == "05")))
    assert all(summary[name][1] == "passed" for name in ex05), out[-3000:]
    chapter, status, line = summary["sinusoidal_positional_encoding"]
    assert status == "wrong", line
    docstrings = [ast.get_docstring(node) or "" for node in ast.walk(ast.parse(
        (ROOT / "tests" / "test_positional.py").read_text(encoding="utf-8"))) if isinstance(node, ast.FunctionDef)]
    quoted = re.search(r'"([^"]+)" failed', line)
    assert quoted and any(" ".join(d.split()).startswith(quoted.group(1)) for d in docstrings), \
        f"the wrong line should quote a failing test's docstring: {line}"
    assert re.search(r"\d+ of \d+ checks pass", line), line

    alone = _run_exercises(folder, "05")          # the finished chapter alone passes, whatever 03 holds
    assert alone.returncode == 0, (alone.stdout + alone.stderr)[-3000:]
    assert set(_summary(alone.stdout)) == ex05, alone.stdout[-3000:]


@pytest.mark.slow
def test_hints_are_graded_and_full_output_is_one_flag_away():
    """``--hint 2`` shows the second hint of the file's HINTS; ``--exercises-full`` adds the tracebacks."""
    stub = next(s for s in _stubs() if _chapter(s) == "07")
    name, levels = next(iter(_hints(stub).items()))
    full = _run_exercises(EXERCISES, "07", "--hint", "2", "--exercises-full")
    line = _summary(full.stdout)[name][2]
    assert levels[1] in line and levels[0] not in line, line
    assert "NotImplementedError" in full.stdout and "tutorials/exercises/ex07" in full.stdout, full.stdout[-3000:]
    assert _summary(full.stdout)[name][1] == "not written yet", full.stdout[-3000:]


@pytest.mark.slow
def test_a_path_after_exercises_still_selects_the_tests_and_a_bad_chapter_is_refused():
    """``--exercises tests/test_positional.py`` runs that file only; ``--exercises 99`` is a usage error."""
    result = _run_exercises(EXERCISES, "tests/test_positional.py")
    summary = _summary(result.stdout)
    assert set(summary) == {"sinusoidal_positional_encoding"}, (result.stdout + result.stderr)[-3000:]
    assert _counts(result.stdout).get("failed", 0) > 0, result.stdout[-3000:]
    bad = _run_exercises(EXERCISES, "99")
    assert bad.returncode != 0 and "no exercise file ex99_" in bad.stdout + bad.stderr, bad.stdout + bad.stderr
