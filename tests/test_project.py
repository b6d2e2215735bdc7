"""``from qual import Project``: a whole study driven from Python as an analyst's notebook would,
on real testimony, giving the same files as the command line on the same input."""

from __future__ import annotations

import csv
import re
import shutil
import zipfile

import pandas as pd
import pytest

from conftest import INQUIRY, SAMPLES

SESSIONS = [INQUIRY / "dev_transcripts" / "2023-07-13_module-1_3_Mr_Nigel_Edwards.rst",
            SAMPLES / "interview_04_devolved_statistics.docx"]
MEMO = "Sign-off sits with senior leaders; named as the blocker."


def _decision_target(coding: pd.DataFrame) -> int:
    """The first segment the machine did not code as a people barrier: deciding it is a
    change a reviewer would make."""
    rows = coding[~((coding["themes"] == "people") & (coding["polarity"] == "barrier"))]
    return int(rows["segment_id"].iloc[0])


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The same two transcripts (a real Inquiry session and a Word interview), coded, decided,
    topic-modelled, summarised and exported twice: through Project, and through the CLI."""
    from qual import Project
    from qual.cli import main

    root = tmp_path_factory.mktemp("study")
    src = root / "transcripts"
    src.mkdir()
    for f in SESSIONS:
        shutil.copy(f, src / f.name)
    nb, cli = root / "notebook", root / "cli"
    nb.mkdir()
    cli.mkdir()

    # -- the notebook, with the default encoder as the command line has it --
    p = Project(nb / "study.db")
    coded = p.code(src)
    first = p.coding()
    sid = _decision_target(first)
    decision = p.decide(sid, themes=["people"], polarity="barrier", reviewer="ana", memo=MEMO)
    topics = p.topics(seed=42)
    summary, files = p.summarise(nb / "out")
    exports = {fmt: p.export(nb / f"coded.{fmt}") for fmt in ("csv", "xlsx", "qdpx")}
    after = p.coding()

    # -- the command line, on the same input --
    db = str(cli / "study.db")
    assert main(["code", str(src), "--db", db]) == 0
    with open(cli / "decide.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["segment_id", "themes", "polarity", "memo"])
        w.writerow([sid, "people", "barrier", MEMO])
    assert main(["decisions", "import", str(cli / "decide.csv"), "--reviewer", "ana",
                 "--db", db]) == 0
    assert main(["topics", "--seed", "42", "--db", db]) == 0
    assert main(["summarise", "--output", str(cli / "out"), "--db", db]) == 0
    for fmt in ("csv", "xlsx", "qdpx"):
        assert main(["export", "--output", str(cli / f"coded.{fmt}"), "--db", db]) == 0
    yield {"project": p, "coded": coded, "first": first, "sid": sid, "decision": decision,
           "topics": topics, "summary": summary, "files": files, "exports": exports,
           "after": after, "nb": nb, "cli": cli}
    p.close()


def test_code_reports_what_it_did_and_coding_is_the_csv_contract(study):
    coded, first = study["coded"], study["first"]
    assert coded.run_id == 1 and coded.segments == len(first) > 20
    assert [s for *_, s in coded.ingest.documents] == ["new", "new"]
    assert sum(coded.per_theme.values()) >= coded.segments      # every segment has a label
    csv_columns = pd.read_csv(study["exports"]["csv"], nrows=0).columns.tolist()
    assert first.columns.tolist() == csv_columns
    assert set(first["document"]) == {f.name for f in SESSIONS}
    assert (first["role"] == "stakeholder").all()


def test_a_decision_is_in_force_in_the_coding_and_logged(study):
    p, sid, after = study["project"], study["sid"], study["after"]
    row = after.set_index("segment_id").loc[sid]
    assert (row["themes"], row["polarity"], row["reviewer"], row["source"]) == \
        ("people", "barrier", "ana", "reviewer")
    log = p.decisions(sid)
    assert log["id"].tolist() == [study["decision"]]
    assert (log["reviewer"].tolist(), log["memo"].tolist()) == (["ana"], [MEMO])
    others = after[after["segment_id"] != sid].set_index("segment_id")
    before = study["first"].set_index("segment_id").loc[others.index]
    assert others["themes"].equals(before["themes"])               # no other row changed


def test_recoding_keeps_the_reviewers_decision(study, tmp_path, embedder):
    """A second run (which learns from the decision) never overwrites it."""
    from qual import Project

    path = tmp_path / "again.db"
    for suffix in ("", "-wal", "-shm"):          # the study's project is still open (WAL)
        src = study["nb"] / f"study.db{suffix}"
        if src.exists():
            shutil.copy(src, f"{path}{suffix}")
    with Project(path, embedder=embedder) as p:
        again = p.code()                        # every stored document, coded anew
        assert again.run_id == 3 and again.reviewer_examples == 1   # run 2 was the topics
        row = p.coding().set_index("segment_id").loc[study["sid"]]
        assert (row["themes"], row["polarity"], row["reviewer"]) == ("people", "barrier", "ana")


_WHEN = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?")


def _same_but_when(a: str, b: str) -> bool:
    """Equal once the times of the runs and decisions (seconds apart) are blanked."""
    return _WHEN.sub("<time>", a) == _WHEN.sub("<time>", b)


def test_the_notebook_and_the_command_line_write_the_same_files(study):
    nb, cli = study["nb"], study["cli"]
    assert (nb / "coded.csv").read_bytes() == (cli / "coded.csv").read_bytes()
    assert len(study["files"]) >= 4
    for name in study["files"].values():
        mine = name.read_text(encoding="utf-8")
        theirs = (cli / "out" / name.name).read_text(encoding="utf-8")
        assert _same_but_when(mine, theirs), name.name
    import openpyxl

    a, b = openpyxl.load_workbook(nb / "coded.xlsx"), openpyxl.load_workbook(cli / "coded.xlsx")
    assert a.sheetnames == b.sheetnames and "log" in a.sheetnames
    for sheet in a.sheetnames:
        rows_a = [[str(c) for c in r] for r in a[sheet].iter_rows(values_only=True)]
        rows_b = [[str(c) for c in r] for r in b[sheet].iter_rows(values_only=True)]
        assert _same_but_when(repr(rows_a), repr(rows_b)), f"sheet {sheet}"
    mine, theirs = _qdpx(nb / "coded.qdpx"), _qdpx(cli / "coded.qdpx")
    assert sorted(mine) == sorted(theirs) and len(mine) == 1 + len(SESSIONS) + 1  # + a memo
    for member in mine:
        assert _same_but_when(mine[member], theirs[member]), member
    assert MEMO in mine["project.qde"]


def _qdpx(path) -> dict:
    """A .qdpx's members: name -> text (GUIDs are derived from content, so they match)."""
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n).decode("utf-8") for n in z.namelist()}


def test_topics_from_the_notebook_match_the_command_lines_run(study):
    """Same store content, same seed: the same topics, read back from both stores."""
    from qual.store import Store

    mine = study["topics"]["result"].topics
    assert study["topics"]["run_id"] == 2 and (mine["topic"] >= 0).any()
    cols = ["topic", "size", "keywords", "theme", "subcode", "emergent"]
    with Store(study["nb"] / "study.db", create=False) as s:
        stored = s.topics()
    with Store(study["cli"] / "study.db", create=False) as s:
        theirs = s.topics()
        assert s.latest_run("topics")["parameters"]["seed"] == 42
    pd.testing.assert_frame_equal(stored[cols], theirs[cols])
    assert stored["keywords"].tolist() == mine["keywords"].tolist()


def test_faults_are_exceptions_with_the_command_lines_message(study, tmp_path, embedder):
    from qual import Project
    from qual.errors import QualError, StoreError

    with pytest.raises(StoreError, match="missing.db"):
        Project(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()
    p = study["project"]
    with pytest.raises(QualError, match="unknown theme 'peple' \\(did you mean people\\?"):
        p.decide(study["sid"], themes=["peple"], reviewer="ana")
    with pytest.raises(QualError, match="needs themes, subcodes or polarity"):
        p.decide(study["sid"], reviewer="ana")
    empty = tmp_path / "empty"
    empty.mkdir()
    with Project(tmp_path / "new.db", embedder=embedder) as q:
        with pytest.raises(QualError, match="nothing to code"):
            q.code(empty)
        with pytest.raises(QualError, match="no coding run in this store yet"):
            q.summarise(tmp_path / "out")
        assert not (tmp_path / "out").exists()


def test_documents_and_folder_narrow_a_project_call(study, tmp_path):
    p = study["project"]
    one = p.coding(documents=[SESSIONS[1].stem])
    assert set(one["document"]) == {SESSIONS[1].name}
    path = p.export(tmp_path / "one.csv", documents=SESSIONS[1].name)
    assert len(pd.read_csv(path)) == len(one)
    from qual.errors import QualError

    with pytest.raises(QualError, match="no document named 'nope'"):
        p.coding(documents=["nope"])


def test_a_qdpx_comes_back_as_a_project_with_the_decision_in_force(study, tmp_path):
    """qual -> .qdpx -> Project.from_qdpx: the reviewer's decision is in force again."""
    from qual import Project

    back = Project.from_qdpx(study["nb"] / "coded.qdpx", tmp_path / "back.db", show_progress=False)
    try:
        report = back.import_report
        assert report.result["documents"] == len(SESSIONS)
        assert report.result["decisions"] == {"ana": 1}
        coding = back.coding()
        row = coding[coding["reviewer"] == "ana"].iloc[0]
        original = study["after"].set_index("segment_id").loc[study["sid"]]
        assert (row["text"], row["themes"], row["polarity"]) == \
            (original["text"], "people", "barrier")
    finally:
        back.close()


def test_the_readmes_from_python_example_runs_as_written(tmp_path, monkeypatch):
    """The block under "From Python" in the README, run as a user would paste it, in a folder
    holding the shipped sample transcripts."""
    import runpy

    from conftest import REPO

    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## From Python"):]
    block = section[section.index("```python\n") + len("```python\n"):]
    block = block[:block.index("```")]
    assert "from qual import Project" in block and "p.export(" in block
    shutil.copytree(SAMPLES, tmp_path / "transcripts")
    (tmp_path / "example.py").write_text(block, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(tmp_path / "example.py"))
    assert (tmp_path / "study.db").exists() and (tmp_path / "study.qdpx").exists()
    assert (tmp_path / "out" / "summary.md").exists()


def test_an_unchanged_file_is_not_parsed_again_and_a_changed_one_is(study, tmp_path,
                                                                    monkeypatch):
    """Re-running over a study reads each stored file's bytes but parses only what changed
    (the real reader, counted)."""
    import qual.readers
    from qual import Project

    calls = []
    real = qual.readers.read_transcript

    def counted(path, *args, **kwargs):
        calls.append(path.name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(qual.readers, "read_transcript", counted)
    folder = tmp_path / "transcripts"
    shutil.copytree(study["nb"].parent / "transcripts", folder)
    path = tmp_path / "again.db"
    for suffix in ("", "-wal", "-shm"):
        src = study["nb"] / f"study.db{suffix}"
        if src.exists():
            shutil.copy(src, f"{path}{suffix}")
    with Project(path, show_progress=False) as p:
        report = p.ingest(folder)
        assert report.counts()["unchanged"] == len(SESSIONS) and calls == []
        rst = folder / SESSIONS[0].name
        rst.write_text(rst.read_text(encoding="utf-8") + "\nMr Keith: Thank you.\n",
                       encoding="utf-8")
        from qual.errors import QualWarning

        with pytest.warns(QualWarning, match="already holds documents from"):
            report = p.ingest(folder)             # the new version comes from another folder
        assert calls == [SESSIONS[0].name]
        assert sorted(s for *_, s in report.documents) == ["changed", "unchanged"]


def test_the_emergent_percentile_is_a_choice_recorded_with_the_run(study, tmp_path, capsys):
    """A higher percentile raises the bar a segment must clear to count as known to the
    codebook; the run records what was asked and the threshold it gave."""
    from qual.cli import main
    from qual.errors import QualError

    p = study["project"]
    default = p.store.run(study["topics"]["run_id"])["parameters"]
    wider = p.topics(seed=42, emergent_percentile=25)
    params = p.store.run(wider["run_id"])["parameters"]
    assert (default["emergent_percentile"], params["emergent_percentile"]) == (5.0, 25)
    assert params["emergent_threshold"] > default["emergent_threshold"]
    assert wider["result"].topics["emergent"].sum() >= study["topics"]["result"].topics[
        "emergent"].sum()
    with pytest.raises(QualError, match="between 0 and 100, not 0"):
        p.topics(emergent_percentile=0)
    assert main(["topics", "--emergent-percentile", "100", "--db",
                 str(study["cli"] / "study.db")]) == 2
    assert "--emergent-percentile must be between 0 and 100, not 100" in capsys.readouterr().err


def test_another_codebook_than_the_runs_is_one_warning_in_python_and_on_the_command_line(
        study, tmp_path, capsys):
    from conftest import REPO

    from qual import Project
    from qual.cli import main
    from qual.errors import QualWarning

    other = tmp_path / "codebook"
    shutil.copytree(REPO / "codebook", other)
    yaml = other / "osr.yaml"
    yaml.write_text(yaml.read_text(encoding="utf-8").replace(
        "name: OSR data sharing and linkage", "name: OSR data sharing and linkage, revised"),
        encoding="utf-8")
    with Project(study["nb"] / "study.db", codebook=other, create=False) as p:
        with pytest.warns(QualWarning, match="coded with codebook version .* is version"):
            p.export(tmp_path / "x.csv")
        with pytest.warns(QualWarning, match="coded with codebook version"):
            p.summarise(tmp_path / "out")
    capsys.readouterr()
    db = str(study["cli"] / "study.db")
    assert main(["summarise", "--output", str(tmp_path / "cli"), "--codebook", str(other),
                 "--db", db]) == 0
    err = capsys.readouterr().err
    assert err.count("qual: warning: the latest run was coded with codebook version") == 1
