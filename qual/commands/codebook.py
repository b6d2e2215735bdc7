"""``python -m qual codebook import|export``: bring a codebook from another QDA tool (REFI-QDA
``.qdc``, or the codebook of a ``.qdpx``) into YAML, or write the YAML codebook as ``.qdc``."""

from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import counted

ORDER = 15


def run_import(args) -> int:
    from ..codebook import save_codebook
    from ..errors import CodebookError
    from ..qdpx import read_qdc

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        codebook = read_qdc(args.file, name=args.name, description=args.description or "")
    for w in caught:
        print(f"warning: {w.message}")
    out = Path(args.output or Path(args.file).with_suffix(".yaml").name)
    if out.is_file() and not args.force:
        raise CodebookError("exists; pass --force to replace it", path=out)
    if out.suffix.lower() not in (".yaml", ".yml") and not out.exists():
        raise CodebookError("the output folder does not exist (create it, or name a .yaml "
                            "file)", path=out)
    written = save_codebook(codebook, out)
    print(f"imported '{codebook.name}': {counted(len(codebook.themes), 'theme')}, "
          f"{counted(len(codebook.subcode_ids), 'sub-code')}, version {codebook.version}")
    print(f"wrote {written.resolve()}")
    return 0


def run_export(args) -> int:
    from ..codebook import load_codebook
    from ..qdpx import write_qdc

    codebook = load_codebook(args.codebook)
    out = write_qdc(codebook, args.output)
    print(f"wrote the codebook '{codebook.name}' (version {codebook.version}) to "
          f"{Path(out).resolve()}")
    return 0


def run_add_code(args) -> int:
    """Add a sub-code to a theme of the YAML codebook; with --from-topic its examples are the
    representative segments of that emergent topic (from the latest topics run)."""
    from ..codebook import add_subcode, default_codebook_path, load_codebook, save_added_subcode
    from ..errors import CodebookError

    path = Path(args.codebook) if args.codebook else default_codebook_path()
    codebook = load_codebook(path)
    examples = list(args.example or [])
    name, definition = args.name, args.definition
    if args.from_topic is not None:
        from ..project import subcode_from_topic
        from ..store import Store

        with Store(args.db, create=False) as store:
            found = subcode_from_topic(store, args.from_topic, given=examples)
        if found["left_out"]:
            print(f"warning: left out {len(found['left_out'])} of topic {args.from_topic}'s "
                  f"example segments because they are coded none (small talk or off-topic), "
                  f"e.g. {found['left_out'][0][:80]!r}")
        examples = found["examples"]
        name = name or found["name"]
        definition = definition or found["definition"]
    if not name or not definition:
        raise CodebookError("give --name and --definition (or --from-topic N)", field="add-code")
    new = add_subcode(codebook, args.theme, args.id, name, definition, examples,
                      use_when=args.use_when or "", do_not_use_when=args.do_not_use_when or "")
    sub_id = next(s.id for s in new.subcodes if s.id not in codebook.subcode_ids)
    written, kept = save_added_subcode(new, args.theme, sub_id, path)
    print(f"added sub-code {sub_id} under {args.theme} with {len(examples)} "
          f"example{'s' * (len(examples) != 1)}"
          + ("" if kept else " (the file's layout was unusual: it was rewritten without its "
                             "comments)"))
    shipped = path.resolve() == default_codebook_path().resolve()
    print(f"wrote {written.resolve()} (codebook version {codebook.version} -> {new.version}); "
          + ("the next `python -m qual code` run uses it" if shipped else
             f"code with it: python -m qual code PATH... --codebook {path}"))
    return 0


def register(sub) -> None:
    p = sub.add_parser("codebook", help="add a sub-code (e.g. from an emergent topic), or "
                                        "import/export the codebook as REFI-QDA .qdc",
                       description="add-code: a new sub-code under a theme, with examples given "
                                   "or taken from an emergent topic; the YAML keeps its comments. "
                                   "import/export: exchange the codebook with other QDA tools "
                                   "(NVivo, ATLAS.ti, MAXQDA, QualCoder) as REFI-QDA .qdc. "
                                   "Guidance and example utterances travel in each code's "
                                   "description.")
    csub = p.add_subparsers(dest="codebook_command", metavar="ACTION")
    i = csub.add_parser("import", help="read a .qdc (or a .qdpx's codebook) into YAML")
    i.add_argument("file", help=".qdc or .qdpx file")
    i.add_argument("--output", default=None,
                   help="YAML file or folder (default: ./<name of FILE>.yaml); an empty folder "
                        "gets codebook.yaml, a folder holding one codebook file has it replaced")
    i.add_argument("--force", action="store_true", help="replace an existing YAML file")
    i.add_argument("--name", default=None, help="codebook name (default: from the file name)")
    i.add_argument("--description", default=None, help="codebook description")
    i.set_defaults(func=run_import)
    e = csub.add_parser("export", help="write the YAML codebook as .qdc")
    e.add_argument("--codebook", default=None, help="codebook YAML file or folder "
                   "(default: the shipped codebook/)")
    e.add_argument("--output", required=True, help=".qdc file to write (atomically)")
    e.set_defaults(func=run_export)
    a = csub.add_parser("add-code", help="add a sub-code (e.g. an emergent topic) to a theme",
                        description="Append a sub-code to a theme of the YAML codebook (written "
                                    "atomically). The next `code` run learns from its examples.")
    a.add_argument("--theme", required=True, help="theme id, e.g. processes")
    a.add_argument("--id", required=True, help="sub-code id or slug, e.g. processes.funding")
    a.add_argument("--name", default=None, help="sub-code name")
    a.add_argument("--definition", default=None, help="what the sub-code covers")
    a.add_argument("--example", action="append", help="an example utterance (repeatable)")
    a.add_argument("--use-when", default=None)
    a.add_argument("--do-not-use-when", default=None)
    a.add_argument("--from-topic", type=int, default=None, metavar="N",
                   help="take examples (and a default name) from topic N of the latest topics run")
    a.add_argument("--codebook", default=None, help="codebook YAML file or folder to change "
                   "(default: the shipped codebook/)")
    a.add_argument("--db", default="qual.db", help="the project store (for --from-topic)")
    a.set_defaults(func=run_add_code)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])
