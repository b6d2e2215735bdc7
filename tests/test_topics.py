"""Emergent topics on real segments: the shipped sample transcripts, coded once per session.

The fit is BERTopic with UMAP/HDBSCAN (numba compiles once per process, ~20 s), so the
real-size fit is done once per module and the other tests reuse or refit warm.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from qual.errors import QualError
from qual.topics import (MIN_SEGMENTS, SMALL_CORPUS, TooFewSegments, TopicModel, TopicParams,
                         keyword_coherence, seed_topics, usable_segments)

CSV_COLUMNS = ["topic", "size", "keywords", "theme", "subcode", "similarity", "emergent",
               "examples"]


@pytest.fixture(scope="module")
def topics_store(_coded_samples_template, tmp_path_factory):
    from qual.store import Store

    path = tmp_path_factory.mktemp("topics") / "qual.db"
    shutil.copy(_coded_samples_template, path)
    store = Store(path)
    yield store
    store.close()


@pytest.fixture(scope="module")
def fitted(topics_store, codebook, embedder):
    """``python -m qual topics``'s composition on the three coded samples (111 segments)."""
    from qual.project import find_topics

    messages = []
    summary = find_topics(topics_store, codebook, embedder, seed=7, log=messages.append)
    summary["messages"] = messages
    return summary


@pytest.fixture(scope="module")
def sample_vectors(topics_store, embedder):
    from qual.embed import CachedEmbedder

    segs, _ = usable_segments(topics_store.segments())
    return segs, CachedEmbedder(embedder, topics_store).encode(segs["text"].tolist())


def test_parameters_follow_the_corpus_size():
    with pytest.raises(TooFewSegments, match="at least"):
        TopicParams.for_corpus(MIN_SEGMENTS - 1)
    small = TopicParams.for_corpus(SMALL_CORPUS - 5)
    assert small.method == "kmeans" and 2 <= small.n_clusters <= 5
    mid, big = TopicParams.for_corpus(111), TopicParams.for_corpus(3000)
    assert mid.method == big.method == "umap-hdbscan"
    assert mid.n_neighbors < 111 and mid.min_cluster_size <= 10
    assert big.n_neighbors == 15 and big.min_cluster_size == 25
    assert TopicParams.for_corpus(500, min_topic_size=30).min_cluster_size == 30


def test_seed_topics_come_from_the_codebook(codebook):
    seeds = seed_topics(codebook)
    assert len(seeds) == len(codebook.subcodes)
    linkage = seeds[codebook.subcode_ids.index("technical.linkage")]
    assert "linkage" in linkage and all(w == w.lower() for w in linkage)


def test_topics_are_stored_and_cover_every_segment(fitted, topics_store):
    result, run_id = fitted["result"], fitted["run_id"]
    segs, dropped = usable_segments(topics_store.segments())
    assert dropped == fitted["dropped"] > 0
    assert any("fewer than 6 words" in m for m in fitted["messages"])
    assert len(result.assignments) == len(segs)
    run = topics_store.run(run_id)
    assert run["kind"] == "topics" and run["status"] == "complete"
    assert run["parameters"]["seed"] == 7 and run["parameters"]["guidance"] == "seed"
    stored = topics_store.topics()
    assert stored["topic"].tolist() == result.topics["topic"].tolist()
    assert stored["examples"].tolist() == result.topics["examples"].tolist()
    seg_topics = topics_store.segment_topics()
    assert len(seg_topics) == len(segs)
    sizes = seg_topics["topic"].value_counts().sort_index()
    assert sizes.to_dict() == dict(zip(stored["topic"], stored["size"]))
    real = result.topics[result.topics["topic"] >= 0]
    assert 3 <= len(real) <= 25
    # reduce_outliers: no big -1 bin
    assert (result.assignments == -1).sum() <= 0.1 * len(segs)
    for r in real.itertuples():
        assert r.keywords and 1 <= len(r.examples) <= 3 and len(set(r.examples)) == len(r.examples)
        assert set(r.examples) <= set(segs["text"])
        assert r.subcode.startswith(r.theme + ".")
    # the emergent threshold is calibrated on the codebook and recorded with the run
    params = run["parameters"]
    assert params["emergent_threshold"] == result.emergent["threshold"] != 0.55
    assert params["emergent_percentile"] == 5 and params["emergent_heldout"] > 100
    assert "held-out codebook examples" in params["emergent_rule"]


def test_emergent_is_the_calibrated_rule_on_each_topics_segments(fitted, sample_vectors,
                                                                   codebook, embedder,
                                                                   topics_store):
    from qual.embed import CachedEmbedder
    from qual.topics import covered_share, subcode_centroids

    result = fitted["result"]
    segs, vectors = sample_vectors
    _, centroids = subcode_centroids(codebook, CachedEmbedder(embedder, topics_store))
    unit = np.asarray(vectors) / np.linalg.norm(vectors, axis=1, keepdims=True)
    covered = covered_share(unit, centroids, result.assignments, result.emergent["threshold"])
    for r in result.topics[result.topics["topic"] >= 0].itertuples():
        assert r.emergent == (covered[r.topic] < 0.5), (r.topic, covered[r.topic])


#: texts no sub-code of a data-sharing codebook is about, and texts that are (written for
#: this test, not taken from the codebook)
OFF_CODEBOOK = [
    "Preheat the oven and grease the cake tin with a little butter.",
    "Whisk the eggs with the sugar until the mixture is pale and fluffy.",
    "Fold in the flour gently, then bake for forty minutes until golden.",
    "Leave the loaf to cool on a wire rack before you slice it.",
    "The striker scored twice in the second half to win the cup final.",
    "Our goalkeeper saved a penalty in extra time and the crowd went wild.",
    "The referee sent off their captain after a late tackle.",
    "We trained on the beach every morning before the season started.",
    "The tomatoes in my allotment ripened late because of the cold June.",
    "I repotted the orchids and moved them to the kitchen windowsill.",
    "We hiked up the ridge and camped by the lake under the stars.",
    "The ferry to the island was cancelled because of the storm.",
]
ON_CODEBOOK = [
    "Getting a data sharing agreement signed between two departments took eighteen months.",
    "We could not link the records because the datasets had no common identifier.",
    "The legal gateway for sharing the data was unclear, so the lawyers advised against it.",
    "People accept their records being used when they can see a clear public benefit.",
    "We simply did not have enough analysts with the skills to work with linked data.",
    "The metadata was so poor that nobody could tell what half of the fields meant.",
    "Every request for access went through three approval panels, which slowed us down.",
    "Senior leaders were nervous about the risk, so nobody wanted to be the first to share.",
    "Without agreed standards each department coded ethnicity in a different way.",
    "Our old systems could not talk to each other, so files were sent by email.",
    "We published what data we held and how it was used, to be open with the public.",
    "Staff were stretched so thin that the data work kept being put off.",
]


def test_the_emergent_threshold_comes_from_held_out_codebook_examples(codebook, embedder):
    from qual.topics import _subcode_vectors, calibrate_emergent, heldout_similarities

    rule = calibrate_emergent(codebook, embedder)
    _, _, groups = _subcode_vectors(codebook, embedder)
    sims = heldout_similarities(groups)
    assert rule["heldout"] == len(sims) == sum(len(g) for g in groups if len(g) > 1)
    assert abs((sims >= rule["threshold"]).mean() - 0.95) < 0.01     # 95% are at least as close
    assert calibrate_emergent(codebook, embedder, 25)["threshold"] > rule["threshold"]
    # one held-out example against the centroid of the rest, recomputed by hand
    g = groups[0]
    rest = g[1:].mean(axis=0)
    assert np.isclose(sims[0], g[0] @ rest / np.linalg.norm(rest), atol=1e-6)
    with pytest.raises(QualError, match="percentile"):
        calibrate_emergent(codebook, embedder, 120)


def test_a_topic_new_to_the_codebook_is_emergent_at_any_size(codebook, embedder):
    from qual.topics import calibrate_emergent, covered_share, subcode_centroids

    threshold = calibrate_emergent(codebook, embedder)["threshold"]
    _, centroids = subcode_centroids(codebook, embedder)
    off = np.asarray(embedder.encode(OFF_CODEBOOK))
    on = np.asarray(embedder.encode(ON_CODEBOOK))
    for n in (4, 12):                        # a small topic and a bigger one: the same answer
        vecs = np.vstack([off[:n], on[:n]])
        labels = np.array([0] * n + [1] * n)
        covered = covered_share(vecs, centroids, labels, threshold)
        assert covered[0] < 0.5 <= covered[1], (n, covered)
    # through a fit: the clusters of gardening, baking and football are emergent, the one
    # about data sharing is not
    texts = OFF_CODEBOOK + ON_CODEBOOK
    result = TopicModel(codebook, embedder, seed=3).fit(texts, np.vstack([off, on]))
    assert result.emergent["threshold"] == threshold
    for t in result.topics.itertuples():
        members = np.flatnonzero(result.assignments == t.topic)
        share_off = (members < len(OFF_CODEBOOK)).mean()
        if share_off >= 0.75:
            assert t.emergent, result.topics
        elif share_off <= 0.25:
            assert not t.emergent, result.topics
    assert result.topics["emergent"].any() and not result.topics["emergent"].all()


def test_topics_map_to_plausible_themes(fitted, embedder):
    topics = fitted["result"].topics
    topics = topics[topics["topic"] >= 0]
    words = topics["keywords"].str.split(", ")
    # the samples talk about linkage, identifiers, agreements, approvals, metadata ...
    technical = {"linkage", "match", "matching", "identifier", "identifiers", "metadata",
                 "agreement", "agreements", "sharing", "standards", "pipeline", "pipelines"}
    hits = topics[words.map(lambda ws: len(technical & set(ws[:5])) > 0)]
    assert len(hits) >= 2, topics[["keywords", "subcode"]]
    # a topic is the centroid of its segments, and a broad one ("risk, linkage, systems ...")
    # can sit nearer a public sub-code; most must land under processes or technical
    assert hits["theme"].isin(["processes", "technical"]).mean() >= 0.5, hits
    # the topic most about agreements (the word earliest in its keywords) is a process one;
    # a topic that only mentions an agreement beside pipelines may sit under technical
    rank = words.map(lambda ws: min([i for i, w in enumerate(ws[:3])
                                     if w in ("agreement", "agreements")] or [99]))
    assert rank.min() < 99, topics[["keywords", "subcode"]]
    assert topics.loc[rank.idxmin(), "theme"] == "processes", topics[["keywords", "theme"]]
    chatter = topics[words.map(lambda ws: bool({"sorry", "hear"} & set(ws[:3])))]
    assert chatter["emergent"].all()    # "sorry, can you hear me" is no code of ours
    # most topics are close to some sub-code; the mapping is not arbitrary
    assert (~topics["emergent"]).mean() >= 0.5
    assert keyword_coherence(topics, embedder) > 0.1


def test_same_seed_same_topics(sample_vectors, codebook, embedder, fitted, topics_store):
    from qual.embed import CachedEmbedder

    segs, vectors = sample_vectors
    encoder = CachedEmbedder(embedder, topics_store)
    again = TopicModel(codebook, encoder, seed=7).fit(segs["text"].tolist(), vectors)
    first = fitted["result"]
    assert np.array_equal(again.assignments, first.assignments)
    pd.testing.assert_frame_equal(again.topics, first.topics)


def test_one_short_transcript_gives_a_small_result(sample_vectors, codebook, embedder,
                                                   topics_store):
    from qual.embed import CachedEmbedder

    segs, vectors = sample_vectors
    one = (segs["document"] == segs["document"].iloc[0]).to_numpy()
    assert MIN_SEGMENTS <= one.sum() < SMALL_CORPUS
    result = TopicModel(codebook, CachedEmbedder(embedder, topics_store), seed=1).fit(
        segs.loc[one, "text"].tolist(), vectors[one])
    assert result.params.method == "kmeans"
    assert 2 <= len(result.topics) <= 5 and (result.assignments >= 0).all()
    assert result.topics["subcode"].str.contains(".", regex=False).all()
    # a few dozen segments where HDBSCAN finds no dense region: KMeans steps in, no traceback
    few = TopicModel(codebook, CachedEmbedder(embedder, topics_store), seed=1,
                     min_topic_size=40).fit(segs["text"].tolist()[:45], vectors[:45])
    assert (few.topics["topic"] >= 0).any()
    with pytest.raises(TooFewSegments, match="at least 12"):
        TopicModel(codebook, embedder).fit(segs["text"].tolist()[:8], vectors[:8])


def test_cli_writes_csv_and_refuses_tiny_stores_clearly(fitted, topics_store, tmp_path, capsys,
                                                        nlp):
    from qual.cli import main
    from qual.project import ingest
    from qual.store import Store

    out = tmp_path / "topics.csv"
    args = ["topics", "--db", str(topics_store.path), "--output", str(out), "--seed", "7"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "theme / sub-code" in printed and "left out" in printed and "topics.csv" in printed
    table = pd.read_csv(out)
    assert table.columns.tolist() == CSV_COLUMNS
    assert table["keywords"].tolist() == fitted["result"].topics["keywords"].tolist()
    # the count written is the count of topics printed; the -1 row is named, not counted
    n = int((table["topic"] >= 0).sum())
    assert f"{n} topics (" in printed
    wrote = next(line for line in printed.splitlines() if line.startswith("wrote "))
    if (table["topic"] == -1).any():
        assert wrote.startswith(f"wrote {n} topics and the outliers row (topic -1) to ")
    else:
        assert wrote.startswith(f"wrote {n} topics to ")

    tiny = tmp_path / "tiny.db"
    src = tmp_path / "tiny.txt"
    src.write_text("Interviewer: How is data shared?\nAlex: We sign an agreement with each "
                   "department before any data moves.\nInterviewer: Thanks.\nAlex: Yes.\n")
    with Store(tiny) as store:
        assert not ingest([src], store, nlp=nlp).failures
    assert main(["topics", "--db", str(tiny)]) == 1
    captured = capsys.readouterr()
    assert "at least 12 are needed" in captured.out and "Traceback" not in captured.err


def test_similarity_beside_the_emergent_flag_cannot_look_wrong():
    from qual.commands.topics import format_table
    from qual.topicview import similarity_text

    assert similarity_text(0.5498) == "0.549"     # emergent (< 0.55): never shown as 0.55
    assert similarity_text(0.55) == "0.550"
    assert similarity_text(0.6912) == "0.691"
    assert similarity_text(float("nan")) == ""
    topics = pd.DataFrame({"topic": [-1, 0, 1], "size": [3, 20, 15],
                           "keywords": ["um", "deaths, covid", "statistics"],
                           "theme": ["", "public", "public"],
                           "subcode": ["", "public.benefit", "public.transparency"],
                           "similarity": [float("nan"), 0.5498, 0.6912],
                           "emergent": [False, True, False]})
    lines = format_table(topics).splitlines()
    assert "EMERGENT near public.benefit" in lines[2] and "0.549" in lines[2]
    assert "0.55 " not in lines[2]
    assert "0.691" in lines[3]
    assert "(outliers)" in lines[1]


def test_loading_the_model_after_bertopic_prints_no_weights_bar():
    """``topics`` imports BERTopic (and so transformers) before the embedding model loads;
    transformers' own "Loading weights" tqdm bar must stay silent, as it does for ``code``."""
    import os

    from conftest import python_c

    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY")}
    script = ("from qual.topics import _import_bertopic_quietly\n"
              "_import_bertopic_quietly()\n"
              "from qual.embed import Embedder\n"
              "Embedder().model\n")
    result = python_c(script, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Loading weights" not in result.stderr, result.stderr[-2000:]


def test_the_number_of_topics_is_capped_from_the_corpus_size():
    from qual.topics import MAX_TOPICS, default_max_topics

    # 10,755 segments gave 159 topics before the cap; a reader now sees at most 40
    assert default_max_topics(10_755) == MAX_TOPICS == 40
    assert default_max_topics(10**6) == 40
    assert default_max_topics(3_000) == 30 and default_max_topics(548) == 20
    assert TopicParams.for_corpus(3_000).max_topics == 30
    assert TopicParams.for_corpus(3_000, max_topics=7).max_topics == 7     # --topics 7
    with pytest.raises(QualError, match="at least 1"):
        TopicParams.for_corpus(500, max_topics=0)


def test_more_clusters_than_the_cap_are_merged_whole(fitted, sample_vectors, codebook,
                                                     embedder, topics_store):
    """On the real samples: with --topics 2 the fit's clusters are merged into two topics, each
    a union of whole clusters (no segment leaves its cluster's company), outliers stay
    outliers, ids run 0..k-1 largest first, keywords and placement are for the merged topics."""
    from qual.embed import CachedEmbedder
    from qual.topics import merge_topics

    segs, vectors = sample_vectors
    before = fitted["result"].assignments
    found = len(set(before[before >= 0].tolist()))
    assert found > 2
    merged = merge_topics(before, vectors, 2)
    assert sorted(set(merged[merged >= 0].tolist())) == [0, 1]
    assert ((merged == -1) == (before == -1)).all()
    for t in set(before[before >= 0].tolist()):
        assert len(set(merged[before == t].tolist())) == 1
    sizes = [(merged == t).sum() for t in (0, 1)]
    assert sizes[0] >= sizes[1]
    np.testing.assert_array_equal(merge_topics(before, vectors, found), before)   # under the cap

    result = TopicModel(codebook, CachedEmbedder(embedder, topics_store), seed=7,
                        max_topics=2).fit(segs["text"].tolist(), vectors)
    shown = result.topics[result.topics["topic"] >= 0]
    assert shown["topic"].tolist() == [0, 1]
    assert result.params.max_topics == 2 and result.parameters()["max_topics"] == 2
    assert any("merged into 2 topics" in n for n in result.notes)
    assert shown["keywords"].str.len().gt(0).all() and shown["subcode"].str.contains(".").all()
    assert int(result.topics["size"].sum()) == len(segs)


def test_cli_topics_n_caps_the_table(topics_store, capsys):
    from qual.cli import main

    assert main(["topics", "--db", str(topics_store.path), "--seed", "7", "--topics", "3"]) == 0
    printed = capsys.readouterr().out
    assert "3 topics (" in printed and "merged into 3 topics" in printed


def test_topics_on_a_store_never_coded_use_the_default_encoder(tmp_path, nlp):
    """With no code run to follow, `topics` embeds with the default route (onnx), as `code`
    would, not with PyTorch: the store then holds one route's vectors, not two."""
    import sqlite3

    from conftest import SAMPLES
    from qual.cli import main
    from qual.project import ingest
    from qual.store import Store

    db = tmp_path / "qual.db"
    with Store(db) as store:
        files = sorted(SAMPLES.glob("interview_0[1-3]*"))
        assert not ingest(files, store, nlp=nlp).failures
    assert main(["topics", "--db", str(db), "--seed", "7"]) == 0
    with sqlite3.connect(db) as con:
        (name,), = con.execute("SELECT model_name FROM runs WHERE kind = 'topics'")
        keys = {k for (k,) in con.execute("SELECT DISTINCT model FROM embeddings")}
    assert name.endswith("all-MiniLM-L6-v2+onnx")
    assert keys and all("+onnx@" in k for k in keys)
