"""``python -m qual topics``: emergent topics in the stakeholder segments, placed under themes."""

from __future__ import annotations

import time
from pathlib import Path

ORDER = 30


def find_topics(store, codebook, embedder=None, *, min_topic_size=None, seed: int = 42,
                guidance=None, log=print, document_ids=None, max_topics=None) -> dict:
    """Fit topics on the store's current stakeholder segments and store them as a ``topics`` run.

    Embeddings come from the cache under the latest code run's model; what is missing is
    embedded (and cached) with ``embedder`` (default: the default model). Returns a summary
    with ``run_id``, ``result`` (a ``TopicResult``), ``dropped`` (short segments left out).
    ``document_ids``: fit on those documents' segments only (``qual.scope``).
    """
    from ..embed import CachedEmbedder, Embedder
    from ..topics import DEFAULT_GUIDANCE, MIN_WORDS, TooFewSegments, TopicModel, usable_segments

    segs = store.segments(role="stakeholder")
    if document_ids is not None:
        segs = segs[segs["document_id"].isin(document_ids)].reset_index(drop=True)
    segs, dropped = usable_segments(segs)
    if dropped:
        log(f"left out {dropped} stakeholder segments of fewer than {MIN_WORDS} words "
            "(\"Yes.\", \"That's right.\" carry no topic)")
    if segs.empty:
        raise TooFewSegments("no stakeholder segments in the store; run `python -m qual code "
                             "TRANSCRIPTS` first")
    code_run = store.latest_run("code")
    key = (f"{code_run['model_name']}@{code_run['model_version']}"
           if code_run and code_run.get("model_name") else None)
    cached = store.get_embeddings(key, segs["text_sha256"].tolist()) if key else {}
    missing = int(sum(h not in cached for h in segs["text_sha256"]))
    embedder = embedder or Embedder()
    encoder = CachedEmbedder(embedder, store)
    if key and key == encoder.key and not missing:
        vectors = [cached[h] for h in segs["text_sha256"]]
    else:
        if key and key != encoder.key:
            log(f"the latest code run used {key}; embedding with {encoder.key} instead")
        vectors = encoder.encode(segs["text"].tolist(), show_progress=True)
    import numpy as np

    vectors = np.vstack(vectors).astype(np.float32)
    docs = store.documents()
    if document_ids is not None:
        docs = docs[docs["id"].isin(document_ids)]
    model = TopicModel(codebook, encoder, min_topic_size=min_topic_size, seed=seed,
                       guidance=guidance or DEFAULT_GUIDANCE, max_topics=max_topics)
    result = model.fit(segs["text"].tolist(), vectors)
    run_id = store.start_run(
        "topics", codebook_version=codebook.version, codebook_path=codebook.path,
        model_name=embedder.name, model_version=embedder.version, coder="BERTopic",
        parameters={**model.get_params(), **result.parameters(), "min_words": MIN_WORDS,
                    "segments": len(segs), "left_out": dropped},
        input_hashes=dict(zip(docs["name"], docs["sha256"])))
    try:
        import pandas as pd

        store.add_topics(run_id, result.topics,
                         pd.DataFrame({"segment_id": segs["segment_id"].to_numpy(),
                                       "topic": result.assignments}))
    except BaseException:
        store.finish_run(run_id, "failed")
        raise
    store.finish_run(run_id, "complete")
    return {"run_id": run_id, "result": result, "dropped": dropped, "segments": len(segs),
            "embedded": encoder.computed}


def format_table(topics, width: int = 60) -> str:
    from ..topicview import similarity_text

    def cut(s, n):
        s = str(s)
        return s if len(s) <= n else s[: n - 1] + "…"

    lines = [f"{'topic':>5} {'size':>5}  {'theme / sub-code':<34} {'sim':>5}  keywords"]
    for r in topics.itertuples(index=False):
        where = "(outliers)" if r.topic == -1 else (
            "EMERGENT near " + r.subcode if r.emergent else r.subcode)
        sim = "" if r.topic == -1 else similarity_text(r.similarity)
        lines.append(f"{r.topic:>5} {r.size:>5}  {cut(where, 34):<34} {sim:>5}  "
                     f"{cut(r.keywords, width)}")
    return "\n".join(lines)


def write_topics_csv(topics, path) -> Path:
    """CSV with columns topic, size, keywords, theme, subcode, similarity, emergent, examples
    (examples joined by ' | '), written atomically (a missing folder is made)."""
    from ..export import atomic_path, inert_table

    cols = ["topic", "size", "keywords", "theme", "subcode", "similarity", "emergent", "examples"]
    out = topics[cols].copy()
    out["examples"] = out["examples"].map(lambda xs: " | ".join(xs))
    path = Path(path)
    with atomic_path(path, ".csv") as tmp:
        inert_table(out).to_csv(tmp, index=False)       # no cell read as a spreadsheet formula
    return path


def run(args) -> int:
    from ..codebook import load_codebook
    from ..embed import make_embedder
    from ..scope import scope_ids
    from ..store import Store
    from ..topics import TooFewSegments

    t0 = time.perf_counter()
    with Store(args.db, create=False) as store:
        latest = store.latest_run("code")
        cb_path = args.codebook
        if cb_path is None and latest and latest.get("codebook_path") \
                and Path(latest["codebook_path"]).exists():
            cb_path = latest["codebook_path"]
        codebook = load_codebook(cb_path)
        encoder = args.encoder
        if encoder is None and latest and str(latest.get("model_name") or "").endswith("+int8"):
            encoder = "int8"      # the vectors the code run cached are int8 ones
        embedder = make_embedder(args.model, encoder) if (args.model or encoder) else None
        try:
            summary = find_topics(store, codebook, embedder, min_topic_size=args.min_topic_size,
                                  seed=args.seed, document_ids=scope_ids(store, args),
                                  max_topics=args.topics)
        except TooFewSegments as e:
            print(f"qual: {e.message}")
            return 1
    result = summary["result"]
    print(format_table(result.topics))
    n = int((result.topics["topic"] >= 0).sum())
    emergent = int(result.topics["emergent"].sum())
    outliers = bool((result.topics["topic"] == -1).any())
    print(f"{n} topics ({emergent} emergent) in {summary['segments']} stakeholder segments; "
          f"{result.params.method}, seed {args.seed}; " + "; ".join(result.notes))
    if args.output:
        out = write_topics_csv(result.topics, args.output)
        print(f"wrote {n} topics" + (" and the outliers row (topic -1)" if outliers else "")
              + f" to {out.resolve()}")
    print(f"run {summary['run_id']} stored in {Path(args.db).resolve()} "
          f"(fit {result.fit_seconds:.1f} s, took {time.perf_counter() - t0:.1f} s)")
    return 0


def register(sub) -> None:
    from ..cli import add_db_option
    from ..scope import add_scope_options

    p = sub.add_parser(
        "topics", help="find emergent topics in the stakeholder segments (BERTopic)",
        description="Fit BERTopic on the store's stakeholder segments (reusing their cached "
                    "embeddings), place each topic under the nearest codebook theme and sub-code, "
                    "and flag as emergent the topics nothing in the codebook is close to. "
                    "Segments of fewer than 6 words are left out. Stored as a 'topics' run.")
    add_db_option(p)
    add_scope_options(p)
    p.add_argument("--output", default=None, help="also write the topics as CSV to this file")
    p.add_argument("--min-topic-size", type=int, default=None,
                   help="smallest topic (default: chosen from the number of segments)")
    p.add_argument("--topics", type=int, default=None, metavar="N",
                   help="show at most N topics, merging the nearest (default: one per 100 "
                        "segments, at least 20, at most 40)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42): the same "
                   "store and seed give the same topics")
    p.add_argument("--codebook", default=None,
                   help="codebook (default: the one the latest code run used)")
    p.add_argument("--model", default=None, help="local sentence-transformers folder "
                   "(default: all-MiniLM-L6-v2)")
    from ..embed import add_encoder_option

    add_encoder_option(p)
    p.set_defaults(func=run)
