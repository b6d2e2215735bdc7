"""Time the topic fit on the six Inquiry transcripts and print the topics.

    python bench/topics_bench.py                 # code the transcripts into a temp store, then fit
    python bench/topics_bench.py --db FILE       # reuse a store already coded with them
    python bench/topics_bench.py --compare       # also compare guidance: none / seed / zeroshot

Prints: segments used, the fit time of the first fit in this process (numba compiles UMAP's
code then) and of a second, warm fit with the same seed (and whether it gave identical topics),
the topics table, and with --compare the coherence proxy and mapped share per guidance mode.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INQUIRY = REPO.parent / "shared" / "data" / "inquiry" / "transcripts"
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="a store already coded with the Inquiry transcripts "
                    "(copied, not changed)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--compare", action="store_true", help="compare guidance modes")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    import numpy as np

    from qual.project import code, ingest
    from qual.codebook import load_codebook
    from qual.commands.topics import format_table
    from qual.embed import CachedEmbedder, Embedder
    from qual.store import Store
    from qual.topics import GUIDANCE, TopicModel, keyword_coherence, usable_segments

    tmp = Path(tempfile.mkdtemp(prefix="topics_bench_"))
    path = tmp / "qual.db"
    codebook = load_codebook()
    embedder = Embedder()
    if args.db:
        shutil.copy(args.db, path)
        store = Store(path)
    else:
        t = time.perf_counter()
        store = Store(path)
        report = ingest([INQUIRY], store)
        code(store, codebook, embedder, report.document_ids)
        print(f"coded {len(report.documents)} transcripts in {time.perf_counter() - t:.1f} s")
    segs, dropped = usable_segments(store.segments())
    encoder = CachedEmbedder(embedder, store)
    vectors = encoder.encode(segs["text"].tolist())
    print(f"{len(segs)} stakeholder segments of 6+ words ({dropped} shorter left out), "
          f"{encoder.computed} embedded now, {encoder.reused} from the cache")

    texts = segs["text"].tolist()
    model = TopicModel(codebook, encoder, seed=args.seed)
    t = time.perf_counter()
    first = model.fit(texts, vectors)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    second = TopicModel(codebook, encoder, seed=args.seed).fit(texts, vectors)
    warm = time.perf_counter() - t
    same = (np.array_equal(first.assignments, second.assignments)
            and first.topics.equals(second.topics))
    print(format_table(first.topics))
    print(f"params: {first.parameters()}; {'; '.join(first.notes)}")
    print(f"fit, first in this process (numba compiles): {cold:.1f} s; warm: {warm:.1f} s; "
          f"same seed twice -> identical topics: {same}")

    if args.compare:
        print(f"\n{'guidance':<10} {'topics':>6} {'coherence':>9} {'mapped':>6} {'smallest':>8} "
              f"{'fit s':>6}")
        for g in GUIDANCE:
            t = time.perf_counter()
            r = TopicModel(codebook, encoder, seed=args.seed, guidance=g).fit(texts, vectors)
            real = r.topics[r.topics["topic"] >= 0]
            print(f"{g:<10} {len(real):>6} {keyword_coherence(r.topics, encoder):>9.3f} "
                  f"{(~real['emergent']).mean():>6.2f} {real['size'].min():>8} "
                  f"{time.perf_counter() - t:>6.1f}")
    store.close()
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"total {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
