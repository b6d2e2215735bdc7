"""Theme summaries: the evidence under each theme, as plain data, Markdown and HTML.

``summarise(coding, documents, codebook, ...)`` takes the effective coding (see
``qual.review.effective_coding``), the documents (``store.document(id)`` dicts, with text and
metadata) and the codebook, and returns a ``Summary``: per-theme prevalence, splits by case
attribute, barrier/opportunity counts with their sub-codes, representative quotes, the
co-occurrence matrix and the case x code matrices. ``write_summary`` writes the files.

Definitions
-----------
* A *stakeholder* is the document's ``stakeholder_id`` metadata when it has one, else one
  person in one document, with the labels that name them (``The Witness``, ``Mr Heald``,
  initials) resolved to that person: ``qual.stakeholders``, the rule the app's Overview
  (``qual.review.theme_overview``) uses too. The interviewed stakeholders are every
  stakeholder with at least one stakeholder segment, coded or not.
* A *case* is a stakeholder, under its case label (``qual.stakeholders``); its attributes
  (``sector``, ``stakeholder_group``, ...) come from the metadata of its first document. The
  case x code matrices therefore have one row per stakeholder counted.
* A quote is a whole coded segment, verbatim: ``document text[start:end]``. Quotes are ranked by
  how central they are to the theme (the machine's theme score; a reviewer-confirmed segment
  without a score counts as 1.0), then chosen greedily, skipping near-duplicates of a quote
  already chosen (word-set overlap >= 0.6) and never more than ``max_per_stakeholder`` from
  one stakeholder.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import __version__
from .coder import NONE, split_labels
from .errors import counted

SPLIT_KEYS = ("sector", "stakeholder_group")
_PLURAL = {"barrier": "Barriers", "opportunity": "Opportunities", "neutral": "Neutral"}
_WORD = re.compile(r"[a-z0-9']+")


@dataclass
class Quote:
    theme: str
    text: str
    document: str
    document_id: int
    speaker: str
    start: int
    end: int
    score: float
    source: str
    polarity: str
    subcodes: list[str] = field(default_factory=list)


@dataclass
class ThemeSummary:
    id: str
    name: str
    color: str
    segments: int
    documents: int
    stakeholders: int
    share: float
    reviewed: int
    machine_only: int
    polarity: dict            # polarity -> count
    subcodes: dict            # polarity -> {subcode id: count}
    splits: dict              # attribute -> DataFrame(value, stakeholders, of, share)
    quotes: list
    topics: list              # dicts: label, keywords, size


@dataclass
class Summary:
    themes: list
    total_segments: int
    coded_segments: int
    total_stakeholders: int
    total_documents: int
    reviewed_share: float
    run: dict | None
    codebook_version: str
    redaction: str
    reviewed_only: bool
    cooccurrence: pd.DataFrame
    case_counts: pd.DataFrame
    case_presence: pd.DataFrame


def redaction_status(documents) -> str:
    red = sum(1 for d in documents if d.get("redacted"))
    if not documents or red == 0:
        return "not redacted"
    if red == len(documents):
        return "redacted (pseudonymised before storing)"
    return f"{red} of {len(documents)} documents redacted"


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _near_duplicate(a: set[str], b: set[str], threshold: float = 0.6) -> bool:
    if not a or not b:
        return a == b
    return len(a & b) / len(a | b) >= threshold


def stakeholder_keys(df: pd.DataFrame, docs) -> pd.Series:
    """Who is speaking, per row of ``df`` (``document_id``, ``speaker``, ``start``): the
    stakeholder's case label, by the one rule of ``qual.stakeholders``."""
    from .stakeholders import stakeholder_keys as keys

    return keys(df, docs)


#: columns that state a CSV's provenance, the same in themes.csv and the matrices
PROVENANCE_COLUMNS = ("run_id", "codebook_version", "redaction", "reviewed_only")


def provenance_columns(summary: "Summary") -> dict:
    run = summary.run or {}
    return {"run_id": run.get("id"), "codebook_version": summary.codebook_version,
            "redaction": summary.redaction, "reviewed_only": summary.reviewed_only}


def with_provenance(frame: pd.DataFrame, summary: "Summary") -> pd.DataFrame:
    """``frame`` with the provenance columns appended (the same value on every row), so a
    matrix CSV states its coding run, codebook version and redaction like themes.csv does."""
    out = frame.copy()
    for k, v in provenance_columns(summary).items():
        out[k] = v
    return out


def summarise(coding: pd.DataFrame, documents: list[dict], codebook, *, run: dict | None = None,
              topics: pd.DataFrame | None = None, reviewed_only: bool = False,
              quotes_per_theme: int = 5, max_per_stakeholder: int = 2) -> Summary:
    docs = {int(d["id"]): d for d in documents}
    df = coding[coding["document_id"].isin(docs)].copy()
    df["stakeholder"] = stakeholder_keys(df, docs)
    # each stakeholder's attributes come from its first document
    all_stakeholders = df.drop_duplicates("stakeholder")[["stakeholder", "document_id"]]
    total_stakeholders = len(all_stakeholders)
    attrs_of = {int(d): docs[int(d)]["metadata"] for d in df["document_id"].unique()}
    doc_of = dict(zip(all_stakeholders["stakeholder"], all_stakeholders["document_id"]))
    total_segments = len(df)
    if reviewed_only:
        df = df[df["source"] == "reviewer"]
    df["theme_list"] = df["themes"].map(lambda v: [t for t in split_labels(v) if t != NONE])
    df["sub_list"] = df["subcodes"].map(split_labels)
    coded = df[df["theme_list"].map(bool).astype(bool)]

    themes = []
    for theme in codebook.themes:
        rows = coded[coded["theme_list"].map(lambda ts, t=theme.id: t in ts).astype(bool)]
        holders = rows[["stakeholder"]].drop_duplicates()
        pol = {p: int((rows["polarity"] == p).sum()) for p in ("barrier", "opportunity",
                                                                "neutral")}
        subs = {}
        for p in ("barrier", "opportunity", "neutral"):
            counts: dict[str, int] = {}
            for sl in rows.loc[rows["polarity"] == p, "sub_list"]:
                for s in sl:
                    if s.startswith(f"{theme.id}."):
                        counts[s] = counts.get(s, 0) + 1
            subs[p] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        splits = {}
        for key in SPLIT_KEYS:
            groups: dict[str, list[int]] = {}
            for r in all_stakeholders.itertuples(index=False):
                value = str(attrs_of[int(r.document_id)].get(key) or "unknown")
                groups.setdefault(value, [0, 0])[1] += 1
            for r in holders.itertuples(index=False):
                value = str(attrs_of[int(doc_of[r.stakeholder])].get(key) or "unknown")
                groups[value][0] += 1
            if any(v != "unknown" for v in groups):
                splits[key] = pd.DataFrame(
                    [(v, n, of, n / of if of else 0.0) for v, (n, of) in sorted(groups.items())],
                    columns=[key, "stakeholders", "of", "share"])
        themes.append(ThemeSummary(
            id=theme.id, name=theme.name, color=theme.color or "#777777",
            segments=len(rows), documents=rows["document_id"].nunique(),
            stakeholders=len(holders),
            share=len(holders) / total_stakeholders if total_stakeholders else 0.0,
            reviewed=int((rows["source"] == "reviewer").sum()),
            machine_only=int((rows["source"] == "machine").sum()),
            polarity=pol, subcodes=subs, splits=splits,
            quotes=select_quotes(rows, theme.id, docs, quotes_per_theme, max_per_stakeholder),
            topics=_topics_for(topics, theme.id)))

    labels = codebook.theme_ids + codebook.subcode_ids
    sets = [set(ts) | set(ss) for ts, ss in zip(coded["theme_list"], coded["sub_list"])]
    X = pd.DataFrame([[int(lab in s) for lab in labels] for s in sets], columns=labels,
                     dtype="int64")
    co = X.T @ X if len(X) else pd.DataFrame(0, index=labels, columns=labels)
    co.index.name = "code"
    # one row per stakeholder (the same ones counted above), in the order first met
    counts = X.assign(case=coded["stakeholder"].tolist()).groupby("case").sum() if len(X) \
        else pd.DataFrame(columns=labels)
    all_cases = sorted(all_stakeholders["stakeholder"])
    counts = counts.reindex(all_cases, fill_value=0).astype("int64")
    counts.index.name = "case"
    case_attrs = {c: attrs_of[int(doc_of[c])] for c in all_cases}
    for key in reversed(SPLIT_KEYS):
        if any(key in m for m in case_attrs.values()):
            counts.insert(0, key, [case_attrs[c].get(key, "") for c in counts.index])
    presence = counts.copy()
    presence[labels] = (presence[labels] > 0).astype("int64")

    n_coded = len(coded)
    return Summary(
        themes=themes, total_segments=total_segments, coded_segments=n_coded,
        total_stakeholders=total_stakeholders, total_documents=len(docs),
        reviewed_share=float((coded["source"] == "reviewer").mean()) if n_coded else 0.0,
        run=run, codebook_version=(run or {}).get("codebook_version") or codebook.version,
        redaction=redaction_status(list(docs.values())), reviewed_only=reviewed_only,
        cooccurrence=co, case_counts=counts, case_presence=presence)


def select_quotes(rows: pd.DataFrame, theme_id: str, docs: dict, n: int,
                  max_per_stakeholder: int) -> list[Quote]:
    """The ``n`` most central, mutually diverse segments of a theme, verbatim."""
    def centrality(r) -> float:
        s = r.scores if isinstance(r.scores, dict) else {}
        if theme_id in s:
            return float(s[theme_id])
        return 1.0 if r.source == "reviewer" else 0.0

    cands = sorted(rows.itertuples(index=False),
                   key=lambda r: (-centrality(r), r.document, int(r.start)))
    chosen: list[Quote] = []
    seen_words: list[set[str]] = []
    per: dict[tuple, int] = {}
    for r in cands:
        if len(chosen) >= n:
            break
        key = getattr(r, "stakeholder", None) or (int(r.document_id), r.speaker)
        if per.get(key, 0) >= max_per_stakeholder:
            continue
        text = docs[int(r.document_id)]["text"][int(r.start):int(r.end)]
        if text != r.text or not text.strip():
            continue  # offsets are sacred: never quote what is not in the document
        w = _words(text)
        if any(_near_duplicate(w, o) for o in seen_words):
            continue
        seen_words.append(w)
        per[key] = per.get(key, 0) + 1
        chosen.append(Quote(theme_id, text, r.document, int(r.document_id), r.speaker,
                            int(r.start), int(r.end), centrality(r), r.source, r.polarity,
                            [s for s in r.sub_list if s.startswith(f"{theme_id}.")]))
    return chosen


def _topics_for(topics: pd.DataFrame | None, theme_id: str) -> list[dict]:
    """Emergent topics mapped to a theme, from whatever topics table the store offers."""
    if topics is None or not len(topics):
        return []
    tcol = next((c for c in ("theme", "nearest_theme", "mapped_theme", "theme_id")
                 if c in topics.columns), None)
    if tcol is None:
        return []
    kcol = next((c for c in ("keywords", "label", "name", "representation")
                 if c in topics.columns), None)
    ncol = next((c for c in ("size", "count", "segments", "n") if c in topics.columns), None)
    out = []
    for r in topics[topics[tcol] == theme_id].to_dict("records"):
        if r.get("topic") == -1:
            continue
        kw = r.get(kcol) if kcol else ""
        if isinstance(kw, (list, tuple)):
            kw = ", ".join(map(str, kw))
        short = ", ".join(str(kw).split(", ")[:6]) if kw else ""
        out.append({"label": str(short or r.get("label") or r.get("topic_id", "")),
                    "keywords": str(kw or ""), "size": r.get(ncol) if ncol else None,
                    "subcode": str(r.get("subcode") or ""),
                    "emergent": bool(r.get("emergent", False))})
    return out


def _topic_text(x: dict) -> str:
    bits = []
    if x.get("size") is not None:
        bits.append(counted(x["size"], "segment"))
    if x.get("subcode"):
        bits.append(f"nearest {x['subcode']}")
    if x.get("emergent"):
        bits.append("emergent: no code is close")
    return x["label"] + (f" ({'; '.join(bits)})" if bits else "")


def _topic_groups(topics: list[dict]) -> list[tuple[str, list[dict]]]:
    """A theme's topics as ``("Topics", [...])`` (placed under one of its sub-codes) and
    ``("Emergent topics", [...])`` (nothing in the codebook is close), leaving out empty ones:
    only a topic ``topics`` flagged EMERGENT is listed as emergent."""
    placed = [x for x in topics if not x.get("emergent")]
    emergent = [x for x in topics if x.get("emergent")]
    return [(h, g) for h, g in (("Topics", placed), ("Emergent topics", emergent)) if g]


def themes_table(summary: Summary, codebook) -> pd.DataFrame:
    rows = []
    for t in summary.themes:
        rows.append({
            "theme": t.id, "name": t.name, "segments": t.segments, "documents": t.documents,
            "stakeholders": t.stakeholders, "stakeholders_interviewed": summary.total_stakeholders,
            "share_of_stakeholders": round(t.share, 4),
            "barrier": t.polarity["barrier"], "opportunity": t.polarity["opportunity"],
            "neutral": t.polarity["neutral"],
            "barrier_subcodes": ";".join(f"{k}={v}" for k, v in t.subcodes["barrier"].items()),
            "opportunity_subcodes": ";".join(f"{k}={v}"
                                             for k, v in t.subcodes["opportunity"].items()),
            "reviewed": t.reviewed, "machine_only": t.machine_only,
            "topics": ";".join(x["label"] for x in t.topics),
            **provenance_columns(summary),
        })
    return pd.DataFrame(rows)


# -- Markdown ---------------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"[\\`*\[\]|]")
_MD_ENTITY = re.compile(r"&(?=#?\w+;)")
_MD_ESCAPED = re.compile(r"\\([\\`*\[\]|])|&(amp|lt);")


def md_escape(text) -> str:
    """Quoted or user-supplied text as literal Markdown: no raw HTML (``<`` becomes ``&lt;``,
    and ``&`` before an entity name ``&amp;``), no links, images or link definitions (``[``
    and ``]`` are backslash-escaped), no code spans, emphasis or table cells (`` ` ``, ``*``,
    ``|``; and the backslash itself). It renders as the original text; :func:`md_unescape`
    gives it back."""
    text = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), str(text))
    return _MD_ENTITY.sub("&amp;", text).replace("<", "&lt;")


def md_unescape(text: str) -> str:
    """The text :func:`md_escape` was given."""
    return _MD_ESCAPED.sub(lambda m: m.group(1) or {"amp": "&", "lt": "<"}[m.group(2)], text)


def _md_inline(text) -> str:
    """:func:`md_escape` on one line (a name, a label): line breaks become spaces."""
    return md_escape(" ".join(str(text).split()))


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _provenance_lines(s: Summary) -> list[str]:
    run = s.run or {}
    r = (f"run {run['id']} ({run.get('finished_at') or run.get('started_at')}; model "
         f"{run.get('model_name')})" if run else "no coding run")
    scope = "reviewed segments only" if s.reviewed_only else "all coded segments"
    return [f"- Coding: {r}; codebook version `{s.codebook_version}`; qual {__version__}",
            f"- Text: {s.redaction}",
            f"- Scope: {scope}; {s.coded_segments} coded of "
            f"{counted(s.total_segments, 'stakeholder segment')}; "
            f"{counted(s.total_stakeholders, 'stakeholder')} in "
            f"{counted(s.total_documents, 'document')}",
            f"- Reviewed by a person: {_pct(s.reviewed_share)} of coded segments "
            f"(the rest are machine-only)"]


def _quote_md(q: Quote) -> list[str]:
    lines = [f"> {md_escape(line)}" if line else ">" for line in q.text.split("\n")]
    m = _md_inline
    lines.append(f"> — *{m(q.speaker)}*, {m(q.document)}, characters {q.start}–{q.end} "
                 f"({m(q.polarity)}; {m(q.source)}, score {q.score:.2f})")
    return lines


def to_markdown(s: Summary) -> str:
    out = ["# Theme summary", ""] + _provenance_lines(s) + ["", "## Overview", "",
           "| Theme | Segments | Documents | Stakeholders | Share | Barrier | Opportunity | "
           "Neutral | Reviewed |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    m = _md_inline                       # every name and label from the data is escaped
    for t in s.themes:                   # barrier + opportunity + neutral = segments
        out.append(f"| {m(t.name)} | {t.segments} | {t.documents} | {t.stakeholders} of "
                   f"{s.total_stakeholders} | {_pct(t.share)} | {t.polarity['barrier']} | "
                   f"{t.polarity['opportunity']} | {t.polarity['neutral']} | {t.reviewed} |")
    for t in s.themes:
        out += ["", f"## {m(t.name)} (`{t.id}`)", "",      # ids are checked by the codebook
                f"Raised in {counted(t.segments, 'segment')} by {t.stakeholders} of "
                f"{counted(s.total_stakeholders, 'stakeholder')} ({_pct(t.share)}) in "
                f"{counted(t.documents, 'document')}; {t.reviewed} reviewed by a person, "
                f"{t.machine_only} machine-only.",
                ""]
        for key, table in t.splits.items():
            parts = [f"{m(r[key])} {r['stakeholders']}/{r['of']}"
                     for r in table.to_dict("records")]
            out.append(f"- By {m(key.replace('_', ' '))}: " + "; ".join(parts))
        for p in ("barrier", "opportunity"):
            subs = ", ".join(f"{m(k)} ({v})" for k, v in t.subcodes[p].items()) or "none"
            out.append(f"- {_PLURAL[p]}: {t.polarity[p]} — {subs}")
        out.append(f"- Neutral: {t.polarity['neutral']}")
        for head, group in _topic_groups(t.topics):
            out.append(f"- {head}: " + "; ".join(m(_topic_text(x)) for x in group))
        if t.quotes:
            out += ["", "### Representative quotes", ""]
            for q in t.quotes:
                out += _quote_md(q) + [""]
    out += ["", "Files beside this one: `themes.csv`, `cooccurrence.csv`, `case_code_counts.csv`, "
            "`case_code_presence.csv`, `summary.html`.", ""]
    return "\n".join(out)


def parse_markdown_quotes(md: str) -> list[dict]:
    """The quotes in a summary.md, unescaped: text, speaker, document, start, end (used by
    tests)."""
    quotes, block = [], []
    attribution = re.compile(r"^> — \*(.*)\*, (.*), characters (\d+)–(\d+) \(")
    for line in md.split("\n"):
        if line.startswith(">"):
            m = attribution.match(line)
            if m:
                quotes.append({"text": "\n".join(block), "speaker": md_unescape(m.group(1)),
                               "document": md_unescape(m.group(2)), "start": int(m.group(3)),
                               "end": int(m.group(4))})
                block = []
            else:
                block.append(md_unescape(line[2:] if line.startswith("> ") else line[1:]))
        else:
            block = []
    return quotes


# -- HTML -------------------------------------------------------------------------------------
_POL_COLORS = {"barrier": "#d55e00", "opportunity": "#009e73", "neutral": "#999999"}


def _bar_svg(s: Summary) -> str:
    """Stacked horizontal bars: segments per theme by polarity."""
    width, left, bar_h, gap = 760, 260, 26, 12
    top = 30
    maxv = max([t.segments for t in s.themes] + [1])
    scale = (width - left - 60) / maxv
    h = top + len(s.themes) * (bar_h + gap) + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" '
             f'role="img" aria-label="Segments per theme by polarity">']
    x0 = left
    for i, p in enumerate(("barrier", "opportunity", "neutral")):
        parts.append(f'<rect x="{x0 + i * 130}" y="6" width="12" height="12" '
                     f'fill="{_POL_COLORS[p]}"/><text x="{x0 + i * 130 + 18}" y="17" '
                     f'font-size="13">{p}</text>')
    for i, t in enumerate(s.themes):
        y = top + i * (bar_h + gap)
        parts.append(f'<text x="{left - 8}" y="{y + bar_h * 0.68}" text-anchor="end" '
                     f'font-size="13">{html.escape(t.name)}</text>')
        x = left
        for p in ("barrier", "opportunity", "neutral"):
            w = t.polarity[p] * scale
            if w > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                             f'fill="{_POL_COLORS[p]}"><title>{p}: {t.polarity[p]}</title>'
                             f'</rect>')
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + bar_h * 0.68}" font-size="13">'
                     f'{t.segments}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _share_svg(s: Summary) -> str:
    """Share of stakeholders raising each theme."""
    width, left, bar_h, gap, top = 760, 260, 22, 10, 10
    h = top + len(s.themes) * (bar_h + gap) + 10
    scale = width - left - 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" '
             f'role="img" aria-label="Share of stakeholders raising each theme">']
    for i, t in enumerate(s.themes):
        y = top + i * (bar_h + gap)
        parts.append(f'<text x="{left - 8}" y="{y + bar_h * 0.7}" text-anchor="end" '
                     f'font-size="13">{html.escape(t.name)}</text>'
                     f'<rect x="{left}" y="{y}" width="{scale}" height="{bar_h}" '
                     f'fill="#eeeeee"/><rect x="{left}" y="{y}" width="{t.share * scale:.1f}" '
                     f'height="{bar_h}" fill="{html.escape(t.color)}"/>'
                     f'<text x="{left + scale + 6}" y="{y + bar_h * 0.7}" font-size="13">'
                     f'{_pct(t.share)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table_html(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [df.index.name or ""] +
                   list(df.columns))
    body = "".join("<tr><th>" + html.escape(str(i)) + "</th>" +
                   "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for i, row in zip(df.index, df.itertuples(index=False)))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(s: Summary) -> str:
    e = html.escape
    prov = "".join(f"<li>{e(line[2:]).replace('`', '')}</li>" for line in _provenance_lines(s))
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>Theme summary</title><style>",
             "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:980px;"
             "margin:2em auto;padding:0 1em;color:#222;line-height:1.45}"
             "table{border-collapse:collapse;margin:.5em 0;font-size:14px}"
             "td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}"
             "td{text-align:right}blockquote{border-left:4px solid #ccc;margin:.8em 0;"
             "padding:.2em 1em;white-space:pre-wrap;background:#fafafa}"
             ".cite{color:#555;font-size:13px;white-space:normal}"
             "h2{border-bottom:3px solid var(--c,#999);padding-bottom:.2em}",
             "</style></head><body>", "<h1>Theme summary</h1>", f"<ul>{prov}</ul>",
             "<h2>Segments per theme</h2>", _bar_svg(s),
             "<h2>Share of stakeholders raising each theme</h2>", _share_svg(s)]
    for t in s.themes:
        parts.append(f'<h2 style="--c:{e(t.color)}">{e(t.name)}</h2>')
        parts.append(f"<p>Raised in {counted(t.segments, 'segment')} by {t.stakeholders} of "
                     f"{counted(s.total_stakeholders, 'stakeholder')} ({_pct(t.share)}) in "
                     f"{counted(t.documents, 'document')}; {t.reviewed} reviewed by a person, "
                     f"{t.machine_only} machine-only.</p><ul>")
        for key, table in t.splits.items():
            parts.append(f"<li>By {e(key.replace('_', ' '))}: " + "; ".join(
                f"{e(str(r[key]))} {r['stakeholders']}/{r['of']}"
                for r in table.to_dict("records")) + "</li>")
        for p in ("barrier", "opportunity"):
            subs = ", ".join(f"{e(k)} ({v})" for k, v in t.subcodes[p].items()) or "none"
            parts.append(f"<li>{_PLURAL[p]}: {t.polarity[p]} — {subs}</li>")
        parts.append(f"<li>Neutral: {t.polarity['neutral']}</li>")
        for head, group in _topic_groups(t.topics):
            parts.append(f"<li>{head}: " + "; ".join(e(_topic_text(x)) for x in group)
                         + "</li>")
        parts.append("</ul>")
        for q in t.quotes:
            parts.append(f"<blockquote>{e(q.text)}<div class=\"cite\">— <em>{e(q.speaker)}"
                         f"</em>, {e(q.document)}, characters {q.start}–{q.end} "
                         f"({e(q.polarity)}; {e(q.source)}, score {q.score:.2f})</div>"
                         f"</blockquote>")
    parts += ["<h2>Cases × themes (segment counts)</h2>",
              _table_html(s.case_counts[[c for c in s.case_counts.columns
                                         if c in {t.id for t in s.themes} or
                                         c in ("sector", "stakeholder_group")]]),
              "</body></html>"]
    return "\n".join(parts)


# -- files ------------------------------------------------------------------------------------
def write_summary(summary: Summary, codebook, output_dir) -> dict[str, Path]:
    """Write summary.md, summary.html, themes.csv and the matrices, each atomically."""
    from .export import ExportError, atomic_path, inert_table

    out = Path(output_dir)
    if not out.is_dir():
        raise ExportError("the output folder does not exist", path=out)

    def csv(frame, p, index=True):           # text cells never read as spreadsheet formulas
        inert_table(frame, index=index).to_csv(p, index=index)

    files = {
        "summary.md": lambda p: p.write_text(to_markdown(summary), encoding="utf-8"),
        "summary.html": lambda p: p.write_text(to_html(summary), encoding="utf-8"),
        "themes.csv": lambda p: csv(themes_table(summary, codebook), p, index=False),
        # the matrices end with the provenance columns themes.csv has (run_id, ...)
        "cooccurrence.csv": lambda p: csv(with_provenance(summary.cooccurrence, summary), p),
        "case_code_counts.csv": lambda p: csv(with_provenance(summary.case_counts, summary), p),
        "case_code_presence.csv": lambda p: csv(with_provenance(summary.case_presence,
                                                                summary), p),
    }
    written = {}
    for name, write in files.items():
        with atomic_path(out / name, Path(name).suffix) as tmp:
            write(tmp)
        written[name] = out / name
    return written


def summary_from_store(store, codebook, *, reviewed_only: bool = False, document_ids=None,
                       **kw) -> Summary:
    """Compose the summary from a store (used by the CLI and tests); ``document_ids``: only
    those documents (``qual.scope``), else every current one."""
    from .review import effective_coding

    coding = effective_coding(store)
    documents = [store.document(int(i)) for i in store.documents()["id"]
                 if document_ids is None or int(i) in set(document_ids)]
    topics = None
    if hasattr(store, "topics"):
        try:
            topics = store.topics()
        except Exception:  # noqa: BLE001 - topics are optional; a summary without them is fine
            topics = None
    return summarise(coding, documents, codebook, run=store.latest_run("code"), topics=topics,
                     reviewed_only=reviewed_only, **kw)
