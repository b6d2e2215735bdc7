"""The Streamlit review app through ``streamlit.testing.v1.AppTest`` against a real store file."""

import html

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


# -- topics -------------------------------------------------------------------------------------
@pytest.fixture
def topics_stored(coded_store, codebook, embedder):
    """A topics run stored as ``python -m qual topics`` stores it, fitted by ``qual.topics`` on
    one coded document's stakeholder segments (a small corpus: KMeans, a few seconds)."""
    import pandas as pd

    from qual.embed import CachedEmbedder
    from qual.topics import TopicModel, usable_segments

    segs, _ = usable_segments(coded_store.segments(role="stakeholder"))
    segs = segs[segs["document"] == segs["document"].iloc[0]].reset_index(drop=True)
    encoder = CachedEmbedder(embedder, coded_store)
    vectors = encoder.encode(segs["text"].tolist())
    result = TopicModel(codebook, encoder, seed=1).fit(segs["text"].tolist(), vectors)
    run_id = coded_store.start_run("topics", codebook_version=codebook.version,
                                   parameters=result.parameters())
    coded_store.add_topics(run_id, result.topics,
                           pd.DataFrame({"segment_id": segs["segment_id"].to_numpy(),
                                         "topic": result.assignments}))
    coded_store.finish_run(run_id, "complete")
    return result.topics


def test_topicview_reads_the_latest_topics_run(coded_store, topics_stored, codebook):
    from qual import topicview as TV

    table = TV.topics_table(coded_store)
    assert set(table["topic"]) == set(topics_stored["topic"])
    real_rows = table[table["topic"] != -1]
    assert real_rows["size"].is_monotonic_decreasing          # largest first, outliers last
    assert (table["topic"] != -1).iloc[: len(real_rows)].all()
    assert table.columns.tolist()[:8] == ["topic", "size", "keywords", "theme", "subcode",
                                          "similarity", "emergent", "examples"]
    row = table.set_index("topic").loc[int(topics_stored["topic"].iloc[0])]
    src = topics_stored.set_index("topic").loc[int(topics_stored["topic"].iloc[0])]
    assert row.keywords == src.keywords and row.examples == src.examples
    by_theme = TV.topics_by_theme(coded_store, theme_ids=codebook.theme_ids)
    real = topics_stored[topics_stored["topic"] != -1]
    assert set(by_theme) == set(real["theme"]) and set(by_theme) <= set(codebook.theme_ids)
    assert sum(len(t) for t in by_theme.values()) == len(real)
    for theme, t in by_theme.items():
        assert set(t["topic"]) == set(real.loc[real["theme"] == theme, "topic"])
        assert t["subcode"].str.startswith(theme + ".").all()
    sizes = TV.theme_topic_sizes(coded_store)
    assert sizes["size"].sum() == real["size"].sum()


def test_topicview_without_a_topics_run_is_empty(coded_store):
    from qual import topicview as TV

    assert TV.latest_topics_run(coded_store) is None
    assert TV.topics_table(coded_store).empty and TV.topics_by_theme(coded_store) == {}
    assert TV.theme_topic_sizes(coded_store).empty


def test_topics_page_without_topics_says_run_the_command(app):
    app.radio(key="page").set_value("Topics").run()
    assert not app.exception
    assert app.header[0].value == "Topics"
    assert any("python -m qual topics" in i.value for i in app.info)
    app.radio(key="page").set_value("Overview").run()
    assert any("python -m qual topics" in i.value for i in app.info)


def test_topics_page_shows_stored_topics(topics_stored, coded_store, monkeypatch):
    monkeypatch.setenv("QUAL_DB", str(coded_store.path))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    at.radio(key="page").set_value("Topics").run()
    assert not at.exception
    assert not any("python -m qual topics` first" in i.value for i in at.info)
    real = topics_stored[topics_stored["topic"] != -1]
    keyword = real["keywords"].iloc[0].split(", ")[0]
    table = at.dataframe[0].value
    assert keyword in " ".join(table["keywords"]) and set(table["topic"]) == set(
        topics_stored["topic"])
    labels = [e.label for e in at.expander]
    assert len(labels) == len(topics_stored) and any(keyword in lb for lb in labels)
    quotes = html.unescape(" ".join(m.value for m in at.markdown))
    assert real["examples"].iloc[0][0][:40] in quotes
    if real["emergent"].any():
        assert "EMERGENT" in " ".join(table["emergent"])
    # the page says how the run set its flags: the calibrated threshold it recorded
    caption = html.unescape(" ".join(c.value for c in at.caption))
    threshold = coded_store.latest_run("topics")["parameters"]["emergent_threshold"]
    assert "held-out codebook examples" in caption and f"{threshold:.3f}" in caption
    at.radio(key="page").set_value("Overview").run()
    assert not at.exception
    assert any(s.value == "Topics under each theme" for s in at.subheader)
    assert keyword in html.unescape(" ".join(m.value for m in at.markdown))
    under = [d.value for d in at.dataframe if "subcode" in d.value.columns]
    assert sum(len(d) for d in under) == len(real)


def _has_button(app, key: str) -> bool:
    return any(b.key == key for b in app.button)


def _current_sid(app) -> int:
    key = next(m.key for m in app.multiselect if m.key.startswith("themes_"))
    return int(key.split("_")[1])


def test_split_then_undo_from_the_queue(app, coded_store):
    app.text_input(key="reviewer").input("ann").run()
    sid = _current_sid(app)
    seg = coded_store.segment_record(sid)
    cuts = R.split_points(seg["text"])
    if not cuts:                                   # find a segment with a cut in the queue
        app.selectbox(key="f_order").set_value("by document (text order)").run()
        for _ in range(30):
            sid = _current_sid(app)
            if R.split_points(coded_store.segment_record(sid)["text"]):
                break
            app.button(key="skip").click().run()
        cuts = R.split_points(coded_store.segment_record(sid)["text"])
    assert cuts
    app.selectbox(key=f"cut_{sid}").set_value(cuts[0]).run()
    app.button(key=f"split_{sid}").click().run()
    assert not app.exception and "Split segment" in app.success[0].value
    with Store(coded_store.path) as s:
        d = s.decisions()
        assert d["action"].tolist() == ["split"] and d["reviewer"].tolist() == ["ann"]
        made = d.iloc[0]["after"]["into"]
        live = set(s.segments()["segment_id"])
    assert sid not in live and set(made) <= live
    app.button(key="undo").click().run()
    assert not app.exception and "Took back" in app.success[0].value
    with Store(coded_store.path) as s:
        assert s.decisions()["action"].tolist() == ["split", "restore"]
        live = set(s.segments()["segment_id"])
    assert sid in live and not set(made) & live


def test_merge_with_next_from_the_queue(app, coded_store):
    app.text_input(key="reviewer").input("ann").run()
    app.selectbox(key="f_order").set_value("by document (text order)").run()
    for _ in range(30):
        sid = _current_sid(app)
        if _has_button(app, f"merge_next_{sid}"):
            break
        app.button(key="skip").click().run()
    _, nxt = R.neighbours(coded_store, sid)
    assert nxt is not None
    app.button(key=f"merge_next_{sid}").click().run()
    assert not app.exception and "Merged segments" in app.success[0].value
    with Store(coded_store.path) as s:
        live = s.segments(role=None).set_index("segment_id")
    merged = live[live["origin"] == "merge"]
    assert len(merged) == 1 and sid not in live.index and nxt not in live.index
    assert merged.iloc[0]["start"] == coded_store.segment_record(sid)["start"]


def test_queue_by_stakeholder_group(app, coded_store):
    app.text_input(key="reviewer").input("ann").run()
    app.selectbox(key="f_group_field").set_value("sector").run()
    groups = app.multiselect(key="f_groups").options
    assert len(groups) >= 2
    docs = coded_store.documents()
    target = docs["metadata"].iloc[0]["sector"]
    app.multiselect(key="f_groups").set_value([target]).run()
    sid = _current_sid(app)
    doc = coded_store.segment_record(sid)["document_id"]
    assert coded_store.document(doc)["metadata"]["sector"] == target
    assert any(f"Stakeholder group: {target}" in c.value for c in app.caption)
    app.selectbox(key="f_order").set_value("by stakeholder group").run()
    assert not app.exception


def test_document_memo_on_the_transcript_page(app, coded_store):
    app.text_input(key="reviewer").input("cy").run()
    app.radio(key="page").set_value("Transcript").run()
    doc_id = int(coded_store.documents().iloc[0]["id"])
    app.text_area(key=f"doc_memo_{doc_id}").input("Interviewee was guarded about budgets.").run()
    app.button(key=f"save_doc_memo_{doc_id}").click().run()
    assert not app.exception
    memos = coded_store.memos(document_id=doc_id)
    assert memos["text"].tolist() == ["Interviewee was guarded about budgets."]
    assert memos["author"].tolist() == ["cy"]
    assert any("guarded about budgets" in m.value for m in app.markdown)


def test_downloads_page_builds_every_file(app, coded_store):
    import io
    import zipfile

    app.radio(key="page").set_value("Downloads").run()
    assert any("Redaction: not applied" in c.value for c in app.caption)
    app.button(key="prepare").click().run()
    assert not app.exception
    files = app.session_state["downloads"]
    assert {"summary.md", "summary.html", "coding.csv", "coding.xlsx", "coding.qdpx"} <= set(files)
    assert b"redact" in files["summary.md"].lower()
    with zipfile.ZipFile(io.BytesIO(files["coding.qdpx"])) as z:
        assert "project.qde" in z.namelist()
    n = len(R.effective_coding(coded_store))
    assert files["coding.csv"].decode("utf-8-sig").count("\n") >= n


def test_login_gate_when_a_password_file_is_given(coded_store, tmp_path, monkeypatch):
    from qual import access as A

    pw = tmp_path / "qual-reviewers.toml"
    A.add_reviewer(pw, "dee", "correct horse battery")
    monkeypatch.setenv("QUAL_DB", str(coded_store.path))
    monkeypatch.setenv("QUAL_ACCESS", str(pw))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception and not _has_button(at, "accept")      # nothing shown yet
    at.text_input(key="login_name").input("dee")
    at.text_input(key="login_password").input("wrong password")
    at.button[0].click().run()
    assert any("Wrong name or password" in e.value for e in at.error)
    assert not _has_button(at, "accept")
    at.text_input(key="login_name").input("dee")
    at.text_input(key="login_password").input("correct horse battery")
    at.button[0].click().run()
    assert not at.exception
    assert any("Signed in as" in m.value for m in at.sidebar.markdown)
    at.button(key="accept").click().run()
    with Store(coded_store.path) as s:
        assert s.decisions()["reviewer"].tolist() == ["dee"]
    at.button(key="sign_out").click().run()
    assert not at.exception and not _has_button(at, "accept")
    assert any(t.key == "login_name" for t in at.text_input)


def test_blind_coding_hides_the_machine_and_counts_apart(app, coded_store):
    app.text_input(key="reviewer").input("eve").run()
    app.toggle(key="blind").set_value(True).run()
    assert not app.exception
    assert not _has_button(app, "accept")
    assert not any("**Machine:**" in m.value for m in app.markdown)
    assert app.selectbox(key="f_order").value == "random sample (for blind coding)"
    sid = _current_sid(app)
    assert app.multiselect(key=f"themes_{sid}").value == []          # nothing pre-filled
    app.multiselect(key=f"themes_{sid}").set_value(["processes"]).run()
    app.button(key="save").click().run()
    assert not app.exception
    with Store(coded_store.path) as s:
        d = s.decisions()
    assert d["after"].iloc[0]["blind"] is True and d["after"].iloc[0]["themes"] == ["processes"]
    app.radio(key="page").set_value("Transcript").run()               # hidden there too
    page = "".join(m.value for m in app.markdown)
    assert "Blind coding is on" in "".join(i.value for i in app.info)
    assert "background:" not in page and "| machine" not in page
    app.radio(key="page").set_value("Review queue").run()
    app.toggle(key="blind").set_value(False).run()
    app.button(key="accept").click().run()                          # a sighted accept
    app.radio(key="page").set_value("Agreement").run()
    table = app.dataframe[0].value
    assert table.loc[table.coder_b == "eve", "segments"].iloc[0] == 2
    app.toggle(key="agree_blind").set_value(True).run()
    table = app.dataframe[0].value
    assert table.loc[table.coder_b == "eve", "segments"].iloc[0] == 1


def test_damage_met_after_the_sessions_first_check_is_one_short_message(coded_store,
                                                                         monkeypatch):
    """The store is read whole once per session (not after every decision); damage that
    appears later is still one short message, not a traceback."""
    from test_hostile import _damage

    monkeypatch.setenv("QUAL_DB", str(coded_store.path))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception and any("left in this queue" in c.value for c in at.caption)
    coded_store.close()
    _damage(coded_store.path)
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        f"{coded_store.path}: the store is damaged (database disk image is malformed): "
        "restore a backup"]
