"""qual.evaluate: metrics against hand-computed values, CSV validation, the CLI end to end."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from qual.evaluate import LabelledFileError, agreement, format_report, read_labelled_csv

THEMES = ["public", "people", "processes", "technical"]

GOLD = ["public", "people", "public;processes", "none", "technical"]
PRED = ["public", "processes", "public", "none", "people;technical"]
GOLD_POL = ["barrier", "opportunity", None, "neutral", "barrier"]
PRED_POL = ["barrier", "barrier", "barrier", "neutral", "opportunity"]


def test_agreement_matches_hand_computed_values():
    r = agreement(GOLD, PRED, THEMES, gold_polarity=GOLD_POL, predicted_polarity=PRED_POL)
    assert r["n"] == 5
    pub, peo, pro, tec = (r["themes"][t] for t in THEMES)
    # public: gold [1,0,1,0,0], predicted the same
    assert (pub["precision"], pub["recall"], pub["f1"], pub["support"]) == (1, 1, 1, 2)
    assert pub["kappa"] == pytest.approx(1.0) and pub["alpha"] == pytest.approx(1.0)
    # people: gold [0,1,0,0,0], predicted [0,0,0,0,1]: tp 0, fp 1, fn 1
    # po = 3/5, pe = .2*.2 + .8*.8 = .68, kappa = (.6 - .68) / .32 = -0.25
    assert (peo["precision"], peo["recall"], peo["f1"], peo["support"]) == (0, 0, 0, 1)
    assert peo["kappa"] == pytest.approx(-0.25)
    assert pro["kappa"] == pytest.approx(-0.25) and pro["f1"] == 0
    assert tec["f1"] == 1 and tec["kappa"] == pytest.approx(1.0)
    assert r["none"]["recall"] == 1 and r["none"]["support"] == 1
    assert r["macro_f1"] == pytest.approx((1 + 0 + 0 + 1) / 4)
    assert r["exact_match"] == pytest.approx(2 / 5)
    # label sets as nominal categories; coincidences: public-public 2, none-none 2,
    # people/processes 2, public;processes/public 2, technical/people;technical 2.
    # n_c: public 3, none 2, five others 1 -> De = (100 - 18) / 90, Do = 6/10
    assert r["alpha"] == pytest.approx(1 - 0.6 / (82 / 90))
    assert r["polarity_accuracy"] == pytest.approx(2 / 4) and r["polarity_n"] == 4
    text = format_report(r)
    assert "people" in text and "macro-F1" in text and "0.50" in text


def test_agreement_order_blank_and_absent_themes():
    r = agreement(["processes;public", ""], ["public;processes", "none"], THEMES)
    assert r["exact_match"] == 1.0 and r["alpha"] == pytest.approx(1.0)
    assert r["polarity_accuracy"] is None
    # a theme no gold row has is left out of macro-F1; its false positive shows in precision
    r = agreement(["public", "none"], ["public", "people"], THEMES)
    assert r["macro_f1"] == pytest.approx(1.0)
    assert r["themes"]["people"]["precision"] == 0 and r["none"]["recall"] == 0


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("content, expected", [
    ("text,labels\nhello,public\n", ["'themes'", "columns found: text, labels"]),
    ("text,themes\nhello,public\nworld,publik\n", ["row 2", "column 'themes'", "'publik'"]),
    ("text,themes\nhello,\n", ["row 1", "column 'themes'", "empty"]),
    ("text,themes\n ,public\n", ["row 1", "column 'text'"]),
    ("text,themes,polarity\na,public,barrier\nb,people,good\n",
     ["row 2", "column 'polarity'", "'good'"]),
    ("text,themes\na,none;public\n", ["row 1", "'none' cannot be combined"]),
    ("text,themes\n", ["no rows"]),
    ("", ["empty"]),
])
def test_bad_csv_names_row_and_column(tmp_path, content, expected):
    path = _write(tmp_path / "gold.csv", content)
    with pytest.raises(LabelledFileError) as e:
        read_labelled_csv(path, THEMES)
    for part in expected:
        assert part in str(e.value)
    assert "gold.csv" in str(e.value)


def test_read_labelled_csv_canonicalises(tmp_path):
    path = _write(tmp_path / "g.csv", "id,text,themes,polarity,extra\n"
                  "1,hello,technical; public,Barrier,x\n2,bye,none,,y\n")
    df = read_labelled_csv(path, THEMES)
    assert df["themes"].tolist() == ["public;technical", "none"]
    assert df["polarity"][0] == "barrier" and pd.isna(df["polarity"][1])
    with pytest.raises(LabelledFileError, match="no such file"):
        read_labelled_csv(tmp_path / "missing.csv", THEMES)


GOLD_CSV = """id,text,themes,polarity
g1,"People just don't trust the government with their data, and they say so at every public meeting we run.",public,barrier
g2,"The data sharing agreement took eighteen months to get through legal and information governance sign-off.",processes,barrier
g3,"Our legacy mainframe can't export anything except fixed-width files, and the identifiers don't match the other system.",technical,barrier
g4,"We simply don't have the analysts; half my team left last year and we can't recruit at civil service pay.",people,barrier
g5,"Thanks, yes, nice to meet you too. Shall we start?",none,neutral
"""


def test_cli_end_to_end(tmp_path, capsys, embedder):
    from qual.cli import main

    gold = _write(tmp_path / "gold.csv", GOLD_CSV)
    train = _write(tmp_path / "train.csv", "text,themes\nSkills are the bottleneck for us.,people\n"
                   # a row that is also in the gold is never learned from
                   "\"Thanks, yes, nice to meet you too. Shall we start?\",public\n")
    pred_path, json_path = tmp_path / "pred.csv", tmp_path / "m.json"
    rc = main(["evaluate", "--gold", str(gold), "--train", str(train),
               "--predictions", str(pred_path), "--json", str(json_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "macro-F1" in out and "kappa" in out and "1 row also in the gold file left out" in out
    pred = pd.read_csv(pred_path)
    assert pred["id"].tolist() == ["g1", "g2", "g3", "g4", "g5"]
    assert {"themes", "polarity", "gold_themes", "score_public", "score_none"} <= set(pred.columns)
    m = json.loads(json_path.read_text())
    assert m["n"] == 5 and m["training_rows"] == 1 and set(m["themes"]) == set(THEMES)
    assert m["macro_f1"] >= 0.5          # clear single-theme texts


def test_cli_bad_gold_is_one_clear_error(tmp_path, capsys):
    from qual.cli import main

    gold = _write(tmp_path / "gold.csv", "text,themes\nhello,public\nworld,data\n")
    rc = main(["evaluate", "--gold", str(gold)])
    err = capsys.readouterr().err
    assert rc == 2 and "row 2" in err and "column 'themes'" in err and "Traceback" not in err


def test_cli_with_store_uses_cache_and_reviewer_examples(tmp_path, capsys, coded_store):
    from qual.cli import main

    gold = _write(tmp_path / "gold.csv", GOLD_CSV)
    rc = main(["evaluate", "--gold", str(gold), "--db", str(coded_store.path)])
    out = capsys.readouterr().out
    assert rc == 0 and "reviewer decisions in" in out
