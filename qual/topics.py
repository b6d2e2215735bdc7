"""Emergent topics: BERTopic on the stakeholder segments, each topic placed under a theme.

``TopicModel`` follows the scikit-learn/BERTopic shape: parameters in the constructor, ``fit``
learns from segment texts *and their precomputed embeddings* (the documents are never embedded
again), learned state in attributes ending in ``_``. The encoder (anything with
``encode(texts) -> unit vectors``, e.g. ``CachedEmbedder``) is only used for the codebook's
example utterances (to place topics under sub-codes) and, when ``guidance`` asks for it, for the
codebook's seed words; both are served from the store's cache after the first ``code`` run.

How it decides:

* Sizes come from the corpus (see ``TopicParams.for_corpus``): UMAP's ``n_neighbors``, HDBSCAN's
  ``min_cluster_size``/``min_samples``. UMAP has a fixed ``random_state`` so the same segments
  and seed give the same topics. Below ``SMALL_CORPUS`` segments UMAP/HDBSCAN are unreliable
  (all outliers, or "k must be less than ..." errors), so no reduction is done and KMeans with a
  few clusters is plugged in as BERTopic's ``hdbscan_model``. Below ``MIN_SEGMENTS`` there is no
  topic model worth fitting and ``TooFewSegments`` says so.
* Outliers (HDBSCAN's -1) are reassigned to the nearest topic by embedding similarity
  (``reduce_outliers(strategy="embeddings")``) when at least ``outlier_threshold`` similar;
  the rest stay as topic -1, the outliers row.
* Keywords: c-TF-IDF over a CountVectorizer with English stop words plus spoken filler
  ("think", "yes", "know", ...), ``min_df`` from the corpus size, frequent words damped.
* Placement: each topic's centroid (normalised mean of its members' embeddings) is compared by
  cosine similarity with each sub-code's centroid (normalised mean of its example utterances,
  embedded with the same encoder). The nearest sub-code and its theme are reported with the
  similarity.
* Emergent (new to the codebook), calibrated on the codebook itself (``calibrate_emergent``):
  each example utterance is held out of its sub-code in turn and compared with the centroid of
  the sub-code's other examples; the threshold is the ``emergent_percentile``-th percentile
  (default 5) of those similarities, i.e. 95 % of the texts the codebook says belong to a
  sub-code are at least that similar to it. A segment is *covered* when some sub-code's
  centroid is at least that similar to it, and a topic is ``emergent`` when fewer than half of
  its segments are covered. The test is on segments, not on the topic's centroid: a centroid
  averages its members, so its similarity rises with the topic's size (a fixed cut of 0.55
  on it flagged 105 of 159 topics at 100 interviews and fewer on small corpora), while a
  segment's does not, so the flag means the same at any corpus size. The threshold, the
  percentile and the number of held-out examples are recorded in the run's parameters
  (``TopicResult.parameters``). ``emergent_threshold=X`` sets a fixed threshold instead.
* Examples: the 3 distinct member segments nearest the topic centroid.

Guidance (seed topics vs zero-shot vs none), measured on the six Inquiry transcripts (897
stakeholder segments, 548 of 6+ words; all-MiniLM-L6-v2; seed 42; ``python bench/topics_bench.py
--compare``). Coherence proxy = mean pairwise cosine similarity of the embeddings of each topic's
top-10 keywords, averaged over topics; "mapped" = share of topics whose nearest sub-code is at or
above 0.55, the fixed cut on the centroid the emergent flag used then:

    guidance   topics  coherence  mapped  smallest topic
    none         12      0.278     0.92        25
    seed         11      0.283     0.91        18
    zeroshot     17      0.279     0.71         1

(With the first, smaller codebook the gap was wider: none 0.282 / 0.60 mapped, seed 0.293 /
0.70.) Seed topics are kept (``DEFAULT_GUIDANCE``): a little more coherent, as well placed, and
nudging segments towards the sub-codes' words pulls the generic "we need to share data across
government" talk into one data-sharing topic instead of one vague bin, without forcing topics
the corpus lacks. Zero-shot assigns every segment whose similarity to a sub-code *name* passes
a threshold straight to that sub-code, which on spoken answers gives a handful of tiny topics
and leaves the rest to HDBSCAN: less well placed.

Seed words need embedding by the same model, so in that mode BERTopic gets a thin adapter over
the (cached) encoder as ``embedding_model``; the segments' own embeddings are still passed to
``fit_transform`` and never recomputed. With ``guidance="none"`` it is ``embedding_model=None``.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from .errors import QualError, counted

#: Fewer usable segments than this: no topic model (a clear message instead).
MIN_SEGMENTS = 12
#: Fewer topics than this from HDBSCAN's default (eom) selection: try leaf selection.
MIN_TOPICS = 3
#: Fewer than this: no UMAP/HDBSCAN, KMeans with a few clusters instead.
SMALL_CORPUS = 40
#: Segments shorter than this (in words) are left out: "Yes.", "That's right." carry no topic.
MIN_WORDS = 6
#: The most topics a reader is shown by default, whatever the corpus size (``--topics N``
#: overrides); fewer on smaller corpora, see ``default_max_topics``.
MAX_TOPICS = 40


def default_max_topics(n: int) -> int:
    """How many topics a reader gets from ``n`` segments at most: one per 100 segments, at
    least 20 and at most ``MAX_TOPICS`` (10,755 segments gave 159 topics before: now 40)."""
    return int(min(MAX_TOPICS, max(20, n // 100)))

GUIDANCE = ("none", "seed", "zeroshot")
DEFAULT_GUIDANCE = "seed"   # measured: see the module docstring

# Spoken filler that English stop-word lists miss; in transcripts it would top every topic.
SPOKEN_STOP_WORDS = {
    "yes", "yeah", "no", "think", "know", "just", "really", "actually", "mean", "say", "said",
    "saying", "going", "got", "get", "getting", "lot", "lots", "things", "thing", "way", "ve",
    "ll", "don", "didn", "doesn", "isn", "wasn", "weren", "aren", "couldn", "wouldn", "shouldn",
    "did", "does", "like", "kind", "sort", "quite", "right", "okay", "ok", "obviously",
    "certainly", "clearly", "particularly", "course", "point", "talk", "talking", "want",
    "wanted", "make", "made", "look", "looking", "able", "tell", "time", "times", "sure", "yes",
    "well", "good", "different", "important", "example", "terms", "used", "use", "using",
    "people", "question", "questions", "inquiry", "lady", "lord", "mr", "ms", "dr", "professor",
    "sir", "paragraph", "page", "report", "statement", "evidence", "correct", "indeed",
    "thank", "maybe", "happy", "chair", "cochair", "believe", "weve",
    # BERTopic strips punctuation before counting words, so contractions arrive glued
    "dont", "didnt", "doesnt", "isnt", "wasnt", "werent", "arent", "couldnt", "wouldnt",
    "shouldnt", "hadnt", "hasnt", "havent", "ive", "youve", "theyve", "im", "youre", "theyre",
    "thats", "theres", "lets", "hadn", "hasn", "haven", "needn", "wed", "youd", "itll", "weren",
    "whats", "id", "ill",
}


class TooFewSegments(QualError):
    """Not enough segments to find topics in."""


@dataclass
class TopicParams:
    """The sizes BERTopic's sub-models get, chosen from the corpus size by ``for_corpus``."""

    n_segments: int
    method: str                      # "umap-hdbscan" | "kmeans"
    n_neighbors: int = 0
    n_components: int = 0
    min_cluster_size: int = 0
    min_samples: int = 0
    n_clusters: int = 0
    min_df: int = 1
    seed: int = 42
    selection: str = "eom"           # HDBSCAN's cluster selection; "leaf" when eom finds too few
    max_topics: int = MAX_TOPICS     # more clusters than this are merged down to it

    @classmethod
    def for_corpus(cls, n: int, *, min_topic_size: int | None = None,
                   seed: int = 42, max_topics: int | None = None) -> "TopicParams":
        if max_topics is not None and max_topics < 1:
            raise QualError(f"--topics must be at least 1, not {max_topics}")
        cap = int(max_topics or default_max_topics(n))
        if n < MIN_SEGMENTS:
            raise TooFewSegments(
                f"only {counted(n, 'stakeholder segment')} of {MIN_WORDS}+ words; at least "
                f"{MIN_SEGMENTS} are needed to find topics (ingest or code more transcripts "
                "first)")
        min_df = 1 if n < 100 else 2
        if n < SMALL_CORPUS:
            k = min_topic_size and max(2, n // min_topic_size)
            k = int(k or max(2, min(5, n // 8)))
            return cls(n, "kmeans", n_clusters=min(k, cap) if cap >= 2 else k, min_df=min_df,
                       seed=seed, max_topics=cap)
        mcs = int(min_topic_size or np.clip(n // 40, 5, 25))
        return cls(n, "umap-hdbscan",
                   n_neighbors=int(np.clip(n // 50, 5, 15)),
                   n_components=5,
                   min_cluster_size=max(2, mcs),
                   min_samples=max(2, mcs // 3),
                   min_df=min_df, seed=seed, max_topics=cap)


@dataclass
class TopicResult:
    """What a fit found: ``topics`` (one row per topic) and ``assignments`` (one per segment)."""

    # topic, size, keywords, theme, subcode, similarity, emergent, examples, label
    topics: pd.DataFrame
    assignments: np.ndarray         # topic id per input segment (-1: outlier kept)
    params: TopicParams
    guidance: str
    fit_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: how the emergent flag was set: threshold, percentile, held-out examples, rule
    emergent: dict = field(default_factory=dict)

    def parameters(self) -> dict:
        return {**asdict(self.params), "guidance": self.guidance,
                **{f"emergent_{k}": v for k, v in self.emergent.items()}}


def _import_bertopic_quietly() -> None:
    """Set the Hugging Face switches ``qual.embed.Embedder`` sets before it loads a model, then
    import BERTopic. BERTopic imports sentence-transformers, transformers and huggingface_hub,
    which read these switches once, at import: imported first with them unset, the embedding
    model's later load printed transformers' "Loading weights" tqdm bar (``code`` never did).
    Our own progress bars (``qual.embed.progress``) are unaffected."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import bertopic  # noqa: F401


class _EncoderBackend:
    """Adapts a qual encoder to BERTopic's embedding backend, for the guidance texts only
    (seed words, zero-shot labels, keywords). Documents always come with their embeddings."""

    def __new__(cls, encoder):
        _import_bertopic_quietly()
        from bertopic.backend import BaseEmbedder

        class Backend(BaseEmbedder):
            def embed(self, documents, verbose=False):
                return np.asarray(encoder.encode(list(documents)), dtype=np.float32)

        return Backend()


def _unit(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return m / np.where(norms == 0, 1, norms)


def word_count(text: str) -> int:
    return len(re.findall(r"\w+", text))


def stop_words() -> list[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return sorted(set(ENGLISH_STOP_WORDS) | SPOKEN_STOP_WORDS)


def subcode_centroids(codebook, encoder) -> tuple[list, np.ndarray]:
    """(sub-codes, unit centroid of each sub-code's example utterances)."""
    subs, cents, _ = _subcode_vectors(codebook, encoder)
    return subs, cents


def _subcode_vectors(codebook, encoder) -> tuple[list, np.ndarray, list[np.ndarray]]:
    """(sub-codes, unit centroids, each sub-code's unit example vectors)."""
    subs = list(codebook.subcodes)
    texts = [e for s in subs for e in s.examples]
    vecs = _unit(np.asarray(encoder.encode(texts)))
    out, groups, i = [], [], 0
    for s in subs:
        groups.append(vecs[i:i + len(s.examples)])
        out.append(groups[-1].mean(axis=0))
        i += len(s.examples)
    return subs, _unit(np.vstack(out)), groups


#: the share of a topic's segments that must be covered by some sub-code for it not to be
#: emergent (see the module docstring)
EMERGENT_MIN_COVERED = 0.5
EMERGENT_PERCENTILE = 5.0


def heldout_similarities(groups: list[np.ndarray]) -> np.ndarray:
    """For every example of every sub-code with at least two: its cosine similarity to the
    unit centroid of the sub-code's *other* examples (leave one out)."""
    out = []
    for g in groups:
        if len(g) < 2:
            continue
        total = g.sum(axis=0)
        rest = _unit(total[None, :] - g)               # each row: the centroid without it
        out.append(np.einsum("ij,ij->i", g, rest))
    return np.concatenate(out) if out else np.zeros(0)


def calibrate_emergent(codebook, encoder, percentile: float = EMERGENT_PERCENTILE) -> dict:
    """The emergent threshold from the codebook's own examples: the ``percentile``-th
    percentile of ``heldout_similarities``. Returns ``threshold``, ``percentile``,
    ``heldout`` (how many examples) and ``rule`` (one line for a reader)."""
    if not 0 <= percentile <= 100:
        raise QualError(f"the emergent percentile must be between 0 and 100, not {percentile}")
    _, _, groups = _subcode_vectors(codebook, encoder)
    sims = heldout_similarities(groups)
    if not len(sims):
        raise QualError("the codebook has no sub-code with two examples or more: the emergent "
                        "threshold cannot be calibrated (pass emergent_threshold)")
    threshold = round(float(np.percentile(sims, percentile)), 4)
    return {"threshold": threshold, "percentile": float(percentile), "heldout": int(len(sims)),
            "min_covered": EMERGENT_MIN_COVERED,
            "rule": (f"emergent: fewer than {EMERGENT_MIN_COVERED:.0%} of the topic's segments "
                     f"have a sub-code at least {threshold:.3f} similar; {100 - percentile:g}% "
                     f"of {len(sims)} held-out codebook examples are that similar to their "
                     "own sub-code")}


def covered_share(unit: np.ndarray, sub_vecs: np.ndarray, topics: np.ndarray,
                  threshold: float) -> dict[int, float]:
    """Per topic, the share of its segments (unit vectors ``unit``) that some sub-code's
    centroid is at least ``threshold`` similar to."""
    best = (np.asarray(unit) @ np.asarray(sub_vecs).T).max(axis=1) if len(sub_vecs) else \
        np.full(len(unit), -1.0)
    topics = np.asarray(topics)
    return {int(t): float((best[topics == t] >= threshold).mean())
            for t in sorted(set(topics.tolist()))}


def seed_topics(codebook, n_words: int = 6) -> list[list[str]]:
    """Seed words per sub-code: the words of its name, then its examples' words ranked by how
    often they occur in this sub-code times how few sub-codes use them (count x idf), so words
    common to the whole codebook ("data", "records", "public") do not pull every seed
    together."""
    stops = set(stop_words())
    subs = list(codebook.subcodes)
    counts = []
    for s in subs:
        c: dict[str, int] = {}
        for e in s.examples:
            for w in re.findall(r"[a-z]{3,}", e.lower()):
                if w not in stops:
                    c[w] = c.get(w, 0) + 1
        counts.append(c)
    df: dict[str, int] = {}
    for c in counts:
        for w in c:
            df[w] = df.get(w, 0) + 1
    seeds = []
    for s, c in zip(subs, counts):
        name_words = [w for w in re.findall(r"[a-z]+", s.name.lower()) if w not in stops]
        score = {w: n * math.log(len(subs) / df[w]) for w, n in c.items()}
        ranked = [w for w, _ in sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))]
        words = list(dict.fromkeys(name_words + ranked))[:max(n_words, len(name_words))]
        seeds.append(words)
    return seeds


def merge_topics(topics: np.ndarray, embeddings: np.ndarray, k: int) -> np.ndarray:
    """Merge clusters until at most ``k`` remain: average-linkage agglomerative clustering of the
    clusters' centroids (normalised mean of their segments' embeddings) by cosine distance, the
    way BERTopic's ``reduce_topics`` merges topic embeddings, but on the segments' own vectors
    (the ones placement uses). Outliers (-1) stay outliers. The result is renumbered 0..k-1 by
    size, largest first (ties by first segment), so the same input gives the same numbers."""
    topics = np.asarray(topics)
    ids = sorted(set(topics[topics >= 0].tolist()))
    if len(ids) <= k:
        return topics.copy()
    from sklearn.cluster import AgglomerativeClustering

    unit = _unit(embeddings)
    cents = _unit(np.vstack([unit[topics == t].mean(axis=0) for t in ids]))
    labels = AgglomerativeClustering(n_clusters=max(1, k), metric="cosine",
                                     linkage="average").fit_predict(cents) if k > 1 else \
        np.zeros(len(ids), dtype=int)
    merged = np.full(len(topics), -1)
    for t, label in zip(ids, labels):
        merged[topics == t] = label
    return renumber_by_size(merged)


def renumber_by_size(topics: np.ndarray) -> np.ndarray:
    """Topic ids 0..k-1, largest topic first (ties: the one whose first segment comes first)."""
    topics = np.asarray(topics)
    ids = [t for t in dict.fromkeys(topics.tolist()) if t >= 0]
    order = sorted(ids, key=lambda t: -int((topics == t).sum()))
    new = {t: i for i, t in enumerate(order)}
    return np.asarray([new.get(t, -1) for t in topics.tolist()])


def keyword_coherence(topics: pd.DataFrame, encoder, top_n: int = 10) -> float:
    """Coherence proxy: mean pairwise cosine similarity of each topic's keyword embeddings,
    averaged over the topics (outlier row excluded). Higher: keywords about one thing."""
    scores = []
    for kw in topics.loc[topics["topic"] >= 0, "keywords"]:
        words = [w.strip() for w in kw.split(",") if w.strip()][:top_n]
        if len(words) < 2:
            continue
        v = _unit(np.asarray(encoder.encode(words)))
        sim = v @ v.T
        scores.append(float(sim[np.triu_indices(len(words), 1)].mean()))
    return float(np.mean(scores)) if scores else 0.0


class TopicModel:
    """BERTopic on precomputed segment embeddings, with topics placed under codebook sub-codes.

    Parameters
    ----------
    codebook : qual.codebook.Codebook
    encoder : ``encode(list[str]) -> unit vectors`` (same model as the segment embeddings)
    min_topic_size : HDBSCAN's ``min_cluster_size`` (default: from the corpus size)
    seed : UMAP's (and KMeans's) random state
    guidance : "none", "seed" (seed_topic_list from the sub-codes) or "zeroshot"
        (zeroshot_topic_list of sub-code names); see the module docstring for the measurement.
    emergent_percentile : the emergent threshold is this percentile of the codebook's held-out
        examples' similarity to their own sub-code (``calibrate_emergent``; default 5)
    emergent_threshold : a fixed threshold instead of the calibrated one (None: calibrate)
    outlier_threshold : ``reduce_outliers`` moves an outlier only when at least this similar
    top_n_words : keywords per topic
    max_topics : at most this many topics (more clusters are merged by ``merge_topics``);
        default ``default_max_topics`` of the corpus size, at most ``MAX_TOPICS``
    """

    def __init__(self, codebook, encoder, *, min_topic_size: int | None = None, seed: int = 42,
                 guidance: str = DEFAULT_GUIDANCE, emergent_threshold: float | None = None,
                 outlier_threshold: float = 0.2, top_n_words: int = 10,
                 zeroshot_min_similarity: float = 0.5, max_topics: int | None = None,
                 emergent_percentile: float = EMERGENT_PERCENTILE):
        if guidance not in GUIDANCE:
            raise ValueError(f"guidance must be one of {GUIDANCE}, not {guidance!r}")
        self.codebook = codebook
        self.encoder = encoder
        self.min_topic_size = min_topic_size
        self.seed = seed
        self.guidance = guidance
        self.emergent_threshold = emergent_threshold
        self.outlier_threshold = outlier_threshold
        self.top_n_words = top_n_words
        self.zeroshot_min_similarity = zeroshot_min_similarity
        self.max_topics = max_topics
        self.emergent_percentile = emergent_percentile

    def get_params(self) -> dict:
        return {"min_topic_size": self.min_topic_size, "seed": self.seed,
                "guidance": self.guidance, "emergent_threshold": self.emergent_threshold,
                "emergent_percentile": self.emergent_percentile,
                "outlier_threshold": self.outlier_threshold, "top_n_words": self.top_n_words,
                "max_topics": self.max_topics}

    # -- sub-models -----------------------------------------------------------------------
    def _bertopic(self, p: TopicParams):
        _import_bertopic_quietly()
        from bertopic import BERTopic
        from bertopic.dimensionality import BaseDimensionalityReduction
        from bertopic.vectorizers import ClassTfidfTransformer
        from sklearn.feature_extraction.text import CountVectorizer

        if p.method == "kmeans":
            from sklearn.cluster import KMeans

            reducer = BaseDimensionalityReduction()
            clusterer = KMeans(n_clusters=p.n_clusters, random_state=p.seed, n_init=10)
        else:
            from hdbscan import HDBSCAN
            from umap import UMAP

            reducer = UMAP(n_neighbors=p.n_neighbors, n_components=p.n_components, min_dist=0.0,
                           metric="cosine", random_state=p.seed, low_memory=True)
            clusterer = HDBSCAN(min_cluster_size=p.min_cluster_size, min_samples=p.min_samples,
                                metric="euclidean", cluster_selection_method=p.selection,
                                prediction_data=True)
        vectorizer = CountVectorizer(stop_words=stop_words(), min_df=p.min_df,
                                     token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+(?:-[a-zA-Z]+)*\b")
        kwargs = {}
        if self.guidance == "seed":
            kwargs["seed_topic_list"] = seed_topics(self.codebook)
        elif self.guidance == "zeroshot":
            kwargs["zeroshot_topic_list"] = [s.name for s in self.codebook.subcodes]
            kwargs["zeroshot_min_similarity"] = self.zeroshot_min_similarity
        return BERTopic(
            # None when unguided: the documents' embeddings are passed in, never recomputed.
            # Guidance needs its seed words / labels embedded by the same model: the adapter
            # does that through the (cached) encoder, and nothing else.
            embedding_model=_EncoderBackend(self.encoder) if self.guidance != "none" else None,
            umap_model=reducer, hdbscan_model=clusterer, vectorizer_model=vectorizer,
            ctfidf_model=ClassTfidfTransformer(reduce_frequent_words=True),
            top_n_words=self.top_n_words, calculate_probabilities=False, verbose=False, **kwargs)

    # -- fit ------------------------------------------------------------------------------
    def fit(self, texts: list[str], embeddings: np.ndarray) -> TopicResult:
        import time
        import warnings

        texts = list(texts)
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if len(texts) != len(embeddings):
            raise ValueError("one embedding per text is needed")
        p = TopicParams.for_corpus(len(texts), min_topic_size=self.min_topic_size, seed=self.seed,
                                   max_topics=self.max_topics)
        notes = []
        t0 = time.perf_counter()
        model = self._bertopic(p)
        import logging

        bertopic_log = logging.getLogger("BERTopic")
        level = bertopic_log.level
        # BERTopic warns that topics set by reduce_outliers are final: they are, by design
        bertopic_log.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # a copy: guided modelling nudges the embeddings it is given in place
                topics, _ = model.fit_transform(texts, embeddings=embeddings.copy())
                topics = np.asarray(topics)
                if (p.method != "kmeans" and p.selection == "eom"
                        and len(set(topics[topics >= 0].tolist())) < MIN_TOPICS):
                    # EOM merged the corpus into one or two big clusters (it happens on a few
                    # hundred segments): leaf selection keeps the finer clusters
                    leaf = replace(p, selection="leaf")
                    leaf_model = self._bertopic(leaf)
                    leaf_topics, _ = leaf_model.fit_transform(texts, embeddings=embeddings.copy())
                    leaf_topics = np.asarray(leaf_topics)
                    if (len(set(leaf_topics[leaf_topics >= 0].tolist()))
                            > len(set(topics[topics >= 0].tolist()))):
                        notes.append("HDBSCAN's default selection found under "
                                     f"{MIN_TOPICS} topics; leaf selection used instead")
                        p, model, topics = leaf, leaf_model, leaf_topics
                if p.method != "kmeans" and not (topics >= 0).any():
                    # HDBSCAN found no dense region (it happens on a few dozen segments)
                    notes.append("HDBSCAN found no topic; KMeans used instead")
                    p = replace(p, method="kmeans", n_clusters=max(2, min(5, len(texts) // 10)))
                    model = self._bertopic(p)
                    topics, _ = model.fit_transform(texts, embeddings=embeddings.copy())
                    topics = np.asarray(topics)
                n_out = int((topics == -1).sum())
                if n_out and (topics >= 0).any():
                    new = model.reduce_outliers(texts, topics.tolist(), strategy="embeddings",
                                                embeddings=embeddings,
                                                threshold=self.outlier_threshold)
                    topics = np.asarray(new)
                    bertopic_log.setLevel(logging.ERROR)   # fit_transform may have reset it
                    model.update_topics(texts, topics=topics.tolist(),
                                        vectorizer_model=model.vectorizer_model,
                                        ctfidf_model=model.ctfidf_model,
                                        top_n_words=self.top_n_words)
                    notes.append(f"{n_out} outliers, {int((topics == -1).sum())} left after "
                                 "reduce_outliers")
                found = len(set(topics[topics >= 0].tolist()))
                if found > p.max_topics:
                    # a reader cannot take in 159 topics: merge the nearest down to the cap
                    topics = merge_topics(topics, embeddings, p.max_topics)
                    bertopic_log.setLevel(logging.ERROR)
                    model.update_topics(texts, topics=topics.tolist(),
                                        vectorizer_model=model.vectorizer_model,
                                        ctfidf_model=model.ctfidf_model,
                                        top_n_words=self.top_n_words)
                    notes.append(f"{found} clusters merged into {p.max_topics} topics (the "
                                 "nearest by their segments' mean embedding; --topics N sets "
                                 "the number)")
        finally:
            bertopic_log.setLevel(level)
        self.model_ = model
        self.params_ = p
        self.fit_seconds_ = time.perf_counter() - t0
        table, emergent = self._describe(model, texts, embeddings, topics)
        self.emergent_ = emergent
        return TopicResult(table, topics, p, self.guidance, self.fit_seconds_, notes, emergent)

    def _emergent_rule(self) -> dict:
        if self.emergent_threshold is None:
            return calibrate_emergent(self.codebook, self.encoder, self.emergent_percentile)
        t = float(self.emergent_threshold)
        return {"threshold": t, "percentile": None, "heldout": 0,
                "min_covered": EMERGENT_MIN_COVERED,
                "rule": (f"emergent: fewer than {EMERGENT_MIN_COVERED:.0%} of the topic's "
                         f"segments have a sub-code at least {t:.3f} similar (a fixed threshold)")}

    def _describe(self, model, texts, embeddings, topics) -> tuple[pd.DataFrame, dict]:
        subs, sub_vecs = subcode_centroids(self.codebook, self.encoder)
        unit = _unit(embeddings)
        rule = self._emergent_rule()
        covered = covered_share(unit, sub_vecs, topics, rule["threshold"])
        rows = []
        for t in sorted(set(topics.tolist())):
            idx = np.flatnonzero(topics == t)
            centroid = _unit(unit[idx].mean(axis=0))
            words = [w for w, _ in (model.get_topic(int(t)) or []) if w][: self.top_n_words]
            order = idx[np.argsort(-(unit[idx] @ centroid), kind="stable")]
            examples = list(dict.fromkeys(texts[i] for i in order))[:3]
            if t == -1:
                theme = subcode = ""
                sim, emergent = float("nan"), False
            else:
                sims = sub_vecs @ centroid
                best = int(np.argmax(sims))
                sim = round(float(sims[best]), 4)
                theme, subcode = subs[best].theme, subs[best].id
                emergent = covered[int(t)] < rule["min_covered"]
            rows.append({"topic": int(t), "size": int(len(idx)), "keywords": ", ".join(words),
                         "theme": theme, "subcode": subcode, "similarity": sim,
                         "emergent": bool(emergent), "examples": examples,
                         "label": f"{t}_" + "_".join(words[:4])})
        return pd.DataFrame(rows, columns=["topic", "size", "keywords", "theme", "subcode",
                                           "similarity", "emergent", "examples", "label"]), rule


def usable_segments(segments: pd.DataFrame, min_words: int = MIN_WORDS) -> tuple[pd.DataFrame, int]:
    """The segments long enough to carry a topic, and how many were left out."""
    keep = segments["text"].map(word_count) >= min_words
    return segments[keep].reset_index(drop=True), int((~keep).sum())
