"""Review app speed at the size of a real study: 50,000 synthetic stakeholder segments.

    python bench/review_bench.py [--segments 50000] [--db bench/out/review_bench.db]

Builds a store (documents, turns, segments, one complete code run with scores, a few
thousand decisions), then times what a review page needs (the effective coding, the queue
with and without filters, the overview) and writing one decision. Targets (issue 4): a
page in under 2 s, a decision stored in under 200 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from qual import review as R  # noqa: E402
from qual.agreement import agreement  # noqa: E402
from qual.model import Segment, Transcript, Turn  # noqa: E402
from qual.store import Store  # noqa: E402

THEMES = ["public", "people", "processes", "technical"]
SUBS = {t: [f"{t}.a", f"{t}.b", f"{t}.c"] for t in THEMES}
WORDS = ("data sharing trust public legal skills platform access governance consent quality "
         "funding analysts pipeline standards approval risk benefit").split()


def build(path: Path, n_segments: int, per_doc: int = 250, decisions: int = 5000, seed: int = 0):
    rng = random.Random(seed)
    if path.exists():
        path.unlink()
    store = Store(path)
    n_docs = n_segments // per_doc
    for d in range(n_docs):
        parts, turns, segs, pos = [], [], [], 0
        for i in range(per_doc):
            q = f"Interviewer: question {i} about {rng.choice(WORDS)}?\n"
            parts.append(q)
            turns.append(Turn("Interviewer", pos + 13, pos + len(q) - 1, "interviewer"))
            pos += len(q)
            words = [rng.choice(WORDS) for _ in range(rng.randint(12, 40))]
            words[len(words) // 2] += ","              # a clause break a reviewer may cut at
            body = " ".join(words) + "."
            line = f"Stakeholder: {body}\n"
            parts.append(line)
            start = pos + 13
            turns.append(Turn("Stakeholder", start, start + len(body), "stakeholder"))
            segs.append(Segment(f"doc{d}", start, start + len(body), body, "Stakeholder",
                                "stakeholder", 2 * i + 1, context=q[13:-1]))
            pos += len(line)
        text = "".join(parts)
        t = Transcript(f"doc{d:04d}.txt", text, turns, {"stakeholder_id": f"S{d}"},
                       format="txt", sha256=f"{d:064x}")
        store.add_document(t, segs, text_sha256=f"{d:064x}")
    run = store.start_run("code", codebook_version="bench", model_name="synthetic")
    seg = store.segments()
    rows = []
    for sid in seg["segment_id"]:
        k = rng.choice([0, 1, 1, 2])
        themes = rng.sample(THEMES, k)
        scores = {t: round(rng.random(), 3) for t in THEMES} | {"none": round(rng.random(), 3)}
        rows.append({"segment_id": int(sid), "themes": ";".join(themes) or "none",
                     "subcodes": ";".join(rng.choice(SUBS[t]) for t in themes),
                     "polarity": rng.choice(["barrier", "opportunity", "neutral"]) if themes
                     else "neutral", "confidence": rng.random(), "scores": scores})
    codes = pd.DataFrame(rows)
    for i in range(0, len(codes), 5000):
        store.add_codes(run, codes.iloc[i:i + 5000])
    store.finish_run(run)
    ids = rng.sample(list(seg["segment_id"]), decisions)
    before = {"themes": [], "subcodes": [], "polarity": "neutral"}
    with store.transaction() as c:        # bulk: the decision log as the app would leave it
        for j, sid in enumerate(ids):
            after = {"themes": [rng.choice(THEMES)], "subcodes": [], "polarity": "barrier"}
            import json

            c.execute("INSERT INTO decisions (segment_id, reviewer, created_at, action, before,"
                      " after, memo, text_sha256) VALUES (?, ?, ?, 'recode', ?, ?, '',"
                      " (SELECT text_sha256 FROM segments WHERE id = ?))",
                      (int(sid), ["ann", "bob"][j % 2], "2026-01-01T00:00:00",
                       json.dumps(before), json.dumps(after), int(sid)))
    return store


def timed(fn, repeat=3):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segments", type=int, default=50_000)
    ap.add_argument("--db", default=str(Path(__file__).parent / "out" / "review_bench.db"))
    args = ap.parse_args(argv)
    path = Path(args.db)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    store = build(path, args.segments)
    print(f"built {path} with {len(store.segments())} segments, "
          f"{store.decision_count()} decisions in {time.perf_counter() - t0:.1f} s")

    t_cod, coding = timed(lambda: R.effective_coding(store))
    t_mach, machine = timed(lambda: R.machine_coding(store, scores=False))
    t_app, _ = timed(lambda: R.apply_decisions(machine, store.latest_decisions()))
    t_q, queue = timed(lambda: R.review_queue(coding))
    t_qf, _ = timed(lambda: R.review_queue(coding, themes=["people"], polarity="barrier",
                                           min_confidence=0.2, max_confidence=0.8))
    docs = store.documents()
    t_ov, _ = timed(lambda: R.theme_overview(coding, docs, THEMES))
    t_ag, _ = timed(lambda: agreement(store, THEMES), repeat=1)
    ids = queue["segment_id"].head(20).tolist()
    writes = []
    for sid in ids:
        t = time.perf_counter()
        R.apply_decision(store, int(sid), "bench", "reject")
        writes.append(time.perf_counter() - t)
    splits = []
    for sid in queue["segment_id"].iloc[20:40].tolist():
        cuts = R.split_points(store.segment_record(int(sid))["text"])
        if cuts:
            t = time.perf_counter()
            R.split_segment(store, int(sid), cuts[0], "bench")
            splits.append(time.perf_counter() - t)
    t_after, _ = timed(lambda: R.apply_decisions(R.machine_coding(store, scores=False),
                                                 store.latest_decisions()))
    cold = t_mach + t_app + t_q
    warm = t_app + t_q
    print(f"effective coding (all, scores parsed): {t_cod * 1000:7.0f} ms")
    print(f"machine coding (app cache, read once): {t_mach * 1000:7.0f} ms")
    print(f"decisions applied on top:              {t_app * 1000:7.0f} ms")
    print(f"review queue (all):                    {t_q * 1000:7.0f} ms  ({len(queue)} unreviewed)")
    print(f"review queue (filtered):               {t_qf * 1000:7.0f} ms")
    print(f"overview table:                        {t_ov * 1000:7.0f} ms")
    print(f"agreement page data:                   {t_ag * 1000:7.0f} ms")
    print(f"queue page data: first page {cold * 1000:.0f} ms, after a decision "
          f"{warm * 1000:.0f} ms  (target < 2000 ms)")
    print(f"decision write: median {statistics.median(writes) * 1000:.1f} ms, max "
          f"{max(writes) * 1000:.1f} ms over {len(writes)}  (target < 200 ms)")
    if splits:
        print(f"split (a boundary decision): median {statistics.median(splits) * 1000:.1f} ms, "
              f"max {max(splits) * 1000:.1f} ms over {len(splits)}; coding after the splits "
              f"{t_after * 1000:.0f} ms")
    page = warm
    store.close()
    return 0 if page < 2 and max(writes + splits) < 0.2 else 1


if __name__ == "__main__":
    sys.exit(main())
