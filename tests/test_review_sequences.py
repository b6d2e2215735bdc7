"""A reviewer's sequences through the review app (AppTest on a real coded store), the review
logic they rest on, and the test set-up on a machine without a browser."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO


# -- set-up: the README's test command on a machine without chromium -------------------------
def _pytest_browser_tests(**env):
    run_env = {k: v for k, v in os.environ.items() if k != "QUAL_REQUIRE_BROWSER"}
    run_env.update(env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "tests/test_browser.py"], cwd=REPO, env=run_env,
                          capture_output=True, text=True, timeout=300)


def test_without_chromium_browser_tests_skip_saying_why_but_fail_in_ci():
    missing = "/nonexistent/chromium"
    fresh = _pytest_browser_tests(QUAL_CHROMIUM=missing)
    assert fresh.returncode == 0, fresh.stdout[-2000:]
    assert "skipped" in fresh.stdout and "error" not in fresh.stdout.lower()
    assert f"needs Debian's chromium at {missing}" in fresh.stdout
    ci = _pytest_browser_tests(QUAL_CHROMIUM=missing, QUAL_REQUIRE_BROWSER="1")
    assert ci.returncode != 0
    assert "QUAL_REQUIRE_BROWSER=1" in ci.stdout and "passed" not in ci.stdout


# -- the review app: helpers -----------------------------------------------------------------
import html as _html  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from conftest import build_store  # noqa: E402
from qual import review as R  # noqa: E402
from qual.errors import StoreError  # noqa: E402
from qual.store import Store  # noqa: E402


def _app(path, monkeypatch, **query) -> AppTest:
    monkeypatch.setenv("QUAL_DB", str(path))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    return at


def _sid(at) -> int:
    key = next(m.key for m in at.multiselect if m.key.startswith("themes_"))
    return int(key.split("_")[1])


def _decisions(path) -> pd.DataFrame:
    with Store(path) as s:
        return s.decisions()


def _live(path, sid: int) -> bool:
    with Store(path) as s:
        return bool(s.segment_record(sid)["active"])


def _skip_to(at, path, wanted, limit: int = 40) -> int:
    """Skip queue cards until ``wanted(segment_record)``; return that card's segment id."""
    for _ in range(limit):
        sid = _sid(at)
        with Store(path) as s:
            if wanted(s.segment_record(sid)):
                return sid
        at.button(key="skip").click().run()
    raise AssertionError("no such segment in the queue")


# -- split, then decide ----------------------------------------------------------------------
def test_split_then_accept_decides_on_a_live_segment_in_every_session(coded_store, monkeypatch):
    at = _app(coded_store.path, monkeypatch)
    at.text_input(key="reviewer").input("ann").run()
    at.selectbox(key="f_order").set_value("by document (text order)").run()
    sid = _skip_to(at, coded_store.path, lambda s: R.split_points(s["text"]))
    text = coded_store.segment_record(sid)["text"]
    cut = at.selectbox(key=f"cut_{sid}").value           # not chosen: the default cut
    assert cut == R.default_cut(text)
    assert min(R._words(text[:cut]), R._words(text[cut:])) >= R.MIN_SPLIT_WORDS
    at.button(key=f"split_{sid}").click().run()
    assert not at.exception and "Split segment" in at.success[0].value
    made = _decisions(coded_store.path).iloc[-1]["after"]["into"]
    # the card that follows is a live segment, not the retired one with its old text
    now = _sid(at)
    assert now != sid and _live(coded_store.path, now) and now in made
    assert text not in _html.unescape(" ".join(m.value for m in at.markdown))
    # a fresh session (the cache is shared by all sessions) shows the new segments only
    fresh = _app(coded_store.path, monkeypatch, reviewer="bo")
    fresh.selectbox(key="f_order").set_value("by document (text order)").run()
    seen = set()
    for _ in range(60):
        seen.add(_sid(fresh))
        if set(made) <= seen:
            break
        fresh.button(key="skip").click().run()
    assert set(made) <= seen and sid not in seen
    at.button(key="accept").click().run()
    d = _decisions(coded_store.path)
    assert d.iloc[-1]["action"] == "accept" and d.iloc[-1]["segment_id"] == now
    assert d.loc[d["segment_id"] == sid, "action"].tolist() == ["split"]
    # undo takes the accept back, then the split: "segment N is back", singular
    at.button(key="undo").click().run()
    assert not at.exception


def test_a_retired_segment_takes_no_decision(coded_store):
    row = next(r for r in R.effective_coding(coded_store).itertuples()
               if R.split_points(r.text))
    sid = int(row.segment_id)
    a, b = R.split_segment(coded_store, sid, R.default_cut(row.text), "ann")
    with pytest.raises(R.ReviewError, match="split or merged"):
        R.apply_decision(coded_store, sid, "ann", "accept")
    with pytest.raises(StoreError, match="replaced"):
        coded_store.add_decision(sid, "ann", "reject", {}, {"themes": []})
    R.apply_decision(coded_store, a, "ann", "accept")           # the new ones take it
    assert coded_store.segment_decisions(sid)["action"].tolist() == ["split"]


def test_the_change_stamp_moves_with_segments_and_decisions(coded_store):
    row = next(r for r in R.effective_coding(coded_store).itertuples()
               if R.split_points(r.text))
    seg0, dec0 = coded_store.change_stamp()
    R.apply_decision(coded_store, int(row.segment_id), "ann", "reject")
    seg1, dec1 = coded_store.change_stamp()
    assert seg1 == seg0 and dec1 != dec0                 # a decision: the machine part holds
    a, _ = R.split_segment(coded_store, int(row.segment_id), R.default_cut(row.text), "ann")
    seg2, dec2 = coded_store.change_stamp()
    assert seg2 != seg1 and dec2 != dec1
    R.take_back_boundary_change(coded_store, a, "ann")
    seg3, _ = coded_store.change_stamp()
    assert seg3 not in (seg1, seg2)


def test_split_cuts_leave_words_on_both_sides_and_default_to_the_middle():
    text = ("Well, yes. The agreements take months to sign, and the lawyers go round in "
            "circles; nobody owns the process.")
    cuts = R.split_points(text)
    assert all(min(R._words(text[:c]), R._words(text[c:])) >= 3 for c in cuts)
    assert text.index("Well,") + len("Well, ") not in cuts       # a one-word side
    mid = R.default_cut(text)
    assert mid in cuts and abs(mid - len(text) / 2) == min(abs(c - len(text) / 2) for c in cuts)
    assert R.split_points("Yes, fine.") == [] and R.default_cut("Yes, fine.") is None


def test_split_refuses_a_cut_that_leaves_under_three_words(coded_store):
    row = next(r for r in R.effective_coding(coded_store).itertuples()
               if re.match(r"\w+,\s", r.text) and R._words(r.text) > 8)
    comma = row.text.index(",") + 2
    with pytest.raises(R.ReviewError, match="at least 3 words"):
        R.split_segment(coded_store, int(row.segment_id), comma, "ann")


def test_ids_phrase_is_singular_or_plural():
    assert R.ids_phrase([538]) == "segment 538"
    assert R.ids_phrase([5, 6]) == "segments 5 and 6"
    assert R.ids_phrase([5, 6, 7]) == "segments 5, 6 and 7"


def test_taking_back_a_split_says_which_segment_is_back(coded_store, monkeypatch):
    at = _app(coded_store.path, monkeypatch, reviewer="ann")
    sid = _skip_to(at, coded_store.path, lambda s: R.split_points(s["text"]))
    at.button(key=f"split_{sid}").click().run()
    at.button(key="undo").click().run()
    assert not at.exception
    assert f"segment {sid} is back" in at.success[0].value


# -- blind coding on, then off ---------------------------------------------------------------
def test_blind_on_then_off_restores_form_and_order_and_a_memo_keeps_the_coding(
        coded_store, monkeypatch):
    at = _app(coded_store.path, monkeypatch, reviewer="eve")
    at.multiselect(key="f_themes").set_value(["people"]).run()
    at.selectbox(key="f_order").set_value("by document (text order)").run()
    sid = _sid(at)
    coded = R.coding_of(R.effective_coding(coded_store).set_index("segment_id").loc[sid])
    assert coded["themes"], "the first card should carry a coding"
    at.toggle(key="blind").set_value(True).run()
    assert at.selectbox(key="f_order").value == "random sample (for blind coding)"
    assert at.multiselect(key=f"themes_{_sid(at)}").value == []
    at.toggle(key="blind").set_value(False).run()
    assert not at.exception
    assert at.selectbox(key="f_order").value == "by document (text order)"   # chosen before
    assert _sid(at) == sid
    assert at.multiselect(key=f"themes_{sid}").value == coded["themes"]   # what the card shows
    assert at.multiselect(key=f"subcodes_{sid}").value == coded["subcodes"]
    assert at.radio(key=f"polarity_{sid}").value == coded["polarity"]
    at.button(key="save").click().run()                  # nothing changed, no memo: nothing saved
    assert any("Nothing to save" in e.value for e in at.error)
    assert _decisions(coded_store.path).empty
    at.text_area(key=f"memo_{sid}").input("checked the quote in context").run()
    at.button(key="save").click().run()
    assert not at.exception
    d = _decisions(coded_store.path)
    assert d["action"].tolist() == ["accept"] and d.iloc[0]["memo"] == "checked the quote in context"
    after = R.effective_coding(coded_store).set_index("segment_id").loc[sid]
    assert R.coding_of(after) == coded and after.reviewer == "eve"


def test_correction_records_what_the_reviewer_changed(codebook):
    shown = {"themes": ["people"], "subcodes": [], "polarity": "barrier"}
    assert R.correction(shown, dict(shown), memo="fine", codebook=codebook) == (
        "accept", {"memo": "fine"})
    with pytest.raises(R.ReviewError, match="Nothing to save"):
        R.correction(shown, dict(shown), codebook=codebook)
    action, kw = R.correction(shown, {**shown, "polarity": "opportunity"}, codebook=codebook)
    assert action == "recode" and kw["themes"] == ["people"] and kw["polarity"] == "opportunity"
    sub = next(s for s in codebook.subcode_ids if codebook.theme_of(s) == "public")
    assert R.correction(shown, {**shown, "subcodes": [sub]}, memo="x", codebook=codebook)[0] \
        == "accept"                                 # a sub-code of a theme not chosen is dropped
    _, kw = R.correction(shown, {"themes": ["people"], "subcodes": [sub],
                                 "polarity": "opportunity"}, codebook=codebook)
    assert kw["subcodes"] == [] and kw["themes"] == ["people"]
    action, kw = R.correction(shown, {"themes": [], "subcodes": [], "polarity": "neutral"},
                              blind=True, codebook=codebook)
    assert action == "recode" and kw["blind"] and kw["themes"] == []   # blind: their own coding


# -- the card: sub-codes, scores, reviewer name ----------------------------------------------
def test_sub_codes_offered_are_those_of_the_chosen_themes(coded_store, monkeypatch, codebook):
    at = _app(coded_store.path, monkeypatch, reviewer="ann")
    sid = _sid(at)
    at.multiselect(key=f"themes_{sid}").set_value(["public"]).run()
    public = [s for s in codebook.subcode_ids if codebook.theme_of(s) == "public"]
    assert at.multiselect(key=f"subcodes_{sid}").options == public
    at.multiselect(key=f"subcodes_{sid}").set_value(public[:1]).run()
    at.multiselect(key=f"themes_{sid}").set_value(["public", "people"]).run()
    assert at.multiselect(key=f"subcodes_{sid}").value == public[:1]          # kept
    at.multiselect(key=f"themes_{sid}").set_value(["people"]).run()
    assert at.multiselect(key=f"subcodes_{sid}").value == []                  # went with public
    assert all(codebook.theme_of(s) == "people"
               for s in at.multiselect(key=f"subcodes_{sid}").options)
    at.button(key="save").click().run()
    assert not at.exception
    assert _decisions(coded_store.path).iloc[0]["after"]["themes"] == ["people"]


def test_scores_are_one_line_on_the_card(coded_store, monkeypatch):
    at = _app(coded_store.path, monkeypatch, reviewer="ann")
    assert not at.dataframe                                  # no score table on the card
    line = next(c.value for c in at.caption if c.value.startswith("Top scores"))
    assert line.count("·") <= 2
    assert R.score_summary({"people": 0.61, "public": 0.6, "none": 0.1, "people.skills": 0.9,
                            "polarity_score": 0.7}) == "people 0.61 · public 0.60 · none 0.10 (close call)"


def test_the_reviewer_name_survives_a_reload(coded_store, monkeypatch):
    at = _app(coded_store.path, monkeypatch)
    at.text_input(key="reviewer").input("Ann Lee").run()
    assert at.query_params["reviewer"] == "Ann Lee"
    reloaded = _app(coded_store.path, monkeypatch, reviewer=at.query_params["reviewer"])
    assert reloaded.text_input(key="reviewer").value == "Ann Lee"
    assert not reloaded.button(key="accept").disabled
    reloaded.button(key="accept").click().run()
    assert _decisions(coded_store.path)["reviewer"].tolist() == ["Ann Lee"]
