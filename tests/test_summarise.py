"""Theme summaries: verbatim quotes, prevalence, matrices, and an HTML page that renders."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import require_chromium
from qual.cli import main
from qual.summarise import parse_markdown_quotes, summary_from_store

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
PROVENANCE = ["run_id", "codebook_version", "redaction", "reviewed_only"]


@pytest.fixture
def summary_dir(coded_store, tmp_path):
    out = tmp_path / "summary"
    out.mkdir()
    assert main(["summarise", "--db", str(coded_store.path), "--output", str(out)]) == 0
    return out


def test_every_quote_in_summary_md_is_verbatim_in_its_document(coded_store, summary_dir):
    md = (summary_dir / "summary.md").read_text(encoding="utf-8")
    quotes = parse_markdown_quotes(md)
    assert len(quotes) >= 8
    docs = {d["name"]: d["id"] for d in coded_store.documents().to_dict("records")}
    for q in quotes:
        text = coded_store.document(docs[q["document"]])["text"]
        assert q["text"] in text
        assert text[q["start"]:q["end"]] == q["text"]
    run = coded_store.latest_run()
    assert f"run {run['id']}" in md and run["codebook_version"] in md
    assert "not redacted" in md


def test_quotes_are_diverse_and_capped_per_stakeholder(coded_store, codebook):
    s = summary_from_store(coded_store, codebook, quotes_per_theme=6, max_per_stakeholder=1)
    for t in s.themes:
        who = [(q.document, q.speaker) for q in t.quotes]
        assert len(who) == len(set(who))
        scores = [q.score for q in t.quotes]
        assert scores == sorted(scores, reverse=True)
        texts = [q.text for q in t.quotes]
        assert len(set(texts)) == len(texts)


def test_tables_and_matrices(coded_store, codebook, summary_dir):
    themes = pd.read_csv(summary_dir / "themes.csv")
    assert list(themes["theme"]) == codebook.theme_ids
    assert {"segments", "documents", "stakeholders", "share_of_stakeholders", "barrier",
            "opportunity", "reviewed", "machine_only", "run_id", "codebook_version",
            "redaction"} <= set(themes.columns)
    assert (themes["stakeholders"] <= themes["stakeholders_interviewed"]).all()
    codes = codebook.theme_ids + codebook.subcode_ids
    co = pd.read_csv(summary_dir / "cooccurrence.csv", index_col=0)
    assert co.columns.tolist() == codes + PROVENANCE
    m = co[codes]
    assert list(m.index) == codes and (m.values == m.values.T).all()
    for t in codebook.theme_ids:
        assert co.at[t, t] == int(themes.set_index("theme").at[t, "segments"])
    counts = pd.read_csv(summary_dir / "case_code_counts.csv", index_col=0)
    presence = pd.read_csv(summary_dir / "case_code_presence.csv", index_col=0)
    assert len(counts) == len(coded_store.documents())
    assert ((counts[codes] > 0).astype(int) == presence[codes]).all().all()
    assert "sector" in counts.columns


def test_every_csv_states_run_codebook_and_redaction_like_themes_csv(coded_store, summary_dir):
    """themes.csv and the three matrices end with the same provenance columns, one value on
    every row, and still read with a plain ``pd.read_csv``."""
    run = coded_store.latest_run()
    for name in ("themes.csv", "cooccurrence.csv", "case_code_counts.csv",
                 "case_code_presence.csv"):
        df = pd.read_csv(summary_dir / name)
        assert df.columns.tolist()[-len(PROVENANCE):] == PROVENANCE, name
        assert set(df["run_id"]) == {run["id"]}, name
        assert set(df["codebook_version"]) == {run["codebook_version"]}, name
        assert set(df["redaction"]) == {"not redacted"}, name
        assert set(df["reviewed_only"]) == {False}, name


def test_stakeholders_are_counted_as_in_the_app_overview(coded_store, codebook):
    """A paired interview (two speakers, one ``stakeholder_id``) is one stakeholder, in the
    summary as in the app's Overview; without a ``stakeholder_id`` each speaker is one."""
    from qual.review import effective_coding, theme_overview
    from qual.summarise import summarise, to_markdown

    coding = effective_coding(coded_store)
    docs = [coded_store.document(int(i)) for i in coded_store.documents()["id"]]
    assert all(d["metadata"].get("stakeholder_id") for d in docs)
    # the first document becomes a paired interview: half its answers by a second speaker
    first = docs[0]["id"]
    rows = coding.index[coding["document_id"] == first]
    coding.loc[rows[1::2], "speaker"] = "Second Speaker"
    assert coding.loc[rows, "speaker"].nunique() == 2

    def overview(documents):
        frame = pd.DataFrame({"id": [d["id"] for d in documents],
                              "metadata": [d["metadata"] for d in documents]})
        return theme_overview(coding, frame, codebook.theme_ids).set_index("theme")

    s = summarise(coding, docs, codebook)
    assert s.total_stakeholders == len(docs)          # one per stakeholder_id
    ov = overview(docs)
    for t in s.themes:
        assert t.stakeholders == ov.at[t.id, "stakeholders"]
    assert f"{len(docs)} stakeholders in {len(docs)} documents" in to_markdown(s)

    # without stakeholder_id: each speaker of each document is a stakeholder
    bare = [{**d, "metadata": {k: v for k, v in d["metadata"].items()
                               if k != "stakeholder_id"}} for d in docs]
    s = summarise(coding, bare, codebook)
    assert s.total_stakeholders == len(docs) + 1
    ov = overview(bare)
    for t in s.themes:
        assert t.stakeholders == ov.at[t.id, "stakeholders"]


def test_reviewed_only_and_topics(coded_store, codebook):
    from qual.review import coding_of, effective_coding
    from qual.summarise import summarise

    assert summary_from_store(coded_store, codebook, reviewed_only=True).coded_segments == 0
    row = effective_coding(coded_store).iloc[0]
    coded_store.add_decision(int(row["segment_id"]), "sam", "recode", coding_of(row),
                             {"themes": ["people"], "subcodes": ["people.skills"],
                              "polarity": "barrier"})
    s = summary_from_store(coded_store, codebook, reviewed_only=True)
    assert s.coded_segments == 1 and s.reviewed_share == 1.0
    people = next(t for t in s.themes if t.id == "people")
    assert people.segments == 1 and people.reviewed == 1
    assert people.subcodes["barrier"] == {"people.skills": 1}
    docs = [coded_store.document(int(i)) for i in coded_store.documents()["id"]]
    topics = pd.DataFrame({"topic": [-1, 0, 1], "keywords": ["um, yeah", "consent, opt-out",
                                                              "cloud"],
                           "theme": ["public", "public", "technical"], "size": [3, 7, 4],
                           "subcode": ["", "public.trust", "technical.infrastructure"],
                           "emergent": [False, True, False]})
    s = summarise(effective_coding(coded_store), docs, codebook, topics=topics)
    assert [x["keywords"] for x in s.themes[0].topics] == ["consent, opt-out"]
    from qual.summarise import to_markdown
    assert ("Emergent topics: consent, opt-out (7 segments; nearest public.trust; emergent"
            in to_markdown(s))


def test_html_is_self_contained_and_renders_in_headless_chromium(summary_dir):
    page = summary_dir / "summary.html"
    html = page.read_text(encoding="utf-8")
    assert "<svg" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    chromium = require_chromium()           # skipped without it, except in CI
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "summary.png"
    if shot.exists():
        shot.unlink()
    shutil.copy(page, ARTIFACTS / "summary.html")
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", f"--screenshot={shot}", "--window-size=1200,2000",
         page.as_uri()], capture_output=True, text=True, timeout=60)
    assert shot.exists() and shot.stat().st_size > 10_000, result.stderr[-2000:]


def test_redaction_status_is_stated():
    from qual.summarise import redaction_status

    assert redaction_status([{"redacted": 0}, {"redacted": 0}]) == "not redacted"
    assert redaction_status([{"redacted": 1}, {"redacted": 1}]).startswith("redacted")
    assert redaction_status([{"redacted": 1}, {"redacted": 0}]) == "1 of 2 documents redacted"


def test_summarise_into_a_folder_whose_parent_is_missing_makes_both(coded_store, tmp_path):
    out = tmp_path / "missing" / "summary"
    assert main(["summarise", "--db", str(coded_store.path), "--output", str(out)]) == 0
    assert (out / "summary.md").exists()


def test_summarise_that_fails_leaves_no_folder_it_made(coded_store, tmp_path, capsys):
    out = tmp_path / "missing" / "summary"
    assert main(["summarise", "--db", str(coded_store.path), "--output", str(out),
                 "--documents", "no_such_document"]) == 2
    assert "no document named" in capsys.readouterr().err
    assert not (tmp_path / "missing" / "summary").exists()
