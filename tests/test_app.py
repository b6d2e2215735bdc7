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
    run_id = coded_store.start_run("topics", codebook_version=codebook.version)
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
    at.radio(key="page").set_value("Overview").run()
    assert not at.exception
    assert any(s.value == "Topics under each theme" for s in at.subheader)
    assert keyword in html.unescape(" ".join(m.value for m in at.markdown))
    under = [d.value for d in at.dataframe if "subcode" in d.value.columns]
    assert sum(len(d) for d in under) == len(real)
