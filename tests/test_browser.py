"""End to end in a real browser: Debian's chromium driven by Playwright. The app runs as
``python -m qual review`` would start it, on a free localhost port; a reviewer enters their
name, rejects the first segment, and the decision is in the store. A screenshot is saved
to test-artifacts/."""

import contextlib

import pytest

from conftest import CHROMIUM, REPO, require_chromium, serve_review
from qual.store import Store

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(autouse=True, scope="session")
def _needs_chromium():
    """Without Debian's chromium these tests are skipped with the reason; in CI
    (QUAL_REQUIRE_BROWSER=1, set by .ci/run after installing it) they fail instead."""
    require_chromium()


@contextlib.contextmanager
def _serve(db, tmp_path, *extra):
    with serve_review(db, tmp_path, *extra) as (url, _, log_path):
        yield url, log_path.read_text()


@pytest.fixture
def running_app(coded_store, tmp_path):
    with _serve(coded_store.path, tmp_path) as (url, log):
        assert url in log and "this machine only" in log
        yield url


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
            # while Streamlit reruns, the old (disabled) button can be on the page beside the
            # new one: wait until only the enabled one is left
            reject = page.locator("button:enabled", has_text="Reject (no theme)")
            expect(reject).to_have_count(1, timeout=30_000)
            expect(page.locator("button:disabled", has_text="Reject (no theme)")).to_have_count(
                0, timeout=30_000)
            expect(page.locator("button", has_text="Reject (no theme)")).to_have_count(
                1, timeout=30_000)
            first = page.get_by_text("· segment ").first.inner_text()
            reject.click()
            expect(page.get_by_text("Saved: reject on segment")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("· segment ").first).not_to_have_text(first, timeout=30_000)
            page.screenshot(path=str(artifacts / "review_app.png"), full_page=True)
        finally:
            browser.close()
    with Store(coded_store.path) as s:
        d = s.decisions()
    assert d["reviewer"].tolist() == ["erin"] and d["action"].tolist() == ["reject"]
    assert str(d["segment_id"][0]) in first


def test_beyond_this_machine_a_reviewer_signs_in_with_a_password(coded_store, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from qual import access as A

    A.add_reviewer(A.default_path(coded_store.path), "fay", "linkage-spine-42")
    with _serve(coded_store.path, tmp_path, "--address", "0.0.0.0") as (url, log), \
            sync_playwright() as p:
        assert "a password is required" in log
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_label("Reviewer name").wait_for(timeout=30_000)
            expect(page.get_by_text("Review queue")).to_have_count(0)   # nothing before login
            page.get_by_label("Reviewer name").fill("fay")
            page.get_by_role("textbox", name="Password").fill("not her password")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_text("Wrong name or password")).to_be_visible(timeout=30_000)
            page.get_by_role("textbox", name="Password").fill("linkage-spine-42")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_text("Signed in as")).to_be_visible(timeout=30_000)
            reject = page.locator("button:enabled", has_text="Reject (no theme)")
            expect(reject).to_have_count(1, timeout=30_000)
            reject.click()
            expect(page.get_by_text("Saved: reject on segment")).to_be_visible(timeout=30_000)
        finally:
            browser.close()
    with Store(coded_store.path) as s:
        assert s.decisions()["reviewer"].tolist() == ["fay"]


# -- stores written for the review sequences (tests/test_review_sequences.py) -----------------
from test_review_sequences import (  # noqa: E402,F401  (fixtures)
    OVERLAY, _hostile_template, _reading_template, hostile_store,
    reading_store)


def _open(p, url):
    browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url, wait_until="domcontentloaded")
    return browser, page


def _go_to(page, name: str):
    from playwright.sync_api import expect

    page.locator('[data-testid="stSidebar"]').get_by_text(name, exact=True).click()
    expect(page.get_by_role("heading", name=name)).to_be_visible(timeout=30_000)


def test_markup_in_the_data_is_shown_as_text_and_fetches_nothing(hostile_store, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    beacon_requests = []
    with _serve(hostile_store, tmp_path) as (url, _), sync_playwright() as p:
        browser, page = _open(p, url)
        page.on("request", lambda r: beacon_requests.append(r.url)
                if "127.0.0.1:9/" in r.url else None)
        try:
            name = page.get_by_label("Your name (recorded on every decision)")
            name.wait_for(timeout=30_000)
            name.fill(OVERLAY)                      # a hostile reviewer name, typed in
            name.press("Enter")
            expect(page.locator("button:enabled", has_text="Reject (no theme)")).to_have_count(
                1, timeout=30_000)

            def check(where):
                page.wait_for_timeout(1500)          # let any image load start
                assert page.locator('img[src*="127.0.0.1:9"]').count() == 0, where
                assert page.locator('a[href*="127.0.0.1:9"]').count() == 0, where
                assert page.locator('[style*="position:fixed"],[style*="position: fixed"]'
                                    ).filter(has_text="overlay").count() == 0, where

            expect(page.get_by_text("![x](http").first).to_be_visible(timeout=30_000)  # text
            check("review queue")
            page.get_by_role("button", name="Reject (no theme)").click()
            expect(page.get_by_text("Saved: reject on segment")).to_be_visible(timeout=30_000)
            page.locator("summary", has_text="Filters and order").click()
            # cards decided so far: the option inside the expander once it has opened (under
            # load the first match can still be a hidden copy)
            page.get_by_text("reviewed", exact=True).filter(visible=True).first.click()
            expect(page.get_by_text("Now:").first).to_be_visible(timeout=30_000)
            check("reviewed card")
            for name in ("Transcript", "Topics", "Overview"):
                _go_to(page, name)
                check(name)
            page.screenshot(path=str(REPO / "test-artifacts" / "hostile_overview.png"))
        finally:
            browser.close()
    assert beacon_requests == []


def test_transcript_paragraphs_grey_turns_and_the_jump_from_a_card(reading_store, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with Store(reading_store) as s:
        segs = s.segments()
    long = int(segs[segs["text"].str.contains("\n\n")].iloc[0]["segment_id"])
    with _serve(reading_store, tmp_path) as (url, _), sync_playwright() as p:
        browser, page = _open(p, url + "/?reviewer=ann")      # the name from the address
        try:
            card = page.get_by_text("· segment ").first
            card.wait_for(timeout=30_000)
            sid = int(card.inner_text().rsplit("segment", 1)[1])
            expect(page.locator("button:enabled", has_text="Reject (no theme)")).to_have_count(
                1, timeout=30_000)
            page.get_by_role("button", name="Show in the transcript").click()
            target = page.locator(f"#seg-{sid}")
            expect(target).to_be_in_viewport(timeout=30_000)
            assert "outline" in (target.get_attribute("style") or "")
            # a two-paragraph segment is highlighted in both paragraphs
            pieces = page.locator(f'span[title^="segment {long} |"]')
            expect(pieces).to_have_count(2)
            for i in range(2):
                bg = pieces.nth(i).evaluate("e => getComputedStyle(e).backgroundColor")
                assert bg not in ("rgba(0, 0, 0, 0)", "transparent")
            # interviewer turns, continuation paragraphs too, are grey; stakeholders' are not
            colours = page.locator("p", has_text="what has changed over the last year").evaluate(
                "e => getComputedStyle(e).color")
            ann = page.locator("p", has_text="Better documentation of the fields").evaluate(
                "e => getComputedStyle(e).color")
            assert colours == "rgb(119, 119, 119)" and ann != colours
            page.screenshot(path=str(REPO / "test-artifacts" / "transcript.png"), full_page=True)
        finally:
            browser.close()
