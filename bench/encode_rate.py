"""Raw encoder rate vs end-to-end `code` rate on the same segments.

    python bench/encode_rate.py [PATH ...]     (default: ../shared/data/inquiry/transcripts)

Ingests the transcripts into a temporary store, then, on the same stakeholder segments:
1. the raw encoder: the model alone encoding the segment texts (segments/s);
2. `code` end to end on a new store: fit the coder, embed (cold cache) and code, store the
   codes. This includes the one-off embedding of the codebook's example and guidance texts,
   which a store does once per codebook version;
3. `code` end to end on a store that already holds the codebook's vectors (a project that
   has coded before and gets new transcripts): the per-segment rate.
Prints each and its ratio to the raw rate. All run in this one process, model already loaded.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qual.cli import code, ingest  # noqa: E402
from qual.codebook import load_codebook  # noqa: E402
from qual.coder import EmbeddingCoder  # noqa: E402
from qual.embed import CachedEmbedder, Embedder  # noqa: E402
from qual.store import Store  # noqa: E402


def main(paths):
    embedder = Embedder()
    embedder.encode(["warm up the model"])
    codebook = load_codebook()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        report = ingest(paths, store)
        segs = store.segments()
        texts = segs["text"].tolist()
        words = sum(len(t.split()) for t in texts)
        print(f"{len(report.documents)} documents, {len(texts)} stakeholder segments "
              f"({len(set(texts))} distinct), {words / len(texts):.0f} words per segment on average")

        distinct = list(dict.fromkeys(texts))
        t0 = time.perf_counter()
        embedder.encode(distinct)
        raw = time.perf_counter() - t0
        raw_rate = len(distinct) / raw
        print(f"raw encoder:      {raw:6.1f} s  {raw_rate:7.1f} distinct segments/s")

        t0 = time.perf_counter()
        result = code(store, codebook, embedder, report.document_ids)
        e2e = time.perf_counter() - t0
        e2e_rate = len(distinct) / e2e
        print(f"code end to end:  {e2e:6.1f} s  {e2e_rate:7.1f} distinct segments/s "
              f"(includes embedding {result['embedded']} texts: segments and codebook examples)")
        print(f"ratio code/raw:   {e2e_rate / raw_rate:.2f}")

        # the same documents in a second new store whose cache already holds the codebook
        store2 = Store(Path(tmp) / "bench2.db")
        report2 = ingest(paths, store2)
        rows, _ = EmbeddingCoder(codebook, embedder)._training_rows(None)
        book = list(dict.fromkeys(rows.texts))
        CachedEmbedder(embedder, store2).encode(book)
        t0 = time.perf_counter()
        result2 = code(store2, codebook, embedder, report2.document_ids)
        e2e2 = time.perf_counter() - t0
        rate2 = len(distinct) / e2e2
        print(f"code end to end, codebook already embedded: {e2e2:6.1f} s  {rate2:7.1f} distinct "
              f"segments/s (embedding {result2['embedded']} texts; the codebook's {len(book)} "
              "were cached)")
        print(f"ratio code/raw:   {rate2 / raw_rate:.2f}")
        store2.close()

        t0 = time.perf_counter()
        code(store, codebook, embedder, report.document_ids)
        warm = time.perf_counter() - t0
        print(f"code again (cache warm): {warm:6.1f} s  {result['segments'] / warm:7.1f} segments/s")
        store.close()


if __name__ == "__main__":
    main(sys.argv[1:] or [str(REPO.parent / "shared" / "data" / "inquiry" / "transcripts")])
