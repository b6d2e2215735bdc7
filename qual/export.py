"""Exports of the effective coding. Every file is written atomically: a temporary file in
the target folder, then a rename, so a failure never leaves a half-written export."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from .errors import QualError

BASE_COLUMNS = ["segment_id", "document", "speaker", "role", "start", "end", "text", "themes",
                "subcodes", "polarity", "confidence"]


class ExportError(QualError):
    """An export cannot be written."""


@contextmanager
def atomic_path(target: str | Path, suffix: str = ""):
    """Yield a temporary path beside ``target``; on success rename it onto ``target``."""
    target = Path(target)
    if not target.parent.exists():
        raise ExportError("the output folder does not exist", path=target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp",
                               dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except OSError as e:
        raise ExportError(f"cannot write: {e.strerror or e}", path=target) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def coded_segments_table(coding: pd.DataFrame, documents: pd.DataFrame, theme_ids: list[str],
                         runs: dict[int, dict] | None = None) -> pd.DataFrame:
    """One row per coded segment with the contract columns: ``segment_id, document, speaker,
    role, start, end, text, themes, subcodes, polarity, confidence, score_<theme>..., source``,
    then ``run_id, codebook_version, model, redacted`` and the case attributes as ``case_<key>``."""
    df = coding[coding["source"] != "none"].copy()
    for t in theme_ids:
        df[f"score_{t}"] = df["scores"].map(lambda s, t=t: (s or {}).get(t, float("nan"))
                                            if isinstance(s, dict) else float("nan"))
    runs = runs or {}
    df["codebook_version"] = df["run_id"].map(lambda r: runs.get(r, {}).get("codebook_version"))
    df["model"] = df["run_id"].map(lambda r: runs.get(r, {}).get("model_name"))
    docs = documents.set_index("id")
    df["redacted"] = df["document_id"].map(lambda d: bool(docs.at[d, "redacted"]))
    attrs = sorted({k for m in documents["metadata"] for k in m if k != "encoding"})
    for k in attrs:
        df[f"case_{k}"] = df["document_id"].map(lambda d, k=k: _cell(docs.at[d, "metadata"].get(k)))
    cols = (BASE_COLUMNS + [f"score_{t}" for t in theme_ids]
            + ["source", "reviewer", "run_id", "codebook_version", "model", "redacted"]
            + [f"case_{k}" for k in attrs])
    df["run_id"] = df["run_id"].astype("Int64")
    return df[cols].reset_index(drop=True)


def _cell(value):
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return value


def write_csv(table: pd.DataFrame, output: str | Path) -> Path:
    with atomic_path(output, ".csv") as tmp:
        table.to_csv(tmp, index=False, encoding="utf-8")
    return Path(output)
