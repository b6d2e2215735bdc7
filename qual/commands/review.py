"""``python -m qual review`` (starts the review app) and ``python -m qual decisions
import|export`` (review in a spreadsheet: columns ``segment_id, themes, polarity, memo``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from ..errors import counted

ORDER = 40

APP = Path(__file__).resolve().parent.parent.parent / "app.py"


# -- review --------------------------------------------------------------------------------


# Passed on every start, so the app does not depend on the working folder's
# .streamlit/config.toml: no usage statistics, no error details in the browser, Streamlit's
# CORS and XSRF checks on.
SETTINGS = ["--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--client.showErrorDetails", "none", "--server.enableCORS", "true",
            "--server.enableXsrfProtection", "true"]


def streamlit_command(db, port: int, address: str = "127.0.0.1") -> list[str]:
    """Streamlit, started through qual.netguard so that requests whose Host or Origin is not
    this app's address are refused from the first one."""
    boot = (f"import sys; sys.path.insert(0, {str(APP.parent)!r}); "
            "from qual.netguard import run_streamlit; run_streamlit()")
    return [sys.executable, "-c", boot, "run", str(APP), *SETTINGS,
            "--server.address", address, "--server.port", str(port)]


def run_review(args) -> int:
    from ..access import (ENV_VAR, access_required, default_path, is_loopback, load,
                          privacy_warning)
    from ..errors import QualError
    from ..store import Store

    db = Path(args.db).resolve()
    if not db.exists():
        raise QualError("no store here; run `python -m qual code transcripts/` first", path=db)
    access = Path(args.access).resolve() if args.access else default_path(db)
    local = is_loopback(args.address)
    # Transcripts are sensitive: beyond this machine every reviewer logs in with a password.
    reviewers = load(access) if access_required(args.address, args.access) else {}
    if warning := privacy_warning(access):
        print(f"qual: warning: {warning}", file=sys.stderr, flush=True)
    if not local and not reviewers:
        where = "does not exist" if not access.exists() else "has no reviewers"
        extra = f" --file {access}" if args.access else ""
        raise QualError(
            f"refusing to listen on {args.address}: beyond this machine the app needs reviewer "
            f"passwords, and {access} {where}; add one with `python -m qual reviewers add "
            f"NAME{extra}` (or serve only this machine: --address 127.0.0.1)", field="--address")
    if args.access and not reviewers:
        raise QualError("no reviewers in the password file; add one with `python -m qual "
                        f"reviewers add NAME --file {access}`", path=access)
    Store(db, create=False, check=True).close()    # refuse a damaged file or one not a store
    from ..netguard import ENV_VAR as HOSTS_VAR, split_host

    env = {**os.environ, "QUAL_DB": str(db)}
    env.pop(ENV_VAR, None)
    bad = [h for h in args.allow_host if split_host(h.removeprefix("*.")) is None]
    if bad:
        raise QualError(f"not a host name: {bad[0]!r}", field="--allow-host")
    env[HOSTS_VAR] = ",".join(h.strip() for h in args.allow_host)
    if reviewers:
        env[ENV_VAR] = str(access)
    cmd = streamlit_command(db, args.port, args.address)
    if not local:
        # Streamlit's welcome message for a wildcard address looks up this machine's external
        # IP on the internet; qual makes no network calls, and prints the address itself.
        cmd += ["--logger.hideWelcomeMessage", "true"]
    print(f"review app for {db}", flush=True)
    if local:
        print(f"listening on {args.address}: this machine only", flush=True)
        print(f"open http://{args.address}:{args.port} in your browser (Ctrl+C stops the app)",
              flush=True)
    else:
        import socket

        host = args.address if args.address not in ("0.0.0.0", "::") else socket.gethostname()
        print(f"listening on {args.address}: reachable from other machines", flush=True)
        print(f"open http://{host}:{args.port} in a browser (Ctrl+C stops the app)", flush=True)
    if reviewers:
        print(f"a password is required: {len(reviewers)} reviewer(s) in {access} "
              "(python -m qual reviewers add NAME adds one)", flush=True)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)

    def stop(signum, frame):                  # a terminated `qual review` stops the app too
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        print("review app stopped; every decision is in the store", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_decisions(args) -> int:
    from ..codebook import load_codebook
    from ..project import export_decisions, import_decisions
    from ..store import Store

    if args.action == "log":
        from ..audit import audit_log
        from ..export import write_csv

        with Store(args.db, create=False) as store:
            log = audit_log(store)
        out = write_csv(log, args.output)             # every cell inert, written atomically
        print(f"wrote {counted(len(log), 'decision')} (the whole log: accepts, rejects, "
              f"recodes, undos, splits, merges, restores) to {Path(out).resolve()}")
        return 0
    if args.action == "export":
        with Store(args.db, create=False) as store:     # no store: say so, make no empty one
            n = export_decisions(store, args.output)
        print(f"wrote {counted(n, 'segment')} to {Path(args.output).resolve()}; edit themes, "
              f"polarity and memo, then: python -m qual decisions import {args.output} "
              "--reviewer NAME")
        return 0
    if not (args.reviewer or "").strip():
        print("qual: error: --reviewer NAME is required", file=sys.stderr)
        return 2
    codebook = load_codebook(args.codebook)
    with Store(args.db, create=False) as store:
        recorded, skipped, errors = import_decisions(store, args.file, args.reviewer.strip(),
                                                     codebook, accept_unchanged=args.accept_unchanged)
    for line, column, message in errors:
        print(f"{args.file}: line {line}, column {column}: {message}", file=sys.stderr)
    print(f"recorded {counted(recorded, 'decision')} by {args.reviewer.strip()}; "
          f"{counted(skipped, 'unchanged row')} skipped; {counted(len(errors), 'bad row')} "
          "not imported")
    return 1 if errors else 0


def register(sub) -> None:
    from ..cli import add_db_option

    p = sub.add_parser("review", help="start the review app and print the address to open",
                       description="Start the Streamlit review app (app.py) on this machine and "
                                   "print its address. Decisions are stored in the store as you "
                                   "make them.")
    add_db_option(p)
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    p.add_argument("--address", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only); any "
                        "other address needs reviewer passwords (python -m qual reviewers add)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a host name that browsers use to reach the app, e.g. behind a proxy "
                        "(repeatable; '*.example.org' for a domain). Requests for any other "
                        "name are refused; localhost and loopback IPs always work, and with "
                        "--address 0.0.0.0 also IP addresses and this machine's host name")
    p.add_argument("--access", default=None, metavar="FILE",
                   help="reviewer password file (default: qual-reviewers.toml in the store's "
                        "folder); given, a password is required even on this machine")
    p.set_defaults(func=run_review)

    p = sub.add_parser("decisions", help="export or import reviewer decisions as CSV, or "
                                         "write the audit log",
                       description="Review in a spreadsheet: export the coding, edit the columns "
                                   "themes (theme and sub-code ids, ';'-separated, or none), "
                                   "polarity and memo, and import it back as your decisions.")
    dsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    e = dsub.add_parser("export", help="write segment_id, themes, polarity, memo (+ context)")
    add_db_option(e)
    e.add_argument("--output", required=True, help="CSV file to write")
    e.set_defaults(func=run_decisions)
    g = dsub.add_parser("log", help="write the audit log: every decision with action, "
                                    "reviewer, time, before, after, memo, blind, lineage",
                        description="Write every reviewer decision, oldest first, as CSV: "
                                    "action, reviewer, time, segment, the coding seen (before) "
                                    "and set (after), memo, blind flag, and the segment lineage "
                                    "(splits, merges, undos, restores). Read-only: the log "
                                    "cannot be imported.")
    add_db_option(g)
    g.add_argument("--output", required=True, help="CSV file to write")
    g.set_defaults(func=run_decisions)
    i = dsub.add_parser("import", help="record the rows of a CSV as your decisions")
    add_db_option(i)
    i.add_argument("file", help="CSV with columns segment_id, themes, polarity, memo")
    i.add_argument("--reviewer", required=True, help="your name (recorded on every decision)")
    i.add_argument("--codebook", default=None, help="codebook (default: the shipped one)")
    i.add_argument("--accept-unchanged", action="store_true",
                   help="record unchanged rows as accepted (default: skip them)")
    i.set_defaults(func=run_decisions)
