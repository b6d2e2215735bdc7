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
