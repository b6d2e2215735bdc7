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
    from qual.commands.topics import find_topics

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
        assert r.emergent == (r.similarity < 0.55)


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
    from qual.cli import ingest, main
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
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY")}
    script = ("from qual.topics import _import_bertopic_quietly\n"
              "_import_bertopic_quietly()\n"
              "from qual.embed import Embedder\n"
              "Embedder().model\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=300)
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
    assert any(f"merged into 2 topics" in n for n in result.notes)
    assert shown["keywords"].str.len().gt(0).all() and shown["subcode"].str.contains(".").all()
    assert int(result.topics["size"].sum()) == len(segs)


def test_cli_topics_n_caps_the_table(topics_store, capsys):
    from qual.cli import main

    assert main(["topics", "--db", str(topics_store.path), "--seed", "7", "--topics", "3"]) == 0
    printed = capsys.readouterr().out
    assert "3 topics (" in printed and "merged into 3 topics" in printed
