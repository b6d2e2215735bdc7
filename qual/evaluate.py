"""Agreement of machine coding with human coders: plain functions over label lists.

``read_labelled_csv`` validates a gold or training CSV (errors name the row and column);
``agreement`` compares two lists of label sets and returns every figure as a dict;
``format_report`` prints it as a table; ``code_texts`` codes texts with a fitted coder.

Metrics come from scikit-learn (precision / recall / F1 / support per theme, Cohen's κ per
theme presence, exact match = subset accuracy, polarity accuracy) and from the
``krippendorff`` package (α, nominal).

Krippendorff's α on multi-label data: α needs one value per coder and unit. We report it
two ways:

* ``alpha`` (headline): each segment's whole label *set* (e.g. ``people;processes``, or
  ``none``) is one nominal category. Strict: a partially matching set counts as a
  disagreement, as in exact match, but chance agreement is corrected for.
* ``alpha`` per theme in the table: presence / absence of that theme as a binary nominal
  variable (the same reliability matrix Cohen's κ is computed on).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .coder import NONE, split_labels
from .errors import QualError

POLARITIES = ("barrier", "opportunity", "neutral")


class LabelledFileError(QualError):
    """A gold or training CSV is missing, unreadable or has an invalid cell."""


# -- reading -----------------------------------------------------------------------------
def read_labelled_csv(path, themes, *, polarities=POLARITIES) -> pd.DataFrame:
    """Read a CSV with ``text`` and ``themes`` (``;``-separated theme ids or ``none``) and an
    optional ``polarity`` column; other columns are kept but ignored. Rows are numbered from
    1 (the first row after the header) in error messages."""
    path = Path(path)
    if not path.is_file():
        raise LabelledFileError("no such file", path=path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise LabelledFileError("not UTF-8 text; save the CSV as UTF-8", path=path) from None
    except (pd.errors.ParserError, csv.Error) as e:
        raise LabelledFileError(f"not a valid CSV file: {e}", path=path) from None
    except pd.errors.EmptyDataError:
        raise LabelledFileError("the file is empty (a header with 'text' and 'themes' "
                                "columns is needed)", path=path) from None
    df.columns = [str(c).strip() for c in df.columns]
    for col in ("text", "themes"):
        if col not in df.columns:
            raise LabelledFileError(f"no '{col}' column (columns found: "
                                    f"{', '.join(df.columns) or 'none'})", path=path, field=col)
    if not len(df):
        raise LabelledFileError("no rows after the header", path=path)
    known = list(themes) + [NONE]
    has_polarity = "polarity" in df.columns
    parsed_themes, parsed_pol = [], []
    for i, row in enumerate(df.itertuples(index=False), start=1):
        text = str(row.text).strip()
        if not text:
            raise LabelledFileError(f"row {i}, column 'text': empty text", path=path, field="text")
        labels = split_labels(row.themes)
        if not labels:
            raise LabelledFileError(f"row {i}, column 'themes': empty; give one or more of "
                                    f"{', '.join(known)} separated by ';'", path=path, field="themes")
        bad = [t for t in labels if t not in known]
        if bad:
            raise LabelledFileError(f"row {i}, column 'themes': unknown theme '{bad[0]}' "
                                    f"(expected {', '.join(known)})", path=path, field="themes")
        if NONE in labels and len(labels) > 1:
            raise LabelledFileError(f"row {i}, column 'themes': 'none' cannot be combined with "
                                    "a theme", path=path, field="themes")
        parsed_themes.append(";".join(t for t in known if t in labels))   # canonical order
        pol = str(getattr(row, "polarity", "") if has_polarity else "").strip().lower()
        if pol and pol not in polarities:
            raise LabelledFileError(f"row {i}, column 'polarity': unknown polarity '{pol}' "
                                    f"(expected {', '.join(polarities)} or blank)",
                                    path=path, field="polarity")
        parsed_pol.append(pol or None)
    df["text"] = df["text"].astype(str)
    df["themes"] = parsed_themes
    df["polarity"] = parsed_pol
    return df.reset_index(drop=True)


# -- metrics -----------------------------------------------------------------------------
def _matrix(label_sets, labels) -> np.ndarray:
    from sklearn.preprocessing import MultiLabelBinarizer

    return MultiLabelBinarizer(classes=list(labels)).fit_transform(
        [[t for t in s if t in labels] for s in label_sets])


def _norm(sets, order) -> list[list[str]]:
    """Label sets in the codebook's order; an empty set is ``[none]``."""
    rank = {t: i for i, t in enumerate(order)}
    out = []
    for s in sets:
        labels = sorted(dict.fromkeys(t for t in split_labels(s) if t != NONE),
                        key=lambda t: rank.get(t, len(rank)))
        out.append(labels or [NONE])
    return out


def _kappa(a, b) -> float:
    from sklearn.metrics import cohen_kappa_score

    if len(set(a) | set(b)) < 2:      # both coders constant and equal: perfect agreement
        return 1.0 if list(a) == list(b) else float("nan")
    with np.errstate(all="ignore"):
        k = cohen_kappa_score(a, b)
    return float(k)


def _alpha(a, b) -> float:
    import krippendorff

    values = sorted(set(a) | set(b))
    if len(values) < 2:
        return float("nan")      # α is undefined when the data have one value only
    code = {v: i for i, v in enumerate(values)}
    data = np.array([[code[v] for v in a], [code[v] for v in b]], dtype=float)
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def agreement(gold, predicted, themes, *, gold_polarity=None, predicted_polarity=None) -> dict:
    """Agreement of ``predicted`` with ``gold`` label sets (lists of lists of theme ids or
    ``;``-joined strings; empty or ``none`` means no theme).

    Returns ``{"n", "themes": {theme: {precision, recall, f1, support, kappa, alpha}},
    "none": {...same...}, "macro_f1", "exact_match", "alpha", "polarity_accuracy",
    "polarity_n"}``. ``macro_f1`` is the unweighted mean of the themes' F1 (``none`` is
    not a theme), over the themes that occur in the gold (F1 of a theme no human coder used
    is undefined; its false positives still show in its precision and κ)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    themes = list(themes)
    gold, predicted = _norm(gold, themes), _norm(predicted, themes)
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted differ in length")
    labels = themes + [NONE]
    G, P = _matrix(gold, labels), _matrix(predicted, labels)
    prec, rec, f1, sup = precision_recall_fscore_support(G, P, average=None, zero_division=0)
    per = {}
    nan = float("nan")
    for j, t in enumerate(labels):
        # undefined, not perfect: recall and F1 of a class the gold never uses, precision of
        # one never predicted, and κ when neither coder's column varies (both all-absent)
        per[t] = {"precision": float(prec[j]) if P[:, j].any() else nan,
                  "recall": float(rec[j]) if sup[j] else nan,
                  "f1": float(f1[j]) if sup[j] else nan,
                  "support": int(sup[j]),
                  "kappa": nan if len(set(G[:, j]) | set(P[:, j])) < 2 else
                  _kappa(G[:, j], P[:, j]),
                  "alpha": _alpha(G[:, j].tolist(), P[:, j].tolist())}
    present = [j for j in range(len(themes)) if sup[j] > 0]
    macro = float(np.mean([f1[j] for j in present])) if present else float("nan")
    result = {
        "n": len(gold),
        "themes": {t: per[t] for t in themes},
        "none": per[NONE],
        "macro_f1": float(macro),
        "exact_match": float(accuracy_score(G, P)),
        "alpha": _alpha([";".join(s) for s in gold], [";".join(s) for s in predicted]),
        "polarity_accuracy": None,
        "polarity_n": 0,
    }
    if gold_polarity is not None and predicted_polarity is not None:
        pairs = [(g, p) for g, p in zip(gold_polarity, predicted_polarity)
                 if isinstance(g, str) and g]
        if pairs:
            result["polarity_accuracy"] = float(accuracy_score([g for g, _ in pairs],
                                                               [p for _, p in pairs]))
            result["polarity_n"] = len(pairs)
    return result


def calibration(gold, probabilities, themes, *, bins: int = 10) -> dict:
    """Expected calibration error per theme: ``probabilities`` is an (n, themes) array of
    the coder's probability that each theme applies; the gold says whether it does. Rows
    are put in ``bins`` equal-width bins of probability; ECE is the mean, weighted by bin
    size, of |mean probability - share of rows where the theme applies|."""
    themes = list(themes)
    G = _matrix(_norm(gold, themes), themes).astype(float)
    P = np.asarray(probabilities, dtype=float)
    out = {}
    edges = np.linspace(0, 1, bins + 1)
    for j, t in enumerate(themes):
        b = np.clip(np.digitize(P[:, j], edges[1:-1]), 0, bins - 1)
        err = sum(abs(P[b == k, j].mean() - G[b == k, j].mean()) * (b == k).sum()
                  for k in range(bins) if (b == k).any())
        out[t] = float(err / len(P)) if len(P) else float("nan")
    return out


def selective(gold, predicted, confidence, themes, *, thresholds=(0.5, 0.6, 0.7, 0.8, 0.9)
              ) -> list[dict]:
    """For each confidence threshold P: the share of rows the machine would auto-code
    (confidence >= P, the coverage) and the exact match of their label sets with the
    gold (what ``code --auto-accept-above P`` would leave unreviewed)."""
    themes = list(themes)
    g, p = _norm(gold, themes), _norm(predicted, themes)
    c = np.asarray(confidence, dtype=float)
    rows = []
    for th in thresholds:
        keep = c >= th
        n = int(keep.sum())
        exact = float(np.mean([a == b for a, b, k in zip(g, p, keep) if k])) if n else float("nan")
        rows.append({"threshold": float(th), "coverage": n / len(c) if len(c) else float("nan"),
                     "n": n, "exact_match": exact})
    return rows


def _f(x) -> str:
    return "  n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:5.2f}"


def format_report(result: dict, title: str | None = None) -> str:
    lines = [title] if title else []
    lines.append(f"{'theme':<12}{'prec':>6}{'recall':>7}{'F1':>6}{'support':>8}{'kappa':>7}"
                 f"{'alpha':>7}")
    rows = list(result["themes"].items()) + [(NONE, result["none"])]
    for t, m in rows:
        lines.append(f"{t:<12}{_f(m['precision']):>6}{_f(m['recall']):>7}{_f(m['f1']):>6}"
                     f"{m['support']:>8}{_f(m['kappa']):>7}{_f(m['alpha']):>7}")
    lines.append(f"macro-F1 (themes in gold): {_f(result['macro_f1']).strip()}   "
                 f"exact match: {_f(result['exact_match']).strip()}   "
                 f"Krippendorff's alpha (label set, nominal): {_f(result['alpha']).strip()}   "
                 f"none recall: {_f(result['none']['recall']).strip()}")
    if result["polarity_accuracy"] is not None:
        lines.append(f"polarity accuracy: {_f(result['polarity_accuracy']).strip()} "
                     f"(on {result['polarity_n']} rows with a gold polarity)")
    else:
        lines.append("polarity accuracy: n/a (no polarity in the gold file)")
    if result.get("calibration"):
        lines.append("calibration (expected calibration error of each theme's probability): "
                     + ", ".join(f"{t} {_f(v).strip()}" for t, v in result["calibration"].items()))
    if result.get("selective"):
        lines.append("selective mode (auto-accept at confidence >= P): " + "; ".join(
            f"P={r['threshold']:.2f}: coverage {_f(r['coverage']).strip()}, exact "
            f"{_f(r['exact_match']).strip()}" for r in result["selective"]))
    lines.append(f"rows: {result['n']}")
    return "\n".join(lines)


# -- coding ------------------------------------------------------------------------------
def code_texts(coder, texts: list[str]) -> pd.DataFrame:
    """Predictions of a fitted coder for ``texts`` (the columns ``EmbeddingCoder.predict``
    gives), in order."""
    return coder.predict(texts=list(texts)).reset_index(drop=True)


def predictions_table(gold: pd.DataFrame, pred: pd.DataFrame, themes) -> pd.DataFrame:
    """The gold rows in order, with ``themes`` and ``polarity`` replaced by the predicted
    ones (the gold's kept as ``gold_themes`` / ``gold_polarity``) and ``score_<theme>``."""
    out = gold.copy()
    out.insert(out.columns.get_loc("themes"), "gold_themes", gold["themes"])
    out["gold_polarity"] = gold["polarity"]
    out["themes"] = pred["themes"].to_numpy()
    out["polarity"] = pred["polarity"].to_numpy()
    for t in list(themes) + [NONE]:
        col = f"score_{t}"
        if col in pred.columns:
            out[col] = pred[col].to_numpy().round(4)
    return out


def evaluate_coder(coder, gold: pd.DataFrame, themes) -> tuple[dict, pd.DataFrame]:
    """Code ``gold["text"]`` with a fitted coder; return (agreement dict, predictions)."""
    pred = code_texts(coder, gold["text"].tolist())
    result = agreement(gold["themes"].tolist(), pred["themes"].tolist(), themes,
                       gold_polarity=gold["polarity"].tolist(),
                       predicted_polarity=pred["polarity"].tolist())
    score_cols = [f"score_{t}" for t in themes]
    if all(c in pred.columns for c in score_cols):
        result["calibration"] = calibration(gold["themes"].tolist(), pred[score_cols].to_numpy(),
                                            themes)
    if "confidence" in pred.columns:
        result["selective"] = selective(gold["themes"].tolist(), pred["themes"].tolist(),
                                        pred["confidence"].to_numpy(), themes)
    return result, predictions_table(gold, pred, themes)
