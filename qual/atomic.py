"""Writing a small text file so that it is either wholly the new text or still the old one.

Used for the files qual writes besides exports (the codebook, the redaction key, the
reviewer password file): a temporary file beside the target, flushed to disk, renamed over
the target, and the folder synced so the rename survives a crash. Exports, written by
libraries that want a path, use ``qual.export.atomic_path``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import QualError


def write_text_atomic(path, text: str, *, mode: int | None = None, newline: str | None = "\n",
                      make_folder: bool = True, what: str = "the file",
                      error: type[QualError] = QualError) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) atomically and return the path.

    ``mode``: the file's permission bits (e.g. ``0o600`` for secrets); by default those of
    the file being replaced, else 0o644. ``make_folder``: create a missing folder, else
    refuse. A failure leaves the old file as it was, removes the temporary file and raises
    ``error`` naming the file and the fault."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        if not make_folder:
            raise error(f"the folder for {what} does not exist", path=path)
        folder.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise error(f"cannot write {what}: {e.strerror or e}", path=path) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as f:
            os.fchmod(f.fileno(), mode)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise error(f"cannot write {what}: {e.strerror or e}", path=path) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    try:                                          # make the rename durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path
