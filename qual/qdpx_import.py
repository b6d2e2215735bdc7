"""REFI-QDA import: a ``.qdpx`` project (QualCoder, NVivo, ATLAS.ti, MAXQDA or qual itself)
read into plain data a qual store can take: transcripts, their segments, and each user's
codings as that reviewer's decisions.

The work is split so that nothing is half-written: ``read_project`` parses and checks the
whole file and ``plan_import`` reads, segments and maps everything in memory; only
``apply_import`` writes, through the store's and ``qual.review``'s own functions.

* The XML is parsed with ``qual.qdpx.parse_xml`` (no DTD, no entities, no network) from
  ``qual.qdpx._read_capped`` (project.qde at most ``MAX_XML_BYTES``, checked against the zip's
  declared sizes and again while unpacking); each source's text is read by the same
  ``qual.qdpx.read_zip_entry``, capped at ``max_bytes``.
  Only sources inside the zip (``internal://``) or inline (``PlainTextContent``) are read:
  a path to a file elsewhere on this machine is never followed.
* Each text source goes through qual's own reader (as a plain-text transcript), so ``Name:
  text`` lines become speaker turns and the segmenter cuts it like any transcript. A text
  without speaker labels becomes one stakeholder turn per paragraph, spoken by the source.
* Selections' positions (Unicode code points into the source as written) are carried onto
  the text qual keeps by its non-space characters, which the reader never changes (it only
  normalises line ends and blank lines), so CRLF sources land on the right words.
* Codes map to the codebook by qual's own GUIDs, then by the ``[qual id: ...]`` line of a
  description, then by name (ignoring case and spacing; ids match too). Codes that map to
  nothing are reported; ``add_codes_under`` adds them as sub-codes of a theme, with the text
  they were used on as examples.
* A user's codings become decisions by that user on every stakeholder segment a selection
  overlaps: themes, sub-codes and polarity from all of the user's codes on it, a reject when
  the only code is ``Outside the themes``. qual's own machine user is skipped: a machine
  coding is not a reviewer's decision.
"""

from __future__ import annotations

import bisect
import difflib
import re
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

from lxml import etree

from .errors import QualError
from .qdpx import (MAX_XML_BYTES, NONE_CODE, POLARITY_CODE, PROJECT_NS, QdaError, _read_capped,
                   _slug, guid, parse_description, parse_xml, read_zip_entry)

MACHINE_USER = "qual (machine coding)"
NO_SPEAKER_ROLE = "stakeholder"


# -- the file ---------------------------------------------------------------------------------
@dataclass
class Selection:
    start: int
    end: int
    user: str
    codes: list[str]                 # code GUIDs


@dataclass
class Source:
    name: str
    text: str                        # as written in the file (decoded)
    data: bytes
    metadata: dict
    selections: list[Selection] = field(default_factory=list)


@dataclass
class Code:
    guid: str
    name: str
    description: str
    parent: str | None


@dataclass
class Project:
    path: str
    sources: list[Source]
    codes: dict[str, Code]           # guid -> Code
    skipped: list[str] = field(default_factory=list)   # what was not read, and why


def _q(tag: str, ns: str) -> str:
    return f"{{{ns}}}{tag}" if ns else tag


def _unique(name: str, taken: set[str]) -> str:
    out, n = name, 2
    while out.casefold() in taken:
        out = f"{name} ({n})"
        n += 1
    taken.add(out.casefold())
    return out


def _int(value, what: str, path: str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise QdaError(f"{what} is not a whole number: {str(value)[:40]!r}", path=path) from None
    if n < 0:
        raise QdaError(f"{what} is negative: {n}", path=path)
    return n


def _value_of(vv, ns: str) -> str | None:
    for tag in ("TextValue", "BooleanValue", "IntegerValue", "FloatValue", "DateValue",
                "DateTimeValue"):
        e = vv.find(_q(tag, ns))
        if e is not None and e.text is not None:
            return e.text.strip()
    return None


def _variables(el, ns: str, names: dict[str, str]) -> dict:
    out = {}
    for vv in el.findall(_q("VariableValue", ns)):
        ref = vv.find(_q("VariableRef", ns))
        name = names.get(ref.get("targetGUID")) if ref is not None else None
        value = _value_of(vv, ns)
        if name and value:
            out[name] = value
    return out


def read_project(path, *, max_bytes: int = 50_000_000) -> Project:
    """The sources, codes and codings of a ``.qdpx``. Every fault of the file is a QualError
    naming it; nothing is read from outside the zip."""
    from .readers import decode_text

    p = Path(path)
    where = str(p)
    if not p.exists():
        raise QdaError("file not found", path=where)
    if p.is_dir():
        raise QdaError("is a folder, expected a .qdpx file", path=where)
    if not zipfile.is_zipfile(p):
        raise QdaError("not a REFI-QDA project (.qdpx): it is not a zip file", path=where)
    try:
        root = parse_xml(_read_capped(p), where)
    except QualError as e:
        raise QdaError(e.message, path=where, line=e.line) from None
    ns = etree.QName(root).namespace or ""
    if root.tag != _q("Project", ns) or ns not in (PROJECT_NS, ""):
        raise QdaError(f"not a REFI-QDA project: its root element is <{root.tag}>, expected "
                       f"<Project> in {PROJECT_NS}", path=where)

    users = {u.get("guid"): (u.get("name") or u.get("id") or u.get("guid") or "").strip()
             for u in root.iterfind(f"{_q('Users', ns)}/{_q('User', ns)}")}
    machine = {g for g, n in users.items() if n == MACHINE_USER}
    default_user = root.get("creatingUserGUID")

    def user(*guids) -> str:
        for g in guids:
            if g:
                if g in machine:
                    return MACHINE_USER
                return users.get(g) or g
        return "(unknown user)"

    codes: dict[str, Code] = {}

    def walk(el, parent):
        for c in el.findall(_q("Code", ns)):
            g = c.get("guid") or ""
            d = c.find(_q("Description", ns))
            codes[g] = Code(g, (c.get("name") or "").strip(), (d.text or "") if d is not None
                            else "", parent)
            walk(c, g)

    book = root.find(_q("CodeBook", ns))
    if book is not None and book.find(_q("Codes", ns)) is not None:
        walk(book.find(_q("Codes", ns)), None)

    var_names = {v.get("guid"): (v.get("name") or "").strip()
                 for v in root.iterfind(f"{_q('Variables', ns)}/{_q('Variable', ns)}")}
    case_meta: dict[str, dict] = {}
    for case in root.iterfind(f"{_q('Cases', ns)}/{_q('Case', ns)}"):
        values = _variables(case, ns, var_names)
        for ref in case.findall(_q("SourceRef", ns)):
            case_meta.setdefault(ref.get("targetGUID"), {}).update(values)

    sources: list[Source] = []
    skipped: list[str] = []
    taken: set[str] = set()
    src_el = root.find(_q("Sources", ns))
    try:
        z = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as e:
        raise QdaError(f"cannot open the zip: {e}", path=where) from None
    with z:
        total = 0
        for el in (list(src_el) if src_el is not None else []):
            if not isinstance(el.tag, str):
                continue
            kind = el.tag.rsplit("}", 1)[-1]
            name = (el.get("name") or "").strip() or el.get("guid") or "unnamed source"
            if kind != "TextSource":
                skipped.append(f"{name}: a {kind}, not a text source")
                continue
            inline = el.find(_q("PlainTextContent", ns))
            ref = el.get("plainTextPath") or ""
            if inline is not None and inline.text:
                text = inline.text
                data = text.encode("utf-8")
            elif ref.startswith("internal://"):
                entry = "sources/" + ref[len("internal://"):]
                missing = f"the source file {entry} named in project.qde is not in the zip"
                try:
                    data = read_zip_entry(z, entry, max_bytes, where, missing=missing,
                                          limit_name="the limit", error=QdaError)
                except (zipfile.BadZipFile, EOFError, ValueError, RuntimeError,
                        NotImplementedError, zlib.error, OSError) as e:
                    raise QdaError(f"cannot unpack {entry}: {type(e).__name__}: {e}",
                                   path=where) from None
                try:
                    text, _ = decode_text(data, Path(entry), what="text source")
                except QualError as e:
                    raise QdaError(f"source '{name}': {e.message}", path=where) from None
            elif ref:
                skipped.append(f"{name}: its text is a file outside the project "
                               f"({ref[:80]}), which is not read")
                continue
            else:
                skipped.append(f"{name}: no plain text")
                continue
            total += len(data)
            if total > MAX_XML_BYTES:
                raise QdaError(f"its sources unpack to more than {MAX_XML_BYTES:,} bytes in "
                               "all, over qual's limit", path=where)
            if not text.strip():
                skipped.append(f"{name}: empty")
                continue
            meta = dict(case_meta.get(el.get("guid"), {}))
            meta.update(_variables(el, ns, var_names))
            src = Source(_unique(name, taken), text, data, meta)
            for sel in el.findall(_q("PlainTextSelection", ns)):
                start = _int(sel.get("startPosition"), f"source '{name}': startPosition",
                             where)
                end = _int(sel.get("endPosition"), f"source '{name}': endPosition", where)
                if start > end or end > len(text):
                    raise QdaError(f"source '{name}': a selection [{start}, {end}) lies outside "
                                   f"its text of {len(text)} characters", path=where)
                by: dict[str, list[str]] = {}
                for coding in sel.findall(_q("Coding", ns)):
                    cref = coding.find(_q("CodeRef", ns))
                    if cref is None or not cref.get("targetGUID"):
                        continue
                    who = user(coding.get("creatingUser"), sel.get("creatingUser"),
                               default_user)
                    by.setdefault(who, []).append(cref.get("targetGUID"))
                for who, cs in by.items():
                    src.selections.append(Selection(start, end, who, cs))
            sources.append(src)
    if not sources:
        raise QdaError("the project holds no text source to import"
                       + (f" ({'; '.join(skipped[:5])})" if skipped else ""), path=where)
    return Project(where, sources, codes, skipped)


# -- codes ------------------------------------------------------------------------------------
def _key(s: str) -> str:
    s = re.sub(r"(\s*\(qual\))+$", "", " ".join(str(s).split()))
    return s.casefold()


def map_codes(project: Project, codebook) -> dict[str, str]:
    """Code GUID -> a label of qual's: a theme id, a sub-code id, a polarity, or ``none``.
    Codes that map to nothing are left out."""
    from . import POLARITIES

    labels = [*codebook.theme_ids, *codebook.subcode_ids]
    by_guid = {guid("code", i): i for i in labels}
    by_guid.update({guid("code", POLARITY_CODE, k): k for k in POLARITIES})
    by_guid[guid("code", NONE_CODE)] = NONE_CODE
    by_id = {i: i for i in labels}
    by_id.update({f"{POLARITY_CODE}.{k}": k for k in POLARITIES})
    by_id[NONE_CODE] = NONE_CODE
    by_name = {_key(t.name): t.id for t in codebook.themes}
    by_name.update({_key(s.name): s.id for s in codebook.subcodes})
    by_name.update({_key(i): i for i in labels})
    by_name.update({k: k for k in POLARITIES})
    by_name[_key("Outside the themes")] = NONE_CODE
    out = {}
    for g, c in project.codes.items():
        qid = parse_description(c.description)["id"]
        label = by_guid.get(g) or by_id.get(qid) or by_name.get(_key(c.name))
        if label:
            out[g] = label
    return out


def used_unknown_codes(project: Project, mapping: dict) -> dict[str, list[str]]:
    """Code GUID -> the texts coded with it, for each code used in a coding (by a user other
    than qual's machine) that maps to nothing in the codebook."""
    out: dict[str, list[str]] = {}
    for src in project.sources:
        for s in src.selections:
            if s.user == MACHINE_USER:
                continue
            for g in s.codes:
                if g not in mapping:
                    out.setdefault(g, []).append(" ".join(src.text[s.start:s.end].split()))
    return out


def code_name(project: Project, g: str) -> str:
    c = project.codes.get(g)
    return c.name if c and c.name else f"(a code not in the codebook, {g})"


def add_codes(codebook, project: Project, unknown: dict[str, list[str]], theme: str):
    """The codebook with each unknown code added as a sub-code of ``theme`` (its description
    as definition, up to five texts coded with it as examples), and GUID -> new sub-code id."""
    from .codebook import add_subcode

    new_ids = {}
    for g, texts in unknown.items():
        c = project.codes.get(g) or Code(g, "", "", None)
        name = c.name or f"Imported code {len(new_ids) + 1}"
        base = f"{theme}.{_slug(name).removeprefix('c_') or 'imported'}"
        sid, n = base, 2
        while sid in codebook.subcode_ids:
            sid, n = f"{base}_{n}", n + 1
        definition = parse_description(c.description)["definition"] or \
            f"Imported code '{name}'"
        examples = list(dict.fromkeys(t for t in texts if t))[:5] or [definition]
        codebook = add_subcode(codebook, theme, sid, name, definition, examples)
        new_ids[g] = sid
    return codebook, new_ids


# -- positions --------------------------------------------------------------------------------
class PositionMap:
    """Carries positions in ``src`` onto ``dst``, a text with the same non-space characters
    (or nearly: matched with difflib where they differ)."""

    def __init__(self, src: str, dst: str):
        self.a = [i for i, ch in enumerate(src) if not ch.isspace()]
        self.b = [i for i, ch in enumerate(dst) if not ch.isspace()]
        self.dst_len = len(dst)
        a_chars = "".join(src[i] for i in self.a)
        b_chars = "".join(dst[i] for i in self.b)
        if a_chars == b_chars:
            self.to: list[int | None] = list(range(len(self.a)))
        else:
            self.to = [None] * len(self.a)
            sm = difflib.SequenceMatcher(None, a_chars, b_chars, autojunk=False)
            for i, j, n in sm.get_matching_blocks():
                for k in range(n):
                    self.to[i + k] = j + k

    def span(self, start: int, end: int) -> tuple[int, int] | None:
        """``[start, end)`` of the source as ``[s, e)`` of qual's text: from its first to its
        last non-space character; None when nothing of it arrived."""
        k0, k1 = bisect.bisect_left(self.a, start), bisect.bisect_left(self.a, end)
        mapped = [self.to[k] for k in range(k0, k1) if self.to[k] is not None]
        if not mapped:
            return None
        return self.b[mapped[0]], self.b[mapped[-1]] + 1


# -- the plan: everything read, segmented and mapped, nothing written yet ---------------------
@dataclass
class PlannedDocument:
    transcript: object
    segments: list
    decisions: dict = field(default_factory=dict)   # (user, segment index) -> set of labels


@dataclass
class Plan:
    documents: list[PlannedDocument]
    codebook: object
    mapped: dict[str, str]
    unknown: dict[str, list[str]]                    # guid -> coded texts (left out)
    added: dict[str, str]                            # guid -> new sub-code id
    machine_selections: int = 0
    unplaced: int = 0          # selections on no stakeholder segment (interviewer, gone text)
    speakerless: list[str] = field(default_factory=list)


def _as_transcript(src: Source, max_bytes: int, where: str):
    """``src`` read by qual's own plain-text reader; a text without speaker labels is one
    stakeholder turn per paragraph, spoken by the source."""
    from .errors import ReadError
    from .hashing import sha256_bytes
    from .model import Transcript, Turn
    from .readers import read_transcript

    with tempfile.TemporaryDirectory(prefix="qual-import-") as tmp:
        f = Path(tmp) / "source.txt"
        f.write_bytes(src.text.encode("utf-8"))
        try:
            t = read_transcript(f, metadata=src.metadata, max_bytes=max_bytes)
            return replace(t, name=src.name, path=f"{where}#{src.name}",
                           sha256=sha256_bytes(src.data)), False
        except ReadError as e:
            if "speaker turn" not in e.message and "stakeholder turn" not in e.message:
                raise QdaError(f"source '{src.name}': {e.message}", path=where) from None
    text = src.text.replace("\r\n", "\n").replace("\r", "\n")
    turns = [Turn(speaker=src.name, start=m.start(), end=m.end(), role=NO_SPEAKER_ROLE)
             for m in re.finditer(r"\S(?:.*\S)?(?:\n[ \t]*\S.*)*", text)]
    for t in turns:                              # trim each paragraph's trailing space
        while t.end > t.start and text[t.end - 1].isspace():
            t.end -= 1
    return Transcript(name=src.name, text=text, turns=turns, metadata=dict(src.metadata),
                      path=f"{where}#{src.name}", format="txt",
                      sha256=sha256_bytes(src.data)), True


def plan_import(project: Project, codebook, *, nlp=None, segment_params=None,
                add_codes_under: str | None = None, max_bytes: int = 50_000_000) -> Plan:
    from .segment import SegmentParams, make_nlp, segment

    segment_params = segment_params or SegmentParams()
    mapped = map_codes(project, codebook)
    unknown = used_unknown_codes(project, mapped)
    added: dict[str, str] = {}
    if add_codes_under is not None:
        if add_codes_under not in codebook.theme_ids:
            raise QdaError(f"--theme: unknown theme '{add_codes_under}' (themes: "
                           f"{', '.join(codebook.theme_ids)})", path=project.path)
        if unknown:
            codebook, added = add_codes(codebook, project, unknown, add_codes_under)
            mapped = {**mapped, **added}
            unknown = {}
    plan = Plan([], codebook, mapped, unknown, added)
    nlp = nlp or make_nlp()
    for src in project.sources:
        transcript, speakerless = _as_transcript(src, max_bytes, project.path)
        if speakerless:
            plan.speakerless.append(src.name)
        segs = segment(transcript, nlp, segment_params)
        doc = PlannedDocument(transcript, segs)
        pos = PositionMap(src.text, transcript.text)
        coded = [(i, s.start, s.end) for i, s in enumerate(segs) if s.role == "stakeholder"]
        starts = [c[1] for c in coded]
        for sel in src.selections:
            if sel.user == MACHINE_USER:
                plan.machine_selections += 1
                continue
            labels = {mapped[g] for g in sel.codes if g in mapped}
            if not labels:
                continue
            span = pos.span(sel.start, sel.end)
            hit = []
            if span:
                s, e = span
                k = max(bisect.bisect_right(starts, s) - 1, 0)
                while k < len(coded) and coded[k][1] < e:
                    if coded[k][2] > s:
                        hit.append(coded[k][0])
                    k += 1
            if not hit:
                plan.unplaced += 1
            for i in hit:
                doc.decisions.setdefault((sel.user, i), set()).update(labels)
        plan.documents.append(doc)
    return plan


def decision_of(labels: set[str], codebook) -> dict:
    """A user's labels on one segment as a decision: ``reject`` when only ``none`` (or a
    polarity alone), else a ``recode`` with themes, sub-codes and polarity."""
    from . import POLARITIES

    themes = [t for t in codebook.theme_ids if t in labels]
    subcodes = [s for s in codebook.subcode_ids if s in labels]
    polarity = next((p for p in ("barrier", "opportunity", "neutral") if p in labels
                     and p in POLARITIES), "neutral")
    if not themes and not subcodes:
        return {"action": "reject"}
    return {"action": "recode", "themes": themes, "subcodes": subcodes, "polarity": polarity}


def apply_import(plan: Plan, store, *, segment_params=None) -> dict:
    """Store the planned documents and apply the decisions with ``qual.review``. Returns
    counts: documents, segments, decisions per reviewer."""
    from .hashing import sha256_text
    from .review import apply_decision
    from .segment import SegmentParams

    segment_params = segment_params or SegmentParams()
    per_reviewer: dict[str, int] = {}
    n_segments = 0
    for doc in plan.documents:
        t = doc.transcript
        existing = store.find_document(t.name, t.sha256)
        if existing is None:
            doc_id = store.add_document(t, doc.segments, text_sha256=sha256_text(t.text),
                                        parameters=vars(segment_params))
        else:
            doc_id = existing
            store.set_current(existing)
        stored = store.segments(role=None, document_id=doc_id)
        ids = {(int(r.start), int(r.end)): int(r.segment_id)
               for r in stored.itertuples(index=False)}
        n_segments += len(stored)
        for (user, i), labels in sorted(doc.decisions.items(), key=lambda kv: (kv[0][1],
                                                                              kv[0][0])):
            seg = doc.segments[i]
            seg_id = ids.get((seg.start, seg.end))
            if seg_id is None:
                continue
            d = decision_of(labels, plan.codebook)
            apply_decision(store, seg_id, user, d.pop("action"), codebook=plan.codebook, **d)
            per_reviewer[user] = per_reviewer.get(user, 0) + 1
    return {"documents": len(plan.documents), "segments": n_segments,
            "decisions": dict(sorted(per_reviewer.items()))}
