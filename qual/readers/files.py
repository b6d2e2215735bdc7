"""Finding transcript files, reading ``metadata.csv`` and dispatching each file to its
format's parser: the readers' public entry points."""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from ..errors import ReadError
from ..hashing import sha256_bytes
from ..model import Transcript
from .base import _clean_text, _front_matter, _json_safe, decode_text
from .captions import _parse_srt, _parse_vtt
from .docx import _parse_docx
from .plain import _parse_plain
from .roles import _names, assign_roles


SUPPORTED = (".txt", ".md", ".rst", ".docx", ".vtt", ".srt")

METADATA_FILE = "metadata.csv"
NAME_LIST_FILE = "redact.txt"
_IGNORED_NAMES = {METADATA_FILE, NAME_LIST_FILE}
_KNOWN_COLUMNS = ("stakeholder_id", "organisation", "sector", "role", "interview_date",
                  "interviewers", "stakeholders")
_NAME_LIST_COLUMNS = ("interviewers", "stakeholders")


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------

def read_transcript(path, metadata: dict | None = None, max_bytes: int = 50_000_000
                    ) -> Transcript:
    """Read one transcript file into a :class:`Transcript`.

    The reader is chosen by the file extension (:data:`SUPPORTED`). The result has the file
    name, path, format (extension without dot), the SHA-256 of the file's bytes, the clean text,
    the speaker turns and their roles (:func:`assign_roles`, using the ``interviewers`` and
    ``stakeholders`` names from the metadata), and the metadata: YAML front matter found at the
    top of a text file, overlaid by ``metadata`` (e.g. the file's row of metadata.csv) -- the
    explicit metadata wins on conflict -- plus ``encoding`` (the text encoding used: ``utf-8``,
    ``utf-8-sig``, ``utf-16``, ``cp1252`` or ``utf-8+cp1252`` for a file mixing the two, see
    :func:`decode_text`) for text formats. ``interviewers`` and
    ``stakeholders`` are normalised to lists of names.

    Raises :class:`ReadError` (never anything else for bad content) when the path is missing
    or a folder, the extension is unsupported, the file is over ``max_bytes``, empty, binary
    or undecodable, a .docx is corrupt, a .vtt/.srt is malformed (with the line), the YAML front
    matter is invalid, or no speaker turn or no stakeholder turn is found.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if not p.exists():
        raise ReadError("file not found", path=p)
    if p.is_dir():
        raise ReadError("is a folder, not a transcript file", path=p)
    if ext not in SUPPORTED:
        shown = ext or "(no extension)"
        raise ReadError(f"unsupported file type '{shown}'; supported: {', '.join(SUPPORTED)}",
                        path=p)
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise ReadError(f"file is too large: {size:,} bytes, over the limit of "
                            f"{max_bytes:,} bytes (max_bytes)", path=p)
        data = p.read_bytes()
    except OSError as exc:
        raise ReadError(f"cannot read the file: {exc.strerror or exc}", path=p) from None
    if len(data) > max_bytes:
        raise ReadError(f"file is too large: over the limit of {max_bytes:,} bytes", path=p)
    if not data.strip(b" \t\r\n\x0c\x0b\xef\xbb\xbf"):
        raise ReadError("file is empty", path=p)

    fmt = ext[1:]
    front: dict = {}
    encoding = None
    if fmt == "docx":
        builder = _parse_docx(data, p, max_bytes)
    else:
        raw, encoding = decode_text(data, p)
        text = _clean_text(raw, p)
        if not text.strip():
            raise ReadError("file is empty", path=p)
        if fmt == "vtt":
            builder = _parse_vtt(text, p)
        elif fmt == "srt":
            builder = _parse_srt(text, p)
        else:
            front, lines, _ = _front_matter(text.split("\n"), p)
            builder = _parse_plain(lines)

    out_text, turns = builder.render()
    if not turns:
        hint = {
            "vtt": "expected <v Name> voice tags or 'Name: text' at the start of cues",
            "srt": "expected 'Name: text' at the start of subtitles",
            "docx": "expected paragraphs starting with a bold speaker name or 'Name: text'",
        }.get(fmt, "expected lines like 'Name: text', '**Name**: text', '[Name] text' or "
                   "'Q: ...' / 'A: ...' (a plain 'Name:' label must occur at least twice)")
        raise ReadError(f"no speaker turns found; {hint}", path=p)

    meta: dict = {}
    for key, value in front.items():
        meta[key] = value
    for key, value in (metadata or {}).items():
        if value is None or value == "" or value == [] or key == "file":
            continue
        meta[key] = _json_safe(value)
    for key in _NAME_LIST_COLUMNS:
        if key in meta:
            meta[key] = _names(meta[key])
    if encoding:
        meta["encoding"] = encoding

    assign_roles(turns, meta.get("interviewers", ()), meta.get("stakeholders", ()),
                 text=out_text)
    if not any(t.role == "stakeholder" for t in turns):
        seen: dict[str, str] = {}
        for t in turns:
            seen.setdefault(t.speaker, t.role)
        who = ", ".join(f"{s} ({r})" for s, r in list(seen.items())[:8])
        raise ReadError(f"no stakeholder turn found among the speakers: {who}; name the "
                        "stakeholder in metadata.csv (column 'stakeholders') or label them "
                        "e.g. 'Respondent:'", path=p)
    return Transcript(name=p.name, text=out_text, turns=turns, metadata=meta, path=str(p),
                      format=fmt, sha256=sha256_bytes(data))


def _silently_ignored(name: str) -> bool:
    low = name.lower()
    return (name.startswith((".", "~$")) or low in _IGNORED_NAMES or low.startswith("readme"))


def find_transcripts(paths) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand files and folders into transcript files.

    Returns ``(files, skipped)``. Folders are walked recursively in sorted, stable order; in a
    folder, files with an unsupported extension are returned in ``skipped`` with the reason,
    while hidden files and folders, Office lock files (``~$...``), ``metadata.csv``,
    ``redact.txt`` and ``README*`` are ignored silently. A symbolic link (to a file or folder)
    that leads outside the folder is not followed, and is listed in ``skipped``; one within
    it is read as the file it points to (once). A file named explicitly is always
    returned (even with an unsupported extension, so that :func:`read_transcript` reports it).
    A path that does not exist raises :class:`ReadError`. Duplicates are listed once.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    seen: set[Path] = set()

    def add(f: Path):
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            files.append(f)

    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise ReadError("no such file or folder", path=p)
        if not p.is_dir():
            add(p)
            continue
        found = []
        inside = p.resolve()
        for root, dirs, names in os.walk(p):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            # os.walk does not enter linked folders; one leading out of the folder is reported
            found.extend(Path(root) / d for d in dirs if (Path(root) / d).is_symlink())
            for name in names:
                found.append(Path(root) / name)
        for f in sorted(found, key=lambda f: f.relative_to(p).parts):
            if _silently_ignored(f.name):
                continue
            if f.is_symlink():
                target = f.resolve()
                if not target.is_relative_to(inside):
                    skipped.append((f, f"a symbolic link to {target}, outside {p}; not followed"))
                    continue
            if not f.is_file():
                continue
            ext = f.suffix.lower()
            if ext not in SUPPORTED:
                shown = ext or "(no extension)"
                skipped.append((f, f"unsupported file type '{shown}'"))
                continue
            add(f)
    return files, skipped


def side_file(folder, name: str) -> Path | None:
    """``folder/name`` (``metadata.csv`` or ``redact.txt``) when it exists there, else None.

    A side file is read for every transcript in its folder, so it follows the rule for
    transcripts: a symbolic link whose target resolves outside the folder is not followed.
    Here it is refused, with a :class:`ReadError` naming the file, rather than skipped: going
    on without the folder's metadata or name list would store the transcripts without their
    case attributes, or with names left un-redacted. A link to a file within the folder is
    read as that file."""
    p = Path(folder) / name
    if not (p.is_symlink() or p.exists()):
        return None
    inside = Path(folder).resolve()
    target = p.resolve()
    if not target.is_relative_to(inside):
        raise ReadError(f"a symbolic link to {target}, outside {folder}; {name} is read only from "
                        "within the transcripts' folder, so it is refused (put a copy of the "
                        "file there instead)", path=p)
    return p if p.exists() else None


def read_metadata(folder) -> dict[str, dict]:
    """Read the optional ``metadata.csv`` of a folder (or a path to the csv itself).

    The ``file`` column (the transcript's file name) is the key. Known columns:
    ``stakeholder_id, organisation, sector, role, interview_date`` (strings) and
    ``interviewers``, ``stakeholders`` (``;``-separated names, returned as lists). Other columns
    are kept as extra case attributes; every value is a string, empty cells are dropped, and
    headers are normalised (trimmed, lower-case, spaces to underscores). Returns ``{}`` when
    the file is absent. A missing ``file`` column, a row without a file name or a duplicate file
    name raises :class:`ReadError` naming metadata.csv and the line, and so does a folder's
    metadata.csv that is a symbolic link leading outside the folder (:func:`side_file`; a csv
    named explicitly is read where it is). Encodings: UTF-8 (with or without BOM), falling back
    to Windows-1252.
    """
    p = Path(folder)
    if p.suffix.lower() == ".csv" and not p.is_dir():
        csv_path = p
    else:
        csv_path = side_file(p, METADATA_FILE)
        if csv_path is None:
            return {}
    if not csv_path.is_file():
        return {}
    try:
        data = csv_path.read_bytes()
    except OSError as exc:
        raise ReadError(f"cannot read metadata.csv: {exc.strerror or exc}", path=csv_path) from None
    text, _ = decode_text(data, csv_path, "CSV text file", "save metadata.csv as CSV (UTF-8)")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return {}
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=lambda d: (first.count(d), d == ","))
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    out: dict[str, dict] = {}
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise ReadError(f"metadata.csv cannot be parsed: {exc}", path=csv_path, line=1) from None
    columns = [re.sub(r"\s+", "_", h.strip().lower()) for h in header]
    if "file" not in columns:
        raise ReadError("metadata.csv has no 'file' column (the transcript file name); "
                        f"found columns: {', '.join(c for c in columns if c) or 'none'}",
                        path=csv_path, line=1, field="file")
    file_col = columns.index("file")
    first_line: dict[str, int] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) > len(columns) and any(c.strip() for c in row[len(columns):]):
                raise ReadError(f"metadata.csv row has {len(row)} cells but the header has "
                                f"{len(columns)}", path=csv_path, line=line)
            name = row[file_col].strip() if file_col < len(row) else ""
            if not name:
                raise ReadError("metadata.csv row has no file name in column 'file'",
                                path=csv_path, line=line, field="file")
            if name in out:
                raise ReadError(f"metadata.csv lists '{name}' twice (first on line "
                                f"{first_line[name]})", path=csv_path, line=line, field="file")
            first_line[name] = line
            rec: dict = {}
            for col, cell in zip(columns, row):
                cell = cell.strip()
                if col == "file" or not col or not cell:
                    continue
                rec[col] = _names(cell) if col in _NAME_LIST_COLUMNS else cell
            out[name] = rec
    except csv.Error as exc:
        raise ReadError(f"metadata.csv cannot be parsed: {exc}", path=csv_path,
                        line=reader.line_num) from None
    return out
