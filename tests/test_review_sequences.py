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
    at.button(key="undo").click().run()                  # undo takes the accept back
    assert not at.exception and "Saved: undo" in at.success[0].value
    assert _decisions(coded_store.path).iloc[-1]["segment_id"] == now


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


# -- the app's coding cache: incremental after decisions, whole after segment changes --------
def _whole(store) -> pd.DataFrame:
    """The effective coding read from scratch, as the cache keeps it (ranked, scores as text)."""
    return R.apply_decisions(R.with_ranks(R.machine_coding(store, scores=False)),
                             store.latest_decisions())


def _same_as_whole(cache, store) -> pd.DataFrame:
    got = cache.coding(store)
    pd.testing.assert_frame_equal(got, _whole(store))
    return got


def test_the_coding_cache_follows_every_decision_and_every_session(coded_store, codebook):
    cache = R.CodingCache()
    before = _same_as_whole(cache, coded_store)
    first = R.review_queue(before)
    a, b, c = (int(x) for x in first["segment_id"][:3])
    R.apply_decision(coded_store, a, "ann", "reject")
    R.apply_decision(coded_store, b, "ann", "recode", themes=["public"], polarity="barrier",
                     memo="about trust", codebook=codebook)
    got = _same_as_whole(cache, coded_store)
    assert (cache.rebuilds, cache.updates) == (1, 1)           # two rows brought up to date
    row = got.set_index("segment_id")
    assert row.loc[a, "themes"] == "none" and row.loc[a, "reviewer"] == "ann"
    assert row.loc[b, "themes"] == "public" and row.loc[b, "memo"] == "about trust"
    assert before.set_index("segment_id").loc[a, "source"] == "machine"   # not changed in place
    queue = R.review_queue(got)
    assert a not in set(queue["segment_id"]) and queue["segment_id"].iloc[0] == c
    # a second reviewer, from another session's connection (or another process)
    with Store(coded_store.path) as other:
        R.apply_decision(other, c, "bob", "accept")
        R.apply_decision(other, a, "bob", "undo")               # no: ann's reject stands
    got = _same_as_whole(cache, coded_store)
    row = got.set_index("segment_id")
    assert row.loc[c, "reviewer"] == "bob" and row.loc[c, "source"] == "reviewer"
    assert row.loc[a, "source"] == "machine" and not row.loc[a, "reviewed"]   # undone
    assert a in set(R.review_queue(got)["segment_id"])
    assert (cache.rebuilds, cache.updates) == (1, 2)
    assert cache.coding(coded_store) is cache.coding(coded_store)   # nothing new: same frame
    # every decision is in the log as made, oldest first
    d = coded_store.decisions()
    assert list(zip(d["segment_id"], d["reviewer"], d["action"])) == [
        (a, "ann", "reject"), (b, "ann", "recode"), (c, "bob", "accept"), (a, "bob", "undo")]


def test_the_app_process_builds_the_coding_before_the_first_reviewer(coded_store, monkeypatch,
                                                                     tmp_path):
    """``qual review`` fills the process's shared coding in the background; the first
    session then shows its first card from it (no second reading), and a decision made there
    is brought into the same cache. A missing or non-store file is left alone."""
    thread = R.warm_up(coded_store.path)
    thread.join(60)
    cache = R.shared_coding_cache(coded_store.path)
    assert cache.rebuilds == 1 and (cache.rebuilds, cache.updates) == (1, 0)
    pd.testing.assert_frame_equal(cache.coding(coded_store), _whole(coded_store))
    at = _app(coded_store.path, monkeypatch, reviewer="ann")
    assert cache.rebuilds == 1                       # the first card came from the warm-up
    sid = _sid(at)
    at.button(key="reject").click().run()
    assert not at.exception, at.exception
    assert (cache.rebuilds, cache.updates) == (1, 1)
    assert _decisions(coded_store.path)["segment_id"].tolist() == [sid]

    assert R.warm_up(tmp_path / "absent.db") is None and not (tmp_path / "absent.db").exists()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database")
    R.warm_up(junk).join(60)
    assert junk.read_bytes() == b"not a database"
    assert R.shared_coding_cache(junk).rebuilds == 0


def test_a_batch_of_decisions_is_read_whole(coded_store):
    cache = R.CodingCache()
    cache.MAX_UPDATE = 2                           # an import of more decisions than this
    ids = [int(x) for x in R.review_queue(_same_as_whole(cache, coded_store))["segment_id"][:3]]
    for sid in ids:
        R.apply_decision(coded_store, sid, "importer", "reject")
    got = _same_as_whole(cache, coded_store)
    assert (cache.rebuilds, cache.updates) == (2, 0)
    assert got.set_index("segment_id").loc[ids, "reviewer"].tolist() == ["importer"] * 3


def test_the_coding_cache_reads_all_again_after_a_split_and_a_new_code_run(coded_store):
    from conftest import SAMPLES
    from qual.cli import main

    cache = R.CodingCache()
    coding = _same_as_whole(cache, coded_store)
    row = next(r for r in coding.itertuples() if R.split_points(r.text))
    sid = int(row.segment_id)
    R.apply_decision(coded_store, sid, "ann", "reject")
    _same_as_whole(cache, coded_store)
    left, right = R.split_segment(coded_store, sid, R.default_cut(row.text), "ann")
    got = _same_as_whole(cache, coded_store).set_index("segment_id")
    assert cache.rebuilds == 2 and sid not in got.index
    assert got.loc[left, "themes"] == "none" and got.loc[left, "stale"]   # carried, to check
    R.apply_decision(coded_store, right, "ann", "accept")   # a new segment, incrementally
    assert _same_as_whole(cache, coded_store).set_index("segment_id").loc[right, "reviewed"]
    R.take_back_boundary_change(coded_store, left, "ann")
    got = _same_as_whole(cache, coded_store).set_index("segment_id")
    assert cache.rebuilds == 3 and got.loc[sid, "themes"] == "none"
    # the coder runs again (another process, as `python -m qual code` would): decisions stay
    files = [SAMPLES / "interview_01_central_department.txt",
             SAMPLES / "interview_04_devolved_statistics.docx",
             SAMPLES / "interview_05_data_engineering.vtt"]
    runs = len(coded_store.runs("code"))
    assert main(["code", *map(str, files), "--db", str(coded_store.path)]) == 0
    assert len(coded_store.runs("code")) == runs + 1
    got = _same_as_whole(cache, coded_store).set_index("segment_id")
    assert cache.rebuilds == 4
    assert got.loc[sid, "themes"] == "none" and got.loc[sid, "reviewer"] == "ann"


def test_the_change_stamp_moves_with_a_recut_that_leaves_no_segment(coded_store):
    doc = int(coded_store.documents()["id"].iloc[0])
    seg0, _ = coded_store.change_stamp()
    coded_store.recut_document(doc, [], parameters={"max_words": 1})
    seg1, _ = coded_store.change_stamp()
    assert seg1 != seg0
    assert doc not in set(R.CodingCache().coding(coded_store)["document_id"])


def test_two_app_sessions_share_one_coding_that_follows_both(coded_store, monkeypatch):
    ann = _app(coded_store.path, monkeypatch, reviewer="ann")
    bob = _app(coded_store.path, monkeypatch, reviewer="bob")
    first = _sid(ann)
    assert _sid(bob) == first
    ann.button(key="reject").click().run()
    bob.run()                                  # bob's next page sees ann's decision
    assert _sid(bob) != first and _sid(bob) == _sid(ann)
    second = _sid(bob)
    bob.button(key="accept").click().run()
    ann.run()                                  # ann's next page: bob's card has left her queue
    assert second not in (_sid(ann), _sid(bob))
    d = _decisions(coded_store.path)
    assert list(zip(d["segment_id"], d["reviewer"], d["action"])) == [
        (first, "ann", "reject"), (second, "bob", "accept")]
    caption = next(c.value for c in ann.caption if "left in this queue" in c.value)
    assert "2 of " in caption


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


def test_the_form_still_shows_the_coding_after_another_page(coded_store, monkeypatch):
    at = _app(coded_store.path, monkeypatch, reviewer="eve")
    at.multiselect(key="f_themes").set_value(["people"]).run()
    sid = _sid(at)
    coded = R.coding_of(R.effective_coding(coded_store).set_index("segment_id").loc[sid])
    at.radio(key="page").set_value("Transcript").run()
    at.radio(key="page").set_value("Review queue").run()
    assert at.multiselect(key="f_themes").value == ["people"]          # the filter is kept
    assert _sid(at) == sid and at.multiselect(key=f"themes_{sid}").value == coded["themes"]
    assert at.radio(key=f"polarity_{sid}").value == coded["polarity"]
    at.text_area(key=f"memo_{sid}").input("fine").run()
    at.button(key="save").click().run()
    assert _decisions(coded_store.path)["action"].tolist() == ["accept"]


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


# -- stores written for these tests -------------------------------------------------------
READING = """Interviewer: Thanks for joining us today. Could you tell me how data sharing works in your team?

And, before you answer that, what has changed over the last year or so?

Ann Lee: We share data with three other departments every week, mostly through the agreed templates that legal signed off.

The legal gateway still took months to agree, though, and our data engineers rebuild every extract by hand.

Interviewer: What would help most, do you think?

Ann Lee: Better documentation of the fields would help the people who receive the data, and it is cheap to do.
"""

OVERLAY = '<a href="http://127.0.0.1:9/o" style="position:fixed;inset:0">overlay</a>'
BEACON = "<img src=http://127.0.0.1:9/beacon>"
MD_IMAGE = "![x](http://127.0.0.1:9/b.png)"
HOSTILE = f"{OVERLAY} {BEACON} {MD_IMAGE}"
HOSTILE_DOC = f"""---
sector: '{HOSTILE}'
stakeholders: Bo Ray
---
Interviewer: Tell me about sharing {HOSTILE} please?

Bo Ray: We share data with partners every month {OVERLAY} and {BEACON} and {MD_IMAGE} but the legal agreements take far too long to sign.

Interviewer: And the data itself?

Bo Ray: The data itself is fine, mostly, once it arrives in a usable format for us.
"""
#: live markup from data: a tag, a Markdown image or link to the beacon host, a script link
LIVE = re.compile(r"<a[\s>]|<img|!\[|\]\(\s*https?:|javascript:", re.I)


def _template(tmp_path_factory, name: str, text: str, embedder, codebook, nlp):
    folder = tmp_path_factory.mktemp(name)
    (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    path = folder / "qual.db"
    build_store(path, [folder / f"{name}.txt"], embedder, codebook, nlp).close()
    return path


@pytest.fixture(scope="session")
def _reading_template(tmp_path_factory, embedder, codebook, nlp):
    return _template(tmp_path_factory, "reading", READING, embedder, codebook, nlp)


@pytest.fixture(scope="session")
def _hostile_template(tmp_path_factory, embedder, codebook, nlp):
    """A store whose every user-supplied text carries live markup: transcript text and the
    interviewer's question, metadata, document and speaker names, a reviewer's name and memo
    (as `decisions import --reviewer` would store them), a document memo, topic keywords and
    examples."""
    path = _template(tmp_path_factory, "hostile", HOSTILE_DOC, embedder, codebook, nlp)
    with Store(path) as s:
        segs = s.segments()
        R.apply_decision(s, int(segs.iloc[-1]["segment_id"]), OVERLAY, "recode",
                         themes=["people"], memo=HOSTILE, codebook=codebook)
        doc = int(s.documents().iloc[0]["id"])
        R.add_memo(s, BEACON, HOSTILE, document_id=doc)
        run = s.start_run("topics", codebook_version=codebook.version)
        s.add_topics(run, pd.DataFrame([{
            "topic": 0, "size": len(segs), "keywords": HOSTILE, "theme": "people",
            "subcode": codebook.subcode_ids[0], "similarity": 0.5, "emergent": True,
            "examples": [HOSTILE], "label": HOSTILE}]),
            pd.DataFrame({"segment_id": segs["segment_id"], "topic": 0}))
        s.finish_run(run, "complete")
    con = sqlite3.connect(path)                  # names a reader would not produce
    with con:
        con.execute("UPDATE documents SET name = ?", (f"{BEACON}{MD_IMAGE}.txt",))
        con.execute("UPDATE turns SET speaker = ? WHERE speaker = 'Bo Ray'", (f"Bo {BEACON} Ray",))
        con.execute("UPDATE segments SET speaker = ? WHERE speaker = 'Bo Ray'",
                    (f"Bo {BEACON} Ray",))
    con.close()
    return path


def _copy(template, tmp_path):
    path = tmp_path / "qual.db"
    shutil.copy(template, path)
    return path


@pytest.fixture
def reading_store(_reading_template, tmp_path):
    return _copy(_reading_template, tmp_path)


@pytest.fixture
def hostile_store(_hostile_template, tmp_path):
    return _copy(_hostile_template, tmp_path)


# -- the transcript page ---------------------------------------------------------------------
def _transcript(at) -> str:
    return next(m.value for m in at.markdown if "<p style=" in m.value)


def test_transcript_keeps_paragraphs_greys_interviewer_turns_and_marks_whole_segments(
        reading_store, monkeypatch):
    with Store(reading_store) as s:
        segs = s.segments()
        doc = s.document(int(s.documents().iloc[0]["id"]))
        turns = s.turns(doc["id"])
    long = segs[segs["text"].str.contains("\n\n")].iloc[0]     # a segment of two paragraphs
    sid = int(long["segment_id"])
    at = _app(reading_store, monkeypatch, reviewer="ann")
    at.radio(key="page").set_value("Transcript").run()
    assert not at.exception
    page = _transcript(at)
    assert not re.search(r"\n[ \t]*\n", page)           # no blank line can end the HTML block
    paragraphs = re.findall(r"<p style=\"([^\"]*)\">(.*?)</p>", page)
    expected = R.transcript_paragraphs(doc["text"], turns, segs)
    assert len(paragraphs) == len(expected) == 6
    for (style, _), p in zip(paragraphs, expected):     # continuation paragraphs greyed too
        assert ("color:" in style) == (p["role"] == "interviewer")
    pieces = [body for _, body in paragraphs if f'title="segment {sid} ' in body]
    assert len(pieces) == 2 and page.count(f'id="seg-{sid}"') == 1
    assert all("background:" in body for body in pieces)
    shown = _html.unescape(re.sub(r"<[^>]+>", "", "".join(b for _, b in paragraphs)))
    assert long["text"].split("\n\n")[1] in shown
    # filters: a speaker; a theme nobody has, with only the turns that match
    at.multiselect(key="t_speakers").set_value(["Ann Lee"]).run()
    assert "color:" not in _transcript(at) and "Ann Lee" in _transcript(at)
    at.multiselect(key="t_speakers").set_value([]).run()
    at.radio(key="t_status").set_value("reviewed").run()
    assert 'title="segment' not in _transcript(at)          # nothing reviewed yet
    at.checkbox(key="t_only").check().run()
    assert any("No turn matches" in i.value for i in at.info)


def test_a_queue_card_jumps_to_its_place_in_the_transcript(reading_store, monkeypatch):
    at = _app(reading_store, monkeypatch, reviewer="ann")
    sid = _sid(at)
    at.button(key=f"to_transcript_{sid}").click().run()
    assert not at.exception
    assert at.radio(key="page").value == "Transcript" and at.header[0].value == "Transcript"
    assert any(f"](#seg-{sid})" in m.value for m in at.markdown)
    page = _transcript(at)
    assert re.search(rf'<span id="seg-{sid}" title="segment {sid} [^"]*" style="[^"]*outline',
                     page)


def test_transcript_paragraphs_split_segments_at_blank_lines():
    text = "Q: one?\n\nA: first part.\n\nsecond part. tail"
    turns = pd.DataFrame({"speaker": ["Q", "A"], "role": ["interviewer", "stakeholder"],
                          "start": [3, 12], "end": [7, len(text)]})
    segs = pd.DataFrame({"segment_id": [9], "start": [12], "end": [len(text) - 5]})
    out = R.transcript_paragraphs(text, turns, segs)
    assert [(p["speaker"], p["first"]) for p in out] == [("Q", True), ("A", True), ("A", False)]
    assert out[1]["pieces"] == [("first part.", 9)]
    assert out[2]["pieces"] == [("second part.", 9), (" tail", None)]


# -- user-supplied text is shown as text -------------------------------------------------------
def _shown(markup: str) -> str:
    """The text a reader sees (less the zero-width spaces that keep addresses unlinked)."""
    return _html.unescape(markup).replace("\u200b", "")


def _nodes(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _nodes(child)


def _markup(at) -> list[str]:
    """Every string the app handed to Streamlit's Markdown renderer: bodies of markdown,
    captions, headings and alerts; labels, help and placeholders of widgets and expanders;
    radio options."""
    out = []
    for node in _nodes(at._tree):
        proto = getattr(node, "proto", None)
        fields = getattr(getattr(proto, "DESCRIPTOR", None), "fields_by_name", {})
        for f in ("body", "label", "help", "placeholder"):
            if f in fields and isinstance(getattr(proto, f), str):
                out.append(getattr(proto, f))
        if getattr(node, "type", "") == "radio":
            out += list(proto.options)
    return out


def test_no_live_markup_from_data_on_any_page(hostile_store, monkeypatch):
    at = _app(hostile_store, monkeypatch, reviewer=OVERLAY)
    seen = []

    def check(where):
        assert not at.exception, where
        texts = _markup(at)
        live = [t for t in texts if LIVE.search(t) or re.search(r"https?://|www\.",
                                                              _html.unescape(t))]
        assert not live, f"{where}: {live[0][:300]}"
        seen.extend(texts)

    check("review queue")
    assert _sid(at)                                          # a card with the hostile text
    at.radio(key="f_status").set_value("reviewed").run()     # the card the overlay name decided
    check("reviewed card")
    assert any("**Now:**" in t and R.safe_markup(OVERLAY) in t for t in seen)
    at.button(key="save").click().run()                     # an error message quoting nothing live
    check("after a refused save")
    for page in ("Transcript", "Overview", "Topics", "Agreement", "Downloads"):
        at.radio(key="page").set_value(page).run()
        check(page)
    # the data is there, as text: the question, segment, metadata, names, memo, keywords
    joined = _shown("\n".join(seen))
    for piece in (OVERLAY, BEACON, MD_IMAGE, f"Bo {BEACON} Ray", f"sector: {HOSTILE}",
                  f"{BEACON}{MD_IMAGE}.txt"):
        assert piece in joined, piece


def test_safe_markup_leaves_nothing_live():
    samples = (HOSTILE, "a\n\n<img src=x>", "[link](javascript:alert(1))", "www.example.com",
               "http://127.0.0.1:9/x", ":red[colour] :material/home: $x^2$", "    indented **b**")
    for text in samples:
        html_out = R.safe_markup(text, newlines="<br>")
        md_out = R.safe_markup(text)
        for out in (html_out, md_out, R.safe_markup(text, newlines="&#10;")):
            assert not LIVE.search(out)
            assert not re.search(r"[<>*_\[\]()$:`!&\\#]", re.sub(r"&#\d+;|<br>", "", out))
        assert _shown(html_out.replace("<br>", "\n")) == text      # shown as it is
        assert _shown(md_out) == "\n".join(x.lstrip() for x in text.split("\n"))
        assert "http://" not in _html.unescape(md_out) and "www." not in _html.unescape(md_out)
    assert "\n" not in R.safe_markup("a\n\nb", newlines="<br>")      # cannot end an HTML block
