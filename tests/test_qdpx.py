"""REFI-QDA export and import: schema validity, offsets into the written sources, stable ids,
codebook round trip."""

from __future__ import annotations

import warnings
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from qual.codebook import load_codebook
from qual.qdpx import (CODEBOOK_NS, PROJECT_NS, project_input, qdc_to_codebook,
                       read_qdc, to_crlf, write_qdc, write_qdpx)

XSD = Path(__file__).parents[2] / "shared" / "refi-qda" / "Project.xsd"
NS = {"q": PROJECT_NS}


@pytest.fixture(scope="module")
def schema():
    assert XSD.exists(), f"the REFI-QDA schema must lie at {XSD} (../shared beside the repo)"
    return etree.XMLSchema(etree.parse(str(XSD)))


def _review_one(store, codebook):
    """A reviewer recodes one segment with a memo, so the export has two users."""
    from qual.review import coding_of, effective_coding

    df = effective_coding(store)
    row = df[df["themes"] != "none"].iloc[0]
    sub = codebook.themes[-1].subcodes[0]
    store.add_decision(int(row["segment_id"]), "alex", "recode", coding_of(row),
                       {"themes": [sub.theme], "subcodes": [sub.id], "polarity": "barrier"},
                       memo="Clearly about the technical side.")
    return int(row["segment_id"]), sub


def _export(store, codebook, path):
    write_qdpx(project_input(store, codebook, name="test"), path)
    with zipfile.ZipFile(path) as z:
        qde = z.read("project.qde")
        sources = {n: z.read(n) for n in z.namelist() if n.startswith("sources/")}
    return qde, sources


def test_qdpx_validates_and_every_selection_is_its_segment(coded_store, codebook, schema,
                                                          tmp_path):
    seg_id, sub = _review_one(coded_store, codebook)
    doc_id = int(coded_store.documents()["id"].iloc[0])
    coded_store.add_memo("alex", "Whole interview: cautious about legal gateways.",
                         document_id=doc_id)
    qde, sources = _export(coded_store, codebook, tmp_path / "p.qdpx")
    assert not qde.startswith(b"\xef\xbb\xbf")
    root = etree.fromstring(qde)
    assert schema.validate(root), schema.error_log
    segs = coded_store.segments().set_index("segment_id")
    n = 0
    for ts in root.iterfind("q:Sources/q:TextSource", NS):
        g = ts.get("guid")
        assert ts.get("plainTextPath") == f"internal://{g}.txt"
        assert ts.get("richTextPath") is None
        raw = sources[f"sources/{g}.txt"]
        assert not raw.startswith(b"\xef\xbb\xbf")
        text = raw.decode("utf-8")
        assert "\r" not in text                                # LF line ends by default
        for sel in ts.iterfind("q:PlainTextSelection", NS):
            seg = int(sel.find("q:Description", NS).text.split(";")[0].split()[1])
            start, end = int(sel.get("startPosition")), int(sel.get("endPosition"))
            # Offsets are into the text as written: the selection is the segment.
            assert text[start:end] == segs.at[seg, "text"]
            assert sel.findall("q:Coding", NS)
            n += 1
    assert n > 20
    # the reviewer is a user of their own; their coding and memo are in the project
    users = {u.get("name"): u.get("guid") for u in root.iterfind("q:Users/q:User", NS)}
    assert "alex" in users and len(users) == 2
    codes = {c.get("guid"): c.get("name") for c in root.iter(f"{{{PROJECT_NS}}}Code")}
    by_alex = [c for c in root.iter(f"{{{PROJECT_NS}}}Coding")
               if c.get("creatingUser") == users["alex"]]
    assert {codes[c.find("q:CodeRef", NS).get("targetGUID")] for c in by_alex} >= {sub.name}
    notes = [n.findtext("q:PlainTextContent", namespaces=NS)
             or sources[f"sources/{n.get('plainTextPath')[len('internal://'):]}"].decode()
             for n in root.iterfind("q:Notes/q:Note", NS)]
    assert "Clearly about the technical side." in notes
    assert "Whole interview: cautious about legal gateways." in notes   # a document memo
    # provenance: run, codebook version, redaction
    desc = root.findtext("q:Description", namespaces=NS)
    run = coded_store.latest_run()
    assert f"run {run['id']}" in desc and run["codebook_version"] in desc
    assert "redaction: not redacted" in desc
    # cases with variables from the metadata
    cases = root.findall("q:Cases/q:Case", NS)
    assert len(cases) == len(coded_store.documents())
    variables = {v.get("name") for v in root.iterfind("q:Variables/q:Variable", NS)}
    assert {"sector", "stakeholder_group", "stakeholder_id"} <= variables


def test_qdpx_guids_are_stable(coded_store, codebook, tmp_path):
    a = _export(coded_store, codebook, tmp_path / "a.qdpx")
    b = _export(coded_store, codebook, tmp_path / "b.qdpx")
    assert a == b
    assert (tmp_path / "a.qdpx").read_bytes() == (tmp_path / "b.qdpx").read_bytes()
    guids = [e.get("guid") for e in etree.fromstring(a[0]).iter() if e.get("guid")]
    assert len(guids) == len(set(guids))


def test_qdpx_into_missing_folder_makes_the_folder(coded_store, codebook, tmp_path):
    """Every --output makes missing folders (issue 13); the project is whole and valid."""
    target = tmp_path / "missing" / "deeper" / "p.qdpx"
    write_qdpx(project_input(coded_store, codebook), target)
    with zipfile.ZipFile(target) as z:
        assert "project.qde" in z.namelist()
    assert [p.name for p in target.parent.iterdir()] == ["p.qdpx"]   # no temporary file left


def test_to_crlf_maps_offsets():
    text = "a\nbc\r\nd\n"
    out, pos = to_crlf(text)
    assert out == "a\r\nbc\r\nd\r\n"
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            assert out[pos[i]:pos[j]].replace("\r\n", "\n") == text[i:j].replace("\r\n", "\n")


def test_qdc_round_trips(codebook, schema, tmp_path):
    path = write_qdc(codebook, tmp_path / "cb.qdc")
    data = path.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    root = etree.fromstring(data)
    assert root.tag == f"{{{CODEBOOK_NS}}}CodeBook"
    # the Codes structure is the project schema's: validate it inside a Project
    proj = etree.Element(f"{{{PROJECT_NS}}}Project", nsmap={None: PROJECT_NS}, name="x")
    book = etree.SubElement(proj, f"{{{PROJECT_NS}}}CodeBook")
    book.append(etree.fromstring(etree.tostring(root.find(f"{{{CODEBOOK_NS}}}Codes"))
                                 .replace(CODEBOOK_NS.encode(), PROJECT_NS.encode())))
    assert schema.validate(proj), schema.error_log
    back = read_qdc(path)
    assert back.name == codebook.name
    a, b = codebook.to_dict(), back.to_dict()
    assert a["themes"] == b["themes"]        # ids, names, colours, guidance, examples
    assert a["none"] == b["none"] and a["polarity"] == b["polarity"]
    # with the description given back, it is the same codebook, same version
    # (a .qdc holds the codebook, not its reference sets, which stay in codebook/reference/)
    same = qdc_to_codebook(data, name=codebook.name, description=codebook.description)
    assert same == codebook and same.version == replace(codebook, reference=()).version


def test_codebook_import_cli_writes_yaml(codebook, tmp_path, capsys):
    from qual.cli import main

    qdc = tmp_path / "cb.qdc"
    assert main(["codebook", "export", "--output", str(qdc)]) == 0
    out = tmp_path / "imported"
    out.mkdir()
    assert main(["codebook", "import", str(qdc), "--output", str(out)]) == 0
    loaded = load_codebook(out)
    assert loaded.to_dict()["themes"] == codebook.to_dict()["themes"]
    assert "wrote" in capsys.readouterr().out
    # refuses to replace a file without --force
    target = tmp_path / "c.yaml"
    target.write_text("x")
    assert main(["codebook", "import", str(qdc), "--output", str(target)]) == 2
    assert target.read_text() == "x"


def test_foreign_qdc_without_examples_imports_with_warning():
    xml = f"""<?xml version="1.0" encoding="utf-8"?>
<CodeBook xmlns="{CODEBOOK_NS}"><Codes>
  <Code guid="{{11111111-1111-1111-1111-111111111111}}" name="Trust &amp; consent" isCodable="true" color="#FF0000">
    <Description>How far people trust the use of their data.</Description>
    <Code guid="22222222-2222-2222-2222-222222222222" name="Low trust" isCodable="true">
      <Code guid="33333333-3333-3333-3333-333333333333" name="Media stories" isCodable="true"/>
    </Code>
  </Code>
  <Code guid="44444444-4444-4444-4444-444444444444" name="Funding" isCodable="true"/>
</Codes></CodeBook>""".encode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cb = qdc_to_codebook(xml, name="Other tool")
    assert any("no example" in str(w.message) for w in caught)
    assert cb.theme_ids == ["trust_consent", "funding"]
    assert cb.subcode_ids == ["trust_consent.low_trust", "funding.general"]
    assert "Media stories" in cb.subcode("trust_consent.low_trust").definition
    assert cb.theme("trust_consent").color == "#ff0000"


def test_foreign_qdc_with_a_name_twice_gets_unique_names():
    """Other tools allow one name under two parents; qual's codebook needs unique names."""
    xml = f"""<?xml version="1.0" encoding="utf-8"?>
<CodeBook xmlns="{CODEBOOK_NS}"><Codes>
  <Code guid="11111111-1111-1111-1111-111111111111" name="Trust" isCodable="true">
    <Code guid="22222222-2222-2222-2222-222222222222" name="Other" isCodable="true"/>
  </Code>
  <Code guid="33333333-3333-3333-3333-333333333333" name="Skills" isCodable="true">
    <Code guid="44444444-4444-4444-4444-444444444444" name="other" isCodable="true"/>
  </Code>
  <Code guid="55555555-5555-5555-5555-555555555555" name="Funding" isCodable="true"/>
</Codes></CodeBook>""".encode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cb = qdc_to_codebook(xml, name="Other tool")
    assert any("renamed" in str(w.message) for w in caught)
    assert [s.name for s in cb.subcodes] == ["Other", "other (Skills)", "Funding (general)"]


def test_lf_line_ends_map_offsets():
    from qual.qdpx import with_line_ends

    assert with_line_ends("a\nb") == ("a\nb", [0, 1, 2, 3])
    text = "a\r\nb\rc"
    out, pos = with_line_ends(text, "lf")
    assert out == "a\nb\nc"
    assert out[pos[3]:pos[len(text)]] == "b\nc"
    with pytest.raises(Exception, match="unknown line endings"):
        with_line_ends("x", "cr")


def test_qdpx_after_a_split_and_a_merge_holds_the_new_segments(coded_store, codebook, schema,
                                                               tmp_path):
    from qual import review as R

    coding = R.effective_coding(coded_store)
    row = next(r for r in coding.itertuples() if len(R.split_points(r.text)) >= 1)
    a, b = R.split_segment(coded_store, int(row.segment_id), R.split_points(row.text)[0], "kim")
    R.apply_decision(coded_store, b, "kim", "recode", themes=["people"], polarity="barrier")
    pair = next((int(s), n) for s in coded_store.segments()["segment_id"]
                if s not in (a, b) and (n := R.neighbours(coded_store, int(s))[1]) not in
                (None, a, b))
    merged = R.merge_segments(coded_store, list(pair), "kim")
    qde, sources = _export(coded_store, codebook, tmp_path / "p.qdpx")
    root = etree.fromstring(qde)
    assert schema.validate(root), schema.error_log
    live = coded_store.segments().set_index("segment_id")
    seen = set()
    for ts in root.iterfind("q:Sources/q:TextSource", NS):
        text = sources[f"sources/{ts.get('guid')}.txt"].decode("utf-8")
        for sel in ts.iterfind("q:PlainTextSelection", NS):
            seg = int(sel.find("q:Description", NS).text.split(";")[0].split()[1])
            start, end = int(sel.get("startPosition")), int(sel.get("endPosition"))
            assert text[start:end].replace("\r\n", "\n") == live.at[seg, "text"]
            seen.add(seg)
    assert int(row.segment_id) not in seen                          # the new cut, not the old
    assert b in seen                                                 # recoded by kim
    themes = R.effective_coding(coded_store).set_index("segment_id").at[merged, "themes"]
    assert (merged in seen) == (themes != "none")


# --------------------------------------------------------------------------------------------
# A real project (samples, an Inquiry session, a transcript with emoji; two reviewers, memos),
# as REFI-QDA and as QualCoder's own importer reads it back.

REPO = Path(__file__).resolve().parents[1]
QC_HARNESS = REPO.parent / "shared" / "interop" / "qualcoder" / "import_qdpx.py"
INQUIRY_FILE = (REPO.parent / "shared" / "data" / "inquiry" / "transcripts"
                / "2023-12-13_module-2_13_SOBO__UK_Statistics_Authority_by_Mr_Cohen.rst")
EMOJI_TEXT = (
    "Interviewer: Thanks for joining. How do people react to the data sharing plans?\n\n"
    "Jo Rivers: Honestly? Mostly 🙂 at first. People like that the council 📊 publishes what "
    "it links and why, and the panel of residents signs off each new use.\n\n"
    "Then the questions come 🤔. Who sees my records, and for how long? That's where trust "
    "is won or lost 🔒.\n\n"
    "Interviewer: And inside the organisation?\n\n"
    "Jo Rivers: We haven't got the analysts 👩‍💻 to keep up. The skills gap is real, and the "
    "legal sign-off for every agreement takes months.\n")


def _metadata_csv(folder: Path) -> None:
    """The samples' own metadata rows, with interview_02 as a second interview of S01 (so one
    stakeholder has two documents, on two dates)."""
    import csv

    rows = list(csv.DictReader((REPO / "transcripts" / "metadata.csv").open(encoding="utf-8")))
    by_file = {r["file"]: r for r in rows}
    keep = ["interview_01_central_department.txt", "interview_05_data_engineering.vtt",
            "interview_08_paired_academic.txt"]
    out = [by_file[f] for f in keep]
    out.append({**by_file["interview_01_central_department.txt"],
                "file": "interview_02_local_authority.txt", "interview_date": "2024-11-12"})
    with (folder / "metadata.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(out)


@pytest.fixture(scope="module")
def project(tmp_path_factory, embedder, codebook, nlp):
    """A store built from real files, reviewed through qual's own review functions, and its
    .qdpx. Returns a dict: store, path, decisions and memos made."""
    import shutil

    from conftest import build_store
    from qual import review as R

    folder = tmp_path_factory.mktemp("project")
    src = folder / "transcripts"
    src.mkdir()
    for name in ("interview_01_central_department.txt", "interview_02_local_authority.txt",
                 "interview_05_data_engineering.vtt", "interview_08_paired_academic.txt"):
        shutil.copy(REPO / "transcripts" / name, src / name)
    shutil.copy(INQUIRY_FILE, src / INQUIRY_FILE.name)
    (src / "interview_09_emoji.txt").write_text(EMOJI_TEXT, encoding="utf-8")
    _metadata_csv(src)
    store = build_store(folder / "qual.db", sorted(p for p in src.iterdir()
                                                   if p.name != "metadata.csv"),
                        embedder, codebook, nlp)
    coding = R.effective_coding(store)
    coded = coding[coding["themes"] != "none"]
    multi = coded[coded["text"].str.contains("\n")].iloc[0]          # a paragraph break
    plain = coded[(coded["segment_id"] != multi.segment_id)
                  & coded["document"].str.startswith("interview_05")].iloc[0]
    inquiry = coded[coded["document"] == INQUIRY_FILE.name].iloc[0]
    emoji = coding[coding["document"] == "interview_09_emoji.txt"]
    emoji = emoji[emoji["text"].str.contains("🤔")].iloc[0]
    sub = codebook.subcode("technical.linkage")
    R.apply_decision(store, int(multi.segment_id), "alex", "recode", themes=[sub.theme],
                     subcodes=[sub.id], polarity="barrier", codebook=codebook,
                     memo="About linkage, not trust.\nSee the second paragraph.")
    R.apply_decision(store, int(plain.segment_id), "alex", "accept")
    R.apply_decision(store, int(inquiry.segment_id), "kim", "reject",
                     memo="Procedural remarks, outside the themes.")
    R.apply_decision(store, int(emoji.segment_id), "kim", "recode", themes=["public"],
                     subcodes=["public.trust"], polarity="neutral", codebook=codebook)
    R.add_memo(store, "kim", "Worth quoting 🔒 in the report.", segment_id=int(emoji.segment_id))
    R.add_memo(store, "alex", "Whole interview: cautious about legal gateways.",
               document_id=int(plain.document_id))
    path = folder / "project.qdpx"
    write_qdpx(project_input(store, codebook, name="real project"), path)
    yield {"store": store, "path": path, "folder": folder,
           "reviewed": {int(multi.segment_id): "alex", int(plain.segment_id): "alex",
                        int(inquiry.segment_id): "kim", int(emoji.segment_id): "kim"},
           "rejected": int(inquiry.segment_id), "emoji": int(emoji.segment_id),
           "multi": int(multi.segment_id)}
    store.close()


def _read(path):
    with zipfile.ZipFile(path) as z:
        root = etree.fromstring(z.read("project.qde"))
        files = {n[len("sources/"):]: z.read(n).decode("utf-8") for n in z.namelist()
                 if n.startswith("sources/")}
    return root, files


def _segment_of(sel) -> int:
    return int(sel.find("q:Description", NS).text.split(";")[0].split()[1])


def test_real_project_qdpx_validates_and_keeps_users_memos_cases(project, codebook, schema):
    from qual.qdpx import _dt

    store = project["store"]
    root, files = _read(project["path"])
    assert schema.validate(root), schema.error_log
    users = {u.get("guid"): u.get("name") for u in root.iterfind("q:Users/q:User", NS)}
    assert sorted(users.values()) == ["alex", "kim", "qual (machine coding)"]
    segs = store.segments(role=None).set_index("segment_id")
    latest = store.latest_decisions().set_index("segment_id")
    coding = __import__("qual.review", fromlist=["x"]).effective_coding(store)
    machine_coded = set(coding.loc[coding["machine_themes"].fillna("none") != "none",
                                   "segment_id"])
    codes = {c.get("guid"): c for c in root.iter(f"{{{PROJECT_NS}}}Code")}
    pairs, texts_with_breaks = [], 0
    for ts in root.iterfind("q:Sources/q:TextSource", NS):
        text = files[ts.get("plainTextPath")[len("internal://"):]]
        assert "\r" not in text
        for sel in ts.iterfind("q:PlainTextSelection", NS):
            seg = _segment_of(sel)
            start, end = int(sel.get("startPosition")), int(sel.get("endPosition"))
            assert text[start:end] == segs.at[seg, "text"]          # code points, LF
            texts_with_breaks += "\n" in segs.at[seg, "text"]
            user = users[sel.get("creatingUser")]
            pairs.append((seg, user))
            for c in sel.iterfind("q:Coding", NS):                   # the selection's owner
                assert c.get("creatingUser") == sel.get("creatingUser")
                assert c.get("creationDateTime") == sel.get("creationDateTime")
            if user != "qual (machine coding)":
                assert project["reviewed"][seg] == user
                assert sel.get("creationDateTime") == _dt(latest.at[seg, "created_at"])
    assert texts_with_breaks and len(pairs) == len(set(pairs))       # one per (segment, user)
    for seg, user in project["reviewed"].items():
        assert (seg, user) in pairs
        assert ((seg, "qual (machine coding)") in pairs) == (seg in machine_coded)
    # the rejection is kim's coding with "Outside the themes"
    rejected = [s for s in root.iter(f"{{{PROJECT_NS}}}PlainTextSelection")
                if s.get("creatingUser") and users.get(s.get("creatingUser")) == "kim"
                and _segment_of(s) == project["rejected"]]
    assert [codes[c.find("q:CodeRef", NS).get("targetGUID")].get("name")
            for c in rejected[0].iterfind("q:Coding", NS)] == ["Outside the themes"]
    # every code has a colour; names are unique across the tree
    assert all(c.get("color") for c in codes.values())
    names = [c.get("name").casefold() for c in codes.values()]
    assert len(names) == len(set(names))

    # memos: segment and decision memos are notes on the segment's span, referenced from the
    # source; the document memo and "About this export" are notes with a text file
    notes = {n.get("guid"): n for n in root.iterfind("q:Notes/q:Note", NS)}
    refs = {r.get("targetGUID"): ts for ts in root.iterfind("q:Sources/q:TextSource", NS)
            for r in ts.iterfind("q:NoteRef", NS)}
    on_spans = {}
    for g, n in notes.items():
        sel = n.find("q:PlainTextSelection", NS)
        if sel is None:
            continue
        ts = refs[g]
        text = files[ts.get("plainTextPath")[len("internal://"):]]
        on_spans[n.findtext("q:PlainTextContent", namespaces=NS)] = (
            users[n.get("creatingUser")],
            text[int(sel.get("startPosition")):int(sel.get("endPosition"))])
    assert on_spans == {
        "About linkage, not trust.\nSee the second paragraph.":
            ("alex", segs.at[project["multi"], "text"]),
        "Procedural remarks, outside the themes.": ("kim", segs.at[project["rejected"], "text"]),
        "Worth quoting 🔒 in the report.": ("kim", segs.at[project["emoji"], "text"]),
    }
    journals = {n.get("name"): files[n.get("plainTextPath")[len("internal://"):]]
                for n in notes.values() if n.get("plainTextPath")}
    assert journals["About this export"].startswith("Exported by qual")
    assert "count Unicode code points" in journals["About this export"]
    doc_memo = [v for k, v in journals.items() if k.startswith("Memo by alex on interview_05")]
    assert doc_memo == ["Whole interview: cautious about legal gateways."]
    assert root.find("q:NoteRef", NS).get("targetGUID") in notes
    descriptions = {ts.get("name"): ts.findtext("q:Description", namespaces=NS)
                    for ts in root.iterfind("q:Sources/q:TextSource", NS)}
    assert "Whole interview: cautious" in descriptions["interview_05_data_engineering.vtt"]
    assert descriptions[INQUIRY_FILE.name] == "not redacted"
    assert descriptions["interview_01_central_department.txt"] == (
        "S01, Department for Regional Services (Central government); not redacted")
    for d in root.iter(f"{{{PROJECT_NS}}}Description"):
        assert "()" not in d.text and "  " not in d.text and not d.text.startswith((" ", ";"))

    # cases: one per stakeholder, unique names, a SourceRef for each of their documents
    src_name = {ts.get("guid"): ts.get("name")
                for ts in root.iterfind("q:Sources/q:TextSource", NS)}
    cases = {c.get("name"): sorted(src_name[r.get("targetGUID")]
                                   for r in c.iterfind("q:SourceRef", NS))
             for c in root.iterfind("q:Cases/q:Case", NS)}
    assert cases == {
        "S01": ["interview_01_central_department.txt", "interview_02_local_authority.txt"],
        "S05": ["interview_05_data_engineering.vtt"],
        "S08": ["interview_08_paired_academic.txt"],              # two speakers, one case
        INQUIRY_FILE.name: [INQUIRY_FILE.name],                   # its one witness
        "interview_09_emoji.txt": ["interview_09_emoji.txt"],
    }
    # variables are written once: on the cases when each stakeholder's documents agree,
    # else on the sources
    var = {v.get("guid"): v.get("name") for v in root.iterfind("q:Variables/q:Variable", NS)}

    def used(path):
        return {var[r.get("targetGUID")] for r in root.iterfind(path, NS)}

    on_cases = used("q:Cases/q:Case/q:VariableValue/q:VariableRef")
    on_sources = used("q:Sources/q:TextSource/q:VariableValue/q:VariableRef")
    assert not on_cases & on_sources and on_cases | on_sources == set(var.values())
    assert "interview_date" in on_sources and {"stakeholder_id", "organisation"} <= on_cases


def test_emoji_positions_count_code_points_and_crlf_is_an_option(project, codebook, schema,
                                                                 tmp_path, capsys):
    """Positions count code points (an emoji, outside the BMP, is one), in LF and in CRLF;
    ``export --line-endings crlf`` writes CRLF sources with positions into them."""
    from qual.cli import main

    store = project["store"]
    segs = store.segments(role=None).set_index("segment_id")
    emoji_text = segs.at[project["emoji"], "text"]
    assert any(ord(ch) > 0xFFFF for ch in emoji_text)
    out = tmp_path / "crlf.qdpx"
    assert main(["export", "--db", str(project["folder"] / "qual.db"), "--output", str(out),
                 "--line-endings", "crlf"]) == 0
    assert "REFI-QDA project" in capsys.readouterr().out
    for path, crlf in ((project["path"], False), (out, True)):
        root, files = _read(path)
        assert schema.validate(root), schema.error_log
        seen = set()
        for ts in root.iterfind("q:Sources/q:TextSource", NS):
            text = files[ts.get("plainTextPath")[len("internal://"):]]
            assert ("\n" not in text.replace("\r\n", "")) if crlf else ("\r" not in text)
            for sel in ts.iterfind("q:PlainTextSelection", NS):
                seg = segs.at[_segment_of(sel), "text"]
                got = text[int(sel.get("startPosition")):int(sel.get("endPosition"))]
                assert got == (seg.replace("\n", "\r\n") if crlf else seg)
                seen.add(_segment_of(sel))
            if ts.get("name") == "interview_09_emoji.txt":
                # the emoji segment starts where qual says, counted in code points
                start = text.index(emoji_text.replace("\n", "\r\n") if crlf else emoji_text)
                doc = store.document(int(segs.at[project["emoji"], "document_id"]))["text"]
                assert start == segs.at[project["emoji"], "start"] + (
                    doc[:segs.at[project["emoji"], "start"]].count("\n") if crlf else 0)
                assert len(text.encode("utf-16-le")) // 2 > len(text)   # not UTF-16 units
        assert project["emoji"] in seen


def _qualcoder_python() -> str:
    """The Python of QualCoder's venv (see ../shared/interop/qualcoder/README.md): the
    QUAL_QUALCODER_PYTHON variable, or qcvenv/ in the repo; the test is skipped without it."""
    import os
    import subprocess

    py = os.environ.get("QUAL_QUALCODER_PYTHON") or str(REPO / "qcvenv" / "bin" / "python")
    # .ci/run builds the venv and sets QUAL_REQUIRE_QUALCODER=1: there a missing venv fails
    missing = pytest.fail if os.environ.get("QUAL_REQUIRE_QUALCODER") == "1" else pytest.skip
    if not QC_HARNESS.exists():
        missing(f"QualCoder's importer harness is missing ({QC_HARNESS})")
    if not Path(py).exists():
        missing(f"QualCoder's venv is missing ({py}); make it with: python3 -m venv qcvenv "
                "&& qcvenv/bin/pip install PyQt6 pymupdf Pillow lxml qtawesome")
    probe = subprocess.run([py, "-c", "import PyQt6.QtWidgets, lxml"], capture_output=True)
    if probe.returncode:
        missing(f"QualCoder's venv ({py}) cannot import PyQt6 and lxml")
    return py


def test_qualcoder_import_keeps_every_code_coding_reviewer_memo_and_case(project, codebook,
                                                                         tmp_path):
    """QualCoder's own REFI-QDA importer (run headlessly) reads the project back whole."""
    import json
    import os
    import sqlite3
    import subprocess

    py = _qualcoder_python()
    out = tmp_path / "qc" / "proj"
    run = subprocess.run([py, str(QC_HARNESS), "qdpx", str(project["path"]), str(out)],
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    log = json.loads((tmp_path / "qc" / "proj.import_log.json").read_text(encoding="utf-8"))
    assert log["error"] is None
    # QualCoder's one standing notice ("experimental function"), and nothing else
    assert [m["text"].splitlines()[0] for m in log["messages"]] == [
        "REFI-QDA PROJECT IMPORT EXPERIMENTAL FUNCTION - NOT FULLY TESTED"]
    assert not [line for line in log["log"] if "rror" in line or "Cannot" in line]
    con = sqlite3.connect(out.parent / "proj.qda" / "data.qda")

    def q(sql):
        return con.execute(sql).fetchall()

    store = project["store"]
    # every code arrives, none orphaned; every code has the colour given
    names = {r[0] for r in q("SELECT name FROM code_name")}
    expected = ({t.name for t in codebook.themes} | {s.name for s in codebook.subcodes}
                | {"barrier", "opportunity", "neutral", "Outside the themes"})
    assert names == expected
    assert q("SELECT count(*) FROM code_text WHERE cid IS NULL") == [(0,)]
    # every selection's text is qual's segment text; owners are the selection's users
    segs = store.segments(role=None).set_index("segment_id")["text"]
    rows = q("SELECT memo, seltext, owner FROM code_text")
    assert rows
    owners: dict[tuple, set] = {}
    for memo, seltext, owner in rows:
        seg = int(memo.split(";")[0].split()[1])
        assert seltext == segs[seg], seg
        owners.setdefault(seg, set()).add(owner)
    for seg, reviewer in project["reviewed"].items():
        assert reviewer in owners[seg]
    assert {o for os_ in owners.values() for o in os_} == {"qual (machine coding)", "alex", "kim"}
    reviewer_codes = q("SELECT c.owner, n.name FROM code_text c JOIN code_name n USING (cid) "
                       "WHERE c.owner = 'kim'")
    assert ("kim", "Outside the themes") in reviewer_codes
    # memos: annotations on the segment's span, journals for the document memo and the notes
    annotations = {(memo, owner, pos0, pos1) for memo, owner, pos0, pos1 in
                   q("SELECT memo, owner, pos0, pos1 FROM annotation")}
    rec = {i: store.segment_record(i) for i in project["reviewed"]}
    assert annotations == {
        ("About linkage, not trust.\nSee the second paragraph.", "alex",
         rec[project["multi"]]["start"], rec[project["multi"]]["end"]),
        ("Procedural remarks, outside the themes.", "kim",
         rec[project["rejected"]]["start"], rec[project["rejected"]]["end"]),
        ("Worth quoting 🔒 in the report.", "kim",
         rec[project["emoji"]]["start"], rec[project["emoji"]]["end"]),
    }
    journals = dict(q("SELECT name, jentry FROM journal"))
    assert journals["About this export"].startswith("Exported by qual")
    assert "Whole interview: cautious about legal gateways." in journals.values()
    assert q("SELECT memo FROM project")[0][0].startswith("Exported by qual")
    memo = dict(q("SELECT name, memo FROM source"))["interview_05_data_engineering.vtt"]
    assert "Whole interview: cautious about legal gateways." in memo
    # one case per stakeholder, each with its variables (QualCoder does not import a named
    # case's SourceRef elements, a limitation of its importer)
    cases = {r[0] for r in q("SELECT name FROM cases")}
    assert cases == {"S01", "S05", "S08", INQUIRY_FILE.name, "interview_09_emoji.txt"}
    assert q("SELECT count(*) FROM attribute a LEFT JOIN cases c ON a.id = c.caseid "
             "WHERE a.attr_type = 'case' AND c.caseid IS NULL") == [(0,)]
    kinds = dict(q("SELECT name, caseOrFile FROM attribute_type"))
    assert kinds["interview_date"] == "file" and kinds["organisation"] == "case"
    con.close()
