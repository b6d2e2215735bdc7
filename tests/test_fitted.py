"""A fitted coder as plain arrays (qual.fitted): applied as scikit-learn applies it, kept in the
per-user cache under a key of everything the fit depends on, and never trusted when the file
is damaged or foreign. Real model, real codebook, real answers, real store and CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import INQUIRY, REPO, SAMPLES
from qual.coder import HybridCoder
from qual.fitted import KEEP, Linear, Tfidf, fit_or_load, load_state, save_state


@pytest.fixture(scope="module")
def real_texts():
    answers = pd.read_csv(INQUIRY / "dev_consensus.csv")["text"].tolist()
    return answers[:120] + ["", "   ", "a I", "Data-sharing: the DPIA's 'gateway'!",
                            "Ünïcödé naïve café — résumé", "the the the and of", "42 42 x9 9x"]


@pytest.fixture(scope="module")
def fitted(codebook, memo):
    return HybridCoder(codebook, memo).fit()


def test_tfidf_transforms_as_scikit_learn(real_texts):
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                          stop_words="english").fit(real_texts[:80])
    mine = Tfidf.of(vec).transform(real_texts)
    theirs = vec.transform(real_texts)
    assert mine.shape == theirs.shape
    assert abs(mine - theirs).max() < 1e-12
    assert mine[len(real_texts) - 7:len(real_texts) - 4].nnz == 0   # "", spaces, one letter
    with pytest.raises(ValueError, match="differ in length"):
        Tfidf(["a", "b"], [1.0], [])


def test_linear_gives_scikit_learns_probabilities(real_texts, memo):
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(memo.encode(real_texts[:100]), dtype=np.float64)
    rng = np.random.default_rng(0)
    cases = [(rng.random(100) > 0.6, "liblinear"),
             (rng.choice(["barrier", "neutral", "opportunity"], 100), "lbfgs"),
             (rng.choice(np.array(["a.x", "a.y"], dtype=object), 100), "lbfgs")]
    for y, solver in cases:
        m = LogisticRegression(C=2.0, solver=solver, max_iter=2000).fit(X, y)
        mine = Linear.of(m)
        assert np.abs(mine.predict_proba(X) - m.predict_proba(X)).max() < 1e-12
        assert list(mine.classes_) == list(m.classes_) and mine.classes_.dtype != object
    with pytest.raises(ValueError, match="inconsistent"):
        Linear(np.zeros((2, 3)), np.zeros(2), ["a", "b"])     # 2 rows, but 2 classes


def test_a_saved_fit_codes_exactly_as_the_fitted_coder(fitted, codebook, memo, real_texts,
                                                        tmp_path):
    meta, arrays = fitted.state()
    save_state(tmp_path / "f.npz", meta, arrays)
    loaded = HybridCoder(codebook, memo).load_state(*load_state(tmp_path / "f.npz"))
    a = fitted.predict(texts=real_texts)
    b = loaded.predict(texts=real_texts)
    pd.testing.assert_frame_equal(a, b)
    assert set(a["themes"]) != {"none"}                       # a real coding, not a blank one
    with pytest.raises(ValueError, match="another coder"):
        HybridCoder(codebook, memo, threshold=0.5).load_state(meta, arrays)


def test_fit_or_load_reuses_only_the_same_fit(codebook, memo, tmp_path):
    a = HybridCoder(codebook, memo)
    how, key = fit_or_load(a, None, tmp_path)
    assert how == "fitted" and (tmp_path / "coders" / f"{key}.npz").is_file()
    b = HybridCoder(codebook, memo)
    assert fit_or_load(b, None, tmp_path) == ("cached", key)
    assert b.n_training_rows_ == a.n_training_rows_ and b.gate_threshold_ == a.gate_threshold_
    # a reviewer decision: fitted, and never kept (its words are study text)
    decision = pd.DataFrame({"text": ["The Zyxwq department never knew which datasets we "
                                      "held, so nobody could ask for them.",
                                      "Zyxwq staff could not link the records in time."],
                             "themes": ["processes", "technical"], "subcodes": ["", ""],
                             "polarity": ["barrier", "barrier"]})
    c = HybridCoder(codebook, memo)
    assert fit_or_load(c, decision, tmp_path) == ("fitted, not cached", None)
    assert c.n_labelled_ == 2 and "zyxwq" in c.vectorizer_.vocabulary   # study text learned
    assert len(list((tmp_path / "coders").glob("*.npz"))) == 1
    # other parameters, another model: another fit
    how, key2 = fit_or_load(HybridCoder(codebook, memo, C=2.0), None, tmp_path)
    assert how == "fitted" and key2 != key

    class Renamed:                       # the same vectors under another model key
        def __init__(self, inner):
            self.inner, self.key = inner, inner.key + "-other"

        def encode(self, texts):
            return self.inner.encode(texts)

    how, key4 = fit_or_load(HybridCoder(codebook, Renamed(memo)), None, tmp_path)
    assert how == "fitted" and key4 not in (key, key2)
    # no folder (the cache turned off): fitted, nothing written
    assert fit_or_load(HybridCoder(codebook, memo), None, None) == ("fitted, not cached", None)


def test_a_damaged_or_hostile_cached_fit_is_fitted_again_never_run(codebook, memo, tmp_path):
    good = HybridCoder(codebook, memo)
    _, key = fit_or_load(good, None, tmp_path)
    path = tmp_path / "coders" / f"{key}.npz"
    expected = good.predict(texts=["The legal gateway was unclear, so nothing was shared."])
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    meta, arrays = good.state()
    broken_shape = dict(arrays)
    broken_shape["polarity.coef"] = arrays["polarity.coef"][:, :10]
    other_meta = {**meta, "themes": ["public"]}
    foreign_label = dict(arrays)          # a polarity this codebook does not have
    foreign_label["polarity.classes"] = np.asarray(["barrier", "=HYPERLINK(\"x\")", "opportunity"])
    for damage in ("truncated", "pickle", "shape", "meta", "label", "text"):
        if damage == "truncated":
            path.write_bytes(path.read_bytes()[:500])
        elif damage == "pickle":          # an object array, which only pickle could read
            np.savez(path, __meta__=np.asarray(json.dumps({"format": 1, **meta})),
                     evil=np.array([Payload()], dtype=object), allow_pickle=True)
        elif damage == "shape":
            save_state(path, meta, broken_shape)
        elif damage == "meta":
            save_state(path, other_meta, arrays)
        elif damage == "label":
            save_state(path, meta, foreign_label)
        else:
            path.write_text("not a zip at all")
        coder = HybridCoder(codebook, memo)
        assert fit_or_load(coder, None, tmp_path) == ("fitted", key), damage
        pd.testing.assert_frame_equal(
            coder.predict(texts=["The legal gateway was unclear, so nothing was shared."]),
            expected)
        assert load_state(path)[0]["themes"] == codebook.theme_ids   # replaced by a whole fit
    assert not marker.exists()


def test_the_cache_keeps_the_recent_fits_only(codebook, memo, tmp_path):
    folder = tmp_path / "coders"
    folder.mkdir()
    for i in range(KEEP + 5):
        (folder / f"old{i:02d}.npz").write_bytes(b"x")
        os.utime(folder / f"old{i:02d}.npz", (1_000_000 + i, 1_000_000 + i))
    _, key = fit_or_load(HybridCoder(codebook, memo), None, tmp_path)
    left = sorted(p.name for p in folder.glob("*.npz"))
    assert len(left) == KEEP and f"{key}.npz" in left
    assert "old00.npz" not in left and f"old{KEEP + 4:02d}.npz" in left


def test_code_runs_record_the_fit_and_the_second_run_reuses_it(codebook, tmp_path):
    """Through the real CLI, with the session's cache folder: a run whose fit is not kept
    fits and saves it; the next run (another store, the same codebook, no decisions) loads
    it, records that, and codes the same."""
    from qual.embed import CachedEmbedder, machine_cache_dir, make_embedder

    key = HybridCoder(codebook, CachedEmbedder(make_embedder(), None)).fit_key(None)
    (machine_cache_dir() / "coders" / f"{key}.npz").unlink(missing_ok=True)
    sample = sorted(SAMPLES.glob("*.txt"))[0]

    def run(db):
        out = subprocess.run([sys.executable, "-m", "qual", "code", str(sample), "--db", str(db)],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        con = sqlite3.connect(db)
        params = json.loads(con.execute("SELECT parameters FROM runs ORDER BY id DESC "
                                        "LIMIT 1").fetchone()[0])
        codes = con.execute("SELECT s.text, c.themes, c.polarity, round(c.confidence, 9) "
                            "FROM codes c JOIN segments s ON s.id = c.segment_id "
                            "WHERE c.run_id = (SELECT max(id) FROM runs) ORDER BY s.text"
                            ).fetchall()
        con.close()
        return params, codes

    first, codes1 = run(tmp_path / "a.db")
    second, codes2 = run(tmp_path / "b.db")
    assert (first["fit"], second["fit"]) == ("fitted", "cached")
    assert first["fit_key"] == second["fit_key"] == key
    assert codes1 == codes2 and codes1
