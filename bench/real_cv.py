"""Coding quality on real testimony first: cross-validation grouped by witness on the
double-coded real Inquiry answers, then the held-out written sets.

    python bench/real_cv.py [--coder hybrid|embedding] [--folds 5] [--params JSON] [--model DIR]

Real answers: ``../shared/data/inquiry/dev_consensus.csv`` (287 answers, 79 sessions), split
into folds by ``source`` (the session's file, i.e. the witness), so no witness is both
learned from and tested on. For each fold the coder is fitted on the codebook with the
test fold's answers removed from its reference sets (``codebook/reference/``), and codes the
test fold. Written sets: ``bench/data/dev_turns.csv`` and ``dev_formal.csv`` (held out; not
in the codebook or its reference sets), coded by the coder fitted on everything.

Printed for each: the ``evaluate`` table (per-theme κ, exact match, none recall/precision,
polarity), the expected calibration error of each theme's probability and the selective
mode (coverage and exact match at confidence thresholds). Vectors are cached in
``bench/out/vectors.sqlite``, under the model's key. ``--model DIR`` measures another local
sentence-transformers folder (e.g. all-mpnet-base-v2, README "How good is the coding?").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qual.codebook import load_codebook  # noqa: E402
from qual.coder import EmbeddingCoder, HybridCoder  # noqa: E402
from qual.embed import CachedEmbedder, Embedder  # noqa: E402
from qual.evaluate import (agreement, calibration, format_report, read_labelled_csv,  # noqa: E402
                           selective)
from qual.store import VectorCache  # noqa: E402

INQUIRY = REPO.parent / "shared" / "data" / "inquiry"
CODERS = {"hybrid": HybridCoder, "embedding": EmbeddingCoder}


def make_coder(kind, codebook, encoder, params):
    return CODERS[kind](codebook, encoder, **params)


def fit(coder, exclude):
    if isinstance(coder, HybridCoder):
        return coder.fit(exclude_texts=exclude)
    return coder.fit()


def report(title, gold, pred, themes):
    result = agreement(gold["themes"].tolist(), pred["themes"].tolist(), themes,
                       gold_polarity=gold["polarity"].tolist(),
                       predicted_polarity=pred["polarity"].tolist())
    result["calibration"] = calibration(gold["themes"].tolist(),
                                        pred[[f"score_{t}" for t in themes]].to_numpy(), themes)
    result["selective"] = selective(gold["themes"].tolist(), pred["themes"].tolist(),
                                    pred["confidence"].to_numpy(), themes)
    print(format_report(result, title=title))
    print(f"none precision: {result['none']['precision']:.2f}\n")
    return result


def main(argv=None) -> int:
    from sklearn.model_selection import GroupKFold

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coder", choices=sorted(CODERS), default="hybrid")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--params", default="{}", help="coder parameters as JSON")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--model", default=None, help="local sentence-transformers folder "
                    "(default: all-MiniLM-L6-v2 from its package)")
    args = ap.parse_args(argv)
    params = json.loads(args.params)
    codebook = load_codebook()
    themes = codebook.theme_ids
    (REPO / "bench" / "out").mkdir(exist_ok=True)
    enc = CachedEmbedder(Embedder(args.model), VectorCache(REPO / "bench" / "out" / "vectors.sqlite"))
    real = read_labelled_csv(INQUIRY / "dev_consensus.csv", themes)
    print(f"model {enc.key}")
    print(f"codebook {codebook.version} ({len(codebook.reference)} reference rows); coder "
          f"{args.coder} {make_coder(args.coder, codebook, enc, params).get_params()}\n")
    preds = [None] * len(real)
    fit_times = []
    for tr, te in GroupKFold(args.folds).split(real, groups=real["source"]):
        coder = make_coder(args.coder, codebook, enc, params)
        t0 = time.perf_counter()
        fit(coder, real["text"].iloc[te].tolist())
        fit_times.append(time.perf_counter() - t0)
        p = coder.predict(texts=real["text"].iloc[te].tolist())
        for i, row in zip(te, p.to_dict("records")):
            preds[i] = row
    out = {"real": report(f"== real Inquiry answers ({len(real)}), {args.folds}-fold CV grouped "
                          f"by witness ({real['source'].nunique()} sessions) ==",
                          real, pd.DataFrame(preds), themes)}
    print(f"fit: {np.mean(fit_times):.1f} s a fold on average\n")
    coder = make_coder(args.coder, codebook, enc, params)
    fit(coder, [])
    for name in ("dev_turns.csv", "dev_formal.csv"):
        gold = read_labelled_csv(REPO / "bench" / "data" / name, themes)
        out[name] = report(f"== {name} ({len(gold)}, written, held out) ==", gold,
                           coder.predict(texts=gold["text"].tolist()), themes)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
