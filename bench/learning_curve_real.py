"""Learning from reviewers on real testimony: agreement on held-out real answers as
reviewer decisions accumulate, and what those decisions do to a written set.

    python bench/learning_curve_real.py [--sizes 0 25 50 100] [--folds 5]

A study is simulated per fold of ``../shared/data/inquiry/dev_consensus.csv`` (folds grouped
by witness): the fold's answers are the test; half of the other witnesses are "the study"
(their answers are left out of the coder's reference sets, and n of them, drawn at random,
are given as reviewer decisions — as skewed as real decisions are, about half ``none``);
the rest stay in the reference sets. The same decisions are then checked against
``bench/data/dev_turns.csv`` (held out, written): decisions on real testimony must not
undo what the coder knows about interview-style text.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qual.codebook import load_codebook  # noqa: E402
from qual.coder import HybridCoder  # noqa: E402
from qual.embed import CachedEmbedder, Embedder  # noqa: E402
from qual.evaluate import agreement, read_labelled_csv  # noqa: E402
from qual.store import VectorCache  # noqa: E402

INQUIRY = REPO.parent / "shared" / "data" / "inquiry"


def figures(gold, pred, themes):
    r = agreement(gold["themes"].tolist(), pred["themes"].tolist(), themes,
                  gold_polarity=gold["polarity"].tolist(),
                  predicted_polarity=pred["polarity"].tolist())
    kappas = [r["themes"][t]["kappa"] for t in themes]
    return {"exact": r["exact_match"], "kappa": float(np.nanmean(kappas)),
            "none_recall": r["none"]["recall"], "polarity": r["polarity_accuracy"]}


def main(argv=None) -> int:
    from sklearn.model_selection import GroupKFold

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[0, 25, 50, 100])
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args(argv)
    codebook = load_codebook()
    themes = codebook.theme_ids
    (REPO / "bench" / "out").mkdir(exist_ok=True)
    enc = CachedEmbedder(Embedder(), VectorCache(REPO / "bench" / "out" / "vectors.sqlite"))
    real = read_labelled_csv(INQUIRY / "dev_consensus.csv", themes)
    turns = read_labelled_csv(REPO / "bench" / "data" / "dev_turns.csv", themes)
    rng = np.random.default_rng(0)
    rows = {n: [] for n in args.sizes}
    for fold, (rest, test) in enumerate(GroupKFold(args.folds).split(real, groups=real["source"])):
        sources = real["source"].iloc[rest].unique()
        study_sources = set(rng.choice(sources, size=len(sources) // 2, replace=False))
        study = real.iloc[rest][real["source"].iloc[rest].isin(study_sources)]
        order = rng.permutation(len(study))
        held = real["text"].iloc[test].tolist() + study["text"].tolist()
        for n in args.sizes:
            decisions = study.iloc[order[:n]][["text", "themes", "polarity"]]
            coder = HybridCoder(codebook, enc).fit(decisions if n else None, exclude_texts=held)
            r = figures(real.iloc[test], coder.predict(texts=real["text"].iloc[test].tolist()),
                        themes)
            w = figures(turns, coder.predict(texts=turns["text"].tolist()), themes)
            share_none = float((decisions["themes"] == "none").mean()) if n else float("nan")
            rows[n].append({**{f"real_{k}": v for k, v in r.items()},
                            **{f"turns_{k}": v for k, v in w.items()}, "none_share": share_none})
        print(f"fold {fold + 1}/{args.folds} done ({len(study)} answers in the study pool)",
              file=sys.stderr, flush=True)
    print(f"{'decisions':>9} | real: {'exact':>5} {'mean κ':>6} {'none R':>6} {'polar':>5} | "
          f"dev_turns: {'exact':>5} {'mean κ':>6} {'polar':>5} | share none")
    for n in args.sizes:
        df = pd.DataFrame(rows[n]).mean(numeric_only=True)
        print(f"{n:>9} | {df.real_exact:11.2f} {df.real_kappa:6.2f} {df.real_none_recall:6.2f} "
              f"{df.real_polarity:5.2f} | {df.turns_exact:16.2f} {df.turns_kappa:6.2f} "
              f"{df.turns_polarity:5.2f} | {df.none_share:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
