"""``python -m qual evaluate``: agreement of the coder with human coders on a gold CSV."""

from __future__ import annotations

import json
import math
from pathlib import Path

ORDER = 70


def add_coder_option(p) -> None:
    from ..coder import CODERS, DEFAULT_CODER

    p.add_argument("--coder", choices=sorted(CODERS), default=DEFAULT_CODER,
                   help=f"which coder (default {DEFAULT_CODER}: embeddings and word features, "
                   "learned from the codebook's examples and reference answers; 'embedding': "
                   "the earlier coder on the codebook's examples alone)")


def _clean(obj):
    """JSON-safe: NaN -> null."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def run(args) -> int:
    import pandas as pd

    from ..codebook import load_codebook
    from ..coder import make_coder
    from ..embed import CachedEmbedder, machine_cache, make_embedder
    from ..evaluate import evaluate_coder, format_report, read_labelled_csv

    codebook = load_codebook(args.codebook)
    themes = codebook.theme_ids
    gold = read_labelled_csv(args.gold, themes)
    parts, sources = [], []
    if args.train:
        train = read_labelled_csv(args.train, themes)
        parts.append(train[["text", "themes", "polarity"]])
        sources.append(f"{len(train)} rows of {args.train}")
    embedder = make_embedder(args.model, getattr(args, "encoder", None))
    store = None
    try:
        if args.db:
            from ..review import reviewer_examples
            from ..store import Store

            if not Path(args.db).exists():
                from ..errors import StoreError
                raise StoreError("no such store", path=args.db)
            store = Store(args.db)
            decided = reviewer_examples(store)
            parts.append(decided)
            sources.append(f"{len(decided)} reviewer decisions in {args.db}")
        encoder = CachedEmbedder(embedder, store, machine=machine_cache())
        examples = pd.concat(parts, ignore_index=True) if parts else None
        dropped = 0
        if examples is not None and len(examples):
            in_gold = examples["text"].str.strip().isin(set(gold["text"].str.strip()))
            dropped = int(in_gold.sum())
            examples = examples[~in_gold].reset_index(drop=True)   # never learn from the gold
        coder = make_coder(getattr(args, "coder", None), codebook, encoder)
        encoder.preload(coder.codebook_texts())
        # the coder's own reference sets never hold a gold answer either
        excluded = _fit(coder, examples, gold["text"].tolist())
        result, table = evaluate_coder(coder, gold, themes)
    finally:
        if store is not None:
            store.close()
    if hasattr(coder, "n_reference_"):
        sources.insert(0, f"{coder.n_reference_} reference answers of the codebook" +
                       (f" ({excluded} also in the gold file left out)" if excluded else ""))
    learned = ", ".join(sources) if sources else "the codebook only"
    print(f"coder: {type(coder).__name__} on {embedder.name}, codebook {codebook.version}; "
          f"learned from {learned}" + (f" ({dropped} rows also in the gold file left out)"
                                       if dropped else ""))
    print(format_report(result, title=f"agreement with {args.gold}:"))
    if args.predictions:
        from ..export import atomic_path, inert_table

        with atomic_path(args.predictions, ".csv") as tmp:      # a missing folder is made
            inert_table(table).to_csv(tmp, index=False)         # no live formulas
        print(f"wrote predictions for {len(table)} rows to {Path(args.predictions).resolve()}")
    if args.json:
        payload = _clean({"gold": str(args.gold), "train": args.train, "db": args.db,
                          "model": embedder.key, "codebook_version": codebook.version,
                          "training_rows": 0 if examples is None else len(examples),
                          "coder": {type(coder).__name__: coder.get_params()}, **result})
        from ..export import atomic_path

        with atomic_path(args.json, ".json") as tmp:
            tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"wrote metrics to {Path(args.json).resolve()}")
    return 0


def _fit(coder, examples, gold_texts) -> int:
    """Fit ``coder``; a coder with reference sets leaves out those whose text is in the gold.
    Returns how many reference rows were left out."""
    import inspect

    if "exclude_texts" in inspect.signature(coder.fit).parameters:
        full = len(getattr(coder.codebook, "reference", ()))
        coder.fit(examples, exclude_texts=gold_texts)
        return full - coder.n_reference_
    coder.fit(examples)
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="measure agreement of the coding with a human-coded CSV",
        description="Code every text of a gold CSV (columns text, themes ';'-separated from "
                    "public, people, processes, technical, none; optional polarity) exactly "
                    "as `code` would, and print per-theme precision, recall, F1, support and "
                    "Cohen's kappa, then macro-F1, exact match, Krippendorff's alpha and "
                    "polarity accuracy. The coder never learns from the gold file.")
    p.add_argument("--gold", required=True, help="human-coded CSV to compare against")
    p.add_argument("--train", default=None,
                   help="labelled CSV (same columns) to learn from, as reviewer decisions")
    p.add_argument("--predictions", default=None, help="write the gold rows with the "
                   "predicted themes, polarity and score_<theme> columns to this CSV")
    p.add_argument("--json", default=None, help="write the metrics to this JSON file")
    p.add_argument("--db", default=None, help="a project store: learn from its reviewer "
                   "decisions and use its embedding cache (default: none)")
    add_coder_option(p)
    p.add_argument("--codebook", default=None, help="codebook YAML file or folder "
                   "(default: the shipped codebook/)")
    p.add_argument("--model", default=None, help="local sentence-transformers folder "
                   "(default: all-MiniLM-L6-v2)")
    from ..embed import add_encoder_option

    add_encoder_option(p)
    p.set_defaults(func=run)
