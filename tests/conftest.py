"""Shared fixtures: the real embedding model, the real spaCy pipeline and the shipped
codebook are loaded once per test session; small coded stores are built from real files."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# The machine-wide cache of codebook vectors (qual.embed.machine_cache) goes to a folder of
# this test session, never to the user's ~/.cache; tests that need their own set it again.
_CACHE = tempfile.mkdtemp(prefix="qual-test-cache-")
os.environ["QUAL_CACHE_DIR"] = _CACHE


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "transcripts"
INQUIRY = REPO.parent / "shared" / "data" / "inquiry"


@pytest.fixture(scope="session")
def embedder():
    from qual.embed import Embedder

    e = Embedder()
    e.model  # load once
    return e


@pytest.fixture(scope="session")
def memo(embedder):
    """The session's model behind an in-memory vector cache: each text is encoded once per
    test session, whichever module asks first (the codebook's ~1,300 texts take ~20 s)."""
    from qual.embed import CachedEmbedder

    return CachedEmbedder(embedder, None)


@pytest.fixture(scope="session")
def nlp():
    from qual.segment import make_nlp

    return make_nlp()


@pytest.fixture(scope="session")
def codebook():
    from qual.codebook import load_codebook

    return load_codebook()


def build_store(path, files, embedder, codebook, nlp):
    """Ingest and code real transcript files into a new store at ``path``."""
    from qual.project import code, ingest
    from qual.store import Store

    store = Store(path)
    report = ingest(files, store, nlp=nlp)
    assert not report.failures, report.failures
    code(store, codebook, embedder, report.document_ids)
    return store


@pytest.fixture(scope="session")
def _coded_samples_template(tmp_path_factory, embedder, codebook, nlp):
    """The shipped samples (three of them, several formats), coded once per session."""
    path = tmp_path_factory.mktemp("template") / "qual.db"
    files = [SAMPLES / "interview_01_central_department.txt",
             SAMPLES / "interview_04_devolved_statistics.docx",
             SAMPLES / "interview_05_data_engineering.vtt"]
    build_store(path, files, embedder, codebook, nlp).close()
    return path


@pytest.fixture
def coded_store(_coded_samples_template, tmp_path):
    """A fresh copy of a coded store per test (a real SQLite file): tests may write to it."""
    from qual.store import Store

    path = tmp_path / "qual.db"
    shutil.copy(_coded_samples_template, path)
    store = Store(path)
    yield store
    store.close()


CHROMIUM = os.environ.get("QUAL_CHROMIUM", "/usr/bin/chromium")     # Debian's, by default


def require_chromium() -> str:
    """The path of Debian's chromium for the real-browser tests. Without it they are skipped,
    saying why, so ``python -m pytest`` passes on a fresh machine; under
    ``QUAL_REQUIRE_BROWSER=1`` (set by .ci/run, which installs chromium) they fail instead."""
    missing = None
    if not os.path.exists(CHROMIUM):
        missing = f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "needs Playwright (pip install -r requirements.txt)"
    if missing:
        if os.environ.get("QUAL_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser test required (QUAL_REQUIRE_BROWSER=1) but it {missing}")
        pytest.skip(f"real-browser test: {missing}")
    return CHROMIUM


@pytest.fixture
def chromium() -> str:
    """Debian's chromium, or the test is skipped (or failed in CI): see require_chromium."""
    return require_chromium()


def python_c(script: str, *, timeout: float = 300, env=None):
    """``python -c SCRIPT`` in a fresh interpreter from the repository (for what a new process
    imports or loads); returns the CompletedProcess with text output."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=env)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc, timeout: float = 15) -> None:
    """Stop a server a test started: ask, then insist."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextlib.contextmanager
def serve_review(db, tmp_path, *extra, env=None, timeout: float = 60):
    """Start ``python -m qual review --db DB`` as a user would, on a free port, and wait for
    Streamlit's health check. Yields ``(url, proc, log_path)``; stops the app afterwards and
    checks that stopping ``qual review`` freed the port."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    log_path = tmp_path / "review.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "qual", "review", "--db", str(db),
                             "--port", str(port), *extra], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=1) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.close()
                raise AssertionError("the app did not start: " + log_path.read_text()[-2000:])
            time.sleep(0.2)
        yield url, proc, log_path
    finally:
        stop_process(proc)
        log.close()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
