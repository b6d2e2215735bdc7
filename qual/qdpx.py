"""REFI-QDA exchange (QDA-XML 1.0): a coded project as ``.qdpx`` and the codebook as ``.qdc``.

A ``.qdpx`` is a zip holding ``project.qde`` (namespace ``urn:QDA-XML:project:1.0``) and
``sources/<guid>.txt``, one plain-text file per document. Choices, after the import pitfalls
the QDA tools' maintainers report (``shared/refi-qda/README.md``):

* UTF-8 without a byte-order mark; elements in the schema's order; the folder is ``sources``;
  no ``richTextPath``.
* Sources are written with CRLF line ends (MAXQDA expects them), so every
  ``startPosition``/``endPosition`` is computed on the text *as written*: in the exported
  source, ``text[start:end]`` is the segment's text with its line ends written as CRLF.
  Positions count Unicode code points.
* GUIDs are ``uuid5`` of stable keys (code ids, the document's content hash, segment offsets,
  user names), so exporting the same store twice gives the same identifiers, and the project
  carries the run's time rather than the time of export, so the bytes are the same too.
* Users: one for the machine coding, one per reviewer. A segment's ``Coding`` elements are made
  by the machine user, or by the reviewer whose decision is in effect.
* Codes: the themes (codable: a segment carrying a theme is coded with it) with their
  sub-codes nested, colours and descriptions; plus a non-codable
  ``Polarity`` code holding ``barrier``/``opportunity``/``neutral``, and a non-codable
  ``Outside the themes`` code, so the codebook's polarity and ``none`` guidance survive.

Code descriptions carry everything the YAML codebook holds that QDA-XML has no place for
(guidance and example utterances) in a plain layout other tools show as text::

    <definition>

    Use when: ...
    Do not use when: ...
    Examples:
    - <example>
    [qual id: public.trust]

``qdc_to_codebook`` reads that layout back, so ``.qdc`` export then import gives the same
themes, sub-codes, guidance and examples. A codebook made in another tool has no examples:
each sub-code then gets its definition (or name) as its one example, with a warning, since
qual's coder learns from examples. The codebook's name and description are not in a ``.qdc``
(QDA-XML has no place for them); import takes them from the file name or the caller.
"""

from __future__ import annotations

import re
import uuid
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from lxml import etree

from . import __version__
from .errors import CodebookError, QualError

PROJECT_NS = "urn:QDA-XML:project:1.0"
CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
GUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://qual.invalid/refi-qda")
POLARITY_CODE = "polarity"
NONE_CODE = "none"
_ID_LINE = re.compile(r"^\[qual id: ([^\]]+)\]\s*$")


class QdaError(QualError):
    """A REFI-QDA file cannot be written or read."""


def guid(*key) -> str:
    """A stable GUID for a key (uuid5): the same key always gives the same GUID."""
    return str(uuid.uuid5(GUID_NAMESPACE, "\x1f".join(str(k) for k in key)))


# -- text with CRLF line ends and the offsets into it ---------------------------------------
def to_crlf(text: str) -> tuple[str, list[int]]:
    """``text`` with every line end written as CRLF, and ``pos``: ``pos[i]`` is where
    character ``i`` of ``text`` (or ``len(text)`` for ``i == len(text)``) lands."""
    out, pos, n = [], [], 0
    prev = ""
    for ch in text:
        pos.append(n)
        if ch == "\n" and prev != "\r":
            out.append("\r\n")
            n += 2
        else:
            out.append(ch)
            n += 1
        prev = ch
    pos.append(n)
    return "".join(out), pos


# -- code descriptions ------------------------------------------------------------------------
def describe(definition: str, use_when: str = "", do_not_use_when: str = "",
             examples=(), qual_id: str = "") -> str:
    parts = [definition.strip()]
    extra = []
    if use_when:
        extra.append(f"Use when: {use_when.strip()}")
    if do_not_use_when:
        extra.append(f"Do not use when: {do_not_use_when.strip()}")
    if examples:
        extra.append("Examples:")
        extra += [f"- {' '.join(e.split())}" for e in examples]
    if qual_id:
        extra.append(f"[qual id: {qual_id}]")
    if extra:
        parts.append("\n".join(extra))
    return "\n\n".join(p for p in parts if p)


def parse_description(text: str) -> dict:
    """The fields of a description written by ``describe`` (or any free text as definition)."""
    out = {"definition": "", "use_when": "", "do_not_use_when": "", "examples": [], "id": ""}
    lines = (text or "").replace("\r\n", "\n").split("\n")
    current = "definition"
    buf: dict[str, list[str]] = {"definition": [], "use_when": [], "do_not_use_when": []}
    for line in lines:
        m = _ID_LINE.match(line.strip())
        if m:
            out["id"] = m.group(1).strip()
            continue
        if line.startswith("Use when:"):
            current = "use_when"
            buf[current].append(line[len("Use when:"):].strip())
        elif line.startswith("Do not use when:"):
            current = "do_not_use_when"
            buf[current].append(line[len("Do not use when:"):].strip())
        elif line.strip() == "Examples:":
            current = "examples"
        elif current == "examples":
            if line.startswith("- "):
                out["examples"].append(line[2:].strip())
            elif line.strip() and out["examples"]:
                out["examples"][-1] += " " + line.strip()
        else:
            buf[current].append(line)
    for k, v in buf.items():
        out[k] = "\n".join(v).strip()
    return out


# -- XML helpers ------------------------------------------------------------------------------
def _el(parent, ns: str, tag: str, attrib: dict | str | None = None, text: str | None = None):
    if isinstance(attrib, str):
        attrib, text = None, attrib
    e = etree.SubElement(parent, f"{{{ns}}}{tag}",
                         {k: str(v) for k, v in (attrib or {}).items() if v is not None})
    if text is not None:
        e.text = _xml_text(text)
    return e


_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(s: str) -> str:
    return _BAD_XML.sub("", str(s))


def _serialise(root) -> bytes:
    # lxml writes UTF-8 without a byte-order mark.
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _code_tree(parent, ns: str, codebook) -> dict[str, str]:
    """Write the codebook as nested ``Code`` elements; return code id -> GUID."""
    from . import POLARITIES

    ids: dict[str, str] = {}
    codes = _el(parent, ns, "Codes")
    for theme in codebook.themes:
        g = ids[theme.id] = guid("code", theme.id)
        t = _el(codes, ns, "Code", {"guid": g, "name": theme.name, "isCodable": "true",
                                    "color": theme.color or None})
        _el(t, ns, "Description", describe(theme.definition, theme.use_when,
                                           theme.do_not_use_when, qual_id=theme.id))
        for sub in theme.subcodes:
            g = ids[sub.id] = guid("code", sub.id)
            s = _el(t, ns, "Code", {"guid": g, "name": sub.name, "isCodable": "true",
                                    "color": theme.color or None})
            _el(s, ns, "Description", describe(sub.definition, sub.use_when,
                                               sub.do_not_use_when, sub.examples, sub.id))
    g = ids[POLARITY_CODE] = guid("code", POLARITY_CODE)
    p = _el(codes, ns, "Code", {"guid": g, "name": "Polarity", "isCodable": "false"})
    _el(p, ns, "Description", describe("Whether a passage describes a barrier, an opportunity "
                                       "or neither, read independently of its theme.",
                                       qual_id=POLARITY_CODE))
    for k in POLARITIES:
        g = ids[k] = guid("code", POLARITY_CODE, k)
        c = _el(p, ns, "Code", {"guid": g, "name": k, "isCodable": "true"})
        _el(c, ns, "Description", describe(codebook.polarity_definitions.get(k, ""),
                                           examples=codebook.polarity.get(k, []),
                                           qual_id=f"{POLARITY_CODE}.{k}"))
    if codebook.none_definition or codebook.none_examples:
        g = guid("code", NONE_CODE)
        n = _el(codes, ns, "Code", {"guid": g, "name": "Outside the themes",
                                    "isCodable": "false"})
        _el(n, ns, "Description", describe(codebook.none_definition,
                                           examples=codebook.none_examples, qual_id=NONE_CODE))
    return ids


# -- .qdc -------------------------------------------------------------------------------------
def codebook_to_qdc(codebook) -> bytes:
    """The codebook as a REFI-QDA ``CodeBook`` document (``urn:QDA-XML:codebook:1.0``)."""
    root = etree.Element(f"{{{CODEBOOK_NS}}}CodeBook", nsmap={None: CODEBOOK_NS},
                         origin=f"qual {__version__}; codebook {codebook.name} "
                                f"version {codebook.version}")
    _code_tree(root, CODEBOOK_NS, codebook)
    return _serialise(root)


def _slug(name: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not s or not s[0].isalpha():
        s = "c_" + s
    return s


def qdc_to_codebook(data, *, name: str = "Imported codebook", description: str = "",
                    path: str | None = None):
    """Read a ``.qdc`` (or the ``CodeBook`` of a ``project.qde``), as bytes or as a parsed
    element, into a validated Codebook.

    Top-level codes become themes and their children sub-codes (deeper codes are folded into
    their sub-code's definition). qual's ``Polarity`` and ``Outside the themes`` codes come
    back as the codebook's polarity and none guidance. Missing examples are filled from the
    definition or name, with a warning.
    """
    from .codebook import codebook_from_dict

    root = data if isinstance(data, etree._Element) else parse_xml(data, path)
    ns = etree.QName(root).namespace or ""
    q = (lambda tag: f"{{{ns}}}{tag}") if ns else (lambda tag: tag)
    book = root if etree.QName(root).localname == "CodeBook" else root.find(q("CodeBook"))
    codes = book.find(q("Codes")) if book is not None else None
    if codes is None:
        raise CodebookError("no CodeBook/Codes element found", path=path)

    def desc(code) -> dict:
        d = code.find(q("Description"))
        return parse_description(d.text if d is not None else "")

    themes, polarity, none = [], {}, {"definition": "", "examples": []}
    filled: list[str] = []
    used_ids: set[str] = set()

    def unique(i: str) -> str:
        base, n = i, 2
        while i in used_ids:
            i = f"{base}_{n}"
            n += 1
        used_ids.add(i)
        return i

    for code in codes.findall(q("Code")):
        info = desc(code)
        cname = code.get("name", "").strip() or "unnamed"
        if info["id"] == POLARITY_CODE:
            for child in code.findall(q("Code")):
                ci = desc(child)
                key = ci["id"].split(".", 1)[-1] if ci["id"] else child.get("name", "")
                polarity[key] = {"definition": ci["definition"], "examples": ci["examples"]}
            continue
        if info["id"] == NONE_CODE:
            none = {"definition": info["definition"], "examples": info["examples"]}
            continue
        tid = unique(info["id"] if info["id"] and "." not in info["id"] else _slug(cname))
        theme = {"id": tid, "name": cname, "definition": info["definition"] or cname,
                 "use_when": info["use_when"], "do_not_use_when": info["do_not_use_when"],
                 "subcodes": []}
        if code.get("color"):
            theme["color"] = code.get("color")
        children = code.findall(q("Code")) or [code]
        for child in children:
            ci = desc(child) if child is not code else {**info, "examples": info["examples"]}
            sname = child.get("name", "").strip() or "unnamed"
            if child is code:
                sid = f"{tid}.general"
            elif ci["id"].startswith(f"{tid}."):
                sid = ci["id"]
            else:
                sid = f"{tid}.{_slug(sname)}"
            sid = unique(sid)
            definition = ci["definition"] or sname
            deeper = [g.get("name", "") for g in child.iter(q("Code")) if g is not child]
            if deeper and child is not code:
                definition += "\n\nIncludes: " + "; ".join(deeper)
            examples = ci["examples"]
            if not examples:
                examples = [ci["definition"] or sname]
                filled.append(sid)
            theme["subcodes"].append({"id": sid, "name": sname, "definition": definition,
                                      "use_when": ci["use_when"],
                                      "do_not_use_when": ci["do_not_use_when"],
                                      "examples": examples})
        themes.append(theme)
    if filled:
        warnings.warn(f"{len(filled)} sub-code(s) had no example utterances; their definition "
                      f"(or name) is used as the one example: {', '.join(filled)}",
                      stacklevel=2)
    out = {"name": name, "themes": themes}
    if description:
        out["description"] = description
    if none["definition"] or none["examples"]:
        out["none"] = {k: v for k, v in none.items() if v}
    if polarity:
        out["polarity"] = {k: {kk: vv for kk, vv in v.items() if vv}
                           for k, v in polarity.items()}
    return codebook_from_dict(out, path)


# -- .qdpx ------------------------------------------------------------------------------------
@dataclass
class ProjectInput:
    """Everything a project export needs, as plain data (built by ``project_input``)."""

    codebook: object
    coding: object           # effective coding frame (review.effective_coding)
    documents: list          # store.document(id) dicts (text, metadata, redacted, ...)
    run: dict | None
    memos: list              # dicts: id, segment_id, document_id, author, created_at, text
    name: str = "qual project"


def project_input(store, codebook, *, name: str = "qual project") -> ProjectInput:
    from .review import effective_coding

    coding = effective_coding(store)
    docs = [store.document(int(i)) for i in store.documents()["id"]]
    memos = store.memos().to_dict("records")
    return ProjectInput(codebook, coding, docs, store.latest_run("code"), memos, name)


def _dt(s) -> str | None:
    """An ISO time as xsd:dateTime (no milliseconds, 'Z' for UTC)."""
    if not s:
        return None
    s = str(s).replace("+00:00", "Z")
    return re.sub(r"\.\d+", "", s)


def provenance(run: dict | None, codebook, documents) -> str:
    red = [d for d in documents if d.get("redacted")]
    status = ("all documents redacted (pseudonymised)" if documents and len(red) == len(documents)
              else "not redacted" if not red
              else f"{len(red)} of {len(documents)} documents redacted")
    if run:
        r = (f"run {run['id']} ({run.get('finished_at') or run.get('started_at')}, model "
             f"{run.get('model_name')}), codebook version {run.get('codebook_version')}")
    else:
        r = f"no coding run; codebook version {codebook.version}"
    return f"Exported by qual {__version__}: {r}; redaction: {status}."


def build_project(inp: ProjectInput) -> tuple[bytes, dict[str, str]]:
    """``project.qde`` bytes and the sources to write: ``{"<guid>.txt": CRLF text}``."""
    from .coder import NONE, split_labels

    ns = PROJECT_NS
    run = inp.run or {}
    machine = guid("user", "machine")
    when = _dt(run.get("finished_at") or run.get("started_at"))
    root = etree.Element(f"{{{ns}}}Project", nsmap={None: ns},
                         name=inp.name, origin=f"qual {__version__}", creatingUserGUID=machine)
    if when:
        root.set("creationDateTime", when)
    cod = inp.coding
    coded = cod[(cod["source"] != "none")]
    reviewers = sorted({r for r in coded["reviewer"].dropna() if r})
    users = _el(root, ns, "Users")
    _el(users, ns, "User", {"guid": machine, "name": "qual (machine coding)", "id": "machine"})
    user_guid = {}
    for r in reviewers:
        user_guid[r] = guid("user", "reviewer", r)
        _el(users, ns, "User", {"guid": user_guid[r], "name": r, "id": f"reviewer:{r}"})

    book = _el(root, ns, "CodeBook")
    code_ids = _code_tree(book, ns, inp.codebook)

    keys = sorted({k for d in inp.documents for k in d["metadata"] if k != "encoding"})
    var_guid = {k: guid("variable", k) for k in keys}
    if keys:
        variables = _el(root, ns, "Variables")
        for k in keys:
            _el(variables, ns, "Variable", {"guid": var_guid[k], "name": k,
                                            "typeOfVariable": "Text"})

    src_guid = {d["id"]: guid("source", d["name"], d["text_sha256"]) for d in inp.documents}
    if inp.documents:
        cases = _el(root, ns, "Cases")
        for d in inp.documents:
            meta = d["metadata"]
            case = _el(cases, ns, "Case", {"guid": guid("case", d["name"]),
                                           "name": str(meta.get("stakeholder_id") or d["name"])})
            for k in keys:
                if meta.get(k) not in (None, "", []):
                    _value(case, ns, var_guid[k], meta[k])
            _el(case, ns, "SourceRef", {"targetGUID": src_guid[d["id"]]})

    notes = []  # (guid, title, text, author, created)
    memo_by_segment: dict[int, list[str]] = {}
    memo_by_doc: dict[int, list[str]] = {}
    for m in inp.memos:
        g = guid("memo", m.get("id"), m.get("created_at"))
        notes.append((g, f"Memo by {m.get('author')}", m.get("text", ""), m.get("author"),
                      m.get("created_at")))
        if pd.notna(m.get("segment_id")):
            memo_by_segment.setdefault(int(m["segment_id"]), []).append(g)
        elif pd.notna(m.get("document_id")):
            memo_by_doc.setdefault(int(m["document_id"]), []).append(g)

    sources = {}
    srcs = _el(root, ns, "Sources")
    for d in inp.documents:
        sg = src_guid[d["id"]]
        text, pos = to_crlf(d["text"])
        sources[f"{sg}.txt"] = text
        meta = d["metadata"]
        ts = _el(srcs, ns, "TextSource", {"guid": sg, "name": d["name"],
                                          "plainTextPath": f"internal://{sg}.txt",
                                          "creatingUser": machine,
                                          "creationDateTime": _dt(d.get("ingested_at"))})
        _el(ts, ns, "Description",
            f"{meta.get('stakeholder_id', '')} {meta.get('organisation', '')} "
            f"({meta.get('sector', '')}); "
            + ("redacted" if d.get("redacted") else "not redacted"))
        rows = coded[coded["document_id"] == d["id"]].sort_values("start")
        for r in rows.itertuples(index=False):
            themes = [t for t in split_labels(r.themes) if t != NONE]
            labels = themes + split_labels(r.subcodes)
            if r.polarity in ("barrier", "opportunity", "neutral") and themes:
                labels.append(r.polarity)
            labels = [c for c in labels if c in code_ids]
            if not labels:
                continue
            by = user_guid.get(r.reviewer, machine) if r.source == "reviewer" else machine
            at = _dt(r.decided_at) if r.source == "reviewer" else when
            start, end = pos[int(r.start)], pos[int(r.end)]
            sel_g = guid("selection", d["text_sha256"], int(r.start), int(r.end))
            sel = _el(ts, ns, "PlainTextSelection",
                      {"guid": sel_g, "name": f"{r.speaker}: {r.text[:60]}",
                       "startPosition": start, "endPosition": end,
                       "creatingUser": machine, "creationDateTime": when})
            conf = "" if r.source == "reviewer" else f", confidence {r.confidence:.2f}"
            _el(sel, ns, "Description",
                f"segment {r.segment_id}; {r.source}"
                + (f" ({r.reviewer})" if r.source == "reviewer" else "") + conf)
            for c in labels:
                coding = _el(sel, ns, "Coding", {"guid": guid("coding", sel_g, c, by),
                                                 "creatingUser": by, "creationDateTime": at})
                _el(coding, ns, "CodeRef", {"targetGUID": code_ids[c]})
            refs = list(memo_by_segment.get(int(r.segment_id), []))
            if isinstance(r.memo, str) and r.memo.strip():
                g = guid("decision-memo", r.segment_id, r.decided_at)
                notes.append((g, f"Review note by {r.reviewer}", r.memo, r.reviewer,
                              r.decided_at))
                refs.append(g)
            for g in refs:
                _el(sel, ns, "NoteRef", {"targetGUID": g})
        for g in memo_by_doc.get(d["id"], []):
            _el(ts, ns, "NoteRef", {"targetGUID": g})
        for k in keys:
            if meta.get(k) not in (None, "", []):
                _value(ts, ns, var_guid[k], meta[k])

    prov = provenance(inp.run, inp.codebook, inp.documents)
    prov_g = guid("note", "provenance")
    notes.insert(0, (prov_g, "About this export", prov, None, None))
    notes_el = _el(root, ns, "Notes")
    for g, title, text, author, created in notes:
        n = _el(notes_el, ns, "Note", {"guid": g, "name": title,
                                       "creatingUser": user_guid.get(author, machine),
                                       "creationDateTime": _dt(created) or when})
        _el(n, ns, "PlainTextContent", text)
    _el(root, ns, "Description", prov)
    _el(root, ns, "NoteRef", {"targetGUID": prov_g})
    return _serialise(root), sources


def _value(parent, ns, var_guid: str, value) -> None:
    vv = _el(parent, ns, "VariableValue")
    _el(vv, ns, "VariableRef", {"targetGUID": var_guid})
    if isinstance(value, list):
        value = "; ".join(str(v) for v in value)
    _el(vv, ns, "TextValue", str(value))


def write_qdpx(inp: ProjectInput, output) -> Path:
    """Write a ``.qdpx`` atomically. Entries are written in a fixed order with a fixed time,
    so the same store gives the same bytes."""
    from .export import atomic_path

    qde, sources = build_project(inp)
    with atomic_path(output, ".qdpx") as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            _write_entry(z, "project.qde", qde)
            for name in sorted(sources):
                _write_entry(z, f"sources/{name}", sources[name].encode("utf-8"))
    return Path(output)


def _write_entry(z: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    z.writestr(info, data)


def write_qdc(codebook, output) -> Path:
    from .export import atomic_path

    data = codebook_to_qdc(codebook)
    with atomic_path(output, ".qdc") as tmp:
        tmp.write_bytes(data)
    return Path(output)


#: the most XML read from a .qdc, or unpacked from a .qdpx's project.qde (a project of 50,000
#: coded segments is about 30 MB)
MAX_XML_BYTES = 200_000_000


def _xml_parser() -> etree.XMLParser:
    """lxml's parser with nothing fetched or expanded: no DTD loaded, no entities resolved (XXE,
    billion laughs), no network, no huge-tree override of libxml2's limits."""
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                           load_dtd=False, dtd_validation=False, remove_comments=True,
                           remove_pis=True)


def parse_xml(data: bytes, path: str | None = None):
    """The root element of a REFI-QDA XML file, parsed safely; a CodebookError naming the file
    (and line) when it is not well-formed or carries a DTD, which REFI-QDA files never do."""
    doctype = CodebookError("the XML has a document type declaration (<!DOCTYPE>), which "
                            "REFI-QDA files do not use; it is refused (it can declare entities "
                            "that read local files or expand without end)", path=path)
    if b"<!DOCTYPE" in data:
        raise doctype
    try:
        root = etree.fromstring(data, parser=_xml_parser())
    except etree.XMLSyntaxError as e:
        message = " ".join(str(e.msg or e).split())
        message = re.sub(r",? \(<string>, line \d+\)$|, line \d+, column \d+$", "", message)
        raise CodebookError(f"not well-formed XML: {message}", path=path,
                            line=e.lineno or None) from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:    # e.g. in UTF-16
        raise doctype
    return root


def _read_capped(p: Path) -> bytes:
    """The XML of a .qdc, or the project.qde of a .qdpx (a zip): at most MAX_XML_BYTES, checked
    against the sizes the zip declares and again while unpacking (a declared size can lie)."""
    limit = f"over qual's limit of {MAX_XML_BYTES:,} bytes"
    try:
        if not zipfile.is_zipfile(p):
            size = p.stat().st_size
            if size > MAX_XML_BYTES:
                raise CodebookError(f"the file is {size:,} bytes, {limit}", path=p)
            data = p.read_bytes()
            if data.startswith(b"PK\x03\x04"):
                raise CodebookError("this is the start of a zip (.qdpx) but the file is damaged "
                                    "or truncated (no zip directory at its end)", path=p)
            return data
        with zipfile.ZipFile(p) as z:
            try:
                info = z.getinfo("project.qde")
            except KeyError:
                raise CodebookError("this zip has no project.qde, so it is not a REFI-QDA "
                                    "project (.qdpx)", path=p) from None
            if info.file_size > MAX_XML_BYTES:
                raise CodebookError(f"its project.qde unpacks to {info.file_size:,} bytes, "
                                    f"{limit}", path=p)
            with z.open(info) as f:
                data = f.read(MAX_XML_BYTES + 1)
            if len(data) > MAX_XML_BYTES:
                raise CodebookError(f"its project.qde unpacks to more than its declared size "
                                    f"and {limit}", path=p)
            return data
    except OSError as e:
        raise CodebookError(f"cannot read: {e.strerror or e}", path=p) from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, RuntimeError,
            NotImplementedError, zlib.error) as e:
        raise CodebookError(f"cannot unpack this .qdpx: it is damaged or uses a kind of zip "
                            f"qual cannot read ({type(e).__name__}: {e})", path=p) from None


def read_qdc(path, *, name: str | None = None, description: str = ""):
    """A codebook from a ``.qdc`` file, or from the codebook of a ``.qdpx`` project. Every
    fault of the file (not XML, a DTD, a damaged or oversized zip, no project.qde, no codebook)
    is a CodebookError naming it; the XML is parsed with entities and DTDs off."""
    p = Path(path)
    if p.is_dir():
        raise CodebookError("is a folder, expected a .qdc or .qdpx file", path=p)
    root = parse_xml(_read_capped(p), str(p))
    if name is None:
        m = re.search(r"; codebook (.+) version [0-9a-f]+$", root.get("origin", ""))
        name = m.group(1) if m else None
    return qdc_to_codebook(root, name=name or p.stem.replace("_", " "),
                           description=description, path=str(p))
