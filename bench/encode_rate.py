"""Raw encoder rate vs end-to-end `code` rate on the same segments.

    python bench/encode_rate.py [PATH ...] [--encoder onnx|fp32|int8]
                                   (default: ../shared/data/inquiry/transcripts, the onnx route)

Ingests the transcripts into a temporary store, then, on the same stakeholder segments:
1. the raw encoder: the model alone encoding the segment texts (segments/s);
2. `code` end to end on a new store on a machine that has never coded: fit the coder, embed
   (cold caches) and code, store the codes. This includes the one-off embedding of the
   codebook's example and guidance texts (kept afterwards in the per-user machine cache);
3. `code` end to end on another new store on the same machine: the codebook's vectors come
   from the machine cache (qual.embed.machine_cache), as for any project after the first;
4. `code` again on the first store (everything cached).
Prints each and its ratio to the raw rate. All run in this one process, model already loaded;
the machine cache is a temporary folder of this bench, not ~/.cache.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qual.project import code, ingest  # noqa: E402
from qual.codebook import load_codebook  # noqa: E402
from qual.embed import make_embedder  # noqa: E402
from qual.store import Store  # noqa: E402
from machine import describe  # noqa: E402


def main(argv=None):
    import argparse

    from qual import DEFAULT_ENCODER, ENCODERS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=[str(REPO.parent / "shared" / "data" / "inquiry"
                                                     / "transcripts")])
    ap.add_argument("--encoder", choices=ENCODERS, default=DEFAULT_ENCODER)
    args = ap.parse_args(argv)
    paths = args.paths
    embedder = make_embedder(None, args.encoder)
    print(f"encoder {args.encoder}: {embedder.key}; machine: {describe()}")
    embedder.encode(["warm up the model"])
    codebook = load_codebook()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["QUAL_CACHE_DIR"] = str(Path(tmp) / "machine-cache")
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

        def timed_code(label, store, ids):
            t0 = time.perf_counter()
            result = code(store, codebook, embedder, ids)
            seconds = time.perf_counter() - t0
            rate = len(distinct) / seconds
            print(f"code end to end, {label}: {seconds:6.1f} s  {rate:7.1f} distinct segments/s "
                  f"(embedding {result['embedded']} texts)")
            print(f"ratio code/raw:   {rate / raw_rate:.2f}")
            return result

        result = timed_code("first project on this machine", store, report.document_ids)
        # the same documents in a second new store: the codebook comes from the machine cache
        store2 = Store(Path(tmp) / "bench2.db")
        result2 = timed_code("a new project on a machine that has coded before", store2,
                             ingest(paths, store2).document_ids)
        print(f"  ({result['embedded'] - result2['embedded']} codebook vectors came from the "
              "machine cache)")
        store2.close()

        t0 = time.perf_counter()
        code(store, codebook, embedder, report.document_ids)
        warm = time.perf_counter() - t0
        print(f"code again (cache warm): {warm:6.1f} s  {result['segments'] / warm:7.1f} segments/s")
        store.close()


if __name__ == "__main__":
    main()
