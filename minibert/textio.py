"""Reading text files with one clear error, and the one atomic write.

A missing file and a file that is not UTF-8 (often cp1252 from an old data
set) are the errors learners hit first; both get one sentence that names the
file and says what to do. Every file the project writes goes through
:func:`atomic_write` (temporary file in the same folder, then ``os.replace``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Callable


def read_utf8(path, what: str = "file", error: type[Exception] = ValueError,
              missing: type[Exception] = FileNotFoundError) -> str:
    """Return the UTF-8 text of ``path``.

    Raises ``missing`` when the file does not exist and ``error`` when its bytes
    are not UTF-8, naming the first bad byte and its offset. ``what`` describes
    the file in the message (e.g. ``"corpus file"``).
    """
    path = Path(path)
    if path.is_dir():
        raise error(f"{what} {path} is a folder, not a file; give the file itself.")
    if not path.is_file():
        raise missing(f"{what} {path} does not exist; check the path.")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                    f"convert it, e.g. with `iconv -f cp1252 -t utf-8`.") from None


def _temporary_name(path: Path) -> Path:
    """A fresh hidden name next to ``path`` (same folder, so ``os.replace`` is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it over ``path``.

    ``os.replace`` is atomic on one file system, so a reader (or a resumed run
    after a crash) sees either the old complete file or the new one. The
    temporary file is removed on *any* failure (full disk, Ctrl-C), and the
    file gets the usual mode (0666 minus the umask, e.g. 0644), like any file
    the user creates. This is the only place files are written atomically.
    """
    path = Path(path)
    tmp = _temporary_name(path)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())   # some writers (safetensors) create 0600 files
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno is not None:   # name the file meant, not the temporary one
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    return path


def atomic_write_text(text: str, path: str | os.PathLike) -> Path:
    """Write a UTF-8 text file atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(obj, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON atomically; paths and other objects are written as strings."""
    return atomic_write_text(json.dumps(obj, indent=2, default=str) + "\n", path)
