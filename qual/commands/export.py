"""``python -m qual export``: the coded project as a file (CSV, XLSX, REFI-QDA .qdpx / .qdc)."""

from __future__ import annotations

from pathlib import Path

from ..errors import counted

ORDER = 60


def run(args) -> int:
    from ..export import ExportError
    from ..project import Project, guess_format

    fmt = args.format or guess_format(args.output)
    if fmt != "qdc" and not Path(args.db).exists():
        raise ExportError("no store here; run `python -m qual code` first or pass --db",
                          path=args.db)
    from ..codebook import load_codebook

    codebook = load_codebook(args.codebook)
    if fmt == "qdc":                      # the codebook alone: no store is needed or made
        from ..qdpx import write_qdc

        out = write_qdc(codebook, args.output)
        print(f"wrote the codebook '{codebook.name}' (version {codebook.version}, "
              f"{counted(len(codebook.themes), 'theme')}, "
              f"{counted(len(codebook.subcode_ids), 'sub-code')}) to "
              f"{Path(out).resolve()}")
        return 0
    with Project(args.db, create=False, codebook=codebook) as project:
        _, lines = project.export_with_notes(args.output, format=fmt,
                                             line_endings=args.line_endings, name=args.name,
                                             documents=args.documents, folder=args.folder)
    for line in lines:
        print(line)
    return 0


def register(sub) -> None:
    from ..cli import add_db_option
    from ..project import EXPORT_FORMATS
    from ..scope import add_scope_options

    p = sub.add_parser("export", help="write the coded segments (csv, xlsx) or a REFI-QDA "
                                      "project (.qdpx) or codebook (.qdc)",
                       description="Export the effective coding (machine codes with reviewer "
                                   "decisions on top). csv/xlsx: one row per coded stakeholder "
                                   "segment with case attributes (xlsx adds a sheet per theme, "
                                   "quotes and an 'about' sheet). qdpx: a REFI-QDA project for "
                                   "NVivo, ATLAS.ti, MAXQDA, QualCoder. qdc: the codebook alone. "
                                   "Every file is written atomically and states the run, the "
                                   "codebook version and whether the text was redacted.")
    add_db_option(p)
    add_scope_options(p)
    p.add_argument("--format", choices=EXPORT_FORMATS, default=None,
                   help="default: from the output file's extension, else csv")
    p.add_argument("--output", required=True, help="file to write (written atomically)")
    p.add_argument("--codebook", default=None, help="codebook YAML file or folder "
                   "(default: the shipped codebook/)")
    p.add_argument("--name", default=None, help="project name in a .qdpx (default: file name)")
    p.add_argument("--line-endings", choices=("lf", "crlf"), default="lf",
                   help="line ends of a .qdpx's sources: lf (the default; QualCoder) or crlf "
                        "(MAXQDA); positions count Unicode code points either way")
    p.set_defaults(func=run)
