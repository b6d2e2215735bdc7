"""The reviewer decision log as a table an auditor can read: one row per decision, oldest first.

Every decision the store holds is a row, whatever its action: ``accept``, ``reject``,
``recode``, ``undo`` (a decision taken back), ``split`` and ``merge`` (segment boundaries
changed; one row on each segment replaced) and ``restore`` (a split or merge taken back; one
row on each segment brought back). Each row says who, when, on which segment (document,
speaker, offsets and text), the coding the reviewer saw (``before_*``), the coding they set
(``after_*``), the memo, whether they coded blind, and the lineage: which decision an undo or
restore takes back, the segments a split or merge made, those a restore brought back or
retired, and which segments the decided segment itself continues (a split, merge or new
document version) under ``continues``.

``decisions export`` is the other CSV: the current coding, editable and imported again.
"""

from __future__ import annotations

import pandas as pd

from .coder import NONE

COLUMNS = ["decision_id", "time", "reviewer", "action", "segment_id", "document", "speaker",
           "start", "end", "before_themes", "before_subcodes", "before_polarity",
           "after_themes", "after_subcodes", "after_polarity", "memo", "blind", "undoes",
           "segments_made", "segments_restored", "segments_retired", "segment_origin",
           "continues", "active", "text"]

_CODING = ("accept", "reject", "recode", "undo")


def _ids(values) -> str:
    return ";".join(str(int(v)) for v in values or [])


def _coding(d: dict, action: str | None = None) -> tuple[str, str, str]:
    """``(themes, subcodes, polarity)`` of a stored coding; ``none`` for no theme. Blank for
    the boundary actions' records, which hold segments, not a coding."""
    if not isinstance(d, dict) or "themes" not in d or action in ("split", "merge", "restore"):
        return "", "", ""
    themes = [t for t in d.get("themes") or [] if t != NONE]
    return (";".join(themes) or NONE, ";".join(d.get("subcodes") or []),
            d.get("polarity") or "neutral")


def audit_log(store, document_ids=None) -> pd.DataFrame:
    """Every decision in ``store`` as a row of :data:`COLUMNS` (``document_ids``: only the
    decisions on segments of those documents, any version)."""
    dec = store.decisions()
    segs = store.segments(role=None, current_only=False).set_index("segment_id")
    par = store.parents()
    links: dict[int, list] = {}
    for s, p, k in zip(par["segment_id"], par["parent_id"], par["kind"]):
        links.setdefault(int(s), []).append((int(p), k))
    continues = {s: ";".join(f"{k} of {p}" for p, k in sorted(v)) for s, v in links.items()}
    rows = []
    for d in dec.itertuples(index=False):
        sid = int(d.segment_id)
        seg = segs.loc[sid] if sid in segs.index else None
        if document_ids is not None and (seg is None or
                                         int(seg["document_id"]) not in set(document_ids)):
            continue
        before, after = d.before or {}, d.after or {}
        b = _coding(before, None if d.action in _CODING else d.action)
        a = _coding(after, d.action)
        rows.append({
            "decision_id": int(d.id), "time": d.created_at, "reviewer": d.reviewer,
            "action": d.action, "segment_id": sid,
            "document": None if seg is None else seg["document"],
            "speaker": None if seg is None else seg["speaker"],
            "start": None if seg is None else int(seg["start"]),
            "end": None if seg is None else int(seg["end"]),
            "before_themes": b[0], "before_subcodes": b[1], "before_polarity": b[2],
            "after_themes": a[0], "after_subcodes": a[1], "after_polarity": a[2],
            "memo": d.memo or "", "blind": bool(after.get("blind", False)),
            "undoes": after.get("undoes"),
            "segments_made": _ids(after.get("into")) if d.action in ("split", "merge") else "",
            "segments_restored": _ids(after.get("restored")) if d.action == "restore" else "",
            "segments_retired": _ids(after.get("retired")) if d.action == "restore" else "",
            "segment_origin": None if seg is None else seg["origin"],
            "continues": continues.get(sid, ""),
            "active": None if seg is None else bool(seg["active"]),
            "text": None if seg is None else seg["text"],
        })
    out = pd.DataFrame(rows, columns=COLUMNS)
    for c in ("start", "end", "undoes"):
        out[c] = out[c].astype("Int64")
    return out
