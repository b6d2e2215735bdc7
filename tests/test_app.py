"""The Streamlit review app through ``streamlit.testing.v1.AppTest`` against a real store file."""

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO
from qual import review as R
from qual.store import Store


@pytest.fixture
def app(coded_store, monkeypatch):
    monkeypatch.setenv("QUAL_DB", str(coded_store.path))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    return at


def _decisions(path):
    with Store(path) as s:
        return s.decisions()


def test_review_page_needs_a_name_then_accepts(app, coded_store):
    assert app.button(key="accept").disabled
    assert any("left in this queue" in c.value for c in app.caption)
    first = R.review_queue(R.effective_coding(coded_store)).iloc[0]
    app.text_input(key="reviewer").input("ann").run()
    assert not app.button(key="accept").disabled
    app.button(key="accept").click().run()
    assert not app.exception
    d = _decisions(coded_store.path)
    assert d["action"].tolist() == ["accept"] and d["reviewer"].tolist() == ["ann"]
    assert d["segment_id"].tolist() == [first.segment_id]
    assert "Saved: accept" in app.success[0].value
    # the next segment is up: a reject lands on another segment
    app.button(key="reject").click().run()
    d = _decisions(coded_store.path)
    assert d["action"].tolist() == ["accept", "reject"] and d["segment_id"].nunique() == 2


def test_correction_and_undo(app, coded_store):
    app.text_input(key="reviewer").input("bob").run()
    key = next(m.key for m in app.multiselect if m.key.startswith("themes_"))
    sid = int(key.split("_")[1])
    app.multiselect(key=key).set_value(["public"]).run()
    app.radio(key=f"polarity_{sid}").set_value("barrier").run()
    app.text_area(key=f"memo_{sid}").input("about the public").run()
    app.button(key="save").click().run()
    assert not app.exception
    r = R.effective_coding(coded_store).set_index("segment_id").loc[sid]
    assert r.themes.split(";")[0] == "public" and r.polarity == "barrier"
    assert r.memo == "about the public" and r.reviewer == "bob"
    app.button(key="undo").click().run()
    r = R.effective_coding(coded_store).set_index("segment_id").loc[sid]
    assert r.source == "machine"
    assert _decisions(coded_store.path)["action"].tolist() == ["recode", "undo"]


def test_filters_and_skip(app):
    app.multiselect(key="f_themes").set_value(["none"]).run()
    caption = next(c.value for c in app.caption if "left in this queue" in c.value)
    app.button(key="skip").click().run()
    after = next(c.value for c in app.caption if "left in this queue" in c.value)
    assert "(1 skipped)" in after and caption != after


@pytest.mark.parametrize("page", ["Transcript", "Overview", "Agreement"])
def test_pages_render(app, coded_store, page):
    R.apply_decision(coded_store, int(R.effective_coding(coded_store).segment_id[0]), "ann",
                     "reject")
    app.radio(key="page").set_value(page).run()
    assert not app.exception
    assert app.header[0].value == page
    if page == "Transcript":
        html = "".join(m.value for m in app.markdown)
        assert 'title="' in html and "background:" in html and "Not redacted" in app.caption[0].value
    if page in ("Overview", "Agreement"):
        assert len(app.dataframe) >= 1
