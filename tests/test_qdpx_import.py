"""``python -m qual import project.qdpx``: qual -> .qdpx -> qual keeps documents, segments and
every reviewer's decisions; a project written by another tool maps its codes by name, reports
the unknown ones (or adds them with --add-codes); a hostile or broken file is one error line
and leaves no store behind."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from qual.cli import main
from qual.codebook import load_codebook
from qual.qdpx import PROJECT_NS, project_input, write_qdpx
from qual.review import apply_decision, effective_coding
from qual.store import Store

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "transcripts"
FILES = [SAMPLES / "interview_01_central_department.txt",
         SAMPLES / "interview_05_data_engineering.vtt"]


def _decisions(db) -> dict:
    """(reviewer, document, start, end, text) -> (themes, sub-codes, polarity) in force."""
    with Store(db, create=False) as store:
        cod = effective_coding(store, scores=False)
    cod = cod[cod["reviewed"]]
    return {(r.reviewer, r.document, int(r.start), int(r.end), r.text):
            (r.themes, r.subcodes, r.polarity) for r in cod.itertuples(index=False)}


def _documents(db) -> tuple[dict, list]:
    with Store(db, create=False) as store:
        docs = {d["name"]: store.document(int(d["id"]))["text"]
                for d in store.documents().to_dict("records")}
        segs = sorted(tuple(r) for r in store.segments(role=None)[
            ["document", "start", "end", "text", "speaker", "role"]].itertuples(index=False))
    return docs, segs


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Two real samples coded with the real CLI, decisions by two reviewers through
    qual.review, exported with the real exporter."""
    folder = tmp_path_factory.mktemp("roundtrip")
    db = folder / "qual.db"
    assert main(["code", *map(str, FILES), "--db", str(db)]) == 0
    codebook = load_codebook()
    with Store(db) as store:
        cod = effective_coding(store, scores=False)
        coded = cod[cod["themes"] != "none"]["segment_id"].tolist()
        first = cod[cod["document"] == FILES[0].name]["segment_id"].tolist()
        second = cod[cod["document"] == FILES[1].name]["segment_id"].tolist()
        alice = [s for s in first if s in coded][:2] + first[-3:-1]
        apply_decision(store, alice[0], "alice", "accept")
        apply_decision(store, alice[1], "alice", "recode", themes=["people"],
                       subcodes=["people.skills", "processes.legal"], polarity="barrier",
                       codebook=codebook)
        apply_decision(store, alice[2], "alice", "reject")
        apply_decision(store, alice[3], "alice", "recode", themes=["public"],
                       polarity="opportunity", codebook=codebook)
        apply_decision(store, second[3], "Bob O'Neil", "recode",
                       subcodes=["technical.linkage"], polarity="neutral", codebook=codebook)
        apply_decision(store, second[5], "Bob O'Neil", "reject")
        # a decision taken back is not in force, so it does not travel
        apply_decision(store, second[7], "Bob O'Neil", "reject")
        apply_decision(store, second[7], "Bob O'Neil", "undo")
        write_qdpx(project_input(store, codebook, name="roundtrip"), folder / "project.qdpx")
    return db, folder / "project.qdpx"


def test_round_trip_keeps_documents_segments_and_every_decision(exported, tmp_path, capsys):
    db, qdpx = exported
    new = tmp_path / "imported.db"
    capsys.readouterr()
    assert main(["import", str(qdpx), "--db", str(new)]) == 0
    out = capsys.readouterr().out
    assert "2 documents" in out and "0 unknown" in out and "alice 4" in out
    assert "Bob O'Neil 2" in out
    # the same documents, cut into the same segments with the same speakers and roles
    assert _documents(new) == _documents(db)
    before, after = _decisions(db), _decisions(new)
    assert len(before) == 6 and {k[0] for k in before} == {"alice", "Bob O'Neil"}
    assert after == before
    # the machine's coding is not turned into anyone's decision
    with Store(new, create=False) as store:
        assert set(store.decisions()["reviewer"]) == {"alice", "Bob O'Neil"}


def _foreign_qdpx(path: Path, *, qde: str | None = None, extra: dict | None = None) -> Path:
    """A small project as another tool writes it: CRLF text, its own GUIDs, two users, a code
    not in qual's codebook, a source without speakers, a picture and a file outside the zip."""
    text = ("Interviewer: How do people see data sharing?\r\n\r\n"
            "Dana Smith: People trust the council with their records. But the funding for the "
            "data team has been cut twice.\r\n\r\n"
            "Interviewer: What would help?\r\n\r\n"
            "Dana Smith: Honestly, a shared platform across the region would help a lot.\r\n")

    def at(phrase):
        i = text.index(phrase)
        return f'startPosition="{i}" endPosition="{i + len(phrase)}"'

    memo = "Notes from the day.\n\nNobody named a speaker here. It is a plain paragraph."
    qde = qde or f"""<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="{PROJECT_NS}" name="field" origin="QualCoder 3.6">
 <Users>
  <User guid="aaaaaaaa-0000-0000-0000-000000000001" name="Dana Reviewer"/>
  <User guid="aaaaaaaa-0000-0000-0000-000000000002" name="Lee"/>
 </Users>
 <CodeBook><Codes>
  <Code guid="cccccccc-0000-0000-0000-000000000001" name="Trust and public perception"
        isCodable="true"/>
  <Code guid="cccccccc-0000-0000-0000-000000000002" name="Funding worries" isCodable="true">
   <Description>Money for data work is short.</Description></Code>
  <Code guid="cccccccc-0000-0000-0000-000000000003" name="infrastructure AND  systems"
        isCodable="true"/>
 </Codes></CodeBook>
 <Sources>
  <TextSource guid="dddddddd-0000-0000-0000-000000000001" name="Council interview"
              plainTextPath="internal://one.txt">
   <PlainTextSelection guid="eeeeeeee-0000-0000-0000-000000000001" {at("People trust the council with their records.")}
                       creatingUser="aaaaaaaa-0000-0000-0000-000000000001">
    <Coding guid="ffffffff-0000-0000-0000-000000000001"
            creatingUser="aaaaaaaa-0000-0000-0000-000000000001">
     <CodeRef targetGUID="cccccccc-0000-0000-0000-000000000001"/></Coding>
   </PlainTextSelection>
   <PlainTextSelection guid="eeeeeeee-0000-0000-0000-000000000002" {at("the funding for the data team has been cut twice")}
                       creatingUser="aaaaaaaa-0000-0000-0000-000000000001">
    <Coding guid="ffffffff-0000-0000-0000-000000000002"
            creatingUser="aaaaaaaa-0000-0000-0000-000000000001">
     <CodeRef targetGUID="cccccccc-0000-0000-0000-000000000002"/></Coding>
   </PlainTextSelection>
   <PlainTextSelection guid="eeeeeeee-0000-0000-0000-000000000003" {at("a shared platform across the region")}
                       creatingUser="aaaaaaaa-0000-0000-0000-000000000002">
    <Coding guid="ffffffff-0000-0000-0000-000000000003"
            creatingUser="aaaaaaaa-0000-0000-0000-000000000002">
     <CodeRef targetGUID="cccccccc-0000-0000-0000-000000000003"/></Coding>
   </PlainTextSelection>
  </TextSource>
  <TextSource guid="dddddddd-0000-0000-0000-000000000002" name="Field memo">
   <PlainTextContent>{memo}</PlainTextContent></TextSource>
  <TextSource guid="dddddddd-0000-0000-0000-000000000003" name="Elsewhere"
              plainTextPath="absolute:///etc/passwd"/>
  <PictureSource guid="dddddddd-0000-0000-0000-000000000004" name="Whiteboard"
                 path="internal://board.png"/>
 </Sources>
</Project>"""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("project.qde", qde)
        z.writestr("sources/one.txt", text.encode("utf-8"))
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def _codebook_copy(tmp_path) -> Path:
    folder = tmp_path / "codebook"
    shutil.copytree(REPO / "codebook", folder)
    return folder


def test_foreign_project_maps_codes_by_name_and_reports_the_unknown(tmp_path, capsys):
    qdpx = _foreign_qdpx(tmp_path / "field.qdpx")
    book = _codebook_copy(tmp_path)
    db = tmp_path / "qual.db"
    assert main(["import", str(qdpx), "--db", str(db), "--codebook", str(book)]) == 0
    out = capsys.readouterr().out
    assert "unknown code 'Funding worries': 1 coding(s) left out" in out
    assert "skipped source Elsewhere: its text is a file outside the project" in out
    assert "skipped source Whiteboard: a PictureSource" in out
    assert "no speaker labels in 'Field memo'" in out
    assert "decisions: 2 (Dana Reviewer 1, Lee 1)" in out
    docs, segs = _documents(db)
    assert set(docs) == {"Council interview", "Field memo"}
    assert "\r" not in docs["Council interview"]
    speakers = {(s[4], s[5]) for s in segs if s[0] == "Council interview"}
    assert speakers == {("Interviewer", "interviewer"), ("Dana Smith", "stakeholder")}
    assert {s[3] for s in segs if s[0] == "Field memo"} == {
        "Notes from the day.", "Nobody named a speaker here. It is a plain paragraph."}
    got = {(k[0], k[4][:20]): v for k, v in _decisions(db).items()}
    assert got == {("Dana Reviewer", "People trust the cou"): ("public", "public.trust",
                                                               "neutral"),
                   ("Lee", "Honestly, a shared p"): ("technical", "technical.infrastructure",
                                                     "neutral")}
    assert load_codebook(book).version == load_codebook().version      # codebook untouched


def test_add_codes_adds_the_unknown_code_under_the_theme(tmp_path, capsys):
    qdpx = _foreign_qdpx(tmp_path / "field.qdpx")
    book = _codebook_copy(tmp_path)
    db = tmp_path / "qual.db"
    assert main(["import", str(qdpx), "--db", str(db), "--codebook", str(book),
                 "--add-codes", "--theme", "processes"]) == 0
    out = capsys.readouterr().out
    assert "added code 'Funding worries' as sub-code processes.funding_worries" in out
    cb = load_codebook(book)
    sub = next(s for s in cb.subcodes if s.id == "processes.funding_worries")
    assert sub.name == "Funding worries" and sub.theme == "processes"
    assert sub.definition == "Money for data work is short."
    assert sub.examples == ["the funding for the data team has been cut twice"]
    got = {k[0]: v for k, v in _decisions(db).items()}
    assert got["Dana Reviewer"] == ("public;processes", "public.trust;processes.funding_worries",
                                    "neutral")


def _one_error(capsys, name: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qual: error: ") and name in err[0], err
    return err[0]


def _hostile():
    ns = f'xmlns="{PROJECT_NS}"'
    src = ('<Sources><TextSource guid="s1" name="x" plainTextPath="internal://one.txt">'
           '{sel}</TextSource></Sources>')
    return {
        "not_a_zip.qdpx": ("plain text, not a zip", "not a zip file"),
        "no_project.qdpx": ({"other.txt": "hello"}, "no project.qde"),
        "doctype.qdpx": ({"project.qde": '<?xml version="1.0"?><!DOCTYPE p [<!ENTITY e SYSTEM '
                          f'"file:///etc/passwd">]><Project {ns}>&e;</Project>'}, "DOCTYPE"),
        "broken_xml.qdpx": ({"project.qde": f"<Project {ns}><Sources>"}, "not well-formed"),
        "wrong_root.qdpx": ({"project.qde": f'<CodeBook xmlns="{PROJECT_NS}"/>'},
                            "not a REFI-QDA project"),
        "no_sources.qdpx": ({"project.qde": f"<Project {ns}/>"}, "no text source"),
        "missing_text.qdpx": ({"project.qde": f"<Project {ns}>{src.format(sel='')}</Project>"},
                              "sources/one.txt named in project.qde is not in the zip"),
        "bad_position.qdpx": ({"project.qde": f"<Project {ns}>" + src.format(
            sel='<PlainTextSelection guid="p" startPosition="5" endPosition="9999"/>')
            + "</Project>", "sources/one.txt": "Q: Why?\nA: Because.\n"}, "outside its text"),
        "nan_position.qdpx": ({"project.qde": f"<Project {ns}>" + src.format(
            sel='<PlainTextSelection guid="p" startPosition="five" endPosition="9"/>')
            + "</Project>", "sources/one.txt": "Q: Why?\nA: Because.\n"},
            "not a whole number"),
        "binary_text.qdpx": ({"project.qde": f"<Project {ns}>{src.format(sel='')}</Project>",
                              "sources/one.txt": b"\x00\x01\x02binary"}, "binary"),
    }


def test_hostile_or_broken_input_is_one_error_line_and_leaves_no_store(tmp_path, capsys):
    for name, (content, expected) in _hostile().items():
        f = tmp_path / name
        if isinstance(content, str):
            f.write_text(content)
        else:
            with zipfile.ZipFile(f, "w") as z:
                for entry, data in content.items():
                    z.writestr(entry, data)
        db = tmp_path / f"{name}.db"
        assert main(["import", str(f), "--db", str(db)]) == 2, name
        line = _one_error(capsys, name)
        assert expected in line, (name, line)
        assert not db.exists(), name


def test_oversized_source_and_missing_file_are_refused(tmp_path, capsys):
    qdpx = _foreign_qdpx(tmp_path / "big.qdpx")
    db = tmp_path / "qual.db"
    assert main(["import", str(qdpx), "--db", str(db), "--max-bytes", "50"]) == 2
    assert "over the limit of 50 bytes" in _one_error(capsys, "big.qdpx")
    assert main(["import", str(tmp_path / "nowhere.qdpx"), "--db", str(db)]) == 2
    assert "file not found" in _one_error(capsys, "nowhere.qdpx")
    assert not db.exists()


def test_project_qde_and_source_texts_are_capped_by_one_reader_in_their_own_words(
        tmp_path, capsys):
    """project.qde (``codebook import``) and each source text (``import``) are unpacked by the
    one capped reader, qual.qdpx.read_zip_entry; each door names the entry and its limit."""
    from qual.errors import CodebookError
    from qual.qdpx import QdaError, read_qdc, read_zip_entry

    qdpx = _foreign_qdpx(tmp_path / "big.qdpx")
    with zipfile.ZipFile(qdpx) as z:
        source = z.getinfo("sources/one.txt").file_size
        qde = z.getinfo("project.qde").file_size
    db = tmp_path / "qual.db"
    assert main(["import", str(qdpx), "--db", str(db), "--max-bytes", "50"]) == 2
    assert _one_error(capsys, "big.qdpx") == (
        f"qual: error: {qdpx}: sources/one.txt unpacks to {source:,} bytes, over the limit "
        "of 50 bytes")
    assert not db.exists()
    with zipfile.ZipFile(qdpx) as z:
        with pytest.raises(CodebookError) as info:
            read_zip_entry(z, "project.qde", 100, qdpx, what="its project.qde", missing="-")
        assert str(info.value) == (f"{qdpx}: its project.qde unpacks to {qde:,} bytes, over "
                                   "qual's limit of 100 bytes")
        with pytest.raises(QdaError, match=r"^x\.qdpx: no such entry$"):
            read_zip_entry(z, "nothing", 100, "x.qdpx", missing="no such entry", error=QdaError)
        assert read_zip_entry(z, "sources/one.txt", source, qdpx, missing="-").startswith(
            b"Interviewer: How do people see data sharing?")
    bare = tmp_path / "bare.qdpx"
    with zipfile.ZipFile(bare, "w") as z:
        z.writestr("other.txt", "hello")
    with pytest.raises(CodebookError) as info:
        read_qdc(bare)
    assert str(info.value) == (f"{bare}: this zip has no project.qde, so it is not a REFI-QDA "
                               "project (.qdpx)")


def test_options_are_checked_before_anything_is_written(tmp_path, capsys):
    qdpx = _foreign_qdpx(tmp_path / "field.qdpx")
    db = tmp_path / "qual.db"
    assert main(["import", str(qdpx), "--db", str(db), "--add-codes"]) == 2
    assert "--add-codes needs --theme" in _one_error(capsys, "field.qdpx")
    assert main(["import", str(qdpx), "--db", str(db), "--add-codes", "--theme", "nope"]) == 2
    assert "unknown theme 'nope'" in _one_error(capsys, "field.qdpx")
    assert not db.exists()


def test_refuses_a_store_with_documents_unless_into_existing(tmp_path, capsys):
    qdpx = _foreign_qdpx(tmp_path / "field.qdpx")
    db = tmp_path / "qual.db"
    assert main(["import", str(qdpx), "--db", str(db)]) == 0
    before = _decisions(db)
    capsys.readouterr()
    assert main(["import", str(qdpx), "--db", str(db)]) == 2
    assert "already holds 2 documents" in _one_error(capsys, "qual.db")
    assert _decisions(db) == before
    assert main(["import", str(qdpx), "--db", str(db), "--into-existing"]) == 0


def test_a_failure_while_storing_removes_the_store_it_made(tmp_path, capsys, monkeypatch):
    import qual.review
    from qual.errors import StoreError

    def fail(*a, **k):
        raise StoreError("disk full", path=str(tmp_path / "qual.db"))

    monkeypatch.setattr(qual.review, "apply_decision", fail)
    qdpx = _foreign_qdpx(tmp_path / "field.qdpx")
    db = tmp_path / "qual.db"
    assert main(["import", str(qdpx), "--db", str(db)]) == 2
    assert "disk full" in _one_error(capsys, "qual.db")
    assert not db.exists() and not Path(f"{db}-wal").exists()
