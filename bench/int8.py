"""The encoder routes in one run: PyTorch fp32 against the fp32 ONNX route (the default) and
int8: rate, cosine, coding agreement and evaluation figures.

    python bench/int8.py [--rounds 2] [--json FILE] [--scale N]

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

The keep-as-default rule (issue 17), applied to each ONNX route against PyTorch: a route may be
the default only when >= 99 % of segments get the
same coding and no evaluation figure moves by more than 0.01; the verdict is printed last.
Vectors are cached in ``bench/out/vectors.sqlite`` under each encoder's own key (the rate
figures always encode afresh); the int8 export is built once in the per-user cache.
"""

from __future__ import annotations

import argparse
import json
import math
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
from qual.onnx_encoder import Int8Embedder, OnnxEmbedder  # noqa: E402
from qual.store import Store, VectorCache  # noqa: E402
from machine import describe  # noqa: E402

INQUIRY = REPO.parent / "shared" / "data" / "inquiry"


def segment_texts() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        report = ingest([INQUIRY / "transcripts"], store)
        assert not report.failures, report.failures
        texts = store.segments(role="stakeholder")["text"].tolist()
        store.close()
    return list(dict.fromkeys(texts))


def scale_texts(n: int) -> list[str]:
    """The distinct stakeholder segments of n interviews generated as bench/scale.py does."""
    from scale import write_corpus

    with tempfile.TemporaryDirectory() as tmp:
        write_corpus(n, Path(tmp) / "corpus")
        store = Store(Path(tmp) / "bench.db")
        report = ingest([Path(tmp) / "corpus" / "corpus"], store)
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
    ap.add_argument("--scale", type=int, default=0, metavar="N",
                    help="rates and cosines only, on the stakeholder segments of N generated "
                         "one-hour interviews (bench/scale.py's corpus) instead of the six "
                         "Inquiry transcripts")
    args = ap.parse_args(argv)

    fp32 = Embedder()
    routes = {"fp32": fp32}
    for name, cls in (("onnx", OnnxEmbedder), ("int8", Int8Embedder)):
        t0 = time.perf_counter()
        routes[name] = cls(fp32)
        print(f"{name} model: {routes[name].folder} ({'exported now' if routes[name].exported else 'from the cache'},"
              f" {time.perf_counter() - t0:.1f} s)")
    print(f"machine: {describe()}")
    texts = scale_texts(args.scale) if args.scale else segment_texts()
    words = sum(len(t.split()) for t in texts) / len(texts)
    where = (f"{args.scale} generated one-hour interviews" if args.scale
             else "the six Inquiry transcripts")
    print(f"{len(texts)} distinct stakeholder segments of {where}, {words:.0f} words on average")
    for enc in routes.values():
        enc.encode(texts[:64])          # warm-up: model load, first-call allocations
    r = rates(routes, texts, args.rounds)
    print("raw rate (best of %d rounds each, alternating): " % args.rounds + ", ".join(
        f"{n} {v:.1f} segments/s" for n, v in r.items()) + "; " + ", ".join(
        f"{n}/fp32 = {r[n] / r['fp32']:.2f}x" for n in ("onnx", "int8")))

    vectors = {n: enc.encode(texts) for n, enc in routes.items()}
    cosines = {}
    for n in ("onnx", "int8"):
        cos = (vectors["fp32"] * vectors[n]).sum(1)
        cosines[n] = cos
        print(f"cosine fp32-{n} per segment: mean {cos.mean():.6f}, 1st percentile "
              f"{np.percentile(cos, 1):.6f}, min {cos.min():.6f}")
    if args.scale:
        return 0

    codebook = load_codebook()
    (REPO / "bench" / "out").mkdir(exist_ok=True)
    cache = VectorCache(REPO / "bench" / "out" / "vectors.sqlite")
    encoders = {n: CachedEmbedder(enc, cache) for n, enc in routes.items()}
    coded = {}
    for name, enc in encoders.items():
        coder = HybridCoder(codebook, enc)
        coder.fit(exclude_texts=[])
        coded[name] = coder.predict(texts=texts)
    figs = {name: real_cv(enc, codebook, args.folds) for name, enc in encoders.items()}
    out = {"rates": r}
    for n in ("onnx", "int8"):
        same = (coded["fp32"]["themes"] == coded[n]["themes"]).to_numpy()
        same_pol = (coded["fp32"]["polarity"] == coded[n]["polarity"]).to_numpy()
        print(f"\n{n}: HybridCoder coding fp32 vs {n} on the {len(texts)} segments: same themes "
              f"{same.mean():.4f} ({int((~same).sum())} differ), same themes and polarity "
              f"{(same & same_pol).mean():.4f}")
        keys = [k for k in figs["fp32"] if k in figs[n]]
        moves = {k: figs[n][k] - figs["fp32"][k] for k in keys}
        worst = sorted(keys, key=lambda k: -abs(moves[k]))
        print(f"real_cv figures, fp32 -> {n} (largest moves first):")
        for k in worst[:5]:
            print(f"  {k:<32} {figs['fp32'][k]:.3f} -> {figs[n][k]:.3f}  ({moves[k]:+.3f})")
        for k in ("real.macro_f1", "real.exact_match", "dev_turns.macro_f1", "dev_formal.macro_f1"):
            print(f"  {k:<32} {figs['fp32'][k]:.3f} -> {figs[n][k]:.3f}  ({moves[k]:+.3f})")
        top = max(abs(v) for v in moves.values())
        keep = same.mean() >= 0.99 and top <= 0.01
        print(f"largest move of any figure: {top:.3f} over {len(keys)} figures; "
              f"rule (>= 0.99 same coding, moves <= 0.01): "
              f"{'holds: may be the default' if keep else 'fails: opt-in only'}")
        out[n] = {"ratio": r[n] / r["fp32"], "cosine_mean": float(cosines[n].mean()),
                  "cosine_min": float(cosines[n].min()), "same_themes": float(same.mean()),
                  "largest_move": top, "keep_default": bool(keep)}
    out["figures"] = figs
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
