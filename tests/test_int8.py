"""The ONNX encoders' contracts, on the real model. int8: exported once per cache and reused,
vectors close to fp32's but cached under their own key, batches that do not change a text's
vector, and a clear message (not a traceback) when onnxruntime is missing. onnx (the default
route, fp32 on ONNX Runtime): the same vectors as PyTorch's to float rounding, in batches or
alone, under their own key; a model the export cannot reproduce is refused; a store coded on
PyTorch keeps its vectors for topics.

Each export (~10-15 s) is done once per session into a temporary cache folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import python_c

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
    out = python_c(code, timeout=120)
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


def _qual(*args, cache, cwd):
    """``python -m qual ARGS`` as a user runs it, with ``cache`` as the per-user cache folder;
    fails the test (showing stderr) unless it exits 0."""
    out = subprocess.run([sys.executable, "-m", "qual", *map(str, args)], cwd=cwd,
                         env={**os.environ, "QUAL_CACHE_DIR": str(cache)}, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out


def test_code_and_topics_take_encoder_int8(int8, int8_cache, tmp_path):
    """`code --encoder int8` records the int8 model on the run and caches its vectors under
    the int8 key; a later `topics` follows the code run's encoder and embeds nothing again."""
    import sqlite3

    db = tmp_path / "qual.db"
    out = _qual("code", SAMPLE, "--db", db, "--encoder", "int8", cache=int8_cache, cwd=tmp_path)
    assert f"model {int8.name} ({int8.version})" in out.stdout
    with sqlite3.connect(db) as con:
        keys = {k for (k,) in con.execute("SELECT DISTINCT model FROM embeddings")}
    assert keys == {int8.key}

    out = _qual("topics", "--db", db, cache=int8_cache, cwd=tmp_path)
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

    with pytest.raises(ModelError, match="onnx, fp32, int8"):
        make_embedder(None, "int4")


# -- the default route: fp32 on ONNX Runtime -------------------------------------------------
@pytest.fixture(scope="session")
def onnx32(embedder, int8_cache):
    from qual.onnx_encoder import OnnxEmbedder

    enc = OnnxEmbedder(embedder, cache_dir=int8_cache / "onnx")
    assert enc.exported
    return enc


@pytest.fixture(scope="session")
def real_answers():
    import pandas as pd

    rows = pd.read_csv(REPO.parent / "shared" / "data" / "inquiry" / "dev_consensus.csv")
    return rows["text"].head(24).tolist()


def test_onnx_is_the_default_and_gives_pytorchs_vectors(onnx32, embedder, int8_cache,
                                                        real_answers):
    """The default encoder is the fp32 ONNX route; on real answers (up to 220 words) and short
    texts its vectors are PyTorch's to float rounding, and bitwise the same whatever their
    batch-mates."""
    from qual import DEFAULT_ENCODER
    from qual.onnx_encoder import OnnxEmbedder

    assert DEFAULT_ENCODER == "onnx"
    texts = TEXTS + real_answers
    a, b = embedder.encode(texts), onnx32.encode(texts)
    assert b.dtype == np.float32 and b.shape == a.shape
    assert (a * b).sum(1).min() > 0.99999
    # a text's vector is bitwise the same alone and among others (the caches assume it)
    alone = np.vstack([onnx32.encode([t]) for t in texts[:10]])
    assert np.array_equal(b[:10], alone)
    shuffled = onnx32.encode(texts[::-1])[::-1]
    assert np.array_equal(shuffled, b)
    assert onnx32.key != embedder.key and onnx32.name.endswith("+onnx")
    again = OnnxEmbedder(embedder, cache_dir=int8_cache / "onnx")
    assert not again.exported and again.folder == onnx32.folder
    assert onnx32.folder.name == f"{embedder.version}-f1"


def test_the_store_gets_the_vectors_in_parts_and_bitwise_as_one_encode(onnx32, real_answers):
    """CachedEmbedder stores as it goes (a killed run keeps its work), in parts of 512 texts
    from one batching over all the texts it lacks; each text's stored vector is the one a
    single ``encode`` gives, and every text is stored once."""
    from qual.embed import CachedEmbedder, _MemoryStore, in_parts

    class Counting(_MemoryStore):
        def __init__(self):
            super().__init__()
            self.writes = []

        def put_embeddings(self, model, vectors):
            self.writes.append(len(vectors))
            super().put_embeddings(model, vectors)

    words = [w.strip(".,;:?!") for text in real_answers for w in text.split()]
    texts = list(dict.fromkeys(" ".join(words[i:i + 3 + i % 40]) for i in range(1300)))
    store = Counting()
    got = CachedEmbedder(onnx32, store).encode(texts)
    assert np.array_equal(got, onnx32.encode(texts))
    assert sum(store.writes) == len(texts) and len(store.writes) >= 2
    assert all(n >= 512 for n in store.writes[:-1])
    # the generic slices (PyTorch and int8) give positions that cover every text once
    seen = [i for idx, vec in in_parts(onnx32, texts[:700], 512) for i in idx]
    assert seen == list(range(700))


def test_with_the_cache_off_the_export_is_not_left_behind(onnx32, embedder, monkeypatch):
    """QUAL_CACHE_DIR=off: each process exports for itself (the default route would otherwise
    leave ~90 MB in the temporary folder on every run); the folder is gone once the model is
    loaded, and the vectors are the cached export's, bit for bit."""
    from qual.onnx_encoder import OnnxEmbedder

    monkeypatch.setenv("QUAL_CACHE_DIR", "off")
    enc = OnnxEmbedder(embedder)
    assert enc.exported and not enc.folder.exists() and not enc.folder.parent.exists()
    assert np.array_equal(enc.encode(TEXTS), onnx32.encode(TEXTS))


def test_a_model_that_does_not_mean_pool_is_refused(embedder, tmp_path):
    """The exported graph mean-pools; a folder whose pooling is the CLS token must not get
    mean-pooled vectors under its name: one ModelError naming --encoder fp32, no export left."""
    import json

    from qual.embed import Embedder
    from qual.errors import ModelError
    from qual.onnx_encoder import OnnxEmbedder

    src = embedder.path
    dst = tmp_path / "cls-model"
    for f in src.rglob("*"):
        if f.is_file():
            out = dst / f.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            if f.stat().st_size > 1_000_000:
                out.symlink_to(f)
            else:
                out.write_bytes(f.read_bytes())
    cfg = dst / "1_Pooling" / "config.json"
    conf = json.loads(cfg.read_text())
    for k in list(conf):
        if k.startswith("pooling_mode"):
            conf[k] = False if isinstance(conf[k], bool) else conf[k]
    conf["pooling_mode_cls_token"] = True
    conf["pooling_mode_mean_tokens"] = False
    cfg.write_text(json.dumps(conf))
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match="--encoder fp32"):
        OnnxEmbedder(Embedder(dst), cache_dir=cache)
    assert not list(cache.glob("*"))          # nothing exported, nothing half-made


def test_topics_after_a_pytorch_code_run_reuse_its_vectors(onnx32, int8_cache, tmp_path):
    """`code --encoder fp32` caches PyTorch's vectors; a later `topics` with no --encoder
    follows that run (not the default onnx route) and embeds nothing again."""
    import sqlite3

    db = tmp_path / "qual.db"
    _qual("code", SAMPLE, "--db", db, "--encoder", "fp32", cache=int8_cache, cwd=tmp_path)
    out = _qual("topics", "--db", db, cache=int8_cache, cwd=tmp_path)
    assert "embedding with" not in out.stdout + out.stderr
    with sqlite3.connect(db) as con:
        names = dict(con.execute("SELECT kind, model_name FROM runs"))
        keys = {k for (k,) in con.execute("SELECT DISTINCT model FROM embeddings")}
    assert names["code"] == names["topics"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert not any(k.endswith(onnx32.version) for k in keys)
