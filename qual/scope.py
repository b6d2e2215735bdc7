"""Which documents a command works on: ``--documents NAME...`` or ``--folder PATH``.

A store holds one study; these options let ``summarise``, ``export`` and ``topics`` work on
part of it (one interview, one round of fieldwork), or keep a study apart from other
documents that were coded into the same store by mistake. Without them, every current
document is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .errors import QualError, printable

if TYPE_CHECKING:                 # pandas only in annotations: `--help` need not import it
    import pandas as pd


def add_scope_options(p) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--documents", nargs="+", metavar="NAME", default=None,
                   help="only these documents (file names as stored, e.g. interview_01.txt, "
                        "with or without the extension)")
    g.add_argument("--folder", default=None, metavar="PATH",
                   help="only the documents read from this folder (and its sub-folders)")


def _listing(names, n: int = 8) -> str:
    names = sorted(names)
    more = f", ... ({len(names) - n} more)" if len(names) > n else ""
    return ", ".join(printable(x) for x in names[:n]) + more


def select_documents(documents: pd.DataFrame, *, names=None, folder=None) -> list[int] | None:
    """The ids of the current ``documents`` (``store.documents()``) that ``names`` or
    ``folder`` pick, or None when neither is given (all of them). A name or folder that picks
    nothing is a QualError that lists what the store holds."""
    if not names and not folder:
        return None
    if names:
        ids, missing = [], []
        for want in names:
            hit = documents[(documents["name"] == want) |
                            (documents["name"].map(lambda n: Path(n).stem) == want)]
            if not len(hit):
                hit = documents[documents["name"] == Path(want).name]
            if len(hit):
                ids += [int(i) for i in hit["id"]]
            else:
                missing.append(want)
        if missing:
            raise QualError(f"no document named {printable(missing[0])!r} in the store "
                            f"(it has: {_listing(documents['name'])})")
        return sorted(set(ids))
    root = Path(folder).expanduser().resolve()

    def inside(p) -> bool:
        if not isinstance(p, str) or not p:
            return False
        try:
            Path(p).resolve().relative_to(root)
            return True
        except ValueError:
            return False

    ids = [int(i) for i, p in zip(documents["id"], documents["path"]) if inside(p)]
    if not ids:
        folders = {str(Path(p).parent) for p in documents["path"] if isinstance(p, str) and p}
        where = (f"its documents come from: {_listing(folders, 4)}" if folders else
                 "no folder is stored for its documents (redacted transcripts keep no path); "
                 "use --documents")
        raise QualError(f"no document in the store was read from {printable(str(root))} "
                        f"({where})")
    return ids


def scope_ids(store, args) -> list[int] | None:
    """:func:`select_documents` on the store's current documents from a command's options."""
    names, folder = getattr(args, "documents", None), getattr(args, "folder", None)
    if not names and not folder:
        return None
    return select_documents(store.documents(), names=names, folder=folder)


def scope_phrase(documents: pd.DataFrame, ids) -> str:
    """E.g. ``2 of 14 documents (interview_01.txt, interview_02.txt)`` for a command's output."""
    if ids is None:
        return f"all {len(documents)} documents"
    names = documents.loc[documents["id"].isin(ids), "name"]
    return f"{len(ids)} of {len(documents)} documents ({_listing(names, 4)})"


def _folders(documents: pd.DataFrame) -> set[Path]:
    return {Path(p).parent for p in documents["path"] if isinstance(p, str) and p}


def other_study_warning(before: pd.DataFrame, after: pd.DataFrame, store_path) -> str | None:
    """One line when a run added documents from a folder that is neither one of the folders
    the store's documents came from before (``before``, ``after``: ``store.documents(
    current_only=False)``) nor inside one: a second study, or the demo, going into the same
    store. None when the store was empty or the new documents come from its folders."""
    old = _folders(before)
    if not old:
        return None
    added = after[~after["id"].isin(before["id"])]
    new = sorted(f for f in _folders(added)
                 if not any(f == o or o in f.parents for o in old))
    if not new:
        return None
    old = sorted(old)
    more = f" and {len(old) - 1} other folder(s)" if len(old) > 1 else ""
    return (f"{printable(str(store_path))} already holds documents from {printable(str(old[0]))}"
            f"{more}; this run added documents from {printable(str(new[0]))}: summaries, "
            "exports and topics will mix them (keep a study in its own store with --db, or "
            "narrow a command with --folder/--documents)")
