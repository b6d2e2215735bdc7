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

import json
import sqlite3
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import StoreError

SCHEMA_VERSION = 2

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

MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1, 2: _SCHEMA_V2}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _vector_to_blob(v: np.ndarray) -> bytes:
    return np.asarray(v, dtype="<f4").tobytes()


def _blob_to_vector(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype="<f4")


class Store:
    """A qual project store. ``Store(path)`` creates or opens (and migrates) the file."""

    def __init__(self, path: str | Path = "qual.db", *, timeout: float = 30.0):
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError("is a folder, expected a qual store file", path=self.path)
        if not self.path.parent.exists():
            raise StoreError("the folder for the store does not exist", path=self.path)
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
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open the store: {e}", path=self.path) from None

    # -- plumbing -------------------------------------------------------------------------
    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextmanager
    def transaction(self):
        """One write transaction (BEGIN IMMEDIATE), retried while another writer holds the lock."""
        for attempt in range(50):
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise self._error(e) from None
                time.sleep(0.05 * (attempt + 1))
        else:
            raise StoreError("the store stayed locked by another process", path=self.path)
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.DatabaseError as e:
                self.conn.execute("ROLLBACK")
                raise self._error(e) from None

    def _error(self, e: Exception) -> StoreError:
        msg = str(e)
        if "readonly" in msg or "read-only" in msg:
            msg = "the store is read-only (check the file's permissions)"
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
            return doc_id

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

    def document(self, document_id: int) -> dict:
        row = self.conn.execute("SELECT * FROM documents WHERE id=?", (document_id,)).fetchone()
        if row is None:
            raise StoreError(f"no document with id {document_id}", path=self.path)
        d = dict(row)
        d["metadata"] = json.loads(d["metadata"])
        d["parameters"] = json.loads(d["parameters"])
        return d

    def turns(self, document_id: int) -> pd.DataFrame:
        return self._df('SELECT idx, speaker, role, start, "end", timestamp, end_timestamp'
                        " FROM turns WHERE document_id=? ORDER BY idx", (document_id,))

    def segments(self, *, role: str | None = "stakeholder", current_only: bool = True,
                 document_id: int | None = None) -> pd.DataFrame:
        """Segments (with their document's name) in document and text order."""
        clauses, params = [], []
        if role:
            clauses.append("s.role = ?")
            params.append(role)
        if current_only:
            clauses.append("d.current = 1")
        if document_id is not None:
            clauses.append("s.document_id = ?")
            params.append(document_id)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._df(
            'SELECT s.id AS segment_id, s.document_id, d.name AS document, s.idx, s.start, s."end",'
            " s.text, s.text_sha256, s.speaker, s.role, s.turn_index, s.context"
            f" FROM segments s JOIN documents d ON d.id = s.document_id {where}"
            " ORDER BY d.name, s.document_id, s.idx", params)

    # -- embedding cache --------------------------------------------------------------------
    def get_embeddings(self, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        for i in range(0, len(unique), 900):
            chunk = unique[i:i + 900]
            marks = ",".join("?" * len(chunk))
            for h, blob in self.conn.execute(
                    f"SELECT text_sha256, vector FROM embeddings WHERE model=? AND text_sha256 IN ({marks})",
                    [model, *chunk]):
                out[h] = _blob_to_vector(blob)
        return out

    def put_embeddings(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        with self.transaction() as c:
            c.executemany(
                "INSERT OR IGNORE INTO embeddings (model, text_sha256, dim, vector) VALUES (?, ?, ?, ?)",
                [(model, h, int(v.shape[-1]), _vector_to_blob(v)) for h, v in vectors.items()])

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
        row = self.conn.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run with id {run_id}", path=self.path)
        d = dict(row)
        d["parameters"] = json.loads(d["parameters"])
        d["input_hashes"] = json.loads(d["input_hashes"])
        return d

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
            if text_sha256 is None:
                row = c.execute("SELECT text_sha256 FROM segments WHERE id=?", (segment_id,)).fetchone()
                if row is None:
                    raise StoreError(f"no segment with id {segment_id}", path=self.path)
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
    def latest_decisions(self) -> pd.DataFrame:
        """The latest decision on each segment (one row per decided segment), ``after`` parsed."""
        df = self._df(
            "SELECT d.* FROM decisions d JOIN (SELECT segment_id, MAX(id) AS id FROM decisions"
            " GROUP BY segment_id) l ON l.id = d.id ORDER BY d.segment_id")
        df["after"] = [json.loads(a) for a in df["after"]]
        df["before"] = [json.loads(b) for b in df["before"]]
        return df

    def segment_decisions(self, segment_id: int) -> pd.DataFrame:
        """Every decision on one segment, oldest first, ``before``/``after`` parsed."""
        df = self._df("SELECT * FROM decisions WHERE segment_id=? ORDER BY id", (int(segment_id),))
        df["before"] = [json.loads(b) for b in df["before"]]
        df["after"] = [json.loads(a) for a in df["after"]]
        return df

    def decision_count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]

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
            'SELECT s.id AS segment_id, s.document_id, d.name AS document, s.idx, s.start, s."end",'
            " s.text, s.text_sha256, s.speaker, s.role, s.turn_index, s.context"
            " FROM segments s JOIN documents d ON d.id = s.document_id WHERE s.id = ?",
            (int(segment_id),)).fetchone()
        return dict(row) if row else None

    def latest_machine_code(self, segment_id: int) -> dict | None:
        """The segment's code from its latest complete ``code`` run, or None."""
        row = self.conn.execute(
            "SELECT c.* FROM codes c JOIN runs r ON r.id = c.run_id AND r.status = 'complete'"
            " AND r.kind = 'code' WHERE c.segment_id = ? ORDER BY c.run_id DESC LIMIT 1",
            (int(segment_id),)).fetchone()
        if row is None:
            return None
        d = dict(row)
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
        clauses, params = [], []
        if role:
            clauses.append("s.role = ?")
            params.append(role)
        if current_only:
            clauses.append("d.current = 1")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        seg = self._fast_df(
            'SELECT s.id AS segment_id, s.document_id, d.name AS document, s.idx, s.start, s."end",'
            " s.text, s.text_sha256, s.speaker, s.role, s.turn_index, s.context"
            f" FROM segments s JOIN documents d ON d.id = s.document_id {where}", params)
        seg = seg.sort_values(["document", "document_id", "idx"], kind="stable",
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
