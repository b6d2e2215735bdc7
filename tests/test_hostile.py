"""Hostile inputs are bounded and get one line (issue 12): each test builds the attack in
tmp_path, runs the real component (the CLI in a subprocess with a memory limit where the attack
is about memory, a real SQLite store, the real app through streamlit.testing) and asserts the
safe outcome."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import docx
import pytest

from qual.codebook import load_codebook
from qual.errors import CodebookError
from qual.readers import read_transcript

from conftest import REPO

ENV = {**os.environ, "PYTHONPATH": str(REPO)}
TURNS = ("Interviewer: What slows data sharing down?\n\n"
         "Sam: The legal review takes months. Nobody owns the decision.\n\n"
         "Interviewer: And the public?\n\n"
         "Sam: People trust us if we are open about what we link.\n")
GIB = 1 << 30


def run_qual(*args, cwd, memory: int | None = GIB, timeout: float = 120):
    """``python -m qual ARGS`` as a user runs it, with an address-space limit; returns the
    completed process and the seconds it took."""
    def limit():
        if memory:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "qual", *map(str, args)], cwd=cwd, env=ENV,
                       preexec_fn=limit, capture_output=True, text=True, timeout=timeout)
    return r, time.perf_counter() - t0


def one_error_line(r) -> str:
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("qual: error: "), r.stderr
    return lines[0]


# -- 1. YAML alias bombs, recursive aliases, deep nesting ----------------------------------------
def alias_bomb(levels: int = 9) -> str:
    """The classic: each level lists the previous one nine times (9**9 strings in 600 bytes)."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


HOSTILE_YAML = {
    "bomb": (alias_bomb(), 1, "YAML aliases/anchors are not allowed in a codebook (found &l0)"),
    "recursive": ("name: x\nthemes: &t\n  - *t\n", 2,
                  "YAML aliases/anchors are not allowed in a codebook (found &t)"),
    "deep": ("name: x\nthemes: " + "[" * 100_000 + "]" * 100_000 + "\n", 2,
             "YAML nested more than 100 levels deep is not allowed in a codebook"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_YAML))
def test_a_hostile_codebook_is_refused_in_one_line_quickly_and_in_little_memory(tmp_path, kind):
    text, line, message = HOSTILE_YAML[kind]
    book = tmp_path / "codebook" / f"{kind}.yaml"
    book.parent.mkdir()
    book.write_text(text, encoding="utf-8")
    (tmp_path / "t.txt").write_text(TURNS, encoding="utf-8")
    r, took = run_qual("code", "t.txt", "--codebook", "codebook", cwd=tmp_path)
    assert r.returncode == 2 and took < 30, (r.stderr, took)
    assert one_error_line(r).startswith(f"qual: error: codebook/{kind}.yaml:{line}: {message}")
    assert not (tmp_path / "qual.db").exists()              # refused before anything was read
    with pytest.raises(CodebookError) as e:                   # the API says the same
        load_codebook(book)
    assert (e.value.line, e.value.message.split(":")[0]) == (line, message.split(":")[0])


def test_aliases_in_transcript_front_matter_are_refused_and_the_other_files_go_on(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    bomb = "\n".join("  " + ln for ln in alias_bomb().splitlines())
    (folder / "a.md").write_text(f"---\nsector: health\nbomb:\n{bomb}\n---\n\n{TURNS}",
                                 encoding="utf-8")
    (folder / "b.txt").write_text(TURNS, encoding="utf-8")
    # *emphasis* between two rules is not front matter at all: read as before
    (folder / "c.md").write_text(f"---\n*Interview notes*\n---\n\n{TURNS}", encoding="utf-8")
    r, took = run_qual("ingest", "t", cwd=tmp_path, memory=4 * GIB)   # spaCy needs ~2 GiB of it
    assert r.returncode == 1 and took < 60, r.stderr
    assert one_error_line(r) == ("qual: error: t/a.md:4: YAML aliases/anchors are not allowed "
                                 "in front matter (found &l0): write the text out in full")
    assert "documents read: 2 (2 new, 0 unchanged), failed: 1" in r.stdout


# -- 3. long Word documents ---------------------------------------------------------------------
def _conversation(n: int) -> list[tuple[str, str]]:
    return [("Interviewer", f"What happened in case {i}?") if i % 2 == 0 else
            ("Sam Okafor", f"We waited {i % 7 + 2} months for case {i}. Nobody owned it.")
            for i in range(n)]


def test_a_long_docx_reads_about_as_fast_as_the_same_text_and_gives_the_same_turns(tmp_path):
    turns = _conversation(4000)
    d = docx.Document()
    for speaker, text in turns:
        p = d.add_paragraph()
        p.add_run(f"{speaker}:").bold = True
        p.add_run(f" {text}")
    d.save(tmp_path / "long.docx")
    (tmp_path / "long.txt").write_text("\n\n".join(f"{s}: {t}" for s, t in turns) + "\n",
                                       encoding="utf-8")

    def best(path):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            t = read_transcript(path)
            times.append(time.perf_counter() - t0)
        return min(times), t

    t_docx, from_docx = best(tmp_path / "long.docx")
    t_txt, from_txt = best(tmp_path / "long.txt")
    assert from_docx.text == from_txt.text
    assert ([(t.speaker, t.role, t.start, t.end) for t in from_docx.turns]
            == [(t.speaker, t.role, t.start, t.end) for t in from_txt.turns])
    # 2x is the target (bench/docx_speed.py measures about 1.7x); the margin absorbs a
    # machine shared with other work. Before the fix this took over 60 times as long.
    assert t_docx < 3 * t_txt + 0.5, (t_docx, t_txt)


def test_the_docx_reader_reads_text_styles_and_bold_as_python_docx_does(tmp_path):
    """The reader walks the XML itself for speed; on varied formatting it must agree with
    python-docx's own Paragraph.text, Run.text, Run.bold/italic and styles."""
    from docx.enum.text import WD_BREAK
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    d = docx.Document()
    d.add_heading("A title", 0)
    d.add_heading("A section", 1)
    p = d.add_paragraph()
    p.add_run("Interviewer").bold = True
    p.add_run(":\twhat now?")
    p = d.add_paragraph()
    p.add_run("Ann Lee:").style = d.styles["Strong"]                 # bold by its style
    p.add_run(" a label in a bold character style")
    p = d.add_paragraph()
    p.add_run("Interviewer:").bold = False
    r = p.add_run(" line one")
    r.add_break()
    p.add_run("line two").add_break(WD_BREAK.PAGE)
    d.add_paragraph().add_run("(pause)").italic = True
    p = d.add_paragraph()
    p.add_run("Ann Lee:").style = d.styles["Emphasis"]               # italic by its style
    p.add_run(" see ")
    link = OxmlElement("w:hyperlink")
    lr, lt = OxmlElement("w:r"), OxmlElement("w:t")
    lt.text = "the link"
    lr.append(lt)
    link.append(lr)
    p._p.append(link)
    r = p.add_run("co")
    r._r.append(OxmlElement("w:noBreakHyphen"))
    b = OxmlElement("w:b")
    b.set(qn("w:val"), "off")
    r._r.get_or_add_rPr().append(b)
    d.add_paragraph("A quote", style="Quote")
    path = tmp_path / "rich.docx"
    d.save(path)

    _agrees_with_python_docx(path)

    # the styles part is read by finding each looked-up style's tag in its bytes; a part the
    # scan can't read exactly is parsed whole, and both give python-docx's answers: with a
    # comment (parsed whole), with another style made the paragraph default (the last
    # default wins, as python-docx has it) and with a bold character style as the default
    with zipfile.ZipFile(path) as z:
        styles = z.read("word/styles.xml").decode("utf-8")
    heading_default = styles.replace('w:styleId="Heading2"', 'w:styleId="Heading2" w:default="1"')
    assert heading_default != styles
    strong_default = styles.replace('w:styleId="Strong"', 'w:default="1" w:styleId="Strong"')
    assert strong_default != styles
    for variant in (styles.replace("<w:docDefaults>", "<!-- a note --><w:docDefaults>"),
                    heading_default, strong_default):
        _agrees_with_python_docx(_with_part(path, "word/styles.xml", variant.encode()))


def _with_part(path, name, data):
    """A copy of the .docx at ``path`` with its part ``name`` replaced by ``data``."""
    out = path.with_name(f"{path.stem}-{len(list(path.parent.iterdir()))}.docx")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, data if info.filename == name else src.read(info.filename))
    return out


def _agrees_with_python_docx(path):
    from qual.readers.docx import _DocxReader, _open_package

    document = docx.Document(str(path))
    with zipfile.ZipFile(path) as archive:
        _root, styles = _open_package(archive, path)
    reader = _DocxReader(styles)
    for para in document.paragraphs:
        text, runs, style_id = reader.paragraph(para._p)
        assert text == para.text
        assert reader.style_name(style_id) == para.style.name
        assert [r.text for r in runs] == [r.text for r in para.runs]
        for mine, theirs in zip(runs, para.runs):
            assert reader.is_bold(mine) == bool(theirs.bold or (theirs.bold is None and
                                                               theirs.style.font.bold))
            assert reader.is_italic(mine) == bool(theirs.italic or (theirs.italic is None and
                                                                   theirs.style.font.italic))


# -- 2. REFI-QDA imports: XXE, billion laughs, malformed XML, no project.qde, zip bombs ----------
QDC_NS = "urn:QDA-XML:codebook:1.0"


def _qdc(body: str, doctype: str = "") -> str:
    return (f'<?xml version="1.0"?>\n{doctype}\n<CodeBook xmlns="{QDC_NS}"><Codes>'
            f'{body}</Codes></CodeBook>\n')


def _zip_of_zeros(path: Path, name: str, size: int, declared: int | None = None) -> None:
    """A zip whose one entry ``name`` inflates to ``size`` zero bytes, written directly (a
    deflate block of 1 MiB of zeros, repeated), claiming ``declared`` bytes in its headers."""
    import struct
    import zlib

    mib = 1 << 20
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(b"\0" * mib) + c.flush(zlib.Z_FULL_FLUSH)
    data = block * (size // mib) + c.flush()
    usize = size if declared is None else declared
    crc = 0
    fname = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(data), usize,
                        len(fname), 0) + fname
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(data),
                          usize, len(fname), 0, 0, 0, 0, 0, 0) + fname
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central),
                      len(local) + len(data), 0)
    path.write_bytes(local + data + central + end)


def _hostile_imports(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, the one error line expected after 'qual: error: FILE')."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-PASSWORD", encoding="utf-8")
    files = {}

    def put(name, text, expected):
        f = tmp_path / name
        f.write_text(text, encoding="utf-8")
        files[name] = (f, expected)

    doctype = "the XML has a document type declaration (<!DOCTYPE>), which REFI-QDA files do not use"
    put("xxe.qdc", _qdc('<Code guid="1" name="x" isCodable="true"><Description>&e;</Description>'
                        '</Code>', f'<!DOCTYPE c [<!ENTITY e SYSTEM "file://{secret}">]>'),
        f": {doctype}")
    put("xxe_attr.qdc", _qdc('<Code guid="1" name="&e;" isCodable="true"/>',
                             f'<!DOCTYPE c [<!ENTITY e SYSTEM "file://{secret}">]>'),
        f": {doctype}")
    laughs = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{("&l%d;" % (i - 1)) * 10}">' for i in range(1, 10))
    put("laughs.qdc", _qdc('<Code guid="1" name="x" isCodable="true"><Description>&l9;'
                           '</Description></Code>', f"<!DOCTYPE c [{laughs}]>"),
        f": {doctype}")
    put("malformed.qdc", _qdc('<Code guid="1" name="x">\n'),
        ":4: not well-formed XML: Opening and ending tag mismatch: Code line 3 and Codes")
    put("not_xml.qdc", "name,definition\npublic,trust\n", ":1: not well-formed XML: ")
    import zipfile

    with zipfile.ZipFile(tmp_path / "no_project.qdpx", "w") as z:
        z.writestr("sources/a.txt", "hello")
    files["no_project.qdpx"] = (tmp_path / "no_project.qdpx",
                                ": this zip has no project.qde, so it is not a REFI-QDA project")
    _zip_of_zeros(tmp_path / "bomb.qdpx", "project.qde", 2 * GIB - (1 << 20))
    files["bomb.qdpx"] = (tmp_path / "bomb.qdpx",
                          ": its project.qde unpacks to 2,146,435,072 bytes, over qual's limit")
    _zip_of_zeros(tmp_path / "lying.qdpx", "project.qde", 512 << 20, declared=1000)
    files["lying.qdpx"] = (tmp_path / "lying.qdpx", ": cannot unpack this .qdpx: it is damaged")
    (tmp_path / "truncated.qdpx").write_bytes((tmp_path / "bomb.qdpx").read_bytes()[:5000])
    files["truncated.qdpx"] = (tmp_path / "truncated.qdpx",
                               ": this is the start of a zip (.qdpx) but the file is damaged")
    return files


def test_hostile_refi_qda_imports_each_get_one_line_quickly_and_disclose_nothing(tmp_path):
    files = _hostile_imports(tmp_path)
    assert (tmp_path / "bomb.qdpx").stat().st_size < 3_000_000          # 2 MB -> 2 GiB
    for name, (path, expected) in files.items():
        out = tmp_path / f"{name}.yaml"
        r, took = run_qual("codebook", "import", path.name, "--output", out.name, cwd=tmp_path)
        line = one_error_line(r)
        assert r.returncode == 2 and took < 30, (name, r.stderr, took)
        assert line.startswith(f"qual: error: {path.name}{expected}"), (name, line)
        assert "TOP-SECRET" not in r.stdout + r.stderr and not out.exists()


# -- 4. a damaged store, an empty or foreign file as a store ------------------------------------
def _damage(db: Path, table: str = "segments") -> None:
    """Overwrite the root page of ``table`` with garbage, as a failing disk or a bad copy
    would (the store is checkpointed first so that every page is in the main file)."""
    import sqlite3

    c = sqlite3.connect(db)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    root = c.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    page = c.execute("PRAGMA page_size").fetchone()[0]
    c.close()
    with open(db, "r+b") as f:
        f.seek(page * (root - 1))
        f.write(b"\xff" * page)


def test_a_damaged_store_is_one_line_in_every_command_and_a_short_message_in_the_app(
        coded_store, tmp_path, capsys, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from qual.cli import main
    from qual.store import Store, StoreDamaged

    db = coded_store.path
    coded_store.close()
    _damage(db)
    (tmp_path / "new.txt").write_text(TURNS, encoding="utf-8")
    expected = (f"qual: error: {db}: the store is damaged (database disk image is malformed): "
                "restore a backup")
    for args in (["export", "--format", "csv", "--output", str(tmp_path / "c.csv")],
                 ["export", "--format", "qdpx", "--output", str(tmp_path / "c.qdpx")],
                 ["summarise", "--output", str(tmp_path / "summary")],
                 ["agreement"],
                 ["decisions", "export", "--output", str(tmp_path / "d.csv")],
                 ["code", str(tmp_path / "new.txt")]):
        status = main([*args, "--db", str(db)])
        err = capsys.readouterr().err
        assert (status, err.strip()) == (2, expected), args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.txt", "qual.db"]  # no output
    with pytest.raises(StoreDamaged):                       # the API: a clear exception type
        Store(db).segments()
    with pytest.raises(StoreDamaged):                       # found at once when asked to check
        Store(db, check=True)

    monkeypatch.setenv("QUAL_DB", str(db))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [expected.removeprefix("qual: error: ")]


@pytest.mark.parametrize("content", [b"", b"name,themes\nnot a store\n"])
def test_an_empty_or_foreign_file_is_never_made_a_store(tmp_path, capsys, content):
    from qual.cli import main

    db = tmp_path / "qual.db"
    db.write_bytes(content)
    (tmp_path / "t.txt").write_text(TURNS, encoding="utf-8")
    why = ("is an empty file, not a qual store" if not content else
           "is not a qual store (not an SQLite database file)")
    for args in (["export", "--format", "csv", "--output", str(tmp_path / "c.csv")],
                 ["summarise", "--output", str(tmp_path / "summary")],
                 ["agreement"], ["decisions", "export", "--output", str(tmp_path / "d.csv")],
                 ["ingest", str(tmp_path / "t.txt")]):
        status = main([*args, "--db", str(db)])
        err = capsys.readouterr().err
        assert status == 2 and err.startswith(f"qual: error: {db}: {why}"), (args, err)
        assert err.count("\n") == 1
    assert db.read_bytes() == content                           # left exactly as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qual.db", "t.txt"]


def test_a_read_only_command_on_a_missing_store_creates_nothing(tmp_path, capsys):
    from qual.cli import main

    for command in ("agreement", "topics"):
        assert main([command, "--db", str(tmp_path / "none.db")]) == 2
        assert "no store here" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# -- 5. links out of the folder, control characters in file names --------------------------------
def test_links_out_of_the_folder_are_not_followed_but_listed(tmp_path):
    outside = tmp_path / "elsewhere"
    (outside / "private").mkdir(parents=True)
    secret = TURNS.replace("legal review", "SECRET-OUTSIDE review")
    (outside / "secret.txt").write_text(secret, encoding="utf-8")
    (outside / "private" / "more.txt").write_text(secret, encoding="utf-8")
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "a.txt").write_text(TURNS, encoding="utf-8")
    (folder / "link.txt").symlink_to(outside / "secret.txt")
    (folder / "linked_folder").symlink_to(outside / "private", target_is_directory=True)
    (folder / "same.txt").symlink_to("a.txt")                 # within the folder: fine, read once
    r, _ = run_qual("ingest", "t", cwd=tmp_path, memory=None)
    assert r.returncode == 0, r.stderr
    assert (f"skipped t/link.txt: a symbolic link to {outside / 'secret.txt'}, outside t; "
            "not followed") in r.stdout.splitlines()
    assert (f"skipped t/linked_folder: a symbolic link to {outside / 'private'}, outside t; "
            "not followed") in r.stdout.splitlines()
    assert "documents read: 1 (1 new, 0 unchanged), failed: 0" in r.stdout
    assert b"SECRET-OUTSIDE" not in (tmp_path / "qual.db").read_bytes()


def _side_file_folders(tmp_path) -> tuple[Path, Path]:
    """``t/`` with one transcript, and ``elsewhere/`` with a metadata.csv and a redact.txt
    that are not the folder's to read."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "metadata.csv").write_text("file,organisation\na.txt,SECRET-OUTSIDE-ORG\n",
                                          encoding="utf-8")
    (outside / "redact.txt").write_text("Sam\n", encoding="utf-8")
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "a.txt").write_text(TURNS, encoding="utf-8")
    return folder, outside


@pytest.mark.parametrize("name,options", [("metadata.csv", []), ("redact.txt", ["--redact"])])
def test_a_side_file_linked_from_outside_the_folder_is_refused_and_nothing_stored(
        tmp_path, name, options):
    folder, outside = _side_file_folders(tmp_path)
    (tmp_path / "first").mkdir()
    (tmp_path / "first" / "b.txt").write_text(TURNS.replace("months", "weeks"), encoding="utf-8")
    r, _ = run_qual("ingest", "first", *options, "--db", "qual.db", cwd=tmp_path, memory=None)
    assert r.returncode == 0, r.stderr
    (folder / name).symlink_to(outside / name)
    r, _ = run_qual("ingest", "t", *options, "--db", "qual.db", cwd=tmp_path, memory=None)
    assert r.returncode == 2
    assert one_error_line(r) == (
        f"qual: error: t/{name}: a symbolic link to {outside / name}, outside t; {name} is "
        "read only from within the transcripts' folder, so it is refused (put a copy of the "
        "file there instead)")
    assert _stored_names(tmp_path / "qual.db") == ["b.txt"]      # nothing of t/ was stored
    assert b"SECRET-OUTSIDE" not in (tmp_path / "qual.db").read_bytes()
    # a new store is not even made
    r, _ = run_qual("ingest", "t", *options, "--db", "new.db", cwd=tmp_path, memory=None)
    assert r.returncode == 2 and not (tmp_path / "new.db").exists(), r.stderr


def test_side_files_in_the_folder_or_linked_within_it_are_read(tmp_path):
    from qual.store import Store

    folder, _ = _side_file_folders(tmp_path)
    (folder / "meta").mkdir()
    (folder / "meta" / "cases.csv").write_text("file,organisation\na.txt,Inside Org\n",
                                               encoding="utf-8")
    (folder / "metadata.csv").symlink_to("meta/cases.csv")      # a link within the folder
    (folder / "redact.txt").write_text("Kofi\n", encoding="utf-8")  # a plain file
    (folder / "a.txt").write_text(TURNS + "\nSam: Kofi made a guide for it.\n", encoding="utf-8")
    r, _ = run_qual("ingest", "t", "--redact", cwd=tmp_path, memory=None)
    assert r.returncode == 0, r.stderr
    store = Store(tmp_path / "qual.db")
    try:
        docs = store.documents()
        assert list(docs["name"]) == ["a.txt"]
        assert docs["metadata"][0]["organisation"] == "Inside Org"
        text = store.document(int(docs["id"][0]))["text"]
    finally:
        store.close()
    assert "Kofi" not in text and "made a guide" in text


def test_control_characters_in_file_names_cannot_forge_output_lines(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "ok.txt").write_text(TURNS, encoding="utf-8")
    (folder / "copy\nqual: error: forged.txt").write_text(TURNS, encoding="utf-8")  # duplicate
    (folder / "bad\r\x1b[2Jname.txt").write_text("no turns here\n", encoding="utf-8")
    (folder / "notes\nfake.pdf").write_bytes(b"%PDF-1.4")
    r, _ = run_qual("ingest", "t", cwd=tmp_path, memory=None)
    assert r.returncode == 1, r.stderr
    out, err = r.stdout.splitlines(), r.stderr.splitlines()
    assert not any(ln.startswith("qual: error: forged") for ln in out + err)
    assert "\x1b" not in r.stdout + r.stderr and "\r" not in r.stdout + r.stderr
    assert len(err) == 1 and err[0].startswith("qual: error: t/bad\\r\\x1b[2Jname.txt: no speaker")
    assert any(ln.startswith("skipped t/ok.txt: duplicate of t/copy\\nqual: error: forged.txt")
               for ln in out)                          # (the copy sorts first, so it is read)
    assert "skipped t/notes\\nfake.pdf: unsupported file type '.pdf'" in out


# -- 6. a full disk during `code`; summarise leaves no folder -------------------------------------
def _file_size_limit(limit: int):
    """A real 'disk full' for one process: a file size limit (writes past it fail)."""
    def apply():
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def _stored_names(db) -> list[str]:
    import sqlite3

    c = sqlite3.connect(db)
    try:
        return [r[0] for r in c.execute("SELECT name FROM documents ORDER BY id")]
    finally:
        c.close()


def test_a_full_disk_while_storing_says_exactly_what_was_stored(tmp_path):
    import re

    folder = tmp_path / "t"
    folder.mkdir()
    for i in range(8):
        (folder / f"doc{i}.txt").write_text("\n".join(
            f"Interviewer: What slows sharing down in case {i}-{j}?\n\nSam{i}: The legal review "
            f"takes months in case {i}-{j}. Nobody owns the decision.\n" for j in range(60)),
            encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "qual", "code", "t", "--db", "qual.db",
                        "--encoder", "fp32"],        # no model export to write (test below)
                       cwd=tmp_path, env=ENV, preexec_fn=_file_size_limit(400_000),
                       capture_output=True, text=True, timeout=300)
    line = one_error_line(r)
    assert r.returncode == 2 and "nothing was written" not in line, line
    m = re.search(r"; (\d+) document\(s\) were stored before the stop, whole \(the last: "
                  r"(doc\d\.txt); none coded yet\); t/(doc\d\.txt) was not stored, nor the "
                  r"(\d+) file\(s\) after it; fix that and run the command again", line)
    assert m, line
    stored, last, failed, after = int(m[1]), m[2], m[3], int(m[4])
    names = _stored_names(tmp_path / "qual.db")
    assert 0 < stored < 8 and names == [f"doc{i}.txt" for i in range(stored)]   # what it says
    assert last == names[-1] and failed == f"doc{stored}.txt" and after == 7 - stored


def test_a_full_disk_while_building_the_model_export_is_one_line(tmp_path):
    """The default route exports the model once per user (~90 MB). A disk that fills (here a
    file size limit) while it is written is one error line naming the cache folder and the
    way out; no store is started and no half-written export is left to be trusted later."""
    cache = tmp_path / "cache"
    env = {**ENV, "QUAL_CACHE_DIR": str(cache)}
    from conftest import SAMPLES

    sample = SAMPLES / "interview_01_central_department.txt"
    r = subprocess.run([sys.executable, "-m", "qual", "code", str(sample), "--db", "qual.db"],
                       cwd=tmp_path, env=env, preexec_fn=_file_size_limit(5_000_000),
                       capture_output=True, text=True, timeout=300)
    line = one_error_line(r)
    assert r.returncode == 2, line
    assert "cannot build the onnx export" in line and str(cache / "onnx") in line, line
    assert "--encoder fp32" in line and "nothing was kept" in line
    assert not (tmp_path / "qual.db").exists()
    assert list((cache / "onnx").iterdir()) == []


def test_a_full_disk_while_coding_says_the_run_is_unused(coded_store, tmp_path):
    import re
    import sqlite3

    from conftest import SAMPLES

    db = coded_store.path
    coded_store.close()
    c = sqlite3.connect(db)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")              # the WAL starts empty
    c.close()
    files = [SAMPLES / "interview_01_central_department.txt",
             SAMPLES / "interview_04_devolved_statistics.docx",
             SAMPLES / "interview_05_data_engineering.vtt"]
    # --encoder fp32: the route coded_store's vectors were made with, so the run writes its
    # documents and codes (not a new route's codebook vectors) when the limit hits
    r = subprocess.run([sys.executable, "-m", "qual", "code", *map(str, files), "--db", str(db),
                        "--encoder", "fp32"],
                       cwd=tmp_path, env=ENV, preexec_fn=_file_size_limit(40_000),
                       capture_output=True, text=True, timeout=300)
    line = one_error_line(r)
    m = re.search(r"the 3 document\(s\) of this run are stored, but coding stopped after \d+ of "
                  r"\d+ segments: run (\d+) is incomplete and none of its codes are used", line)
    assert r.returncode == 2 and m, line
    c = sqlite3.connect(db)
    status = dict(c.execute("SELECT id, status FROM runs").fetchall())
    c.close()
    assert status[int(m[1])] != "complete" and status[1] == "complete"


def test_summarise_that_fails_leaves_no_folder(coded_store, tmp_path, capsys):
    from qual.cli import main

    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    out = tmp_path / "summary"
    assert main(["summarise", "--db", str(coded_store.path), "--output", str(out),
                 "--codebook", str(bad)]) == 2
    assert "invalid YAML" in capsys.readouterr().err
    assert not out.exists()


# -- 7. sessions of a removed reviewer; a password file others can read ---------------------------
FAST = {"n": 2 ** 10}                    # scrypt parameters small enough for tests


def test_a_removed_reviewers_session_stores_nothing(coded_store, tmp_path):
    from qual import access as A
    from qual.review import apply_decision

    pw = tmp_path / "qual-reviewers.toml"
    A.add_reviewer(pw, "ann", "correct horse battery", params=FAST)
    A.add_reviewer(pw, "ben", "correct horse battery", params=FAST)
    sid = int(coded_store.segments(role="stakeholder")["segment_id"].iloc[0])
    assert A.still_reviewer(pw, "ben") and A.still_reviewer(None, "anyone")
    apply_decision(A.for_session(coded_store, pw, "ben"), sid, "ben", "accept")
    A.remove_reviewer(pw, "ben")
    assert not A.still_reviewer(pw, "ben")
    with pytest.raises(A.SessionEnded, match="no longer a reviewer"):
        apply_decision(A.for_session(coded_store, pw, "ben"), sid, "ben", "reject")
    apply_decision(A.for_session(coded_store, pw, "ann"), sid, "ann", "reject")
    assert coded_store.decisions()[["reviewer", "action"]].values.tolist() == [
        ["ben", "accept"], ["ann", "reject"]]
    pw.write_text("not toml [", encoding="utf-8")               # unreadable: fail closed
    assert not A.still_reviewer(pw, "ann")


def test_the_app_ends_a_removed_reviewers_session(coded_store, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from qual import access as A

    pw = tmp_path / "qual-reviewers.toml"
    A.add_reviewer(pw, "ben", "correct horse battery", params=FAST)
    monkeypatch.setenv("QUAL_DB", str(coded_store.path))
    monkeypatch.setenv("QUAL_ACCESS", str(pw))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    at.text_input(key="login_name").input("ben")
    at.text_input(key="login_password").input("correct horse battery")
    at.button[0].click().run()
    assert not at.exception and any(b.key == "accept" for b in at.button)
    A.remove_reviewer(pw, "ben")                     # while ben's page is open
    at.button(key="accept").click().run()
    assert not at.exception
    assert coded_store.decisions().empty                        # nothing stored as ben
    assert not any(b.key == "accept" for b in at.button)        # the sign-in form instead
    assert any(t.key == "login_name" for t in at.text_input)


def test_review_warns_when_the_password_file_is_readable_by_others(coded_store, tmp_path):
    from qual import access as A

    from conftest import serve_review

    pw = tmp_path / "qual-reviewers.toml"
    A.add_reviewer(pw, "ann", "correct horse battery", params=FAST)
    assert A.privacy_warning(pw) is None
    os.chmod(pw, 0o644)
    assert "can be read by other users (mode 644)" in A.privacy_warning(pw)
    with serve_review(coded_store.path, tmp_path, "--access", str(pw)) as (_, _, log):
        pass
    text = Path(log).read_text()
    assert (f"qual: warning: {pw} can be read by other users (mode 644): its password hashes "
            f"can be attacked offline; run: chmod 600 {pw}") in text
