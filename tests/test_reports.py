"""Issue 13, the reports and commands a new user meets: who counts as a stakeholder, what the
summaries say, the audit log, keeping studies apart, and the CLI's edges (pipes, folders,
typos). Real CLI, real stores, real Inquiry transcripts, the real app through AppTest."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from conftest import INQUIRY, REPO, SAMPLES, build_store
from qual import review as R
from qual.cli import main
from qual.store import Store

TRANSCRIPTS = INQUIRY / "transcripts"
FREEGUARD = TRANSCRIPTS / "2023-10-10_module-2_3_Mr_Gavin_Freeguard.rst"
HEALD = TRANSCRIPTS / "2024-01-17_module-2A_6_Mr_Scott_Heald.rst"


def _csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# -- stakeholders -------------------------------------------------------------------------------

@pytest.mark.parametrize("labels, people", [
    # a closing line under a generic label is the witness
    (["Mr Gavin Freeguard", "Mr Gavin Freeguard", "The Witness"], 1),
    # Q/A transcripts: "A" alone is one unnamed stakeholder
    (["A", "A", "Respondent"], 1),
    # initials and a later full-name label
    (["Sarah", "SJ", "Sarah Jones", "S.J."], 1),
    # title + surname is the full name; two witnesses stay two
    (["Mr Heald", "Mr Halliday", "Scott Heald", "Mr Heald", "The Witness"], 2),
    # a title + surname that fits two people is neither; Mr is never Mrs
    (["Mr Smith", "John Smith", "Jane Smith"], 3),
    (["Mrs Patel", "Mr Patel"], 2),
])
def test_speaker_aliases_resolve_to_one_person(labels, people):
    from qual.stakeholders import resolve_speakers

    assert len(set(resolve_speakers(labels))) == people


def test_generic_label_with_two_witnesses_is_the_one_who_spoke_before():
    from qual.stakeholders import resolve_speakers

    out = resolve_speakers(["Mr Heald", "Mr Halliday", "The Witness", "Mr Heald"])
    assert out == ["Mr Heald", "Mr Halliday", "Mr Halliday", "Mr Heald"]


def test_inquiry_transcripts_ingested_with_the_cli_count_one_stakeholder_per_witness(tmp_path):
    """All six real sessions: 'The Witness: Thank you.' lines and 'Mr Heald' are not extra
    stakeholders; the one joint session (Mr Heald and Mr Halliday) has two."""
    from qual.stakeholders import stakeholder_keys

    db = tmp_path / "inquiry.db"
    assert main(["ingest", str(TRANSCRIPTS), "--db", str(db)]) == 0
    with Store(db) as store:
        segs, docs = store.segments(role="stakeholder"), store.documents()
    assert "The Witness" in set(segs["speaker"])           # the label the fault came from
    keys = stakeholder_keys(segs, docs)
    per_doc = keys.groupby(segs["document"]).nunique().to_dict()
    assert per_doc[HEALD.name] == 2
    assert all(n == 1 for name, n in per_doc.items() if name != HEALD.name)
    assert keys.nunique() == 7
    assert {k for k in keys if k.startswith(HEALD.name)} == {
        f"{HEALD.name}: Mr Heald", f"{HEALD.name}: Mr Halliday"}


@pytest.fixture(scope="module")
def inquiry_store(tmp_path_factory, embedder, codebook, nlp):
    """Two real Inquiry sessions coded into one store (Freeguard: one witness with a
    'The Witness' closing line; Heald: two witnesses giving evidence together)."""
    path = tmp_path_factory.mktemp("inquiry") / "qual.db"
    build_store(path, [FREEGUARD, HEALD], embedder, codebook, nlp).close()
    return path


def test_summary_case_matrices_and_overview_count_the_same_stakeholders(inquiry_store,
                                                                         tmp_path, codebook):
    db = tmp_path / "qual.db"
    shutil.copy(inquiry_store, db)
    out = tmp_path / "summary"
    assert main(["summarise", "--db", str(db), "--output", str(out)]) == 0
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "3 stakeholders in 2 documents" in md
    assert not re.search(r"of [4-9]\d* \|", md)           # never "n of 4+" for 3 people
    themes = pd.read_csv(out / "themes.csv")
    assert set(themes["stakeholders_interviewed"]) == {3}
    counts = pd.read_csv(out / "case_code_counts.csv", index_col=0)
    presence = pd.read_csv(out / "case_code_presence.csv", index_col=0)
    # the case matrices have one row per stakeholder counted, and agree with the counts
    assert sorted(counts.index) == sorted([FREEGUARD.name, f"{HEALD.name}: Mr Heald",
                                           f"{HEALD.name}: Mr Halliday"])
    for r in themes.itertuples():
        assert int(presence[r.theme].sum()) == r.stakeholders, r.theme
    with Store(db) as store:
        coding = R.effective_coding(store)
        ov = R.theme_overview(coding, store.documents(), codebook.theme_ids).set_index("theme")
        assert R.stakeholder_count(coding, store.documents()) == 3
    for r in themes.itertuples():
        if r.segments:
            assert ov.at[r.theme, "stakeholders"] == r.stakeholders


# -- summary.md ---------------------------------------------------------------------------------

def _store_topics(store, codebook, rows):
    run = store.start_run("topics", codebook_version=codebook.version)
    topics = pd.DataFrame(rows)
    segs = store.segments(role="stakeholder")
    store.add_topics(run, topics, pd.DataFrame({"segment_id": segs["segment_id"][:len(rows)],
                                                "topic": topics["topic"]}))
    store.finish_run(run, "complete")


def test_summary_lists_only_emergent_topics_as_emergent_and_has_a_neutral_column(
        coded_store, codebook, tmp_path):
    base = {"similarity": 0.7, "label": "", "examples": [["an example"]] * 1}
    _store_topics(coded_store, codebook, [
        {**base, "topic": 0, "size": 9, "keywords": "consent, opt-out", "theme": "public",
         "subcode": "public.trust", "emergent": False, "examples": ["a"]},
        {**base, "topic": 1, "size": 5, "keywords": "funding, budget", "theme": "public",
         "subcode": "public.benefit", "emergent": True, "similarity": 0.5, "examples": ["b"]}])
    out = tmp_path / "s"
    assert main(["summarise", "--db", str(coded_store.path), "--output", str(out)]) == 0
    md = (out / "summary.md").read_text(encoding="utf-8")
    emergent = [line for line in md.splitlines() if line.startswith("- Emergent topics:")]
    assert emergent and all("funding" in line and "consent" not in line for line in emergent)
    assert any(line.startswith("- Topics: consent") for line in md.splitlines())
    # the overview: barrier + opportunity + neutral = segments, for every theme
    head = next(line for line in md.splitlines() if line.startswith("| Theme |"))
    cols = [c.strip() for c in head.strip("|").split("|")]
    assert "Neutral" in cols
    rows = [line for line in md.split("## Overview")[1].split("\n## ")[0].splitlines()
            if line.startswith("| ") and not line.startswith("| Theme")]
    assert len(rows) == len(codebook.themes)
    for line in rows:
        cell = dict(zip(cols, [c.strip() for c in line.strip("|").split("|")]))
        assert (int(cell["Barrier"]) + int(cell["Opportunity"]) + int(cell["Neutral"])
                == int(cell["Segments"]))


# -- the app's Overview -------------------------------------------------------------------------

def test_app_overview_shows_reviewed_counts_stakeholders_and_an_inert_download(
        coded_store, monkeypatch):
    from streamlit.runtime import memory_media_file_storage as M
    from streamlit.testing.v1 import AppTest

    coding = R.effective_coding(coded_store)
    ids = [int(s) for s in coding["segment_id"][:3]]
    for sid in ids[:2]:
        R.apply_decision(coded_store, sid, "ann", "accept", memo="=HYPERLINK(\"http://x\")")
    R.apply_decision(coded_store, ids[2], "ann", "reject", memo="+1")
    files = {}
    original = M.MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):
        files[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(M.MemoryMediaFileStorage, "load_and_get_id", spy)
    monkeypatch.setenv("QUAL_DB", str(coded_store.path))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    at.radio(key="page").set_value("Overview").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    n = len(coding)
    assert metrics["Reviewed"] == f"3 ({3 / n:.1%})"       # not "0 %"
    assert metrics["Stakeholders"] == str(R.stakeholder_count(coding, coded_store.documents()))
    table = at.dataframe[0].value
    assert "reviewed_segments" in table.columns and table["reviewed_segments"].sum() >= 3
    data = files["coding.csv"]
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    memos = pd.read_csv(io.StringIO(text))["memo"].dropna().tolist()
    assert "'=HYPERLINK(\"http://x\")" in memos and "'+1" in memos


# -- evaluate and agreement: undefined is n/a ---------------------------------------------------

def test_evaluate_report_says_na_for_a_class_absent_from_the_gold():
    from qual.evaluate import agreement, format_report

    # no gold row is 'none' and nobody codes 'technical'
    r = agreement(["public", "people", "public;processes"], ["public", "processes", "public"],
                  ["public", "people", "processes", "technical"])
    text = format_report(r)
    assert "none recall: n/a" in text
    tech = next(line for line in text.splitlines() if line.startswith("technical"))
    assert "1.00" not in tech and "n/a" in tech
    assert r["themes"]["technical"]["kappa"] != r["themes"]["technical"]["kappa"]   # NaN


def test_agreement_command_prints_na_for_themes_neither_coder_used(coded_store, codebook,
                                                                   capsys):
    coding = R.effective_coding(coded_store)
    for sid in coding["segment_id"][:4]:
        R.apply_decision(coded_store, int(sid), "ann", "recode", themes=["public"],
                         codebook=codebook)
        R.apply_decision(coded_store, int(sid), "bob", "recode", themes=["public"],
                         codebook=codebook)
    assert main(["agreement", "--db", str(coded_store.path)]) == 0
    out = capsys.readouterr().out
    pair = next(line for line in out.splitlines() if line.split()[:2] == ["ann", "bob"])
    # ann and bob coded 'public' on all four: people, processes, technical are undefined
    assert pair.count("n/a") >= 3 and "1.00" not in pair.split()[5:]


# -- the CLI's edges ----------------------------------------------------------------------------

def test_summarise_into_a_closed_pipe_ends_without_a_traceback(coded_store, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "qual", "summarise", "--db",
                             str(coded_store.path), "--output", str(tmp_path / "s")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                        # like `| head` that has read enough
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 141
    assert (tmp_path / "s" / "summary.md").exists()       # the work was done


def test_output_into_missing_folders_makes_them(coded_store, tmp_path, capsys):
    db = str(coded_store.path)
    deep = tmp_path / "a" / "b"
    assert main(["summarise", "--db", db, "--output", str(deep / "summary")]) == 0
    assert (deep / "summary" / "summary.md").exists()
    for args in (["export", "--output", str(deep / "x" / "coded.csv")],
                 ["export", "--output", str(deep / "y" / "coded.xlsx")],
                 ["decisions", "export", "--output", str(deep / "z" / "review.csv")],
                 ["decisions", "log", "--output", str(deep / "w" / "log.csv")]):
        assert main([*args[:-2], "--db", db, *args[-2:]]) == 0, args
        assert (tmp_path / args[-1]).exists()
    # a file where a folder should be: one line, nothing written
    (tmp_path / "file").write_text("x")
    capsys.readouterr()
    assert main(["export", "--db", db, "--output", str(tmp_path / "file" / "c.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a folder" in err


def test_subcode_typo_lists_the_valid_subcodes(coded_store, tmp_path, capsys):
    sid = int(R.effective_coding(coded_store)["segment_id"][0])
    path = tmp_path / "review.csv"
    path.write_text(f"segment_id,themes,polarity,memo\n{sid},people;people.skils,barrier,\n",
                    encoding="utf-8")
    assert main(["decisions", "import", str(path), "--db", str(coded_store.path),
                 "--reviewer", "ann"]) == 1
    err = capsys.readouterr().err
    assert "unknown sub-code 'people.skils'" in err and "did you mean people.skills" in err
    assert "people.leadership" in err and "public, people, processes" not in err


# -- the audit log ------------------------------------------------------------------------------

def test_decisions_log_audits_every_decision_with_lineage(coded_store, codebook, tmp_path):
    coding = R.effective_coding(coded_store)
    sids = [int(s) for s in coding["segment_id"]]
    seen = R.coding_of(coding.set_index("segment_id").loc[sids[0]])
    R.apply_decision(coded_store, sids[0], "ann", "accept", memo="=looks right")
    R.apply_decision(coded_store, sids[1], "ann", "reject")
    R.apply_decision(coded_store, sids[2], "bob", "recode", themes=["people"],
                     subcodes=["people.skills"], polarity="barrier", codebook=codebook,
                     blind=True)
    R.apply_decision(coded_store, sids[2], "bob", "undo")
    rest = coding[~coding["segment_id"].isin(sids[:6])]
    target, cut = next((int(r.segment_id), R.default_cut(r.text))
                       for r in rest.itertuples() if R.default_cut(r.text))
    made = R.split_segment(coded_store, target, cut, "cat")
    R.take_back_boundary_change(coded_store, made[0], "cat")

    out = tmp_path / "log.csv"
    assert main(["decisions", "log", "--db", str(coded_store.path), "--output", str(out)]) == 0
    rows = _csv(out)
    assert [r["action"] for r in rows] == ["accept", "reject", "recode", "undo", "split",
                                           "restore"]
    acc, rej, rec, undo, split, restore = rows
    for r in rows:
        assert r["reviewer"] and re.match(r"\d{4}-\d\d-\d\dT", r["time"])
        assert r["document"] and r["text"]
    # accept and reject differ; before is what the reviewer saw
    assert acc["before_themes"] == (";".join(seen["themes"]) or "none")
    assert acc["after_themes"] == acc["before_themes"] and rej["after_themes"] == "none"
    assert acc["memo"] == "'=looks right"                  # inert
    assert (rec["after_themes"], rec["after_subcodes"], rec["after_polarity"]) == (
        "people", "people.skills", "barrier")
    assert rec["blind"] == "True" and acc["blind"] == "False"
    assert undo["undoes"] == rec["decision_id"] and undo["after_themes"] == rec["before_themes"]
    assert split["segment_id"] == str(target)
    assert split["segments_made"] == ";".join(map(str, made))
    assert restore["undoes"] == split["decision_id"] and restore["segments_retired"] == \
        ";".join(map(str, made))
    assert restore["segments_restored"] == str(target)
    # the xlsx has the same log on its own sheet; the spreadsheet round trip still works
    xlsx = tmp_path / "coded.xlsx"
    assert main(["export", "--db", str(coded_store.path), "--output", str(xlsx)]) == 0
    sheet = pd.read_excel(xlsx, sheet_name="log")
    assert sheet["action"].tolist() == [r["action"] for r in rows]
    assert sheet["memo"].iloc[0] == "=looks right"         # a string cell, not a formula
    review = tmp_path / "review.csv"
    assert main(["decisions", "export", "--db", str(coded_store.path),
                 "--output", str(review)]) == 0
    table = pd.read_csv(review, keep_default_na=False)
    table.loc[table["segment_id"] == sids[5], "themes"] = "technical"
    table.to_csv(review, index=False)
    assert main(["decisions", "import", str(review), "--db", str(coded_store.path),
                 "--reviewer", "dee"]) == 0
    assert main(["decisions", "log", "--db", str(coded_store.path), "--output", str(out)]) == 0
    last = _csv(out)[-1]
    assert (last["action"], last["reviewer"], last["after_themes"]) == ("recode", "dee",
                                                                         "technical")


# -- one study per store ------------------------------------------------------------------------

def test_readme_setup_keeps_the_demo_out_of_the_default_store():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set-up: two commands")[1].split("```")[1].strip().splitlines()
    assert len(setup) == 2
    assert "python -m qual code transcripts/ --db demo.db" in setup[0]
    printed = readme.split("## Set-up: two commands")[1].split("```")[3]
    assert "store: /path/to/demo.db" in printed


def _tiny_study(folder, name="t.txt"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(
        "Interviewer: How do you share data with other departments?\n\n"
        "Sam Lee: We need a data sharing agreement first, and the lawyers take months to "
        "approve each one, so most projects stall before they start.\n\n"
        "Interviewer: And once it is signed?\n\n"
        "Sam Lee: Then the linkage itself is quick, because our identifiers match.\n",
        encoding="utf-8")
    return folder


def test_code_into_a_store_of_another_folder_warns_once(tmp_path, capsys):
    db = str(tmp_path / "qual.db")
    study = _tiny_study(tmp_path / "study")
    assert main(["ingest", str(SAMPLES / "interview_01_central_department.txt"),
                 "--db", db]) == 0
    capsys.readouterr()
    assert main(["code", str(study), "--db", db]) == 0        # the real code command
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("qual: warning:")]
    assert len(warnings) == 1, err
    assert str(SAMPLES) in warnings[0] and str(study) in warnings[0]
    # the same folder again, or a first study in a new store: no warning
    _tiny_study(study, "u.txt")
    assert main(["ingest", str(study), "--db", db]) == 0
    assert main(["ingest", str(study), "--db", str(tmp_path / "other.db")]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.fixture
def two_studies(coded_store, tmp_path, embedder, codebook, nlp):
    """The coded samples plus a second, coded study from another folder, in one store."""
    from qual.project import code, ingest

    study = _tiny_study(tmp_path / "study")
    report = ingest([study], coded_store, nlp=nlp)
    code(coded_store, codebook, embedder, report.document_ids)
    return coded_store, study


def test_summarise_restricts_to_documents_or_a_folder(two_studies, tmp_path, capsys):
    store, study = two_studies
    out = tmp_path / "one"
    first = store.documents()["name"].iloc[0]
    assert main(["summarise", "--db", str(store.path), "--output", str(out),
                 "--documents", first]) == 0
    assert "in 1 document\n" in (out / "summary.md").read_text(encoding="utf-8")
    assert len(pd.read_csv(out / "case_code_counts.csv", index_col=0)) == 1
    out = tmp_path / "samples"
    assert main(["summarise", "--db", str(store.path), "--output", str(out),
                 "--folder", str(SAMPLES)]) == 0
    assert "in 3 documents" in (out / "summary.md").read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["summarise", "--db", str(store.path), "--output", str(tmp_path / "x"),
                 "--documents", "no_such_interview"]) == 2
    assert "no document named 'no_such_interview'" in capsys.readouterr().err


def test_export_restricts_to_documents_or_a_folder(two_studies, tmp_path):
    store, study = two_studies
    out = tmp_path / "c.csv"
    assert main(["export", "--db", str(store.path), "--output", str(out), "--folder",
                 str(SAMPLES)]) == 0
    assert set(pd.read_csv(out)["document"]) == set(store.documents()["name"]) - {"t.txt"}
    name = "interview_05_data_engineering"
    assert main(["export", "--db", str(store.path), "--output", str(out), "--documents",
                 name]) == 0
    assert set(pd.read_csv(out)["document"]) == {f"{name}.vtt"}
    qdpx = tmp_path / "p.qdpx"
    assert main(["export", "--db", str(store.path), "--output", str(qdpx), "--documents",
                 name]) == 0
    import zipfile

    with zipfile.ZipFile(qdpx) as z:
        qde = z.read("project.qde").decode("utf-8")
    assert qde.count("<TextSource ") == 1 and f'name="{name}.vtt"' in qde


def test_topics_restricts_to_documents(two_studies, capsys):
    store, _ = two_studies
    name = "interview_01_central_department.txt"
    segs = store.segments(role="stakeholder")
    from qual.topics import usable_segments

    usable, _ = usable_segments(segs[segs["document"] == name])
    assert main(["topics", "--db", str(store.path), "--documents", name]) == 0
    assert f"in {len(usable)} stakeholder segments" in capsys.readouterr().out
    with Store(store.path) as s:
        st = s.segment_topics()
        assert set(st["segment_id"]) == set(usable["segment_id"])


# -- the redaction key --------------------------------------------------------------------------

def test_redaction_key_cells_are_inert(tmp_path):
    folder = _tiny_study(tmp_path / "red")
    (folder / "metadata.csv").write_text('file,interviewee\nt.txt,"=HYPERLINK(""http://x"")"\n',
                                         encoding="utf-8")
    key = tmp_path / "keys" / "key.csv"
    assert main(["ingest", str(folder), "--db", str(tmp_path / "r.db"), "--redact",
                 "--redact-key", str(key)]) == 0
    originals = [r["original"] for r in _csv(key)]
    assert "'=HYPERLINK(\"http://x\")" in originals and "Sam Lee" in originals
