"""Review logic: the effective coding of each segment and reviewer decisions.

The effective coding of a segment is its latest complete run's machine codes with the
reviewer decisions applied on top: the latest decision on a segment wins. Decisions are
an append-only log in the store; undo is a new decision that restores the coding the
reviewer saw before. Nothing here writes SQL: it asks the store for frames.
"""

from __future__ import annotations

import pandas as pd

from .coder import NONE, split_labels

ACTIONS = ("accept", "reject", "recode", "undo")


def effective_coding(store, *, role: str | None = "stakeholder") -> pd.DataFrame:
    """Segments with machine codes and decisions applied.

    Columns: segment columns (segment_id, document_id, document, start, end, text, speaker,
    role, ...), ``machine_themes``, ``themes``, ``subcodes``, ``polarity``, ``confidence``,
    ``scores`` (dict), ``run_id``, ``source`` (machine | reviewer | none when never coded),
    ``reviewer``, ``decided_at``, ``memo``, ``stale`` (decision made on other text).
    Segments never coded by the machine and never decided have ``source == 'none'``.
    """
    seg = store.segments(role=role)
    codes = store.machine_codes()
    if len(codes):
        codes = codes.rename(columns={"themes": "machine_themes", "subcodes": "machine_subcodes",
                                      "polarity": "machine_polarity"})
        df = seg.merge(codes, on="segment_id", how="left")
    else:
        df = seg.assign(run_id=pd.NA, machine_themes=pd.NA, machine_subcodes=pd.NA,
                        machine_polarity=pd.NA, confidence=float("nan"), scores=None)
    df["themes"] = df["machine_themes"]
    df["subcodes"] = df["machine_subcodes"]
    df["polarity"] = df["machine_polarity"]
    df["source"] = df["machine_themes"].map(lambda v: "machine" if isinstance(v, str) else "none")
    df["reviewer"] = None
    df["decided_at"] = None
    df["memo"] = ""
    df["stale"] = False
    decisions = store.decisions()
    if len(decisions):
        latest = decisions.groupby("segment_id").tail(1).set_index("segment_id")
        hit = df["segment_id"].isin(latest.index)
        for i in df.index[hit]:
            d = latest.loc[df.at[i, "segment_id"]]
            after = d["after"]
            df.at[i, "themes"] = ";".join(after.get("themes") or []) or NONE
            df.at[i, "subcodes"] = ";".join(after.get("subcodes") or [])
            df.at[i, "polarity"] = after.get("polarity") or "neutral"
            df.at[i, "source"] = "reviewer"
            df.at[i, "reviewer"] = d["reviewer"]
            df.at[i, "decided_at"] = d["created_at"]
            df.at[i, "memo"] = d["memo"]
            df.at[i, "stale"] = d["text_sha256"] != df.at[i, "text_sha256"]
    return df


def reviewer_examples(store) -> pd.DataFrame:
    """Reviewer-decided segments as labelled examples for ``EmbeddingCoder.fit``:
    columns ``text, themes, subcodes, polarity`` (the reviewer's latest coding)."""
    df = effective_coding(store, role=None)
    df = df[df["source"] == "reviewer"]
    return df[["text", "themes", "subcodes", "polarity"]].reset_index(drop=True)


def coding_of(row) -> dict:
    """The coding of an effective-coding row as stored in a decision's before/after."""
    return {"themes": [t for t in split_labels(row["themes"]) if t != NONE],
            "subcodes": split_labels(row["subcodes"]),
            "polarity": row["polarity"] if isinstance(row["polarity"], str) else "neutral"}
