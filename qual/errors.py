"""Errors that carry the place at fault, so every message names the file, line and field."""

from __future__ import annotations


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
            where = self.path
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
            where = self.path + (f":{line}" if line is not None else "") + ": "
        super().__init__(f"{where}{message}")
