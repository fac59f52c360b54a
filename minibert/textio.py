"""Reading text files with one clear error for the two usual mistakes.

A missing file and a file that is not UTF-8 (often cp1252 from an old data
set) are the errors learners hit first; both get one sentence that names the
file and says what to do.
"""

from __future__ import annotations

from pathlib import Path


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
