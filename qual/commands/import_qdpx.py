"""``python -m qual import project.qdpx``: a project coded in QualCoder, NVivo, ATLAS.ti (or
exported by qual) becomes a qual store: its sources as transcripts, segmented like any other,
and each user's codings as that reviewer's decisions."""

from __future__ import annotations

from pathlib import Path

from ..errors import counted

ORDER = 58


def _say(*parts) -> None:
    from ..errors import printable

    print(*(printable(p) for p in parts), flush=True)


def run(args) -> int:
    from ..errors import QualError
    from ..project import import_qdpx
    from ..qdpx_import import code_name

    where = str(args.file)
    if args.theme and not args.add_codes:
        raise QualError("--theme needs --add-codes (the theme the unknown codes are added "
                        "under)", path=where)
    if args.add_codes and not args.theme:
        raise QualError("--add-codes needs --theme THEME: the theme whose sub-codes the unknown "
                        "codes become", path=where)
    report = import_qdpx(args.file, args.db, codebook=args.codebook,
                         add_codes_under=args.theme if args.add_codes else None,
                         into_existing=args.into_existing, max_sentences=args.max_sentences,
                         max_words=args.max_words, max_bytes=args.max_bytes)
    project, plan, result = report.project, report.plan, report.result
    for line in project.skipped:
        _say(f"skipped source {line}")
    for name in plan.speakerless:
        _say(f"no speaker labels in '{name}': each paragraph is a turn of '{name}'")
    for g, texts in plan.unknown.items():
        _say(f"unknown code '{code_name(project, g)}': {len(texts)} coding(s) left out (not in "
             "the codebook; --add-codes --theme THEME adds it as a sub-code)")
    for g, sid in plan.added.items():
        _say(f"added code '{code_name(project, g)}' as sub-code {sid}")
    if plan.added:
        _say(f"wrote the codebook {report.codebook_path.resolve()} (version "
             f"{report.codebook_version} -> {plan.codebook.version})")
    if plan.machine_selections:
        _say(f"left out {plan.machine_selections} selection(s) of qual's machine coding (the "
             "machine's coding is not imported; the reviewers' decisions are)")
    if plan.unplaced:
        _say(f"left out {plan.unplaced} coded selection(s) that lie on no stakeholder segment "
             "(an interviewer's turn, or text without words)")
    decisions = result["decisions"]
    who = ", ".join(f"{r} {n}" for r, n in decisions.items()) or "none"
    _say(f"imported {where}: {counted(result['documents'], 'document')}, "
         f"{counted(result['segments'], 'segment')}, "
         f"{counted(len(plan.mapped), 'code')} mapped to the codebook, "
         f"{len(plan.unknown)} unknown; "
         f"decisions: {sum(decisions.values())} ({who})")
    _say(f"store: {Path(args.db).resolve()}")
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "import", help="a REFI-QDA project (.qdpx) from QualCoder, NVivo, ATLAS.ti into a store",
        description="Read a .qdpx into a new store: its text sources as transcripts (speaker "
                    "turns from 'Name: text' lines, segmented like any transcript), its codes "
                    "mapped to the codebook (by qual's GUIDs or by name), and each user's "
                    "codings as that reviewer's decisions on the segments they overlap. "
                    "Unknown codes are listed and left out, or added with --add-codes --theme.")
    p.add_argument("file", help="the .qdpx file")
    p.add_argument("--db", default="qual.db", help="the store to make (default: ./qual.db)")
    p.add_argument("--codebook", default=None, help="codebook YAML file or folder "
                   "(default: the shipped codebook/); --add-codes writes to it")
    p.add_argument("--add-codes", action="store_true",
                   help="add the codes not in the codebook as sub-codes of --theme")
    p.add_argument("--theme", default=None, help="theme id the unknown codes are added under")
    p.add_argument("--into-existing", action="store_true",
                   help="add to a store that already holds documents")
    p.add_argument("--max-sentences", type=int, default=5,
                   help="longest segment, in sentences, when a turn is split (default 5)")
    p.add_argument("--max-words", type=int, default=120,
                   help="longest segment, in words, when a turn is split (default 120)")
    p.add_argument("--max-bytes", type=int, default=50_000_000,
                   help="refuse a source text larger than this (default 50 MB)")
    p.set_defaults(func=run)
