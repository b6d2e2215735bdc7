"""``python -m qual codebook import|export``: bring a codebook from another QDA tool (REFI-QDA
``.qdc``, or the codebook of a ``.qdpx``) into YAML, or write the YAML codebook as ``.qdc``."""

from __future__ import annotations

import warnings
from pathlib import Path

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
    print(f"imported '{codebook.name}': {len(codebook.themes)} themes, "
          f"{len(codebook.subcode_ids)} sub-codes, version {codebook.version}")
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


def register(sub) -> None:
    p = sub.add_parser("codebook", help="import a REFI-QDA codebook (.qdc) or export one",
                       description="Exchange the codebook with other QDA tools (NVivo, ATLAS.ti, "
                                   "MAXQDA, QualCoder) as REFI-QDA .qdc. Guidance and example "
                                   "utterances travel in each code's description.")
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
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])
