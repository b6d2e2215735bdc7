"""fp32 vs int8 encoder, in one run: rate, cosine, coding agreement and evaluation figures.

    python bench/int8.py [--rounds 2] [--json FILE]

Segments: the stakeholder segments of the six Inquiry transcripts
(``../shared/data/inquiry/transcripts``), ingested into a temporary store. On the same distinct
segment texts it measures:

1. raw rate of each encoder (segments/s; ``--rounds`` alternating rounds, the best of each, so a
   neighbour's burst on the shared machine hurts both alike), and int8/fp32 as a ratio;
2. cosine between each segment's fp32 and int8 vector (mean, 1st percentile, min);
3. agreement of the HybridCoder's coding: fitted on the codebook with each encoder, share of
   segments given exactly the same set of themes (and the same polarity);
4. ``bench/real_cv.py``'s figures with each encoder: cross-validation grouped by witness on the
   double-coded real answers (``dev_consensus.csv``) and the two held-out written sets, with the
   largest absolute move of any figure (per-theme κ and F1, macro-F1, exact match, none
   recall/precision, α, polarity accuracy).

The keep-as-default rule (issue 17): int8 is the default only when >= 99 % of segments get the
same coding and no evaluation figure moves by more than 0.01; the verdict is printed last.
Vectors are cached in ``bench/out/vectors.sqlite`` under each encoder's own key (the rate
figures always encode afresh); the int8 export is built once in the per-user cache.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qual.project import ingest  # noqa: E402
from qual.codebook import load_codebook  # noqa: E402
from qual.coder import HybridCoder  # noqa: E402
from qual.embed import CachedEmbedder, Embedder  # noqa: E402
from qual.evaluate import agreement, read_labelled_csv  # noqa: E402
from qual.onnx_encoder import Int8Embedder  # noqa: E402
from qual.store import Store, VectorCache  # noqa: E402

INQUIRY = REPO.parent / "shared" / "data" / "inquiry"


def segment_texts() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        report = ingest([INQUIRY / "transcripts"], store)
        assert not report.failures, report.failures
        texts = store.segments(role="stakeholder")["text"].tolist()
        store.close()
    return list(dict.fromkeys(texts))


def rates(encoders: dict, texts: list[str], rounds: int) -> dict[str, float]:
    best = {name: math.inf for name in encoders}
    for _ in range(rounds):
        for name, enc in encoders.items():
            t0 = time.perf_counter()
            enc.encode(texts)
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: len(texts) / s for name, s in best.items()}


def figures(result: dict, prefix: str) -> dict[str, float]:
    """The comparable numbers of one ``agreement`` result, flat."""
    out = {}
    for t, row in {**result["themes"], "none": result["none"]}.items():
        for k in ("kappa", "f1", "precision", "recall"):
            out[f"{prefix}.{t}.{k}"] = row[k]
    for k in ("macro_f1", "exact_match", "alpha", "polarity_accuracy"):
        out[f"{prefix}.{k}"] = result.get(k)
    return {k: float(v) for k, v in out.items() if v is not None and not
            (isinstance(v, float) and math.isnan(v))}


def real_cv(encoder, codebook, folds: int) -> dict[str, float]:
    """bench/real_cv.py's composition: grouped CV on real answers, then the written sets."""
    from sklearn.model_selection import GroupKFold

    themes = codebook.theme_ids
    real = read_labelled_csv(INQUIRY / "dev_consensus.csv", themes)
    preds = [None] * len(real)
    for _, te in GroupKFold(folds).split(real, groups=real["source"]):
        coder = HybridCoder(codebook, encoder)
        coder.fit(exclude_texts=real["text"].iloc[te].tolist())
        for i, row in zip(te, coder.predict(texts=real["text"].iloc[te].tolist())
                          .to_dict("records")):
            preds[i] = row
    pred = pd.DataFrame(preds)
    out = figures(agreement(real["themes"].tolist(), pred["themes"].tolist(), themes,
                            gold_polarity=real["polarity"].tolist(),
                            predicted_polarity=pred["polarity"].tolist()), "real")
    coder = HybridCoder(codebook, encoder)
    coder.fit(exclude_texts=[])
    for name in ("dev_turns.csv", "dev_formal.csv"):
        gold = read_labelled_csv(REPO / "bench" / "data" / name, themes)
        p = coder.predict(texts=gold["text"].tolist())
        out.update(figures(agreement(gold["themes"].tolist(), p["themes"].tolist(), themes,
                                     gold_polarity=gold["polarity"].tolist(),
                                     predicted_polarity=p["polarity"].tolist()),
                           name.removesuffix(".csv")))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args(argv)

    threads = os.cpu_count()
    fp32 = Embedder()
    t0 = time.perf_counter()
    int8 = Int8Embedder(fp32)
    print(f"int8 model: {int8.folder} ({'exported now' if int8.exported else 'from the cache'},"
          f" {time.perf_counter() - t0:.1f} s); {threads} cores")
    texts = segment_texts()
    words = sum(len(t.split()) for t in texts) / len(texts)
    print(f"{len(texts)} distinct stakeholder segments of the six Inquiry transcripts, "
          f"{words:.0f} words on average")
    for enc in (fp32, int8):
        enc.encode(texts[:64])          # warm-up: model load, first-call allocations
    r = rates({"fp32": fp32, "int8": int8}, texts, args.rounds)
    print(f"raw rate: fp32 {r['fp32']:.1f} segments/s, int8 {r['int8']:.1f} segments/s: "
          f"int8/fp32 = {r['int8'] / r['fp32']:.2f}x (best of {args.rounds} rounds each)")

    a, b = fp32.encode(texts), int8.encode(texts)
    cos = (a * b).sum(1)
    print(f"cosine fp32-int8 per segment: mean {cos.mean():.4f}, 1st percentile "
          f"{np.percentile(cos, 1):.4f}, min {cos.min():.4f}")

    codebook = load_codebook()
    (REPO / "bench" / "out").mkdir(exist_ok=True)
    cache = VectorCache(REPO / "bench" / "out" / "vectors.sqlite")
    encoders = {"fp32": CachedEmbedder(fp32, cache), "int8": CachedEmbedder(int8, cache)}
    coded = {}
    for name, enc in encoders.items():
        coder = HybridCoder(codebook, enc)
        coder.fit(exclude_texts=[])
        coded[name] = coder.predict(texts=texts)
    same = (coded["fp32"]["themes"] == coded["int8"]["themes"]).to_numpy()
    same_pol = (coded["fp32"]["polarity"] == coded["int8"]["polarity"]).to_numpy()
    print(f"HybridCoder coding fp32 vs int8 on the {len(texts)} segments: same themes "
          f"{same.mean():.4f} ({int((~same).sum())} differ), same themes and polarity "
          f"{(same & same_pol).mean():.4f}")

    figs = {name: real_cv(enc, codebook, args.folds) for name, enc in encoders.items()}
    keys = [k for k in figs["fp32"] if k in figs["int8"]]
    moves = {k: figs["int8"][k] - figs["fp32"][k] for k in keys}
    worst = sorted(keys, key=lambda k: -abs(moves[k]))
    print("real_cv figures, fp32 -> int8 (largest moves first):")
    for k in worst[:8]:
        print(f"  {k:<32} {figs['fp32'][k]:.3f} -> {figs['int8'][k]:.3f}  ({moves[k]:+.3f})")
    for k in ("real.macro_f1", "real.exact_match", "dev_turns.macro_f1", "dev_formal.macro_f1"):
        print(f"  {k:<32} {figs['fp32'][k]:.3f} -> {figs['int8'][k]:.3f}  ({moves[k]:+.3f})")
    top = max(abs(v) for v in moves.values())
    keep = same.mean() >= 0.99 and top <= 0.01
    print(f"largest move of any figure: {top:.3f} over {len(keys)} figures; "
          f"rule (>= 0.99 same coding, moves <= 0.01): "
          f"{'holds: int8 may be the default' if keep else 'fails: int8 stays opt-in'}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "rates": r, "ratio": r["int8"] / r["fp32"], "cosine_mean": float(cos.mean()),
            "cosine_min": float(cos.min()), "same_themes": float(same.mean()),
            "figures": figs, "largest_move": top, "keep_default": bool(keep)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
