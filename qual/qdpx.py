"""REFI-QDA exchange (QDA-XML 1.0): a coded project as ``.qdpx`` and the codebook as ``.qdc``.

A ``.qdpx`` is a zip holding ``project.qde`` (namespace ``urn:QDA-XML:project:1.0``) and
``sources/<guid>.txt``, one plain-text file per document. Choices, after the import pitfalls
the QDA tools' maintainers report (``shared/refi-qda/README.md``):

* UTF-8 without a byte-order mark; elements in the schema's order; the folder is ``sources``;
  no ``richTextPath``.
* Line ends: sources (and note files) are written with LF line ends by default, as qual holds
  them, so ``text[start:end]`` of an exported source is exactly the segment's text. QualCoder
  reads LF text as it is (a CRLF source it reads as LF and pads each line end with a space to
  keep CRLF-counted positions, so selections no longer equal the segments), and ATLAS.ti counts
  a CRLF as one character. MAXQDA is reported to want CRLF: ``line_endings="crlf"`` (``export
  --line-endings crlf``) writes CRLF and computes every position on the text *as written*.
  Either way, positions count Unicode code points (not bytes, not UTF-16 units: an emoji is one).
* GUIDs are ``uuid5`` of stable keys (code ids, the document's content hash, segment offsets,
  user names), so exporting the same store twice gives the same identifiers, and the project
  carries the run's time rather than the time of export, so the bytes are the same too.
* Users: one for the machine coding, one per reviewer or memo author. Each coded segment has
  one ``PlainTextSelection`` per user who coded it: the machine's (its run's codes, the run's
  time) and, when a reviewer's decision is in force, the reviewer's (``creatingUser`` the
  reviewer, the decision's time). QualCoder takes a coding's owner from its selection. A
  reviewer's rejection is a coding with ``Outside the themes``.
* Codes: the themes (codable: a segment carrying a theme is coded with it) with their
  sub-codes nested, colours and descriptions; plus a non-codable ``Polarity`` code holding
  ``barrier``/``opportunity``/``neutral``, and ``Outside the themes``, so the codebook's
  polarity and ``none`` guidance survive. Every code has a colour; names are unique across the
  tree (the codebook's own names are checked when it loads).
* Memos: a segment memo or a decision's memo is a ``Note`` holding its text and a
  ``PlainTextSelection`` of the segment's span, referenced from the source (QualCoder makes it
  an annotation) and from the author's selection of that segment when there is one. A document
  memo is in the source's description and a note with its own text file (a journal in
  QualCoder), as is "About this export", which is also the project's description.
* Cases: one per stakeholder (the document's ``stakeholder_id``; else each stakeholder speaker
  of a document), uniquely named, with a ``SourceRef`` to each of its documents. A metadata
  field whose value is the same in all of each stakeholder's documents is a case variable,
  any other a source variable: each variable is written in one place.

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
from dataclasses import dataclass, field
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


# -- line ends and the offsets into the text as written ----------------------------------
LINE_ENDINGS = ("lf", "crlf")
DEFAULT_LINE_ENDINGS = "lf"


def with_line_ends(text: str, line_endings: str = DEFAULT_LINE_ENDINGS) -> tuple[str, list[int]]:
    """``text`` as written with ``line_endings`` (``lf`` or ``crlf``), and ``pos``: ``pos[i]``
    is where character ``i`` of ``text`` lands (code points; ``pos[len(text)]`` is the end)."""
    if line_endings == "crlf":
        return to_crlf(text)
    if line_endings != "lf":
        raise QdaError(f"unknown line endings {line_endings!r} (expected lf or crlf)")
    if "\r" not in text:
        return text, list(range(len(text) + 1))
    out, pos, n = [], [], 0
    for i, ch in enumerate(text):
        pos.append(n)
        if ch == "\r" and text[i + 1:i + 2] == "\n":
            continue                    # the CR of a CRLF: its LF follows at the same place
        out.append("\n" if ch == "\r" else ch)
        n += 1
    pos.append(n)
    return "".join(out), pos


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


#: colours of the codes qual adds to the codebook's (Okabe-Ito vermilion, green, grey)
POLARITY_COLORS = {"barrier": "#d55e00", "opportunity": "#009e73", "neutral": "#999999"}
NONE_COLOR = "#7f7f7f"


def _code_tree(parent, ns: str, codebook) -> dict[str, str]:
    """Write the codebook as nested ``Code`` elements; return code id -> GUID. Every code has a
    colour, and every name is unique in the tree (ignoring case): a code qual adds
    (``Polarity``, the polarities, ``Outside the themes``) whose name a theme or sub-code already
    has is written with ``(qual)`` after it."""
    from . import POLARITIES

    taken = {" ".join(n.split()).casefold()
             for n in [t.name for t in codebook.themes] + [s.name for s in codebook.subcodes]}

    def own(name: str) -> str:
        while " ".join(name.split()).casefold() in taken:
            name += " (qual)"
        taken.add(" ".join(name.split()).casefold())
        return name

    ids: dict[str, str] = {}
    codes = _el(parent, ns, "Codes")
    for theme in codebook.themes:
        g = ids[theme.id] = guid("code", theme.id)
        t = _el(codes, ns, "Code", {"guid": g, "name": theme.name, "isCodable": "true",
                                    "color": theme.color or NONE_COLOR})
        _el(t, ns, "Description", describe(theme.definition, theme.use_when,
                                           theme.do_not_use_when, qual_id=theme.id))
        for sub in theme.subcodes:
            g = ids[sub.id] = guid("code", sub.id)
            s = _el(t, ns, "Code", {"guid": g, "name": sub.name, "isCodable": "true",
                                    "color": theme.color or NONE_COLOR})
            _el(s, ns, "Description", describe(sub.definition, sub.use_when,
                                               sub.do_not_use_when, sub.examples, sub.id))
    g = ids[POLARITY_CODE] = guid("code", POLARITY_CODE)
    p = _el(codes, ns, "Code", {"guid": g, "name": own("Polarity"), "isCodable": "false",
                                "color": POLARITY_COLORS["neutral"]})
    _el(p, ns, "Description", describe("Whether a passage describes a barrier, an opportunity "
                                       "or neither, read independently of its theme.",
                                       qual_id=POLARITY_CODE))
    for k in POLARITIES:
        g = ids[k] = guid("code", POLARITY_CODE, k)
        c = _el(p, ns, "Code", {"guid": g, "name": own(k), "isCodable": "true",
                                "color": POLARITY_COLORS.get(k, NONE_COLOR)})
        _el(c, ns, "Description", describe(codebook.polarity_definitions.get(k, ""),
                                           examples=codebook.polarity.get(k, []),
                                           qual_id=f"{POLARITY_CODE}.{k}"))
    # codable: a reviewer's rejection ("outside every theme") is a coding with it
    g = ids[NONE_CODE] = guid("code", NONE_CODE)
    n = _el(codes, ns, "Code", {"guid": g, "name": own("Outside the themes"),
                                "isCodable": "true", "color": NONE_COLOR})
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

    # qual needs code names unique across the tree; other tools allow a name twice under two
    # parents ("Other"), so a repeated name gets its parent's name, then a number, after it
    used_names: set[str] = set()
    renamed: list[str] = []

    def unique_name(name: str, parent: str = "") -> str:
        key = lambda s: " ".join(s.split()).casefold()  # noqa: E731
        out, n = name, 2
        if key(out) in used_names and parent:
            out = f"{name} ({parent})"
        while key(out) in used_names:
            out = f"{name} ({n})"
            n += 1
        if out != name:
            renamed.append(f"'{name}' -> '{out}'")
        used_names.add(key(out))
        return out

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
        cname = unique_name(cname)
        theme = {"id": tid, "name": cname, "definition": info["definition"] or cname,
                 "use_when": info["use_when"], "do_not_use_when": info["do_not_use_when"],
                 "subcodes": []}
        if code.get("color"):
            theme["color"] = code.get("color")
        children = code.findall(q("Code")) or [code]
        for child in children:
            ci = desc(child) if child is not code else {**info, "examples": info["examples"]}
            sname = child.get("name", "").strip() or "unnamed"
            # a code with no children is its theme's one sub-code, named apart from the theme
            sname = unique_name(f"{cname} (general)" if child is code else sname, cname)
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
    if renamed:
        warnings.warn(f"{len(renamed)} code name(s) were already used elsewhere in the "
                      f"codebook and were renamed: {', '.join(renamed)}", stacklevel=2)
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
    memos: list              # dicts: id, segment_id, document_id, author, created_at, text,
    #                          and for a segment memo the segment's start and end
    name: str = "qual project"
    decision_memos: list = field(default_factory=list)   # dicts: id, segment_id, document_id,
    #                          start, end, reviewer, created_at, action, memo
    line_endings: str = DEFAULT_LINE_ENDINGS


def project_input(store, codebook, *, name: str = "qual project",
                  line_endings: str = DEFAULT_LINE_ENDINGS) -> ProjectInput:
    from .review import effective_coding

    if line_endings not in LINE_ENDINGS:
        raise QdaError(f"unknown line endings {line_endings!r} (expected lf or crlf)")
    coding = effective_coding(store)
    docs = [store.document(int(i)) for i in store.documents()["id"]]
    # spans of every segment, replaced ones too: a memo or decision stays on the text it was
    # written about
    spans = store.segments(role=None, current_only=False).set_index("segment_id")[
        ["document_id", "start", "end"]]

    def span(segment_id) -> dict:
        if pd.isna(segment_id) or int(segment_id) not in spans.index:
            return {}
        row = spans.loc[int(segment_id)]
        return {"document_id": int(row["document_id"]), "start": int(row["start"]),
                "end": int(row["end"])}

    memos = [{**m, **span(m.get("segment_id"))} for m in store.memos().to_dict("records")]
    decisions = store.decisions()
    decision_memos = [
        {"id": int(d["id"]), "segment_id": int(d["segment_id"]), "reviewer": d["reviewer"],
         "created_at": d["created_at"], "action": d["action"], "memo": d["memo"].strip(),
         **span(d["segment_id"])}
        for d in decisions.to_dict("records")
        if isinstance(d.get("memo"), str) and d["memo"].strip()]
    return ProjectInput(codebook, coding, docs, store.latest_run("code"), memos, name,
                        [m for m in decision_memos if "start" in m], line_endings)


def _dt(s) -> str | None:
    """An ISO time as xsd:dateTime (no milliseconds, 'Z' for UTC)."""
    if not s or (isinstance(s, float) and s != s):
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


def about_text(inp: ProjectInput) -> str:
    """The project's "About this export" note: provenance, then how to read the positions."""
    ends = "CRLF" if inp.line_endings == "crlf" else "LF"
    return (provenance(inp.run, inp.codebook, inp.documents)
            + f" Sources are UTF-8 plain text with {ends} line ends; startPosition and "
              "endPosition count Unicode code points of the text as written (an emoji is one).")


def _key(name: str) -> str:
    return " ".join(str(name).split()).casefold()


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name (2)``, ``(3)``...: the first not in ``taken`` (ignoring case)."""
    out, n = name, 2
    while _key(out) in taken:
        out = f"{name} ({n})"
        n += 1
    taken.add(_key(out))
    return out


def _present(value) -> bool:
    if value is None or (isinstance(value, float) and value != value):
        return False
    return value not in ("", [])


def _stakeholder_cases(inp: ProjectInput) -> list[dict]:
    """One case per stakeholder: the document's ``stakeholder_id`` (all documents with it), or,
    without one, each stakeholder speaker of the document (qual's stakeholder rule, as in the
    summaries). Names are the id; else the document's name when it has one stakeholder speaker;
    else ``document: speaker``; made unique."""
    speakers: dict[int, list[str]] = {}
    cod = inp.coding
    for doc_id, speaker in cod[["document_id", "speaker"]].drop_duplicates().itertuples(
            index=False):
        if isinstance(speaker, str) and speaker.strip():
            speakers.setdefault(int(doc_id), []).append(speaker)
    cases: dict[tuple, dict] = {}
    for d in inp.documents:
        sid = d["metadata"].get("stakeholder_id")
        if _present(sid):
            c = cases.setdefault(("id", str(sid)), {"label": str(sid), "documents": [],
                                                    "speaker": None})
            c["documents"].append(d)
            continue
        spk = speakers.get(int(d["id"]), [])
        for s in spk:
            cases[("speaker", d["id"], s)] = {
                "label": d["name"] if len(spk) == 1 else f"{d['name']}: {s}",
                "documents": [d], "speaker": s}
    taken: set[str] = set()
    out = []
    for key, c in cases.items():
        c["name"] = _unique(c["label"], taken)
        c["guid"] = guid("case", *key[1:]) if key[0] == "speaker" else guid("case", key[1])
        names = ", ".join(d["name"] for d in c["documents"])
        c["description"] = (f"{c['speaker']}, a stakeholder speaking in {names}"
                            if c["speaker"] else
                            f"Stakeholder {c['label']}: "
                            f"{len(c['documents'])} document{'s' * (len(c['documents']) != 1)} "
                            f"({names})")
        out.append(c)
    return out


def _source_description(d: dict, memos: list[dict]) -> str:
    """Who the document is from and whether it was redacted, then its memos; only fields that
    have a value."""
    meta = d["metadata"]
    who = ", ".join(str(meta[k]) for k in ("stakeholder_id", "organisation")
                    if _present(meta.get(k)))
    if _present(meta.get("sector")):
        who = f"{who} ({meta['sector']})" if who else str(meta["sector"])
    parts = [p for p in (who, "redacted" if d.get("redacted") else "not redacted") if p]
    text = "; ".join(parts)
    for m in memos:
        text += f"\n\nMemo by {m.get('author')} ({m.get('created_at')}): {m.get('text', '')}"
    return text


def build_project(inp: ProjectInput) -> tuple[bytes, dict[str, str]]:
    """``project.qde`` bytes and the files to write under ``sources/``: ``{"<guid>.txt": text}``
    (the documents, with ``inp.line_endings``, and the text of the journal notes)."""
    from .coder import NONE, split_labels

    ns = PROJECT_NS
    run = inp.run or {}
    machine = guid("user", "machine")
    when = _dt(run.get("finished_at") or run.get("started_at")) or max(
        (_dt(d.get("ingested_at")) or "" for d in inp.documents), default="") or None
    root = etree.Element(f"{{{ns}}}Project", nsmap={None: ns},
                         name=inp.name, origin=f"qual {__version__}", creatingUserGUID=machine)
    if when:
        root.set("creationDateTime", when)
    cod = inp.coding
    coded = cod[(cod["source"] != "none")]
    docs_by_id = {int(d["id"]): d for d in inp.documents}

    # -- the selections of each document: one per (segment, user) ---------------------------
    def labels_of(themes, subcodes, polarity) -> list[str]:
        th = [t for t in split_labels(themes) if t != NONE]
        out = th + split_labels(subcodes)
        if th and polarity in ("barrier", "opportunity", "neutral"):
            out.append(polarity)
        return out

    selections: dict[int, list[dict]] = {}
    for r in coded.sort_values(["document_id", "start"]).itertuples(index=False):
        doc_id = int(r.document_id)
        if doc_id not in docs_by_id:
            continue
        base = {"segment_id": int(r.segment_id), "start": int(r.start), "end": int(r.end),
                "speaker": r.speaker, "text": r.text}
        machine_labels = labels_of(r.machine_themes, r.machine_subcodes, r.machine_polarity)
        if machine_labels:
            conf = r.confidence
            selections.setdefault(doc_id, []).append({
                **base, "user": None, "at": when, "labels": machine_labels,
                "what": "machine coding"
                        + (f", run {int(r.run_id)}" if pd.notna(r.run_id) else "")
                        + (f", confidence {conf:.2f}" if pd.notna(conf) else "")})
        if r.source == "reviewer" and isinstance(r.reviewer, str) and r.reviewer:
            labels = labels_of(r.themes, r.subcodes, r.polarity) or [NONE_CODE]
            selections.setdefault(doc_id, []).append({
                **base, "user": r.reviewer, "at": _dt(r.decided_at) or when, "labels": labels,
                "what": f"{r.reviewer}'s coding"
                        + (" (outside every theme)" if labels == [NONE_CODE] else "")})

    # -- notes: annotations on a segment's span, journals with a text file of their own ------
    annotations: dict[int, list[dict]] = {}
    for m in inp.memos:
        if _present(m.get("segment_id")) and "start" in m and m["document_id"] in docs_by_id:
            annotations.setdefault(m["document_id"], []).append({
                "guid": guid("memo", m.get("id"), m.get("created_at")), "user": m.get("author"),
                "at": m.get("created_at"), "text": m.get("text", ""),
                "name": f"Memo by {m.get('author')}", "segment_id": int(m["segment_id"]),
                "start": m["start"], "end": m["end"]})
    for m in inp.decision_memos:
        if m["document_id"] in docs_by_id:
            annotations.setdefault(m["document_id"], []).append({
                "guid": guid("decision-memo", m["id"]), "user": m["reviewer"],
                "at": m["created_at"], "text": m["memo"],
                "name": f"Review note by {m['reviewer']} ({m['action']})",
                "segment_id": m["segment_id"], "start": m["start"], "end": m["end"]})
    doc_memos: dict[int, list[dict]] = {}
    for m in inp.memos:
        if not _present(m.get("segment_id")) and _present(m.get("document_id")) \
                and int(m["document_id"]) in docs_by_id:
            doc_memos.setdefault(int(m["document_id"]), []).append(m)
    journal_names: set[str] = set()
    journals = [{"guid": guid("note", "provenance"), "user": None, "at": when,
                 "name": _unique("About this export", journal_names), "text": about_text(inp)}]
    for doc_id, ms in doc_memos.items():
        for m in ms:
            journals.append({"guid": guid("memo", m.get("id"), m.get("created_at")),
                             "user": m.get("author"), "at": m.get("created_at"),
                             "name": _unique(f"Memo by {m.get('author')} on "
                                             f"{docs_by_id[doc_id]['name']}", journal_names),
                             "text": m.get("text", "")})

    # -- users: the machine, then everyone who owns a selection or a note -------------------
    people = sorted({s["user"] for ss in selections.values() for s in ss if s["user"]}
                    | {a["user"] for aa in annotations.values() for a in aa if a["user"]}
                    | {j["user"] for j in journals if j["user"]})
    users = _el(root, ns, "Users")
    _el(users, ns, "User", {"guid": machine, "name": "qual (machine coding)", "id": "machine"})
    user_guid: dict[str | None, str] = {None: machine}
    for r in people:
        user_guid[r] = guid("user", "reviewer", r)
        _el(users, ns, "User", {"guid": user_guid[r], "name": r, "id": f"reviewer:{r}"})

    book = _el(root, ns, "CodeBook")
    code_ids = _code_tree(book, ns, inp.codebook)

    # -- variables: each written once, on the cases or on the sources -----------------------
    cases = _stakeholder_cases(inp)
    keys = sorted({k for d in inp.documents for k in d["metadata"] if k != "encoding"})

    def norm(v):
        return None if not _present(v) else ("; ".join(map(str, v)) if isinstance(v, list)
                                            else str(v))

    case_keys = [k for k in keys if all(
        len({norm(d["metadata"].get(k)) for d in c["documents"]}) == 1 for c in cases)]
    source_keys = [k for k in keys if k not in case_keys]
    var_guid = {k: guid("variable", k) for k in keys}
    if keys:
        variables = _el(root, ns, "Variables")
        for k in keys:
            v = _el(variables, ns, "Variable", {"guid": var_guid[k], "name": k,
                                                "typeOfVariable": "Text"})
            _el(v, ns, "Description", "a case variable: the same in each of a stakeholder's "
                "documents" if k in case_keys else "a document variable")

    src_guid = {d["id"]: guid("source", d["name"], d["text_sha256"]) for d in inp.documents}
    if cases:
        cases_el = _el(root, ns, "Cases")
        for c in cases:
            case = _el(cases_el, ns, "Case", {"guid": c["guid"], "name": c["name"]})
            _el(case, ns, "Description", c["description"])
            first = c["documents"][0]["metadata"]
            for k in case_keys:
                if _present(first.get(k)):
                    _value(case, ns, var_guid[k], first[k])
            for d in c["documents"]:
                _el(case, ns, "SourceRef", {"targetGUID": src_guid[d["id"]]})

    # -- sources -----------------------------------------------------------------------------
    files: dict[str, str] = {}
    note_spans: dict[str, tuple[int, int]] = {}
    srcs = _el(root, ns, "Sources")
    for d in inp.documents:
        sg = src_guid[d["id"]]
        text, pos = with_line_ends(d["text"], inp.line_endings)
        files[f"{sg}.txt"] = text
        meta = d["metadata"]
        ts = _el(srcs, ns, "TextSource", {"guid": sg, "name": d["name"],
                                          "plainTextPath": f"internal://{sg}.txt",
                                          "creatingUser": machine,
                                          "creationDateTime": _dt(d.get("ingested_at"))})
        _el(ts, ns, "Description", _source_description(d, doc_memos.get(int(d["id"]), [])))
        notes_here = annotations.get(int(d["id"]), [])
        for a in notes_here:
            note_spans[a["guid"]] = (pos[a["start"]], pos[a["end"]])
        for s in selections.get(int(d["id"]), []):
            by = user_guid[s["user"]]
            key = ("selection", d["text_sha256"], s["start"], s["end"]) + (
                ("reviewer", s["user"]) if s["user"] else ())
            sel_g = guid(*key)
            sel = _el(ts, ns, "PlainTextSelection",
                      {"guid": sel_g, "name": f"{s['speaker']}: {s['text'][:60]}",
                       "startPosition": pos[s["start"]], "endPosition": pos[s["end"]],
                       "creatingUser": by, "creationDateTime": s["at"]})
            _el(sel, ns, "Description", f"segment {s['segment_id']}; {s['what']}")
            for c in s["labels"]:
                if c not in code_ids:
                    continue
                coding = _el(sel, ns, "Coding", {"guid": guid("coding", sel_g, c),
                                                 "creatingUser": by,
                                                 "creationDateTime": s["at"]})
                _el(coding, ns, "CodeRef", {"targetGUID": code_ids[c]})
            for a in notes_here:
                if a["segment_id"] == s["segment_id"] and a["user"] == s["user"]:
                    _el(sel, ns, "NoteRef", {"targetGUID": a["guid"]})
        for a in notes_here:
            _el(ts, ns, "NoteRef", {"targetGUID": a["guid"]})
        for k in source_keys:
            if _present(meta.get(k)):
                _value(ts, ns, var_guid[k], meta[k])

    notes_el = _el(root, ns, "Notes")
    for j in journals:
        files[f"{j['guid']}.txt"] = with_line_ends(j["text"], inp.line_endings)[0]
        at = _dt(j["at"]) or when
        _el(notes_el, ns, "Note", {"guid": j["guid"], "name": j["name"],
                                   "plainTextPath": f"internal://{j['guid']}.txt",
                                   "creatingUser": user_guid[j["user"]], "creationDateTime": at,
                                   "modifyingUser": user_guid[j["user"]], "modifiedDateTime": at})
    for d in inp.documents:
        for a in annotations.get(int(d["id"]), []):
            at = _dt(a["at"]) or when
            n = _el(notes_el, ns, "Note", {"guid": a["guid"], "name": a["name"],
                                           "creatingUser": user_guid[a["user"]],
                                           "creationDateTime": at,
                                           "modifyingUser": user_guid[a["user"]],
                                           "modifiedDateTime": at})
            _el(n, ns, "PlainTextContent", a["text"])
            start, end = note_spans[a["guid"]]
            _el(n, ns, "PlainTextSelection", {"guid": guid("note-selection", a["guid"]),
                                              "startPosition": start, "endPosition": end})
    _el(root, ns, "Description", about_text(inp))
    _el(root, ns, "NoteRef", {"targetGUID": journals[0]["guid"]})
    return _serialise(root), files


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


def read_zip_entry(z: zipfile.ZipFile, name: str, limit: int, path, *, missing: str,
                   what: str | None = None, limit_name: str = "qual's limit",
                   error: type[QualError] = CodebookError) -> bytes:
    """The bytes of the entry ``name`` of the open zip ``z``, at most ``limit``: checked against
    the size the zip declares and again while unpacking, since a declared size can lie (a zip
    bomb). Each fault is an ``error`` naming ``path``: ``missing`` when there is no such entry,
    else "WHAT unpacks to N bytes, over LIMIT_NAME of LIMIT bytes", where ``what`` (``name``
    unless given) and ``limit_name`` are the caller's words. Damage found while unpacking
    (BadZipFile, zlib.error, ...) is left to the caller, which says what it was reading."""
    what = what or name
    over = f"over {limit_name} of {limit:,} bytes"
    try:
        info = z.getinfo(name)
    except KeyError:
        raise error(missing, path=path) from None
    if info.file_size > limit:
        raise error(f"{what} unpacks to {info.file_size:,} bytes, {over}", path=path)
    with z.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise error(f"{what} unpacks to more than its declared size and {over}", path=path)
    return data


def _read_capped(p: Path) -> bytes:
    """The XML of a .qdc, or the project.qde of a .qdpx (a zip): at most MAX_XML_BYTES, checked
    against the sizes the zip declares and again while unpacking (:func:`read_zip_entry`)."""
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
            return read_zip_entry(z, "project.qde", MAX_XML_BYTES, p, what="its project.qde",
                                  missing="this zip has no project.qde, so it is not a "
                                          "REFI-QDA project (.qdpx)")
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
