"""Refuse requests to the review app that are not addressed to it (DNS rebinding, cross-site
websockets).

A web page on ``evil.example`` can make the browser send requests to the review app by
pointing its own name at 127.0.0.1 (DNS rebinding): the requests then carry
``Host: evil.example:PORT`` and the page can read the answers. A page can also open a
websocket to ``ws://127.0.0.1:PORT`` directly; that request carries the page's ``Origin``.
Streamlit checks neither on its HTTP routes, and on the websocket it accepts any Host unless
``server.allowedHosts`` is set. So qual checks both on every HTTP request and every websocket
before Streamlit sees it:

- ``Host`` must name the address the app listens on: on a loopback address only
  ``localhost`` and loopback IPs; on another address also that address and, on a wildcard
  (``0.0.0.0``, ``::`` or unset), any IP literal (an IP literal cannot be rebound) and this
  machine's host name. Names given with ``python -m qual review --allow-host NAME`` (passed in
  :data:`ENV_VAR`) or in Streamlit's ``server.allowedHosts`` (exact names or ``*.suffix``;
  a bare ``*`` is ignored) are accepted too. The port is not compared.
- ``Origin``, when present, must be ``http(s)``/``ws(s)`` with a host that passes the same
  test. ``Origin: null`` is refused.

Anything else gets HTTP 403 (a websocket is closed before it is accepted, which the server
answers with 403).

The check is installed on Starlette's application class (:func:`install`), so it covers every
route of every Streamlit app in the process. ``python -m qual review`` installs it before the
server starts (:func:`run_streamlit`). Under a plain ``streamlit run app.py`` the app installs it
on its first script run (:func:`protect`), and that first session is checked from its own
request headers, so nothing of the app is shown to a foreign Host or Origin either way.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from urllib.parse import urlsplit

ENV_VAR = "QUAL_ALLOWED_HOSTS"          # extra host names, comma-separated (`review --allow-host`)
WILDCARDS = ("", "0.0.0.0", "::")
_MARK = "_qual_netguard"


# -- the rule ---------------------------------------------------------------------------------
def _ip(name: str):
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def split_host(value: str | None) -> str | None:
    """The host name of a ``Host`` header value (``name``, ``name:port``, ``[v6]:port``),
    lower-cased and without a trailing dot; None when it is not a plain host."""
    if value is None:
        return None
    value = value.strip()
    if not value or any(c in value for c in "/\\@?#% \t") or len(value) > 255:
        return None
    try:
        parts = urlsplit("//" + value)
        host = parts.hostname
        parts.port                       # a port that is not a number raises ValueError
    except ValueError:
        return None
    if not host:
        return None
    return host.rstrip(".")


def _matches(name: str, pattern: str) -> bool:
    pattern = pattern.strip().lower().rstrip(".")
    if not pattern or pattern == "*":
        return False
    if pattern.startswith("*."):
        return name.endswith(pattern[1:]) and len(name) > len(pattern) - 1
    return name == pattern


def host_allowed(name: str | None, address: str | None, extra=()) -> bool:
    """Whether a request for host ``name`` (from :func:`split_host`) is addressed to an app
    listening on ``address`` (Streamlit's ``server.address``; empty means all interfaces)."""
    if not name:
        return False
    address = (address or "").strip().strip("[]").lower()
    ip = _ip(name)
    if name == "localhost" or (ip is not None and ip.is_loopback):
        return True
    bound = _ip(address)
    loopback_only = address == "localhost" or (bound is not None and bound.is_loopback)
    if loopback_only:
        return any(_matches(name, p) for p in extra)
    wildcard = address in WILDCARDS
    if ip is not None:
        return wildcard or (bound is not None and ip == bound)
    if name == address:
        return True
    if wildcard and name == socket.gethostname().lower().rstrip("."):
        return True
    return any(_matches(name, p) for p in extra)


def origin_allowed(origin: str | None, address: str | None, extra=()) -> bool:
    """Whether an ``Origin`` header may talk to the app: absent, or an http(s)/ws(s) origin
    whose host passes :func:`host_allowed`."""
    if origin is None:
        return True
    origin = origin.strip()
    try:
        parts = urlsplit(origin)
        parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https", "ws", "wss") or parts.path not in ("", "/"):
        return False
    return host_allowed(split_host(parts.netloc), address, extra)


def refusal(headers: list[tuple[str, str]], address: str | None, extra=()) -> str | None:
    """Why a request with these headers (name, value pairs) is refused, or None to serve it."""
    hosts = [v for k, v in headers if k.lower() == "host"]
    origins = [v for k, v in headers if k.lower() == "origin"]
    if len(hosts) != 1:
        return "the request must carry exactly one Host header"
    if not host_allowed(split_host(hosts[0]), address, extra):
        return f"Host {hosts[0]!r} is not an address this app listens on"
    if len(origins) > 1:
        return "the request carries more than one Origin header"
    if origins and not origin_allowed(origins[0], address, extra):
        return f"Origin {origins[0]!r} is not an address this app listens on"
    return None


# -- the settings of the running server ---------------------------------------------------------
def settings() -> tuple[str, list[str]]:
    """The address the Streamlit server listens on and the extra allowed host names."""
    from streamlit import config

    address = str(config.get_option("server.address") or "")
    extra = [h for h in os.environ.get(ENV_VAR, "").split(",") if h.strip()]
    try:
        extra += [str(h) for h in (config.get_option("server.allowedHosts") or [])]
    except RuntimeError:                 # an older Streamlit without the option
        pass
    return address, extra


# -- the ASGI guard ---------------------------------------------------------------------------
def _decode(headers) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]


async def _refuse(scope, receive, send, why: str) -> None:
    print(f"qual: refused a {scope['type']} request for {scope.get('path', '')}: {why}",
          file=sys.stderr, flush=True)
    if scope["type"] == "websocket":
        await receive()                  # websocket.connect
        await send({"type": "websocket.close", "code": 1008})   # before accept: HTTP 403
        return
    body = ("Refused: this request is not addressed to the qual review app "
            "(Host or Origin header). Open the address `python -m qual review` printed.\n"
            ).encode()
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"x-content-type-options", b"nosniff"),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


def install() -> None:
    """Put the Host/Origin check in front of every Starlette application in this process
    (Streamlit's server is one). Safe to call more than once."""
    from starlette.applications import Starlette

    if getattr(Starlette.__call__, _MARK, False):
        return
    original = Starlette.__call__

    async def guarded(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            address, extra = settings()
            why = refusal(_decode(scope.get("headers") or []), address, extra)
            if why:
                await _refuse(scope, receive, send, why)
                return
        await original(self, scope, receive, send)

    setattr(guarded, _MARK, True)
    Starlette.__call__ = guarded


def protect() -> None:
    """For the app's script: install the guard, and refuse this session when its own request
    (the websocket it runs on) has a foreign Host or Origin (a session opened before the guard
    was installed, under a plain ``streamlit run``)."""
    import streamlit as st

    install()
    headers = st.context.headers
    pairs = [(k, v) for k in ("Host", "Origin") for v in headers.get_all(k)]
    if not pairs:                        # no request behind this run (e.g. a script test)
        return
    address, extra = settings()
    why = refusal(pairs, address, extra)
    if why:
        st.error("Refused: this page was not opened at the review app's own address.")
        st.stop()


# what app.py imports, and what Streamlit imports on a first table: loaded before the server
# starts, so the first reviewer of a new app process does not wait on them (~1 s)
_APP_MODULES = ("pandas", "pyarrow", "streamlit.elements.arrow", "qual.access", "qual.review",
                "qual.topicview", "qual.export", "qual.store")


def _warm() -> None:
    import importlib

    for name in _APP_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:      # the app says what is missing when it needs it
            pass
    try:                          # and the store's effective coding, in the background
        from qual.review import warm_up
    except ImportError:
        return
    warm_up(os.environ.get("QUAL_DB"))


def run_streamlit(argv: list[str] | None = None) -> int:
    """``streamlit ARGV...`` with the guard installed before the server starts (used by
    ``python -m qual review``)."""
    install()
    _warm()
    from streamlit.web import cli

    sys.argv = ["streamlit", *(sys.argv[1:] if argv is None else argv)]
    return cli.main(prog_name="streamlit")
