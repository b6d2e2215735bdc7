"""Segment boundaries a reviewer changes (split, merge, take back) and decisions that
follow a changed transcript to its new version — on a real coded store."""

import shutil

import pytest

from qual import review as R
from qual.agreement import agreement
from qual.project import code, ingest
from qual.lineage import match_segments, similarity
from qual.store import Store

from conftest import SAMPLES


# -- the matching itself ----------------------------------------------------------------------
def test_match_segments_pairs_equal_changed_inserted_and_deleted():
    old = ["We could not get the data.", "The legal gateway took a year.",
           "Nice weather today.", "Our staff lack the skills to link records."]
    new = ["We could not get the data.", "A new point nobody made before about lunch.",
           "The legal gateway took nearly a year.",
           "Our staff lack the skills to link records."]
    pairs = match_segments(old, new)
    assert (0, 0, True) in pairs and (3, 3, True) in pairs
    assert (2, 1, False) in pairs                          # changed a little: continues
    assert all(j != 1 for j, _, _ in pairs)                # inserted: continues nothing
    assert all(i != 2 for _, i, _ in pairs)                # deleted: continued by nothing
    assert similarity("a b c d", "a b c d") == 1.0 and similarity("a b", "x y") == 0.0


def test_match_segments_scales_to_a_recut_document():
    old = [f"sentence number {i} about linkage of records" for i in range(1500)]
    new = [f"sentence number {i} about the linkage of records" for i in range(1500)]
    pairs = match_segments(old, new)
    assert len(pairs) == 1500 and all(i == j for j, i, _ in pairs)


# -- split, merge, take back ------------------------------------------------------------------
def _long_segment(store):
    c = R.effective_coding(store)
    for r in c.sort_values("segment_id").itertuples():
        if len(R.split_points(r.text)) >= 2:
            return r
    raise AssertionError("no segment with two cut points in the samples")


def test_split_makes_two_segments_that_tile_the_old_one(coded_store):
    row = _long_segment(coded_store)
    sid = int(row.segment_id)
    R.apply_decision(coded_store, sid, "ann", "recode", themes=["people"], polarity="barrier")
    cut = R.split_points(row.text)[0]
    a, b = R.split_segment(coded_store, sid, cut, "ann", memo="two points here")
    doc = coded_store.document(int(row.document_id))["text"]
    c = R.effective_coding(coded_store).set_index("segment_id")
    assert sid not in c.index and a in c.index and b in c.index
    for new in (a, b):                                   # offsets stay sacred
        assert doc[c.loc[new, "start"]:c.loc[new, "end"]] == c.loc[new, "text"]
        assert c.loc[new, "text"] == c.loc[new, "text"].strip()
    assert c.loc[a, "start"] == row.start and c.loc[b, "end"] == row.end
    assert (c.loc[a, "text"] + " " + c.loc[b, "text"]).split() == row.text.split()
    # the old machine coding and the reviewer's decision carry over, flagged for a new look
    assert c.loc[a, "themes"] == "people" and c.loc[a, "polarity"] == "barrier"
    assert c.loc[a, "stale"] and c.loc[b, "stale"]
    assert c.loc[a, "machine_themes"] == row.machine_themes
    assert c.loc[a, "origin"] == "split"
    queue = R.review_queue(R.effective_coding(coded_store))
    assert {a, b} <= set(queue["segment_id"])
    log = coded_store.segment_decisions(sid)
    assert log["action"].tolist() == ["recode", "split"]
    assert log.iloc[-1]["memo"] == "two points here"
    assert log.iloc[-1]["after"]["into"] == [a, b]
    # a decision on a part is its own and is no longer stale
    R.apply_decision(coded_store, a, "ann", "accept")
    c = R.effective_coding(coded_store).set_index("segment_id")
    assert c.loc[a, "reviewed"] and not c.loc[a, "stale"]


def test_split_refuses_a_cut_without_words_on_both_sides(coded_store):
    row = _long_segment(coded_store)
    with pytest.raises(R.ReviewError, match="both parts"):
        R.split_segment(coded_store, int(row.segment_id), 0, "ann")
    with pytest.raises(R.ReviewError, match="both parts"):
        R.split_segment(coded_store, int(row.segment_id), len(row.text), "ann")
    with pytest.raises(R.ReviewError, match="name"):
        R.split_segment(coded_store, int(row.segment_id), R.split_points(row.text)[0], " ")
    assert len(coded_store.segment_decisions(int(row.segment_id))) == 0


def test_merge_neighbours_and_take_it_back(coded_store):
    c = R.effective_coding(coded_store, role=None)
    turn = c.groupby(["document_id", "turn_index"])["segment_id"].transform("size")
    multi = c[turn >= 3].sort_values(["document_id", "start"])
    first = multi.iloc[0]
    same = multi[(multi.document_id == first.document_id) & (multi.turn_index == first.turn_index)]
    s1, s2, s3 = (int(x) for x in same["segment_id"].iloc[:3])
    assert R.neighbours(coded_store, s2) == (s1, s3)
    with pytest.raises(R.ReviewError, match="neighbouring"):
        R.merge_segments(coded_store, [s1, s3], "bo")
    other = int(c[c.document_id != first.document_id].iloc[0].segment_id)
    with pytest.raises(R.ReviewError, match="same speaker turn"):
        R.merge_segments(coded_store, [s1, other], "bo")
    R.apply_decision(coded_store, s1, "bo", "reject")
    merged = R.merge_segments(coded_store, [s2, s1], "bo")
    after = R.effective_coding(coded_store, role=None).set_index("segment_id")
    doc = coded_store.document(int(first.document_id))["text"]
    assert s1 not in after.index and s2 not in after.index
    assert after.loc[merged, "start"] == same.iloc[0]["start"]
    assert after.loc[merged, "end"] == same.iloc[1]["end"]
    assert doc[after.loc[merged, "start"]:after.loc[merged, "end"]] == after.loc[merged, "text"]
    assert after.loc[merged, "origin"] == "merge"
    assert after.loc[merged, "themes"] == "none" and after.loc[merged, "stale"]
    with pytest.raises(R.ReviewError, match="already split or merged"):
        R.split_segment(coded_store, s1, 3, "bo")
    # take it back: the old segments return with their decisions; the log only grows
    n = coded_store.decision_count()
    assert sorted(R.take_back_boundary_change(coded_store, merged, "bo")) == [s1, s2]
    back = R.effective_coding(coded_store, role=None).set_index("segment_id")
    assert merged not in back.index and {s1, s2} <= set(back.index)
    assert back.loc[s1, "themes"] == "none" and back.loc[s1, "reviewed"]
    assert coded_store.decision_count() == n + 2
    with pytest.raises(R.ReviewError, match="already taken back"):
        R.take_back_boundary_change(coded_store, merged, "bo")
    # boundary changes are not coding decisions: agreement ignores them
    pairs = agreement(coded_store)["pairs"]
    assert pairs[pairs.coder_b == "bo"]["segments"].iloc[0] == 1


def test_recoding_codes_the_new_segments_and_keeps_every_decision(coded_store, embedder,
                                                                 codebook):
    row = _long_segment(coded_store)
    sid = int(row.segment_id)
    R.apply_decision(coded_store, sid, "ann", "recode", themes=["technical"])
    a, b = R.split_segment(coded_store, sid, R.split_points(row.text)[0], "ann")
    before = coded_store.decision_count()
    docs = coded_store.documents()["id"].tolist()
    code(coded_store, codebook, embedder, docs)
    c = R.effective_coding(coded_store).set_index("segment_id")
    latest = coded_store.latest_run("code")["id"]
    assert c.loc[a, "run_id"] == latest and c.loc[b, "run_id"] == latest   # coded for real
    assert c.loc[a, "themes"] == "technical"                               # decision kept
    assert coded_store.decision_count() == before


# -- a transcript that changes -------------------------------------------------------------------
def test_decisions_follow_a_changed_transcript_to_its_new_version(tmp_path, embedder, codebook,
                                                                  nlp):
    src = tmp_path / "interview.txt"
    shutil.copy(SAMPLES / "interview_01_central_department.txt", src)
    store = Store(tmp_path / "qual.db")
    try:
        report = ingest([src], store, nlp=nlp)
        code(store, codebook, embedder, report.document_ids)
        c = R.effective_coding(store).sort_values("start")
        kept, edited = c.iloc[2], c.iloc[5]
        R.apply_decision(store, int(kept.segment_id), "ann", "recode", themes=["public"],
                         polarity="opportunity")
        R.apply_decision(store, int(edited.segment_id), "ann", "reject", memo="chat")
        assert len(edited.text.split()) > 6
        text = src.read_text(encoding="utf-8")
        words = edited.text.split()
        changed = " ".join(words[:-2] + ["actually", "indeed"] + words[-2:])
        assert text.count(edited.text) == 1
        src.write_text(text.replace(edited.text, changed), encoding="utf-8")
        report = ingest([src], store, nlp=nlp)
        assert [s for *_, s in report.documents] == ["changed"]
        code(store, codebook, embedder, report.document_ids)
        new = R.effective_coding(store)
        assert set(new["document_id"]) == set(report.document_ids)       # the new version
        k = new[new.text == kept.text].iloc[0]
        e = new[new.text.str.contains("actually indeed", regex=False)].iloc[0]
        assert k.themes == "public" and k.polarity == "opportunity" and not k.stale
        assert e.themes == "none" and e.stale and e.memo == "chat"
        assert int(e.segment_id) in set(R.review_queue(new)["segment_id"])
        assert int(k.segment_id) not in set(R.review_queue(new)["segment_id"])
        # undo on the new version takes back the carried decision, in a new log entry
        R.apply_decision(store, int(k.segment_id), "ann", "undo")
        k2 = R.effective_coding(store).set_index("segment_id").loc[int(k.segment_id)]
        assert k2.source == "machine" and not k2.reviewed
        assert store.decision_count() == 3
    finally:
        store.close()


def test_a_version_2_store_is_brought_forward_with_its_segments(tmp_path):
    import sqlite3

    from qual.store import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for v in (1, 2):
        for statement in MIGRATIONS[v].split(";\n"):
            if statement.strip():
                conn.execute(statement)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    conn.execute("INSERT INTO documents (id, name, format, sha256, text, text_sha256, metadata,"
                 " version, parameters, ingested_at) VALUES (1, 'a.txt', 'txt', 'x',"
                 " 'A: Hello there.', 'y', '{}', 1, '{}', 'now')")
    conn.execute('INSERT INTO segments (id, document_id, idx, start, "end", text, text_sha256,'
                 " speaker, role, turn_index) VALUES (7, 1, 0, 3, 15, 'Hello there.', 'z', 'A',"
                 " 'stakeholder', 0)")
    conn.commit()
    conn.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 3
        seg = store.segments()
        assert seg["segment_id"].tolist() == [7]
        assert seg.iloc[0]["active"] == 1 and seg.iloc[0]["origin"] == "machine"
        assert store.parents().empty


def test_import_names_a_segment_split_since_the_export(coded_store, codebook, tmp_path):
    from qual.project import export_decisions, import_decisions

    row = _long_segment(coded_store)
    sid = int(row.segment_id)
    csv_path = tmp_path / "review.csv"
    export_decisions(coded_store, csv_path)
    a, b = R.split_segment(coded_store, sid, R.split_points(row.text)[0], "ann")
    text = csv_path.read_text(encoding="utf-8-sig").splitlines()
    line = next(i for i, t in enumerate(text, 1) if t.startswith(f"{sid},"))
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8-sig"))))
    for r in rows:
        if r["segment_id"] == str(sid):
            r.update(themes="processes", polarity="barrier", memo="late")
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    recorded, _, errors = import_decisions(coded_store, csv_path, "ann", codebook)
    assert recorded == 0 and len(errors) == 1
    assert errors[0][0] == line and errors[0][1] == "segment_id"
    assert f"continues as segment(s) {a}, {b}" in errors[0][2]


def test_other_segmentation_parameters_recut_a_stored_document(tmp_path, embedder, codebook,
                                                               nlp):
    from qual.segment import SegmentParams

    src = SAMPLES / "interview_01_central_department.txt"
    store = Store(tmp_path / "qual.db")
    try:
        report = ingest([src], store, nlp=nlp)
        code(store, codebook, embedder, report.document_ids)
        again = ingest([src], store, nlp=nlp)                     # same parameters: nothing
        assert [s for *_, s in again.documents] == ["unchanged"]
        first = R.effective_coding(store).sort_values("start")
        short = first[first.text.str.split().str.len() < 40].iloc[0]
        R.apply_decision(store, int(short.segment_id), "ann", "recode", themes=["people"])
        small = SegmentParams(max_sentences=1, max_words=40)
        recut = ingest([src], store, nlp=nlp, segment_params=small)
        assert [s for *_, s in recut.documents] == ["re-cut"]
        assert recut.document_ids == report.document_ids          # the same document
        code(store, codebook, embedder, recut.document_ids)
        after = R.effective_coding(store)
        assert len(after) > len(first)
        assert (after["text"].str.split().str.len() <= 40).mean() > 0.9
        doc = store.document(report.document_ids[0])
        assert doc["parameters"]["max_words"] == 40
        assert all(doc["text"][r.start:r.end] == r.text for r in after.itertuples())
        carried = after[after["reviewer"] == "ann"]
        assert len(carried) >= 1 and (carried["themes"] == "people").all()
        assert set(carried["text"]) <= set(short.text.split(". ")) | {short.text} or \
            all(t in short.text for t in carried["text"])
        assert [s for *_, s in ingest([src], store, nlp=nlp, segment_params=small).documents] \
            == ["unchanged"]
    finally:
        store.close()
