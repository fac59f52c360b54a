"""Shared pytest set-up: exercise mode, the reference requirement, real data.

Exercise mode
-------------
``pytest --exercises`` runs the *formula* tests against the learner's code in
``tutorials/exercises/`` instead of the library. A formula test asks for the
``lib`` fixture and calls ``lib.<name>(...)``; every other test is deselected
in exercise mode. Which library module answers ``lib.<name>`` is declared by
the exercise file that defines ``<name>`` (its ``REFERENCE`` constant), so the
exercise files are the one registry: any ``exNN_<topic>.py`` dropped into the
folder takes part, chapter ``NN``.

What the learner sees: one line per exercise function or class — *passed*,
*not written yet* (with a hint) or *wrong* (with the property that failed, in
the words of the failing test's docstring) — instead of pytest's tracebacks.

- ``--exercises 03`` (or ``03,04``) runs only those chapters' formula tests:
  the tests whose code uses a name that one of those exercise files defines.
  A path after ``--exercises`` (``--exercises tests/test_attention.py``) is
  still read as the tests to run.
- ``--hint N`` shows hint level N (1 a nudge, 2 the approach, 3 the formula in
  detail) from the exercise file's ``HINTS`` table; hints never give the code.
- ``--exercises-full`` brings back pytest's complete output (every test, every
  traceback) with the summary at the end.
- ``--exercises-dir DIR`` (or ``$MINIBERT_EXERCISES_DIR``) reads the solutions
  from another folder.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EXERCISES = ROOT / "tutorials" / "exercises"
CHAPTER_FILE = re.compile(r"^ex(\d+)_")
CHAPTER_SPEC = re.compile(r"^\s*(ex)?\d{1,2}(\s*[, +]\s*(ex)?\d{1,2})*\s*$", re.IGNORECASE)


def pytest_addoption(parser):
    group = parser.getgroup("minibert")
    group.addoption("--exercises", nargs="?", const="all", default=None, metavar="CHAPTERS",
                    help="run the formula tests against tutorials/exercises/ (your solutions) instead of the "
                         "minibert/textcnn library and print one line per exercise; optionally only some "
                         "chapters: --exercises 03 or --exercises 03,04")
    group.addoption("--exercises-dir", default=os.environ.get("MINIBERT_EXERCISES_DIR"),
                    help="folder of exercise solutions (default: tutorials/exercises)")
    group.addoption("--exercises-full", action="store_true", default=False,
                    help="in exercise mode, show pytest's full output (every test, every traceback) "
                         "before the one-line-per-exercise summary")
    group.addoption("--hint", type=int, default=None, metavar="LEVEL",
                    help="in exercise mode, the hint level for unfinished exercises: 1 a nudge (default), "
                         "2 the approach, 3 the formula in detail")


# --------------------------------------------------------------------------- the exercise files


@dataclass
class ExerciseFile:
    """What one exercise file declares, read without importing it."""

    path: Path
    chapter: str | None                     # "03" for ex03_positional.py
    names: list[str] = field(default_factory=list)
    hints: dict = field(default_factory=dict)
    error: str | None = None                # the file does not parse


def exercise_names(path: Path) -> list[str]:
    """The public functions and classes a learner writes in one exercise file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return list(dict.fromkeys(node.name for node in tree.body        # a redefinition counts once
                              if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")))


def _module_hints(tree: ast.Module) -> dict:
    """The file's ``HINTS = {name: [level 1, level 2, ...]}`` literal, or ``{}``."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "HINTS" for t in node.targets):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                return {}
    return {}


def read_exercise_files(folder: Path) -> list[ExerciseFile]:
    """Every ``*.py`` of ``folder`` not starting with ``_``, in name order."""
    files = []
    for path in sorted(Path(folder).glob("*.py")):
        if path.name.startswith("_"):
            continue
        match = CHAPTER_FILE.match(path.name)
        entry = ExerciseFile(path, f"{int(match.group(1)):02d}" if match else None)
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        except SyntaxError as exc:
            entry.error = f"SyntaxError on line {exc.lineno}: {exc.msg}"
        else:
            entry.names = exercise_names(path)
            entry.hints = _module_hints(tree)
        files.append(entry)
    return files


def load_exercise_modules(folder: Path, broken: dict | None = None) -> list:
    """Import every ``*.py`` file of ``folder`` as its own module.

    A file that fails to import is skipped and its error recorded in
    ``broken[path]`` when a dict is given (exercise mode: the learner's file),
    and raised otherwise.
    """
    modules = []
    for path in sorted(Path(folder).glob("*.py")):
        if path.name.startswith("_"):
            continue
        name = f"_exercise_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - the learner's file; reported in the summary
            if broken is None:
                raise
            broken[path] = f"{type(exc).__name__}: {exc}"
            continue
        if not hasattr(module, "REFERENCE"):
            raise RuntimeError(f"{path} has no REFERENCE = '<library module>' line")
        modules.append(module)
    return modules


class Implementations:
    """Look up a formula by name in the library or in the learner's exercises.

    ``exercise_modules`` are the imported exercise files; each names the
    library module that holds the reference answer in ``REFERENCE``.
    ``on_access(name)`` is called on every lookup (exercise mode uses it to
    know which exercises a test exercised); ``broken`` maps the names of
    files that do not import to their error.
    """

    def __init__(self, exercise_modules: list, use_exercises: bool, on_access=None, broken: dict | None = None):
        self._use_exercises = use_exercises
        self._on_access = on_access
        self._broken = broken or {}
        self._owner = {}
        for module in exercise_modules:
            for name in exercise_names(Path(module.__file__)):
                if name in self._owner:
                    raise RuntimeError(f"exercise name {name!r} is defined twice: in "
                                       f"{self._owner[name].__file__} and {module.__file__}")
                self._owner[name] = module

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if self._on_access is not None:
            self._on_access(name)
        if name in self._broken:
            raise ImportError(self._broken[name])
        module = self._owner.get(name)
        if module is None:
            raise AttributeError(f"no exercise defines {name!r}; add it to a file in "
                                 f"tutorials/exercises/ with a REFERENCE module")
        if self._use_exercises:
            return getattr(module, name)
        return getattr(importlib.import_module(module.REFERENCE), name)


def lib_names_used(function) -> set[str]:
    """The ``lib.<name>`` attributes a test function's source mentions (its exercises)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return set()
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "lib"}


# --------------------------------------------------------------------------- exercise mode state


@dataclass
class Outcome:
    """One formula test's result, as the summary needs it."""

    nodeid: str
    status: str                       # "passed", "failed", "skipped"
    accessed: set
    blamed: set = field(default_factory=set)
    not_written: bool = False         # failed on a stub's NotImplementedError
    property: str = ""                # the test's docstring, first sentence
    error: str = ""                   # the exception's first line


class ExerciseMode:
    """Everything ``--exercises`` adds: selection, bookkeeping, the summary."""

    def __init__(self, config):
        self.folder = Path(config.getoption("--exercises-dir") or DEFAULT_EXERCISES).resolve()
        self.full = config.getoption("--exercises-full")
        self.hint_level = config.getoption("--hint")
        self.files = read_exercise_files(self.folder)
        self.file_of = {name: f for f in self.files for name in f.names}
        self.chapters = self._chapters(config)
        # tests picked by path or -k: exercises none of them used are left out of the summary
        self.narrowed = config.args_source == pytest.Config.ArgsSource.ARGS or bool(config.option.keyword)
        self.current: set = set()
        self.outcomes: dict[str, Outcome] = {}
        self.broken: dict = {}
        self.setup_errors: list[str] = []

    def _chapters(self, config) -> set[str] | None:
        value = config.getoption("--exercises")
        if value == "all":
            return None
        if CHAPTER_SPEC.match(value):
            wanted = {f"{int(n):02d}" for n in re.findall(r"\d+", value)}
            known = {f.chapter for f in self.files if f.chapter}
            unknown = sorted(wanted - known)
            if unknown:
                raise pytest.UsageError(
                    f"--exercises {value}: no exercise file ex{unknown[0]}_*.py in {self.folder}; "
                    f"the chapters with exercises are {', '.join(sorted(known))}.")
            return wanted
        if any(s in value for s in ("/", "\\", "::", ".py")) or Path(value).exists():
            # `--exercises tests/test_x.py`: argparse took the path as the option's value; give it back.
            if config.args_source == pytest.Config.ArgsSource.ARGS:
                config.args.append(value)
            else:
                config.args[:] = [value]
                config.args_source = pytest.Config.ArgsSource.ARGS
            return None
        raise pytest.UsageError(f"--exercises takes chapter numbers such as 03 or 03,04 (got {value!r}).")

    def selected_names(self) -> set[str]:
        return {name for f in self.files if self.chapters is None or f.chapter in self.chapters
                for name in f.names}

    def keeps(self, item) -> bool:
        """Formula tests only; with chapters given, only tests that use one of their names."""
        if "lib" not in getattr(item, "fixturenames", ()):
            return False
        if self.chapters is None:
            return True
        used = lib_names_used(getattr(item, "function", None))
        if not used:
            used = lib_names_used(getattr(item, "module", None))   # the test hands lib to a helper
        return bool(used & self.selected_names())

    def implementations(self) -> Implementations:
        broken_files: dict = {}
        modules = load_exercise_modules(self.folder, broken=broken_files)
        for path, message in broken_files.items():
            for name in self.file_of_path(path).names:
                self.broken[name] = f"{path.name} does not import ({message})"
        for f in self.files:
            if f.error:
                self.broken[f"<{f.path.name}>"] = f.error
        return Implementations(modules, use_exercises=True, on_access=self.current.add, broken=self.broken)

    def file_of_path(self, path: Path) -> ExerciseFile:
        return next(f for f in self.files if f.path.resolve() == Path(path).resolve())

    # --- bookkeeping -------------------------------------------------------------------------

    def record(self, item, call, report) -> None:
        if report.when == "call" or report.failed or report.skipped:
            if report.when != "call" and report.passed:
                return
            outcome = Outcome(item.nodeid, report.outcome, set(self.current) & set(self.file_of))
            if report.when == "setup" and report.failed and call.excinfo is not None:
                error = _exception_line(call.excinfo)
                if error not in self.setup_errors:
                    self.setup_errors.append(error)
            if report.failed and call.excinfo is not None:
                outcome.blamed, outcome.not_written = self._blame(call.excinfo, outcome.accessed)
                outcome.property = _first_sentence(getattr(item.function, "__doc__", None)) or \
                    item.originalname.removeprefix("test_").replace("_", " ")
                outcome.error = _exception_line(call.excinfo)
            # a failed setup followed by its teardown keeps the first failure
            if item.nodeid not in self.outcomes or self.outcomes[item.nodeid].status == "passed":
                self.outcomes[item.nodeid] = outcome

    def _blame(self, excinfo, accessed: set) -> tuple[set, bool]:
        """Which exercise the failure belongs to, and whether it is an untouched stub."""
        inside = None
        for entry in excinfo.traceback:
            try:
                path = Path(str(entry.path)).resolve()
            except (OSError, ValueError):
                continue
            if path.parent == self.folder:
                code = entry.frame.code.raw
                top = getattr(code, "co_qualname", code.co_name).split(".")[0]
                if top in self.file_of:
                    inside = top
        not_written = isinstance(excinfo.value, NotImplementedError) and inside is not None
        if isinstance(excinfo.value, ImportError) and accessed & set(self.broken):
            return accessed & set(self.broken), False
        return ({inside} if inside else set(accessed)), not_written

    # --- the summary -------------------------------------------------------------------------

    def status_of(self, name: str) -> tuple[str, str]:
        """(status word, detail) of one exercise name."""
        if name in self.broken:
            return "cannot run", self.broken[name]
        mine = [o for o in self.outcomes.values() if name in o.accessed]
        if not mine:
            return "not checked", "no formula test that ran uses it"
        ran = [o for o in mine if o.status != "skipped"]
        failed = [o for o in ran if o.status == "failed" and name in o.blamed]
        passed = [o for o in ran if o.status == "passed"]
        if not ran:
            return "skipped", f"all {len(mine)} checks were skipped (see --exercises-full)"
        if not failed:
            return "passed", f"{len(passed)} of {len(ran)} checks"
        wrong = [o for o in failed if not o.not_written]
        if not wrong:
            progress = f" ({len(passed)} of {len(ran)} checks pass)" if passed else ""
            return "not written yet", self.hint(name) + progress
        first = wrong[0]
        detail = f"\"{first.property}\" failed ({first.error}); {len(passed)} of {len(ran)} checks pass"
        if self.hint_level:
            detail += f". Hint: {self.hint(name)}"
        return "wrong", detail

    def hint(self, name: str) -> str:
        f = self.file_of[name]
        levels = f.hints.get(name) or []
        level = self.hint_level or 1
        if levels:
            text = levels[min(level, len(levels)) - 1]
            more = f" (more: --hint {level + 1})" if level < len(levels) else ""
            return f"hint {min(level, len(levels))}/{len(levels)}: {text}{more}"
        return f"read the docstring of {name} in {f.path.name}"

    def summary_lines(self) -> list[str]:
        names = [(f, n) for f in self.files if self.chapters is None or f.chapter in self.chapters
                 for n in f.names]
        if self.narrowed:
            names = [(f, n) for f, n in names if self.status_of(n)[0] != "not checked"]
        done = sum(self.status_of(n)[0] == "passed" for _, n in names)
        width = max((len(n) for _, n in names), default=10)
        lines = [f"Exercises in {_shown(self.folder)}: {done} of {len(names)} done"]
        lines += [f"  tests could not start: {error}" for error in self.setup_errors]
        for f in self.files:
            if f.error and (self.chapters is None or f.chapter in self.chapters):
                lines.append(f"  {f.chapter or '--'} {f.path.name}: cannot run, {f.error}")
        for f, name in names:
            status, detail = self.status_of(name)
            if status == "not checked" and self.narrowed:
                continue
            lines.append(f"  {f.chapter or '--'} {name:<{width}}  {status}: {detail}")
        todo = [f for f, n in names if self.status_of(n)[0] != "passed"]
        if todo:
            more = f"More help: --hint {(self.hint_level or 1) + 1}. " if (self.hint_level or 1) < 3 else ""
            lines.append(f"Next: {_shown(todo[0].path)}. {more}Every test and traceback: add --exercises-full.")
        return lines


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _first_sentence(doc: str | None) -> str:
    if not doc:
        return ""
    text = " ".join(doc.strip().split("\n\n")[0].split())
    return text.rstrip(".")


def _exception_line(excinfo) -> str:
    message = str(excinfo.value).strip().splitlines()
    line = message[0] if message else ""
    line = f"{excinfo.type.__name__}: {line}" if line else excinfo.type.__name__
    return line if len(line) <= 160 else line[:157] + "..."


EXERCISE_MODE = pytest.StashKey[ExerciseMode]()


# --------------------------------------------------------------------------- hooks


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.addinivalue_line("markers", "formula: a test of one formula (runs in exercise mode)")
    if config.getoption("--exercises") is None:
        return
    mode = ExerciseMode(config)
    config.stash[EXERCISE_MODE] = mode
    if not mode.full:   # the summary replaces pytest's own report
        config.option.tbstyle = "no"
        config.option.reportchars = ""
        config.option.disable_warnings = True
        config.option.verbose = -1


def pytest_collection_modifyitems(config, items):
    """In exercise mode keep only the formula tests (of the chosen chapters)."""
    mode = config.stash.get(EXERCISE_MODE, None)
    if mode is None:
        return
    keep, drop = [], []
    for item in items:
        (keep if mode.keeps(item) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


def pytest_runtest_setup(item):
    mode = item.config.stash.get(EXERCISE_MODE, None)
    if mode is not None:
        mode.current.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    mode = item.config.stash.get(EXERCISE_MODE, None)
    if mode is not None and "lib" in getattr(item, "fixturenames", ()):
        mode.record(item, call, report)
    return report


def pytest_report_teststatus(report, config):
    """No progress dots in the quiet exercise mode: the summary says it all."""
    mode = config.stash.get(EXERCISE_MODE, None)
    if mode is None or mode.full:
        return None
    if report.when == "call":
        return report.outcome, "", ""
    if report.failed:
        return "error", "", ""
    if report.skipped:
        return "skipped", "", ""
    return "", "", ""


def pytest_terminal_summary(terminalreporter, config):
    mode = config.stash.get(EXERCISE_MODE, None)
    if mode is None:
        return
    terminalreporter.write_line("")
    for line in mode.summary_lines():
        terminalreporter.write_line(line)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def lib(request):
    """The implementation under test: the library's, or yours with ``--exercises``."""
    mode = request.config.stash.get(EXERCISE_MODE, None)
    if mode is not None:
        return mode.implementations()
    return Implementations(load_exercise_modules(DEFAULT_EXERCISES), use_exercises=False)


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
