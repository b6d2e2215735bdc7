"""``python -m qual topics``: emergent topics in the stakeholder segments, placed under themes."""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import counted

ORDER = 30


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


def run(args) -> int:
    from ..export import write_topics_csv
    from ..project import Project
    from ..topics import TooFewSegments

    t0 = time.perf_counter()
    with Project(args.db, create=False, codebook=args.codebook, model=args.model,
                 encoder=args.encoder) as project:
        try:
            summary = project.topics(min_topic_size=args.min_topic_size, seed=args.seed,
                                     documents=args.documents, folder=args.folder,
                                     max_topics=args.topics, log=print,
                                     emergent_percentile=args.emergent_percentile)
        except TooFewSegments as e:
            print(f"qual: {e.message}")
            return 1
    result = summary["result"]
    print(format_table(result.topics))
    n = int((result.topics["topic"] >= 0).sum())
    emergent = int(result.topics["emergent"].sum())
    outliers = bool((result.topics["topic"] == -1).any())
    print(f"{counted(n, 'topic')} ({emergent} emergent) in "
          f"{counted(summary['segments'], 'stakeholder segment')}; "
          f"{result.params.method}, seed {args.seed}; " + "; ".join(result.notes))
    if args.output:
        out = write_topics_csv(result.topics, args.output)
        print(f"wrote {counted(n, 'topic')}"
              + (" and the outliers row (topic -1)" if outliers else "") + f" to {out.resolve()}")
    print(f"run {summary['run_id']} stored in {Path(args.db).resolve()} "
          f"(fit {result.fit_seconds:.1f} s, took {time.perf_counter() - t0:.1f} s)")
    return 0


def register(sub) -> None:
    from ..cli import add_db_option, add_encoder_option
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
    p.add_argument("--emergent-percentile", type=float, default=None, metavar="P",
                   help="a segment is far from the codebook when it is less similar to every "
                        "sub-code than P%% of the codebook's own held-out examples are to "
                        "theirs; a topic is EMERGENT when most of its segments are (default 5; "
                        "higher flags more topics)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42): the same "
                   "store and seed give the same topics")
    p.add_argument("--codebook", default=None,
                   help="codebook (default: the one the latest code run used)")
    p.add_argument("--model", default=None, help="local sentence-transformers folder "
                   "(default: all-MiniLM-L6-v2)")
    add_encoder_option(p)
    p.set_defaults(func=run)
