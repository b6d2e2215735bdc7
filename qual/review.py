"""Review logic: the effective coding of each segment and reviewer decisions.

The effective coding of a segment is its latest complete run's machine codes with the
reviewer decisions applied on top: the latest decision on a segment wins. Decisions are
an append-only log in the store; undo is a new decision that restores the coding the
reviewer saw before. Nothing here writes SQL: it asks the store for frames.

Decision kinds (``action``):

* ``accept``: the coding shown is right; it is recorded as the reviewer's coding.
* ``reject``: the machine's themes do not apply; the segment is coded ``none``.
* ``recode``: the reviewer sets themes, sub-codes and polarity.
* ``undo``: takes back the latest decision still in force on the segment. Its ``after``
  is the coding before that decision, with ``undoes`` (the id taken back) and, when no
  decision remains in force, ``machine: true`` — the segment falls back to the machine's
  (latest) coding and counts as not reviewed again.

Boundaries: ``split_segment`` cuts a segment in two where the machine lumped two points
together; ``merge_segments`` joins neighbouring segments of one turn that the machine cut
apart; ``take_back_boundary_change`` restores the segments as they were. The new segments
continue the old ones: they show the old machine coding until the next ``code`` run and
carry the old reviewer decision flagged *stale* (the text differs), so they come back into
the queue. Likewise when a transcript file changes, the new version's segments carry the
decisions made on the old version's (stale where their text changed).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .coder import NONE, split_labels
from .errors import QualError, StoreError

ACTIONS = ("accept", "reject", "recode", "undo")
POLARITIES = ("barrier", "opportunity", "neutral")


class ReviewError(QualError, ValueError):
    """A decision that cannot be applied (unknown segment, theme, polarity, nothing to undo).
    A QualError like every other fault (one clear line), and a ValueError as it always was."""


# -- effective coding -----------------------------------------------------------------------
def _join(values) -> str:
    return ";".join(values or [])


def effective_coding(store, *, role: str | None = "stakeholder", scores: bool = True) -> pd.DataFrame:
    """Segments with machine codes and decisions applied.

    Columns: segment columns (segment_id, document_id, document, start, end, text, speaker,
    role, ...), ``machine_themes``, ``themes``, ``subcodes``, ``polarity``, ``confidence``,
    ``scores`` (dict; JSON text when ``scores=False``, which is faster), ``run_id``,
    ``source`` (machine | reviewer | none when never coded), ``reviewer``, ``decided_at``,
    ``memo``, ``stale`` (decision made on other text), ``reviewed`` (a reviewer's decision
    is in force). Segments never coded and never decided have ``source == 'none'``.
    Vectorised: see bench/review_bench.py for the time at 50,000 segments.
    """
    return apply_decisions(machine_coding(store, role=role, scores=scores),
                           store.latest_decisions())


def machine_coding(store, *, role: str | None = "stakeholder", scores: bool = True) -> pd.DataFrame:
    """Segments with their latest complete run's machine codes (no decisions applied).
    Changes only when documents or runs are added, so the app caches it."""
    seg, codes = store.review_frames(role=role, scores=scores)
    codes = codes.rename(columns={"themes": "machine_themes", "subcodes": "machine_subcodes",
                                  "polarity": "machine_polarity"})
    if len(codes):
        df = seg.merge(codes, on="segment_id", how="left")
    else:
        df = seg.assign(run_id=pd.NA, machine_themes=pd.NA, machine_subcodes=pd.NA,
                        machine_polarity=pd.NA, confidence=float("nan"), scores=None)
    df["auto_accept_above"] = df["run_id"].map(_auto_thresholds(store, df["run_id"]))
    return df


def _auto_thresholds(store, run_ids) -> dict:
    """``{run_id: P}`` for the runs coded with ``code --auto-accept-above P``."""
    out = {}
    for run_id in pd.Series(run_ids).dropna().unique():
        value = (store.run(int(run_id)).get("parameters") or {}).get("auto_accept_above")
        if value is not None:
            out[run_id] = float(value)
    return out


def apply_decisions(machine: pd.DataFrame, latest: pd.DataFrame) -> pd.DataFrame:
    """The effective coding: ``machine_coding`` with each segment's latest decision
    (``store.latest_decisions()``) on top. Returns a new frame."""
    df = machine.copy()
    df["themes"] = df["machine_themes"]
    df["subcodes"] = df["machine_subcodes"]
    df["polarity"] = df["machine_polarity"]
    df["source"] = np.where(df["machine_themes"].notna(), "machine", "none")
    df["reviewer"] = pd.Series(None, index=df.index, dtype=object)
    df["decided_at"] = pd.Series(None, index=df.index, dtype=object)
    df["memo"] = ""
    df["stale"] = False
    if len(latest):
        after = latest["after"]
        in_force = np.array([not a.get("machine") for a in after], dtype=bool)
        dec = pd.DataFrame({
            "segment_id": latest["segment_id"].to_numpy(),
            "_in_force": in_force,
            "_themes": [_join(a.get("themes")) or NONE for a in after],
            "_subcodes": [_join(a.get("subcodes")) for a in after],
            "_polarity": [a.get("polarity") or "neutral" for a in after],
            "_reviewer": latest["reviewer"].to_numpy(),
            "_decided_at": latest["created_at"].to_numpy(),
            "_memo": latest["memo"].to_numpy(),
            "_sha": latest["text_sha256"].to_numpy(),
        })
        m = df[["segment_id"]].merge(dec, on="segment_id", how="left")
        hit = m["_in_force"].eq(True).to_numpy()
        decided = m["_reviewer"].notna().to_numpy()
        df.loc[hit, "themes"] = m.loc[hit, "_themes"].to_numpy()
        df.loc[hit, "subcodes"] = m.loc[hit, "_subcodes"].to_numpy()
        df.loc[hit, "polarity"] = m.loc[hit, "_polarity"].to_numpy()
        df.loc[hit, "source"] = "reviewer"
        df.loc[decided, "reviewer"] = m.loc[decided, "_reviewer"].to_numpy()
        df.loc[decided, "decided_at"] = m.loc[decided, "_decided_at"].to_numpy()
        df.loc[decided, "memo"] = m.loc[decided, "_memo"].to_numpy()
        df.loc[hit, "stale"] = (m.loc[hit, "_sha"].to_numpy() != df.loc[hit, "text_sha256"].to_numpy())
    df["reviewed"] = df["source"].eq("reviewer")
    # auto-accepted: machine coding sure enough for its run's --auto-accept-above; no
    # decision is stored for it, and a reviewer's decision always takes it over
    threshold = pd.to_numeric(df.get("auto_accept_above", pd.Series(float("nan"), index=df.index)),
                              errors="coerce")
    sure = pd.to_numeric(df["confidence"], errors="coerce") >= threshold
    df["auto_accepted"] = df["source"].eq("machine") & sure.fillna(False).astype(bool)
    return df


#: the columns ``apply_decisions`` sets; the rest of a row is the machine's
DECIDED_COLUMNS = ("themes", "subcodes", "polarity", "source", "reviewer", "decided_at", "memo",
                   "stale", "reviewed", "auto_accepted")
#: queue orders that a coding frame can carry precomputed (see ``CodingCache``)
RANK_COLUMNS = ("_rank_confidence", "_rank_document")


def with_ranks(machine: pd.DataFrame) -> pd.DataFrame:
    """``machine`` with the queue's fixed sort orders as integer ranks: ``_rank_confidence``
    (least confident first, never coded last, then document and text order) and
    ``_rank_document`` (document and text order). Decisions change neither key, so a frame
    ranked once per machine coding lets ``review_queue`` sort by one integer column."""
    conf = pd.to_numeric(machine["confidence"], errors="coerce")
    keyed = machine[["document", "start"]].assign(_conf=conf.to_numpy())
    out = machine.copy()
    for col, keys in (("_rank_confidence", ["_conf", "document", "start"]),
                      ("_rank_document", ["document", "start"])):
        order = keyed.reset_index(drop=True).sort_values(keys, na_position="last",
                                                          kind="stable").index.to_numpy()
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        out[col] = rank
    return out


@dataclass(frozen=True)
class _Cached:
    segments: tuple           # the store's change stamps this coding reflects
    decisions: tuple
    machine: pd.DataFrame     # machine_coding with ranks, one row per segment
    coding: pd.DataFrame      # apply_decisions on it
    rows: pd.Series           # segment_id -> row label in both frames
    carriers: dict            # segment id -> the frame's segments that continue it


class CodingCache:
    """The effective coding of one store for every session of the review app, kept up to date
    at the cost of what changed, not of the corpus.

    ``coding(store)`` reads the store's change stamp (``Store.change_stamp``, which scans no
    segments). When documents, runs or segments changed (a new ``code`` run, a split, merge or
    re-cut) it reads the machine coding again and applies every decision (``effective_coding``
    with ``scores=False``, plus the queue's ranks, see ``with_ranks``). When only decisions
    were added, by this app or any other process, it reads those decisions' segments and
    brings just their rows (and the rows of segments continuing them) up to date with
    ``Store.latest_decisions(segment_ids)``: the same rows the whole computation gives. Each
    answer is a new frame or the previous one unchanged, never one changed in place, so a
    session still reading an older frame reads a consistent one. Thread-safe.
    """

    #: more decided segments than this since the last answer: read everything again
    MAX_UPDATE = 1000

    def __init__(self, role: str | None = "stakeholder"):
        self.role = role
        self._lock = threading.Lock()
        self._state: _Cached | None = None
        self.rebuilds = 0           # whole readings (for tests and benches)
        self.updates = 0            # incremental ones

    def coding(self, store) -> pd.DataFrame:
        segments, decisions = store.change_stamp()
        with self._lock:
            s = self._state
            if s is not None and s.segments == segments:
                if s.decisions == decisions:
                    return s.coding
                new = self._update(store, s, decisions)
                if new is not None:
                    self._state = new
                    return new.coding
            self._state = self._build(store, segments, decisions)
            return self._state.coding

    def _build(self, store, segments: tuple, decisions: tuple) -> _Cached:
        machine = with_ranks(machine_coding(store, role=self.role, scores=False))
        coding = apply_decisions(machine, store.latest_decisions())
        rows = pd.Series(machine.index, index=machine["segment_id"].astype("int64").to_numpy())
        carriers: dict[int, list[int]] = {}
        par = store.parents()
        if len(par):
            up: dict[int, set] = {}
            for child, parent in zip(par["segment_id"], par["parent_id"]):
                up.setdefault(int(child), set()).add(int(parent))
            for sid in rows.index:
                seen, frontier = set(), [int(sid)]
                while frontier:                      # every segment this one continues
                    frontier = [p for f in frontier for p in up.get(f, ()) if p not in seen]
                    seen.update(frontier)
                for a in seen:
                    carriers.setdefault(a, []).append(int(sid))
        self.rebuilds += 1
        return _Cached(segments, decisions, machine, coding, rows, carriers)

    def _update(self, store, s: _Cached, decisions: tuple) -> _Cached | None:
        """Bring ``s`` up to the decisions of stamp ``decisions``, or None when the log is not
        the one ``s`` was read from (fewer or older decisions: read it all again)."""
        count, ids = store.decided_since(s.decisions[1])
        if decisions[1] < s.decisions[1] or count < decisions[0] - s.decisions[0]:
            return None
        if len(ids) > self.MAX_UPDATE:                  # a batch (an import): read it all
            return None
        touched = set(ids)
        for sid in ids:
            touched.update(s.carriers.get(sid, ()))
        mine = sorted(i for i in touched if i in s.rows.index)
        coding = s.coding
        if mine:
            labels = s.rows.loc[mine].to_numpy()
            part = apply_decisions(s.machine.loc[labels], store.latest_decisions(mine))
            coding = s.coding.copy()
            for col in DECIDED_COLUMNS:
                coding.loc[labels, col] = part[col].to_numpy()
        self.updates += 1
        return _Cached(s.segments, decisions, s.machine, coding, s.rows, s.carriers)


_SHARED: dict[str, "CodingCache"] = {}
_SHARED_LOCK = threading.Lock()


def shared_coding_cache(db) -> "CodingCache":
    """The one :class:`CodingCache` of this process for the store at ``db`` (by its resolved
    path): every session of the review app shares it, and ``python -m qual review`` fills it
    before the first reviewer arrives (:func:`warm_up`)."""
    key = str(Path(db).resolve())
    with _SHARED_LOCK:
        return _SHARED.setdefault(key, CodingCache())


def warm_up(db) -> threading.Thread | None:
    """Build the effective coding of the store at ``db`` in a background thread, so that the
    first session of a new review app does not wait on it (0.45 s at 100 interviews). Only
    reads; an absent, damaged or unreadable store is left for the app to report."""
    if not db or not Path(db).is_file():
        return None

    def fill() -> None:
        from .store import Store

        try:
            with Store(db, create=False) as store:
                shared_coding_cache(db).coding(store)
        except Exception:  # noqa: BLE001 - the app shows the store's problem to the reviewer
            pass

    thread = threading.Thread(target=fill, name="qual-review-warm-up", daemon=True)
    thread.start()
    return thread


def reviewer_examples(store) -> pd.DataFrame:
    """Reviewer-decided segments as labelled examples for ``EmbeddingCoder.fit``:
    columns ``text, themes, subcodes, polarity`` (the reviewer's latest coding)."""
    columns = ["text", "themes", "subcodes", "polarity"]
    if store.change_stamp()[1][0] == 0:   # no decision yet: skip reading the whole coding
        return pd.DataFrame(columns=columns)
    df = effective_coding(store, role=None)
    df = df[df["source"] == "reviewer"]
    return df[columns].reset_index(drop=True)


def coding_of(row) -> dict:
    """The coding of an effective-coding row as stored in a decision's before/after."""
    return {"themes": [t for t in split_labels(row["themes"]) if t != NONE],
            "subcodes": split_labels(row["subcodes"]),
            "polarity": row["polarity"] if isinstance(row["polarity"], str) else "neutral"}


# -- the review queue -----------------------------------------------------------------------
def _has_label(col: pd.Series, labels) -> pd.Series:
    """Rows whose ';'-separated labels include any of ``labels``."""
    labels = [labels] if isinstance(labels, str) else list(labels)
    pattern = "(?:^|;)(?:" + "|".join(re.escape(x) for x in labels) + ")(?:;|$)"
    return col.fillna("").astype(str).str.contains(pattern, regex=True)


#: document metadata fields that name a stakeholder group, most specific first
GROUP_FIELDS = ("stakeholder_group", "group", "sector", "organisation_type", "organisation")


def group_fields(documents: pd.DataFrame) -> list[str]:
    """Metadata fields the documents have that can group stakeholders: the usual names
    (``GROUP_FIELDS``) first, then any other field that some documents share (more than one
    value, fewer values than documents)."""
    seen: dict[str, set] = {}
    for m in documents.get("metadata", []):
        for k, v in (m or {}).items():
            if isinstance(v, (str, int, float)) and str(v).strip():
                seen.setdefault(k, set()).add(str(v).strip())
    usual = [f for f in GROUP_FIELDS if f in seen]
    other = sorted(k for k, vals in seen.items() if k not in usual
                   and 1 < len(vals) < max(len(documents), 2))
    return usual + other


def with_groups(coding: pd.DataFrame, documents: pd.DataFrame, field: str | None) -> pd.DataFrame:
    """``coding`` with a ``group`` column: the value of the document metadata ``field``
    (e.g. ``stakeholder_group`` from metadata.csv), or ``(not given)``."""
    values = {}
    if field:
        values = {int(i): str((m or {}).get(field) or "").strip()
                  for i, m in zip(documents["id"], documents["metadata"])}
    values = {k: v for k, v in values.items() if v}
    group = pd.Series(coding["document_id"].to_numpy()).map(values)     # one look-up per row
    group = group.astype(object).where(group.notna(), "(not given)")
    return coding.assign(group=group.to_numpy())


def review_queue(coding: pd.DataFrame, *, themes=None, subcodes=None, polarity=None,
                 min_confidence: float | None = None, max_confidence: float | None = None,
                 document_ids=None, groups=None, reviewed: bool | None = False,
                 order: str = "confidence", auto_accepted: bool = False) -> pd.DataFrame:
    """The segments to review, filtered and ordered (a view of ``effective_coding``'s frame).

    ``themes`` / ``subcodes``: keep segments whose effective coding has any of them (``none``
    is a theme here). ``polarity``: one or several polarities. ``reviewed``: False (default)
    those without a decision in force or whose decision was made on other text (stale),
    True only decided ones that are not stale, None all.
    ``groups``: keep segments whose ``group`` (see ``with_groups``) is one of these.
    ``auto_accepted``: the not-reviewed queue leaves out segments the machine auto-accepted
    (``code --auto-accept-above``) unless this is True.
    ``order``: ``confidence`` (least confident first; never coded last), ``document`` (text
    order), ``theme`` (by first theme, then confidence), ``group`` (by stakeholder group,
    then confidence; needs ``with_groups``), ``random`` (a fixed shuffle, for blind coding of
    an unbiased sample), or ``speaker``.
    """
    df = coding
    mask = pd.Series(True, index=df.index)
    if themes:
        mask &= _has_label(df["themes"], themes)
    if subcodes:
        mask &= _has_label(df["subcodes"], subcodes)
    if polarity:
        pol = [polarity] if isinstance(polarity, str) else list(polarity)
        mask &= df["polarity"].isin(pol)
    conf = pd.to_numeric(df["confidence"], errors="coerce")
    if min_confidence is not None:
        mask &= conf >= min_confidence
    if max_confidence is not None:
        mask &= conf <= max_confidence
    if document_ids:
        mask &= df["document_id"].isin(list(document_ids))
    if groups or order == "group":
        if "group" not in df:
            raise ReviewError("grouping by stakeholder group needs with_groups(coding, ...)")
        if groups:
            mask &= df["group"].isin([groups] if isinstance(groups, str) else list(groups))
    if reviewed is not None:
        stale = df["stale"].fillna(False).astype(bool) if "stale" in df else False
        if reviewed:
            mask &= df["reviewed"] & ~stale
        else:                                   # a decision made on other text needs a look
            mask &= ~df["reviewed"] | stale
            if not auto_accepted and "auto_accepted" in df:
                mask &= ~df["auto_accepted"].fillna(False).astype(bool)
    rank = {"confidence": "_rank_confidence", "document": "_rank_document"}.get(order)
    if rank in df:
        # a frame ranked once (with_ranks, as CodingCache keeps it): the rows in the order of
        # one integer column, the same order as the keys, taken from the frame once
        pos = np.flatnonzero(mask.to_numpy())
        pos = pos[np.argsort(df[rank].to_numpy()[pos], kind="stable")]
        return df.iloc[pos].reset_index(drop=True)
    out = df[mask].assign(_conf=conf[mask])
    by_conf = ["_rank_confidence"] if "_rank_confidence" in out else ["_conf", "document", "start"]
    if order == "confidence":
        out = out.sort_values(by_conf, na_position="last", kind="stable")
    elif order == "document":
        out = out.sort_values(["_rank_document"] if "_rank_document" in out
                              else ["document", "start"], kind="stable")
    elif order == "theme":
        out = out.assign(_t=out["themes"].fillna("").str.split(";").str[0])
        out = out.sort_values(["_t", *by_conf], kind="stable").drop(columns="_t")
    elif order == "group":
        out = out.sort_values(["group", *by_conf], na_position="last", kind="stable")
    elif order == "random":                      # a fixed shuffle: a sample for agreement
        key = (out["segment_id"].astype("int64") * 2654435761) % 4294967296
        out = out.assign(_r=key.to_numpy()).sort_values("_r", kind="stable").drop(columns="_r")
    elif order == "speaker":
        out = out.sort_values(["speaker", "_conf"], kind="stable")
    else:
        raise ReviewError(f"unknown queue order '{order}'"
                          " (confidence, document, theme, group, random, speaker)")
    return out.drop(columns="_conf").reset_index(drop=True)


# -- decisions ---------------------------------------------------------------------------
def _segment_row(store, segment_id: int) -> pd.Series:
    df = effective_coding_of(store, segment_id)
    if df is None:
        raise ReviewError(f"no segment with id {segment_id}")
    return df


def effective_coding_of(store, segment_id: int) -> pd.Series | None:
    """The effective coding of one segment (the fields of an ``effective_coding`` row that a
    decision needs), or None when there is no such segment. Reads one segment only."""
    seg = store.segment_record(int(segment_id))
    if seg is None:
        return None
    code = store.latest_machine_code(int(segment_id))
    r = pd.Series(seg)
    r["themes"] = code["themes"] if code else None
    r["subcodes"] = code["subcodes"] if code else ""
    r["polarity"] = code["polarity"] if code else "neutral"
    r["confidence"] = code["confidence"] if code else float("nan")
    r["source"] = "machine" if code else "none"
    r["reviewed"] = False
    decs = store.segment_decisions(int(segment_id), lineage=True)
    if len(decs):
        a = decs.iloc[-1]["after"]
        if not a.get("machine"):
            r["themes"] = _join(a.get("themes")) or NONE
            r["subcodes"] = _join(a.get("subcodes"))
            r["polarity"] = a.get("polarity") or "neutral"
            r["source"] = "reviewer"
            r["reviewed"] = True
    return r


def _in_force(decs: pd.DataFrame) -> list[int]:
    """Ids of a segment's decisions still in force (undo takes back the latest one)."""
    stack: list[int] = []
    for d in decs.itertuples(index=False):     # one segment's decisions: a handful
        if d.action == "undo":
            undone = d.after.get("undoes")
            if undone in stack:
                stack.remove(undone)
        else:
            stack.append(int(d.id))
    return stack


def normalise_coding(coding: dict, codebook) -> dict:
    """A coding (themes, sub-codes, polarity) checked against the codebook and put in its
    canonical form: a sub-code brings its theme, themes in codebook order, no theme ->
    neutral. Raises ReviewError for an unknown theme, sub-code or polarity."""
    return _validate(coding, codebook)


def unknown_label(label: str, codebook) -> str:
    """What to tell someone who typed ``label``, which is neither a theme nor a sub-code: a
    sub-code typo lists the valid sub-codes (of its theme when the part before the dot is
    one), a theme typo the themes, with the closest match first when there is one."""
    import difflib

    theme = label.split(".", 1)[0]
    if "." in label or theme not in codebook.theme_ids and difflib.get_close_matches(
            label, codebook.subcode_ids, n=1, cutoff=0.75):
        known = [s for s in codebook.subcode_ids if s.split(".", 1)[0] == theme] \
            or codebook.subcode_ids
        what = f"sub-codes of {theme}" if known != codebook.subcode_ids else "sub-codes"
        kind = "sub-code"
    else:
        known, what, kind = codebook.theme_ids, "themes", "theme"
    near = [s for s in codebook.subcode_ids if s.split(".", 1)[-1] == label] \
        or difflib.get_close_matches(label, known, n=1, cutoff=0.6)
    hint = f"did you mean {near[0]}? " if near else ""
    return f"unknown {kind} '{label}' ({hint}{what}: {', '.join(known)})"


def _validate(coding: dict, codebook) -> dict:
    themes = [t for t in split_labels(coding.get("themes")) if t != NONE]
    subcodes = split_labels(coding.get("subcodes"))
    polarity = coding.get("polarity") or "neutral"
    if polarity not in POLARITIES:
        raise ReviewError(f"unknown polarity '{polarity}' (expected {', '.join(POLARITIES)})")
    if codebook is not None:
        for t in themes:
            if t not in codebook.theme_ids:
                raise ReviewError(unknown_label(t, codebook))
        for s in subcodes:
            if s not in codebook.subcode_ids:
                raise ReviewError(unknown_label(s, codebook))
            if codebook.theme_of(s) not in themes:        # a sub-code brings its theme along
                themes.append(codebook.theme_of(s))
        themes = [t for t in codebook.theme_ids if t in themes]
    else:
        for s in subcodes:
            t = s.split(".")[0]
            if "." in s and t not in themes:
                themes.append(t)
    if not themes:
        subcodes, polarity = [], "neutral"
    return {"themes": themes, "subcodes": subcodes, "polarity": polarity}


def apply_decision(store, segment_id: int, reviewer: str, action: str, *, themes=None,
                   subcodes=None, polarity=None, memo: str = "", codebook=None,
                   blind: bool = False) -> int:
    """Record one decision on a segment and return its id (the log is append-only).

    ``accept`` records the coding shown; ``reject`` codes the segment ``none``; ``recode``
    sets ``themes`` / ``subcodes`` / ``polarity`` (checked against ``codebook`` when given;
    a sub-code brings its theme along); ``undo`` takes back the latest decision in force.
    ``blind``: the reviewer coded without being shown the machine's coding (recorded in the
    decision's ``after``; agreement can count only such decisions, which an accept of what
    was shown cannot inflate). Only a recode or reject can be blind.
    """
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise ReviewError("a decision needs the reviewer's name")
    if action not in ACTIONS:
        raise ReviewError(f"unknown action '{action}' (expected {', '.join(ACTIONS)})")
    if blind and action not in ("recode", "reject"):
        raise ReviewError("only a recode or a reject can be made blind")
    row = _segment_row(store, segment_id)
    if "active" in row and not row["active"]:
        raise ReviewError(f"segment {segment_id} was split or merged into new segments, which "
                          "take its decisions now: reload the queue")
    before = coding_of(row)
    if action == "accept":
        after = before
    elif action == "reject":
        after = {"themes": [], "subcodes": [], "polarity": "neutral"}
    elif action == "recode":
        after = _validate({"themes": themes if themes is not None else before["themes"],
                           "subcodes": subcodes if subcodes is not None else
                           (before["subcodes"] if themes is None else []),
                           "polarity": polarity or before["polarity"]}, codebook)
    else:  # undo
        decs = store.segment_decisions(segment_id, lineage=True)
        stack = _in_force(decs)
        if not stack:
            raise ReviewError(f"nothing to undo on segment {segment_id}")
        undone = decs[decs["id"] == stack[-1]].iloc[0]
        after = dict(undone["before"])
        after["undoes"] = int(undone["id"])
        if len(stack) == 1:
            after["machine"] = True
    if blind:
        after = {**after, "blind": True}
    return store.add_decision(int(segment_id), reviewer, action, before, after, memo=memo or "",
                              text_sha256=None)


# -- boundaries: split, merge, take back ---------------------------------------------------
_CUT = re.compile(r"(?<=[.?!…])[\"')\]]*\s+|(?<=[,;:])\s+|\s+(?=[-–—]\s)")


#: the fewest words a split may leave on either side (a one-word segment codes nothing)
MIN_SPLIT_WORDS = 3


def _words(text: str) -> int:
    return len(re.findall(r"\w+(?:['’]\w+)*", text))


def split_points(text: str, min_words: int = MIN_SPLIT_WORDS) -> list[int]:
    """Offsets into ``text`` where a reviewer may cut it: after sentence ends and after
    commas, semicolons, colons and before dashes — each leaving at least ``min_words``
    words on both sides."""
    cuts = []
    for m in _CUT.finditer(text):
        at = m.end()
        if _words(text[:m.start()]) >= min_words and _words(text[at:]) >= min_words:
            cuts.append(at)
    return cuts


def default_cut(text: str, cuts: list[int] | None = None) -> int | None:
    """The cut offered first: the break nearest the middle of the text (a sentence end
    when one is about as near), or None when there is no break to cut at."""
    cuts = split_points(text) if cuts is None else list(cuts)
    if not cuts:
        return None
    mid = len(text) / 2

    def cost(c: int) -> float:
        sentence = bool(re.search(r"[.?!…][\"')\]]*\s*$", text[:c]))
        return abs(c - mid) * (0.8 if sentence else 1.0)

    return min(cuts, key=cost)


def _require_reviewer(reviewer: str) -> str:
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise ReviewError("a decision needs the reviewer's name")
    return reviewer


def _active_segment(store, segment_id: int) -> dict:
    seg = store.segment_record(int(segment_id))
    if seg is None:
        raise ReviewError(f"no segment with id {segment_id}")
    if not seg["active"]:
        raise ReviewError(f"segment {segment_id} was already split or merged (reload)")
    return seg


def split_segment(store, segment_id: int, at: int, reviewer: str, *, memo: str = "") -> list[int]:
    """Cut a segment in two at ``at`` (an offset into the segment's text, e.g. one of
    ``split_points``). Whitespace at the cut goes to neither part. Returns the two new
    segments' ids; the old one is kept, inactive, with a ``split`` decision in the log."""
    reviewer = _require_reviewer(reviewer)
    seg = _active_segment(store, segment_id)
    text = seg["text"]
    at = int(at)
    left, right = text[:at], text[at:]
    if not (0 < at < len(text)) or not re.search(r"\w", left) or not re.search(r"\w", right):
        raise ReviewError(f"cannot split segment {segment_id} at {at}: both parts need words")
    if min(_words(left), _words(right)) < MIN_SPLIT_WORDS:
        raise ReviewError(f"cannot split segment {segment_id} there: each part needs at least "
                          f"{MIN_SPLIT_WORDS} words (this cut leaves "
                          f"{_words(left)} and {_words(right)})")
    left_end = seg["start"] + len(left.rstrip())
    right_start = seg["start"] + at + (len(right) - len(right.lstrip()))
    before = coding_of(effective_coding_of(store, segment_id))
    try:
        return store.replace_segments([int(segment_id)], [(seg["start"], left_end),
                                                          (right_start, seg["end"])],
                                      kind="split", reviewer=reviewer, before=before, memo=memo)
    except StoreError as e:
        raise ReviewError(str(e)) from None


def merge_segments(store, segment_ids, reviewer: str, *, memo: str = "") -> int:
    """Join neighbouring segments of one speaker turn into one (the text between them is
    kept). Returns the new segment's id; the old ones are kept, inactive, with a ``merge``
    decision each in the log."""
    reviewer = _require_reviewer(reviewer)
    ids = sorted({int(i) for i in segment_ids})
    if len(ids) < 2:
        raise ReviewError("merging needs at least two segments")
    segs = sorted((_active_segment(store, i) for i in ids), key=lambda r: r["start"])
    if len({(r["document_id"], r["turn_index"]) for r in segs}) != 1:
        raise ReviewError("only segments of the same speaker turn can be merged")
    turn = store.segments(role=None, document_id=segs[0]["document_id"])
    turn = turn[turn["turn_index"] == segs[0]["turn_index"]]
    between = turn[(turn["start"] > segs[0]["start"]) & (turn["start"] < segs[-1]["start"])
                   & ~turn["segment_id"].isin(ids)]
    if len(between):
        raise ReviewError("only neighbouring segments can be merged: segment "
                          f"{int(between.iloc[0]['segment_id'])} lies between them")
    before = coding_of(effective_coding_of(store, segs[0]["segment_id"]))
    try:
        return store.replace_segments(ids, [(segs[0]["start"], segs[-1]["end"])], kind="merge",
                                      reviewer=reviewer, before=before, memo=memo)[0]
    except StoreError as e:
        raise ReviewError(str(e)) from None


def neighbours(store, segment_id: int) -> tuple[int | None, int | None]:
    """The active segments before and after this one in its speaker turn (or None)."""
    seg = store.segment_record(int(segment_id))
    if seg is None:
        return None, None
    turn = store.segments(role=None, document_id=seg["document_id"])
    turn = turn[turn["turn_index"] == seg["turn_index"]].sort_values("start")
    ids = turn["segment_id"].tolist()
    if seg["segment_id"] not in ids:
        return None, None
    i = ids.index(seg["segment_id"])
    return (ids[i - 1] if i > 0 else None), (ids[i + 1] if i + 1 < len(ids) else None)


def take_back_boundary_change(store, segment_id: int, reviewer: str, *, memo: str = "") -> list[int]:
    """Undo the split or merge that made ``segment_id`` (or that replaced it): the old
    segments come back, with their decisions. Returns the restored segments' ids."""
    reviewer = _require_reviewer(reviewer)
    decision = None
    own = store.segment_decisions(int(segment_id))
    own = own[own["action"].isin(["split", "merge"])]
    if len(own):
        decision = int(own.iloc[-1]["id"])
    else:
        for level in store.ancestor_levels(segment_id)[:1]:
            for parent in level:
                d = store.segment_decisions(parent)
                d = d[d["action"].isin(["split", "merge"])]
                for r in d.itertuples(index=False):
                    if int(segment_id) in r.after.get("into", []):
                        decision = int(r.id)
    if decision is None:
        raise ReviewError(f"segment {segment_id} was not made or replaced by a split or merge")
    try:
        return store.restore_segments(decision, reviewer=reviewer, memo=memo)
    except StoreError as e:
        raise ReviewError(str(e)) from None


def decision_log(store, segment_id: int | None = None) -> pd.DataFrame:
    """The audit log: every decision (or one segment's), oldest first."""
    return store.segment_decisions(segment_id) if segment_id is not None else store.decisions()


def add_memo(store, author: str, text: str, *, segment_id=None, document_id=None) -> int:
    if not (author or "").strip():
        raise ReviewError("a memo needs its author's name")
    if not (text or "").strip():
        raise ReviewError("the memo is empty")
    return store.add_memo(author.strip(), text.strip(),
                          segment_id=None if segment_id is None else int(segment_id),
                          document_id=None if document_id is None else int(document_id))


def memos(store, *, segment_id=None, document_id=None) -> pd.DataFrame:
    return store.memos(segment_id=segment_id, document_id=document_id)


# -- overview -------------------------------------------------------------------------------
def theme_overview(coding: pd.DataFrame, documents: pd.DataFrame | None = None,
                   theme_ids=None) -> pd.DataFrame:
    """Per theme: segments, documents, stakeholders coded, barrier / opportunity / neutral
    segments and the share reviewed. A stakeholder is counted by the rule of
    ``qual.stakeholders`` (the document's ``stakeholder_id``, else one person per document),
    as in the summaries."""
    from .stakeholders import stakeholder_keys

    cols = ["segment_id", "document_id", "speaker", "themes", "polarity", "reviewed"]
    df = coding[cols + (["start"] if "start" in coding.columns else [])].copy()
    df["stakeholder"] = stakeholder_keys(df, documents if documents is not None else [])
    df["theme"] = df["themes"].fillna("").astype(str).str.split(";")
    ex = df.explode("theme")
    ex = ex[ex["theme"].ne("")]
    g = ex.groupby("theme")
    out = pd.DataFrame({
        "segments": g["segment_id"].nunique(),
        "documents": g["document_id"].nunique(),
        "stakeholders": g["stakeholder"].nunique(),
        "barrier": g["polarity"].apply(lambda s: int((s == "barrier").sum())),
        "opportunity": g["polarity"].apply(lambda s: int((s == "opportunity").sum())),
        "neutral": g["polarity"].apply(lambda s: int((s == "neutral").sum())),
        "reviewed": g["reviewed"].mean().round(3),
        "reviewed_segments": g["reviewed"].sum().astype(int),
    })
    order = list(theme_ids or []) + [NONE]
    order += [t for t in out.index if t not in order]
    out = out.reindex([t for t in order if t in out.index]).fillna(0)
    out.index.name = "theme"
    return out.reset_index()


def stakeholder_count(coding: pd.DataFrame, documents: pd.DataFrame | None = None) -> int:
    """How many stakeholders the coded segments come from (the rule of ``qual.stakeholders``,
    as in the summaries): the "of N" of the Overview's stakeholder counts."""
    from .stakeholders import stakeholder_keys

    return int(stakeholder_keys(coding, documents if documents is not None else []).nunique())


# -- what the review page records and shows ------------------------------------------------
def correction(shown: dict, chosen: dict, *, memo: str = "", blind: bool = False,
               codebook=None) -> tuple[str, dict]:
    """What "Save correction" records: ``(action, keyword arguments for apply_decision)``.

    ``shown`` is the coding the card showed (``coding_of``), ``chosen`` the coding in the
    correction form. Sub-codes of themes not chosen are dropped (the form offers only the
    chosen themes' sub-codes). Blind, the form is the reviewer's own coding, even with no
    theme. Sighted, a form that changes nothing is not a recode: with a memo it keeps the
    coding (an ``accept`` carrying the memo); without one there is nothing to save."""
    themes = [t for t in split_labels(chosen.get("themes")) if t != NONE]
    subcodes = split_labels(chosen.get("subcodes"))
    if codebook is not None:
        subcodes = [s for s in subcodes if codebook.theme_of(s) in themes]
    polarity = chosen.get("polarity") or "neutral"
    memo = (memo or "").strip()
    recode = {"themes": themes, "subcodes": subcodes, "polarity": polarity, "memo": memo}
    if blind:
        return "recode", {**recode, "blind": True}
    new = _validate(recode, codebook)
    try:
        old = _validate(shown, codebook)
    except ReviewError:                      # the shown coding uses codes no longer in the codebook
        old = None
    if new == old:
        if memo:
            return "accept", {"memo": memo}
        raise ReviewError("Nothing to save: the form shows the coding as it is. Change the "
                          "themes, sub-codes or polarity, or press Accept to keep it.")
    return "recode", recode


def score_summary(scores: dict, top: int = 3) -> str:
    """One line for the card: the ``top`` theme scores (``none`` included), highest first,
    and "close call" when the best two are within 0.05."""
    themes = sorted(((k, float(v)) for k, v in (scores or {}).items()
                     if "." not in k and k != "polarity_score"
                     and isinstance(v, (int, float)) and not np.isnan(v)),
                    key=lambda kv: -kv[1])
    if not themes:
        return ""
    line = " · ".join(f"{k} {v:.2f}" for k, v in themes[:top])
    if len(themes) > 1 and themes[0][1] - themes[1][1] < 0.05:
        line += " (close call)"
    return line


def ids_phrase(ids) -> str:
    """``segment 5`` / ``segments 5 and 6`` / ``segments 5, 6 and 7``."""
    ids = [str(int(i)) for i in ids]
    if not ids:
        return "no segment"
    if len(ids) == 1:
        return f"segment {ids[0]}"
    return "segments " + ", ".join(ids[:-1]) + " and " + ids[-1]


_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")


def transcript_paragraphs(text: str, turns: pd.DataFrame, segments: pd.DataFrame) -> list[dict]:
    """A document as paragraphs for reading: one dict per paragraph with ``turn`` (its index
    in ``turns``), ``speaker``, ``role``, ``first`` (the turn's first paragraph) and ``pieces``,
    a list of ``(text, segment_id or None)`` in text order. A blank line starts a paragraph of
    the same turn, also inside a segment, which then has a piece in each paragraph. Only
    ``segments`` (``start``, ``end``, ``segment_id``) inside a turn are marked."""
    segs = segments.sort_values("start") if len(segments) else segments
    out: list[dict] = []
    for i, t in enumerate(turns.itertuples(index=False)):
        spans, pos = [], int(t.start)
        if len(segs):
            inside = segs[(segs["start"] >= t.start) & (segs["end"] <= t.end)]
            for s in inside.itertuples(index=False):
                if s.start < pos:                    # overlapping spans: keep the first
                    continue
                if s.start > pos:
                    spans.append((pos, int(s.start), None))
                spans.append((int(s.start), int(s.end), int(s.segment_id)))
                pos = int(s.end)
        if pos < t.end:
            spans.append((pos, int(t.end), None))
        paras: list[list] = [[]]
        for start, end, sid in spans:
            chunk, at = text[start:end], 0
            for m in _PARAGRAPH.finditer(chunk):
                if chunk[at:m.start()]:
                    paras[-1].append((chunk[at:m.start()], sid))
                paras.append([])
                at = m.end()
            if chunk[at:]:
                paras[-1].append((chunk[at:], sid))
        paras = [p for p in paras if any(x.strip() for x, _ in p)]
        for k, pieces in enumerate(paras or [[]]):
            out.append({"turn": i, "speaker": t.speaker, "role": t.role, "first": k == 0,
                        "pieces": pieces})
    return out


# -- showing user text in the app ----------------------------------------------------------
_AUTOLINK = re.compile(r"(?i)(?:https?|ftp|mailto|xmpp|www)(?=&#58;|&#46;)|\w(?=&#64;)")

#: characters that Markdown, HTML or Streamlit's own syntax (colours, icons, math) act on
_MARKUP = frozenset("\\`*_{}[]()<>#+-.!|~&\"'$:=@")


def safe_markup(text, *, newlines: str = "\n") -> str:
    """Text from the data (names, questions, segments, memos, metadata, keywords) as markup
    that shows it literally wherever it goes in ``st.markdown``, a caption, a label, inside
    raw HTML or an HTML attribute: every character that Markdown, HTML or Streamlit's
    syntax acts on becomes a numeric character reference, so no link, image, tag or
    formatting from the data can come alive. ``newlines`` replaces line breaks: keep them
    (``"\\n"``) in Markdown, use ``"<br>"`` inside raw HTML, so that a blank line in the
    data cannot end an HTML block, and ``"&#10;"`` in an attribute."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    s = str(text).replace("\r\n", "\n").replace("\r", "\n")
    s = "".join(f"&#{ord(c)};" if c in _MARKUP or (ord(c) < 32 and c not in "\n\t") else c
                for c in s)
    # Markdown turns web addresses in the text into links after decoding the references
    # above (GFM autolinks): an invisible zero-width space after "http", "www" or before
    # "@" keeps them text
    s = _AUTOLINK.sub(lambda m: m.group(0) + "&#8203;", s)
    if newlines == "\n":        # an indented line would be a code block, which shows "&#33;"
        return "\n".join(line.lstrip(" \t") for line in s.split("\n"))
    return s.replace("\t", " ").replace("\n", newlines)
