"""Killing `python -m qual code` at any moment and running it again gives the same result."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

from qual.cli import main
from qual.store import Store

from conftest import SAMPLES

FILES = [str(SAMPLES / "interview_02_local_authority.txt"),
         str(SAMPLES / "interview_03_health_research.md"),
         str(SAMPLES / "interview_07_information_governance.srt")]


def _final_coding(db):
    with Store(db) as s:
        run = s.latest_run()
        codes = s.machine_codes(run["id"])
        segs = s.segments(role=None)
        docs = s.documents(current_only=False)
        n_segments = s.conn.execute("SELECT COUNT(*) FROM segments").fetchone()[0]
        n_turns = s.conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
    merged = codes.merge(segs, on="segment_id")
    coding = sorted(zip(merged["document"], merged["start"], merged["end"], merged["themes"],
                        merged["polarity"]))
    return coding, sorted(docs["name"]), n_segments, n_turns


def _rows(db, table):
    try:
        c = sqlite3.connect(db, timeout=1)
        return c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_then_rerun_equals_an_uninterrupted_run(tmp_path):
    clean = tmp_path / "clean.db"
    assert main(["code", *FILES, "--db", str(clean)]) == 0
    expected = _final_coding(clean)

    killed = tmp_path / "killed.db"
    points = []
    for wait_for in ("documents", "embeddings"):   # kill during ingest, then during embedding
        proc = subprocess.Popen([sys.executable, "-m", "qual", "code", *FILES, "--db", str(killed)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and not (
                killed.exists() and _rows(str(killed), wait_for) > 0):
            time.sleep(0.05)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            points.append(wait_for)
        proc.wait()
    assert points, "the run finished before it could be killed"
    assert main(["code", *FILES, "--db", str(killed)]) == 0
    assert _final_coding(killed) == expected
    with Store(killed) as s:
        runs = s.runs("code")
        assert list(runs["status"])[-1] == "complete"
        # runs killed midway never count as the machine's coding
        assert set(s.machine_codes()["run_id"]) == {int(runs["id"].iloc[-1])}
