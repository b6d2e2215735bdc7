"""``python -m qual evaluate``: agreement of the coder with human coders on a gold CSV."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import counted

ORDER = 70


def _clean(obj):
    """JSON-safe: NaN -> null."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def run(args) -> int:
    from ..codebook import load_codebook
    from ..embed import make_embedder
    from ..evaluate import format_report
    from ..project import evaluate

    codebook = load_codebook(args.codebook)
    embedder = make_embedder(args.model, getattr(args, "encoder", None))
    store = None
    try:
        if args.db:
            from ..store import Store

            if not Path(args.db).exists():
                from ..errors import StoreError
                raise StoreError("no such store", path=args.db)
            store = Store(args.db)
        out = evaluate(codebook, embedder, args.gold, train=args.train, store=store,
                       coder=getattr(args, "coder", None))
    finally:
        if store is not None:
            store.close()
    coder, result, table, examples = out["coder"], out["result"], out["table"], out["examples"]
    learned = ", ".join(out["sources"]) if out["sources"] else "the codebook only"
    print(f"coder: {type(coder).__name__} on {embedder.name}, codebook {codebook.version}; "
          f"learned from {learned}" + (f" ({counted(out['dropped'], 'row')} also in the gold "
                                       "file left out)" if out["dropped"] else ""))
    print(format_report(result, title=f"agreement with {args.gold}:"))
    if args.predictions:
        from ..export import atomic_path, inert_table

        with atomic_path(args.predictions, ".csv") as tmp:      # a missing folder is made
            inert_table(table).to_csv(tmp, index=False)         # no live formulas
        print(f"wrote predictions for {counted(len(table), 'row')} to "
              f"{Path(args.predictions).resolve()}")
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


def register(sub) -> None:
    from ..cli import add_coder_option, add_encoder_option

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
    add_encoder_option(p)
    p.set_defaults(func=run)
