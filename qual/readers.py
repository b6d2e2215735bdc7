"""Readers: transcript files -> :class:`~qual.model.Transcript` (plain text + speaker turns).

This is the edge of the flow where files are touched. Every reader builds the same thing:

* ``Transcript.text`` -- a clean plain text a reviewer reads. Each speaker turn starts with
  ``Name: `` followed by the utterance; markup around labels is stripped (``**Name**:``,
  ``[Name]``, ``<v Name>``, timestamps); headings and stage directions (``*(Pause)*``,
  ``*DR X (sworn).*``, ``Title`` + ``=====``) are kept as their own lines but are not turns;
  a paragraph without a label continues the previous speaker's turn and keeps its paragraph
  break; blocks (turns, headings, stage directions) are separated by one blank line; line
  endings are ``\\n``.
* ``Transcript.turns`` -- one :class:`~qual.model.Turn` per speaker turn, whose ``[start, end)``
  covers the utterance only (not the label), stripped of surrounding whitespace, so that
  ``text[start:end]`` is the utterance. This invariant is held by a property test for every
  format.
* roles -- assigned by :func:`assign_roles` (see its docstring for the precedence).

Supported formats: ``.txt``, ``.md``, ``.rst`` (one parser: ``Name:``, ``**Name**:``,
``**Name:**``, ``*Name*:``, ``[Name] text``, ``Q:``/``A:``, ``Q.``/``A.``, optional
timestamps ``[00:01:02] Name:`` / ``Name (00:01:02):``, Otter-style ``Name  0:03`` lines,
YAML front matter), ``.docx`` (python-docx: bold or plain labels, headings by style, italic
stage directions, speaker/text tables), ``.vtt`` and ``.srt`` (parsed here, not with
webvtt-py, so that every malformed cue is reported with its line number; ``<v Name>`` voice
tags or ``Name:`` prefixes; consecutive cues of one speaker merge into one turn).

Every bad input raises :class:`~qual.errors.ReadError` with one human message naming the file
(and the line where there is one); no other exception escapes for bad content.
"""

from __future__ import annotations

import collections
import csv
import datetime as _dt
import html
import io
import os
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .errors import QualWarning, ReadError
from .hashing import sha256_bytes
from .model import Transcript, Turn

__all__ = [
    "SUPPORTED",
    "read_transcript",
    "find_transcripts",
    "read_metadata",
    "assign_roles",
]

SUPPORTED = (".txt", ".md", ".rst", ".docx", ".vtt", ".srt")

METADATA_FILE = "metadata.csv"
_IGNORED_NAMES = {"metadata.csv", "redact.txt"}
_KNOWN_COLUMNS = ("stakeholder_id", "organisation", "sector", "role", "interview_date",
                  "interviewers", "stakeholders")
_NAME_LIST_COLUMNS = ("interviewers", "stakeholders")


# --------------------------------------------------------------------------------------------
# Words that decide roles and labels
# --------------------------------------------------------------------------------------------

_INTERVIEWER_WORDS = {"q", "question", "questioner", "interviewer", "int", "i", "moderator",
                      "facilitator", "counsel", "researcher"}
_STAKEHOLDER_WORDS = {"a", "answer", "respondent", "interviewee", "participant", "witness",
                      "the witness", "r", "p"}
_CHAIR_WORDS = {"chair", "chairman", "chairwoman", "chairperson", "the chair",
                "the chairman", "the chairwoman", "judge", "the judge", "my lady", "my lord"}
_CHAIR_TITLES = {"lady", "lord", "baroness", "judge"}
_HONORIFICS = {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame",
               "lady", "lord", "baroness", "baron", "cllr", "councillor", "rev", "revd",
               "judge", "justice", "the"}
# Words dropped when names are compared (titles, post-nominals, particles).
_NAME_NOISE = _HONORIFICS | {"kc", "qc", "mp", "ms.", "mr.", "dr.", "to", "of", "for", "and",
                             "on", "behalf", "from", "by"}
_CONNECTORS = {"of", "the", "to", "for", "and", "de", "da", "di", "du", "van", "von", "der",
               "den", "la", "le", "al", "bin", "ibn", "y", "e", "on", "behalf"}
# Capitalised words that often end in a colon in prose or headers and are not speakers.
_NOT_LABELS = {
    "note", "notes", "nb", "n.b.", "ps", "p.s.", "example", "examples", "e.g.", "eg", "i.e.",
    "source", "sources", "date", "time", "duration", "location", "venue", "place", "subject",
    "title", "summary", "warning", "caution", "important", "tip", "hint", "update", "edit",
    "agenda", "action", "actions", "outcome", "result", "results", "attendees", "present",
    "apologies", "transcript", "recording", "project", "file", "topic", "theme", "themes",
    "keywords", "re", "cc", "to", "from", "sent", "comment", "comments", "definition",
    "reference", "references", "see", "also", "aim", "aims", "purpose", "objective",
    "objectives", "background", "context", "conclusion", "conclusions", "method", "methods",
    "status", "version", "author", "organisation", "organization", "sector", "role",
    "interview", "interview date", "interview id", "participant id", "case", "code", "codes",
    "total", "step", "figure", "table", "appendix", "chapter", "section", "yes", "no", "so",
    "well", "and", "but", "however", "then", "now", "here", "there", "first", "second",
    "third", "finally", "next", "last", "lastly", "remember", "please", "thanks", "q&a",
    "faq", "http", "https", "www", "warning", "question id", "key point", "key points",
}
_QUESTION_WORDS = {"what", "why", "how", "when", "where", "who", "whom", "whose", "which",
                   "could", "can", "would", "will", "should", "shall", "do", "does", "did",
                   "is", "are", "was", "were", "have", "has", "had", "tell", "describe",
                   "explain", "may", "might", "isn't", "aren't", "don't", "didn't"}


# --------------------------------------------------------------------------------------------
# Patterns
# --------------------------------------------------------------------------------------------

_TS = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"
_TS_RE = re.compile(rf"^{_TS}$")
_LEAD_TS_RE = re.compile(rf"^(?:\[({_TS})\]|\(({_TS})\)|({_TS}))\s+(?=\S)")
_MARKED_LABEL_RE = re.compile(
    rf"^(\*\*|__|\*|_)(?P<name>[^*_:\n]{{1,60}}?)\s*(?P<c1>:)?\s*\1"
    rf"(?:\s*[\[(](?P<ts>{_TS})[\])])?\s*(?P<c2>:)?(?:\s+(?P<rest>.*)|$)")
_BRACKET_LABEL_RE = re.compile(r"^\[(?P<name>[^\[\]:\n]{1,60})\]\s*(?P<c>:)?(?:\s+(?P<rest>.*)|$)")
_PLAIN_LABEL_RE = re.compile(
    rf"^(?P<name>[^:\n\[\]()*]{{1,60}}?)\s*(?:[\[(](?P<ts>{_TS})[\])])?\s*:(?:\s+(?P<rest>.*)|$)")
_QA_DOT_RE = re.compile(r"^(?P<name>[QA])\.(?:\s+(?P<rest>.*)|$)")
_OTTER_RE = re.compile(rf"^(?P<name>[^:\n\[\]()*]{{1,60}}?)\s+\(?(?P<ts>{_TS})\)?$")

_UNDERLINE_RE = re.compile(r"^([=\-~^\"'`#*+_:.])\1{2,}$")
_ATX_RE = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*$")
_SECTION_RE = re.compile(
    r"^(?:further\s+)?(?:questions?|examination|cross[- ]examination|re-examination|"
    r"submissions?|closing\s+(?:statement|submissions?)|opening\s+(?:statement|submissions?))"
    r"\s+(?:from|by|on\s+behalf\s+of)\s+(?P<name>[^.?!:;,]{1,80})$", re.IGNORECASE)
_STAGE_RES = (
    re.compile(r"^\*(?P<inner>[^*\s](?:[^*]*[^*\s])?)\*$"),
    re.compile(r"^_(?P<inner>[^_\s](?:[^_]*[^_\s])?)_$"),
)
_PAREN_STAGE_RE = re.compile(r"^\([^()]*\)\.?$|^\[[^\[\]]*\]$")
_SWORN_RE = re.compile(r"^\s*\*?\s*(?P<name>[^()*\n]{2,80}?)\s*\((?:sworn|affirmed)\)\.?\s*\*?\s*$",
                       re.IGNORECASE | re.MULTILINE)
_CALLS_WITNESS_RE = re.compile(
    r"\b(?:may (?:I|we)(?: now)?(?: please)? call|I (?:now )?call|(?:our|the) next witness is)"
    r"\s+(?:the\s+)?[A-Z]", re.IGNORECASE)
_SECTION_LINE_RE = re.compile(_SECTION_RE.pattern, re.IGNORECASE | re.MULTILINE)

_VTT_TIMING_RE = re.compile(
    r"^(?P<s>(?:\d+:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?)[ \t]+-->[ \t]+"
    r"(?P<e>(?:\d+:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?)(?:[ \t]+.*)?$")
_SRT_TIMING_RE = re.compile(
    r"^(?P<s>\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,3})?)[ \t]*-->[ \t]*"
    r"(?P<e>\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,3})?)(?:[ \t]+.*)?$")
_VOICE_RE = re.compile(r"<v(?:\.[^\s>]*)?(?:\s+(?P<name>[^>]*))?>", re.IGNORECASE)
_TAG_RE = re.compile(r"<[^<>]*>")
_SRT_STYLE_RE = re.compile(r"\{\\[^{}]*\}")

_LINE_BREAKS = str.maketrans({"\u2028": "\n", "\u2029": "\n", "\x85": "\n", "\x0b": "\n",
                              "\x0c": "\n"})
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ufeff]")


# --------------------------------------------------------------------------------------------
# Intermediate blocks and the renderer shared by all formats
# --------------------------------------------------------------------------------------------

@dataclass
class _Block:
    kind: str                       # "turn" | "line"
    speaker: str | None = None
    paras: list = field(default_factory=list)   # list[list[str]]: paragraphs of lines
    timestamp: str | None = None
    end_timestamp: str | None = None


class _Builder:
    """Collects turns and free lines in reading order, then renders text and offsets."""

    def __init__(self):
        self.blocks: list[_Block] = []
        self.cur: _Block | None = None      # the open turn
        self.resume: str | None = None      # speaker to resume after a stage direction

    # -- turns --
    def open_turn(self, speaker: str, timestamp: str | None = None):
        self.cur = _Block("turn", speaker=speaker, timestamp=timestamp)
        self.blocks.append(self.cur)
        self.resume = None

    def close_turn(self):
        if self.cur is not None:
            self.resume = self.cur.speaker
        self.cur = None

    def new_paragraph(self, line: str):
        """A paragraph without a label: continues the open turn, resumes the speaker after a
        stage direction, or else becomes a free line (text before any speaker, after a heading)."""
        if self.cur is None and self.resume is not None:
            self.open_turn(self.resume)
        if self.cur is not None:
            self.cur.paras.append([line])
        else:
            self.blocks.append(_Block("line", paras=[[line]]))

    def continue_line(self, line: str):
        """A line directly under the previous one (no blank line): same paragraph."""
        last = self.blocks[-1] if self.blocks else None
        if last is not None and (last is self.cur or last.kind == "line") and last.paras:
            last.paras[-1].append(line)
        elif last is not None and last is self.cur:
            last.paras.append([line])
        else:
            self.new_paragraph(line)

    def line(self, text: str, *, heading: bool):
        """A heading or stage direction: its own line, never a turn. A heading ends the
        speaker; after a stage direction an unlabelled paragraph resumes the last speaker."""
        if self.cur is not None:
            self.close_turn()
        if heading:
            self.resume = None
        self.blocks.append(_Block("line", paras=[[text]]))

    # -- cues (vtt/srt) --
    def cue(self, speaker: str | None, text: str, start: str, end: str):
        text = " ".join(text.split())
        if not text:
            return
        if speaker is not None and (self.cur is None or self.cur.speaker != speaker):
            self.open_turn(speaker, start)
            self.cur.paras.append([text])
        elif self.cur is not None:
            if self.cur.paras:
                self.cur.paras[-1][-1] += " " + text
            else:
                self.cur.paras.append([text])
        else:   # cues before any speaker: one free line (marked by its end time)
            last = self.blocks[-1] if self.blocks else None
            if last is not None and last.kind == "line" and last.end_timestamp is not None:
                last.paras[-1][-1] += " " + text
            else:
                self.blocks.append(_Block("line", paras=[[text]], end_timestamp=end))
            return
        self.cur.end_timestamp = end

    # -- output --
    def render(self) -> tuple[str, list[Turn]]:
        parts: list[str] = []
        turns: list[Turn] = []
        pos = 0
        for block in self.blocks:
            paras = ["\n".join(ln for ln in (l.strip() for l in para) if ln)
                     for para in block.paras]
            body = "\n\n".join(p for p in paras if p).strip()
            if block.kind == "turn":
                if not body:
                    piece, turn = f"{block.speaker}:", None
                else:
                    label = f"{block.speaker}: "
                    piece = label + body
                    start = pos + (2 if parts else 0) + len(label)
                    turn = Turn(speaker=block.speaker, start=start, end=start + len(body),
                                timestamp=block.timestamp, end_timestamp=block.end_timestamp)
            else:
                if not body:
                    continue
                piece, turn = body, None
            if parts:
                pos += 2
            parts.append(piece)
            pos += len(piece)
            if turn is not None:
                turns.append(turn)
        return "\n\n".join(parts), turns


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------

def _clean_name(name: str) -> str:
    name = " ".join(name.replace("\u00a0", " ").split())
    return name.strip(" :*_").strip()


def _norm(name: str) -> str:
    return " ".join(name.lower().split())


def _label_shape(name: str) -> bool:
    """Speaker labels are short: at most 5 words and 40 characters, capitalised words or
    initials (connectors like 'to the' allowed inside), starting with a capital letter."""
    if not name or len(name) > 40:
        return False
    words = name.split()
    if len(words) > 5:
        return False
    if not words[0][0].isupper():
        return False
    if words[-1] in _CONNECTORS:        # lower-case particles only inside a name
        return False
    for w in words:
        if w in _CONNECTORS:
            continue
        if not (w[0].isupper() or w[0].isdigit()):
            return False
        if not all(c.isalnum() or c in "'’.-&_" for c in w):
            return False
    return _norm(name) not in _NOT_LABELS


def _role_word(name: str) -> str | None:
    """'interviewer' | 'stakeholder' | 'chair' when the label itself names a role."""
    n = _norm(name).strip(".")
    words = n.split()
    if not words:
        return None
    if n in _INTERVIEWER_WORDS or "counsel" in n or "inquiry" in n:
        return "interviewer"
    if n in _STAKEHOLDER_WORDS:
        return "stakeholder"
    if n in _CHAIR_WORDS or words[0] in _CHAIR_WORDS or (words[0] in _CHAIR_TITLES
                                                         and len(words) > 1):
        return "chair"
    first = words[0]
    if len(words) > 1 or re.fullmatch(r"[a-z]+\d+", first):
        stem = re.sub(r"\d+$", "", first)
        if stem in {"interviewer", "moderator", "facilitator", "researcher", "int", "i", "q"}:
            return "interviewer"
        if stem in {"respondent", "interviewee", "participant", "witness", "r", "p"}:
            return "stakeholder"
    return None


def _has_honorific(name: str) -> bool:
    first = name.split()[0].lower().rstrip(".")
    return first in _HONORIFICS and first != "the" and len(name.split()) > 1


@dataclass
class _LabelMatch:
    speaker: str
    rest: str
    timestamp: str | None
    kind: str       # marked | bracket | plain | qa | otter


def _norm_ts(ts: str | None) -> str | None:
    """'1:02' -> '00:01:02'; '00:00:01,5' -> '00:00:01.500'."""
    if not ts:
        return None
    ts = ts.replace(",", ".")
    frac = None
    if "." in ts:
        ts, frac = ts.split(".", 1)
    parts = [int(p) for p in ts.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    h, m, s = parts[-3:]
    out = f"{h:02d}:{m:02d}:{s:02d}"
    if frac is not None:
        out += "." + (frac + "000")[:3]
    return out


def _syntactic_label(line: str) -> _LabelMatch | None:
    """The label a line would start with, before deciding whether to trust it."""
    ts = None
    m = _LEAD_TS_RE.match(line)
    if m:
        ts = next(g for g in m.groups() if g)
        line = line[m.end():]
    m = _MARKED_LABEL_RE.match(line)
    if m and (m.group("c1") or m.group("c2")):
        return _LabelMatch(_clean_name(m.group("name")), (m.group("rest") or "").strip(),
                           _norm_ts(m.group("ts") or ts), "marked")
    m = _BRACKET_LABEL_RE.match(line)
    if m and not _TS_RE.match(m.group("name").strip()):
        rest = (m.group("rest") or "").strip()
        if rest or m.group("c"):
            return _LabelMatch(_clean_name(m.group("name")), rest, _norm_ts(ts), "bracket")
        return None
    m = _QA_DOT_RE.match(line)
    if m:
        return _LabelMatch(m.group("name"), (m.group("rest") or "").strip(), _norm_ts(ts), "qa")
    m = _PLAIN_LABEL_RE.match(line)
    if m:
        return _LabelMatch(_clean_name(m.group("name")), (m.group("rest") or "").strip(),
                           _norm_ts(m.group("ts") or ts), "plain")
    if ts is None:
        m = _OTTER_RE.match(line)
        if m:
            return _LabelMatch(_clean_name(m.group("name")), "", _norm_ts(m.group("ts")), "otter")
    return None


class _LabelPolicy:
    """Decides which syntactic labels are speakers: marked (bold/italic) labels are trusted;
    plain ``Name:``, ``[Name]``, ``Q.`` and Otter labels need the same label at least twice in
    the file, or a role word, or an honorific (Mr, Dr, ...), or the name being used in a
    trusted label elsewhere. ``lenient`` (captions) also trusts two-word capitalised names."""

    def __init__(self, lines: Iterable[str], lenient: bool = False):
        self.counts: dict[str, int] = {}
        self.trusted: set[str] = set()
        self.lenient = lenient
        for line in lines:
            m = _syntactic_label(line.strip())
            if m is None or not _label_shape(m.speaker):
                continue
            key = _norm(m.speaker)
            self.counts[key] = self.counts.get(key, 0) + 1
            if m.kind == "marked":
                self.trusted.add(key)

    def accept(self, m: _LabelMatch | None) -> bool:
        if m is None or not _label_shape(m.speaker):
            return False
        key = _norm(m.speaker)
        if m.kind == "marked" or key in self.trusted:
            return True
        if m.kind == "qa":
            return self.counts.get(key, 0) >= 2
        if self.counts.get(key, 0) >= 2 or _role_word(m.speaker) or _has_honorific(m.speaker):
            return True
        return self.lenient and len(m.speaker.split()) >= 2

    def match(self, line: str) -> _LabelMatch | None:
        m = _syntactic_label(line)
        return m if self.accept(m) else None


def _stage_text(stripped: str) -> str | None:
    for rx in _STAGE_RES:
        m = rx.match(stripped)
        if m:
            return m.group("inner").strip()
    if _PAREN_STAGE_RE.match(stripped):
        return stripped
    return None


# --------------------------------------------------------------------------------------------
# Decoding, front matter
# --------------------------------------------------------------------------------------------

def decode_text(data: bytes, path: Path, what: str = "text transcript",
                hint: str = "save it as plain text (.txt) or Word (.docx)") -> tuple[str, str]:
    """Decode a text file's bytes: UTF-16 with a BOM, UTF-8 (with or without a BOM), then
    Windows-1252. Returns ``(text, encoding)``; a binary or undecodable file is a ReadError.
    Shared by the transcript readers, ``metadata.csv`` and ``redact.txt``.

    Mixed encodings: a file that is mostly UTF-8 but has some bytes that are not (typically
    text pasted from an older Windows program) is read as UTF-8 with each such byte read as
    Windows-1252 (encoding ``utf-8+cp1252``). Nothing is dropped, and a :class:`QualWarning`
    names the file, the number of such bytes and the lines they are on, so an analyst can
    check those characters. A byte that is neither is a ReadError."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise ReadError(f"cannot decode this UTF-16 file: {exc.reason}", path=path) from None
    if b"\x00" in data:
        raise ReadError(f"this is a binary file (it contains NUL bytes), not a {what}; {hint}",
                        path=path)
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    undecodable = ReadError("cannot decode the text: it is neither UTF-8 nor Windows-1252 "
                            "(is it a binary file?); save it as UTF-8 text", path=path)
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    escaped = body.decode("utf-8", "surrogateescape")   # each non-UTF-8 byte -> U+DC80..U+DCFF
    if not _UTF8_CHAR_RE.search(escaped):
        # no valid UTF-8 beyond ASCII: a Windows-1252 file
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            raise undecodable from None
    lines: list[int] = []

    def one_byte(m):
        byte = bytes([ord(m.group()) - 0xDC00])
        lines.append(m.start())
        try:
            return byte.decode("cp1252")
        except UnicodeDecodeError:
            raise undecodable from None

    text = _ESCAPED_BYTE_RE.sub(one_byte, escaped)
    where = sorted({escaped.count("\n", 0, pos) + 1 for pos in lines})
    shown = ", ".join(str(n) for n in where[:10]) + (", ..." if len(where) > 10 else "")
    warnings.warn(QualWarning(
        f"mixed encodings: mostly UTF-8, but {len(lines)} byte(s) on line(s) {shown} are not "
        "UTF-8 and were read as Windows-1252; check those characters (save the file as UTF-8 to "
        "silence this)", path=path), stacklevel=2)
    return text, "utf-8+cp1252"


_ESCAPED_BYTE_RE = re.compile("[\udc80-\udcff]")
_UTF8_CHAR_RE = re.compile("[\u0080-\udc7f\udd00-\U0010ffff]")


def _clean_text(text: str, path: Path) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_LINE_BREAKS)
    controls = len(_CONTROL_RE.findall(text))
    if controls and controls > max(2, len(text) // 200):
        raise ReadError("this looks like a binary file (many control characters), not a text "
                        "transcript", path=path)
    return _CONTROL_RE.sub("", text)


def _json_safe(value):
    if isinstance(value, (_dt.date, _dt.datetime, _dt.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _front_matter(lines: list[str], path: Path) -> tuple[dict, list[str], int]:
    """(metadata, remaining lines, number of lines removed) for a YAML block at the top."""
    if not lines or lines[0].strip() != "---":
        return {}, lines, 0
    end = None
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            end = i
            break
    if end is None:
        return {}, lines, 0
    block = "\n".join(lines[1:end])
    import yaml

    from .safeyaml import refusal

    looks_yaml = any(re.match(r"^[\w\- ]+:(\s|$)", ln) for ln in lines[1:end] if ln.strip())
    try:
        refused = refusal(block, "front matter")   # alias bombs, recursion, deep nesting
        data = yaml.safe_load(block) if block.strip() and refused is None else {}
    except yaml.YAMLError as exc:
        if not looks_yaml:
            return {}, lines, 0
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 2
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ReadError(f"the YAML front matter is not valid: {problem}", path=path,
                        line=line) from None
    if refused is not None:
        if not looks_yaml:
            return {}, lines, 0   # not front matter: e.g. *emphasis* between two rules
        raise ReadError(refused[1], path=path, line=refused[0] + 1)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return {}, lines, 0       # e.g. an rst title with an overline
    return _json_safe(data), lines[end + 1:], end + 1


# --------------------------------------------------------------------------------------------
# Plain text: .txt .md .rst
# --------------------------------------------------------------------------------------------

def _parse_plain(lines: list[str]) -> _Builder:
    stripped = [ln.strip() for ln in lines]
    policy = _LabelPolicy(stripped)
    n = len(stripped)
    label_at = [policy.match(s) if s else None for s in stripped]

    # setext / rst headings: a one-line paragraph underlined (and maybe overlined).
    heading = [False] * n
    drop = [False] * n
    for i in range(n - 1):
        s, u = stripped[i], stripped[i + 1]
        if not s or label_at[i] is not None or _UNDERLINE_RE.match(s):
            continue
        if not _UNDERLINE_RE.match(u):
            continue
        over = i > 0 and _UNDERLINE_RE.match(stripped[i - 1]) and stripped[i - 1][0] == u[0]
        if i == 0 or not stripped[i - 1] or over:
            heading[i] = True
            drop[i + 1] = True
            if over:
                drop[i - 1] = True

    b = _Builder()
    in_para = False
    for i, s in enumerate(stripped):
        if drop[i] or not s:
            in_para = False
            continue
        if heading[i]:
            b.line(s, heading=True)
            in_para = False
            continue
        m = label_at[i]
        if m is not None:
            b.close_turn()
            b.open_turn(m.speaker, m.timestamp)
            if m.rest:
                b.cur.paras.append([m.rest])
            in_para = True
            continue
        atx = _ATX_RE.match(s)
        if atx or _SECTION_RE.match(s):
            b.line(atx.group("title") if atx else s, heading=True)
            in_para = False
            continue
        if _UNDERLINE_RE.match(s):          # a transition / horizontal rule
            in_para = False
            continue
        stage = _stage_text(s)
        if stage is not None:
            b.line(stage, heading=False)
            in_para = False
            continue
        if in_para:
            b.continue_line(s)
        else:
            b.new_paragraph(s)
        in_para = True
    return b


# --------------------------------------------------------------------------------------------
# Word: .docx
# --------------------------------------------------------------------------------------------

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_W_R, _W_HYPERLINK, _W_T, _W_BR = _W + "r", _W + "hyperlink", _W + "t", _W + "br"
_W_RPR, _W_VAL = _W + "rPr", _W + "val"
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
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                items.extend(_docx_table(block))
            else:
                items.append(_docx_paragraph(block._p, reader))
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
            first = [ln.strip() for ln in _clean_text(it.bold_rest, path).split("\n")]
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


# --------------------------------------------------------------------------------------------
# Captions: .vtt .srt
# --------------------------------------------------------------------------------------------

def _caption_time(ts: str) -> float:
    ts = ts.replace(",", ".")
    parts = ts.split(":")
    seconds = float(parts[-1])
    minutes = int(parts[-2])
    hours = int(parts[-3]) if len(parts) == 3 else 0
    return hours * 3600 + minutes * 60 + seconds


def _valid_clock(ts: str) -> bool:
    parts = ts.replace(",", ".").split(":")
    return int(parts[-2]) < 60 and float(parts[-1]) < 60


def _cue_segments(raw: str, policy: _LabelPolicy | None):
    """[(speaker or None, text)] from cue text: <v Name> voice tags, else a 'Name:' or
    '[Name]' prefix; other tags removed, entities unescaped."""
    raw = _SRT_STYLE_RE.sub("", raw)
    segments: list[list] = []
    pos = 0
    speaker = None
    for m in _VOICE_RE.finditer(raw):
        if m.start() > pos:
            segments.append([speaker, raw[pos:m.start()]])
        speaker = _clean_name(html.unescape(m.group("name") or "")) or None
        pos = m.end()
    segments.append([speaker, raw[pos:]])
    out = []
    for sp, chunk in segments:
        chunk = html.unescape(_TAG_RE.sub("", chunk))
        chunk = " ".join(chunk.split())
        if not chunk:
            continue
        if sp is None and policy is not None:
            lm = policy.match(chunk)
            if lm is not None and lm.kind != "otter":
                sp, chunk = lm.speaker, lm.rest
        out.append((sp, chunk))
    return out


def _caption_label_lines(texts: list[str]) -> list[str]:
    out = []
    for raw in texts:
        if _VOICE_RE.search(raw):
            continue
        out.append(" ".join(html.unescape(_TAG_RE.sub("", _SRT_STYLE_RE.sub("", raw))).split()))
    return out


def _blocks_of(lines: list[str], first: int = 0):
    """Yield (line number of the block's first line, [lines]) for blank-line separated blocks."""
    block: list[str] = []
    start = first
    for i in range(first, len(lines)):
        if lines[i].strip():
            if not block:
                start = i
            block.append(lines[i].rstrip())
        elif block:
            yield start + 1, block
            block = []
    if block:
        yield start + 1, block


def _check_cue_times(s: str, e: str, line: int, path: Path):
    if not (_valid_clock(s) and _valid_clock(e)):
        raise ReadError(f"invalid cue time '{s} --> {e}' (minutes and seconds must be under 60)",
                        path=path, line=line)
    if _caption_time(e) < _caption_time(s):
        raise ReadError(f"cue ends before it starts: '{s} --> {e}'", path=path, line=line)


def _parse_vtt(text: str, path: Path) -> _Builder:
    lines = text.split("\n")
    if not re.match(r"^WEBVTT(?:[ \t].*)?$", lines[0].strip()):
        raise ReadError("not a WebVTT file: the first line must be 'WEBVTT'", path=path, line=1)
    # skip the header block
    i = 1
    while i < len(lines) and lines[i].strip():
        if "-->" in lines[i]:
            raise ReadError("a blank line is needed between the WEBVTT header and the first cue",
                            path=path, line=i + 1)
        i += 1
    cues = []
    for lineno, block in _blocks_of(lines, i):
        head = block[0].strip()
        if re.match(r"^(NOTE|STYLE|REGION)(\s|$)", head):
            continue
        if "-->" in head:
            t, body = 0, block[1:]
        elif len(block) > 1 and "-->" in block[1]:
            t, body = 1, block[2:]
        elif len(block) > 1 and re.search(r"\d:\d", block[1]):
            raise ReadError(f"malformed cue timing line '{block[1].strip()[:80]}' (expected "
                            "'00:00:01.000 --> 00:00:04.000')", path=path, line=lineno + 1)
        else:
            raise ReadError(f"expected a cue timing line like '00:00:01.000 --> 00:00:04.000', "
                            f"found '{head[:60]}'", path=path, line=lineno)
        m = _VTT_TIMING_RE.match(block[t].strip())
        if not m:
            raise ReadError(f"malformed cue timing line '{block[t].strip()[:80]}' (expected "
                            "'00:00:01.000 --> 00:00:04.000')", path=path, line=lineno + t)
        _check_cue_times(m.group("s"), m.group("e"), lineno + t, path)
        for k, ln in enumerate(body):
            if "-->" in ln and _VTT_TIMING_RE.match(ln.strip()):
                raise ReadError("a cue timing line inside a cue: a blank line is missing before it",
                                path=path, line=lineno + t + 1 + k)
        cues.append((m.group("s"), m.group("e"), " ".join(body)))
    return _cues_to_builder(cues, path, "WebVTT cues")


def _parse_srt(text: str, path: Path) -> _Builder:
    lines = text.split("\n")
    cues = []
    for lineno, block in _blocks_of(lines):
        head = block[0].strip()
        if _SRT_TIMING_RE.match(head):
            t = 0
        elif re.fullmatch(r"\d+", head) and len(block) > 1:
            t = 1
        else:
            raise ReadError(f"expected a subtitle number and a timing line like "
                            f"'00:00:01,000 --> 00:00:04,000', found '{head[:60]}'",
                            path=path, line=lineno)
        m = _SRT_TIMING_RE.match(block[t].strip())
        if not m:
            raise ReadError(f"malformed subtitle timing line '{block[t].strip()[:80]}' "
                            "(expected '00:00:01,000 --> 00:00:04,000')", path=path,
                            line=lineno + t)
        _check_cue_times(m.group("s"), m.group("e"), lineno + t, path)
        body = block[t + 1:]
        for k, ln in enumerate(body):
            if _SRT_TIMING_RE.match(ln.strip()):
                raise ReadError("a timing line inside a subtitle: a blank line is missing "
                                "before it", path=path, line=lineno + t + 1 + k)
        cues.append((m.group("s"), m.group("e"), " ".join(body)))
    return _cues_to_builder(cues, path, "subtitles")


def _cues_to_builder(cues, path: Path, what: str) -> _Builder:
    if not cues:
        raise ReadError(f"no {what} found", path=path)
    policy = _LabelPolicy(_caption_label_lines([c[2] for c in cues]), lenient=True)
    b = _Builder()
    for s, e, raw in cues:
        for speaker, chunk in _cue_segments(raw, policy):
            b.cue(speaker, chunk, _norm_ts(s), _norm_ts(e))
    return b


# --------------------------------------------------------------------------------------------
# Roles
# --------------------------------------------------------------------------------------------

def _name_tokens(name: str) -> list[str]:
    toks = re.findall(r"[^\W_][\w'’\-]*", name.lower())
    return [t.replace("’", "'") for t in toks if t.rstrip(".") not in _NAME_NOISE]


def _name_score(given: str, speaker: str) -> int:
    """3 exact, 2 one name's words contain the other's, 1 same surname, 0 no match."""
    if _norm(given) == _norm(speaker):
        return 3
    g, s = _name_tokens(given), _name_tokens(speaker)
    if not g or not s:
        return 0
    if set(g) <= set(s) or set(s) <= set(g):
        return 2
    if g[-1] == s[-1]:
        return 1
    return 0


def _names(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(";") if v.strip()]
    if isinstance(value, (list, tuple, set)):
        out = []
        for v in value:
            out.extend(_names(v) if isinstance(v, str) else [str(v)])
        return out
    return [str(value)]


def _is_question(utterance: str) -> bool:
    if "?" in utterance:
        return True
    m = re.match(r"[^\W\d_][\w'’]*", utterance.lstrip(" \"'“‘-"))
    return bool(m) and m.group(0).lower().replace("’", "'") in _QUESTION_WORDS


def assign_roles(turns, interviewers: Iterable[str] = (), stakeholders: Iterable[str] = (), *,
                 text: str | None = None) -> list[Turn]:
    """Set ``Turn.role`` (``interviewer`` | ``stakeholder`` | ``other``) per speaker, in place,
    and return the turns.

    ``turns`` is a list of :class:`Turn` or a :class:`Transcript` (then its text is used);
    ``text`` is the transcript text, needed for the question pattern and stage directions.
    ``interviewers`` / ``stakeholders`` are names (a list, or one ``;``-separated string).

    Precedence, first rule that decides wins, per speaker:

    1. names given here (e.g. from metadata.csv): matched case-insensitively on the whole
       label, on word containment ("Keith" ~ "Mr Keith", "Ian Diamond" ~ "Professor Sir
       Diamond") or on the surname; the better match wins if a speaker matches both lists;
    2. label words: ``Q``, ``Interviewer``, ``Int``, ``I``, ``Moderator``, ``Facilitator``,
       ``Researcher``, ``Counsel`` and any label containing "Counsel" or "Inquiry"
       -> interviewer; ``A``, ``Respondent``, ``Interviewee``, ``Participant``, ``R``, ``P``,
       ``Witness``, ``The Witness`` (also numbered: "Participant 3", "P1") -> stakeholder;
       chairs (``Chair``, ``Judge``, "Lady X", "Lord X") are never stakeholders: interviewer
       if at least a quarter of their turns ask questions, else other;
    3. names in sworn/affirmed stage directions ("DR JANE ROE (affirmed).") -> stakeholder;
       names in "Questions from X" headings, and speakers who call a witness ("May I call
       Dr X", "our next witness is ...") -> interviewer;
    4. the question pattern: a speaker with at least a quarter of turns asking questions
       ("?" or a leading question word) and asking more than answering -> interviewer; a
       speaker who rarely asks and either answers others' questions (>= 20% of turns follow a
       question) or does at least a fifth of the talking -> stakeholder; else other; a lone
       speaker -> stakeholder. If this leaves no stakeholder, the pattern-judged speaker who
       asks least (then talks most) becomes the stakeholder.
    """
    if isinstance(turns, Transcript):
        if text is None:
            text = turns.text
        turns = turns.turns
    turns = list(turns)
    interviewers = _names(interviewers if isinstance(interviewers, str) else list(interviewers))
    stakeholders = _names(stakeholders if isinstance(stakeholders, str) else list(stakeholders))
    speakers: list[str] = []
    for t in turns:
        if t.speaker not in speakers:
            speakers.append(t.speaker)
    role: dict[str, str] = {}
    chairs: set[str] = set()

    # 1. given names
    for sp in speakers:
        si = max((_name_score(n, sp) for n in interviewers), default=0)
        ss = max((_name_score(n, sp) for n in stakeholders), default=0)
        if si or ss:
            role[sp] = "stakeholder" if ss >= si else "interviewer"
    # 2. label words
    for sp in speakers:
        if sp in role:
            continue
        w = _role_word(sp)
        if w == "chair":
            chairs.add(sp)
        elif w:
            role[sp] = w
    # 3. stage directions and section headings
    if text:
        sworn = [m.group("name") for m in _SWORN_RE.finditer(text)]
        asking = [m.group("name") for m in _SECTION_LINE_RE.finditer(text)]
        callers = {t.speaker for t in turns if _CALLS_WITNESS_RE.search(text[t.start:t.end])}
        for sp in speakers:
            if sp in role or sp in chairs:
                continue
            if any(_name_score(n, sp) for n in sworn):
                role[sp] = "stakeholder"
            elif sp in callers or any(_name_score(n, sp) for n in asking):
                role[sp] = "interviewer"
    # 4. the question pattern
    stats = {sp: [0, 0, 0, 0] for sp in speakers}     # turns, questions, answers, words
    prev_sp, prev_q = None, False
    for t in turns:
        utter = text[t.start:t.end] if text else ""
        q = _is_question(utter) if text else False
        s = stats[t.speaker]
        s[0] += 1
        s[1] += q
        s[2] += bool(prev_q and prev_sp != t.speaker)
        s[3] += len(utter.split())
        prev_sp, prev_q = t.speaker, q
    total_words = sum(s[3] for s in stats.values()) or 1
    for sp in chairs:
        n, q = stats[sp][0], stats[sp][1]
        role[sp] = "interviewer" if n and q / n >= 0.25 else "other"
    judged = [sp for sp in speakers if sp not in role]
    if len(speakers) == 1 and judged:
        role[judged[0]] = "stakeholder"
        judged = []
    for sp in judged:
        n, q, a, w = stats[sp]
        qs, ans, ws = q / n, a / n, w / total_words
        if not text:
            role[sp] = "other"
        elif qs >= 0.25 and qs > ans:
            role[sp] = "interviewer"
        elif qs < 0.25 and (ans >= 0.2 or ws >= 0.2):
            role[sp] = "stakeholder"
        else:
            role[sp] = "other"
    if text and judged and "stakeholder" not in role.values():
        best = min(judged, key=lambda sp: (stats[sp][1] / stats[sp][0], -stats[sp][3]))
        if len(speakers) > 1 and (len(judged) > 1 or any(r == "interviewer" for s, r in
                                                         role.items() if s != best)):
            role[best] = "stakeholder"
    for t in turns:
        t.role = role.get(t.speaker, "other")
    return turns


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------

def read_transcript(path, metadata: dict | None = None, max_bytes: int = 50_000_000
                    ) -> Transcript:
    """Read one transcript file into a :class:`Transcript`.

    The reader is chosen by the file extension (:data:`SUPPORTED`). The result has the file
    name, path, format (extension without dot), the SHA-256 of the file's bytes, the clean text,
    the speaker turns and their roles (:func:`assign_roles`, using the ``interviewers`` and
    ``stakeholders`` names from the metadata), and the metadata: YAML front matter found at the
    top of a text file, overlaid by ``metadata`` (e.g. the file's row of metadata.csv) -- the
    explicit metadata wins on conflict -- plus ``encoding`` (the text encoding used: ``utf-8``,
    ``utf-8-sig``, ``utf-16``, ``cp1252`` or ``utf-8+cp1252`` for a file mixing the two, see
    :func:`decode_text`) for text formats. ``interviewers`` and
    ``stakeholders`` are normalised to lists of names.

    Raises :class:`ReadError` (never anything else for bad content) when the path is missing
    or a folder, the extension is unsupported, the file is over ``max_bytes``, empty, binary
    or undecodable, a .docx is corrupt, a .vtt/.srt is malformed (with the line), the YAML front
    matter is invalid, or no speaker turn or no stakeholder turn is found.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if not p.exists():
        raise ReadError("file not found", path=p)
    if p.is_dir():
        raise ReadError("is a folder, not a transcript file", path=p)
    if ext not in SUPPORTED:
        shown = ext or "(no extension)"
        raise ReadError(f"unsupported file type '{shown}'; supported: {', '.join(SUPPORTED)}",
                        path=p)
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise ReadError(f"file is too large: {size:,} bytes, over the limit of "
                            f"{max_bytes:,} bytes (max_bytes)", path=p)
        data = p.read_bytes()
    except OSError as exc:
        raise ReadError(f"cannot read the file: {exc.strerror or exc}", path=p) from None
    if len(data) > max_bytes:
        raise ReadError(f"file is too large: over the limit of {max_bytes:,} bytes", path=p)
    if not data.strip(b" \t\r\n\x0c\x0b\xef\xbb\xbf"):
        raise ReadError("file is empty", path=p)

    fmt = ext[1:]
    front: dict = {}
    encoding = None
    if fmt == "docx":
        builder = _parse_docx(data, p, max_bytes)
    else:
        raw, encoding = decode_text(data, p)
        text = _clean_text(raw, p)
        if not text.strip():
            raise ReadError("file is empty", path=p)
        if fmt == "vtt":
            builder = _parse_vtt(text, p)
        elif fmt == "srt":
            builder = _parse_srt(text, p)
        else:
            front, lines, _ = _front_matter(text.split("\n"), p)
            builder = _parse_plain(lines)

    out_text, turns = builder.render()
    if not turns:
        hint = {
            "vtt": "expected <v Name> voice tags or 'Name: text' at the start of cues",
            "srt": "expected 'Name: text' at the start of subtitles",
            "docx": "expected paragraphs starting with a bold speaker name or 'Name: text'",
        }.get(fmt, "expected lines like 'Name: text', '**Name**: text', '[Name] text' or "
                   "'Q: ...' / 'A: ...' (a plain 'Name:' label must occur at least twice)")
        raise ReadError(f"no speaker turns found; {hint}", path=p)

    meta: dict = {}
    for key, value in front.items():
        meta[key] = value
    for key, value in (metadata or {}).items():
        if value is None or value == "" or value == [] or key == "file":
            continue
        meta[key] = _json_safe(value)
    for key in _NAME_LIST_COLUMNS:
        if key in meta:
            meta[key] = _names(meta[key])
    if encoding:
        meta["encoding"] = encoding

    assign_roles(turns, meta.get("interviewers", ()), meta.get("stakeholders", ()),
                 text=out_text)
    if not any(t.role == "stakeholder" for t in turns):
        seen: dict[str, str] = {}
        for t in turns:
            seen.setdefault(t.speaker, t.role)
        who = ", ".join(f"{s} ({r})" for s, r in list(seen.items())[:8])
        raise ReadError(f"no stakeholder turn found among the speakers: {who}; name the "
                        "stakeholder in metadata.csv (column 'stakeholders') or label them "
                        "e.g. 'Respondent:'", path=p)
    return Transcript(name=p.name, text=out_text, turns=turns, metadata=meta, path=str(p),
                      format=fmt, sha256=sha256_bytes(data))


def _silently_ignored(name: str) -> bool:
    low = name.lower()
    return (name.startswith((".", "~$")) or low in _IGNORED_NAMES or low.startswith("readme"))


def find_transcripts(paths) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand files and folders into transcript files.

    Returns ``(files, skipped)``. Folders are walked recursively in sorted, stable order; in a
    folder, files with an unsupported extension are returned in ``skipped`` with the reason,
    while hidden files and folders, Office lock files (``~$...``), ``metadata.csv``,
    ``redact.txt`` and ``README*`` are ignored silently. A symbolic link (to a file or folder)
    that leads outside the folder is not followed, and is listed in ``skipped``; one within
    it is read as the file it points to (once). A file named explicitly is always
    returned (even with an unsupported extension, so that :func:`read_transcript` reports it).
    A path that does not exist raises :class:`ReadError`. Duplicates are listed once.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    seen: set[Path] = set()

    def add(f: Path):
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            files.append(f)

    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise ReadError("no such file or folder", path=p)
        if not p.is_dir():
            add(p)
            continue
        found = []
        inside = p.resolve()
        for root, dirs, names in os.walk(p):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            # os.walk does not enter linked folders; one leading out of the folder is reported
            found.extend(Path(root) / d for d in dirs if (Path(root) / d).is_symlink())
            for name in names:
                found.append(Path(root) / name)
        for f in sorted(found, key=lambda f: f.relative_to(p).parts):
            if _silently_ignored(f.name):
                continue
            if f.is_symlink():
                target = f.resolve()
                if not target.is_relative_to(inside):
                    skipped.append((f, f"a symbolic link to {target}, outside {p}; not followed"))
                    continue
            if not f.is_file():
                continue
            ext = f.suffix.lower()
            if ext not in SUPPORTED:
                shown = ext or "(no extension)"
                skipped.append((f, f"unsupported file type '{shown}'"))
                continue
            add(f)
    return files, skipped


def read_metadata(folder) -> dict[str, dict]:
    """Read the optional ``metadata.csv`` of a folder (or a path to the csv itself).

    The ``file`` column (the transcript's file name) is the key. Known columns:
    ``stakeholder_id, organisation, sector, role, interview_date`` (strings) and
    ``interviewers``, ``stakeholders`` (``;``-separated names, returned as lists). Other columns
    are kept as extra case attributes; every value is a string, empty cells are dropped, and
    headers are normalised (trimmed, lower-case, spaces to underscores). Returns ``{}`` when
    the file is absent. A missing ``file`` column, a row without a file name or a duplicate file
    name raises :class:`ReadError` naming metadata.csv and the line. Encodings: UTF-8 (with or
    without BOM), falling back to Windows-1252.
    """
    p = Path(folder)
    csv_path = p if p.suffix.lower() == ".csv" and not p.is_dir() else p / METADATA_FILE
    if not csv_path.is_file():
        return {}
    try:
        data = csv_path.read_bytes()
    except OSError as exc:
        raise ReadError(f"cannot read metadata.csv: {exc.strerror or exc}", path=csv_path) from None
    text, _ = decode_text(data, csv_path, "CSV text file", "save metadata.csv as CSV (UTF-8)")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return {}
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=lambda d: (first.count(d), d == ","))
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    out: dict[str, dict] = {}
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise ReadError(f"metadata.csv cannot be parsed: {exc}", path=csv_path, line=1) from None
    columns = [re.sub(r"\s+", "_", h.strip().lower()) for h in header]
    if "file" not in columns:
        raise ReadError("metadata.csv has no 'file' column (the transcript file name); "
                        f"found columns: {', '.join(c for c in columns if c) or 'none'}",
                        path=csv_path, line=1, field="file")
    file_col = columns.index("file")
    first_line: dict[str, int] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) > len(columns) and any(c.strip() for c in row[len(columns):]):
                raise ReadError(f"metadata.csv row has {len(row)} cells but the header has "
                                f"{len(columns)}", path=csv_path, line=line)
            name = row[file_col].strip() if file_col < len(row) else ""
            if not name:
                raise ReadError("metadata.csv row has no file name in column 'file'",
                                path=csv_path, line=line, field="file")
            if name in out:
                raise ReadError(f"metadata.csv lists '{name}' twice (first on line "
                                f"{first_line[name]})", path=csv_path, line=line, field="file")
            first_line[name] = line
            rec: dict = {}
            for col, cell in zip(columns, row):
                cell = cell.strip()
                if col == "file" or not col or not cell:
                    continue
                rec[col] = _names(cell) if col in _NAME_LIST_COLUMNS else cell
            out[name] = rec
    except csv.Error as exc:
        raise ReadError(f"metadata.csv cannot be parsed: {exc}", path=csv_path,
                        line=reader.line_num) from None
    return out
