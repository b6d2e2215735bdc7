"""The catalogue of bad inputs and faults (issue #7): each gives a clear message naming the file
and the fault and leaves no half-written store or export. Real files, real processes: a locked
store is locked by another process, a read-only store is read-only for the process that writes
(root's override capabilities are dropped), a full disk is a real file size limit."""

import ctypes
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from qual.cli import main
from qual.project import ingest
from qual.errors import QualWarning, StoreError
from qual.readers import read_transcript
from qual.store import Store

from conftest import REPO, SAMPLES

ENV = {**os.environ, "PYTHONPATH": str(REPO)}
TURNS = ("Interviewer: What slows data sharing down?\n\n"
         "Sam: The legal review takes months. Nobody owns the decision.\n\n"
         "Interviewer: And the public?\n\n"
         "Sam: People trust us if we are open about what we link.\n")


def _counts(db) -> dict:
    c = sqlite3.connect(db)
    try:
        return {t: c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("documents", "turns", "segments", "runs", "codes", "decisions")}
    finally:
        c.close()


def _offsets_valid(store) -> None:
    for doc_id in store.documents()["id"]:
        text = store.document(int(doc_id))["text"]
        for s in store.segments(role=None, document_id=int(doc_id)).itertuples():
            assert text[s.start:s.end] == s.text


# -- mixed encodings ------------------------------------------------------------------------------
def test_mixed_encodings_are_read_with_a_warning_naming_the_file_and_lines(tmp_path, capsys):
    f = tmp_path / "mixed.txt"
    # mostly UTF-8 (é, –), with a pasted line in Windows-1252 (curly quotes, £)
    f.write_bytes("Interviewer: Café culture \u2013 what matters?\n\n".encode("utf-8")
                  + "Sam: The \u201clegal\u201d review cost £40k.\n\n".encode("cp1252")
                  + "Interviewer: Naïve question: why?\n\nSam: Nobody owns it.\n".encode("utf-8"))
    with pytest.warns(QualWarning, match=r"mixed\.txt.*mixed encodings.*3 byte\(s\) on line\(s\) 3"):
        t = read_transcript(f)
    assert t.metadata["encoding"] == "utf-8+cp1252"
    assert "Café culture \u2013" in t.text and "\u201clegal\u201d review cost £40k." in t.text
    assert "Naïve" in t.text and "\ufffd" not in t.text        # nothing lost or replaced
    db = tmp_path / "q.db"
    assert main(["ingest", str(f), "--db", str(db)]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"qual: warning: {f}: mixed encodings") and "Windows-1252" in err
    with Store(db) as s:
        assert "The \u201clegal\u201d review cost £40k." in list(s.segments()["text"])
        _offsets_valid(s)


# -- one enormous turn ----------------------------------------------------------------------------
def test_one_enormous_turn_is_cut_into_bounded_segments_quickly(tmp_path, nlp):
    rng = random.Random(7)
    vocab = "data sharing linkage trust public people process legal gateway the of to we".split()
    body = " ".join(rng.choice(vocab) for _ in range(200_000))     # no punctuation at all
    f = tmp_path / "monologue.txt"
    f.write_text("Interviewer: Tell me about it.\n\nSam: Happy to.\n\nInterviewer: Go on.\n\n"
                 f"Sam: {body}\n", encoding="utf-8")
    with Store(tmp_path / "q.db") as store:
        t0 = time.perf_counter()
        report = ingest([f], store, nlp=nlp)
        took = time.perf_counter() - t0
        assert not report.failures and took < 30, took
        segs = store.segments()
        words = segs["text"].str.split().map(len)
        assert words.max() <= 120 and words.sum() == 200_000 + 2     # every word, once
        _offsets_valid(store)


def test_a_run_on_sentence_is_cut_after_a_comma_and_a_real_one_never(nlp):
    from qual.model import Transcript, Turn
    from qual.segment import SegmentParams, segment

    words = [f"w{i}" + ("," if i == 20 else "") for i in range(50)]
    body = " ".join(words) + ". Short one."
    text = f"Q: Go on.\nSam: {body}\n"
    t = Transcript("t.txt", text, [Turn("Q", 3, 9, "interviewer"),
                                   Turn("Sam", 15, 15 + len(body), "stakeholder")])
    segs = segment(t, nlp, SegmentParams(max_sentences=5, max_words=30,
                                         max_sentence_words=40))
    assert [s.text.split()[-1] for s in segs[1:]] == ["w20,", "w49.", "one."]
    assert all(text[s.start:s.end] == s.text for s in segs)
    segs = segment(t, nlp, SegmentParams(max_sentences=5, max_words=30))   # cap 120 words
    assert [s.text for s in segs[1:]] == [" ".join(words) + ".", "Short one."]


# -- duplicate files ------------------------------------------------------------------------------
def test_the_same_transcript_twice_is_read_once_and_the_copy_reported(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_interview.txt").write_text(TURNS, encoding="utf-8")
    (folder / "b_interview_copy.txt").write_text(TURNS, encoding="utf-8")
    (folder / "c_copy.txt").write_text(TURNS, encoding="utf-8")
    (folder / "d_other.txt").write_text(TURNS.replace("months", "weeks"), encoding="utf-8")
    # the same words in another encoding are different bytes: a separate document (by design)
    (folder / "e_windows.txt").write_bytes(TURNS.replace("\n", "\r\n").encode("cp1252"))
    db = tmp_path / "q.db"
    for _ in range(2):                                  # a re-run behaves the same
        assert main(["ingest", str(folder), "--db", str(db)]) == 0
        out = capsys.readouterr().out
        for copy in ("b_interview_copy.txt", "c_copy.txt"):
            assert (f"skipped {folder / copy}: duplicate of {folder / 'a_interview.txt'}"
                    in out), out
        assert "documents read: 3" in out and "e_windows.txt:" not in out
        with Store(db) as s:
            assert sorted(s.documents(current_only=False)["name"]) == [
                "a_interview.txt", "d_other.txt", "e_windows.txt"]


# -- a locked store --------------------------------------------------------------------------------
LOCKER = textwrap.dedent("""
    import sqlite3, sys
    c = sqlite3.connect(sys.argv[1], isolation_level=None)
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO memos (author, created_at, text) VALUES ('locker', 'now', 'held')")
    print("locked", flush=True)
    sys.stdin.readline()                   # hold the lock until the test says so
    c.execute("ROLLBACK")
""")


def test_a_locked_store_is_a_clear_error_and_nothing_is_half_written(tmp_path, monkeypatch,
                                                                     capsys):
    db = tmp_path / "q.db"
    src = tmp_path / "t.txt"
    src.write_text(TURNS, encoding="utf-8")
    Store(db).close()
    before = _counts(db)
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout.readline().strip() == "locked"
        monkeypatch.setenv("QUAL_BUSY_TIMEOUT", "1")
        t0 = time.perf_counter()
        status = main(["ingest", str(src), "--db", str(db)])
        assert time.perf_counter() - t0 < 25              # the 1 s timeout, not the default 30 s
        err = capsys.readouterr().err
        assert status == 2 and err.count("\n") == 1
        assert f"{db}: the store is locked" in err and "1 s" in err
        with Store(db, timeout=0.3) as s:                        # the API says the same
            with pytest.raises(StoreError, match="locked"):
                s.add_memo("ann", "a memo")
    finally:
        locker.stdin.close()
        locker.wait(timeout=30)
    assert _counts(db) == before
    assert main(["ingest", str(src), "--db", str(db)]) == 0      # free again: it works


# -- a read-only store -----------------------------------------------------------------------------
_CAPS = (1, 2, 3)       # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
_LIBC = ctypes.CDLL(None, use_errno=True)     # loaded here: no dlopen between fork and exec


def _without_root_overrides():
    """Run the child as a user that file permissions really apply to. Root ignores permission
    bits through its capabilities; dropping them from the bounding set (the child is exec'd,
    so its capabilities come from that set) makes a 0444 file read-only for it too. A user
    other than root is bound by the permission bits already."""
    if os.geteuid() != 0:
        return
    for cap in _CAPS:
        if _LIBC.prctl(24, cap, 0, 0, 0) != 0:        # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_a_read_only_store_is_a_clear_error_naming_the_file(coded_store, tmp_path):
    db = coded_store.path
    coded_store.close()
    before = _counts(db)
    src = tmp_path / "t.txt"
    src.write_text(TURNS, encoding="utf-8")
    os.chmod(db, 0o444)
    try:
        # the mechanism really stops writes (not only for a non-root user)
        probe = subprocess.run([sys.executable, "-c", f"open({str(db)!r}, 'r+b')"],
                               preexec_fn=_without_root_overrides, capture_output=True, text=True)
        assert probe.returncode != 0 and "Permission denied" in probe.stderr
        r = subprocess.run([sys.executable, "-m", "qual", "ingest", str(src), "--db", str(db)],
                           preexec_fn=_without_root_overrides, cwd=tmp_path, env=ENV,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip() == (f"qual: error: {db}: cannot write to the store: it is "
                                    "read-only (check the permissions of the file and its "
                                    "folder, or copy it somewhere writable)")
        # reading a read-only store still works: an export
        out = tmp_path / "coded.csv"
        r = subprocess.run([sys.executable, "-m", "qual", "export", "--format", "csv", "--output",
                            str(out), "--db", str(db)], preexec_fn=_without_root_overrides,
                           cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert len(pd.read_csv(out)) > 0
    finally:
        os.chmod(db, 0o644)
    assert _counts(db) == before


# -- a full disk on export -----------------------------------------------------------------------
def _file_size_limit(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # writes past the limit fail: EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_full_disk_on_export_leaves_no_partial_file(coded_store, tmp_path, fmt):
    db = str(coded_store.path)                 # the store stays open: its -shm file exists
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    old = out_dir / f"coded.{fmt}"
    assert main(["export", "--format", fmt, "--output", str(old), "--db", db]) == 0
    good = old.read_bytes()
    limit = len(good) // 2
    assert limit > 4096
    for target in (old, out_dir / f"new.{fmt}"):          # replacing an export, and a new one
        r = subprocess.run([sys.executable, "-m", "qual", "export", "--format", fmt, "--output",
                            str(target), "--db", db], preexec_fn=_file_size_limit(limit),
                           cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, (r.stdout, r.stderr)
        assert r.stderr.strip() == (f"qual: error: {target}: cannot write: the disk is full (the "
                                    "file size limit was reached); nothing was written and no "
                                    "partial file is left")
    assert old.read_bytes() == good                            # the old export is untouched
    assert sorted(p.name for p in out_dir.iterdir()) == [old.name]   # no new or temp file


# -- concurrency ----------------------------------------------------------------------------------
WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from qual.review import apply_decision
    from qual.store import Store
    db, who, stop, n = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    ids = [int(x) for x in sys.argv[5].split(",")]
    done = 0
    with Store(db) as store:
        print("ready", flush=True)
        while done < n and (done < 10 or not stop.exists()):
            sid = ids[done % len(ids)]
            apply_decision(store, sid, who, "accept" if done % 2 else "reject",
                           memo=f"{who}-{done}")
            done += 1
            time.sleep(0.05)
    print(done, flush=True)
""")


def test_two_reviewers_and_a_batch_run_at_once_lose_no_decision(coded_store, tmp_path):
    db = coded_store.path
    ids = coded_store.segments()["segment_id"].astype(int).tolist()
    coded_store.close()
    before = _counts(db)
    stop = tmp_path / "stop"
    batch = subprocess.Popen([sys.executable, "-m", "qual", "code",
                              str(SAMPLES / "interview_02_local_authority.txt"),
                              str(SAMPLES / "interview_07_information_governance.srt"),
                              "--db", str(db)], cwd=tmp_path, env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), who, str(stop), "5000",
                                 ",".join(map(str, ids[k::2]))], cwd=tmp_path, env=ENV,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for k, who in enumerate(("ann", "bo"))]
    try:
        out, err = batch.communicate(timeout=240)
        overlapped = all(w.poll() is None for w in writers)   # still writing while it ran
        stop.touch()
        made = {}
        for w, who in zip(writers, ("ann", "bo")):
            w_out, w_err = w.communicate(timeout=60)
            assert w.returncode == 0, w_err
            made[who] = int(w_out.split()[-1])
    finally:
        for p in (batch, *writers):
            if p.poll() is None:
                p.kill()
    assert batch.returncode == 0, err
    assert overlapped, "the reviewers finished before the batch run: no concurrency tested"
    with Store(db) as s:
        d = s.decisions()
        assert s.latest_run()["status"] == "complete"
        assert len(s.documents()) == 5
    for who, n in made.items():
        memos = set(d[d["reviewer"] == who]["memo"])
        assert memos == {f"{who}-{i}" for i in range(n)}, who
    assert len(d) == before["decisions"] + sum(made.values())
