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


def test_add_code_from_a_stored_topic(coded_store, tmp_path, capsys):
    from qual.review import effective_coding

    folder = _copy_codebook(tmp_path)
    coding = effective_coding(coded_store)
    themed = coding[coding["themes"] != "none"].head(2)
    chat = coding[coding["themes"] == "none"].head(1)
    segs = pd.concat([themed, chat])
    run = coded_store.start_run("topics")
    topics = pd.DataFrame([{"topic": 4, "size": 3, "keywords": "funding, budget, money",
                            "theme": "processes", "subcode": "", "similarity": 0.41,
                            "emergent": True, "examples": segs["text"].tolist(), "label": ""}])
    coded_store.add_topics(run, topics, pd.DataFrame({"segment_id": segs["segment_id"], "topic": 4}))
    coded_store.finish_run(run)
    assert main(["codebook", "add-code", "--theme", "processes", "--id", "processes.funding",
                 "--from-topic", "4", "--db", str(coded_store.path), "--codebook", str(folder)]) == 0
    sub = load_codebook(folder).subcode("processes.funding")
    # the segment coded none (small talk) is not taught to the coder as an example
    assert sub.examples == themed["text"].tolist() and sub.name == "Funding"
    out = capsys.readouterr().out
    assert "left out 1 of topic 4's example segments because they are coded none" in out
    assert f"--codebook {folder}" in out                     # how to code with this copy


def test_add_code_errors_name_the_field(coded_store, tmp_path, capsys):
    folder = _copy_codebook(tmp_path)
    assert main(["codebook", "add-code", "--theme", "processes", "--id", "x", "--from-topic", "1",
                 "--db", str(coded_store.path), "--codebook", str(folder)]) == 2
    assert "--from-topic" in capsys.readouterr().err
    assert main(["codebook", "add-code", "--theme", "nosuch", "--id", "x", "--name", "X",
                 "--definition", "d", "--example", "e", "--codebook", str(folder)]) == 2
    assert "nosuch" in capsys.readouterr().err
    assert load_codebook(folder).version == load_codebook(REPO / "codebook").version


def test_add_code_keeps_the_files_comments_and_layout(tmp_path, capsys):
    folder = _copy_codebook(tmp_path)
    (path,) = list(folder.glob("*.yaml"))
    original = path.read_text(encoding="utf-8")
    before = load_codebook(folder)
    assert main(["codebook", "add-code", "--theme", "people", "--id", "turnover",
                 "--name", "Staff turnover", "--definition", "People leaving mid-project.",
                 "--example", "Half the team left in the spring, and the knowledge went too.",
                 "--codebook", str(folder)]) == 0
    assert "rewritten without its comments" not in capsys.readouterr().out
    text = path.read_text(encoding="utf-8")
    old_lines, new_lines = original.splitlines(), text.splitlines()
    it = iter(new_lines)                        # every old line is kept, in order
    assert all(any(line == n for n in it) for line in old_lines)
    assert len(new_lines) > len(old_lines)
    after = load_codebook(folder)
    people = [s.id for s in after.subcodes if after.theme_of(s.id) == "people"]
    assert people[-1] == "people.turnover"      # after the theme's last sub-code
    assert [s.id for s in after.subcodes if s.id != "people.turnover"] == before.subcode_ids
    assert after.version != before.version


def test_add_code_in_an_unusual_layout_rewrites_the_file(tmp_path, capsys):
    from qual.codebook import add_subcode, save_added_subcode

    shipped = load_codebook(REPO / "codebook")
    path = tmp_path / "flow.yaml"
    import yaml

    data = shipped.to_dict()
    path.write_text("# my notes\n" + yaml.safe_dump(data, default_flow_style=True, width=10 ** 6),
                    encoding="utf-8")
    new = add_subcode(load_codebook(path), "public", "media", "Media coverage",
                      "What the press says.", ["The papers ran it as a data grab."])
    written, kept = save_added_subcode(new, "public", "public.media", path)
    assert written == path and kept is False
    again = load_codebook(path)
    assert again.version == new.version and "public.media" in again.subcode_ids
