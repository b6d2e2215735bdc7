"""REFI-QDA export and import: schema validity, offsets into the written sources, stable ids,
codebook round trip."""

from __future__ import annotations

import warnings
import zipfile
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
        assert "\n" not in text.replace("\r\n", "")            # CRLF line ends only
        for sel in ts.iterfind("q:PlainTextSelection", NS):
            seg = int(sel.find("q:Description", NS).text.split(";")[0].split()[1])
            start, end = int(sel.get("startPosition")), int(sel.get("endPosition"))
            # Offsets are into the text as written (CRLF): the selection is the segment.
            assert text[start:end] == segs.at[seg, "text"].replace("\n", "\r\n")
            assert text[start:end].replace("\r\n", "\n") == segs.at[seg, "text"]
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


def test_qdpx_into_missing_folder_leaves_nothing(coded_store, codebook, tmp_path):
    from qual.export import ExportError

    with pytest.raises(ExportError, match="does not exist"):
        write_qdpx(project_input(coded_store, codebook), tmp_path / "missing" / "p.qdpx")
    assert not (tmp_path / "missing").exists()


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
    same = qdc_to_codebook(data, name=codebook.name, description=codebook.description)
    assert same == codebook and same.version == codebook.version


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
