"""Plain data for the app's topics view: what the latest stored ``topics`` run found.

Nothing here fits a model: ``python -m qual topics`` stores runs, these functions only read them.
"""

from __future__ import annotations

import math

import pandas as pd

HINT = "No topics yet: run `python -m qual topics` first."

COLUMNS = ["topic", "size", "keywords", "theme", "subcode", "similarity", "emergent",
           "examples", "label"]


def similarity_text(sim) -> str:
    """A topic's similarity to its nearest sub-code, for display: 3 decimals, rounded *down*
    (0.5498 shows as ``0.549``), so a figure is never shown above a threshold it is below.
    The EMERGENT flag is not read from it: it is the calibrated rule on the topic's segments
    (``qual.topics``, whose threshold the run's parameters record, see ``emergent_rule``).
    Blank for the outliers row (no similarity)."""
    if sim is None or pd.isna(sim):
        return ""
    return f"{math.floor(round(float(sim) * 1000, 6)) / 1000:.3f}"


def emergent_rule(run: dict | None) -> str:
    """How a topics run set its EMERGENT flags, in one line for a reader (the run's recorded
    ``emergent_rule``), or "" for a run stored before the flag was calibrated."""
    return str(((run or {}).get("parameters") or {}).get("emergent_rule") or "")


def latest_topics_run(store) -> dict | None:
    """The latest complete topics run (``None`` when there is none)."""
    return store.latest_run("topics")


def topics_table(store, run_id: int | None = None) -> pd.DataFrame:
    """The topics of ``run_id`` (default: the latest complete topics run), largest first, with
    the outlier bin (topic -1) last. Columns: topic, size, keywords, theme, subcode, similarity,
    emergent, examples (list of str), label. Empty (same columns) when no run is stored."""
    df = store.topics(run_id)
    if df.empty:
        return pd.DataFrame(columns=COLUMNS)
    df = df[[c for c in COLUMNS if c in df.columns]].copy()
    df["outlier"] = df["topic"] == -1
    df = (df.sort_values(["outlier", "size", "topic"], ascending=[True, False, True],
                         kind="stable")
          .drop(columns="outlier").reset_index(drop=True))
    return df


def topics_by_theme(store, run_id: int | None = None, theme_ids=None) -> dict[str, pd.DataFrame]:
    """Per theme, the topics placed under it (topic, size, keywords, subcode, similarity,
    emergent), largest first. Themes follow ``theme_ids`` order (those without topics are left
    out), then any other theme; emergent topics are listed under the theme they are nearest to
    and flagged. The outlier bin is left out. Empty dict when no run is stored."""
    t = topics_table(store, run_id)
    t = t[t["topic"] != -1]
    if t.empty:
        return {}
    order = [x for x in (theme_ids or []) if x in set(t["theme"])]
    order += [x for x in dict.fromkeys(t["theme"]) if x not in order]
    cols = ["topic", "size", "keywords", "subcode", "similarity", "emergent"]
    return {theme: t.loc[t["theme"] == theme, cols].reset_index(drop=True) for theme in order}


def theme_topic_sizes(store, run_id: int | None = None) -> pd.DataFrame:
    """For a bar chart: one row per topic (outliers left out) with ``topic`` (a short label),
    ``size`` and ``theme`` (``emergent`` topics keep their nearest theme)."""
    t = topics_table(store, run_id)
    t = t[t["topic"] != -1]
    words = t["keywords"].fillna("").map(lambda k: ", ".join(k.split(", ")[:3]))
    return pd.DataFrame({"topic": [f"{i}: {w}" for i, w in zip(t["topic"], words)],
                         "size": t["size"].astype(int).to_numpy(),
                         "theme": t["theme"].to_numpy()})
