"""EmbeddingCoder with the real model and the shipped codebook."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qual.coder import NONE, EmbeddingCoder, split_labels


class _Memo:
    """The session embedder, encoding each distinct text once in this module (fast tests)."""

    def __init__(self, embedder):
        self.embedder, self.cache = embedder, {}

    def encode(self, texts):
        texts = list(texts)
        if not texts:
            return self.embedder.encode([])
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.embedder.encode(missing)))
        return np.vstack([self.cache[t] for t in texts])


@pytest.fixture(scope="module")
def memo(embedder):
    return _Memo(embedder)


@pytest.fixture(scope="module")
def fitted(codebook, memo):
    return EmbeddingCoder(codebook, memo).fit()


def test_split_labels():
    assert split_labels("public; people;") == ["public", "people"]
    assert split_labels(None) == [] and split_labels(float("nan")) == []
    assert split_labels(["a", " "]) == ["a"]


def test_predict_before_fit_raises(codebook, embedder):
    with pytest.raises(RuntimeError, match="fit"):
        EmbeddingCoder(codebook, embedder).predict(["hello"])


def test_shapes_and_columns(fitted, codebook, embedder):
    texts = ["Our systems cannot talk to each other.", "Thank you, that's all from me.",
             "The public would be worried about their health records being shared."]
    pred = fitted.predict(texts)
    assert len(pred) == 3
    cols = {"themes", "subcodes", "polarity", "confidence", "score_none", "polarity_score"}
    cols |= {f"score_{t}" for t in codebook.theme_ids}
    cols |= {f"score_{s}" for s in codebook.subcode_ids}
    assert cols <= set(pred.columns)
    assert set(pred["polarity"]) <= {"barrier", "opportunity", "neutral"}
    assert ((pred["confidence"] >= 0) & (pred["confidence"] <= 1)).all()
    # embeddings in give the same as texts in
    again = fitted.predict(embeddings=embedder.encode(texts))
    pd.testing.assert_frame_equal(pred, again)
    assert len(fitted.predict([])) == 0
    for themes, subs in zip(pred["themes"], pred["subcodes"]):
        for s in split_labels(subs):
            assert s.split(".")[0] in themes.split(";")


def test_codebook_examples_coded_as_their_own_theme(fitted, codebook):
    rows = [(text, theme) for text, theme, _ in codebook.labelled_examples(include_none=True)]
    pred = fitted.predict([t for t, _ in rows])
    hits = [theme in split_labels(p) for (_, theme), p in zip(rows, pred["themes"])]
    assert np.mean(hits) >= 0.8


def test_pleasantries_are_none(fitted):
    texts = ["Thanks very much for having me.", "Sorry, could you repeat the question?",
             "Yes, I'm happy for you to record this.", "Good morning, nice to meet you."]
    pred = fitted.predict(texts)
    assert (pred["themes"] == NONE).sum() >= 3
    assert (pred.loc[pred["themes"] == NONE, "polarity"] == "neutral").all()


def test_reviewer_examples_change_a_targeted_prediction(codebook, memo, fitted):
    # a segment the codebook alone codes one way, reviewers repeatedly code another way
    text = "The spreadsheet macros were written by someone who retired years ago."
    before = fitted.predict([text])
    target = "people" if "people" not in split_labels(before["themes"][0]) else "technical"
    variants = [text, "Those macros were written by someone who retired years ago.",
                "The spreadsheet macros were built by a colleague who left long ago.",
                "Nobody remembers how the spreadsheet macros work since he retired."]
    examples = pd.DataFrame({"text": variants, "themes": [target] * 4,
                             "polarity": ["barrier"] * 4})
    coder = EmbeddingCoder(codebook, memo).fit(examples)
    after = coder.predict([text])
    assert coder.n_labelled_ == 4
    assert after[f"score_{target}"][0] > before[f"score_{target}"][0]
    assert target in split_labels(after["themes"][0])


def test_params_round_trip_and_knn_off_is_the_regression(codebook, memo, fitted):
    params = fitted.get_params()
    assert {"knn_weight", "knn_k", "knn_temperature", "neutral_prior"} <= set(params)
    again = EmbeddingCoder(codebook, memo, **params).fit()
    texts = ["We still can't get the hospital records.", "Nice to meet you."]
    pd.testing.assert_frame_equal(fitted.predict(texts), again.predict(texts))
    # with knn_weight=0 the theme scores are the logistic regression's probabilities
    lr_only = EmbeddingCoder(codebook, memo, knn_weight=0.0).fit()
    pred = lr_only.predict(texts)
    proba = lr_only.theme_model_.predict_proba(memo.encode(texts))
    col = list(lr_only.classes_)
    for t in codebook.theme_ids + [NONE]:
        np.testing.assert_allclose(pred[f"score_{t}"], proba[:, col.index(t)], rtol=1e-6)


def test_theme_scores_are_a_distribution_and_follow_the_nearest_examples(fitted, codebook, memo):
    texts = ["Honestly the data just isn't there for anyone over eighty.",
             "The minister never backed it.", "Can you hear me?"]
    pred = fitted.predict(texts)
    cols = [f"score_{t}" for t in codebook.theme_ids] + ["score_none"]
    np.testing.assert_allclose(pred[cols].sum(axis=1), 1.0, rtol=1e-6)
    knn = fitted._knn_proba(memo.encode(texts))
    np.testing.assert_allclose(knn.sum(axis=1), 1.0, rtol=1e-6)
    # an example's own text is its nearest neighbour, so its class leads the kNN part
    example = codebook.subcode("technical.linkage").examples[0]
    k = fitted._knn_proba(memo.encode([example]))[0]
    assert fitted.classes_[int(np.argmax(k))] == "technical"


def test_one_reviewer_decision_moves_the_same_and_a_near_identical_segment(codebook, memo, fitted):
    # one decision is enough to shift the nearest-examples score of that text and its rewording
    text = "Our allotment society keeps a list of plot holders in a paper ledger."
    twin = "The allotment society keeps its list of plot holders in a paper ledger."
    before = fitted.predict([text, twin])
    target = "people" if before["themes"][0] != "people" else "public"
    coder = EmbeddingCoder(codebook, memo).fit(
        pd.DataFrame({"text": [text], "themes": [target], "polarity": ["neutral"]}))
    after = coder.predict([text, twin])
    assert (after[f"score_{target}"] > before[f"score_{target}"] + 0.05).all()


def test_neutral_prior_shifts_coded_segments_towards_barrier_or_opportunity(codebook, memo):
    texts = ["We've waited two years for the agreement and there's still no sign of it.",
             "Since the catalogue went live, people can find what exists on their own.",
             "The extract arrives on the first Monday of each month.",
             "Nobody left in the team knows how the old matching code works.",
             "The public panel meets twice a year.",
             "Thanks, that's all from me."]
    even = EmbeddingCoder(codebook, memo, neutral_prior=1.0).fit().predict(texts)
    lowered = EmbeddingCoder(codebook, memo, neutral_prior=0.3).fit().predict(texts)
    pd.testing.assert_series_equal(even["themes"], lowered["themes"])
    coded = (even["themes"] != NONE).to_numpy()
    assert (lowered["polarity"][coded] == "neutral").sum() <= (even["polarity"][coded] == "neutral").sum()
    # a segment coded none stays neutral whatever the prior
    assert (lowered.loc[~coded, "polarity"] == "neutral").all()


def test_clear_barriers_and_opportunities(fitted):
    barriers = ["We asked for the school records eighteen months ago and we're still waiting.",
                "The two systems can't exchange anything, so it's all retyped by hand.",
                "Our director won't sign anything that might end up in the papers."]
    opportunities = ["The shared platform has cut the time to link a new dataset from months to days.",
                     "Since we trained the team in matching methods, we do it all in-house.",
                     "Publishing a plain-English list of every project really helped with trust."]
    pred = fitted.predict(barriers + opportunities)
    got = list(pred["polarity"])
    hits = sum(g == "barrier" for g in got[:3]) + sum(g == "opportunity" for g in got[3:])
    assert hits >= 5, got


def _reviewed_rows():
    # formal, flat wording the codebook has few examples of: reviewers call it people
    return pd.DataFrame({
        "text": ["The accounting officer was not minded to accept the residual risk.",
                 "Sign-off rested with a director who preferred to await further assurance.",
                 "The post of senior information risk owner was vacant for most of the year.",
                 "The board did not regard the linkage as a priority for the spending round."],
        "themes": ["people"] * 4, "polarity": ["barrier"] * 4})


def test_reviewer_rows_move_the_codebook_regression_and_a_strong_prior_pins_it(codebook, memo,
                                                                                fitted):
    rows = _reviewed_rows()
    X = memo.encode(rows["text"].tolist())
    j = list(fitted.theme_model_.classes_).index("people")
    before = fitted.theme_model_.predict_proba(X)[:, j]
    moved = {s: EmbeddingCoder(codebook, memo, prior_strength=s).fit(rows)
             for s in (0.5, 2.0, 1e9)}
    after = {s: c.theme_model_.predict_proba(X)[:, j] for s, c in moved.items()}
    # the weaker the prior, the further the regression moves towards the reviewers' label
    assert (after[0.5] > after[2.0]).all() and (after[2.0] > before + 0.05).all()
    # an overwhelming prior keeps the codebook's weights: the decisions then act only through
    # the nearest-examples score and the sub-code model
    assert np.allclose(moved[1e9].theme_model_.coef_, fitted.theme_model_.coef_, atol=1e-6)
    assert np.allclose(moved[1e9].theme_model_.intercept_, fitted.theme_model_.intercept_,
                       atol=1e-6)
    # polarity moves the same way
    k = list(fitted.polarity_model_.classes_).index("barrier")
    assert (moved[0.5].polarity_model_.predict_proba(X)[:, k]
            > fitted.polarity_model_.predict_proba(X)[:, k]).all()


def test_refit_is_the_minimum_of_its_objective(codebook, memo, fitted):
    rows = _reviewed_rows()
    coder = EmbeddingCoder(codebook, memo, prior_strength=2.0).fit(rows)
    m0, m = fitted.theme_model_, coder.theme_model_
    X = np.hstack([memo.encode(rows["text"].tolist()), np.ones((len(rows), 1))])
    y = np.array([list(m.classes_).index("people")] * len(rows))
    w = np.full(len(rows), coder.example_weight)
    W0 = np.hstack([m0.coef_, m0.intercept_[:, None]])

    def objective(W):
        Z = X @ W.T
        logp = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
        return -(w * logp[np.arange(len(y)), y]).sum() + 0.5 * 2.0 * ((W - W0) ** 2).sum()

    W = np.hstack([m.coef_, m.intercept_[:, None]])
    best = objective(W)
    assert best < objective(W0)
    rng = np.random.default_rng(0)
    for _ in range(20):   # no nearby point is lower
        assert objective(W + 1e-3 * rng.standard_normal(W.shape)) > best - 1e-9
