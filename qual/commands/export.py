"""``python -m qual export``: the coded segments as a file."""

from __future__ import annotations

from pathlib import Path

ORDER = 60


def run(args) -> int:
    from ..codebook import load_codebook
    from ..export import coded_segments_table, write_csv
    from ..review import effective_coding
    from ..store import Store

    codebook = load_codebook(args.codebook)
    with Store(args.db) as store:
        coding = effective_coding(store)
        runs = {int(r): store.run(int(r)) for r in coding["run_id"].dropna().unique()}
        table = coded_segments_table(coding, store.documents(), codebook.theme_ids, runs)
    out = write_csv(table, args.output)
    print(f"wrote {len(table)} coded segments to {Path(out).resolve()}")
    return 0


def register(sub) -> None:
    from ..cli import add_db_option

    p = sub.add_parser("export", help="write the coded segments to a file",
                       description="One row per coded stakeholder segment with its effective "
                                   "coding (machine codes with reviewer decisions on top).")
    add_db_option(p)
    p.add_argument("--format", choices=["csv"], default="csv")
    p.add_argument("--output", required=True, help="file to write (written atomically)")
    p.add_argument("--codebook", default=None, help="codebook (for the theme columns)")
    p.set_defaults(func=run)
