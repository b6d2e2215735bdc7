"""The store: one SQLite file per project, the single source of truth.

This is the only module that writes SQL. Everything else asks it for plain data
(dicts, numpy arrays) or pandas DataFrames.

* WAL mode and a busy timeout, so a batch run and several reviewers can work at once.
* Every write is one transaction: a document with its turns and segments lands whole
  or not at all; a run's codes land batch by batch and the run is only *complete*
  (and so visible) once ``finish_run`` marks it.
* Reviewer decisions are an append-only log. The machine never updates or deletes one.
* The schema is versioned in ``meta.schema_version``; ``MIGRATIONS`` brings an older
  file forward; a file from a newer qual is refused rather than damaged.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
import types
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import StoreError

SCHEMA_VERSION = 3

_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE documents (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    path        TEXT,
    format      TEXT NOT NULL,
    sha256      TEXT NOT NULL,             -- of the source file's bytes
    text        TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    metadata    TEXT NOT NULL,             -- JSON: case attributes
    version     INTEGER NOT NULL,          -- 1, 2, ... per document name
    current     INTEGER NOT NULL DEFAULT 1,
    redacted    INTEGER NOT NULL DEFAULT 0,
    parameters  TEXT NOT NULL,             -- JSON: segmentation parameters used
    ingested_at TEXT NOT NULL,
    UNIQUE (name, sha256, redacted)
);
CREATE INDEX documents_name ON documents (name);

CREATE TABLE turns (
    document_id   INTEGER NOT NULL REFERENCES documents (id),
    idx           INTEGER NOT NULL,
    speaker       TEXT NOT NULL,
    role          TEXT NOT NULL,
    start         INTEGER NOT NULL,
    "end"         INTEGER NOT NULL,
    timestamp     TEXT,
    end_timestamp TEXT,
    PRIMARY KEY (document_id, idx)
);

CREATE TABLE segments (
    id          INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents (id),
    idx         INTEGER NOT NULL,
    start       INTEGER NOT NULL,
    "end"       INTEGER NOT NULL,
    text        TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    speaker     TEXT NOT NULL,
    role        TEXT NOT NULL,
    turn_index  INTEGER NOT NULL,
    context     TEXT NOT NULL DEFAULT '',
    UNIQUE (document_id, idx)
);

CREATE TABLE runs (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,          -- code | topics
    status           TEXT NOT NULL,          -- running | complete | failed
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    codebook_version TEXT,
    codebook_path    TEXT,
    model_name       TEXT,
    model_version    TEXT,
    coder            TEXT,
    parameters       TEXT NOT NULL,          -- JSON
    input_hashes     TEXT NOT NULL,          -- JSON: document name -> sha256
    qual_version     TEXT NOT NULL
);

CREATE TABLE codes (
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    segment_id INTEGER NOT NULL REFERENCES segments (id),
    themes     TEXT NOT NULL,                -- ';'-separated theme ids, or 'none'
    subcodes   TEXT NOT NULL,                -- ';'-separated sub-code ids
    polarity   TEXT NOT NULL,
    confidence REAL NOT NULL,
    scores     TEXT NOT NULL,                -- JSON: code id -> score
    PRIMARY KEY (run_id, segment_id)
);
CREATE INDEX codes_segment ON codes (segment_id);

CREATE TABLE embeddings (
    model       TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    dim         INTEGER NOT NULL,
    vector      BLOB NOT NULL,               -- float32, little-endian
    PRIMARY KEY (model, text_sha256)
);

CREATE TABLE decisions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    segment_id  INTEGER NOT NULL REFERENCES segments (id),
    reviewer    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    action      TEXT NOT NULL,
    before      TEXT NOT NULL,               -- JSON coding seen by the reviewer
    after       TEXT NOT NULL,               -- JSON coding the reviewer set
    memo        TEXT NOT NULL DEFAULT '',
    text_sha256 TEXT NOT NULL                -- segment text the decision was made on
);
CREATE INDEX decisions_segment ON decisions (segment_id);

CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'reviewer decisions are append-only'); END;
CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'reviewer decisions are append-only'); END;

CREATE TABLE memos (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    segment_id  INTEGER REFERENCES segments (id),
    document_id INTEGER REFERENCES documents (id),
    author      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    text        TEXT NOT NULL
);
"""

# version -> SQL that brings a store from version-1 to version. Append, never edit.
_SCHEMA_V2 = """
CREATE TABLE topics (
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    topic      INTEGER NOT NULL,              -- -1: segments no topic took
    size       INTEGER NOT NULL,
    keywords   TEXT NOT NULL,                 -- ', '-separated, best first
    theme      TEXT NOT NULL,                 -- nearest theme id ('' for -1)
    subcode    TEXT NOT NULL,                 -- nearest sub-code id
    similarity REAL,                          -- cosine, topic centroid vs sub-code examples
    emergent   INTEGER NOT NULL,              -- 1: nothing in the codebook is close
    examples   TEXT NOT NULL,                 -- JSON: representative segment texts
    label      TEXT NOT NULL,
    PRIMARY KEY (run_id, topic)
);

CREATE TABLE segment_topics (
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    segment_id INTEGER NOT NULL REFERENCES segments (id),
    topic      INTEGER NOT NULL,
    PRIMARY KEY (run_id, segment_id)
);
CREATE INDEX segment_topics_segment ON segment_topics (segment_id)
"""

# v3: reviewers split and merge segments, and a changed document's new segments continue the
# old ones, so decisions carry over. A segment replaced by a split or merge stays (the log
# points at it) but is no longer active.
_SCHEMA_V3 = """
ALTER TABLE segments ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
ALTER TABLE segments ADD COLUMN origin TEXT NOT NULL DEFAULT 'machine';
CREATE TABLE segment_parents (
    segment_id INTEGER NOT NULL REFERENCES segments (id),
    parent_id  INTEGER NOT NULL REFERENCES segments (id),
    kind       TEXT NOT NULL,                 -- version | split | merge
    exact      INTEGER NOT NULL,              -- 1: same text as the parent
    PRIMARY KEY (segment_id, parent_id)
);
CREATE INDEX segment_parents_parent ON segment_parents (parent_id)
"""

MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _SCHEMA_V3}

_SEGMENT_COLUMNS = ('s.id AS segment_id, s.document_id, d.name AS document, s.idx, s.start,'
                    ' s."end", s.text, s.text_sha256, s.speaker, s.role, s.turn_index, s.context,'
                    " s.active, s.origin")

#: decision actions that set a segment's coding; the others (split, merge, restore) change
#: segment boundaries and are logged on the segments they replace
CODING_ACTIONS = ("accept", "reject", "recode", "undo")
#: decisions that change the segments themselves (see ``change_stamp``)
BOUNDARY_ACTIONS = ("split", "merge", "restore")


def _is_locked(e: Exception) -> bool:
    msg = str(e)
    return "locked" in msg or "busy" in msg


class StoreDamaged(StoreError):
    """The store file is damaged: SQLite finds a corrupt page or no database where one should
    be. Nothing qual does can repair it; restore a backup."""


_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
_SQLITE_HEADER = b"SQLite format 3\x00"


def _is_damaged(e: Exception) -> bool:
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    msg = str(e)
    return "malformed" in msg or "not a database" in msg


#: store path -> (size, mtime, inode) of the file and its WAL when quick_check last passed
_CHECKED: dict[str, list] = {}


def _damaged(path, detail) -> StoreDamaged:
    return StoreDamaged(f"the store is damaged ({detail}): restore a backup", path=path)


def _is_readonly(e: Exception) -> bool:
    msg = str(e)
    return "readonly" in msg or "read-only" in msg


def _segment_filter(role: str | None, current_only: bool, document_id: int | None = None
                    ) -> tuple[str, list]:
    """The WHERE clause (segments ``s`` joined to documents ``d``) and its parameters:
    segments of one role, of the current document versions and not replaced by a split or
    merge, of one document."""
    clauses, params = [], []
    if role:
        clauses.append("s.role = ?")
        params.append(role)
    if current_only:
        clauses.append("d.current = 1 AND s.active = 1")
    if document_id is not None:
        clauses.append("s.document_id = ?")
        params.append(int(document_id))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _vector_to_blob(v: np.ndarray) -> bytes:
    return np.asarray(v, dtype="<f4").tobytes()


def _blob_to_vector(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<f4")


def _select_vectors(conn, table: str, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
    """Vectors of ``model`` by text hash from an (embeddings-shaped) ``table``."""
    out: dict[str, np.ndarray] = {}
    unique = list(dict.fromkeys(hashes))
    for i in range(0, len(unique), 900):     # SQLite's limit on bound parameters
        chunk = unique[i:i + 900]
        marks = ",".join("?" * len(chunk))
        for h, blob in conn.execute(f"SELECT text_sha256, vector FROM {table}"
                                    f" WHERE model=? AND text_sha256 IN ({marks})", [model, *chunk]):
            out[h] = _blob_to_vector(blob)
    return out


def _insert_vectors(conn, table: str, model: str, vectors: dict[str, np.ndarray]) -> None:
    conn.executemany(f"INSERT OR IGNORE INTO {table} (model, text_sha256, dim, vector)"
                     " VALUES (?, ?, ?, ?)",
                     [(model, h, int(v.shape[-1]), _vector_to_blob(v)) for h, v in vectors.items()])


class VectorCache:
    """Vectors of codebook texts kept per user in one small SQLite file (see
    ``qual.embed.machine_cache``), so that a new project's first ``code`` run does not embed
    again a codebook this machine has already embedded (about 900 texts, 4-5 s on 2 cores).

    Only codebook texts (definitions, examples) go here, never transcript text: transcripts are
    sensitive and their vectors stay in the project's store. The cache is an optimisation only:
    when its folder cannot be created, read or written (a read-only home, a full disk), reads
    find nothing and writes return False; nothing is raised.
    """

    SCHEMA = ("CREATE TABLE IF NOT EXISTS codebook_vectors (model TEXT NOT NULL, text_sha256 TEXT NOT NULL,"
              " dim INTEGER NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, text_sha256))")

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @contextmanager
    def _connection(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=5.0)
        try:
            with conn:
                conn.execute(self.SCHEMA)
                yield conn
        finally:
            conn.close()

    def get_embeddings(self, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
        if not self.path.exists():
            return {}
        try:
            with self._connection() as conn:
                return _select_vectors(conn, "codebook_vectors", model, hashes)
        except (OSError, sqlite3.Error):
            return {}

    def put_embeddings(self, model: str, vectors: dict[str, np.ndarray]) -> bool:
        try:
            with self._connection() as conn:
                _insert_vectors(conn, "codebook_vectors", model, vectors)
        except (OSError, sqlite3.Error):
            return False
        return True


class Store:
    """A qual project store. ``Store(path)`` creates or opens (and migrates) the file.

    A damaged file (a corrupt page, found when it is read) raises :class:`StoreDamaged` from
    whichever method meets it, never a bare ``sqlite3.DatabaseError``."""

    def __init__(self, path: str | Path = "qual.db", *, timeout: float | None = None,
                 create: bool = True, check: bool = False):
        """``timeout``: seconds to wait for another process's write to finish before a write
        fails with a StoreError (default: ``$QUAL_BUSY_TIMEOUT``, else 30).

        A new store is made only where no file exists, and only with ``create``; an existing
        file that is empty or not an SQLite database is refused, never turned into a store.
        ``check`` reads every page first (``PRAGMA quick_check``: about a second per GB), so
        damage anywhere is a :class:`StoreDamaged` now rather than when that page is read."""
        self.path = Path(path)
        if timeout is None:
            try:
                timeout = float(os.environ.get("QUAL_BUSY_TIMEOUT") or 30.0)
            except ValueError:
                raise StoreError("QUAL_BUSY_TIMEOUT must be a number of seconds",
                                 path=self.path) from None
        self.timeout = timeout
        if self.path.is_dir():
            raise StoreError("is a folder, expected a qual store file", path=self.path)
        if not self.path.parent.exists():
            raise StoreError("the folder for the store does not exist", path=self.path)
        self._refuse_foreign_file(create)
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None,
                                        check_same_thread=False)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self.conn.execute("PRAGMA foreign_keys = ON")
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"could not switch to WAL mode (got {mode})", path=self.path)
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
            if check:
                self._check_pages()
        except sqlite3.DatabaseError as e:
            if hasattr(self, "conn"):
                self.conn.close()
            if _is_readonly(e) or _is_locked(e) or _is_damaged(e):
                raise self._error(e) from None
            raise StoreError(f"cannot open the store: {e}", path=self.path) from None
        except StoreError:
            if hasattr(self, "conn"):
                self.conn.close()
            raise

    def _check_pages(self) -> None:
        """Read every page (``PRAGMA quick_check``); StoreDamaged if one is damaged. A file
        that checked out and has not changed since (same size and time, of it and its WAL)
        is not read again, so the app can check on every page view."""
        stamp = []
        for p in (self.path, Path(f"{self.path}-wal")):
            try:
                st = p.stat()
                stamp.append((st.st_size, st.st_mtime_ns, st.st_ino))
            except OSError:
                stamp.append(None)
        key = str(self.path.resolve())
        if _CHECKED.get(key) == stamp:
            return
        problems = [r[0] for r in self.conn.execute("PRAGMA quick_check(1)")]
        if problems != ["ok"]:            # (its report names pages: SQLite's words instead)
            _CHECKED.pop(key, None)
            raise _damaged(self.path, "database disk image is malformed")
        _CHECKED[key] = stamp

    def _refuse_foreign_file(self, create: bool) -> None:
        """Refuse to open a path that is not a store: a missing file unless ``create``, an
        empty file (SQLite would silently make it a new, empty store), or a file that is not
        SQLite."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(len(_SQLITE_HEADER))
        except FileNotFoundError:
            if not create:
                raise StoreError("no store here; run `python -m qual code PATH...` first, or "
                                 "pass --db", path=self.path) from None
            return
        except OSError as e:
            raise StoreError(f"cannot read the store: {e.strerror or e}", path=self.path) from None
        if head == _SQLITE_HEADER:
            return
        if not head:
            wal = Path(f"{self.path}-wal")
            if wal.exists() and wal.stat().st_size:
                return                    # a store whose pages are all still in its WAL file
            raise StoreError("is an empty file, not a qual store; nothing was changed (give the "
                             "path of your store with --db, or remove the empty file and run "
                             "`python -m qual code PATH...` to make a new store there)",
                             path=self.path)
        raise StoreError("is not a qual store (not an SQLite database file); nothing was "
                         "changed (give the path of your store with --db)", path=self.path)

    # -- plumbing -------------------------------------------------------------------------
    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextmanager
    def transaction(self):
        """One write transaction (BEGIN IMMEDIATE). While another process holds the write lock
        it waits up to the busy timeout, then fails with a StoreError naming the file; a failed
        write is rolled back whole, and SQLite faults (read-only, locked, disk full, I/O) are
        StoreErrors naming the file."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as e:
                if _is_locked(e) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise self._error(e) from None
        try:
            yield self.conn
        except sqlite3.OperationalError as e:
            self._rollback()
            raise self._error(e) from None
        except BaseException:
            self._rollback()
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.DatabaseError as e:
                self._rollback()
                raise self._error(e) from None

    def _rollback(self) -> None:
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        except sqlite3.DatabaseError:
            pass                              # SQLite already rolled back (e.g. disk full)

    def _error(self, e: Exception) -> StoreError:
        """A StoreError naming the store for an SQLite fault, in the analyst's words."""
        msg = str(e)
        if _is_damaged(e):
            return _damaged(self.path, msg)
        if _is_readonly(e):
            msg = ("cannot write to the store: it is read-only (check the permissions of the "
                   "file and its folder, or copy it somewhere writable)")
        elif _is_locked(e):
            msg = (f"the store is locked: another process has been writing to it for over "
                   f"{self.timeout:g} s (busy timeout); nothing was written, try again when it "
                   "has finished")
        elif "disk is full" in msg or "database or disk is full" in msg:
            msg = "cannot write to the store: the disk is full; nothing was written"
        elif "disk I/O error" in msg:
            msg = ("cannot write to the store: disk I/O error (a full disk, a file size limit "
                   "or a failing disk); nothing was written")
        return StoreError(msg, path=self.path)

    def _migrate(self) -> None:
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        current = 0
        if "meta" in tables:
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            current = int(row[0]) if row else 0
        elif tables:
            raise StoreError("is an SQLite file but not a qual store", path=self.path)
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"was written by a newer qual (schema version {current}; this qual reads up to "
                f"{SCHEMA_VERSION}); upgrade qual to open it", path=self.path)
        for version in range(current + 1, SCHEMA_VERSION + 1):
            try:
                with self.transaction() as c:
                    for statement in MIGRATIONS[version].split(";\n"):
                        if statement.strip():
                            c.execute(statement)
                    c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                              (str(version),))
            except sqlite3.DatabaseError as e:
                raise self._error(e) from None

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])

    def _df(self, sql: str, params=()) -> pd.DataFrame:
        cur = self.conn.execute(sql, params)
        cols = [d[0] for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=cols)

    # -- documents --------------------------------------------------------------------------
    def find_document(self, name: str, sha256: str, redacted: bool = False) -> int | None:
        row = self.conn.execute(
            "SELECT id FROM documents WHERE name=? AND sha256=? AND redacted=?",
            (name, sha256, int(redacted))).fetchone()
        return row[0] if row else None

    def add_document(self, transcript, segments, *, text_sha256: str, redacted: bool = False,
                     parameters: dict | None = None) -> int:
        """Store a transcript with its turns and segments in one transaction.

        A file already stored with the same bytes is not duplicated (its id is returned and it
        becomes the current version again); a changed file becomes a new version and the
        older versions stop being current.
        """
        from .hashing import sha256_text

        with self.transaction() as c:
            row = c.execute("SELECT id FROM documents WHERE name=? AND sha256=? AND redacted=?",
                            (transcript.name, transcript.sha256, int(redacted))).fetchone()
            if row:
                c.execute("UPDATE documents SET current = (id = ?) WHERE name = ?",
                          (row[0], transcript.name))
                return row[0]
            version = c.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM documents WHERE name=?",
                                (transcript.name,)).fetchone()[0]
            previous = c.execute("SELECT id FROM documents WHERE name=? AND current=1"
                                 " ORDER BY version DESC LIMIT 1", (transcript.name,)).fetchone()
            c.execute("UPDATE documents SET current = 0 WHERE name = ?", (transcript.name,))
            cur = c.execute(
                "INSERT INTO documents (name, path, format, sha256, text, text_sha256, metadata,"
                " version, current, redacted, parameters, ingested_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                (transcript.name, transcript.path, transcript.format, transcript.sha256,
                 transcript.text, text_sha256, json.dumps(transcript.metadata, sort_keys=True),
                 version, int(redacted), json.dumps(parameters or {}, sort_keys=True), now()))
            doc_id = cur.lastrowid
            c.executemany(
                'INSERT INTO turns (document_id, idx, speaker, role, start, "end", timestamp,'
                " end_timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(doc_id, i, t.speaker, t.role, t.start, t.end, t.timestamp, t.end_timestamp)
                 for i, t in enumerate(transcript.turns)])
            c.executemany(
                'INSERT INTO segments (document_id, idx, start, "end", text, text_sha256, speaker,'
                " role, turn_index, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(doc_id, i, s.start, s.end, s.text, sha256_text(s.text), s.speaker, s.role,
                  s.turn_index, s.context) for i, s in enumerate(segments)])
            if previous:
                self._link_version(c, previous[0], doc_id)
            return doc_id

    def recut_document(self, document_id: int, segments, *, parameters: dict) -> list[int]:
        """Segment a stored document afresh (other segmentation parameters), in one
        transaction: the new segments replace the active ones, which stay (inactive) with
        their decisions; each new segment continues the old one it matches, so decisions
        carry over (stale where the text differs). Returns the new segments' ids."""
        from .hashing import sha256_text
        from .lineage import match_segments

        with self.transaction() as c:
            old = c.execute('SELECT id, text FROM segments WHERE document_id=? AND active=1'
                            " ORDER BY start", (document_id,)).fetchall()
            base = c.execute("SELECT COALESCE(MAX(idx), -1) + 1 FROM segments WHERE"
                             " document_id=?", (document_id,)).fetchone()[0]
            c.execute("UPDATE segments SET active = 0 WHERE document_id=?", (document_id,))
            ids = []
            for i, s in enumerate(segments):
                cur = c.execute(
                    'INSERT INTO segments (document_id, idx, start, "end", text, text_sha256,'
                    " speaker, role, turn_index, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (document_id, base + i, s.start, s.end, s.text, sha256_text(s.text),
                     s.speaker, s.role, s.turn_index, s.context))
                ids.append(cur.lastrowid)
            pairs = match_segments([r[1] for r in old], [s.text for s in segments])
            c.executemany("INSERT INTO segment_parents (segment_id, parent_id, kind, exact)"
                          " VALUES (?, ?, 'version', ?)",
                          [(ids[j], old[i][0], int(exact)) for j, i, exact in pairs])
            c.execute("UPDATE documents SET parameters=? WHERE id=?",
                      (json.dumps(parameters, sort_keys=True), document_id))
            c.execute("INSERT INTO meta (key, value) VALUES ('recuts', '1') ON CONFLICT (key)"
                      " DO UPDATE SET value = CAST(value AS INTEGER) + 1")     # change_stamp
            return ids

    @staticmethod
    def _link_version(c, old_doc: int, new_doc: int) -> None:
        """Link a new document version's segments to the old version's segments they
        continue, so reviewer decisions carry over (see ``qual.lineage``)."""
        from .lineage import match_segments

        old = c.execute('SELECT id, text FROM segments WHERE document_id=? AND active=1'
                        " ORDER BY start", (old_doc,)).fetchall()
        new = c.execute("SELECT id, text FROM segments WHERE document_id=? ORDER BY start",
                        (new_doc,)).fetchall()
        pairs = match_segments([r[1] for r in old], [r[1] for r in new])
        c.executemany("INSERT INTO segment_parents (segment_id, parent_id, kind, exact)"
                      " VALUES (?, ?, 'version', ?)",
                      [(new[j][0], old[i][0], int(exact)) for j, i, exact in pairs])

    def set_current(self, document_id: int) -> None:
        """Make this version of its document the current one (e.g. a file changed back)."""
        with self.transaction() as c:
            c.execute("UPDATE documents SET current = (id = ?) WHERE name ="
                      " (SELECT name FROM documents WHERE id = ?)", (document_id, document_id))

    def documents(self, current_only: bool = True) -> pd.DataFrame:
        where = "WHERE current = 1" if current_only else ""
        df = self._df(
            "SELECT id, name, path, format, sha256, text_sha256, metadata, version, current,"
            f" redacted, parameters, ingested_at FROM documents {where} ORDER BY name, version")
        df["metadata"] = df["metadata"].map(json.loads)
        return df

    def _record(self, table: str, row_id: int, json_fields: tuple[str, ...]) -> dict:
        """One row of ``table`` (documents, runs) as a dict with its JSON fields parsed."""
        row = self.conn.execute(f"SELECT * FROM {table} WHERE id=?", (row_id,)).fetchone()
        if row is None:
            raise StoreError(f"no {table[:-1]} with id {row_id}", path=self.path)
        d = dict(row)
        for field in json_fields:
            d[field] = json.loads(d[field])
        return d

    def document(self, document_id: int) -> dict:
        return self._record("documents", document_id, ("metadata", "parameters"))

    def turns(self, document_id: int) -> pd.DataFrame:
        return self._df('SELECT idx, speaker, role, start, "end", timestamp, end_timestamp'
                        " FROM turns WHERE document_id=? ORDER BY idx", (document_id,))

    def segments(self, *, role: str | None = "stakeholder", current_only: bool = True,
                 document_id: int | None = None) -> pd.DataFrame:
        """Segments (with their document's name) in document and text order. ``current_only``:
        only the current version of each document, and only segments not replaced by a
        reviewer's split or merge."""
        where, params = _segment_filter(role, current_only, document_id)
        return self._df(
            f"SELECT {_SEGMENT_COLUMNS}"
            f" FROM segments s JOIN documents d ON d.id = s.document_id {where}"
            " ORDER BY d.name, s.document_id, s.start", params)

    # -- embedding cache --------------------------------------------------------------------
    def get_embeddings(self, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
        return _select_vectors(self.conn, "embeddings", model, hashes)

    def put_embeddings(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        with self.transaction() as c:
            _insert_vectors(c, "embeddings", model, vectors)

    def count_embeddings(self, model: str | None = None) -> int:
        if model is None:
            return self.conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        return self.conn.execute("SELECT COUNT(*) FROM embeddings WHERE model=?", (model,)).fetchone()[0]

    # -- runs and machine codes ---------------------------------------------------------------
    def start_run(self, kind: str, *, codebook_version=None, codebook_path=None, model_name=None,
                  model_version=None, coder=None, parameters=None, input_hashes=None) -> int:
        from . import __version__

        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO runs (kind, status, started_at, codebook_version, codebook_path,"
                " model_name, model_version, coder, parameters, input_hashes, qual_version)"
                " VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, now(), codebook_version, codebook_path, model_name, model_version, coder,
                 json.dumps(parameters or {}, sort_keys=True),
                 json.dumps(input_hashes or {}, sort_keys=True), __version__))
            return cur.lastrowid

    def finish_run(self, run_id: int, status: str = "complete") -> None:
        with self.transaction() as c:
            c.execute("UPDATE runs SET status=?, finished_at=? WHERE id=?", (status, now(), run_id))

    def runs(self, kind: str | None = None) -> pd.DataFrame:
        if kind:
            return self._df("SELECT * FROM runs WHERE kind=? ORDER BY id", (kind,))
        return self._df("SELECT * FROM runs ORDER BY id")

    def run(self, run_id: int) -> dict:
        return self._record("runs", run_id, ("parameters", "input_hashes"))

    def latest_run(self, kind: str = "code") -> dict | None:
        row = self.conn.execute("SELECT id FROM runs WHERE kind=? AND status='complete'"
                                " ORDER BY id DESC LIMIT 1", (kind,)).fetchone()
        return self.run(row[0]) if row else None

    def add_codes(self, run_id: int, codes: pd.DataFrame) -> None:
        """Store machine codes: a frame with segment_id, themes, subcodes, polarity, confidence,
        scores (dict). One transaction per call; call per batch."""
        rows = [(run_id, int(r.segment_id), r.themes, r.subcodes, r.polarity, float(r.confidence),
                 json.dumps({k: round(float(v), 5) for k, v in r.scores.items()}, sort_keys=True))
                for r in codes.itertuples(index=False)]
        with self.transaction() as c:
            c.executemany(
                "INSERT OR REPLACE INTO codes (run_id, segment_id, themes, subcodes, polarity,"
                " confidence, scores) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def machine_codes(self, run_id: int | None = None) -> pd.DataFrame:
        """Machine codes per segment: of ``run_id``, or else each segment's latest complete run."""
        if run_id is not None:
            df = self._df("SELECT * FROM codes WHERE run_id=?", (run_id,))
        else:
            df = self._df(
                "SELECT c.* FROM codes c JOIN ("
                "  SELECT c2.segment_id, MAX(c2.run_id) AS run_id FROM codes c2"
                "  JOIN runs r ON r.id = c2.run_id AND r.status = 'complete' AND r.kind = 'code'"
                "  GROUP BY c2.segment_id) latest"
                " ON latest.segment_id = c.segment_id AND latest.run_id = c.run_id")
        df["scores"] = df["scores"].map(json.loads)
        return df

    # -- reviewer decisions -------------------------------------------------------------------
    def add_decision(self, segment_id: int, reviewer: str, action: str, before: dict, after: dict,
                     memo: str = "", text_sha256: str | None = None) -> int:
        with self.transaction() as c:
            row = c.execute("SELECT text_sha256, active FROM segments WHERE id=?",
                            (segment_id,)).fetchone()
            if row is None:
                raise StoreError(f"no segment with id {segment_id}", path=self.path)
            if not row[1]:                     # split, merged or re-cut: its successors decide
                raise StoreError(f"segment {segment_id} was replaced (split, merged or re-cut)"
                                 " and takes no more decisions: reload", path=self.path)
            if text_sha256 is None:
                text_sha256 = row[0]
            cur = c.execute(
                "INSERT INTO decisions (segment_id, reviewer, created_at, action, before, after, memo,"
                " text_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (segment_id, reviewer, now(), action, json.dumps(before, sort_keys=True),
                 json.dumps(after, sort_keys=True), memo, text_sha256))
            return cur.lastrowid

    def decisions(self) -> pd.DataFrame:
        df = self._df("SELECT * FROM decisions ORDER BY id")
        df["before"] = df["before"].map(json.loads)
        df["after"] = df["after"].map(json.loads)
        return df

    # -- review app ---------------------------------------------------------------------------
    def latest_decisions(self, segment_ids=None) -> pd.DataFrame:
        """The latest coding decision on each segment (one row per decided segment), ``after``
        parsed. A segment continuing another (a new document version's, or a reviewer's split
        or merge) carries the latest decision of the nearest segments it continues, unless it
        has a later one of its own; ``carried_from`` names the segment it came from.

        ``segment_ids``: only the rows of these segments (the same rows as in the whole
        answer), reading only their decisions and their ancestors' — for a cache that
        brings a few segments up to date after new decisions."""
        marks = ",".join("?" * len(CODING_ACTIONS))
        where, params = f"action IN ({marks})", list(CODING_ACTIONS)
        if segment_ids is not None:
            wanted = sorted({int(i) for i in segment_ids})
            lineage = set(wanted)
            for sid in wanted:
                for level in self.ancestor_levels(sid):
                    lineage.update(level)
            if not lineage:
                lineage = {-1}
            where += f" AND segment_id IN ({','.join('?' * len(lineage))})"
            params += sorted(lineage)
        df = self._df(
            "SELECT d.* FROM decisions d JOIN (SELECT segment_id, MAX(id) AS id FROM decisions"
            f" WHERE {where} GROUP BY segment_id) l ON l.id = d.id"
            " ORDER BY d.segment_id", params)
        df = self._carry(df, "id", own_wins=False)
        if segment_ids is not None:
            df = df[df["segment_id"].isin(wanted)].reset_index(drop=True)
        df["after"] = [json.loads(a) for a in df["after"]]
        df["before"] = [json.loads(b) for b in df["before"]]
        return df

    def segment_decisions(self, segment_id: int, *, lineage: bool = False) -> pd.DataFrame:
        """Every decision on one segment, oldest first, ``before``/``after`` parsed. With
        ``lineage``: the coding decisions that decide its coding, i.e. its own and those of
        the nearest segments it continues (see ``latest_decisions``)."""
        ids = [int(segment_id)]
        if lineage:
            for level in self.ancestor_levels(segment_id):
                hit = self.conn.execute(
                    f"SELECT 1 FROM decisions WHERE segment_id IN ({','.join('?' * len(level))})"
                    " LIMIT 1", level).fetchone()
                if hit:
                    ids += level
                    break
        where = f"segment_id IN ({','.join('?' * len(ids))})"
        params: list = list(ids)
        if lineage:
            where += f" AND action IN ({','.join('?' * len(CODING_ACTIONS))})"
            params += CODING_ACTIONS
        df = self._df(f"SELECT * FROM decisions WHERE {where} ORDER BY id", params)
        df["before"] = [json.loads(b) for b in df["before"]]
        df["after"] = [json.loads(a) for a in df["after"]]
        return df

    # -- segment lineage: new versions, splits and merges -------------------------------------
    def parents(self) -> pd.DataFrame:
        """``segment_id, parent_id, kind, exact``: which segment continues which."""
        return self._fast_df("SELECT segment_id, parent_id, kind, exact FROM segment_parents")

    def ancestor_levels(self, segment_id: int) -> list[list[int]]:
        """The segments ``segment_id`` continues: its parents, then theirs, ... (nearest first)."""
        levels, frontier, seen = [], [int(segment_id)], {int(segment_id)}
        while frontier:
            marks = ",".join("?" * len(frontier))
            rows = self.conn.execute(f"SELECT DISTINCT parent_id FROM segment_parents WHERE"
                                     f" segment_id IN ({marks}) ORDER BY parent_id",
                                     frontier).fetchall()
            frontier = [r[0] for r in rows if r[0] not in seen]
            seen.update(frontier)
            if frontier:
                levels.append(frontier)
        return levels

    def _carry(self, own: pd.DataFrame, order: str, *, own_wins: bool) -> pd.DataFrame:
        """Rows keyed by ``segment_id`` (codes or decisions) plus rows carried down the
        lineage: a segment without a row of its own (or, unless ``own_wins``, with an older
        one by ``order``) gets the latest row of its nearest ancestors that have one, under
        its own ``segment_id``, with ``carried_from`` set to the ancestor's id."""
        own = own.assign(carried_from=pd.Series(pd.NA, index=own.index, dtype="Int64"))
        par = self.parents()
        if not len(par) or not len(own):
            return own
        par = par[["segment_id", "parent_id"]].rename(columns={"segment_id": "child",
                                                                "parent_id": "anc"})
        have = own.set_index("segment_id")
        frontier, found = par, []
        covered: set = set()
        for _ in range(64):                              # lineage depth: versions and cuts
            hits = frontier[frontier["anc"].isin(have.index) & ~frontier["child"].isin(covered)]
            if len(hits):
                rows = have.loc[hits["anc"].to_numpy()].reset_index()
                rows["carried_from"] = rows["segment_id"].astype("Int64")
                rows["segment_id"] = hits["child"].to_numpy()
                rows = rows.sort_values(order, kind="stable").drop_duplicates("segment_id",
                                                                               keep="last")
                found.append(rows)
                covered.update(rows["segment_id"])
            frontier = (frontier.merge(par, left_on="anc", right_on="child",
                                       suffixes=("", "_up"))
                        [["child", "anc_up"]].rename(columns={"anc_up": "anc"}))
            if not len(frontier):
                break
        if not found:
            return own
        carried = pd.concat(found, ignore_index=True)[own.columns]
        if own_wins:
            carried = carried[~carried["segment_id"].isin(own["segment_id"])]
            out = pd.concat([own, carried], ignore_index=True)
        else:
            out = (pd.concat([own, carried], ignore_index=True)
                   .sort_values(order, kind="stable")
                   .drop_duplicates("segment_id", keep="last"))
        return out.sort_values("segment_id", kind="stable", ignore_index=True)

    def replace_segments(self, old_ids: list[int], new: list[tuple[int, int]], *, kind: str,
                         reviewer: str, before: dict, memo: str = "") -> list[int]:
        """A reviewer's ``split`` or ``merge``: in one transaction, the active segments
        ``old_ids`` (one turn of one document) make way for new segments at ``new``
        (``(start, end)`` offsets into the document text); each new segment continues the
        old ones it overlaps, and a decision on each old segment logs the change. Returns the
        new segments' ids."""
        from .hashing import sha256_text

        if kind not in ("split", "merge"):
            raise StoreError(f"unknown boundary change '{kind}'", path=self.path)
        with self.transaction() as c:
            marks = ",".join("?" * len(old_ids))
            olds = c.execute(f'SELECT id, document_id, start, "end", speaker, role, turn_index,'
                             f" context, active FROM segments WHERE id IN ({marks})",
                             old_ids).fetchall()
            if len(olds) != len(set(old_ids)) or not all(r["active"] for r in olds):
                raise StoreError("a segment to change is gone or was already replaced"
                                 " (someone else may have changed it: reload)", path=self.path)
            first = olds[0]
            text = c.execute("SELECT text FROM documents WHERE id=?",
                             (first["document_id"],)).fetchone()[0]
            idx = c.execute("SELECT MAX(idx) FROM segments WHERE document_id=?",
                            (first["document_id"],)).fetchone()[0]
            ids = []
            for k, (start, end) in enumerate(new, 1):
                cur = c.execute(
                    'INSERT INTO segments (document_id, idx, start, "end", text, text_sha256,'
                    " speaker, role, turn_index, context, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?,"
                    " ?, ?, ?)",
                    (first["document_id"], idx + k, start, end, text[start:end],
                     sha256_text(text[start:end]), first["speaker"], first["role"],
                     first["turn_index"], first["context"], kind))
                ids.append(cur.lastrowid)
                c.executemany("INSERT INTO segment_parents (segment_id, parent_id, kind, exact)"
                              " VALUES (?, ?, ?, 0)",
                              [(cur.lastrowid, o["id"], kind) for o in olds
                               if o["start"] < end and start < o["end"]])
            c.execute(f"UPDATE segments SET active = 0 WHERE id IN ({marks})", old_ids)
            after = json.dumps({"into": ids, "spans": [list(x) for x in new],
                                "replaced": sorted(old_ids)}, sort_keys=True)
            for o in olds:
                c.execute("INSERT INTO decisions (segment_id, reviewer, created_at, action,"
                          " before, after, memo, text_sha256) VALUES (?, ?, ?, ?, ?, ?, ?,"
                          " (SELECT text_sha256 FROM segments WHERE id=?))",
                          (o["id"], reviewer, now(), kind, json.dumps(before, sort_keys=True),
                           after, memo, o["id"]))
            return ids

    def restore_segments(self, decision_id: int, *, reviewer: str, memo: str = "") -> list[int]:
        """Take back a split or merge (logged as ``restore`` decisions): the segments it
        replaced become active again and the ones it made inactive. Refused when a made
        segment has itself been split or merged since."""
        with self.transaction() as c:
            row = c.execute("SELECT action, after FROM decisions WHERE id=?",
                            (int(decision_id),)).fetchone()
            if row is None or row["action"] not in ("split", "merge"):
                raise StoreError(f"decision {decision_id} is not a split or merge",
                                 path=self.path)
            after = json.loads(row["after"])
            made, replaced = after["into"], after["replaced"]
            m1, m2 = ",".join("?" * len(made)), ",".join("?" * len(replaced))
            if c.execute(f"SELECT COUNT(*) FROM segments WHERE id IN ({m2}) AND active=0",
                         replaced).fetchone()[0] != len(replaced):
                raise StoreError("that change was already taken back", path=self.path)
            if c.execute(f"SELECT COUNT(*) FROM segments WHERE id IN ({m1}) AND active=1",
                         made).fetchone()[0] != len(made):
                raise StoreError("the segments of that change were changed again since;"
                                 " take back the later change first", path=self.path)
            c.execute(f"UPDATE segments SET active = 0 WHERE id IN ({m1})", made)
            c.execute(f"UPDATE segments SET active = 1 WHERE id IN ({m2})", replaced)
            note = json.dumps({"undoes": int(decision_id), "restored": replaced,
                               "retired": made}, sort_keys=True)
            for sid in replaced:
                c.execute("INSERT INTO decisions (segment_id, reviewer, created_at, action,"
                          " before, after, memo, text_sha256) VALUES (?, ?, ?, 'restore', '{}',"
                          " ?, ?, (SELECT text_sha256 FROM segments WHERE id=?))",
                          (sid, reviewer, now(), note, memo, sid))
            return list(replaced)

    def document_count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]

    def decision_count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]

    def change_stamp(self) -> tuple[tuple, tuple]:
        """``(segments, decisions)``: stamps that change whenever the segments shown for review
        (documents and their current versions, complete runs, splits, merges, re-cuts and
        their take-backs) or the decisions change, so a cache keyed on them is never stale.

        Read without scanning the segments, so it costs the same at any corpus size: every
        change to the segments either adds segments (a new document or version, a re-cut, a
        split or merge: a new highest segment id; segments are never deleted) or is logged as
        a decision (a take-back is a ``restore``); a version made current again changes the
        documents' sum, and a re-cut also counts itself in ``meta`` (one that left no
        segment adds none)."""
        boundary = ",".join("?" * len(BOUNDARY_ACTIONS))
        segments = self.conn.execute(
            "SELECT (SELECT COUNT(*) FROM documents),"
            " (SELECT COALESCE(SUM(id * current), 0) FROM documents),"
            " (SELECT COALESCE(MAX(id), 0) FROM segments),"
            " (SELECT value FROM meta WHERE key = 'recuts'),"
            f" (SELECT COALESCE(MAX(id), 0) FROM decisions WHERE action IN ({boundary})),"
            " (SELECT COUNT(*) FROM runs WHERE status = 'complete'),"
            " (SELECT COALESCE(MAX(id), 0) FROM runs WHERE status = 'complete')",
            BOUNDARY_ACTIONS).fetchone()
        decisions = self.conn.execute(
            "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM decisions").fetchone()
        return tuple(segments), tuple(decisions)

    def decided_since(self, decision_id: int) -> tuple[int, list[int]]:
        """``(count, segment ids)`` of the decisions logged after ``decision_id`` (any kind):
        what an effective coding cached at that decision must look at again. Reads only the
        new decisions (a range of the log's ids)."""
        rows = self.conn.execute("SELECT segment_id FROM decisions WHERE id > ? ORDER BY id",
                                 (int(decision_id),)).fetchall()
        return len(rows), sorted({int(r[0]) for r in rows})

    def add_memo(self, author: str, text: str, *, segment_id: int | None = None,
                 document_id: int | None = None) -> int:
        with self.transaction() as c:
            cur = c.execute("INSERT INTO memos (segment_id, document_id, author, created_at, text)"
                            " VALUES (?, ?, ?, ?, ?)", (segment_id, document_id, author, now(), text))
            return cur.lastrowid

    def memos(self, *, segment_id: int | None = None, document_id: int | None = None) -> pd.DataFrame:
        clauses, params = [], []
        if segment_id is not None:
            clauses.append("segment_id = ?")
            params.append(int(segment_id))
        if document_id is not None:
            clauses.append("document_id = ?")
            params.append(int(document_id))
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._df(f"SELECT * FROM memos {where} ORDER BY id", params)

    def segment_record(self, segment_id: int) -> dict | None:
        """One segment as a dict (``segment_id``, document, offsets, text, speaker...), or None."""
        row = self.conn.execute(
            f"SELECT {_SEGMENT_COLUMNS}"
            " FROM segments s JOIN documents d ON d.id = s.document_id WHERE s.id = ?",
            (int(segment_id),)).fetchone()
        return dict(row) if row else None

    def latest_machine_code(self, segment_id: int) -> dict | None:
        """The segment's code from its latest complete ``code`` run, or None. A segment a
        run has not coded yet (cut by a reviewer, or a new version's) shows the code of the
        segment it continues."""
        row = None
        for level in [[int(segment_id)], *self.ancestor_levels(segment_id)]:
            marks = ",".join("?" * len(level))
            row = self.conn.execute(
                "SELECT c.* FROM codes c JOIN runs r ON r.id = c.run_id AND r.status = 'complete'"
                f" AND r.kind = 'code' WHERE c.segment_id IN ({marks})"
                " ORDER BY c.run_id DESC LIMIT 1", level).fetchone()
            if row is not None:
                break
        if row is None:
            return None
        d = dict(row)
        d["segment_id"] = int(segment_id)
        d["scores"] = json.loads(d["scores"])
        return d

    def _fast_df(self, sql: str, params=()) -> pd.DataFrame:
        """Like ``_df`` but through a plain tuple cursor: several times faster on large reads."""
        cur = self.conn.cursor()
        cur.row_factory = None
        cur.execute(sql, params)
        cols = [d[0] for d in cur.description]
        return pd.DataFrame.from_records(cur.fetchall(), columns=cols)

    def review_frames(self, *, role: str | None = "stakeholder", current_only: bool = True,
                      scores: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(segments, codes)`` for the effective coding, read fast for large stores.

        ``segments`` has the columns of ``segments()`` in the same order; ``codes`` the
        columns of ``machine_codes()`` for each segment's latest complete code run, with
        ``scores`` parsed (or left as JSON text when ``scores=False``)."""
        where, params = _segment_filter(role, current_only)
        seg = self._fast_df(
            f"SELECT {_SEGMENT_COLUMNS}"
            f" FROM segments s JOIN documents d ON d.id = s.document_id {where}", params)
        seg = seg.sort_values(["document", "document_id", "start"], kind="stable",
                              ignore_index=True)
        run_ids = [r[0] for r in self.conn.execute(
            "SELECT id FROM runs WHERE kind='code' AND status='complete' ORDER BY id")]
        if not run_ids:
            codes = self._fast_df("SELECT * FROM codes WHERE 0")
        elif len(run_ids) == 1:
            codes = self._fast_df("SELECT * FROM codes WHERE run_id = ?", (run_ids[0],))
        else:
            marks = ",".join("?" * len(run_ids))
            codes = self._fast_df(f"SELECT * FROM codes WHERE run_id IN ({marks})"
                                  " ORDER BY segment_id, run_id", run_ids)
            codes = codes.drop_duplicates("segment_id", keep="last", ignore_index=True)
        codes = self._carry(codes, "run_id", own_wins=True)
        if scores:
            codes["scores"] = [json.loads(s) for s in codes["scores"]]
        return seg, codes


    # -- topics -------------------------------------------------------------------------------
    def add_topics(self, run_id: int, topics: pd.DataFrame, segment_topics: pd.DataFrame) -> None:
        """Store a topics run's topics (columns topic, size, keywords, theme, subcode,
        similarity, emergent, examples (list), label) and each segment's topic (segment_id,
        topic) in one transaction."""
        def _sim(v):
            return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)

        with self.transaction() as c:
            c.executemany(
                "INSERT OR REPLACE INTO topics (run_id, topic, size, keywords, theme, subcode,"
                " similarity, emergent, examples, label) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, int(r.topic), int(r.size), r.keywords, r.theme or "", r.subcode or "",
                  _sim(r.similarity), int(bool(r.emergent)), json.dumps(list(r.examples)),
                  getattr(r, "label", "") or "") for r in topics.itertuples(index=False)])
            c.executemany(
                "INSERT OR REPLACE INTO segment_topics (run_id, segment_id, topic) VALUES (?, ?, ?)",
                [(run_id, int(r.segment_id), int(r.topic))
                 for r in segment_topics.itertuples(index=False)])

    def topics(self, run_id: int | None = None) -> pd.DataFrame:
        """The topics of ``run_id``, or else of the latest complete topics run (empty if none)."""
        if run_id is None:
            latest = self.latest_run("topics")
            run_id = latest["id"] if latest else -1
        df = self._df("SELECT * FROM topics WHERE run_id=? ORDER BY topic", (run_id,))
        df["examples"] = df["examples"].map(json.loads)
        df["emergent"] = df["emergent"].astype(bool)
        return df

    def segment_topics(self, run_id: int | None = None) -> pd.DataFrame:
        """segment_id -> topic of ``run_id``, or else of the latest complete topics run."""
        if run_id is None:
            latest = self.latest_run("topics")
            run_id = latest["id"] if latest else -1
        return self._df("SELECT segment_id, topic FROM segment_topics WHERE run_id=?"
                        " ORDER BY segment_id", (run_id,))


def _damage_guard(method):
    """``method`` with a bare SQLite corruption error turned into :class:`StoreDamaged`."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as e:
            if _is_damaged(e):
                raise _damaged(self.path, e) from None
            raise
    return guarded


# A corrupt page can be met by any query, so every method of Store reports it the same way.
for _name, _method in list(vars(Store).items()):
    if isinstance(_method, types.FunctionType) and _name not in ("__init__", "transaction"):
        setattr(Store, _name, _damage_guard(_method))
del _name, _method
