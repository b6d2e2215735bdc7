"""The one place where the stages are composed: read -> redact -> segment -> embed -> code ->
topics -> review -> summarise / export, over one store.

:class:`Project` is the door for notebooks and scripts::

    from qual import Project

    p = Project("study.db")                     # opens or creates the store
    p.code("transcripts/")                      # the same work as `python -m qual code`
    df = p.coding()                             # the effective coding: coded.csv's columns
    p.decide(df.segment_id[0], themes=["people"], polarity="barrier", reviewer="ana")
    p.topics(seed=42)
    p.summarise("out/")
    p.export("study.qdpx")

The command line (``qual.cli`` and ``qual.commands``) and the review app (``app.py``) are
thin layers over this module: they parse options or widgets, call it and print or show what
it returns. Every fault is a :class:`~qual.errors.QualError` (the same message the command
line prints); warnings are :class:`~qual.errors.QualWarning`.

The module-level functions (:func:`ingest`, :func:`code`, :func:`find_topics`,
:func:`write_summaries`, :func:`export_project`, :func:`evaluate`) take an open store and
plain arguments; :class:`Project` holds the store, the codebook and the models and passes
them in. Heavy libraries are imported inside the functions, so importing this module is
quick.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .errors import QualError, QualWarning, counted, printable

__all__ = ["Project", "IngestReport", "CodeReport", "ingest", "code", "find_topics",
           "write_summaries", "export_project", "export_decisions", "import_decisions",
           "import_qdpx", "evaluate"]

#: export formats: the coded segments (csv, xlsx), a REFI-QDA project or codebook
EXPORT_FORMATS = ("csv", "xlsx", "qdpx", "qdc")


# -- ingest --------------------------------------------------------------------------------
@dataclass
class IngestReport:
    """What :func:`ingest` did: ``documents`` (name, document id, status: new, changed,
    re-cut or unchanged), ``failures`` (path, message), ``skipped`` (path, reason),
    ``replacements`` (document name -> the redaction's replacements, never stored) and
    ``key_path`` (where the redaction key was written, if asked)."""
    documents: list = field(default_factory=list)      # (name, document_id, status)
    failures: list = field(default_factory=list)       # (path, message)
    skipped: list = field(default_factory=list)        # (path, reason)
    replacements: dict = field(default_factory=dict)   # document name -> redaction replacements
    key_path: Path | None = None

    @property
    def document_ids(self) -> list[int]:
        return [d for _, d, _ in self.documents]

    def counts(self) -> dict:
        """Documents per status."""
        status = [s for *_, s in self.documents]
        return {s: status.count(s) for s in ("new", "changed", "re-cut", "unchanged")}


def ingest(paths, store, *, nlp=None, segment_params=None, max_bytes: int = 50_000_000,
           show_progress: bool = False, redact: bool = False, redact_names=(),
           ner=None) -> IngestReport:
    """Read, segment and store every transcript under ``paths``. A file that fails is
    reported and leaves nothing behind; the others go on.

    With ``redact``, personal data is pseudonymised before anything is stored (the names in
    ``redact_names`` and in a ``redact.txt`` beside the transcripts are redacted too); the
    replacements are returned in the report, never stored.

    A ``metadata.csv`` (or, with ``redact``, a ``redact.txt``) that is a symbolic link
    leading out of its folder raises a ReadError naming it before anything is read or stored.

    Duplicates: a file with the same bytes as an earlier file in this run (the same interview
    saved twice under different names) is read once: the later file is listed in
    ``report.skipped`` as a duplicate of the first and is not stored or coded.

    A fault of the store itself (read-only, locked, disk full) stops the whole run with a
    StoreError; nothing half-written is left, since each document is one transaction."""
    from .embed import progress
    from .errors import StoreError
    from .hashing import sha256_text
    from .readers import (METADATA_FILE, NAME_LIST_FILE, find_transcripts, read_metadata,
                          read_transcript, side_file)
    from .segment import SegmentParams, make_nlp, segment

    segment_params = segment_params or SegmentParams()
    report = IngestReport()
    files, report.skipped = find_transcripts(paths)
    # a side file linked from outside a folder stops the run before anything is stored
    for folder in dict.fromkeys(f.parent for f in files):
        side_file(folder, METADATA_FILE)
        if redact:
            side_file(folder, NAME_LIST_FILE)
    metadata_by_folder: dict[Path, dict] = {}
    names_by_folder: dict[Path, list] = {}
    first_by_hash: dict[str, Path] = {}            # file bytes' sha256 -> first file read
    stored_names = set(store.documents(current_only=False)["name"])
    with progress(len(files), "reading", unit="file", enabled=show_progress) as bar:
        for path in files:
            bar.update(1)
            try:
                folder = path.parent
                if folder not in metadata_by_folder:
                    metadata_by_folder[folder] = read_metadata(folder)
                meta = metadata_by_folder[folder].get(path.name)
                if not redact and path.name in stored_names:
                    # a file stored before with these bytes and this segmentation is not
                    # parsed again (a redacted run reads it: its key lists every document);
                    # a name the store has never held is new and is not hashed twice
                    digest = _stored_unchanged(store, path, segment_params, max_bytes)
                    if digest is not None and digest not in first_by_hash:
                        first_by_hash[digest] = path
                        existing = store.find_document(path.name, digest, redacted=False)
                        store.set_current(existing)
                        report.documents.append((path.name, existing, "unchanged"))
                        continue
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
                        listed = side_file(folder, NAME_LIST_FILE)
                        names_by_folder[folder] = read_name_list(listed) if listed else []
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


def _stored_unchanged(store, path: Path, segment_params, max_bytes: int) -> str | None:
    """The sha256 of ``path``'s bytes when the store holds this file (name and bytes,
    un-redacted) cut with ``segment_params``, else None (also when the file cannot be read:
    reading it properly then gives the error)."""
    from .hashing import sha256_bytes

    try:
        if path.stat().st_size > max_bytes:
            return None
        digest = sha256_bytes(path.read_bytes())
    except OSError:
        return None
    existing = store.find_document(path.name, digest, redacted=False)
    if existing is None or not _same_params(store.document(existing)["parameters"],
                                            segment_params):
        return None
    return digest


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


def refuse_unredacted_into_redacted(store) -> None:
    """A project whose documents were redacted takes no un-redacted transcripts unless the
    user says so (``--no-redact``, ``allow_unredacted=True``): otherwise one run without
    redaction would store personal data beside (and as new versions of) the pseudonymised
    documents."""
    docs = store.documents(current_only=False)
    n = int(docs["redacted"].astype(bool).sum()) if len(docs) else 0
    if n:
        raise QualError(f"{store.path}: {n} of {counted(len(docs), 'document')} in this "
                        f"project {'is' if n == 1 else 'are'} redacted; run again with "
                        "--redact to pseudonymise these transcripts too, or with --no-redact "
                        "to store them un-redacted on purpose; nothing was read")


# -- code ----------------------------------------------------------------------------------
def check_probability(p: float | None) -> None:
    if p is not None and not 0.0 < p <= 1.0:
        raise QualError(f"--auto-accept-above must be a probability in (0, 1], not {p}")


def code(store, codebook, embedder, document_ids: list[int], *, coder=None,
         show_progress: bool = False, batch_size: int = 512,
         auto_accept_above: float | None = None) -> dict:
    """Code the stakeholder segments of ``document_ids`` in one run. Returns a summary dict.
    With ``auto_accept_above`` P, segments coded with confidence >= P count as auto-accepted
    (recorded as the run's parameter; no decision is stored) and leave the review queue.
    ``coder``: a coder's name (``qual.coder.CODERS``) or an object with ``fit(examples)``,
    ``predict(texts=, embeddings=)`` and ``get_params()``."""
    check_probability(auto_accept_above)
    from .coder import make_coder
    from .embed import CachedEmbedder, machine_cache, machine_cache_dir, progress
    from .errors import StoreError
    from .fitted import fit_or_load
    from .review import reviewer_examples

    cached = CachedEmbedder(embedder, store, machine=machine_cache())
    if coder is None or isinstance(coder, str):
        coder = make_coder(coder, codebook, cached)

    def preload():
        if hasattr(coder, "codebook_texts"):
            cached.preload(coder.codebook_texts())   # a codebook embedded before on this machine

    examples = reviewer_examples(store)
    # the same fit (codebook, decisions, model, parameters) is kept in the per-user cache
    fit, fit_key = fit_or_load(coder, examples, machine_cache_dir(), prepare=preload)
    segs = store.segments(role="stakeholder")
    segs = segs[segs["document_id"].isin(document_ids)].reset_index(drop=True)
    docs = store.documents()
    docs = docs[docs["id"].isin(document_ids)]
    run_id = store.start_run(
        "code", codebook_version=codebook.version, codebook_path=codebook.path,
        model_name=embedder.name, model_version=embedder.version,
        coder=type(coder).__name__,
        parameters={**coder.get_params(), "reviewer_examples": len(examples),
                    "fit": fit, "fit_key": fit_key,
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
                f"{counted(len(segs), 'segment')}: run {run_id} is incomplete and none of "
                "its codes are used; fix that and run `code` again", path=e.path) from None
        raise
    return {"run_id": run_id, "segments": len(segs), "embedded": cached.computed,
            "auto_accepted": _count_sure(store, run_id, auto_accept_above),
            "reused": cached.reused, "reviewer_examples": len(examples)}


def _count_sure(store, run_id: int, threshold: float | None) -> int:
    if threshold is None:
        return 0
    conf = store.machine_codes(run_id)["confidence"]
    return int((conf >= threshold).sum())


@dataclass
class CodeReport:
    """What :meth:`Project.code` did: the ingest report, the run's id, how many stakeholder
    segments it coded, texts embedded anew and reused from the cache, reviewer decisions
    learned from, segments auto-accepted (selective mode) and segments per theme."""
    ingest: IngestReport
    run_id: int
    segments: int
    embedded: int
    reused: int
    reviewer_examples: int
    auto_accepted: int
    per_theme: dict


def theme_counts(coded, theme_ids) -> dict:
    """Segments per theme (and ``none``) in a run's machine codes."""
    counts = {t: 0 for t in theme_ids}
    counts["none"] = 0
    for themes in coded["themes"]:
        for t in themes.split(";"):
            counts[t] = counts.get(t, 0) + 1
    return counts


# -- topics --------------------------------------------------------------------------------
def find_topics(store, codebook, embedder=None, *, min_topic_size=None, seed: int = 42,
                guidance=None, log=print, document_ids=None, max_topics=None,
                topic_model=None, emergent_percentile: float | None = None) -> dict:
    """Fit topics on the store's current stakeholder segments and store them as a ``topics`` run.

    Embeddings come from the cache under the latest code run's model; what is missing is
    embedded (and cached) with ``embedder`` (default: the default model). Returns a summary
    with ``run_id``, ``result`` (a ``TopicResult``), ``dropped`` (short segments left out).
    ``document_ids``: fit on those documents' segments only (``qual.scope``).
    ``topic_model``: an object with ``fit(texts, vectors) -> TopicResult`` and
    ``get_params()`` (default: ``qual.topics.TopicModel`` with the arguments above).
    ``emergent_percentile``: the percentile of the codebook's held-out examples' similarity
    to their own sub-code below which a segment counts as far from the codebook (default 5;
    higher flags more topics as emergent).
    """
    from .topics import EMERGENT_PERCENTILE

    if emergent_percentile is None:
        emergent_percentile = EMERGENT_PERCENTILE
    elif not 0 < emergent_percentile < 100:
        raise QualError(f"--emergent-percentile must be between 0 and 100, not "
                        f"{emergent_percentile}")
    from .embed import CachedEmbedder, make_embedder
    from .topics import DEFAULT_GUIDANCE, MIN_WORDS, TooFewSegments, TopicModel, usable_segments

    segs = store.segments(role="stakeholder")
    if document_ids is not None:
        segs = segs[segs["document_id"].isin(document_ids)].reset_index(drop=True)
    segs, dropped = usable_segments(segs)
    if dropped:
        log(f"left out {counted(dropped, 'stakeholder segment')} of fewer than {MIN_WORDS} words "
            "(\"Yes.\", \"That's right.\" carry no topic)")
    if segs.empty:
        raise TooFewSegments("no stakeholder segments in the store; run `python -m qual code "
                             "TRANSCRIPTS` first")
    code_run = store.latest_run("code")
    key = (f"{code_run['model_name']}@{code_run['model_version']}"
           if code_run and code_run.get("model_name") else None)
    cached = store.get_embeddings(key, segs["text_sha256"].tolist()) if key else {}
    missing = int(sum(h not in cached for h in segs["text_sha256"]))
    embedder = embedder or make_embedder()          # the default route, as `code` has it
    encoder = CachedEmbedder(embedder, store)
    if key and key == encoder.key and not missing:
        vectors = [cached[h] for h in segs["text_sha256"]]
    else:
        if key and key != encoder.key:
            log(f"the latest code run used {key}; embedding with {encoder.key} instead")
        vectors = encoder.encode(segs["text"].tolist(), show_progress=True)
    import numpy as np
    import pandas as pd

    vectors = np.vstack(vectors).astype(np.float32)
    docs = store.documents()
    if document_ids is not None:
        docs = docs[docs["id"].isin(document_ids)]
    model = topic_model or TopicModel(codebook, encoder, min_topic_size=min_topic_size,
                                      seed=seed, guidance=guidance or DEFAULT_GUIDANCE,
                                      max_topics=max_topics,
                                      emergent_percentile=emergent_percentile)
    result = model.fit(segs["text"].tolist(), vectors)
    run_id = store.start_run(
        "topics", codebook_version=codebook.version, codebook_path=codebook.path,
        model_name=embedder.name, model_version=embedder.version, coder="BERTopic",
        parameters={**model.get_params(), **result.parameters(), "min_words": MIN_WORDS,
                    "segments": len(segs), "left_out": dropped},
        input_hashes=dict(zip(docs["name"], docs["sha256"])))
    try:
        store.add_topics(run_id, result.topics,
                         pd.DataFrame({"segment_id": segs["segment_id"].to_numpy(),
                                       "topic": result.assignments}))
    except BaseException:
        store.finish_run(run_id, "failed")
        raise
    store.finish_run(run_id, "complete")
    return {"run_id": run_id, "result": result, "dropped": dropped, "segments": len(segs),
            "embedded": encoder.computed}


# -- summarise -----------------------------------------------------------------------------
def _require_coding(store) -> None:
    from .export import ExportError

    if store.latest_run("code") is None:
        raise ExportError("no coding run in this store yet; run `python -m qual code "
                          "PATH...` first", path=store.path)


def write_summaries(store, codebook, output, *, reviewed_only: bool = False,
                    document_ids=None, quotes_per_theme: int = 5,
                    max_per_stakeholder: int = 2):
    """Theme summaries (summary.md, summary.html, themes.csv, the matrices) of the effective
    coding, written into the folder ``output`` (made with its parents if missing; a failed
    run leaves no folder it made). Returns ``(summary, files)``."""
    from .export import ExportError, make_folders
    from .summarise import summary_from_store, write_summary

    _require_coding(store)
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise ExportError("is a file, expected a folder", path=out)
    made = make_folders(out)              # the folder and any missing parents
    try:
        summary = summary_from_store(store, codebook, reviewed_only=reviewed_only,
                                     document_ids=document_ids,
                                     quotes_per_theme=quotes_per_theme,
                                     max_per_stakeholder=max_per_stakeholder)
        files = write_summary(summary, codebook, out)
    except BaseException:
        if made:                          # a failed run leaves no folder (empty or half-full)
            import shutil

            shutil.rmtree(made[-1], ignore_errors=True)
        raise
    return summary, files


# -- export --------------------------------------------------------------------------------
def guess_format(output) -> str:
    """The export format an output file's extension names, else csv."""
    suffix = Path(output).suffix.lower().lstrip(".")
    return suffix if suffix in EXPORT_FORMATS else "csv"


def export_project(store, codebook, fmt: str, output, *, line_endings: str = "lf",
                   name: str | None = None, document_ids=None):
    """Write the effective coding as ``fmt`` (csv, xlsx or qdpx) to ``output`` (atomically).
    Returns ``(path, lines)``: the file written and what to tell the user about it. Used by
    the ``export`` command, :meth:`Project.export` and the app's downloads.
    ``document_ids``: only those documents (``qual.scope``), else every current one."""
    from .audit import audit_log
    from .export import about_rows, segments_phrase, write_csv, write_xlsx

    if fmt not in ("csv", "xlsx", "qdpx"):
        raise QualError(f"unknown export format {fmt!r} (expected csv, xlsx or qdpx; a "
                        "codebook alone is qdc)")
    keep = None if document_ids is None else set(int(i) for i in document_ids)
    if fmt == "qdpx":
        from dataclasses import replace

        from .qdpx import project_input, provenance, write_qdpx

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
    table, documents = _coded_table(store, codebook, keep)
    about = about_rows(run_info, codebook, documents, table)
    if fmt == "xlsx":
        from .summarise import summary_from_store

        summary = summary_from_store(store, codebook, document_ids=document_ids)
        out = write_xlsx(table, output, theme_ids=codebook.theme_ids,
                         quotes=_quotes_frame(summary), about=about,
                         log=audit_log(store, document_ids))
    else:
        out = write_csv(table, output)
    return out, [f"wrote {segments_phrase(table)} to {Path(out).resolve()}",
                 "; ".join(f"{k}: {v}" for k, v in about
                           if k in ("run", "codebook version (run)", "redaction"))]


def _coded_table(store, codebook, keep=None):
    """The coded segments table (the csv contract) of the effective coding, and the
    documents it covers; ``keep``: a set of document ids, else every current document."""
    from .export import coded_segments_table
    from .review import effective_coding

    coding = effective_coding(store)
    documents = store.documents()
    if keep is not None:
        coding = coding[coding["document_id"].isin(keep)]
        documents = documents[documents["id"].isin(keep)]
    runs = {int(r): store.run(int(r)) for r in coding["run_id"].dropna().unique()}
    return coded_segments_table(coding, documents, codebook.theme_ids, runs), documents


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


# -- review in a spreadsheet ---------------------------------------------------------------
#: the columns ``decisions export`` writes and ``decisions import`` reads back
DECISION_COLUMNS = ["segment_id", "themes", "polarity", "memo"]


def export_decisions(store, path, codebook=None) -> int:
    """Write the effective coding for spreadsheet review: ``segment_id, themes, polarity,
    memo`` (themes: theme and sub-code ids, ';'-separated, or 'none') plus read-only context
    columns ``document, speaker, text, confidence, reviewed``. Returns the row count."""
    import pandas as pd

    from .export import atomic_path, inert_table
    from .review import effective_coding

    c = effective_coding(store)
    labels = [";".join(x for x in (t, s) if isinstance(x, str) and x) for t, s in
              zip(c["themes"].fillna("none"), c["subcodes"].fillna(""))]
    table = pd.DataFrame({"segment_id": c["segment_id"], "themes": labels,
                          "polarity": c["polarity"].fillna("neutral"), "memo": c["memo"].fillna(""),
                          "document": c["document"], "speaker": c["speaker"], "text": c["text"],
                          "confidence": c["confidence"].round(3), "reviewed": c["reviewed"]})
    with atomic_path(path, suffix=".csv") as tmp:
        # text cells never read as formulas (a leading apostrophe; import removes it again)
        inert_table(table).to_csv(tmp, index=False, encoding="utf-8")
    return len(table)


def import_decisions(store, path, reviewer: str, codebook, *, accept_unchanged: bool = False):
    """Read a decisions CSV and record a decision per good row. Returns ``(recorded, skipped,
    errors)`` where errors are ``(line, column, message)``; bad rows are reported, good rows
    kept. Unchanged rows without a memo are skipped unless ``accept_unchanged``."""
    import csv

    from .cells import restore
    from .review import (NONE, ReviewError, apply_decision, coding_of, effective_coding,
                         normalise_coding, split_labels, unknown_label)

    if not Path(path).is_file():
        raise QualError("no such file", path=path)
    coding = effective_coding(store).set_index("segment_id")
    recorded, skipped, errors = 0, 0, []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in DECISION_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            errors.append((1, missing[0], f"missing column(s): {', '.join(missing)} "
                                          f"(expected {', '.join(DECISION_COLUMNS)})"))
            return 0, 0, errors
        last = 1
        for row in reader:
            line, last = last + 1, reader.line_num      # the row's first line in the file
            # the apostrophe export put before text starting with = + - @ (or ') goes again
            row = {k: restore(v) for k, v in row.items()}
            raw_id = (row.get("segment_id") or "").strip()
            try:
                sid = int(raw_id)
            except ValueError:
                errors.append((line, "segment_id", f"not a segment id: {raw_id!r}"))
                continue
            if sid not in coding.index:
                errors.append((line, "segment_id", _gone(store, sid)))
                continue
            labels = [x for x in split_labels((row.get("themes") or "").replace(",", ";"))
                      if x != NONE]
            bad = [x for x in labels if x not in codebook.theme_ids and x not in codebook.subcode_ids]
            if bad:
                errors.append((line, "themes", unknown_label(bad[0], codebook)))
                continue
            polarity = (row.get("polarity") or "").strip().lower() or "neutral"
            if polarity not in ("barrier", "opportunity", "neutral"):
                errors.append((line, "polarity", f"unknown polarity {polarity!r} "
                                                 "(barrier, opportunity or neutral)"))
                continue
            memo = (row.get("memo") or "").strip()
            themes = [x for x in labels if x in codebook.theme_ids]
            subcodes = [x for x in labels if x in codebook.subcode_ids]
            seg = coding.loc[sid]
            current = coding_of(seg)
            try:
                wanted = normalise_coding({"themes": themes, "subcodes": subcodes,
                                           "polarity": polarity}, codebook)
            except ReviewError as e:
                errors.append((line, "themes", str(e)))
                continue
            unchanged = (wanted["themes"] == [t for t in codebook.theme_ids
                                              if t in current["themes"]]
                         and sorted(wanted["subcodes"]) == sorted(current["subcodes"])
                         and (wanted["polarity"] == current["polarity"] or not wanted["themes"]))
            already = (bool(seg["reviewed"]) and seg["reviewer"] == reviewer
                       and (seg["memo"] or "") == memo)
            if unchanged and (already or (not memo and not accept_unchanged)):
                skipped += 1            # nothing new: importing the same file twice adds nothing
                continue
            try:
                if unchanged:
                    apply_decision(store, sid, reviewer, "accept", memo=memo)
                elif not themes and not subcodes:
                    apply_decision(store, sid, reviewer, "reject", memo=memo)
                else:
                    apply_decision(store, sid, reviewer, "recode", themes=themes,
                                   subcodes=subcodes, polarity=polarity, memo=memo,
                                   codebook=codebook)
                recorded += 1
            except ReviewError as e:
                errors.append((line, "themes", str(e)))
    return recorded, skipped, errors


def _gone(store, sid: int) -> str:
    """Why a segment id from the CSV is not in the coding (for the row's error message)."""
    seg = store.segment_record(sid)
    if seg is None or seg["role"] != "stakeholder":
        return f"no stakeholder segment with id {sid}"
    par = store.parents()
    now = sorted(int(x) for x in par.loc[par["parent_id"] == sid, "segment_id"])
    return (f"segment {sid} was split or merged, or its transcript changed, after the export"
            + (f"; it continues as segment(s) {', '.join(map(str, now))}" if now else "")
            + ": export again and redo this row")


# -- the codebook from the topics ----------------------------------------------------------
def subcode_from_topic(store, topic: int, *, given=()) -> dict:
    """What ``codebook add-code --from-topic N`` adds: the ``examples`` (those ``given``, then
    the topic's representative segments of the latest topics run, less those coded ``none``,
    which are listed in ``left_out``), a ``name`` (its first keyword) and a ``definition``."""
    from .errors import CodebookError
    from .review import effective_coding

    topics = store.topics()
    if topics.empty:
        raise CodebookError("no topics run in the store; run `python -m qual topics` first",
                            path=store.path, field="--from-topic")
    row = topics[topics["topic"] == topic]
    if row.empty:
        raise CodebookError(f"no topic {topic} in the latest topics run (topics: "
                            f"{', '.join(map(str, topics['topic']))})", path=store.path,
                            field="--from-topic")
    coding = effective_coding(store, scores=False)
    off_topic = set(coding.loc[coding["themes"] == "none", "text"])
    row = row.iloc[0]
    examples = list(given)
    from_topic = [e for e in row["examples"] if e not in examples]
    left_out = [e for e in from_topic if e in off_topic]
    examples += [e for e in from_topic if e not in off_topic]
    if not examples:
        raise CodebookError(f"topic {topic}'s example segments are all coded none "
                            "(small talk or off-topic), so they would teach the coder "
                            "nothing about a code; give examples with --example",
                            field="--from-topic")
    return {"examples": examples, "left_out": left_out,
            "name": str(row["keywords"]).split(",")[0].strip().capitalize(),
            "definition": f"Emergent topic {topic}: {row['keywords']}"}


# -- REFI-QDA import ------------------------------------------------------------------------
@dataclass
class ImportReport:
    """What :func:`import_qdpx` did: the project read (``project``), the plan (codes mapped,
    unknown and added; selections left out), the store's ``result`` (documents, segments,
    decisions per reviewer), the codebook file and its version before the import."""
    project: object
    plan: object
    result: dict
    codebook_path: Path
    codebook_version: str


def import_qdpx(path, db, *, codebook=None, add_codes_under: str | None = None,
                into_existing: bool = False, max_sentences: int = 5, max_words: int = 120,
                max_bytes: int = 50_000_000) -> ImportReport:
    """A REFI-QDA project (QualCoder, NVivo, ATLAS.ti, MAXQDA or qual) into the store ``db``:
    its sources as transcripts, segmented like any other, and each user's codings as that
    reviewer's decisions (``python -m qual import``). Everything is read, segmented and mapped
    before the store is touched; a failed import leaves no store it made.

    ``add_codes_under``: a theme id; the codes not in the codebook become its sub-codes and
    the codebook file is rewritten with them. A store that already holds documents is refused
    unless ``into_existing``."""
    from .codebook import default_codebook_path, load_codebook
    from .errors import StoreError
    from .qdpx_import import apply_import, plan_import, read_project
    from .segment import SegmentParams
    from .store import Store

    codebook_path = Path(codebook) if codebook else default_codebook_path()
    book = load_codebook(codebook_path)
    db = Path(db)
    created = not db.exists()
    if not created:
        with Store(db, create=False) as existing:
            n = existing.document_count()
        if n and not into_existing:
            raise StoreError(f"the store already holds {counted(n, 'document')}; import into a "
                             "new store (--db new.db), or pass --into-existing to add this "
                             "project to it; nothing was imported", path=str(db))
    params = SegmentParams(max_sentences, max_words)
    project = read_project(path, max_bytes=max_bytes)
    plan = plan_import(project, book, segment_params=params, add_codes_under=add_codes_under,
                       max_bytes=max_bytes)
    try:
        with Store(db) as store:
            result = apply_import(plan, store, segment_params=params)
        if plan.added:
            if load_codebook(codebook_path).version != book.version:
                raise QualError("the codebook changed while importing; nothing was imported",
                                path=str(codebook_path))
            _save_codebook_whole(plan, add_codes_under, codebook_path)
    except BaseException:
        if created:
            for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                p.unlink(missing_ok=True)
        raise
    return ImportReport(project=project, plan=plan, result=result,
                        codebook_path=codebook_path, codebook_version=book.version)


def _save_codebook_whole(plan, theme: str, path: Path) -> None:
    """Write the codebook with every added sub-code, one insertion at a time so the YAML keeps
    its comments (``save_added_subcode`` checks each step)."""
    from .codebook import add_subcode, load_codebook, save_added_subcode

    current = load_codebook(path)
    for sid in plan.added.values():
        sub = next(s for s in plan.codebook.subcodes if s.id == sid)
        current = add_subcode(current, theme, sid, sub.name, sub.definition, sub.examples)
        save_added_subcode(current, theme, sid, path)


# -- evaluate ------------------------------------------------------------------------------
def evaluate(codebook, embedder, gold, *, train=None, store=None, coder=None) -> dict:
    """Code every text of the gold CSV ``gold`` exactly as ``code`` would and measure the
    agreement. The coder learns from the codebook, from ``train`` (a labelled CSV, as reviewer
    decisions) and from ``store``'s reviewer decisions, never from a gold text. Returns
    ``result`` (the agreement figures), ``table`` (predictions per gold row), ``coder``,
    ``gold``, ``examples`` (rows learned from), ``sources`` (lines naming them), ``dropped``
    (training rows left out as gold) and ``excluded`` (reference rows left out as gold)."""
    import pandas as pd

    from .coder import make_coder
    from .embed import CachedEmbedder, machine_cache
    from .evaluate import evaluate_coder, read_labelled_csv

    themes = codebook.theme_ids
    gold_rows = read_labelled_csv(gold, themes)
    parts, sources = [], []
    if train:
        rows = read_labelled_csv(train, themes)
        parts.append(rows[["text", "themes", "polarity"]])
        sources.append(f"{counted(len(rows), 'row')} of {train}")
    if store is not None:
        from .review import reviewer_examples

        decided = reviewer_examples(store)
        parts.append(decided)
        sources.append(f"{counted(len(decided), 'reviewer decision')} in {store.path}")
    encoder = CachedEmbedder(embedder, store, machine=machine_cache())
    examples = pd.concat(parts, ignore_index=True) if parts else None
    dropped = 0
    if examples is not None and len(examples):
        in_gold = examples["text"].str.strip().isin(set(gold_rows["text"].str.strip()))
        dropped = int(in_gold.sum())
        examples = examples[~in_gold].reset_index(drop=True)   # never learn from the gold
    if coder is None or isinstance(coder, str):
        coder = make_coder(coder, codebook, encoder)
    if hasattr(coder, "codebook_texts"):
        encoder.preload(coder.codebook_texts())
    # the coder's own reference sets never hold a gold answer either
    excluded = _fit_excluding(coder, examples, gold_rows["text"].tolist())
    result, table = evaluate_coder(coder, gold_rows, themes)
    if hasattr(coder, "n_reference_"):
        sources.insert(0, f"{coder.n_reference_} reference answers of the codebook" +
                       (f" ({excluded} also in the gold file left out)" if excluded else ""))
    return {"result": result, "table": table, "coder": coder, "gold": gold_rows,
            "examples": examples, "sources": sources, "dropped": dropped,
            "excluded": excluded}


def _fit_excluding(coder, examples, gold_texts) -> int:
    """Fit ``coder``; a coder with reference sets leaves out those whose text is in the gold.
    Returns how many reference rows were left out."""
    import inspect

    if "exclude_texts" in inspect.signature(coder.fit).parameters:
        full = len(getattr(coder.codebook, "reference", ()))
        coder.fit(examples, exclude_texts=gold_texts)
        return full - coder.n_reference_
    coder.fit(examples)
    return 0


# -- the object ----------------------------------------------------------------------------
class Project:
    """One study over one store, for notebooks and scripts: the same work as the command line.

    Parameters
    ----------
    db:
        The store's file (opened, or created on first use; default ``qual.db``), or an open
        :class:`~qual.store.Store` (which the project then does not close).
    codebook:
        A codebook file or folder, or a loaded :class:`~qual.codebook.Codebook`. Default: the
        one the latest code run used when it is still on disk, else the shipped ``codebook/``.
    model, encoder:
        A local sentence-transformers folder (default all-MiniLM-L6-v2 from its PyPI package)
        and ``"onnx"`` (default: fp32 on ONNX Runtime), ``"fp32"`` (the same on PyTorch) or
        ``"int8"``, as ``--model`` and ``--encoder``.
    embedder:
        An embedder object instead (``qual.embed.Embedder`` or anything with ``encode``,
        ``name``, ``version`` and ``key``): tests and users can swap the encoder.
    coder:
        A coder's name (``"hybrid"``, the default, or ``"embedding"``) or a coder object with
        ``fit``/``predict``/``get_params``.
    topic_model:
        An object with ``fit(texts, vectors)`` returning a ``qual.topics.TopicResult`` and
        ``get_params()``; default ``qual.topics.TopicModel``.
    show_progress:
        Progress bars (counts and rate) on a terminal and in a Jupyter notebook; never in a
        log file.
    create:
        With ``False``, a store file that does not exist yet is an error rather than made.

    Every fault raises a :class:`~qual.errors.QualError` whose message is the one the command
    line prints; a warning is a :class:`~qual.errors.QualWarning`.
    """

    def __init__(self, db="qual.db", *, codebook=None, model=None, encoder=None,
                 embedder=None, coder=None, topic_model=None, show_progress: bool = True,
                 create: bool = True):
        from .store import Store

        if isinstance(db, Store):
            self.store, self._owns_store = db, False
        else:
            self.store, self._owns_store = Store(db, create=create), True
        self._codebook_arg = codebook
        self._codebook = None
        self._model, self._encoder, self._embedder = model, encoder, embedder
        self.coder = coder
        self.topic_model = topic_model
        self.show_progress = show_progress
        self._nlp = None

    # -- housekeeping --
    def close(self) -> None:
        """Close the store (when the project opened it)."""
        if self._owns_store:
            self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"Project({str(self.store.path)!r}, documents={self.store.document_count()})"

    @property
    def path(self) -> Path:
        """The store's file."""
        return Path(self.store.path)

    @property
    def codebook(self):
        """The codebook in use (loaded on first use)."""
        if self._codebook is None:
            from .codebook import Codebook, load_codebook

            arg = self._codebook_arg
            if isinstance(arg, Codebook):
                self._codebook = arg
            else:
                if arg is None:
                    latest = self.store.latest_run("code")
                    used = latest.get("codebook_path") if latest else None
                    arg = used if used and Path(used).exists() else None
                self._codebook = load_codebook(arg)
        return self._codebook

    @property
    def embedder(self):
        """The sentence encoder (loaded on first use)."""
        if self._embedder is None:
            from .embed import make_embedder

            self._embedder = make_embedder(self._model, self._encoder)
        return self._embedder

    def _scope(self, documents=None, folder=None) -> list[int] | None:
        from .scope import select_documents

        if documents is not None and folder is not None:
            raise QualError("give documents or folder, not both")
        if isinstance(documents, str):
            documents = [documents]
        if not documents and not folder:
            return None
        return select_documents(self.store.documents(), names=documents, folder=folder)

    def documents(self):
        """The store's current documents as a DataFrame (id, name, path, metadata, ...)."""
        return self.store.documents()

    # -- read, redact, segment --
    def ingest(self, paths, *, redact: bool = False, allow_unredacted: bool = False,
               redact_names=(), redact_list=None, redact_key=None, max_sentences: int = 5,
               max_words: int = 120, max_bytes: int = 50_000_000) -> IngestReport:
        """Read, (optionally) pseudonymise, segment and store the transcripts under ``paths``
        (files or folders), without coding: ``python -m qual ingest``.

        ``redact``: personal data is replaced before anything is stored; ``redact_names`` and
        the file ``redact_list`` (one name a line) add names; ``redact_key``: write the
        pseudonym -> original key to this file. A project whose documents are redacted
        refuses un-redacted transcripts unless ``allow_unredacted``. A file that cannot be read
        is listed in ``report.failures``; the others are stored."""
        from .scope import other_study_warning
        from .segment import SegmentParams

        if (redact_key or redact_list) and not redact:
            raise QualError("--redact-key and --redact-list need --redact")
        if redact and allow_unredacted:
            raise QualError("--redact and --no-redact contradict each other")
        if not redact and not allow_unredacted:
            refuse_unredacted_into_redacted(self.store)
        names = list(redact_names)
        if redact_list:
            from .redact import read_name_list

            names += read_name_list(redact_list)
        params = SegmentParams(max_sentences, max_words)
        before = self.store.documents(current_only=False)
        report = ingest([paths] if isinstance(paths, (str, Path)) else paths, self.store,
                        nlp=self._nlp, show_progress=self.show_progress,
                        segment_params=params, max_bytes=max_bytes, redact=redact,
                        redact_names=names)
        warning = other_study_warning(before, self.store.documents(current_only=False),
                                      self.store.path)
        if warning:
            warnings.warn(QualWarning(warning), stacklevel=2)
        if redact and redact_key:
            from .redact import write_key

            report.key_path = write_key(report.replacements, redact_key)
        return report

    # -- code --
    def code(self, paths=None, *, auto_accept_above: float | None = None, coder=None,
             **ingest_options) -> CodeReport:
        """Read and store the transcripts under ``paths`` (as :meth:`ingest`, with the same
        options), then code their stakeholder segments against the codebook in one run:
        ``python -m qual code``. Without ``paths``, every current document of the store is
        coded again. Reviewer decisions are never changed; a re-run learns from them.

        ``auto_accept_above``: selective mode, see ``--auto-accept-above``. ``coder``
        overrides the project's coder for this run."""
        check_probability(auto_accept_above)
        if paths is None:
            report = IngestReport(documents=[(r.name, int(r.id), "unchanged")
                                             for r in self.store.documents().itertuples()])
        else:
            report = self.ingest(paths, **ingest_options)
        if not report.documents:
            detail = f": {report.failures[0][1]}" if report.failures else ""
            raise QualError(f"no transcript could be read; nothing to code{detail}")
        return self.code_documents(report, auto_accept_above=auto_accept_above, coder=coder)

    def code_documents(self, report: IngestReport, *, auto_accept_above=None,
                       coder=None) -> CodeReport:
        """Code the documents an :meth:`ingest` stored (its ``report``) in one run."""
        result = code(self.store, self.codebook, self.embedder, report.document_ids,
                      coder=coder if coder is not None else self.coder,
                      show_progress=self.show_progress, auto_accept_above=auto_accept_above)
        coded = self.store.machine_codes(result["run_id"])
        return CodeReport(ingest=report, run_id=result["run_id"], segments=result["segments"],
                          embedded=result["embedded"], reused=result["reused"],
                          reviewer_examples=result["reviewer_examples"],
                          auto_accepted=result["auto_accepted"],
                          per_theme=theme_counts(coded, self.codebook.theme_ids))

    # -- look and decide --
    def coding(self, *, documents=None, folder=None):
        """The effective coding (the latest run's machine codes with every reviewer decision
        on top) as a DataFrame with the columns of ``export --format csv``: one row per
        stakeholder segment. ``documents`` (names) or ``folder``: only those documents."""
        keep = self._scope(documents, folder)
        table, _ = _coded_table(self.store, self.codebook,
                                None if keep is None else set(keep))
        return table

    def queue(self, **filters):
        """The review queue: the effective coding, least sure first, filtered as in the app
        (``qual.review.review_queue``'s arguments: themes, subcodes, polarity, ...)."""
        from .review import effective_coding, review_queue

        return review_queue(effective_coding(self.store), **filters)

    def decide(self, segment_id: int, *, reviewer: str, themes=None, subcodes=None,
               polarity=None, memo: str = "", action: str | None = None,
               blind: bool = False) -> int:
        """Record one reviewer decision on a segment and return its id. With ``themes``,
        ``subcodes`` or ``polarity`` it is a recode (checked against the codebook);
        ``action="accept"`` keeps the coding shown, ``"reject"`` codes it ``none``, ``"undo"``
        takes back the latest decision. The decision log is append-only."""
        from .review import apply_decision

        if action is None:
            if themes is None and subcodes is None and polarity is None:
                raise QualError("a decision needs themes, subcodes or polarity (a recode), or "
                                "action='accept', 'reject' or 'undo'")
            action = "recode"
        if isinstance(themes, str):
            themes = [themes]
        if isinstance(subcodes, str):
            subcodes = [subcodes]
        return apply_decision(self.store, int(segment_id), reviewer, action, themes=themes,
                              subcodes=subcodes, polarity=polarity, memo=memo,
                              codebook=self.codebook, blind=blind)

    def export_decisions(self, output) -> int:
        """Write the effective coding for review in a spreadsheet (``decisions export``):
        columns segment_id, themes, polarity, memo, then read-only context. Returns the rows."""
        return export_decisions(self.store, output)

    def import_decisions(self, path, *, reviewer: str, accept_unchanged: bool = False):
        """Record the rows of an edited decisions CSV as ``reviewer``'s decisions
        (``decisions import``). Returns ``(recorded, skipped, errors)``; each error is
        ``(line, column, message)`` and its row is not imported, the good rows are."""
        if not (reviewer or "").strip():
            raise QualError("a decision needs the reviewer's name")
        return import_decisions(self.store, path, reviewer.strip(), self.codebook,
                                accept_unchanged=accept_unchanged)

    def decisions(self, segment_id: int | None = None):
        """The decision log (every decision, who, when, before and after), oldest first."""
        from .review import decision_log

        return decision_log(self.store, segment_id)

    # -- topics --
    def _topic_embedder(self):
        """The encoder whose vectors the topics reuse: the one given, else the one the latest
        code run cached (its model name ends in ``+onnx`` or ``+int8``, or in neither for the
        PyTorch route), else the default."""
        if self._embedder is not None or self._model or self._encoder:
            return self.embedder
        latest = self.store.latest_run("code")
        if latest and latest.get("model_name"):
            name = str(latest["model_name"])
            self._encoder = next((e for e in ("onnx", "int8") if name.endswith(f"+{e}")), "fp32")
            return self.embedder
        return None

    def topics(self, *, seed: int = 42, min_topic_size: int | None = None,
               max_topics: int | None = None, emergent_percentile: float | None = None,
               documents=None, folder=None, output=None, log=None) -> dict:
        """Fit emergent topics (BERTopic) on the stakeholder segments and store them as a run:
        ``python -m qual topics``. Returns ``run_id``, ``result`` (``result.topics`` is the
        DataFrame of topics), ``segments``, ``dropped`` and ``notes`` (what the command line
        prints on the way, e.g. short segments left out; ``log`` is called with each too).
        ``output``: also write the topics as CSV there. The same store and seed give the
        same topics. ``emergent_percentile``: see ``--emergent-percentile``."""
        notes: list[str] = []

        def note(message: str) -> None:
            notes.append(message)
            if log is not None:
                log(message)

        summary = find_topics(self.store, self.codebook, self._topic_embedder(),
                              min_topic_size=min_topic_size, seed=seed,
                              document_ids=self._scope(documents, folder),
                              max_topics=max_topics, topic_model=self.topic_model, log=note,
                              emergent_percentile=emergent_percentile)
        summary["notes"] = notes
        if output is not None:
            from .export import write_topics_csv

            summary["output"] = write_topics_csv(summary["result"].topics, output)
        return summary

    # -- summarise and export --
    def summarise(self, output, *, reviewed_only: bool = False, quotes: int = 5,
                  max_per_stakeholder: int = 2, documents=None, folder=None):
        """Write the theme summaries (summary.md, summary.html, themes.csv, matrices) into the
        folder ``output``: ``python -m qual summarise``. Returns ``(summary, files)``."""
        summary, files = write_summaries(self.store, self.codebook, output,
                                         reviewed_only=reviewed_only,
                                         document_ids=self._scope(documents, folder),
                                         quotes_per_theme=quotes,
                                         max_per_stakeholder=max_per_stakeholder)
        self._warn_other_codebook(summary.run)
        return summary, files

    def export(self, output, *, format: str | None = None, line_endings: str = "lf",
               name: str | None = None, documents=None, folder=None) -> Path:
        """Write the effective coding to ``output`` as csv, xlsx or a REFI-QDA .qdpx project,
        or the codebook as .qdc (``format``, default: from the extension, else csv):
        ``python -m qual export``. Returns the file written."""
        path, _ = self.export_with_notes(output, format=format, line_endings=line_endings,
                                         name=name, documents=documents, folder=folder)
        return path

    def export_with_notes(self, output, *, format: str | None = None,
                          line_endings: str = "lf", name: str | None = None,
                          documents=None, folder=None) -> tuple[Path, list[str]]:
        """:meth:`export`, returning also the lines the command line prints about the file."""
        fmt = format or guess_format(output)
        if fmt not in EXPORT_FORMATS:
            raise QualError(f"unknown export format {fmt!r} (expected "
                            f"{', '.join(EXPORT_FORMATS)})")
        cb = self.codebook
        if fmt == "qdc":
            from .qdpx import write_qdc

            out = write_qdc(cb, output)
            return Path(out), [f"wrote the codebook '{cb.name}' (version {cb.version}, "
                               f"{counted(len(cb.themes), 'theme')}, "
                               f"{counted(len(cb.subcode_ids), 'sub-code')}) to "
                               f"{Path(out).resolve()}"]
        from .export import ExportError

        run_info = self.store.latest_run("code")
        if run_info is None:
            raise ExportError("no coding run in this store yet; run `python -m qual code "
                              "PATH...` first", path=self.store.path)
        self._warn_other_codebook(run_info)
        out, lines = export_project(self.store, cb, fmt, output, line_endings=line_endings,
                                    name=name or Path(output).stem,
                                    document_ids=self._scope(documents, folder))
        return Path(out), lines

    def _warn_other_codebook(self, run_info: dict | None) -> None:
        """A QualWarning when the latest code run used another codebook than this project's
        (the command line prints it as ``qual: warning: ...``)."""
        used = (run_info or {}).get("codebook_version")
        if used not in (None, self.codebook.version):
            warnings.warn(QualWarning(
                f"the latest run was coded with codebook version {used}; the codebook given "
                f"is version {self.codebook.version} (run `code` again to recode with it)"),
                stacklevel=3)

    @classmethod
    def from_qdpx(cls, path, db="qual.db", *, codebook=None, add_codes_under=None,
                  into_existing: bool = False, **models) -> "Project":
        """A project made from a REFI-QDA ``.qdpx`` (``python -m qual import``): see
        :func:`import_qdpx`. What the import did is in ``project.import_report``."""
        report = import_qdpx(path, db, codebook=codebook, add_codes_under=add_codes_under,
                             into_existing=into_existing)
        project = cls(db, codebook=report.codebook_path, create=False, **models)
        project.import_report = report
        return project

    # -- measure --
    def evaluate(self, gold, *, train=None, use_decisions: bool = True) -> dict:
        """Agreement of the coder with a human-coded CSV (columns text, themes, optional
        polarity): ``python -m qual evaluate``. Learns from the codebook, ``train`` and (with
        ``use_decisions``) this store's reviewer decisions, never from the gold. Returns the
        figures (``result``) and the predictions (``table``)."""
        return evaluate(self.codebook, self.embedder, gold, train=train,
                        store=self.store if use_decisions else None, coder=self.coder)

    def agreement(self, *, blind_only: bool = False) -> dict:
        """Machine vs reviewers and reviewer vs reviewer on the segments both coded: Cohen's
        κ per theme, Krippendorff's α (``python -m qual agreement``)."""
        from .agreement import agreement

        return agreement(self.store, self.codebook.theme_ids, blind_only=blind_only)
