"""Learning curve: macro-F1 on held-out dev text as reviewer-labelled rows accumulate.

    python bench/learning_curve.py [--data CSV] [--splits 8] [--sizes 0 25 50 100]

The data (default codebook/reference/interview_excerpts.csv, formerly bench/data/dev.csv) is split into a held-out test part (40 %) and a pool,
stratified by label set, once per split seed; for each size n, n pool rows are drawn (same
seed) and given to ``EmbeddingCoder.fit`` as reviewer decisions, and the held-out part is
coded. The codebook is always used. Each split has its own test part, so the figures do not
hang on which 60 or 200 rows happened to be held out. Printed: mean (min-max over splits)
macro-F1 over the four themes on all held-out rows and on the single-theme ones, none
recall and polarity accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qual.codebook import load_codebook  # noqa: E402
from qual.coder import EmbeddingCoder  # noqa: E402
from qual.embed import Embedder  # noqa: E402
from qual.evaluate import agreement  # noqa: E402


class MemoEncoder:
    """Encode each distinct text once per process (the bench refits many times)."""

    def __init__(self, encoder):
        self.encoder, self.cache = encoder, {}

    def encode(self, texts):
        texts = list(texts)
        if not texts:
            return self.encoder.encode([])
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.encoder.encode(missing)))
        return np.vstack([self.cache[t] for t in texts])


def main(argv=None) -> int:
    from sklearn.model_selection import train_test_split

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO / "codebook" / "reference" / "interview_excerpts.csv"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[0, 25, 50, 100])
    ap.add_argument("--splits", type=int, default=8, help="test/pool splits (seeds)")
    ap.add_argument("--test-size", type=float, default=0.4)
    ap.add_argument("--params", default="{}", help="EmbeddingCoder parameters as JSON, "
                    'e.g. \'{"C": 1.0}\' (default: the coder\'s defaults)')
    args = ap.parse_args(argv)
    params = json.loads(args.params)

    dev = pd.read_csv(args.data)
    strata = dev["themes"].where(dev["kind"] != "multi", "multi")
    codebook = load_codebook()
    enc = MemoEncoder(Embedder())
    enc.encode(dev["text"].tolist())
    n_test = len(train_test_split(dev, test_size=args.test_size, random_state=0,
                                  stratify=strata)[1])
    print(f"{args.data}: {len(dev)} rows; {args.splits} splits, each holding out {n_test} rows "
          f"and drawing reviewer decisions from the other {len(dev) - n_test}; coder parameters "
          f"{params or 'default'}")
    print(f"{'train rows':>10} {'macro-F1 all':>20} {'macro-F1 single':>20} {'none rec':>9} "
          f"{'polarity':>9}")
    scores = {n: [] for n in args.sizes}
    for split in range(args.splits):
        pool, test = train_test_split(dev, test_size=args.test_size, random_state=split,
                                      stratify=strata)
        X = enc.encode(test["text"].tolist())
        single = (test["kind"] == "single").to_numpy()
        for n in args.sizes:
            rows = pool.sample(n=n, random_state=split) if n else None
            coder = EmbeddingCoder(codebook, enc, **params).fit(
                None if rows is None else rows[["text", "themes", "polarity"]])
            p = coder.predict(embeddings=X)
            a = agreement(test["themes"], p["themes"], codebook.theme_ids,
                          gold_polarity=test["polarity"], predicted_polarity=p["polarity"])
            s = agreement(test["themes"][single], p["themes"][single], codebook.theme_ids)
            scores[n].append((a["macro_f1"], s["macro_f1"], a["none"]["recall"],
                              a["polarity_accuracy"]))
    for n in args.sizes:
        m = np.array(scores[n])
        rng = lambda j: f"{m[:, j].mean():.3f} ({m[:, j].min():.2f}-{m[:, j].max():.2f})"
        print(f"{n:>10} {rng(0):>20} {rng(1):>20} {m[:, 2].mean():>9.3f} {m[:, 3].mean():>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
