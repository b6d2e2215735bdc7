"""Reviewer passwords (qual.access, ``python -m qual reviewers``) and the review app's refusal
to listen beyond this machine without them. Real files and real processes."""

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from qual import access
from qual.errors import QualError

from conftest import REPO, free_port, serve_review

FAST = {"n": 2 ** 10, "r": 8, "p": 1}          # cheap parameters where speed is all that matters
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _qual(*args, input=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "qual", *args], input=input, cwd=cwd or REPO,
                          env=ENV, capture_output=True, text=True, timeout=120)


def test_hash_round_trip_wrong_password_and_fresh_salts():
    a = access.hash_password("correct horse")          # the default (OWASP) parameters
    assert access.verify_password("correct horse", a)
    assert not access.verify_password("correct hors", a)
    assert not access.verify_password("", a)
    b = access.hash_password("correct horse")
    assert a["salt"] != b["salt"] and a["hash"] != b["hash"]
    assert "correct horse" not in repr(a)
    assert (a["n"], a["r"], a["p"]) == (access.SCRYPT["n"], access.SCRYPT["r"], access.SCRYPT["p"])


def test_file_holds_only_hashes_with_their_parameters_and_mode_0600(tmp_path):
    f = tmp_path / "qual-reviewers.toml"
    assert access.add_reviewer(f, "Ann Smith", "s3cret-pass", params=FAST) is True
    assert access.add_reviewer(f, 'Bo "B" Ng', "another-pass", params=FAST) is True
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    text = f.read_text()
    assert "s3cret-pass" not in text and "another-pass" not in text
    data = tomllib.loads(text)
    assert set(data["reviewers"]) == {"Ann Smith", 'Bo "B" Ng'}
    assert data["reviewers"]["Ann Smith"]["n"] == FAST["n"]
    assert access.list_reviewers(f) == ["Ann Smith", 'Bo "B" Ng']
    assert access.check_login(f, "Ann Smith", "s3cret-pass")
    assert access.check_login(f, " Ann Smith ", "s3cret-pass")
    assert not access.check_login(f, "Ann Smith", "another-pass")
    assert not access.check_login(f, "nobody", "s3cret-pass")
    # replacing a password: the old one stops working; the file stays 0600 with no temp files
    assert access.add_reviewer(f, "Ann Smith", "changed-pass", params=FAST) is False
    assert access.check_login(f, "Ann Smith", "changed-pass")
    assert not access.check_login(f, "Ann Smith", "s3cret-pass")
    access.remove_reviewer(f, 'Bo "B" Ng')
    assert access.list_reviewers(f) == ["Ann Smith"]
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qual-reviewers.toml"]
    with pytest.raises(QualError, match="no reviewer 'zed'"):
        access.remove_reviewer(f, "zed")
    with pytest.raises(QualError, match="too short"):
        access.add_reviewer(f, "Cy", "short")


@pytest.mark.parametrize("body, line, words", [
    ('format = 1\n\n[reviewers."ann"\nscheme = "scrypt"\n', 3, "TOML"),
    ('format = 1\n\n[reviewers."ann"]\nscheme = "md5"\n', 3, "scheme"),
    ('format = 1\n\n[reviewers."ann"]\nscheme = "scrypt"\nn = 1000\nr = 8\np = 1\n'
     'salt = "00"\nhash = "00"\n', 3, "power of 2"),
    ('format = 7\n', 1, "unknown format"),
])
def test_malformed_file_names_the_file_line_and_fault(tmp_path, body, line, words):
    f = tmp_path / "team.toml"
    f.write_text(body, encoding="utf-8")
    with pytest.raises(access.AccessError) as e:
        access.load(f)
    msg = str(e.value)
    assert msg.startswith(f"{f}:{line}: ") and words in msg, msg
    with pytest.raises(access.AccessError):
        access.check_login(f, "ann", "whatever1")


def test_loopback_and_the_environment_contract():
    assert access.is_loopback("127.0.0.1") and access.is_loopback("localhost")
    assert access.is_loopback("::1") and access.is_loopback("127.0.0.2")
    assert not access.is_loopback("0.0.0.0") and not access.is_loopback("192.168.1.5")
    assert not access.access_required("127.0.0.1") and access.access_required("0.0.0.0")
    assert access.access_required("127.0.0.1", "team.toml")
    assert access.access_path_from_env({}) is None
    assert str(access.access_path_from_env({access.ENV_VAR: "/x/r.toml"})) == "/x/r.toml"


def test_cli_add_with_password_stdin_then_list_and_refusals(tmp_path):
    db = tmp_path / "qual.db"
    r = _qual("reviewers", "add", "ann", "--password-stdin", "--db", str(db),
              input="a-long-password\n")
    assert r.returncode == 0, r.stderr
    f = tmp_path / "qual-reviewers.toml"            # beside the store by default
    assert "added reviewer ann" in r.stdout and str(f) in r.stdout
    assert "a-long-password" not in r.stdout + r.stderr + f.read_text()
    assert access.check_login(f, "ann", "a-long-password")
    r = _qual("reviewers", "list", "--db", str(db))
    assert r.returncode == 0 and "ann" in r.stdout and "1 reviewer" in r.stdout
    r = _qual("reviewers", "add", "bo", "--password-stdin", "--db", str(db), input="short\n")
    assert r.returncode == 2 and "at least 8 characters" in r.stderr
    assert r.stderr.count("\n") == 1
    r = _qual("reviewers", "add", "bo", "--db", str(db), input="")   # no terminal to ask on
    assert r.returncode == 2 and "--password-stdin" in r.stderr
    other = tmp_path / "team.toml"
    r = _qual("reviewers", "add", "cy", "--password-stdin", "--file", str(other),
              input="another-password\n")
    assert r.returncode == 0 and access.list_reviewers(other) == ["cy"]
    assert access.list_reviewers(f) == ["ann"]


def test_review_refuses_a_network_address_without_passwords(coded_store):
    db = coded_store.path
    r = _qual("review", "--db", str(db), "--address", "0.0.0.0", "--port", str(free_port()))
    assert r.returncode == 2
    assert "refusing to listen on 0.0.0.0" in r.stderr
    assert "python -m qual reviewers add NAME" in r.stderr
    assert str(db.parent / "qual-reviewers.toml") in r.stderr
    # an empty password file is no better
    (db.parent / "qual-reviewers.toml").write_text("format = 1\n")
    r = _qual("review", "--db", str(db), "--address", "0.0.0.0", "--port", str(free_port()))
    assert r.returncode == 2 and "has no reviewers" in r.stderr


def test_review_on_a_network_address_starts_with_a_password_file(coded_store, tmp_path):
    f = tmp_path / "team.toml"
    access.add_reviewer(f, "ann", "a-long-password", params=FAST)
    with serve_review(coded_store.path, tmp_path, "--address", "0.0.0.0", "--access", str(f),
                      env=ENV) as (_, proc, _log):
        # the app (the child of `qual review`) was given the password file
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        env = Path(f"/proc/{children[0]}/environ").read_bytes().split(b"\0")
        assert f"{access.ENV_VAR}={f}".encode() in env
    out = (tmp_path / "review.log").read_text()
    assert "a password is required" in out and str(f) in out
    assert "reachable from other machines" in out


def test_two_processes_adding_reviewers_at_once_lose_none(tmp_path):
    f = tmp_path / "team.toml"
    script = ("import sys\nfrom qual import access\nfor i in range(15):\n"
              "    access.add_reviewer(sys.argv[1], f'{sys.argv[2]}{i}', 'password123',"
              " params={'n': 1024, 'r': 8, 'p': 1})\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(f), who], env=ENV)
             for who in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(access.list_reviewers(f)) == 30
    assert stat.S_IMODE(f.stat().st_mode) == 0o600


def test_wrong_passwords_lock_a_name_out_for_a_while(tmp_path):
    from qual import access as A

    path = tmp_path / "qual-reviewers.toml"
    A.add_reviewer(path, "gus", "right-password-1", params={"n": 2 ** 10, "r": 8, "p": 1})
    t = 1000.0
    for i in range(A.MAX_FAILURES):
        assert not A.check_login(path, "gus", f"wrong {i}", now=t + i)
    with pytest.raises(A.LoginThrottled, match="try again in"):
        A.check_login(path, "gus", "right-password-1", now=t + A.MAX_FAILURES)  # even right
    assert A.check_login(path, "other", "x", now=t + 6) is False            # per name
    later = t + A.MAX_FAILURES + A.LOCKOUT + 1
    assert A.check_login(path, "gus", "right-password-1", now=later)        # lockout over
    assert not A._failures.get("gus")                                         # and reset
