"""`python -m qual codebook add-code`: promoting an emergent topic to a sub-code."""

import shutil

import pandas as pd

from qual.cli import main
from qual.codebook import load_codebook

from conftest import REPO


def _copy_codebook(tmp_path):
    folder = tmp_path / "codebook"
    shutil.copytree(REPO / "codebook", folder)
    return folder


def test_add_code_with_examples_writes_the_yaml(tmp_path, capsys):
    folder = _copy_codebook(tmp_path)
    before = load_codebook(folder)
    status = main(["codebook", "add-code", "--theme", "processes", "--id", "funding",
                   "--name", "Funding of sharing work", "--definition", "Who pays for it.",
                   "--example", "Nobody budgets for the linkage itself.",
                   "--example", "The money runs out before the agreement is signed.",
                   "--codebook", str(folder)])
    assert status == 0
    after = load_codebook(folder)
    assert "processes.funding" in after.subcode_ids and after.version != before.version
    assert after.subcode("processes.funding").examples[0] == "Nobody budgets for the linkage itself."
    assert after.theme_of("processes.funding") == "processes"
    assert "processes.funding" in capsys.readouterr().out


def test_add_code_from_a_stored_topic(coded_store, tmp_path):
    folder = _copy_codebook(tmp_path)
    segs = coded_store.segments().head(3)
    run = coded_store.start_run("topics")
    topics = pd.DataFrame([{"topic": 4, "size": 3, "keywords": "funding, budget, money",
                            "theme": "processes", "subcode": "", "similarity": 0.41,
                            "emergent": True, "examples": segs["text"].tolist(), "label": ""}])
    coded_store.add_topics(run, topics, pd.DataFrame({"segment_id": segs["segment_id"], "topic": 4}))
    coded_store.finish_run(run)
    assert main(["codebook", "add-code", "--theme", "processes", "--id", "processes.funding",
                 "--from-topic", "4", "--db", str(coded_store.path), "--codebook", str(folder)]) == 0
    sub = load_codebook(folder).subcode("processes.funding")
    assert sub.examples == segs["text"].tolist() and sub.name == "Funding"


def test_add_code_errors_name_the_field(coded_store, tmp_path, capsys):
    folder = _copy_codebook(tmp_path)
    assert main(["codebook", "add-code", "--theme", "processes", "--id", "x", "--from-topic", "1",
                 "--db", str(coded_store.path), "--codebook", str(folder)]) == 2
    assert "--from-topic" in capsys.readouterr().err
    assert main(["codebook", "add-code", "--theme", "nosuch", "--id", "x", "--name", "X",
                 "--definition", "d", "--example", "e", "--codebook", str(folder)]) == 2
    assert "nosuch" in capsys.readouterr().err
    assert load_codebook(folder).version == load_codebook(REPO / "codebook").version
