"""Plain text, Markdown and reStructuredText (``.txt``, ``.md``, ``.rst``): one parser."""

from __future__ import annotations
from .base import _ATX_RE, _Builder, _LabelPolicy, _SECTION_RE, _UNDERLINE_RE, _stage_text



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
