"""``python -m qual export``: the coded project as a file (CSV, XLSX, REFI-QDA .qdpx / .qdc)."""

from __future__ import annotations

from pathlib import Path

ORDER = 60
FORMATS = ("csv", "xlsx", "qdpx", "qdc")


def run(args) -> int:
    from ..codebook import load_codebook

    fmt = args.format or _guess_format(args.output)
    codebook = load_codebook(args.codebook)
    if fmt == "qdc":
        from ..qdpx import write_qdc

        out = write_qdc(codebook, args.output)
        print(f"wrote the codebook '{codebook.name}' (version {codebook.version}, "
              f"{len(codebook.themes)} themes, {len(codebook.subcode_ids)} sub-codes) to "
              f"{Path(out).resolve()}")
        return 0

    from ..export import ExportError
    from ..store import Store

    if not Path(args.db).exists():
        raise ExportError("no store here; run `python -m qual code` first or pass --db",
                          path=args.db)
    with Store(args.db) as store:
        run_info = store.latest_run("code")
        if run_info is None:
            raise ExportError("no coding run in this store yet; run `python -m qual code "
                              "PATH...` first", path=args.db)
        if run_info.get("codebook_version") not in (None, codebook.version):
            print(f"warning: the latest run was coded with codebook version "
                  f"{run_info['codebook_version']}; the codebook given is version "
                  f"{codebook.version}")
        from ..scope import scope_ids

        _, lines = export_project(store, codebook, fmt, args.output,
                                  line_endings=args.line_endings,
                                  name=args.name or Path(args.output).stem,
                                  document_ids=scope_ids(store, args))
    for line in lines:
        print(line)
    return 0


def export_project(store, codebook, fmt: str, output, *, line_endings: str = "lf",
                   name: str | None = None,
                   document_ids=None):
    """Write the effective coding as ``fmt`` (csv, xlsx or qdpx) to ``output`` (atomically).
    Returns ``(path, lines)``: the file written and what to tell the user about it. Used by
    the ``export`` command and by the app's downloads. ``document_ids``: only those
    documents (``qual.scope``), else every current one."""
    from ..audit import audit_log
    from ..export import about_rows, coded_segments_table, segments_phrase, write_csv, write_xlsx
    from ..review import effective_coding

    keep = None if document_ids is None else set(int(i) for i in document_ids)
    if fmt == "qdpx":
        from dataclasses import replace

        from ..qdpx import project_input, provenance, write_qdpx

        inp = project_input(store, codebook, name=name or Path(output).stem,
                            line_endings=line_endings)
        if keep is not None:
            segs = set(inp.coding.loc[inp.coding["document_id"].isin(keep), "segment_id"])
            inp = replace(inp, coding=inp.coding[inp.coding["document_id"].isin(keep)],
                          documents=[d for d in inp.documents if int(d["id"]) in keep],
                          memos=[m for m in inp.memos if _memo_in(m, keep, segs)])
        out = write_qdpx(inp, output)
        n = int(inp.coding["themes"].map(
            lambda v: isinstance(v, str) and v not in ("", "none")).sum())
        return out, [f"wrote a REFI-QDA project: {len(inp.documents)} sources, {n} coded "
                     f"segments, to {Path(out).resolve()}",
                     provenance(inp.run, codebook, inp.documents)]
    run_info = store.latest_run("code")
    coding = effective_coding(store)
    documents = store.documents()
    if keep is not None:
        coding = coding[coding["document_id"].isin(keep)]
        documents = documents[documents["id"].isin(keep)]
    runs = {int(r): store.run(int(r)) for r in coding["run_id"].dropna().unique()}
    table = coded_segments_table(coding, documents, codebook.theme_ids, runs)
    about = about_rows(run_info, codebook, documents, table)
    if fmt == "xlsx":
        from ..summarise import summary_from_store

        summary = summary_from_store(store, codebook, document_ids=document_ids)
        out = write_xlsx(table, output, theme_ids=codebook.theme_ids,
                         quotes=_quotes_frame(summary), about=about,
                         log=audit_log(store, document_ids))
    else:
        out = write_csv(table, output)
    return out, [f"wrote {segments_phrase(table)} to {Path(out).resolve()}",
                 "; ".join(f"{k}: {v}" for k, v in about
                           if k in ("run", "codebook version (run)", "redaction"))]


def _memo_in(memo: dict, documents: set, segments: set) -> bool:
    """Whether a memo belongs to the documents kept (on one of them or their segments)."""
    def given(v):
        return v is not None and v == v
    if given(memo.get("document_id")):
        return int(memo["document_id"]) in documents
    if given(memo.get("segment_id")):
        return int(memo["segment_id"]) in segments
    return True                                   # a project memo


def _quotes_frame(summary):
    import pandas as pd

    rows = [{"theme": q.theme, "document": q.document, "speaker": q.speaker, "start": q.start,
             "end": q.end, "polarity": q.polarity, "subcodes": ";".join(q.subcodes),
             "score": round(q.score, 4), "source": q.source, "text": q.text}
            for t in summary.themes for q in t.quotes]
    return pd.DataFrame(rows, columns=["theme", "document", "speaker", "start", "end",
                                       "polarity", "subcodes", "score", "source", "text"])


def _guess_format(output: str) -> str:
    suffix = Path(output).suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else "csv"


def register(sub) -> None:
    from ..cli import add_db_option
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
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="default: from the output file's extension, else csv")
    p.add_argument("--output", required=True, help="file to write (written atomically)")
    p.add_argument("--codebook", default=None, help="codebook YAML file or folder "
                   "(default: the shipped codebook/)")
    p.add_argument("--name", default=None, help="project name in a .qdpx (default: file name)")
    p.add_argument("--line-endings", choices=("lf", "crlf"), default="lf",
                   help="line ends of a .qdpx's sources: lf (the default; QualCoder) or crlf "
                        "(MAXQDA); positions count Unicode code points either way")
    p.set_defaults(func=run)
