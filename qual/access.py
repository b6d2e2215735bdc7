"""Reviewer passwords for the review app when it listens beyond this machine.

The passwords live in a small TOML file in the project folder (by default
``qual-reviewers.toml`` beside the store). It holds, per reviewer, a salted scrypt hash and the
scrypt parameters used for it, never the password::

    # qual reviewer passwords: scrypt hashes, never the passwords themselves.
    format = 1

    [reviewers."ann"]
    scheme = "scrypt"
    n = 32768
    r = 8
    p = 3
    salt = "9f0c..."          # 16 random bytes per reviewer, hex
    hash = "4b1e..."          # 32 bytes, hex
    created = "2026-11-24T20:00:00+00:00"

Each hash records its own parameters, so :data:`SCRYPT` can be raised later and older entries
still verify. The file is written atomically (temporary file, then rename) with mode 0600.

The app's login gate uses :func:`access_path_from_env` (the review command passes the file in
the environment variable :data:`ENV_VAR`) and :func:`check_login`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import stat
import tomllib
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .errors import QualError

ENV_VAR = "QUAL_ACCESS"                 # set by `python -m qual review` for the app
DEFAULT_NAME = "qual-reviewers.toml"
MIN_PASSWORD = 8
FORMAT = 1
# OWASP's scrypt settings (N=2^15, r=8, p=3): about 32 MB and a quarter of a second per check.
SCRYPT = {"n": 2 ** 15, "r": 8, "p": 3}
SALT_BYTES = 16
HASH_BYTES = 32
# Bounds on parameters read from a file, so a tampered file cannot make a login take forever.
_LIMITS = {"n": 2 ** 20, "r": 32, "p": 16}


class AccessError(QualError):
    """The reviewer password file is missing, malformed, or a request about it is invalid."""


# -- hashing ----------------------------------------------------------------------------------
def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int = HASH_BYTES) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen,
                          maxmem=128 * r * n * 2 + 1024 * 1024 * 64)


def hash_password(password: str, *, params: dict | None = None) -> dict:
    """A new entry for ``password``: scheme, scrypt parameters, a fresh random salt, the hash."""
    params = {**SCRYPT, **(params or {})}
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, params["n"], params["r"], params["p"])
    return {"scheme": "scrypt", "n": params["n"], "r": params["r"], "p": params["p"],
            "salt": salt.hex(), "hash": digest.hex()}


def verify_password(password: str, entry: dict) -> bool:
    """Whether ``password`` matches a stored entry (constant-time comparison)."""
    expected = bytes.fromhex(entry["hash"])
    digest = _scrypt(password, bytes.fromhex(entry["salt"]), entry["n"], entry["r"], entry["p"],
                     dklen=len(expected))
    return hmac.compare_digest(digest, expected)


# -- the file ---------------------------------------------------------------------------------
def default_path(db) -> Path:
    """The password file of the project whose store is ``db``: beside the store."""
    return Path(db).resolve().parent / DEFAULT_NAME


def check_name(name: str) -> str:
    """A reviewer name as stored: stripped, 1-100 characters, no control characters."""
    clean = (name or "").strip()
    if not clean:
        raise AccessError("a reviewer name must not be empty", field="name")
    if len(clean) > 100 or any(ord(c) < 32 or ord(c) == 127 for c in clean):
        raise AccessError("a reviewer name must be at most 100 characters, without control "
                          "characters", field="name")
    return clean


def check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise AccessError(f"the password is too short: use at least {MIN_PASSWORD} characters",
                          field="password")
    return password


def _line_of(text: str, pattern: str) -> int | None:
    for i, line in enumerate(text.splitlines(), start=1):
        if re.search(pattern, line):
            return i
    return None


def load(path) -> dict[str, dict]:
    """The reviewers in a password file: name -> entry. A missing file has no reviewers; a
    malformed one is an :class:`AccessError` naming the file, and the line and field where
    they can be found."""
    path = Path(path)
    if not path.exists():
        return {}
    if path.is_dir():
        raise AccessError("is a folder, expected a reviewer password file", path=path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise AccessError(f"cannot read the reviewer password file: {e.strerror or e}",
                          path=path) from None
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise AccessError("the reviewer password file is not UTF-8 text", path=path) from None
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise AccessError(f"not a valid reviewer password file (TOML): {msg}", path=path,
                          line=int(m.group(1)) if m else None) from None
    fmt = data.get("format", FORMAT)
    if fmt != FORMAT:
        raise AccessError(f"unknown format {fmt!r} (this qual reads format {FORMAT})",
                          path=path, line=_line_of(text, r"^\s*format\s*="), field="format")
    reviewers = data.get("reviewers", {})
    if not isinstance(reviewers, dict):
        raise AccessError("expected a table of reviewers", path=path,
                          line=_line_of(text, r"^\s*reviewers\s*="), field="reviewers")
    out = {}
    for name, entry in reviewers.items():
        line = _line_of(text, r"^\s*\[\s*reviewers\s*\.\s*" + re.escape(json.dumps(
            name, ensure_ascii=False)) + r"\s*\]") or _line_of(text, re.escape(name))
        out[name] = _check_entry(entry, path, line, name)
    return out


def _check_entry(entry, path: Path, line: int | None, name: str) -> dict:
    def bad(field, why):
        return AccessError(f"reviewer {name!r}: {why}", path=path, line=line, field=field)

    if not isinstance(entry, dict):
        raise bad(None, "expected a table with scheme, n, r, p, salt and hash")
    if entry.get("scheme") != "scrypt":
        raise bad("scheme", f"unknown scheme {entry.get('scheme')!r} (expected 'scrypt')")
    for key in ("n", "r", "p"):
        v = entry.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= _LIMITS[key]:
            raise bad(key, f"expected a whole number from 1 to {_LIMITS[key]}, got {v!r}")
    if entry["n"] < 2 or entry["n"] & (entry["n"] - 1):
        raise bad("n", f"must be a power of 2, got {entry['n']}")
    for key, size in (("salt", SALT_BYTES), ("hash", HASH_BYTES)):
        v = entry.get(key)
        try:
            ok = isinstance(v, str) and len(bytes.fromhex(v)) >= size
        except ValueError:
            ok = False
        if not ok:
            raise bad(key, f"expected at least {size} bytes as hex")
    return dict(entry)


def _toml_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)      # a JSON string is a TOML basic string here


def _render(reviewers: dict[str, dict]) -> str:
    lines = ["# qual reviewer passwords: salted scrypt hashes, never the passwords themselves.",
             "# Manage with: python -m qual reviewers add|remove|list",
             f"format = {FORMAT}", ""]
    for name in sorted(reviewers):
        e = reviewers[name]
        lines.append(f"[reviewers.{_toml_string(name)}]")
        for key in ("scheme", "n", "r", "p", "salt", "hash", "created"):
            if key in e:
                v = e[key]
                lines.append(f"{key} = {v}" if isinstance(v, int) else
                             f"{key} = {_toml_string(str(v))}")
        lines.append("")
    return "\n".join(lines)


def _write(path: Path, reviewers: dict[str, dict]) -> None:
    """Atomically replace ``path`` (mode 0600) with the reviewers."""
    from .atomic import write_text_atomic

    write_text_atomic(path, _render(reviewers), mode=0o600, make_folder=False,
                      what="the reviewer password file", error=AccessError)


@contextmanager
def _exclusive(path: Path):
    """Hold an exclusive lock on the file's folder while reading, changing and writing the
    file, so two `reviewers add` at once cannot lose one of the changes (Linux/macOS)."""
    try:
        import fcntl
        fd = os.open(path.parent, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def add_reviewer(path, name: str, password: str, *, params: dict | None = None) -> bool:
    """Add a reviewer, or replace their password. Returns True if the reviewer is new."""
    path = Path(path)
    name = check_name(name)
    check_password(password)
    entry = hash_password(password, params=params)
    with _exclusive(path):
        reviewers = load(path)
        new = name not in reviewers
        reviewers[name] = {**entry,
                           "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        _write(path, reviewers)
    return new


def remove_reviewer(path, name: str) -> None:
    path = Path(path)
    name = (name or "").strip()
    with _exclusive(path):
        reviewers = load(path)
        if name not in reviewers:
            known = ", ".join(sorted(reviewers)) or "none"
            raise AccessError(f"no reviewer {name!r} (reviewers: {known})", path=path)
        del reviewers[name]
        _write(path, reviewers)


def list_reviewers(path) -> list[str]:
    return sorted(load(path))


def file_is_private(path) -> bool:
    """Whether only the owner can read the file (mode has no group/other bits)."""
    try:
        return os.stat(path).st_mode & 0o077 == 0
    except OSError:
        return True


def privacy_warning(path) -> str | None:
    """A one-line warning when the password file can be read by group or others (its hashes
    can then be attacked offline), else None."""
    path = Path(path)
    if not path.exists() or file_is_private(path):
        return None
    mode = stat.S_IMODE(os.stat(path).st_mode)
    return (f"{path} can be read by other users (mode {mode:o}): its password hashes can be "
            f"attacked offline; run: chmod 600 {path}")


# -- sessions -----------------------------------------------------------------------------------
class SessionEnded(AccessError):
    """The signed-in reviewer was removed from the password file since signing in."""


def still_reviewer(path, name: str | None) -> bool:
    """Whether a session signed in as ``name`` may go on: ``name`` is still in the password
    file at ``path``, read now. Without a password file (``path`` None: the app serves this
    machine only, without sign-in) there is no session to end. A file that cannot be read
    ends every session (fail closed)."""
    if path is None:
        return True
    if not (name or "").strip():
        return False
    try:
        return name.strip() in load(path)
    except AccessError:
        return False


def require_reviewer(path, name: str | None) -> None:
    """:class:`SessionEnded` unless :func:`still_reviewer`."""
    if not still_reviewer(path, name):
        raise SessionEnded(f"'{(name or '').strip()}' is no longer a reviewer (removed from "
                           "the password file): nothing was stored and this session has "
                           "ended; sign in again")


class _SignedInStore:
    """A store for one write of a signed-in session (see :func:`for_session`)."""

    def __init__(self, store, path, name):
        self._store, self._path, self._name = store, path, name
        self._checked = False

    def __getattr__(self, attr):
        if not self._checked:
            require_reviewer(self._path, self._name)
            self._checked = True
        return getattr(self._store, attr)


def for_session(store, path, name: str | None):
    """``store`` for one write made in a session signed in as ``name`` (``path`` the password
    file, or None without sign-in). Before its first use it checks that ``name`` is still a
    reviewer, so a session that outlived ``reviewers remove`` stores nothing: the write fails
    with :class:`SessionEnded` where it starts."""
    return store if path is None else _SignedInStore(store, path, name)


# -- for the app and the review command ----------------------------------------------------------
def is_loopback(address: str) -> bool:
    """Whether ``address`` only serves this machine (127.0.0.0/8, ::1, localhost)."""
    a = (address or "").strip().strip("[]").lower()
    if a == "localhost":
        return True
    try:
        return ipaddress.ip_address(a).is_loopback
    except ValueError:
        return False


def access_required(address: str, access_path=None) -> bool:
    """Whether the app must ask for a password: when it listens beyond this machine, or when
    a password file was chosen explicitly (``access_path``). An empty or unset address means
    all interfaces (Streamlit's default), so it needs a password too."""
    return access_path is not None or not is_loopback(address)


def protect_app() -> None:
    """For the app's script, before anything is shown: refuse requests whose Host or Origin
    is not the app's own address (DNS rebinding), see :mod:`qual.netguard`."""
    from .netguard import protect

    protect()


def access_path_from_env(environ=None) -> Path | None:
    """The password file the review command passed to the app (:data:`ENV_VAR`), or None when
    the app runs without a login (bound to this machine)."""
    value = (environ if environ is not None else os.environ).get(ENV_VAR, "").strip()
    return Path(value) if value else None



_DUMMY = None

#: after this many wrong passwords for one name within FAILURE_WINDOW seconds, that name is
#: refused for LOCKOUT seconds (per app process: every browser session shares it)
MAX_FAILURES = 5
FAILURE_WINDOW = 300.0
LOCKOUT = 60.0
_failures: dict[str, list[float]] = {}


class LoginThrottled(AccessError):
    """Too many wrong passwords for one reviewer name: wait before trying again."""


def check_login(path, name: str, password: str, *, now: float | None = None) -> bool:
    """Whether ``name`` / ``password`` is a reviewer in the file at ``path``. The file is read on
    every call, so added or removed reviewers take effect at once. An unknown name costs the
    same time as a wrong password. A malformed file raises :class:`AccessError`. After
    ``MAX_FAILURES`` wrong passwords for a name within ``FAILURE_WINDOW`` seconds, further
    attempts for it raise :class:`LoginThrottled` for ``LOCKOUT`` seconds, right or wrong, so
    a password cannot be guessed quickly through the app."""
    global _DUMMY
    import time

    now = time.monotonic() if now is None else now
    name = (name or "").strip()
    recent = [t for t in _failures.get(name, []) if now - t < FAILURE_WINDOW]
    _failures[name] = recent
    if len(recent) >= MAX_FAILURES and now - recent[-1] < LOCKOUT:
        wait = int(LOCKOUT - (now - recent[-1])) + 1
        raise LoginThrottled(f"too many wrong passwords for '{name}': try again in {wait} s")
    reviewers = load(path)
    entry = reviewers.get(name)
    if entry is None:
        if _DUMMY is None:
            _DUMMY = hash_password(secrets.token_hex(16))
        verify_password(password or "", _DUMMY)
        ok = False
    else:
        ok = verify_password(password or "", entry)
    if ok:
        _failures.pop(name, None)
    else:
        _failures[name].append(now)
    return ok
