"""Who is a stakeholder: the one rule the summaries, the case matrices and the app's Overview use.

A *stakeholder* is the document's ``stakeholder_id`` metadata when it has one (a paired
interview under one id is one stakeholder; two documents with the same id are one too).
Without one, it is one person speaking in one document. A transcript often names that person
in several ways, and each label is resolved to the person it stands for:

* a generic label (``The Witness``, ``A``, ``Respondent``, ...) is the document's one named
  stakeholder; with several, the one who spoke last before it (or first after it); with none,
  all generic labels are one unnamed stakeholder;
* a shorter name is the longer one it fits: ``Mr Heald``, ``Heald`` or ``S Heald`` are
  ``Scott Heald`` (same surname, given names equal or initials of each other, titles and
  post-nominals ignored, ``Mr`` never ``Mrs``/``Ms``), and ``Sarah`` is ``Sarah Jones`` when
  no other stakeholder of the document is a Sarah;
* initials (``SH``, ``S.H.``) are the one named stakeholder with those initials.

A label that fits two people, or none, stays a stakeholder of its own.

Each stakeholder has a *case label*: the ``stakeholder_id``; else the document's name when it
has one stakeholder; else ``document: person`` (the person's fullest label). The case x code
matrices have one row per stakeholder under that label, so their rows are the stakeholders
counted in the summary and the app.
"""

from __future__ import annotations

import re

import pandas as pd

GENERIC = {"a", "answer", "the answer", "r", "p", "respondent", "the respondent", "interviewee",
           "the interviewee", "participant", "the participant", "witness", "the witness",
           "stakeholder", "the stakeholder", "deponent", "the deponent"}
_TITLES = {"mr", "mrs", "ms", "miss", "mx", "dr", "doctor", "prof", "professor", "sir", "dame",
           "lady", "lord", "baroness", "baron", "cllr", "councillor", "rev", "revd", "reverend",
           "judge", "justice", "the", "rt", "hon", "right", "honourable", "kc", "qc", "mp",
           "msp", "ms", "mbe", "obe", "cbe", "frs", "fba", "phd", "jr", "sr"}
_MALE, _FEMALE = {"mr", "sir", "lord", "baron"}, {"mrs", "ms", "miss", "dame", "lady", "baroness"}
_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*")
_INITIALS = re.compile(r"^(?:[A-Z]\.?\s?){2,4}$")


class _Label:
    def __init__(self, label: str):
        self.label = label
        words = [w.lower().replace("’", "'") for w in _WORD.findall(label)]
        self.titles = {w for w in words if w in _TITLES}
        self.names = [w for w in words if w not in _TITLES]
        text = " ".join(label.split()).strip(" .:")
        self.generic = text.lower() in GENERIC or (not self.names and not self.titles)
        self.initials = (not self.generic and bool(_INITIALS.match(text))
                         and len(re.sub(r"[^A-Z]", "", text)) >= 2)
        if self.initials or self.generic:
            self.names = []
            self.letters = re.sub(r"[^A-Z]", "", text).lower()

    @property
    def surname(self) -> str | None:
        # a lone name without a title may be a given name ("Sarah") as well as a surname
        return self.names[-1] if self.names else None

    @property
    def given(self) -> list[str]:
        return self.names[:-1]

    @property
    def specificity(self) -> tuple:
        return (len(self.names), sum(len(n) for n in self.names), len(self.titles))

    def gender(self) -> str | None:
        if self.titles & _MALE:
            return "m"
        if self.titles & _FEMALE:
            return "f"
        return None


def _same_given(a: list[str], b: list[str]) -> bool:
    """Given names that can be one person's: pairwise equal, or an initial of the other."""
    for x, y in zip(a, b):
        if x != y and not ((len(x) == 1 and y.startswith(x)) or (len(y) == 1 and x.startswith(y))):
            return False
    return True


def _fits(short: _Label, full: _Label) -> bool:
    """Whether label ``short`` can name the person ``full`` names."""
    if not short.names or not full.names:
        return False
    gs, gf = short.gender(), full.gender()
    if gs and gf and gs != gf:
        return False
    if len(short.names) == 1 and not short.titles and len(full.names) > 1:
        return short.names[0] in (full.surname, full.given[0])    # "Heald" or "Sarah"
    return short.surname == full.surname and _same_given(short.given, full.given)


def resolve_speakers(labels) -> list[str]:
    """The person each speaker label in ``labels`` (one document's stakeholder turns, in
    document order) stands for, as that person's fullest label (see the module docstring)."""
    labels = [str(x) for x in labels]
    parsed = {lab: _Label(lab) for lab in dict.fromkeys(labels)}
    count = pd.Series(labels).value_counts().to_dict() if labels else {}
    named = sorted((p for p in parsed.values() if p.names and not p.generic), key=lambda p: (
        tuple(-v for v in p.specificity), -count[p.label], labels.index(p.label)))
    people: list[list[_Label]] = []            # each person: their labels, fullest first
    person_of: dict[str, int] = {}
    for p in named:
        fits = [i for i, person in enumerate(people) if _fits(p, person[0])
                and len({q.gender() for q in person + [p]} - {None}) < 2]
        if len(fits) == 1:
            people[fits[0]].append(p)
            person_of[p.label] = fits[0]
        else:                                   # a new name, or one that fits two people
            people.append([p])
            person_of[p.label] = len(people) - 1
    for p in parsed.values():
        if p.initials:
            hits = {i for i, person in enumerate(people) for q in person
                    if "".join(n[0] for n in q.names) == p.letters
                    or (len(q.names) > 1 and q.names[0][0] + q.names[-1][0] == p.letters)}
            if len(hits) == 1:
                person_of[p.label] = hits.pop()
            else:
                people.append([p])
                person_of[p.label] = len(people) - 1
    canonical = [person[0].label for person in people]
    generic_person = None
    if not named:                               # nobody named: the generic labels are one person
        generic = [lab for lab in labels if parsed[lab].generic]
        generic_person = generic[0] if generic else None
    out: list[str | None] = []
    for lab in labels:
        p = parsed[lab]
        if lab in person_of:
            out.append(canonical[person_of[lab]])
        elif generic_person is not None:
            out.append(generic_person)
        elif len(people) == 1:
            out.append(canonical[0])
        else:
            out.append(None)                    # several people: the nearest named turn
    last = None
    for i, v in enumerate(out):
        if v is None:
            out[i] = last
        else:
            last = v
    nxt = None
    for i in range(len(out) - 1, -1, -1):
        if out[i] is None:
            out[i] = nxt if nxt is not None else labels[i]
        else:
            nxt = out[i]
    return out


def _doc_info(documents) -> dict[int, tuple[str, str | None]]:
    """``{document id: (name, stakeholder_id or None)}`` from a frame (``id``, ``name``,
    ``metadata``) or a list / dict of ``store.document`` dicts."""
    if isinstance(documents, pd.DataFrame):
        rows = documents.to_dict("records")
    elif isinstance(documents, dict):
        rows = list(documents.values())
    else:
        rows = list(documents or [])
    out = {}
    for d in rows:
        meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
        sid = meta.get("stakeholder_id")
        if sid is None or (isinstance(sid, float) and sid != sid) or str(sid).strip() == "":
            sid = None
        out[int(d["id"])] = (str(d.get("name") or d["id"]), None if sid is None else str(sid))
    return out


def stakeholder_keys(rows: pd.DataFrame, documents) -> pd.Series:
    """The stakeholder (its case label) of each row of ``rows`` (stakeholder segments with
    ``document_id``, ``speaker`` and, for document order, ``start``)."""
    if not len(rows):
        return pd.Series([], index=rows.index, dtype=object)
    info = _doc_info(documents)
    out = pd.Series(index=rows.index, dtype=object)
    order = ["document_id", "start"] if "start" in rows.columns else ["document_id"]
    ordered = rows.sort_values(order, kind="stable")
    for doc_id, part in ordered.groupby("document_id", sort=False):
        name, sid = info.get(int(doc_id), (str(doc_id), None))
        if sid is not None:
            out.loc[part.index] = sid
            continue
        people = resolve_speakers(part["speaker"].fillna("").astype(str).tolist())
        if len(set(people)) == 1:
            out.loc[part.index] = name
        else:
            out.loc[part.index] = [f"{name}: {p}" for p in people]
    return out
