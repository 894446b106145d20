"""File access for the data loaders: a path that must exist, UTF-8 text with the line of a bad byte."""

from __future__ import annotations

from pathlib import Path

from intentfusion.errors import DataNotFoundError, DataSourceError

__all__ = ["require", "read_text", "read_lines"]


def require(path: str | Path, expected: str, kind: str = "file") -> Path:
    """Return ``path`` as a Path, or raise `DataNotFoundError` naming it and the ``expected`` layout."""
    path = Path(path)
    ok = path.is_dir() if kind == "folder" else path.is_file()
    if not ok:
        raise DataNotFoundError(f"{path}: {kind} not found; expected {expected}")
    return path


def read_text(path: str | Path, expected: str = "a UTF-8 text file") -> str:
    """Read a UTF-8 file (BOM skipped); undecodable bytes raise `DataSourceError` with the line number."""
    raw = require(path, expected).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        bad = raw[e.start : e.end]
        raise DataSourceError(
            f"{path}:{line}: undecodable bytes {bad!r} at column {column}; expected UTF-8 text"
        ) from None


def read_lines(path: str | Path, expected: str = "a UTF-8 text file") -> list[str]:
    """The lines of a UTF-8 file without line ends (a final newline adds no empty line)."""
    lines = read_text(path, expected).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
