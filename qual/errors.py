"""Errors that carry the place at fault, so every message names the file, line and field."""

from __future__ import annotations

import re

# C0 and C1 controls (newline, carriage return, escape, ...), DEL, Unicode line and paragraph
# separators, bidirectional overrides and isolates, and lone surrogates (bytes of a file name
# that are not UTF-8, which cannot even be printed)
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e"
                          "\u2066-\u2069\ud800-\udfff]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n``, ``\\x1b``,
    ``\\u202e``), so that a file name holding a newline, a terminal escape sequence or a
    right-to-left override cannot forge or hide lines of qual's output."""
    def escape(m: re.Match) -> str:
        c = m.group()
        return _ESCAPES.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")

    return _UNPRINTABLE.sub(escape, str(text))


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun`` in agreement, for the lines qual prints: ``1 document``,
    ``2 documents``, ``0 documents``; ``plural`` when adding an "s" is wrong (``entries``).
    The noun may be several words, of which the last takes the plural (``stakeholder
    segment``)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


class QualError(Exception):
    """Base class for errors reported to the user as one clear line."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = printable(self.path)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        field = f"field '{self.field}': " if self.field else ""
        return f"{where}{field}{self.message}"


class ReadError(QualError):
    """A transcript file cannot be read (empty, binary, unknown format, no turns, ...)."""


class CodebookError(QualError):
    """A codebook file is malformed or fails validation."""


class ModelError(QualError):
    """The embedding model (or another model) is missing or cannot be loaded."""


class StoreError(QualError):
    """The SQLite store is unusable (newer schema, locked, read-only, ...)."""


class QualWarning(UserWarning):
    """Something was read in a documented but lossy or surprising way (e.g. a transcript mixing
    UTF-8 and Windows-1252). The CLI prints it as one line: ``qual: warning: <path>: <message>``."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        where = ""
        if self.path:
            where = printable(self.path) + (f":{line}" if line is not None else "") + ": "
        super().__init__(f"{where}{message}")
