import sqlite3

import numpy as np
import pytest

from qual.errors import StoreError
from qual.model import Segment, Transcript, Turn
from qual.store import SCHEMA_VERSION, Store


def _doc(name="a.txt", sha="1" * 64, text="Ann: Hello there.\n"):
    t = Transcript(name, text, [Turn("Ann", 5, 17, "stakeholder")], {"sector": "Health"},
                   format="txt", sha256=sha)
    return t, [Segment(name, 5, 17, text[5:17], "Ann", "stakeholder", 0)]


def test_new_store_is_wal_and_versioned(tmp_path):
    s = Store(tmp_path / "q.db")
    assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.schema_version == SCHEMA_VERSION


def test_same_file_twice_is_not_duplicated_and_changed_file_is_a_new_version(tmp_path):
    s = Store(tmp_path / "q.db")
    t, segs = _doc()
    first = s.add_document(t, segs, text_sha256="x")
    assert s.add_document(t, segs, text_sha256="x") == first
    assert len(s.documents(current_only=False)) == 1
    t2, segs2 = _doc(sha="2" * 64, text="Ann: Hello again.\n")
    second = s.add_document(t2, segs2, text_sha256="y")
    docs = s.documents(current_only=False)
    assert list(docs["version"]) == [1, 2] and list(docs["current"]) == [0, 1]
    assert list(s.segments()["document_id"]) == [second]
    s.set_current(first)
    assert list(s.segments()["text"]) == ["Hello there."]


def test_failed_document_write_leaves_nothing(tmp_path):
    s = Store(tmp_path / "q.db")
    t, segs = _doc()
    bad = segs + [Segment("a.txt", 0, 1, None, "Ann", "stakeholder", 0)]  # text NOT NULL
    with pytest.raises(Exception):
        s.add_document(t, bad, text_sha256="x")
    assert len(s.documents(current_only=False)) == 0
    assert s.conn.execute("SELECT COUNT(*) FROM segments").fetchone()[0] == 0
    assert s.conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 0


def test_embedding_cache_round_trip(tmp_path):
    s = Store(tmp_path / "q.db")
    v = np.arange(4, dtype=np.float32) / 7
    s.put_embeddings("m@1", {"h1": v})
    got = s.get_embeddings("m@1", ["h1", "h2"])
    assert list(got) == ["h1"] and np.array_equal(got["h1"], v)
    assert s.get_embeddings("m@2", ["h1"]) == {}


def test_decisions_are_append_only(tmp_path):
    s = Store(tmp_path / "q.db")
    t, segs = _doc()
    s.add_document(t, segs, text_sha256="x")
    seg_id = int(s.segments()["segment_id"][0])
    s.add_decision(seg_id, "rev", "recode", {"themes": []}, {"themes": ["public"]})
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        s.conn.execute("UPDATE decisions SET reviewer='x'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        s.conn.execute("DELETE FROM decisions")
    assert list(s.decisions()["reviewer"]) == ["rev"]


def test_store_from_a_newer_qual_is_refused(tmp_path):
    path = tmp_path / "q.db"
    Store(path).conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(StoreError, match="newer qual"):
        Store(path)


def test_non_qual_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "other.db"
    c = sqlite3.connect(path)
    c.execute("CREATE TABLE x (a)")
    c.commit()
    c.close()
    with pytest.raises(StoreError, match="not a qual store"):
        Store(path)


def test_runs_are_only_visible_once_complete(tmp_path):
    s = Store(tmp_path / "q.db")
    t, segs = _doc()
    s.add_document(t, segs, text_sha256="x")
    seg_id = int(s.segments()["segment_id"][0])
    import pandas as pd

    row = pd.DataFrame([{"segment_id": seg_id, "themes": "public", "subcodes": "", "polarity": "neutral",
                         "confidence": 0.9, "scores": {"public": 0.9}}])
    done = s.start_run("code", parameters={"a": 1}, input_hashes={"a.txt": "1"})
    s.add_codes(done, row)
    s.finish_run(done)
    killed = s.start_run("code")
    s.add_codes(killed, row.assign(themes="people"))
    assert list(s.machine_codes()["themes"]) == ["public"]
    assert s.latest_run()["id"] == done and s.run(done)["input_hashes"] == {"a.txt": "1"}
