"""``python -m qual reviewers add|remove|list``: reviewer passwords for the review app when it
listens beyond this machine (``python -m qual review --address 0.0.0.0``). Only salted scrypt
hashes are stored (see :mod:`qual.access`)."""

from __future__ import annotations

import sys
from pathlib import Path

ORDER = 45


def _file(args) -> Path:
    from ..access import default_path

    return Path(args.file).resolve() if args.file else default_path(args.db)


def _read_password(args) -> str:
    from ..access import AccessError, MIN_PASSWORD, check_password

    if args.password_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
        return check_password(password)
    import getpass

    if not sys.stdin.isatty():
        raise AccessError("no terminal to ask for the password; pass it on standard input "
                          "with --password-stdin", field="password")
    first = getpass.getpass(f"password for {args.name.strip()} (at least {MIN_PASSWORD} "
                            "characters): ")
    check_password(first)
    if getpass.getpass("the same password again: ") != first:
        raise AccessError("the two passwords differ; nothing was changed", field="password")
    return first


def run(args) -> int:
    from ..access import (add_reviewer, check_name, file_is_private, list_reviewers,
                          remove_reviewer)

    path = _file(args)
    if args.action == "add":
        name = check_name(args.name)
        password = _read_password(args)
        new = add_reviewer(path, name, password)
        print(f"{'added reviewer' if new else 'changed the password of'} {name} in {path} "
              "(stored as a salted scrypt hash)")
        return 0
    if args.action == "remove":
        remove_reviewer(path, args.name)
        print(f"removed reviewer {args.name.strip()} from {path}")
        return 0
    names = list_reviewers(path)
    if not path.exists():
        print(f"no reviewer password file at {path}; add a reviewer with: "
              "python -m qual reviewers add NAME")
        return 0
    print(f"{len(names)} reviewer(s) in {path}:")
    for n in names:
        print(f"  {n}")
    if not file_is_private(path):
        print(f"warning: {path} is readable by other users; run: chmod 600 {path}")
    return 0


def register(sub) -> None:
    from ..cli import add_db_option

    p = sub.add_parser("reviewers", help="reviewer passwords for the review app on a network",
                       description="Manage the reviewers who may log in to the review app when "
                                   "it listens beyond this machine (review --address). The "
                                   "file (default: qual-reviewers.toml beside the store) holds "
                                   "salted scrypt hashes, never passwords.")
    rsub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(q):
        add_db_option(q)
        q.add_argument("--file", default=None,
                       help="the reviewer password file (default: qual-reviewers.toml in the "
                            "store's folder)")
        q.set_defaults(func=run)

    a = rsub.add_parser("add", help="add a reviewer or change their password")
    a.add_argument("name", help="the reviewer's name (what they type to log in)")
    a.add_argument("--password-stdin", action="store_true",
                   help="read the password from one line of standard input (for scripts) "
                        "instead of asking twice")
    common(a)
    r = rsub.add_parser("remove", help="remove a reviewer")
    r.add_argument("name")
    common(r)
    common(rsub.add_parser("list", help="list the reviewers (names only)"))
