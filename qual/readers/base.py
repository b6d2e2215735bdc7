"""What every format's reader shares: decoding bytes to clean text, YAML front matter,
speaker-label and stage-direction recognition, and the builder that renders blocks into
``Transcript.text`` with each turn's ``[start, end)`` offsets."""

from __future__ import annotations

import datetime as _dt
import functools
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..errors import QualWarning, ReadError
from ..model import Turn

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


_LINE_BREAKS = str.maketrans({"\u2028": "\n", "\u2029": "\n", "\x85": "\n", "\x0b": "\n",
                              "\x0c": "\n"})
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ufeff]")
# any character _clean_text changes or counts: a text without one is returned as it is
_UNCLEAN_RE = re.compile(r"[\r\u2028\u2029\x85\x0b\x0c\x00-\x08\x0e-\x1f\x7f\ufeff]")


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


@functools.lru_cache(maxsize=4096)
def _label_shape(name: str) -> bool:
    """Speaker labels are short: at most 5 words and 40 characters, capitalised words or
    initials (connectors like 'to the' allowed inside), starting with a capital letter.
    (Cached: a transcript asks this of the same few names thousands of times.)"""
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


def _clean_texts(texts: list[str], path: Path) -> list[str]:
    """``_clean_text`` of each text (each judged on its own for control characters), with
    one search over all of them when none holds a character it changes, the usual case: a
    long .docx has thousands of paragraphs."""
    if not _UNCLEAN_RE.search("\n".join(texts)):
        return list(texts)
    return [_clean_text(t, path) for t in texts]


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

    from ..safeyaml import refusal

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
