"""Review logic on a real coded store: the queue, decisions, undo, the append-only log,
re-running ``code``, agreement, and the decisions CSV import / export."""

import sqlite3

import pandas as pd
import pytest

from qual import review as R
from qual.agreement import agreement
from qual.project import export_decisions, import_decisions
from qual.errors import QualError


def test_queue_least_confident_first_and_unreviewed_only(coded_store):
    coding = R.effective_coding(coded_store)
    q = R.review_queue(coding)
    assert len(q) == len(coding) and not q["reviewed"].any()
    conf = q["confidence"].dropna().to_numpy()
    assert (conf[:-1] <= conf[1:]).all()
    R.apply_decision(coded_store, int(q.segment_id[0]), "ann", "accept")
    coding = R.effective_coding(coded_store)
    q2 = R.review_queue(coding)
    assert len(q2) == len(q) - 1 and q2.segment_id[0] == q.segment_id[1]
    done = R.review_queue(coding, reviewed=True)
    assert done["segment_id"].tolist() == [q.segment_id[0]]
    assert len(R.review_queue(coding, reviewed=None)) == len(coding)


def test_queue_filters(coded_store, codebook):
    coding = R.effective_coding(coded_store)
    q = R.review_queue(coding, themes=["people"], reviewed=None)
    assert len(q) and q["themes"].str.split(";").map(lambda t: "people" in t).all()
    q = R.review_queue(coding, themes="none", reviewed=None)
    assert len(q) and (q["themes"] == "none").all()
    sub = codebook.subcode_ids[0]
    q = R.review_queue(coding, subcodes=[sub], reviewed=None)
    assert q["subcodes"].str.split(";").map(lambda s: sub in s).all()
    q = R.review_queue(coding, polarity=["barrier"], reviewed=None)
    assert len(q) and (q["polarity"] == "barrier").all()
    q = R.review_queue(coding, min_confidence=0.4, max_confidence=0.6, reviewed=None)
    assert q["confidence"].between(0.4, 0.6).all()
    doc = int(coding["document_id"].iloc[0])
    q = R.review_queue(coding, document_ids=[doc], reviewed=None)
    assert len(q) and (q["document_id"] == doc).all()
    q = R.review_queue(coding, order="document", reviewed=None)
    assert q[["document", "start"]].equals(q.sort_values(["document", "start"])[["document", "start"]])
    with pytest.raises(R.ReviewError):
        R.review_queue(coding, order="nonsense")


def _row(store, sid):
    c = R.effective_coding(store)
    return c[c.segment_id == sid].iloc[0]


def test_accept_reject_recode_undo(coded_store, codebook):
    coding = R.effective_coding(coded_store)
    row = coding[coding["themes"] != "none"].iloc[0]
    sid = int(row.segment_id)
    R.apply_decision(coded_store, sid, "ann", "accept")
    r = _row(coded_store, sid)
    assert r.source == "reviewer" and r.reviewed and r.themes == row.themes and r.reviewer == "ann"

    R.apply_decision(coded_store, sid, "ann", "reject", memo="small talk")
    r = _row(coded_store, sid)
    assert r.themes == "none" and r.subcodes == "" and r.memo == "small talk"

    sub = codebook.theme("people").subcodes[0].id
    R.apply_decision(coded_store, sid, "bob", "recode", themes=["public"], subcodes=[sub],
                     polarity="barrier", codebook=codebook)
    r = _row(coded_store, sid)
    assert r.themes == "public;people" and r.subcodes == sub and r.polarity == "barrier"

    R.apply_decision(coded_store, sid, "bob", "undo")          # back to the reject
    assert _row(coded_store, sid).themes == "none"
    R.apply_decision(coded_store, sid, "bob", "undo")          # back to the accept
    r = _row(coded_store, sid)
    assert r.themes == row.themes and r.reviewed
    R.apply_decision(coded_store, sid, "bob", "undo")          # back to the machine
    r = _row(coded_store, sid)
    assert r.source == "machine" and not r.reviewed and r.themes == row.themes
    with pytest.raises(R.ReviewError, match="nothing to undo"):
        R.apply_decision(coded_store, sid, "bob", "undo")
    log = R.decision_log(coded_store, sid)
    assert log["action"].tolist() == ["accept", "reject", "recode", "undo", "undo", "undo"]


def test_bad_decisions_refused(coded_store, codebook):
    sid = int(R.effective_coding(coded_store).segment_id[0])
    with pytest.raises(R.ReviewError, match="name"):
        R.apply_decision(coded_store, sid, " ", "accept")
    with pytest.raises(R.ReviewError, match="unknown action"):
        R.apply_decision(coded_store, sid, "ann", "maybe")
    with pytest.raises(R.ReviewError, match="unknown theme"):
        R.apply_decision(coded_store, sid, "ann", "recode", themes=["weather"], codebook=codebook)
    with pytest.raises(R.ReviewError, match="polarity"):
        R.apply_decision(coded_store, sid, "ann", "recode", themes=["public"], polarity="meh")
    with pytest.raises(R.ReviewError, match="no segment"):
        R.apply_decision(coded_store, 10**9, "ann", "accept")
    assert R.decision_log(coded_store).empty


def test_decisions_are_append_only(coded_store):
    sid = int(R.effective_coding(coded_store).segment_id[0])
    R.apply_decision(coded_store, sid, "ann", "reject")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        coded_store.conn.execute("UPDATE decisions SET reviewer='mallory'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        coded_store.conn.execute("DELETE FROM decisions")
    assert R.decision_log(coded_store)["reviewer"].tolist() == ["ann"]


def test_rerunning_code_keeps_decisions(coded_store, codebook, embedder):
    from qual.project import code

    coding = R.effective_coding(coded_store)
    coded = coding[coding["themes"] != "none"]
    rejected, recoded = int(coded.segment_id.iloc[0]), int(coded.segment_id.iloc[1])
    R.apply_decision(coded_store, rejected, "ann", "reject")
    R.apply_decision(coded_store, recoded, "ann", "recode", themes=["technical"],
                     polarity="opportunity", codebook=codebook)
    before_log = R.decision_log(coded_store)
    ids = coded_store.documents()["id"].tolist()
    result = code(coded_store, codebook, embedder, ids)
    assert result["reviewer_examples"] == 2
    after = R.effective_coding(coded_store)
    assert (after["run_id"] == result["run_id"]).all()        # the machine coding is the new run's
    r = after.set_index("segment_id")
    assert r.loc[rejected, "themes"] == "none" and r.loc[rejected, "source"] == "reviewer"
    assert r.loc[recoded, "themes"] == "technical" and r.loc[recoded, "polarity"] == "opportunity"
    pd.testing.assert_frame_equal(R.decision_log(coded_store), before_log)


def test_stale_decision_is_kept_and_flagged(coded_store):
    sid = int(R.effective_coding(coded_store).segment_id[0])
    coded_store.add_decision(sid, "ann", "reject", {}, {"themes": [], "subcodes": [],
                                                         "polarity": "neutral"},
                             text_sha256="0" * 64)
    r = _row(coded_store, sid)
    assert r.stale and r.themes == "none"


def test_memos(coded_store):
    sid = int(R.effective_coding(coded_store).segment_id[0])
    R.add_memo(coded_store, "ann", "check with the team", segment_id=sid)
    m = R.memos(coded_store, segment_id=sid)
    assert m["text"].tolist() == ["check with the team"] and m["author"].tolist() == ["ann"]
    with pytest.raises(R.ReviewError):
        R.add_memo(coded_store, "ann", "  ")


def test_overview_counts(coded_store, codebook):
    coding = R.effective_coding(coded_store)
    ov = R.theme_overview(coding, coded_store.documents(), codebook.theme_ids).set_index("theme")
    people = coding[coding["themes"].str.split(";").map(lambda t: "people" in t)]
    assert ov.loc["people", "segments"] == len(people)
    assert ov.loc["people", "documents"] == people["document_id"].nunique()
    assert ov.loc["people", "barrier"] == (people["polarity"] == "barrier").sum()
    assert ov["reviewed"].eq(0).all()


def test_agreement_machine_and_reviewers(coded_store, codebook):
    q = R.review_queue(R.effective_coding(coded_store))
    ids = [int(s) for s in q.segment_id[:6]]
    for sid in ids[:3]:
        R.apply_decision(coded_store, sid, "ann", "accept")
    for sid in ids[3:]:
        R.apply_decision(coded_store, sid, "ann", "reject")
    for sid in ids:
        R.apply_decision(coded_store, sid, "bob", "recode", themes=["public"], codebook=codebook)
    res = agreement(coded_store, codebook.theme_ids)
    pairs = res["pairs"].set_index(["coder_a", "coder_b"])
    assert set(pairs.index) == {("machine", "ann"), ("machine", "bob"), ("ann", "bob")}
    assert pairs.loc[("ann", "bob"), "segments"] == 6
    k = pairs.loc[("machine", "ann"), "kappa_public"]
    assert k != k or -1 <= k <= 1          # NaN (n/a) when neither coded public on these six
    assert "alpha" in pairs.columns
    dis = res["disagreements"]
    assert len(dis[(dis.coder_a == "ann") & (dis.coder_b == "bob")]) >= 3


def test_decisions_export_import(coded_store, codebook, tmp_path):
    out = tmp_path / "decisions.csv"
    n = export_decisions(coded_store, out)
    df = pd.read_csv(out, dtype=str).fillna("")
    assert n == len(df) and list(df.columns[:4]) == ["segment_id", "themes", "polarity", "memo"]
    coded = df[df["themes"] != "none"].index
    sub = codebook.theme("technical").subcodes[0].id
    df.loc[coded[0], ["themes", "polarity"]] = [f"technical;{sub}", "barrier"]
    df.loc[coded[1], "themes"] = "none"
    df.loc[coded[2], "themes"] = "weather"
    df.loc[coded[3], "polarity"] = "meh"
    df.loc[coded[4], "segment_id"] = "abc"
    df.loc[coded[5], "memo"] = "agreed"
    df.to_csv(out, index=False)
    recorded, skipped, errors = import_decisions(coded_store, out, "carol", codebook)
    assert recorded == 3 and skipped == len(df) - 6
    assert [(line, col) for line, col, _ in errors] == [
        (coded[2] + 2, "themes"), (coded[3] + 2, "polarity"), (coded[4] + 2, "segment_id")]
    r = R.effective_coding(coded_store).set_index("segment_id")
    first, second = int(df.loc[coded[0], "segment_id"]), int(df.loc[coded[1], "segment_id"])
    assert r.loc[first, "themes"] == "technical" and r.loc[first, "subcodes"] == sub
    assert r.loc[first, "polarity"] == "barrier" and r.loc[second, "themes"] == "none"
    assert set(R.decision_log(coded_store)["reviewer"]) == {"carol"}
    # importing the same file again adds nothing (the bad rows are reported again)
    n = coded_store.decision_count()
    again = import_decisions(coded_store, out, "carol", codebook)
    assert again[0] == 0 and len(again[2]) == 3 and coded_store.decision_count() == n
    # a sub-code written before its theme, or a theme left implied, is the same coding
    df.loc[coded[0], "themes"] = f"{sub}"
    df.to_csv(out, index=False)
    assert import_decisions(coded_store, out, "carol", codebook)[0] == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("segment,theme\n1,public\n")
    assert import_decisions(coded_store, bad, "carol", codebook)[2][0][:2] == (1, "segment_id")
    with pytest.raises(QualError):
        import_decisions(coded_store, tmp_path / "missing.csv", "carol", codebook)


def test_decisions_cli(coded_store, tmp_path, capsys):
    from qual.cli import main

    out = tmp_path / "d.csv"
    assert main(["decisions", "export", "--db", str(coded_store.path), "--output", str(out)]) == 0
    df = pd.read_csv(out, dtype=str).fillna("")
    df.loc[0, "polarity"] = "sideways"
    df.to_csv(out, index=False)
    rc = main(["decisions", "import", str(out), "--db", str(coded_store.path), "--reviewer", "dan"])
    captured = capsys.readouterr()
    assert rc == 1 and "line 2, column polarity" in captured.err
    assert "0 decisions" in captured.out


def test_two_reviewers_at_once_lose_nothing(coded_store):
    import threading

    from qual.store import Store

    ids = [int(s) for s in R.effective_coding(coded_store).segment_id[:40]]
    errors = []

    def work(name, part):
        try:
            with Store(coded_store.path) as s:
                for sid in part:
                    R.apply_decision(s, sid, name, "reject" if sid % 2 else "accept")
        except Exception as e:          # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=("ann", ids[:20])),
               threading.Thread(target=work, args=("bob", ids[10:40]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    log = R.decision_log(coded_store)
    assert len(log) == 50 and (log["reviewer"] == "ann").sum() == 20
    assert R.effective_coding(coded_store)["reviewed"].sum() == 40


def test_review_refuses_to_listen_beyond_this_machine(coded_store, capsys):
    from qual.cli import main

    assert main(["review", "--db", str(coded_store.path), "--address", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0" in err and "--address" in err


def test_queue_by_stakeholder_group(coded_store):
    docs = coded_store.documents()
    fields = R.group_fields(docs)
    assert fields[:2] == ["stakeholder_group", "sector"]   # from the samples' metadata.csv
    coding = R.with_groups(R.effective_coding(coded_store), docs, "sector")
    meta = dict(zip(docs["id"], docs["metadata"]))
    assert (coding["group"] == coding["document_id"].map(lambda d: meta[d]["sector"])).all()
    q = R.review_queue(coding, order="group")
    groups = q["group"].tolist()
    assert groups == sorted(groups) and len(set(groups)) >= 2
    for _, part in q.groupby("group", sort=False):     # least confident first within a group
        conf = part["confidence"].dropna().to_numpy()
        assert (conf[:-1] <= conf[1:]).all()
    one = groups[0]
    only = R.review_queue(coding, groups=[one])
    assert len(only) == groups.count(one) and (only["group"] == one).all()
    none = R.with_groups(R.effective_coding(coded_store), docs, "no_such_field")
    assert (none["group"] == "(not given)").all()
    with pytest.raises(R.ReviewError, match="with_groups"):
        R.review_queue(R.effective_coding(coded_store), order="group")


def test_blind_decisions_and_blind_only_agreement(coded_store, capsys):
    from qual.cli import main

    coding = R.effective_coding(coded_store)
    q = R.review_queue(coding, order="random")
    assert sorted(q["segment_id"]) == sorted(coding["segment_id"])
    assert q["segment_id"].tolist() == R.review_queue(coding, order="random")["segment_id"].tolist()
    assert q["segment_id"].tolist() != sorted(q["segment_id"])
    a, b = int(q.segment_id[0]), int(q.segment_id[1])
    with pytest.raises(R.ReviewError, match="blind"):
        R.apply_decision(coded_store, a, "ann", "accept", blind=True)
    R.apply_decision(coded_store, a, "ann", "recode", themes=["public"], blind=True)
    R.apply_decision(coded_store, b, "ann", "accept")
    every = agreement(coded_store)["pairs"].set_index("coder_b")
    blind = agreement(coded_store, blind_only=True)["pairs"].set_index("coder_b")
    assert every.loc["ann", "segments"] == 2 and blind.loc["ann", "segments"] == 1
    assert main(["agreement", "--blind-only", "--db", str(coded_store.path)]) == 0
    out = capsys.readouterr().out
    assert "machine" in out and "ann" in out
