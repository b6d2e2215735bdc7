"""Captions (``.vtt``, ``.srt``): parsed here, not with webvtt-py, so that every malformed
cue is reported with its line number; consecutive cues of one speaker merge into one turn."""

from __future__ import annotations

import html
import re
from pathlib import Path

from ..errors import ReadError
from .base import _Builder, _LabelPolicy, _clean_name, _norm_ts

_VTT_TIMING_RE = re.compile(
    r"^(?P<s>(?:\d+:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?)[ \t]+-->[ \t]+"
    r"(?P<e>(?:\d+:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?)(?:[ \t]+.*)?$")
_SRT_TIMING_RE = re.compile(
    r"^(?P<s>\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,3})?)[ \t]*-->[ \t]*"
    r"(?P<e>\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,3})?)(?:[ \t]+.*)?$")
_VOICE_RE = re.compile(r"<v(?:\.[^\s>]*)?(?:\s+(?P<name>[^>]*))?>", re.IGNORECASE)
_TAG_RE = re.compile(r"<[^<>]*>")
_SRT_STYLE_RE = re.compile(r"\{\\[^{}]*\}")

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
