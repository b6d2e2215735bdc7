"""The full ``evaluate`` table on the development set and on the shared gold turns.

    python bench/eval_dev.py [--params JSON]

Codebook only (what ``python -m qual code`` does on a new project), on codebook/reference/interview_excerpts.csv (the former bench/data/dev.csv)
(all rows, then single-theme rows), on dev_formal.csv and dev_turns.csv, and on ../shared/data/inquiry/{gold,ambiguous}_turns.csv.
Then 5-fold cross-validation on dev.csv with the other folds given as reviewer decisions.
``--params`` passes EmbeddingCoder parameters for an ablation, e.g. '{"knn_weight": 0}'.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from learning_curve import MemoEncoder  # noqa: E402

from qual.codebook import load_codebook  # noqa: E402
from qual.coder import EmbeddingCoder  # noqa: E402
from qual.embed import Embedder  # noqa: E402
from qual.evaluate import agreement, evaluate_coder, format_report, read_labelled_csv  # noqa: E402

INQUIRY = REPO.parent / "shared" / "data" / "inquiry"


def main(argv=None) -> int:
    from sklearn.model_selection import StratifiedKFold

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="{}", help="EmbeddingCoder parameters as JSON")
    params = json.loads(ap.parse_args(argv).params)
    codebook = load_codebook()
    themes = codebook.theme_ids
    enc = MemoEncoder(Embedder())
    coder = EmbeddingCoder(codebook, enc, **params).fit()
    print(f"codebook {codebook.version}; coder parameters {coder.get_params()}\n")
    dev = read_labelled_csv(REPO / "codebook" / "reference" / "interview_excerpts.csv", themes)
    sets = [("dev.csv, all rows", dev),
            ("dev.csv, single-theme rows", dev[dev["kind"] == "single"].reset_index(drop=True))]
    formal = REPO / "bench" / "data" / "dev_formal.csv"
    sets.append(("dev_formal.csv (formal register, held out)", read_labelled_csv(formal, themes)))
    turns = REPO / "bench" / "data" / "dev_turns.csv"
    sets.append(("dev_turns.csv (whole answer turns, held out)", read_labelled_csv(turns, themes)))
    single_turns = sets[-1][1][sets[-1][1]["kind"] == "single"].reset_index(drop=True)
    sets.append(("dev_turns.csv, single-theme rows", single_turns))
    for name in ("gold_turns.csv", "ambiguous_turns.csv"):
        if (INQUIRY / name).exists():
            sets.append((name, read_labelled_csv(INQUIRY / name, themes)))
    for title, df in sets:
        result, _ = evaluate_coder(coder, df, themes)
        print(format_report(result, title=f"== {title} (codebook only) =="), end="\n\n")

    preds = pd.Series(index=dev.index, dtype=object)
    pols = preds.copy()
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(dev, dev["themes"]):
        c = EmbeddingCoder(codebook, enc, **params).fit(dev.iloc[tr][["text", "themes", "polarity"]])
        p = c.predict(texts=dev["text"].iloc[te].tolist())
        preds.iloc[te], pols.iloc[te] = p["themes"].to_numpy(), p["polarity"].to_numpy()
    a = agreement(dev["themes"], preds, themes, gold_polarity=dev["polarity"],
                  predicted_polarity=pols)
    print(format_report(a, title="== dev.csv, 5-fold CV, other folds as reviewer decisions =="))
    single = dev["kind"] == "single"
    s = agreement(dev["themes"][single], preds[single], themes)
    print(f"single-theme rows: macro-F1 {s['macro_f1']:.3f}, kappa "
          + ", ".join(f"{t} {s['themes'][t]['kappa']:.2f}" for t in themes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
