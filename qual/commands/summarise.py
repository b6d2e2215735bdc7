"""``python -m qual summarise``: theme summaries (Markdown, HTML, CSV) from the effective coding."""

from __future__ import annotations

from pathlib import Path

from ..errors import counted

ORDER = 55


def run(args) -> int:
    from ..codebook import load_codebook
    from ..export import ExportError
    from ..project import Project

    if not Path(args.db).exists():
        raise ExportError("no store here; run `python -m qual code` first or pass --db",
                          path=args.db)
    codebook = load_codebook(args.codebook)
    with Project(args.db, create=False, codebook=codebook) as project:
        summary, files = project.summarise(args.output, reviewed_only=args.reviewed_only,
                                           quotes=args.quotes,
                                           max_per_stakeholder=args.max_per_stakeholder,
                                           documents=args.documents, folder=args.folder)
    run_info = summary.run or {}
    print(f"summarised {counted(summary.coded_segments, 'coded segment')} from "
          f"{counted(summary.total_documents, 'document')} "
          f"({counted(summary.total_stakeholders, 'stakeholder')}); "
          f"run {run_info.get('id')}, codebook {summary.codebook_version}, {summary.redaction}")
    for t in summary.themes:
        print(f"  {t.name}: {counted(t.segments, 'segment')}, {t.stakeholders}/"
              f"{counted(summary.total_stakeholders, 'stakeholder')}, "
              f"{counted(t.polarity['barrier'], 'barrier')}, "
              f"{counted(t.polarity['opportunity'], 'opportunity', 'opportunities')}, "
              f"{counted(len(t.quotes), 'quote')}")
    print("wrote " + ", ".join(str(p.resolve()) for p in files.values()))
    return 0


def register(sub) -> None:
    from ..cli import add_db_option
    from ..scope import add_scope_options

    p = sub.add_parser("summarise", help="write theme summaries (summary.md, summary.html, "
                                         "themes.csv, matrices)",
                       description="Per theme: prevalence (segments, documents, stakeholders, "
                                   "by sector and stakeholder group), barriers and "
                                   "opportunities with their sub-codes, representative verbatim "
                                   "quotes, emergent topics, and how much a person reviewed. "
                                   "Plus a code co-occurrence matrix and case x code matrices.")
    add_db_option(p)
    add_scope_options(p)
    p.add_argument("--output", required=True,
                   help="folder to write into (made, with its parents, if missing)")
    p.add_argument("--codebook", default=None, help="codebook YAML file or folder "
                   "(default: the shipped codebook/)")
    p.add_argument("--reviewed-only", action="store_true",
                   help="count only segments a reviewer has decided")
    p.add_argument("--quotes", type=int, default=5, help="quotes per theme (default 5)")
    p.add_argument("--max-per-stakeholder", type=int, default=2,
                   help="most quotes per theme from one stakeholder (default 2)")
    p.set_defaults(func=run)
