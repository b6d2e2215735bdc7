"""Exports of the effective coding. Every file is written atomically: a temporary file in
the target folder, then a rename, so a failure never leaves a half-written export."""

from __future__ import annotations

import errno
import io
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from .cells import FORMULA_START, inert, inert_table, restore  # noqa: F401 (re-exported)
from .errors import QualError, counted

BASE_COLUMNS = ["segment_id", "document", "speaker", "role", "start", "end", "text", "themes",
                "subcodes", "polarity", "confidence"]


class ExportError(QualError):
    """An export cannot be written."""


@contextmanager
def atomic_path(target: str | Path, suffix: str = ""):
    """Yield a temporary path beside ``target``; on success rename it onto ``target``.

    On any failure (a full disk, a file size limit, an error while writing) the temporary file
    is removed and ``target`` is left as it was: no partial export. OSErrors become an
    :class:`ExportError` naming the target and the fault. A missing output folder is made
    (with its parents), and removed again when the write fails."""
    target = Path(target)
    if target.is_dir():
        raise ExportError("is a folder; give a file name for the export", path=target)
    made = make_folders(target.parent)
    done = False
    try:
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp",
                                       dir=target.parent)
        except OSError as e:
            raise _write_error(e, target) from None
        os.close(fd)
        try:
            yield Path(tmp)
            os.chmod(tmp, _file_mode(target))  # mkstemp makes 0600; give the usual mode
            os.replace(tmp, target)
            done = True
        except OSError as e:
            raise _write_error(e, target) from None
        except Exception as e:
            code = _io_errno(e)
            if code is None:
                raise
            raise _write_error(OSError(code, os.strerror(code)), target) from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    finally:
        if not done:
            remove_folders(made)


def make_folders(folder: str | Path) -> list[Path]:
    """Make ``folder`` and its missing parents; return the folders made, deepest first (for
    :func:`remove_folders`). A path in the way that is a file is a one-line ExportError."""
    folder = Path(folder)
    missing = []
    p = folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    if not p.is_dir():
        raise ExportError("cannot make the output folder: this is a file, not a folder",
                          path=p)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        remove_folders(missing)
        raise ExportError(f"cannot make the output folder: {e.strerror or e}",
                          path=folder) from None
    return missing


def remove_folders(folders) -> None:
    """Remove the (empty) folders :func:`make_folders` made, deepest first."""
    for p in folders:
        try:
            p.rmdir()
        except OSError:
            break


def _io_errno(e: BaseException) -> int | None:
    """The errno of an I/O fault: an OSError's, or one that a library writing through C
    reports in its message (lxml, which openpyxl uses: ``IO_EFBIG``, ``IO_ENOSPC``)."""
    if isinstance(e, OSError):
        return e.errno if e.errno is not None else errno.EIO
    m = re.match(r"IO_(E[A-Z]+)\b", str(e))
    return getattr(errno, m.group(1), errno.EIO) if m else None


def _drop_quietly(e: BaseException) -> None:
    """Free the frames of a failed write now, so that writers left open in them (openpyxl's
    worksheet generators) are closed here and their repeated I/O fault is not printed as an
    'Exception ignored' on stderr."""
    import gc
    import sys

    hook = sys.unraisablehook
    sys.unraisablehook = lambda u: None if _io_errno(u.exc_value) is not None else hook(u)
    try:
        while e is not None:
            e.__traceback__ = None
            e = e.__context__
        gc.collect()
    finally:
        sys.unraisablehook = hook


_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _write_error(e: OSError, target: Path) -> ExportError:
    if e.errno in _FULL:
        why = {errno.EFBIG: "the file size limit was reached"}.get(
            e.errno, "no space left on the device" if e.errno == errno.ENOSPC else "disk quota")
        return ExportError(f"cannot write: the disk is full ({why}); nothing was written and "
                           "no partial file is left", path=target)
    return ExportError(f"cannot write: {e.strerror or e}; nothing was written", path=target)


def _file_mode(target: Path) -> int:
    """The replaced file's mode, or what a plain ``open`` would give under the umask."""
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where the system allows (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)  # elsewhere: briefly set, then restore
    os.umask(umask)
    return umask


def coded_segments_table(coding: pd.DataFrame, documents: pd.DataFrame, theme_ids: list[str],
                         runs: dict[int, dict] | None = None) -> pd.DataFrame:
    """One row per coded segment with the contract columns: ``segment_id, document, speaker,
    role, start, end, text, themes, subcodes, polarity, confidence, score_<theme>..., source``,
    then ``run_id, codebook_version, model, redacted, auto_accepted`` and the case attributes as
    ``case_<key>``. ``auto_accepted`` is True where the machine's coding stands because its run
    auto-accepted it (``code --auto-accept-above``); no person has looked at those segments."""
    df = coding[coding["source"] != "none"].copy()
    for t in theme_ids:
        df[f"score_{t}"] = df["scores"].map(lambda s, t=t: (s or {}).get(t, float("nan"))
                                            if isinstance(s, dict) else float("nan"))
    runs = runs or {}
    df["codebook_version"] = df["run_id"].map(lambda r: runs.get(r, {}).get("codebook_version"))
    df["model"] = df["run_id"].map(lambda r: runs.get(r, {}).get("model_name"))
    docs = documents.set_index("id")
    df["redacted"] = df["document_id"].map(lambda d: bool(docs.at[d, "redacted"]))
    df["auto_accepted"] = (df["auto_accepted"].fillna(False).astype(bool)
                           if "auto_accepted" in df else False)
    attrs = sorted({k for m in documents["metadata"] for k in m if k != "encoding"})
    for k in attrs:
        df[f"case_{k}"] = df["document_id"].map(lambda d, k=k: _cell(docs.at[d, "metadata"].get(k)))
    cols = (BASE_COLUMNS + [f"score_{t}" for t in theme_ids]
            + ["source", "reviewer", "run_id", "codebook_version", "model", "redacted",
               "auto_accepted"]
            + [f"case_{k}" for k in attrs])
    df["run_id"] = df["run_id"].astype("Int64")
    return df[cols].reset_index(drop=True)


def _cell(value):
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return value


def write_csv(table: pd.DataFrame, output: str | Path) -> Path:
    with atomic_path(output, ".csv") as tmp:
        inert_table(table).to_csv(tmp, index=False, encoding="utf-8")
    return Path(output)


def segment_counts(table: pd.DataFrame) -> tuple[int, int, int]:
    """``(segments, coded with a theme, none)`` in an export table: every segment the machine
    or a reviewer coded, including those coded ``none`` (no theme applies)."""
    from .coder import NONE, split_labels

    if not len(table):
        return 0, 0, 0
    themed = int(table["themes"].map(
        lambda v: any(t != NONE for t in split_labels(v))).sum())
    return len(table), themed, len(table) - themed


def segments_phrase(table: pd.DataFrame) -> str:
    """E.g. ``300 segments (240 coded with a theme, 60 none)``."""
    n, themed, none = segment_counts(table)
    return f"{counted(n, 'segment')} ({themed} coded with a theme, {none} none)"


def about_rows(run: dict | None, codebook, documents: pd.DataFrame, table: pd.DataFrame
               ) -> list[tuple[str, object]]:
    """What an export states about itself: run, codebook version, redaction status."""
    from . import __version__

    n_red = int(documents["redacted"].astype(bool).sum()) if len(documents) else 0
    redaction = ("not redacted" if n_red == 0 else "redacted (pseudonymised before storing)"
                 if n_red == len(documents) else f"{n_red} of {len(documents)} documents redacted")
    run = run or {}
    n, themed, none = segment_counts(table)
    return [
        ("exported by", f"qual {__version__}"),
        ("run", run.get("id")),
        ("run finished", run.get("finished_at")),
        ("model", run.get("model_name")),
        ("codebook", codebook.name),
        ("codebook version (run)", run.get("codebook_version")),
        ("codebook version (file)", codebook.version),
        ("redaction", redaction),
        ("documents", len(documents)),
        ("segments", n),
        ("coded with a theme", themed),
        ("coded none (no theme)", none),
        ("reviewed segments", int((table["source"] == "reviewer").sum()) if len(table) else 0),
    ]


_ILLEGAL = None


def _clean(value):
    global _ILLEGAL
    if _ILLEGAL is None:
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
        _ILLEGAL = ILLEGAL_CHARACTERS_RE
    if isinstance(value, str):
        return _ILLEGAL.sub("", value)
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item"):
        return value.item()
    return value


def _append(ws, values) -> None:
    """Append a row whose text cells are strings, never formulas: openpyxl makes any text
    starting with '=' a formula, so such cells are typed as strings again, and every text
    cell that a spreadsheet would read as a formula when edited (see :data:`FORMULA_START`)
    gets Excel's quote prefix (shown without the apostrophe; the text is unchanged)."""
    ws.append(values)
    # the row just written (openpyxl's own counter, pinned version): ws.max_row would scan every
    # cell of the sheet on each call, which made a 100-interview workbook take minutes
    row = ws._current_row
    for col, value in enumerate(values, start=1):
        if isinstance(value, str):
            cell = ws.cell(row=row, column=col)
            cell.data_type = "s"
            if value[:1] in FORMULA_START:
                cell.quotePrefix = True


def _sheet(wb, title: str, frame: pd.DataFrame):
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(title=title[:31])
    _append(ws, [_clean(str(c)) for c in frame.columns])
    for row in frame.itertuples(index=False):
        _append(ws, [_clean(v) for v in row])
    ws.freeze_panes = "A2"
    for i, col in enumerate(frame.columns, start=1):
        width = 60 if col == "text" else min(max(len(str(col)) + 2, 10), 30)
        ws.column_dimensions[get_column_letter(i)].width = width
    return ws


def write_xlsx(table: pd.DataFrame, output: str | Path, *, theme_ids: list[str],
               quotes: pd.DataFrame | None = None,
               about: list[tuple[str, object]] | None = None,
               log: pd.DataFrame | None = None) -> Path:
    """A workbook: ``about`` (run, codebook version, redaction), ``segments`` (all coded
    segments, the CSV's columns), one sheet per theme, ``quotes`` and, given ``log``
    (``qual.audit.audit_log``), the reviewer decision log."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "about"
    _append(ws, ["key", "value"])
    for k, v in about or []:
        _append(ws, [k, _clean(v)])
    ws.column_dimensions["A"].width = 26
    ws.column_dimensions["B"].width = 60
    _sheet(wb, "segments", table)
    for t in theme_ids:
        has = table["themes"].map(lambda v, t=t: t in str(v).split(";"))
        _sheet(wb, t, table[has])
    _sheet(wb, "quotes", quotes if quotes is not None else pd.DataFrame(
        columns=["theme", "document", "speaker", "start", "end", "text"]))
    if log is not None:
        _sheet(wb, "log", log)
    # Built in memory, then written to the target in one go.
    buffer = io.BytesIO()
    try:
        wb.save(buffer)             # openpyxl writes each sheet to a temporary file first
    except Exception as e:
        code = _io_errno(e)
        if code is None:
            raise
        _drop_quietly(e)
        raise _write_error(OSError(code, os.strerror(code)), Path(output)) from None
    with atomic_path(output, ".xlsx") as tmp:
        tmp.write_bytes(buffer.getvalue())
    return Path(output)


def write_topics_csv(topics: pd.DataFrame, path) -> Path:
    """The topics of a ``topics`` run as CSV with columns topic, size, keywords, theme,
    subcode, similarity, emergent, examples (examples joined by ' | '), written atomically (a
    missing folder is made), every cell inert."""
    cols = ["topic", "size", "keywords", "theme", "subcode", "similarity", "emergent", "examples"]
    out = topics[cols].copy()
    out["examples"] = out["examples"].map(lambda xs: " | ".join(xs))
    path = Path(path)
    with atomic_path(path, ".csv") as tmp:
        inert_table(out).to_csv(tmp, index=False)       # no cell read as a spreadsheet formula
    return path
