"""Word (``.docx``): paragraphs, runs, styles and speaker tables, read from the XML with each
style resolved once per document."""

from __future__ import annotations

import collections
import io
import posixpath
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ReadError
from .base import (_Builder, _LabelPolicy, _SECTION_RE, _TS_RE, _clean_name, _clean_text,
                   _clean_texts,
                   _has_honorific, _label_shape, _norm, _norm_ts, _role_word, _stage_text)

# --------------------------------------------------------------------------------------------
# Word: .docx
# --------------------------------------------------------------------------------------------

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_W_R, _W_HYPERLINK, _W_T, _W_BR = _W + "r", _W + "hyperlink", _W + "t", _W + "br"
_W_RPR, _W_VAL = _W + "rPr", _W + "val"
_W_P, _W_TBL = _W + "p", _W + "tbl"
_W_RUN_TEXT = {_W + "tab": "\t", _W + "ptab": "\t", _W + "cr": "\n", _W + "noBreakHyphen": "-"}
_W_B, _W_I, _W_RSTYLE = _W + "b", _W + "i", _W + "rStyle"


class _DocxRun:
    """One ``w:r`` element: its text and its bold, italic and character style properties as
    written (None where absent), read in one pass over its children."""

    __slots__ = ("text", "b", "i", "style")

    def __init__(self, r):
        out = []
        b = i = style = None
        seen_props = False
        for e in r:
            tag = e.tag
            if tag == _W_T:
                out.append(e.text or "")
            elif tag == _W_BR:
                if e.get(_W + "type", "textWrapping") == "textWrapping":
                    out.append("\n")
            elif tag in _W_RUN_TEXT:
                out.append(_W_RUN_TEXT[tag])
            elif tag == _W_RPR and not seen_props:        # python-docx reads the first
                seen_props = True
                for prop in e:
                    name = prop.tag
                    if name == _W_B:
                        b = prop if b is None else b
                    elif name == _W_I:
                        i = prop if i is None else i
                    elif name == _W_RSTYLE:
                        style = prop if style is None else style
        self.b, self.i, self.style = b, i, style
        self.text = out[0] if len(out) == 1 else "".join(out)


class _Styles:
    """The styles part of one document, looked up as python-docx's ``get_style`` does: a
    style id names the first ``w:style`` with that id if it is of the asked type, else (or
    for no id) the type's default style, the last one marked ``w:default``.

    A styles part written by Word or python-docx is hundreds of kilobytes of definitions, of
    which a transcript uses two or three: parsing it whole cost more than reading the
    transcript. So a look-up finds its ``w:style`` start tag in the bytes, and only the styles
    looked up are parsed. A part this can't read exactly (a comment, CDATA or DOCTYPE, another
    prefix for the main namespace, an entity or a namespace declaration in a style's tag) is
    parsed whole instead."""

    _ROOT = re.compile(rb"<w:styles(?=[\s>])([^>]*)>")
    _UNSURE = re.compile(rb"<!|<w:style(?=[\s/>])[^>]*(?:&|xmlns)")
    _DEFAULTS = re.compile(rb"<w:style(?=[\s/>])([^>]*\sw:default\s*=[^>]*)>")
    _ATTR = re.compile(rb"""([^\s=]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
    _NS = b"http://schemas.openxmlformats.org/wordprocessingml/2006/main"

    def __init__(self, data: bytes | None):
        from docx.oxml.simpletypes import ST_OnOff

        self._on_off = ST_OnOff.convert_from_xml
        self._data = data or b""
        self._root = b""
        self._defaults: dict[str, object] = {}
        self._parsed: list | None = None      # (type, id, default, element) when parsed whole
        root = self._ROOT.search(self._data)
        if data and (root is None or b"&" in root.group(1)
                     or self._attrs(root.group(1)).get(b"xmlns:w") != self._NS
                     or self._UNSURE.search(data)):
            self._parse_whole(data)
        elif root is not None:
            self._root = root.group(0)

    def _attrs(self, raw: bytes) -> dict[bytes, bytes]:
        return {m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
                for m in self._ATTR.finditer(raw)}

    def _on(self, value) -> bool:
        try:
            return bool(value is not None and self._on_off(value))
        except Exception:  # noqa: BLE001 - python-docx raises on a bad on/off value
            return False

    def _parse_whole(self, data: bytes) -> None:
        from docx.oxml.parser import parse_xml

        self._parsed = []
        try:
            root = parse_xml(data)
        except Exception:  # noqa: BLE001 - an unreadable styles part: no styles
            return
        for el in root.iterchildren(_W + "style"):
            self._parsed.append((el.get(_W + "type"), el.get(_W + "styleId"),
                                 self._on(el.get(_W + "default")), el))

    def _element(self, start: int, tag_end: int, raw: bytes):
        """Parse the ``w:style`` whose start tag spans ``start``..``tag_end``."""
        from docx.oxml.parser import parse_xml

        if raw.endswith(b"/"):
            end = tag_end
        else:
            end = self._data.find(b"</w:style>", tag_end)
            if end < 0:
                return None
            end += len(b"</w:style>")
        try:
            return parse_xml(self._root + self._data[start:end] + b"</w:styles>")[0]
        except Exception:  # noqa: BLE001 - a style that does not parse: no properties
            return None

    def _default(self, kind: str):
        if not self._defaults:
            found: dict[str, object] = {}      # type -> its last default, in one pass
            if self._parsed is not None:
                for type_, _sid, default, el in self._parsed:
                    if default and type_:
                        found[type_] = el
            elif self._root:
                for m in self._DEFAULTS.finditer(self._data):
                    attrs = self._attrs(m.group(1))
                    type_ = attrs.get(b"w:type")
                    if type_ and self._on(attrs.get(b"w:default", b"").decode("utf-8", "replace")):
                        found[type_.decode("utf-8", "replace")] = m
                found = {k: self._element(m.start(), m.end(), m.group(1))
                         for k, m in found.items()}
            self._defaults = found or {"": None}
        return self._defaults.get(kind)

    def get(self, sid: str | None, kind: str):
        """The ``w:style`` element python-docx would give for ``sid`` and ``kind``
        ("paragraph", "character"), or None."""
        if sid and self._parsed is not None:
            for type_, style_id, _default, el in self._parsed:
                if style_id == sid:
                    return el if type_ == kind else self._default(kind)
        elif sid and self._root:
            quoted = re.escape(sid.encode("utf-8"))
            m = re.search(rb"<w:style(?=[\s/>])([^>]*?\sw:styleId\s*=\s*(?:\"" + quoted
                          + rb"\"|'" + quoted + rb"')[^>]*)>", self._data)
            if m is not None:
                if self._attrs(m.group(1)).get(b"w:type") == kind.encode():
                    return self._element(m.start(), m.end(), m.group(1))
                return self._default(kind)
        return self._default(kind)


class _DocxReader:
    """Paragraph text, styles and bold/italic of one document, read from its XML elements.

    python-docx looks a paragraph's or run's style up by searching the document's whole style
    list on every access (milliseconds a paragraph: a 16,000-paragraph document took minutes)
    and runs an XPath query for every text access. Here each style is looked up once per style
    id (a style depends only on its id), and each run's children are read once; the results
    are what python-docx's ``Paragraph.text``, ``Run.text``, ``Run.bold``/``italic`` and
    ``style`` give (``bench/docx_speed.py`` and ``tests/test_readers.py`` compare the two)."""

    def __init__(self, styles: _Styles):
        from docx.oxml.simpletypes import ST_OnOff

        self._styles = styles
        self._on_off = ST_OnOff.convert_from_xml
        self._paragraph: dict[str | None, str] = {}
        self._run: dict[str | None, tuple[bool, bool]] = {}

    def paragraph(self, p) -> tuple[str, list[_DocxRun], str | None]:
        """(text, its direct runs, paragraph style id) of a ``w:p`` element: text as
        python-docx's ``Paragraph.text`` (runs and hyperlinks' runs), runs as ``.runs``."""
        out, runs, style = [], [], None
        for e in p:
            tag = e.tag
            if tag == _W_R:
                run = _DocxRun(e)
                runs.append(run)
                out.append(run.text)
            elif tag == _W_HYPERLINK:
                out.extend(_DocxRun(r).text for r in e.iterchildren(_W_R))
            elif tag == _W + "pPr" and style is None:
                ps = e.find(_W + "pStyle")
                if ps is not None:
                    style = ps.get(_W_VAL)
        return "".join(out), runs, style

    def style_name(self, sid: str | None) -> str:
        """The UI name of the paragraph style (python-docx's ``style.name``), "" if none."""
        if sid not in self._paragraph:
            from docx.styles import BabelFish

            el = self._styles.get(sid, "paragraph")
            name = el.find(_W + "name") if el is not None else None
            value = name.get(_W_VAL) if name is not None else None
            self._paragraph[sid] = BabelFish.internal2ui(value) if value else ""
        return self._paragraph[sid]

    def _run_style(self, sid: str | None) -> tuple[bool, bool]:
        """(bold, italic) set on the character style itself (python-docx's ``style.font``)."""
        if sid not in self._run:
            el = self._styles.get(sid, "character")
            rpr = el.find(_W_RPR) if el is not None else None
            flags = []
            for tag in (_W + "b", _W + "i"):
                prop = rpr.find(tag) if rpr is not None else None
                flags.append(prop is not None and self._value(prop))
            self._run[sid] = (flags[0], flags[1])
        return self._run[sid]

    def _value(self, el) -> bool:
        """A w:b / w:i element: on unless its w:val says off (a bad value counts as off)."""
        value = el.get(_W_VAL)
        if value is None:
            return True
        try:
            return bool(self._on_off(value))
        except Exception:  # noqa: BLE001 - python-docx raises on a bad on/off value
            return False

    def _flag(self, run: _DocxRun, el, index: int) -> bool:
        if el is not None:
            return self._value(el)
        sid = run.style.get(_W_VAL) if run.style is not None else None
        return self._run_style(sid)[index]

    def is_bold(self, run: _DocxRun) -> bool:
        return self._flag(run, run.b, 0)

    def is_italic(self, run: _DocxRun) -> bool:
        return self._flag(run, run.i, 1)


@dataclass
class _DocPara:
    text: str
    bold_label: str | None = None
    bold_rest: str = ""
    bold_only: str | None = None      # the whole paragraph is bold, no colon
    heading: bool = False
    italic: bool = False
    table_turn: tuple | None = None   # (speaker, text, timestamp)


_TABLE_SPEAKER_HEADERS = {"speaker", "name", "who", "person", "participant"}
_TABLE_TEXT_HEADERS = {"text", "utterance", "transcript", "speech", "content", "dialogue",
                       "response", "what was said", "comment"}


def _docx_paragraph(p, reader: _DocxReader) -> _DocPara:
    """One ``w:p`` element as a _DocPara: its text, and whether it opens with a bold label,
    is bold on its own, is a heading (by style) or is all italic."""
    text, all_runs, style_id = reader.paragraph(p)
    style = reader.style_name(style_id)
    item = _DocPara(text=text)
    if style.startswith("Heading") or style in ("Title", "Subtitle"):
        item.heading = True
        return item
    runs = [r for r in all_runs if r.text]
    prefix = ""
    for r in runs:
        if reader.is_bold(r):
            prefix += r.text
        elif not prefix and not r.text.strip():
            prefix += r.text
        else:
            break
    if prefix.strip() and text.startswith(prefix):
        rest = text[len(prefix):]
        cand = prefix.strip()
        colon = cand.endswith(":") or rest.lstrip().startswith(":")
        cand = _clean_name(cand.rstrip(":"))
        rest = rest.lstrip()
        if rest.startswith(":"):
            rest = rest[1:]
        if _label_shape(cand) and (rest.strip() or colon):
            item.bold_label, item.bold_rest = cand, rest
        elif not rest.strip() and not colon:
            item.bold_only = " ".join(text.split())
    if runs and all(reader.is_italic(r) for r in runs if r.text.strip()):
        item.italic = True
    return item


def _docx_table(table) -> list[_DocPara]:
    rows = []
    for row in table.rows:
        cells = []
        prev = None
        for c in row.cells:
            if prev is not None and c._tc is prev:      # merged cells repeat
                continue
            prev = c._tc
            cells.append(c.text.strip())
        rows.append(cells)
    out: list[_DocPara] = []
    if not rows:
        return out
    header = [c.lower() for c in rows[0]]
    has_header = (any(h in _TABLE_SPEAKER_HEADERS for h in header)
                  and any(h in _TABLE_TEXT_HEADERS for h in header))
    parsed = []
    for cells in rows[1:] if has_header else rows:
        ts = None
        if len(cells) >= 3 and _TS_RE.match(cells[0]):
            ts, cells = _norm_ts(cells[0]), cells[1:]
        elif len(cells) >= 3 and _TS_RE.match(cells[1]):
            ts, cells = _norm_ts(cells[1]), [cells[0]] + cells[2:]
        if len(cells) >= 2:
            speaker = _clean_name(cells[0].rstrip(":"))
            body = "\n".join(c for c in cells[1:] if c)
            parsed.append((speaker, body, ts, cells))
        else:
            parsed.append((None, "", None, cells))
    speakers = [p[0] for p in parsed if p[0] and _label_shape(p[0])]
    repeated = any(speakers.count(s) >= 2 for s in set(speakers))
    is_transcript = has_header or (len(parsed) >= 3 and repeated)
    for speaker, body, ts, cells in parsed:
        if is_transcript and speaker and _label_shape(speaker):
            out.append(_DocPara(text=body, table_turn=(speaker, body, ts)))
        elif any(cells):        # a continuation row, or a table that is not a transcript
            out.append(_DocPara(text=" | ".join(c for c in cells if c)))
    return out


_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"


def _relations(archive: zipfile.ZipFile, names: dict[str, str], part: str) -> dict[str, str]:
    """Relationship type (its last path step, e.g. "officeDocument", "styles") -> the target
    part's name in the archive, for ``part`` ("" for the package), internal targets only."""
    from docx.oxml.parser import parse_xml

    folder, base = posixpath.split(part)
    rels = names.get(posixpath.join(folder, "_rels", base + ".rels").lower())
    out: dict[str, str] = {}
    if rels is None:
        return out
    for rel in parse_xml(archive.read(rels)).iterchildren(_RELS):
        kind, target = rel.get("Type", ""), rel.get("Target", "")
        if rel.get("TargetMode") == "External" or not target:
            continue
        name = target.lstrip("/") if target.startswith("/") else \
            posixpath.normpath(posixpath.join(folder, target))
        out.setdefault(kind.rsplit("/", 1)[-1], name)
    return out


def _open_package(archive: zipfile.ZipFile, path: Path):
    """The main document's root element (parsed as python-docx parses it) and its styles.

    Only the two parts a transcript needs are read: ``docx.Document`` parses every XML part of
    the package (the styles alone are ~350 kB in python-docx's template), which took longer
    than reading the transcript."""
    from docx.oxml.parser import parse_xml

    names = {info.filename.lower(): info.filename for info in archive.infolist()}
    main = _relations(archive, names, "").get("officeDocument", "word/document.xml")
    if main.lower() not in names:
        raise ReadError(f"not a Word .docx file: its main document part ({main}) is missing",
                        path=path)
    root = parse_xml(archive.read(names[main.lower()]))
    if root.tag != _W + "document":
        raise ReadError("not a Word .docx file: its main part is not a Word document "
                        f"({_local_name(root.tag)})", path=path)
    styles = _relations(archive, names, main).get("styles")
    data = archive.read(names[styles.lower()]) if styles and styles.lower() in names else None
    return root, _Styles(data)


def _local_name(tag: str) -> str:
    """An element's tag without its namespace."""
    return tag.rsplit("}", 1)[-1]


def _parse_docx(data: bytes, path: Path, max_bytes: int) -> _Builder:
    if not data.startswith(b"PK"):
        raise ReadError("not a Word .docx file (a .docx is a zip archive and this is not one; "
                        "old .doc files must be saved again as .docx)", path=path)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ReadError("cannot open this Word .docx file: it is corrupt or truncated "
                        f"({exc})", path=path) from None
    if unpacked > 4 * max_bytes:
        raise ReadError(f"this .docx unpacks to {unpacked:,} bytes, over 4 x the limit of "
                        f"{max_bytes:,} bytes (max_bytes)", path=path)
    try:
        from docx.table import Table

        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            root, styles = _open_package(archive, path)
        items: list[_DocPara] = []
        reader = _DocxReader(styles)
        body = root.find(_W + "body")
        # the body's paragraphs and tables in order, as python-docx's iter_inner_content
        # gives them, without a wrapper object per paragraph
        for el in (body.iterchildren(_W_P, _W_TBL) if body is not None else ()):
            if el.tag == _W_TBL:
                items.extend(_docx_table(Table(el, None)))
            else:
                items.append(_docx_paragraph(el, reader))
    except ReadError:
        raise
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise ReadError(f"python-docx is needed to read .docx files ({exc})", path=path) from None
    except Exception as exc:  # noqa: BLE001 - wrap any library error as a ReadError
        raise ReadError("cannot open this Word .docx file: it is corrupt or truncated "
                        f"({type(exc).__name__}: {exc})", path=path) from None

    texts = _clean_texts([it.text for it in items], path)
    policy = None

    def label_policy() -> _LabelPolicy:
        """The plain-label policy of the whole file, built the first time a paragraph needs
        it: in a transcript typed with bold labels no paragraph does, and building it reads
        every paragraph's first line for labels (a third of reading such a file)."""
        nonlocal policy
        if policy is None:
            policy = _LabelPolicy([t.split("\n", 1)[0] for t in texts])
            for it in items:
                if it.bold_label:
                    policy.trusted.add(_norm(it.bold_label))
        return policy

    bold_only = collections.Counter(_norm(it.bold_only) for it in items if it.bold_only)

    b = _Builder()
    for it, text in zip(items, texts):
        if not text.strip():
            continue
        if it.table_turn is not None:
            speaker, body, ts = it.table_turn
            b.close_turn()
            b.open_turn(speaker, ts)
            for ln in _clean_text(body, path).split("\n"):
                if ln.strip():
                    b.continue_line(ln.strip())
            continue
        if it.heading:
            b.line(" ".join(text.split()), heading=True)
            continue
        lines = [ln.strip() for ln in text.split("\n")]
        if it.bold_only:
            # a bold line on its own: a speaker name above the utterance, or a heading
            name = it.bold_only
            key = _norm(name)
            if _label_shape(name) and (bold_only[key] >= 2 or key in label_policy().trusted
                                       or _role_word(name) or _has_honorific(name)):
                b.close_turn()
                b.open_turn(name)
                continue
            if len(name.split()) <= 12 and not name.endswith((".", "?", "!", ",", ";", ":")):
                b.line(name, heading=True)
                continue
        if it.bold_label:
            b.close_turn()
            b.open_turn(it.bold_label)
            rest = it.bold_rest if text is it.text or text == it.text else \
                _clean_text(it.bold_rest, path)          # (cleaning changed nothing: reuse)
            first = [ln.strip() for ln in rest.split("\n")]
            body = [ln for ln in first if ln]
            if body:
                b.cur.paras.append(body)
            continue
        m = label_policy().match(lines[0])
        if m is not None:
            b.close_turn()
            b.open_turn(m.speaker, m.timestamp)
            body = [ln for ln in [m.rest] + lines[1:] if ln]
            if body:
                b.cur.paras.append(body)
            continue
        joined = " ".join(text.split())
        if len(lines) == 1 and (_SECTION_RE.match(joined)):
            b.line(joined, heading=True)
            continue
        stage = _stage_text(joined)
        if stage is None and it.italic and len(joined) <= 200 and (
                joined.startswith(("(", "[")) or joined.isupper() or
                re.search(r"\((?:sworn|affirmed)\)", joined, re.I)):
            stage = joined
        if stage is not None:
            b.line(stage, heading=False)
            continue
        body = [ln for ln in lines if ln]
        b.new_paragraph(body[0])
        for ln in body[1:]:
            b.continue_line(ln)
    return b
