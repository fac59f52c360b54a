"""Every tutorial chapter's ``>>>`` examples (and the course README's) run and print what the chapter shows.

A chapter is Markdown; its examples are doctest lines inside fenced code
blocks. Fence lines (```) are blanked before parsing so that the closing fence
is not mistaken for expected output. Each chapter runs in a fresh namespace,
in a temporary working folder, with torch's print options fixed.
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# every chapter, and the course README (its debugging recipes and answers carry >>> checks too)
CHAPTERS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.md")) + [ROOT / "tutorials" / "README.md"]
FENCE = re.compile(r"^\s*```.*$", re.MULTILINE)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def run_chapter(path: Path) -> tuple[int, int, str]:
    """Run the doctest examples of one Markdown chapter; return (failed, tried, report)."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    test = doctest.DocTestParser().get_doctest(text, {"__name__": path.stem}, path.name, str(path), 0)
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    return result.failed, result.attempted, "".join(report)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_examples_still_print_what_the_chapter_shows(chapter, tmp_path, monkeypatch):
    """The code in a chapter runs, and its printed numbers are the ones the chapter shows."""
    import torch

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINIBERT_TUTORIAL_ROOT", str(ROOT))
    torch.set_printoptions(precision=4, sci_mode=False)
    try:
        failed, attempted, report = run_chapter(chapter)
    finally:
        torch.set_printoptions(profile="default")
    assert attempted > 0, f"{chapter.name} has no >>> examples; every chapter should run code"
    assert failed == 0, f"{chapter.name}: {failed} of {attempted} examples failed\n{report}"
