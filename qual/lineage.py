"""Which segment of a new document version continues which segment of the old one.

When a transcript file changes, its new version is segmented afresh. Reviewers' decisions
were made on the old version's segments; they must not disappear, so each new segment is
linked to the old segment it continues and the decisions carry over (flagged *stale* where
the text is not identical, so a reviewer looks again).

``match_segments`` aligns the two versions' segment texts in order (difflib on the texts'
hashes): identical segments pair exactly; inside a changed stretch, a new segment pairs
with the most similar old one of that stretch when they share enough of their words.
Pure function: no store, no files.
"""

from __future__ import annotations

import difflib
import re

_WORD = re.compile(r"\w+")

#: word-level similarity (0..1) a changed segment needs to continue an old one
MIN_SIMILARITY = 0.6


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def similarity(a: str, b: str) -> float:
    """Similarity of two texts' word sequences (difflib ratio, 0..1)."""
    return difflib.SequenceMatcher(None, _words(a), _words(b), autojunk=False).ratio()


def _candidates(i1: int, i2: int, j1: int, j2: int, window: int = 8):
    """Old/new index pairs worth comparing in a changed stretch: all of them when the
    stretch is small, else only old segments near the new one's relative position (a long
    stretch, e.g. a transcript cut again with other parameters, stays linear in time)."""
    n_old, n_new = i2 - i1, j2 - j1
    for j in range(j1, j2):
        if n_old * n_new <= 400:
            lo, hi = i1, i2
        else:
            centre = i1 + round((j - j1) * n_old / max(n_new, 1))
            lo, hi = max(i1, centre - window), min(i2, centre + window + 1)
        for i in range(lo, hi):
            yield j, i


def match_segments(old: list[str], new: list[str], *,
                   min_similarity: float = MIN_SIMILARITY) -> list[tuple[int, int, bool]]:
    """Pairs ``(new_index, old_index, exact)``: each new segment with the old segment it
    continues, in order. A new segment continues at most one old segment and each old
    segment is continued at most once; a new segment with no counterpart is left out."""
    sm = difflib.SequenceMatcher(None, old, new, autojunk=False)
    pairs: list[tuple[int, int, bool]] = []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            pairs += [(j1 + k, i1 + k, True) for k in range(i2 - i1)]
        elif tag == "replace":
            # a changed stretch: greedy best pairs by similarity, kept in order
            scored = sorted(((similarity(old[i], new[j]), j, i)
                             for j, i in _candidates(i1, i2, j1, j2)), reverse=True)
            used_old, used_new = set(), set()
            for s, j, i in scored:
                if s < min_similarity:
                    break
                if i in used_old or j in used_new:
                    continue
                used_old.add(i)
                used_new.add(j)
                pairs.append((j, i, False))
    return sorted(pairs)
