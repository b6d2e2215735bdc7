"""HybridCoder (the default coder) with the real model, the shipped codebook and its real
reference answers; selective mode through the real CLI and store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import SAMPLES
from qual.coder import NONE, EmbeddingCoder, HybridCoder, make_coder

# Held out of the reference sets in these tests (so they test generalisation, not memory),
# plus lines written here in the register of a hearing.
OFF_TOPIC = [
    "Thank you very much, my Lady. I have no further questions for this witness.",
    "I am grateful. Could we have the next document on the screen, please, page four.",
    "I joined the department in 2009 as a policy adviser and moved to the private office in "
    "2015, where I stayed until the end of the pandemic.",
]
ON_TOPIC = {
    "processes": "There was no clear legal gateway for the department to share the benefits "
                 "data with the health body, so every request needed a bespoke data sharing "
                 "agreement and months of legal sign-off before any data could move.",
    "technical": "The two datasets had no common identifier, so the records had to be linked "
                 "on name, date of birth and postcode, and the match rate for some groups was "
                 "far lower than for others.",
}


@pytest.fixture(scope="module")
def hybrid(codebook, memo):
    return HybridCoder(codebook, memo).fit(exclude_texts=OFF_TOPIC + list(ON_TOPIC.values()))


def test_fit_predict_shapes_and_columns(hybrid, codebook, memo):
    texts = OFF_TOPIC + list(ON_TOPIC.values())
    out = hybrid.predict(texts=texts)
    old = EmbeddingCoder(codebook, memo).fit().predict(texts=texts[:1])
    assert list(out.columns) == list(old.columns)        # the same contract as before
    assert len(out) == len(texts)
    assert ((out["confidence"] > 0) & (out["confidence"] <= 1)).all()
    for t in codebook.theme_ids:
        assert out[f"score_{t}"].between(0, 1).all()
    assert set(out["polarity"]) <= {"barrier", "opportunity", "neutral"}
    with pytest.raises(ValueError, match="needs the texts"):
        hybrid.predict(embeddings=memo.encode(texts[:1]))
    assert hybrid.predict(texts=[]).empty


def test_real_answers_of_the_codebook_are_learned_and_excluded_on_request(codebook, memo, hybrid):
    n = len(codebook.reference)
    assert n > 500 and hybrid.n_reference_ == n           # none of OFF_TOPIC is a reference row
    some = [r.text for r in codebook.reference[:7]]
    coder = HybridCoder(codebook, memo).fit(exclude_texts=[" " + some[0].upper()] + some[1:])
    assert coder.n_reference_ == n - 7                    # matched whatever the case and spacing
    assert "reference answers" in HybridCoder.__doc__


def test_off_topic_testimony_is_none_and_clear_points_get_their_theme(hybrid):
    out = hybrid.predict(texts=OFF_TOPIC + list(ON_TOPIC.values()))
    assert list(out["themes"][:3]) == [NONE] * 3
    for i, theme in enumerate(ON_TOPIC, start=3):
        assert theme in out["themes"][i].split(";"), out.iloc[i]
    assert (out.loc[:2, "polarity"] == "neutral").all()    # none is always neutral
    assert out.loc[3, "subcodes"].startswith("processes.")


def test_confidence_is_the_probability_of_the_label_set(hybrid, codebook):
    texts = list(ON_TOPIC.values())
    out = hybrid.predict(texts=texts)
    raw, cal = hybrid.theme_scores(texts)
    assigned = np.array([[t in themes.split(";") for t in codebook.theme_ids]
                         for themes in out["themes"]])
    assert (assigned | (raw < hybrid.threshold)).all()     # every theme that passes is assigned
    expected = np.where(assigned, cal, 1 - cal).prod(axis=1)
    # ... capped at the calibrated gate's probability that the answer is (not) none
    a, b = hybrid.gate_calibrator_
    X, _ = hybrid._features(texts)
    p_none = 1 / (1 + np.exp(-(a * np.log(1 / (1 / hybrid.gate_model_.predict_proba(X)[:, 1] - 1))
                               + b)))
    coded_none = ~assigned.any(axis=1)
    expected = np.minimum(expected, np.where(coded_none, p_none, 1 - p_none))
    assert np.allclose(out["confidence"], expected)
    assert a > 0                                   # the gate's calibration keeps its order
    assert np.allclose(out[[f"score_{t}" for t in codebook.theme_ids]], cal)
    assert set(hybrid.calibrators_) == set(codebook.theme_ids)


def test_the_none_gate_only_gives_an_unthemed_answer_its_best_theme(hybrid, codebook):
    import copy

    from conftest import INQUIRY

    # real witness turns (the six shared sessions; none is a reference row) and courtesies
    texts = OFF_TOPIC + pd.concat([pd.read_csv(INQUIRY / f) for f in
                                   ("gold_turns.csv", "ambiguous_turns.csv")])["text"].tolist()
    assert hybrid.n_reference_ == len(codebook.reference)
    t = hybrid.gate_threshold_
    assert 0.2 <= t <= 0.8 and hybrid.get_params()["gate"] is True
    out = hybrid.predict(texts=texts)
    plain = copy.copy(hybrid)
    plain.gate_model_ = None                                 # the coder without its gate
    before = plain.predict(texts=texts)
    raw, _ = hybrid.theme_scores(texts)
    X, _ = hybrid._features(texts)
    gate_none = hybrid.gate_model_.predict_proba(X)[:, 1]
    lifted = 0
    for i in range(len(texts)):
        if before["themes"][i] != NONE:                      # a theme passed: the gate is silent
            assert out["themes"][i] == before["themes"][i]
        elif gate_none[i] < t:                               # gate: not none -> the best theme
            assert out["themes"][i] == codebook.theme_ids[int(raw[i].argmax())]
            assert out["polarity"][i] in {"barrier", "opportunity", "neutral"}
            lifted += 1
        else:
            assert out["themes"][i] == NONE and out["polarity"][i] == "neutral"
    assert 0 < lifted < len(texts) and list(out["themes"][:3]) == [NONE] * 3
    off = HybridCoder(codebook, hybrid.encoder, gate=False, calibration_folds=2).fit()
    assert off.gate_model_ is None and off.gate_threshold_ is None


def test_skewed_decisions_are_capped_and_do_not_undo_the_codebook(codebook, memo, hybrid):
    # 400 reviewer decisions, all 'none', on talk about data: without a cap they would
    # outweigh every 'none' row of the codebook and its references
    n = 400
    decisions = pd.DataFrame({
        "text": [f"We looked at the data on day {i} and talked it through with colleagues."
                 for i in range(n)],
        "themes": [NONE] * n, "subcodes": [""] * n, "polarity": ["neutral"] * n})
    coder = HybridCoder(codebook, memo)
    pool = coder._pool(decisions)
    dec = pool[pool["kind"] == "decision"]
    base = pool[(pool["kind"] != "decision") & (pool["themes"].map(lambda t: t == ()))]
    assert dec["weight"].sum() == pytest.approx(coder.decision_cap * base["weight"].sum())
    assert coder.n_labelled_ == n and dec["weight"].sum() < n
    coder.fit(decisions, exclude_texts=list(ON_TOPIC.values()))
    assert coder.predict(texts=[decisions["text"][0]])["themes"][0] == NONE
    out = coder.predict(texts=list(ON_TOPIC.values()))
    for i, theme in enumerate(ON_TOPIC):
        assert theme in out["themes"][i].split(";")


def test_evaluate_reports_calibration_and_selective_mode(hybrid, codebook):
    from qual.evaluate import evaluate_coder

    gold = pd.DataFrame({"text": OFF_TOPIC + list(ON_TOPIC.values()),
                         "themes": [NONE] * 3 + list(ON_TOPIC), "polarity": [""] * 5})
    result, table = evaluate_coder(hybrid, gold, codebook.theme_ids)
    assert set(result["calibration"]) == set(codebook.theme_ids)
    assert all(0 <= v <= 1 for v in result["calibration"].values())
    cover = [r["coverage"] for r in result["selective"]]
    assert cover == sorted(cover, reverse=True) and cover[0] <= 1
    assert result["exact_match"] == 1.0


def test_make_coder_names():
    assert make_coder(None, None, None).__class__ is HybridCoder
    assert make_coder("embedding", None, None).__class__ is EmbeddingCoder


def test_selective_mode_through_the_cli_never_stores_a_decision(tmp_path, capsys):
    from qual.cli import main
    from qual.review import apply_decision, effective_coding, review_queue
    from qual.store import Store

    db = tmp_path / "qual.db"
    src = str(SAMPLES / "interview_01_central_department.txt")
    assert main(["code", src, "--db", str(db), "--auto-accept-above", "0.5"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("auto-accepted:"))
    n_auto, n_all = (int(w) for w in line.split()[1:4:2])
    assert 0 < n_auto < n_all
    store = Store(db)
    try:
        assert store.latest_decisions().empty                     # marking is not a decision
        coding = effective_coding(store)
        assert int(coding["auto_accepted"].sum()) == n_auto
        assert (coding.loc[coding["auto_accepted"], "confidence"] >= 0.5).all()
        queue = review_queue(coding)
        assert len(queue) == n_all - n_auto and not queue["auto_accepted"].any()
        out_csv = tmp_path / "coded.csv"
        assert main(["export", "--db", str(db), "--output", str(out_csv)]) == 0
        exported = pd.read_csv(out_csv)
        assert int(exported["auto_accepted"].sum()) == n_auto      # says who looked: nobody
        assert len(review_queue(coding, auto_accepted=True)) == n_all
        # a reviewer overrides an auto-accepted segment: their decision is in force ...
        sid = int(coding.loc[coding["auto_accepted"], "segment_id"].iloc[0])
        apply_decision(store, sid, "ana", "reject")
        row = effective_coding(store).set_index("segment_id").loc[sid]
        assert row["source"] == "reviewer" and not row["auto_accepted"]
    finally:
        store.close()
    # ... and re-running the coder (without auto-accept) keeps it and marks nothing
    assert main(["code", src, "--db", str(db)]) == 0
    store = Store(db)
    try:
        coding = effective_coding(store)
        row = coding.set_index("segment_id").loc[sid]
        assert row["source"] == "reviewer" and row["themes"] == NONE
        assert not coding["auto_accepted"].any()
    finally:
        store.close()


def test_bad_auto_accept_threshold_is_one_clear_line(tmp_path, capsys):
    from qual.cli import main

    db = tmp_path / "qual.db"
    status = main(["code", str(SAMPLES / "interview_01_central_department.txt"), "--db", str(db),
                   "--auto-accept-above", "1.5"])
    err = capsys.readouterr().err
    assert status != 0 and "--auto-accept-above must be a probability" in err
    assert err.count("\n") == 1 and not db.exists()
