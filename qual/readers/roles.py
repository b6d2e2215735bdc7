"""Roles: who in a transcript is the interviewer, who the stakeholder (see
:func:`assign_roles` for the precedence)."""

from __future__ import annotations

import re
from typing import Iterable

from ..model import Transcript, Turn
from .base import (_CALLS_WITNESS_RE, _NAME_NOISE, _QUESTION_WORDS, _SECTION_LINE_RE, _SWORN_RE,
                   _norm, _role_word)

# --------------------------------------------------------------------------------------------
# Roles
# --------------------------------------------------------------------------------------------

def _name_tokens(name: str) -> list[str]:
    toks = re.findall(r"[^\W_][\w'’\-]*", name.lower())
    return [t.replace("’", "'") for t in toks if t.rstrip(".") not in _NAME_NOISE]


def _name_score(given: str, speaker: str) -> int:
    """3 exact, 2 one name's words contain the other's, 1 same surname, 0 no match."""
    if _norm(given) == _norm(speaker):
        return 3
    g, s = _name_tokens(given), _name_tokens(speaker)
    if not g or not s:
        return 0
    if set(g) <= set(s) or set(s) <= set(g):
        return 2
    if g[-1] == s[-1]:
        return 1
    return 0


def _names(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(";") if v.strip()]
    if isinstance(value, (list, tuple, set)):
        out = []
        for v in value:
            out.extend(_names(v) if isinstance(v, str) else [str(v)])
        return out
    return [str(value)]


def _is_question(utterance: str) -> bool:
    if "?" in utterance:
        return True
    m = re.match(r"[^\W\d_][\w'’]*", utterance.lstrip(" \"'“‘-"))
    return bool(m) and m.group(0).lower().replace("’", "'") in _QUESTION_WORDS


def assign_roles(turns, interviewers: Iterable[str] = (), stakeholders: Iterable[str] = (), *,
                 text: str | None = None) -> list[Turn]:
    """Set ``Turn.role`` (``interviewer`` | ``stakeholder`` | ``other``) per speaker, in place,
    and return the turns.

    ``turns`` is a list of :class:`Turn` or a :class:`Transcript` (then its text is used);
    ``text`` is the transcript text, needed for the question pattern and stage directions.
    ``interviewers`` / ``stakeholders`` are names (a list, or one ``;``-separated string).

    Precedence, first rule that decides wins, per speaker:

    1. names given here (e.g. from metadata.csv): matched case-insensitively on the whole
       label, on word containment ("Keith" ~ "Mr Keith", "Ian Diamond" ~ "Professor Sir
       Diamond") or on the surname; the better match wins if a speaker matches both lists;
    2. label words: ``Q``, ``Interviewer``, ``Int``, ``I``, ``Moderator``, ``Facilitator``,
       ``Researcher``, ``Counsel`` and any label containing "Counsel" or "Inquiry"
       -> interviewer; ``A``, ``Respondent``, ``Interviewee``, ``Participant``, ``R``, ``P``,
       ``Witness``, ``The Witness`` (also numbered: "Participant 3", "P1") -> stakeholder;
       chairs (``Chair``, ``Judge``, "Lady X", "Lord X") are never stakeholders: interviewer
       if at least a quarter of their turns ask questions, else other;
    3. names in sworn/affirmed stage directions ("DR JANE ROE (affirmed).") -> stakeholder;
       names in "Questions from X" headings, and speakers who call a witness ("May I call
       Dr X", "our next witness is ...") -> interviewer;
    4. the question pattern: a speaker with at least a quarter of turns asking questions
       ("?" or a leading question word) and asking more than answering -> interviewer; a
       speaker who rarely asks and either answers others' questions (>= 20% of turns follow a
       question) or does at least a fifth of the talking -> stakeholder; else other; a lone
       speaker -> stakeholder. If this leaves no stakeholder, the pattern-judged speaker who
       asks least (then talks most) becomes the stakeholder.
    """
    if isinstance(turns, Transcript):
        if text is None:
            text = turns.text
        turns = turns.turns
    turns = list(turns)
    interviewers = _names(interviewers if isinstance(interviewers, str) else list(interviewers))
    stakeholders = _names(stakeholders if isinstance(stakeholders, str) else list(stakeholders))
    speakers: list[str] = []
    for t in turns:
        if t.speaker not in speakers:
            speakers.append(t.speaker)
    role: dict[str, str] = {}
    chairs: set[str] = set()

    # 1. given names
    for sp in speakers:
        si = max((_name_score(n, sp) for n in interviewers), default=0)
        ss = max((_name_score(n, sp) for n in stakeholders), default=0)
        if si or ss:
            role[sp] = "stakeholder" if ss >= si else "interviewer"
    # 2. label words
    for sp in speakers:
        if sp in role:
            continue
        w = _role_word(sp)
        if w == "chair":
            chairs.add(sp)
        elif w:
            role[sp] = w
    # 3. stage directions and section headings
    if text:
        sworn = [m.group("name") for m in _SWORN_RE.finditer(text)]
        asking = [m.group("name") for m in _SECTION_LINE_RE.finditer(text)]
        callers = {t.speaker for t in turns if _CALLS_WITNESS_RE.search(text[t.start:t.end])}
        for sp in speakers:
            if sp in role or sp in chairs:
                continue
            if any(_name_score(n, sp) for n in sworn):
                role[sp] = "stakeholder"
            elif sp in callers or any(_name_score(n, sp) for n in asking):
                role[sp] = "interviewer"
    # 4. the question pattern
    stats = {sp: [0, 0, 0, 0] for sp in speakers}     # turns, questions, answers, words
    prev_sp, prev_q = None, False
    for t in turns:
        utter = text[t.start:t.end] if text else ""
        q = _is_question(utter) if text else False
        s = stats[t.speaker]
        s[0] += 1
        s[1] += q
        s[2] += bool(prev_q and prev_sp != t.speaker)
        s[3] += len(utter.split())
        prev_sp, prev_q = t.speaker, q
    total_words = sum(s[3] for s in stats.values()) or 1
    for sp in chairs:
        n, q = stats[sp][0], stats[sp][1]
        role[sp] = "interviewer" if n and q / n >= 0.25 else "other"
    judged = [sp for sp in speakers if sp not in role]
    if len(speakers) == 1 and judged:
        role[judged[0]] = "stakeholder"
        judged = []
    for sp in judged:
        n, q, a, w = stats[sp]
        qs, ans, ws = q / n, a / n, w / total_words
        if not text:
            role[sp] = "other"
        elif qs >= 0.25 and qs > ans:
            role[sp] = "interviewer"
        elif qs < 0.25 and (ans >= 0.2 or ws >= 0.2):
            role[sp] = "stakeholder"
        else:
            role[sp] = "other"
    if text and judged and "stakeholder" not in role.values():
        best = min(judged, key=lambda sp: (stats[sp][1] / stats[sp][0], -stats[sp][3]))
        if len(speakers) > 1 and (len(judged) > 1 or any(r == "interviewer" for s, r in
                                                         role.items() if s != best)):
            role[best] = "stakeholder"
    for t in turns:
        t.role = role.get(t.speaker, "other")
    return turns
