"""The per-user cache of codebook vectors: a new project does not embed the codebook again,
the coding is the same, and transcript text never goes there."""

import shutil
import sqlite3

import numpy as np
import pytest

from conftest import REPO, SAMPLES


@pytest.fixture(scope="module")
def codebook():
    """A small codebook: these tests are about the caches, and the shipped codebook's 1,700
    texts (examples and reference answers) would be embedded cold three times."""
    from qual.codebook import load_codebook

    return load_codebook(REPO / "tests" / "data" / "codebooks" / "minimal.yaml")


def _code_new_store(path, embedder, codebook, nlp):
    from qual.project import code, ingest
    from qual.store import Store

    store = Store(path)
    report = ingest([SAMPLES / "interview_01_central_department.txt"], store, nlp=nlp)
    return store, code(store, codebook, embedder, report.document_ids)


def test_second_project_takes_the_codebook_vectors_from_the_machine_cache(
        tmp_path, monkeypatch, embedder, codebook, nlp):
    from qual.coder import HybridCoder
    from qual.embed import sha256_text

    monkeypatch.setenv("QUAL_CACHE_DIR", str(tmp_path / "cache"))
    book = HybridCoder(codebook, embedder).codebook_texts()   # examples and reference answers
    a, ra = _code_new_store(tmp_path / "a.db", embedder, codebook, nlp)
    segment_texts = set(a.segments(role="stakeholder")["text"])
    assert ra["embedded"] == len(set(book) | segment_texts)
    assert ra["reused"] == 0          # what this run embedded is not also counted as cached

    conn = sqlite3.connect(tmp_path / "cache" / "vectors.sqlite")
    cached = {h for (h,) in conn.execute("SELECT text_sha256 FROM codebook_vectors")}
    conn.close()
    assert cached == {sha256_text(t) for t in book}
    assert not cached & {sha256_text(t) for t in segment_texts}   # transcripts stay in the store

    # the fit itself is kept too (qual.fitted, tests/test_fitted.py): without it, the second
    # project fits again, and takes the codebook's vectors from the machine cache
    shutil.rmtree(tmp_path / "cache" / "coders")
    b, rb = _code_new_store(tmp_path / "b.db", embedder, codebook, nlp)
    assert rb["embedded"] == len(segment_texts - set(book))      # only the transcript's own texts
    assert rb["reused"] == len(set(book))                        # the codebook's, from the cache
    ca, cb = a.machine_codes(), b.machine_codes()
    assert list(ca["themes"]) == list(cb["themes"]) and list(ca["polarity"]) == list(cb["polarity"])
    assert np.allclose(ca["confidence"], cb["confidence"], atol=1e-6)
    a.close(), b.close()


@pytest.mark.parametrize("setting", ["off", "unwritable"])
def test_coding_works_without_a_usable_machine_cache(tmp_path, monkeypatch, embedder, codebook,
                                                     nlp, setting):
    from qual.embed import machine_cache, machine_cache_dir

    if setting == "off":
        monkeypatch.setenv("QUAL_CACHE_DIR", "off")
        assert machine_cache_dir() is None and machine_cache() is None
    else:
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("a file where the cache folder would go")
        monkeypatch.setenv("QUAL_CACHE_DIR", str(blocker / "qual"))
        assert machine_cache().put_embeddings("m@1", {"h": np.ones(3, dtype=np.float32)}) is False
    store, result = _code_new_store(tmp_path / "q.db", embedder, codebook, nlp)
    assert result["segments"] > 0 and len(store.machine_codes()) == result["segments"]
    store.close()
