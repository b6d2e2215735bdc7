"""Word (``.docx``): paragraphs, runs, styles and speaker tables, read from the XML with each
style resolved once per document."""

from __future__ import annotations

import collections
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ReadError
from .base import (_Builder, _LabelPolicy, _SECTION_RE, _TS_RE, _clean_name, _clean_text,
                   _has_honorific, _label_shape, _norm, _norm_ts, _role_word, _stage_text)

# --------------------------------------------------------------------------------------------
# Word: .docx
# --------------------------------------------------------------------------------------------

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_W_R, _W_HYPERLINK, _W_T, _W_BR = _W + "r", _W + "hyperlink", _W + "t", _W + "br"
_W_RPR, _W_VAL = _W + "rPr", _W + "val"
_W_P, _W_TBL = _W + "p", _W + "tbl"
_W_RUN_TEXT = {_W + "tab": "\t", _W + "ptab": "\t", _W + "cr": "\n", _W + "noBreakHyphen": "-"}
_W_RUN_PROPS = {_W + "b": "b", _W + "i": "i", _W + "rStyle": "style"}


class _DocxRun:
    """One ``w:r`` element: its text and its bold, italic and character style properties as
    written (None where absent), read in one pass over its children."""

    __slots__ = ("text", "b", "i", "style")

    def __init__(self, r):
        out = []
        self.b = self.i = self.style = None
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
                    name = _W_RUN_PROPS.get(prop.tag)
                    if name is not None and getattr(self, name) is None:
                        setattr(self, name, prop)
        self.text = "".join(out)


class _DocxReader:
    """Paragraph text, styles and bold/italic of one document, read from its XML elements.

    python-docx looks a paragraph's or run's style up by searching the document's whole style
    list on every access (milliseconds a paragraph: a 16,000-paragraph document took minutes)
    and runs an XPath query for every text access. Here each style is looked up once per style
    id (a style depends only on its id), and each run's children are read once; the results
    are what python-docx's ``Paragraph.text``, ``Run.text``, ``Run.bold``/``italic`` and
    ``style`` give (``bench/docx_speed.py`` compares the two on generated documents)."""

    def __init__(self, document):
        from docx.enum.style import WD_STYLE_TYPE
        from docx.oxml.simpletypes import ST_OnOff

        self._part = document.part
        self._types = WD_STYLE_TYPE
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
        if sid not in self._paragraph:
            try:
                style = self._part.get_style(sid, self._types.PARAGRAPH)
                self._paragraph[sid] = (style.name or "") if style is not None else ""
            except Exception:  # noqa: BLE001 - unreadable style: treat as body text
                self._paragraph[sid] = ""
        return self._paragraph[sid]

    def _run_style(self, sid: str | None) -> tuple[bool, bool]:
        if sid not in self._run:
            flags = []
            for attr in ("bold", "italic"):
                try:
                    style = self._part.get_style(sid, self._types.CHARACTER)
                    flags.append(bool(getattr(style.font, attr)) if style is not None else False)
                except Exception:  # noqa: BLE001 - a broken style is just "not bold"
                    flags.append(False)
            self._run[sid] = (flags[0], flags[1])
        return self._run[sid]

    def _flag(self, run: _DocxRun, el, index: int) -> bool:
        if el is not None:                # w:b / w:i: on unless its w:val says off
            value = el.get(_W_VAL)
            return True if value is None else self._on_off(value)
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
        import docx
        from docx.table import Table

        document = docx.Document(io.BytesIO(data))
        items: list[_DocPara] = []
        reader = _DocxReader(document)
        body = document.element.body
        # the body's paragraphs and tables in order, as python-docx's iter_inner_content
        # gives them, without a wrapper object per paragraph
        for el in body.iterchildren(_W_P, _W_TBL):
            if el.tag == _W_TBL:
                items.extend(_docx_table(Table(el, document._body)))
            else:
                items.append(_docx_paragraph(el, reader))
    except ReadError:
        raise
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise ReadError(f"python-docx is needed to read .docx files ({exc})", path=path) from None
    except Exception as exc:  # noqa: BLE001 - wrap any library error as a ReadError
        raise ReadError("cannot open this Word .docx file: it is corrupt or truncated "
                        f"({type(exc).__name__}: {exc})", path=path) from None

    texts = [_clean_text(it.text, path) for it in items]
    policy = _LabelPolicy([t.split("\n", 1)[0] for t in texts])
    for it in items:
        if it.bold_label:
            policy.trusted.add(_norm(it.bold_label))
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
            if _label_shape(name) and (bold_only[key] >= 2 or key in policy.trusted
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
        m = policy.match(lines[0])
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
