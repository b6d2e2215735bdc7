"""A fitted coder as plain arrays: applied without scikit-learn, kept on disk without pickle.

``HybridCoder.fit`` learns with scikit-learn, then keeps what it learned in the two small
classes here: :class:`Linear` (a logistic regression's weights, applied as scikit-learn
applies them) and :class:`Tfidf` (the word and word-pair vocabulary with its idf weights,
applied as scikit-learn's ``TfidfVectorizer`` with the coder's settings). ``predict`` uses only
these, so a coder loaded from disk codes exactly as the one that was fitted.

``code`` fits the coder again on every run, and the fit (with scikit-learn's import) was a
fixed cost of every run: about 5 s, most of a re-run over an unchanged corpus.
:func:`fit_or_load` keeps each fit in the per-user cache (``$QUAL_CACHE_DIR/coders/``) under
a key that hashes everything the fit depends on: the coder's parameters, the codebook's
version, the encoder's key, every training row (text, labels, weight, group: the codebook's
examples and its reference sets) and the versions of scikit-learn, NumPy and SciPy. Another
codebook or another model gives another key and a new fit. A fit that learned from reviewer
decisions is not kept (their words are study text, which the per-user cache never holds). The file is an ``.npz`` of arrays and one JSON string, read with ``allow_pickle=False``:
a file that does not read back as a whole, consistent coder is ignored and fitted again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

#: Changes whenever what is saved, or how it is applied, changes (old files are then unused).
FORMAT = 1
#: Fitted coders kept per cache folder (the oldest are removed beyond this).
KEEP = 24


class Linear:
    """A fitted logistic regression: ``coef_`` (classes x features; one row when binary),
    ``intercept_``, ``classes_``. ``predict_proba`` is scikit-learn's: the logistic function of
    the decision for two classes, the softmax of the decisions for more."""

    def __init__(self, coef, intercept, classes):
        self.coef_ = np.asarray(coef, dtype=np.float64)
        self.intercept_ = np.asarray(intercept, dtype=np.float64)
        classes = np.asarray(classes)
        # labels as text (scikit-learn keeps string labels as objects, which need pickle)
        self.classes_ = classes.astype(str) if classes.dtype == object else classes
        if (self.coef_.ndim != 2 or self.intercept_.shape != (self.coef_.shape[0],)
                or len(self.classes_) != max(2, self.coef_.shape[0])
                or (len(self.classes_) > 2) != (self.coef_.shape[0] > 1)):
            raise ValueError("inconsistent linear model")

    @classmethod
    def of(cls, model) -> "Linear":
        """The arrays of a fitted scikit-learn ``LogisticRegression``."""
        return cls(model.coef_, model.intercept_, model.classes_)

    def decision_function(self, X) -> np.ndarray:
        return np.asarray(X @ self.coef_.T) + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        d = self.decision_function(X)
        if self.coef_.shape[0] == 1:
            p = 1.0 / (1.0 + np.exp(-d[:, 0]))
            return np.column_stack([1.0 - p, p])
        d = d - d.max(axis=1, keepdims=True)
        e = np.exp(d)
        return e / e.sum(axis=1, keepdims=True)


class Tfidf:
    """Word uni- and bi-grams, TF-IDF weighted, as scikit-learn's ``TfidfVectorizer`` with
    ``ngram_range=(1, 2)``, ``sublinear_tf=True``, a stop-word list, lower-casing, its default
    token pattern and l2 normalisation, once fitted: ``vocabulary`` in column order."""

    TOKEN = re.compile(r"(?u)\b\w\w+\b")

    def __init__(self, vocabulary, idf, stop_words):
        self.vocabulary = [str(v) for v in vocabulary]
        self.idf = np.asarray(idf, dtype=np.float64)
        if self.idf.shape != (len(self.vocabulary),):
            raise ValueError("vocabulary and idf differ in length")
        self.stop_words = frozenset(str(w) for w in stop_words)
        self._index = {term: j for j, term in enumerate(self.vocabulary)}

    @classmethod
    def of(cls, vectorizer) -> "Tfidf":
        """The vocabulary, idf and stop words of a fitted ``TfidfVectorizer`` (its other
        settings must be the ones above; ``HybridCoder.fit`` makes it so)."""
        return cls(vectorizer.get_feature_names_out(), vectorizer.idf_,
                   sorted(vectorizer.get_stop_words() or ()))

    def __len__(self) -> int:
        return len(self.vocabulary)

    def transform(self, texts):
        from scipy.sparse import csr_matrix

        index, stop, idf = self._index, self.stop_words, self.idf
        indptr, indices, data = [0], [], []
        for text in texts:
            words = [w for w in self.TOKEN.findall(str(text).lower()) if w not in stop]
            grams = Counter(words)
            grams.update(f"{a} {b}" for a, b in zip(words, words[1:]))
            cols = [(index[g], n) for g, n in grams.items() if g in index]
            if cols:
                j = np.fromiter((c for c, _ in cols), dtype=np.int64, count=len(cols))
                v = (1.0 + np.log(np.fromiter((n for _, n in cols), dtype=np.float64,
                                              count=len(cols)))) * idf[j]
                v /= np.sqrt((v * v).sum())
                indices.append(j)
                data.append(v)
            indptr.append(indptr[-1] + len(cols))
        n = len(indptr) - 1
        return csr_matrix(
            (np.concatenate(data) if data else np.zeros(0),
             np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64),
             np.asarray(indptr, dtype=np.int64)), shape=(n, len(self.vocabulary)))


# -- on disk ---------------------------------------------------------------------------------
def fit_key(parts: dict) -> str:
    """A hex digest of everything a fit depends on (``parts`` must be JSON-able)."""
    blob = json.dumps({"format": FORMAT, **parts}, sort_keys=True, ensure_ascii=False,
                      default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def save_state(path: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write ``meta`` (JSON) and ``arrays`` to ``path`` (.npz), whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, __meta__=np.asarray(json.dumps({"format": FORMAT, **meta})),
                     **arrays)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_state(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of a file :func:`save_state` wrote; ``ValueError`` (or ``OSError``)
    when it is not one."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError("not a fitted coder of this version")
    return meta, arrays


def _prune(folder: Path, keep: int = KEEP) -> None:
    try:
        files = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[keep:]:
            old.unlink()
    except OSError:
        pass                               # another process pruned it first: fine


def fit_or_load(coder, examples, folder: Path | None, *, prepare=None) -> tuple[str, str | None]:
    """Make ``coder`` fitted on ``examples``: from ``folder`` when it holds this very fit,
    else by ``coder.fit(examples)``, which is then saved there; ``prepare()`` is called before
    a fit (not before a load). Returns ``(how, key)``: ``how`` is ``"cached"``,
    ``"fitted"`` (and saved) or ``"fitted, not cached"`` (no folder, a coder without
    ``fit_key``, an encoder without a key, labelled ``examples``, or a folder that cannot be
    written); ``key`` the fit's key, or None.

    A fit that learned from labelled rows (reviewer decisions) is never kept: its vocabulary
    holds words and word pairs of the study's transcripts, and the per-user cache holds only
    what the codebook teaches, never study text."""
    cacheable = (folder is not None and hasattr(coder, "fit_key")
                 and (examples is None or len(examples) == 0))
    key = coder.fit_key(examples) if cacheable else None
    if key is None:
        if prepare is not None:
            prepare()
        coder.fit(examples)
        return "fitted, not cached", key
    folder = Path(folder) / "coders"
    path = folder / f"{key}.npz"
    if path.is_file():
        try:
            coder.load_state(*load_state(path))
            os.utime(path)                 # recently used: kept by _prune
            return "cached", key
        except Exception:                  # noqa: BLE001  (not a zip, not ours, not whole)
            pass                           # damaged or foreign: fitted again, replaced
    if prepare is not None:
        prepare()
    coder.fit(examples)
    try:
        save_state(path, *coder.state())
    except OSError:
        return "fitted, not cached", key
    _prune(folder)
    return "fitted", key
