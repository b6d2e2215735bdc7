"""Agreement between coders: the machine and each reviewer, and reviewers with each other.

A coder's coding of a segment is a set of themes (``none`` when no theme applies). For a
pair of coders, on the segments both coded:

* Cohen's kappa per theme (scikit-learn) on the theme's presence / absence;
* Krippendorff's alpha (``krippendorff``) per theme and overall, nominal, on the theme
  set as one label;
* percentage agreement, and the list of disagreements to resolve.

A reviewer's coding is their latest decision in force on each segment (a decision they
took back with undo does not count). The machine's is the latest complete run.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd

from .coder import NONE, split_labels

MACHINE = "machine"


def codings(store, machine_all: bool = True, blind_only: bool = False) -> pd.DataFrame:
    """Long frame ``segment_id, coder, themes`` (sorted ';'-joined theme ids or 'none')
    for the machine and for each reviewer. ``blind_only``: a reviewer's coding counts only
    where they coded without seeing the machine's (see ``review.apply_decision``)."""
    frames = []
    dec = store.decisions()
    if len(dec):
        undone = {a.get("undoes") for a in dec["after"] if a.get("undoes") is not None}
        kept = dec[dec["action"].isin(["accept", "reject", "recode"]) & ~dec["id"].isin(undone)]
        if blind_only:
            kept = kept[[bool(a.get("blind")) for a in kept["after"]]]
        latest = kept.groupby(["segment_id", "reviewer"]).tail(1)
        frames.append(pd.DataFrame({
            "segment_id": latest["segment_id"].to_numpy(), "coder": latest["reviewer"].to_numpy(),
            "themes": [_norm(a.get("themes")) for a in latest["after"]]}))
    _, mc = store.review_frames(role=None, current_only=False, scores=False)
    if len(mc):
        if machine_all is False and frames:       # only the segments a reviewer coded matter
            mc = mc[mc["segment_id"].isin(frames[0]["segment_id"])]
        frames.insert(0, pd.DataFrame({"segment_id": mc["segment_id"].to_numpy(),
                                       "coder": MACHINE,
                                       "themes": [_norm(t) for t in mc["themes"]]}))
    if not frames:
        return pd.DataFrame(columns=["segment_id", "coder", "themes"])
    return pd.concat(frames, ignore_index=True)


def _norm(value) -> str:
    labels = sorted({t for t in split_labels(value) if t != NONE})
    return ";".join(labels) or NONE


def _kappa(a, b) -> float:
    from sklearn.metrics import cohen_kappa_score

    a, b = np.asarray(a), np.asarray(b)
    if len(a) == 0 or len(set(a.tolist()) | set(b.tolist())) < 2:
        return float("nan")       # undefined: neither coder's answer varies (e.g. a theme unused)
    if (a == b).all():
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(cohen_kappa_score(a, b))


def _alpha(a, b) -> float:
    import krippendorff

    a, b = list(a), list(b)
    if len(a) == 0:
        return float("nan")
    if a == b:
        return 1.0
    cats = {v: i for i, v in enumerate(sorted(set(a) | set(b)))}
    data = np.array([[cats[v] for v in a], [cats[v] for v in b]], dtype=float)
    try:
        return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    except (ValueError, ZeroDivisionError):
        return float("nan")


def pair_agreement(wide: pd.DataFrame, a: str, b: str, themes: list[str]) -> dict:
    both = wide[[a, b]].dropna()
    row = {"coder_a": a, "coder_b": b, "segments": len(both)}
    if len(both):
        row["agreement"] = round(float((both[a] == both[b]).mean()), 3)
    else:
        row["agreement"] = float("nan")
    row["alpha"] = _alpha(both[a], both[b])
    for t in themes:
        pa = both[a].map(lambda v: t in v.split(";"))
        pb = both[b].map(lambda v: t in v.split(";"))
        row[f"kappa_{t}"] = _kappa(pa, pb)
        row[f"alpha_{t}"] = _alpha(pa.astype(int), pb.astype(int))
    return row


def agreement(store, themes: list[str] | None = None, *, blind_only: bool = False) -> dict:
    """``{"pairs": DataFrame (one row per coder pair: segments, agreement, alpha,
    kappa_<theme>, alpha_<theme>), "disagreements": DataFrame, "coders": [...]}``.

    Pairs: the machine with each reviewer, and each two reviewers, on segments both coded.
    A reviewer who accepts what the machine showed agrees with it by construction; with
    ``blind_only`` only decisions made without seeing the machine's coding count, which
    measures the machine against independent human coding.
    """
    long = codings(store, machine_all=False, blind_only=blind_only)
    themes = list(themes or [])
    if len(long):
        seen = sorted({t for v in long["themes"] for t in v.split(";") if t != NONE})
        themes += [t for t in seen if t not in themes]
    wide = (long.drop_duplicates(["segment_id", "coder"], keep="last")
            .pivot(index="segment_id", columns="coder", values="themes")
            if len(long) else pd.DataFrame())
    coders = list(wide.columns)
    reviewers = [c for c in coders if c != MACHINE]
    pairs = [(MACHINE, r) for r in reviewers if MACHINE in coders]
    pairs += list(itertools.combinations(reviewers, 2))
    rows = [pair_agreement(wide, a, b, themes) for a, b in pairs]
    cols = ["coder_a", "coder_b", "segments", "agreement", "alpha"]
    cols += [f"kappa_{t}" for t in themes] + [f"alpha_{t}" for t in themes]
    table = pd.DataFrame(rows, columns=cols)
    dis = []
    for a, b in pairs:
        both = wide[[a, b]].dropna()
        diff = both[both[a] != both[b]]
        dis.append(pd.DataFrame({"segment_id": diff.index, "coder_a": a, "themes_a": diff[a].values,
                                 "coder_b": b, "themes_b": diff[b].values}))
    dis = (pd.concat(dis, ignore_index=True) if dis else
           pd.DataFrame(columns=["segment_id", "coder_a", "themes_a", "coder_b", "themes_b"]))
    return {"pairs": table, "disagreements": dis, "coders": coders}
