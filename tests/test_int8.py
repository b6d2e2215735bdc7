"""The int8 encoder's contracts, on the real model: exported once per cache and reused, vectors
close to fp32's but cached under their own key, batches that do not change a text's vector,
and a clear message (not a traceback) when onnxruntime is missing.

The export (~10-15 s) is done once per session into a temporary cache folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the int8 encoder needs onnxruntime "
                    "(pip install -r requirements.txt)")

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "transcripts" / "interview_01_central_department.txt"
TEXTS = ["We could not get the data from the department in time for the briefing.",
         "Trust is the key issue with the public.",
         "Yes.",
         "The legal gateway under the Digital Economy Act lets us share data for research, but "
         "the approvals take months and nobody knows which datasets exist or who holds them."]


@pytest.fixture(scope="session")
def int8_cache(tmp_path_factory):
    """A per-session stand-in for the user's cache folder (``$QUAL_CACHE_DIR``)."""
    return tmp_path_factory.mktemp("qual-cache")


@pytest.fixture(scope="session")
def int8(embedder, int8_cache):
    from qual.onnx_encoder import Int8Embedder

    enc = Int8Embedder(embedder, cache_dir=int8_cache / "onnx")
    assert enc.exported           # a new cache folder: exported here, once
    return enc


def test_a_second_construction_reuses_the_export(int8, embedder, int8_cache):
    from qual.onnx_encoder import MODEL_FILE, Int8Embedder

    model = int8.folder / MODEL_FILE
    before = model.stat().st_mtime_ns
    again = Int8Embedder(embedder, cache_dir=int8_cache / "onnx")
    assert not again.exported and again.folder == int8.folder
    assert model.stat().st_mtime_ns == before
    assert [p.name for p in (int8_cache / "onnx").iterdir()] == [int8.folder.name]  # no leftovers
    # the folder is named after the source model's version: another model, another export
    assert int8.folder.name.startswith(embedder.version)
    np.testing.assert_allclose(again.encode(TEXTS), int8.encode(TEXTS), atol=1e-6)


def test_a_cached_export_encodes_without_torch(int8, int8_cache):
    """Reusing the export loads neither torch nor sentence-transformers (their import alone is
    ~8 s of every run)."""
    code = ("import sys\n"
            "from qual.embed import Embedder\n"
            "from qual.onnx_encoder import Int8Embedder\n"
            f"e = Int8Embedder(Embedder(), cache_dir={str(int8_cache / 'onnx')!r})\n"
            "v = e.encode(['a sentence'])\n"
            "assert not e.exported and v.shape == (1, 384)\n"
            "print(sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_vectors_are_close_to_fp32_and_cached_under_their_own_key(int8, embedder, tmp_path):
    from qual.embed import CachedEmbedder
    from qual.hashing import sha256_text
    from qual.store import Store

    assert int8.key != embedder.key and int8.name.endswith("+int8")
    a, b = embedder.encode(TEXTS), int8.encode(TEXTS)
    assert b.dtype == np.float32 and b.shape == a.shape
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-4)
    cos = (a * b).sum(1)
    assert cos.min() > 0.95 and cos.mean() > 0.98   # close ("Yes." is the farthest) ...

    assert not np.allclose(a, b, atol=1e-4)          # ... but not the same vectors

    with Store(tmp_path / "qual.db") as store:
        cached = CachedEmbedder(int8, store)
        cached.encode(TEXTS)
        hashes = [sha256_text(t) for t in TEXTS]
        assert len(store.get_embeddings(int8.key, hashes)) == len(TEXTS)
        assert store.get_embeddings(embedder.key, hashes) == {}   # fp32's key holds none
        fp32 = CachedEmbedder(embedder, store)
        fp32.encode(TEXTS)
        assert fp32.computed == len(TEXTS)     # never served int8 vectors
        np.testing.assert_allclose(store.get_embeddings(int8.key, hashes)[hashes[0]], b[0],
                                   atol=1e-6)


def test_a_text_gets_the_same_vector_whatever_it_is_encoded_with(int8):
    """Dynamic int8 ranges come from the whole input: padded into a batch, a text's vector
    would move with its batch-mates (cosine ~0.96 for "Yes."), and the cache by text hash would
    hold whichever came first. Encoded alone, the vector is the same in any company."""
    alone = np.vstack([int8.encode([t]) for t in TEXTS])
    together = int8.encode(TEXTS[::-1])[::-1]
    np.testing.assert_allclose(together, alone, atol=1e-6)
    long = int8.encode(["word " * 600])          # truncated at the model's 256 tokens
    assert long.shape == (1, 384) and np.isfinite(long).all()


def test_code_and_topics_take_encoder_int8(int8, int8_cache, tmp_path):
    """`code --encoder int8` records the int8 model on the run and caches its vectors under
    the int8 key; a later `topics` follows the code run's encoder and embeds nothing again."""
    import sqlite3

    env = {**os.environ, "QUAL_CACHE_DIR": str(int8_cache)}
    db = tmp_path / "qual.db"
    out = subprocess.run([sys.executable, "-m", "qual", "code", str(SAMPLE), "--db", str(db),
                          "--encoder", "int8"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"model {int8.name} ({int8.version})" in out.stdout
    with sqlite3.connect(db) as con:
        keys = {k for (k,) in con.execute("SELECT DISTINCT model FROM embeddings")}
    assert keys == {int8.key}

    out = subprocess.run([sys.executable, "-m", "qual", "topics", "--db", str(db)], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "embedding with" not in out.stdout + out.stderr       # the code run's vectors
    with sqlite3.connect(db) as con:
        (name,), = con.execute("SELECT model_name FROM runs WHERE kind = 'topics'")
    assert name == int8.name


def test_a_missing_onnxruntime_is_one_clear_message(tmp_path):
    code = ("import sys\n"
            "sys.modules['onnxruntime'] = None\n"
            "from qual.cli import main\n"
            f"sys.exit(main(['code', {str(SAMPLE)!r}, '--db', {str(tmp_path / 'q.db')!r}, "
            "'--encoder', 'int8']))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert "onnxruntime is not installed" in out.stderr
    assert "pip install onnxruntime" in out.stderr
    assert not (tmp_path / "q.db").exists()      # nothing was started


def test_an_unknown_encoder_is_refused():
    from qual.embed import make_embedder
    from qual.errors import ModelError

    with pytest.raises(ModelError, match="fp32, int8"):
        make_embedder(None, "int4")
