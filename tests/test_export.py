"""CSV and XLSX exports: the column contract, provenance, atomic writes."""

from __future__ import annotations

import pandas as pd
import pytest

from qual.cli import main
from qual.export import ExportError, atomic_path, write_csv

CONTRACT = ["segment_id", "document", "speaker", "role", "start", "end", "text", "themes"]


def test_csv_keeps_the_column_contract_and_states_provenance(coded_store, codebook, tmp_path,
                                                             capsys):
    out = tmp_path / "coded.csv"
    assert main(["export", "--db", str(coded_store.path), "--output", str(out)]) == 0
    df = pd.read_csv(out)
    assert list(df.columns[:len(CONTRACT)]) == CONTRACT
    assert [c for c in df.columns if c.startswith("score_")] == \
        [f"score_{t}" for t in codebook.theme_ids]
    assert {"source", "run_id", "codebook_version", "redacted"} <= set(df.columns)
    run = coded_store.latest_run()
    assert set(df["run_id"]) == {run["id"]}
    assert set(df["codebook_version"]) == {run["codebook_version"]}
    assert "case_sector" in df.columns
    printed = capsys.readouterr().out
    assert f"run: {run['id']}" in printed and "redaction: not redacted" in printed


def test_xlsx_has_about_segments_theme_and_quote_sheets(coded_store, codebook, tmp_path):
    from openpyxl import load_workbook

    out = tmp_path / "coded.xlsx"
    assert main(["export", "--db", str(coded_store.path), "--format", "xlsx",
                 "--output", str(out)]) == 0
    wb = load_workbook(out, read_only=True)
    assert wb.sheetnames == ["about", "segments", *codebook.theme_ids, "quotes", "log"]
    about = dict(list(wb["about"].values)[1:])
    run = coded_store.latest_run()
    assert about["run"] == run["id"]
    assert about["codebook version (run)"] == run["codebook_version"]
    assert about["redaction"] == "not redacted"
    # every exported segment is counted, and those coded `none` are told apart
    segments = list(wb["segments"].values)
    themes = [r[segments[0].index("themes")] for r in segments[1:]]
    none = sum(1 for t in themes if t == "none")
    assert none > 0
    assert about["segments"] == len(themes)
    assert about["coded with a theme"] == len(themes) - none
    assert about["coded none (no theme)"] == none
    assert "coded segments" not in about
    header = next(wb["segments"].values)
    assert list(header[:len(CONTRACT)]) == CONTRACT
    for t in codebook.theme_ids:
        rows = list(wb[t].values)[1:]
        i = header.index("themes")
        assert rows and all(t in r[i].split(";") for r in rows)
    quotes = list(wb["quotes"].values)
    assert len(quotes) > 1
    docs = {d["name"]: d["id"] for d in coded_store.documents().to_dict("records")}
    qh = quotes[0]
    for r in quotes[1:]:
        q = dict(zip(qh, r))
        text = coded_store.document(docs[q["document"]])["text"]
        assert text[q["start"]:q["end"]] == q["text"]


def test_export_into_missing_folder_makes_it(coded_store, tmp_path):
    out = tmp_path / "missing" / "deeper" / "coded.xlsx"
    assert main(["export", "--db", str(coded_store.path), "--output", str(out)]) == 0
    assert out.exists()


def test_export_that_fails_in_a_missing_folder_leaves_no_folder(tmp_path):
    from qual.export import atomic_path

    out = tmp_path / "missing" / "deeper" / "coded.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(out, ".csv") as tmp:
            tmp.write_text("half")
            raise RuntimeError("stopped")
    assert not (tmp_path / "missing").exists()


def test_failed_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "x.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target, ".csv") as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"                # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]   # no temporary left over
    (tmp_path / "file").write_text("")               # a file where the folder should be
    with pytest.raises(ExportError):
        write_csv(pd.DataFrame({"a": [1]}), tmp_path / "file" / "y.csv")


def test_qdc_export_needs_no_store(tmp_path):
    out = tmp_path / "cb.qdc"
    assert main(["export", "--format", "qdc", "--db", str(tmp_path / "none.db"),
                 "--output", str(out)]) == 0
    assert out.read_bytes().startswith(b"<?xml")
    assert not (tmp_path / "none.db").exists()


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    import os

    out = write_csv(pd.DataFrame({"a": [1]}), tmp_path / "m.csv")
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
