"""``python -m qual agreement``: the machine against each reviewer, reviewers against each other."""

from __future__ import annotations

from pathlib import Path

ORDER = 55


def run(args) -> int:
    from ..agreement import agreement
    from ..codebook import load_codebook
    from ..export import write_csv
    from ..store import Store

    codebook = load_codebook(args.codebook)
    with Store(args.db, create=False) as store:
        result = agreement(store, codebook.theme_ids, blind_only=args.blind_only)
    pairs, dis = result["pairs"], result["disagreements"]
    if pairs.empty:
        print("no segment has been coded by two coders yet (review some segments first"
              + (", coding blind in the app" if args.blind_only else "") + ")")
        return 0
    cols = ["coder_a", "coder_b", "segments", "agreement", "alpha"] + [
        f"kappa_{t}" for t in codebook.theme_ids]
    print("Agreement on segments both coders coded (Cohen's kappa per theme, "
          "Krippendorff's alpha on the theme set):")
    print(pairs[cols].to_string(index=False, float_format=lambda v: f"{v:.2f}", na_rep="n/a"))
    if pairs[cols].isna().any().any():
        print("n/a: undefined, the theme was used by neither coder (or by both on every segment)")
    print(f"{len(dis)} disagreements to resolve")
    if args.disagreements:
        out = write_csv(dis, args.disagreements)
        print(f"wrote the disagreements to {Path(out).resolve()}")
    return 0


def register(sub) -> None:
    from ..cli import add_db_option

    p = sub.add_parser("agreement", help="agreement between the machine and reviewers",
                       description="Cohen's kappa per theme and Krippendorff's alpha for the "
                                   "machine against each reviewer and each pair of reviewers, "
                                   "on the segments both coded.")
    add_db_option(p)
    p.add_argument("--codebook", default=None, help="codebook (for the theme order)")
    p.add_argument("--blind-only", action="store_true",
                   help="count only decisions reviewers made without seeing the machine's "
                        "coding (blind mode in the app): an accept cannot inflate agreement")
    p.add_argument("--disagreements", default=None, metavar="FILE.csv",
                   help="write the list of disagreements to this CSV")
    p.set_defaults(func=run)
