"""End to end in a real browser: Debian's chromium driven by Playwright. The app runs as
``python -m qual review`` would start it, on a free localhost port; a reviewer enters their
name, rejects the first segment, and the decision is in the store. A screenshot is saved
to test-artifacts/."""

import os
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import REPO
from qual.commands.review import streamlit_command
from qual.store import Store

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="needs Debian's chromium (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def running_app(coded_store, tmp_path):
    port = _free_port()
    env = {**os.environ, "QUAL_DB": str(coded_store.path)}
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen(streamlit_command(coded_store.path, port), env=env, cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=1) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.close()
                raise AssertionError("the app did not start: "
                                     + (tmp_path / "streamlit.log").read_text()[-2000:])
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_reviewer_corrects_a_segment_in_a_browser(running_app, coded_store):
    from playwright.sync_api import expect, sync_playwright

    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(running_app, wait_until="domcontentloaded")
            name = page.get_by_label("Your name (recorded on every decision)")
            name.wait_for(timeout=30_000)
            name.fill("erin")
            name.press("Enter")
            reject = page.get_by_role("button", name="Reject (no theme)")
            expect(reject).to_be_enabled(timeout=20_000)
            first = page.get_by_text("· segment ").first.inner_text()
            reject.click()
            expect(page.get_by_text("Saved: reject on segment")).to_be_visible(timeout=20_000)
            assert page.get_by_text("· segment ").first.inner_text() != first
            page.screenshot(path=str(artifacts / "review_app.png"), full_page=True)
        finally:
            browser.close()
    with Store(coded_store.path) as s:
        d = s.decisions()
    assert d["reviewer"].tolist() == ["erin"] and d["action"].tolist() == ["reject"]
    assert str(d["segment_id"][0]) in first
