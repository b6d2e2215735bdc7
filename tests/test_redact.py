"""Redaction of personal data: recall on a planted-PII transcript, offsets, consistency, the key."""

from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qual.errors import ReadError
from qual.model import Transcript, Turn
from qual.redact import (Replacement, load_ner, nhs_check_ok, read_name_list, redact,
                         write_key)

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "redact"


def _bench():
    spec = importlib.util.spec_from_file_location("redact_recall", REPO / "bench" / "redact_recall.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bench = _bench()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return bench.read_planted(tmp_path_factory.mktemp("planted"))


@pytest.fixture(scope="module")
def rules_result(planted):
    t, gold = planted
    new, reps = redact(t, extra_names=bench.EXTRA_NAMES, nlp=False)
    return t, gold, new, reps


def _offsets_valid(orig: Transcript, new: Transcript, reps):
    assert len(new.turns) == len(orig.turns)
    for a, b in zip(orig.turns, new.turns):
        assert 0 <= b.start <= b.end <= len(new.text)
        # The redacted utterance is the original utterance with its replacements applied.
        inner = [r for r in reps if r.field == "text" and a.start <= r.start and r.end <= a.end]
        expect, pos = [], a.start
        for r in inner:
            expect.append(orig.text[pos:r.start] + r.pseudonym)
            pos = r.end
        expect.append(orig.text[pos:a.end])
        assert new.text[b.start:b.end] == "".join(expect)


# -- recall and precision on the planted transcript (rules only: no trained pipeline needed) --

# What the rules achieve on tests/data/redact/planted.txt (see bench/redact_recall.py).
RULE_RECALL = {"EMAIL": 1.0, "PHONE": 1.0, "NINO": 1.0, "NHS": 1.0, "POSTCODE": 1.0,
               "PERSON": 0.93}


def test_planted_has_about_forty_items_of_each_kind(planted):
    _t, gold = planted
    kinds = [g[0] for g in gold]
    for kind in ("EMAIL", "PHONE", "NINO", "NHS", "POSTCODE"):
        assert kinds.count(kind) == 40
    assert kinds.count("PERSON") >= 40
    assert kinds.count("NOT") >= 20


def test_recall_per_kind_rules_only(rules_result):
    _t, gold, _new, reps = rules_result
    res = bench.score(reps, gold)
    for kind, floor in RULE_RECALL.items():
        assert res["recall"][kind] >= floor, (kind, res["recall"][kind], res["missed"])


def test_precision_and_lookalikes_untouched(rules_result):
    t, gold, new, reps = rules_result
    res = bench.score(reps, gold)
    assert res["precision"] == 1.0, [r.original for r in res["false_positives"]]
    assert res["lookalikes_hit"] == []
    for kind, _s, _e, value in gold:
        if kind == "NOT":
            assert value in new.text
    assert not nhs_check_ok("4010232138")  # the planted 10-digit look-alike fails the check


def test_no_found_original_remains_in_redacted_text(rules_result):
    _t, _gold, new, reps = rules_result
    for r in reps:
        if len(r.original) >= 4:
            assert r.original not in new.text, r


def test_offsets_valid_for_every_turn(rules_result):
    t, _gold, new, reps = rules_result
    _offsets_valid(t, new, reps)
    for r in reps:
        if r.field == "text":
            assert t.text[r.start:r.end] == r.original
        else:
            assert (r.start, r.end) == (-1, -1) and r.field in ("speaker", "metadata:interviewers",
                                                                 "metadata:stakeholders")


def test_pseudonyms_consistent(rules_result):
    t, _gold, new, reps = rules_result
    by_pseudo: dict[str, set] = {}
    for r in reps:
        by_pseudo.setdefault(r.pseudonym, set()).add(r.original)
        assert r.pseudonym.startswith(f"[{r.kind}_")
    # One original string never gets two pseudonyms.
    by_orig: dict[tuple, set] = {}
    for r in reps:
        by_orig.setdefault((r.kind, r.original), set()).add(r.pseudonym)
    assert all(len(v) == 1 for v in by_orig.values()), by_orig
    # Variants of one person share a pseudonym: full name, first name, "Ms Shah".
    shah = by_orig[("PERSON", "Priya Shah")]
    assert by_orig[("PERSON", "Priya")] == shah == by_orig[("PERSON", "Ms Shah")]
    assert by_orig[("PERSON", "Professor Jane Doe")] == by_orig[("PERSON", "Professor Doe")]
    # Speakers are replaced by the same pseudonyms; roles kept.
    speakers = {tn.speaker for tn in new.turns}
    assert speakers == {next(iter(shah)), next(iter(by_orig[("PERSON", "Alex Morgan")]))}
    assert [a.role for a in t.turns] == [b.role for b in new.turns]
    # Numbering follows first appearance.
    assert re.findall(r"\[PERSON_\d+\]", new.text)[0] == "[PERSON_1]"


def test_metadata_names_pseudonymised(rules_result):
    t, _gold, new, reps = rules_result
    assert new.metadata["redacted"] is True
    assert "redacted" not in t.metadata  # the input is not modified
    pseudo = {r.original: r.pseudonym for r in reps}
    assert new.metadata["interviewers"] == [pseudo["Alex Morgan"]]
    assert new.metadata["stakeholders"] == [pseudo["Priya Shah"]]
    assert new.metadata["organisation"] == "Department for Regional Services"


# -- small, explicit cases ---------------------------------------------------------------------

def _doc(text_turns, metadata=None):
    text, turns = "", []
    for speaker, utt in text_turns:
        if text:
            text += "\n\n"
        text += f"{speaker}: "
        turns.append(Turn(speaker=speaker, start=len(text), end=len(text) + len(utt),
                          role="interviewer" if speaker == "Interviewer" else "stakeholder"))
        text += utt
    return Transcript(name="t.txt", text=text, turns=turns, metadata=metadata or {})


def test_titled_and_listed_names_roles_and_orgs():
    t = _doc([("Interviewer", "Did Dr Smith and Professor Jane Doe sign it off?"),
              ("Keith Moran", "Yes. Mr Moran here, from Northmoor City Council. Ms Carey "
                              "and Gareth too; Smith was keen. The Interviewer asked twice.")],
             metadata={"name": "Keith Moran"})
    new, reps = redact(t, extra_names=["Gareth"], nlp=False)
    found = {r.original for r in reps}
    assert {"Dr Smith", "Professor Jane Doe", "Mr Moran", "Ms Carey", "Gareth", "Smith",
            "Keith Moran"} <= found
    assert "Northmoor City Council" in new.text and "Interviewer" in new.text
    assert new.turns[0].speaker == "Interviewer"
    assert new.turns[1].speaker == new.metadata["name"]
    assert re.fullmatch(r"\[PERSON_\d+\]", new.metadata["name"])
    assert new.text.count(new.turns[1].speaker) >= 2  # label and "Mr Moran"
    by = {r.original: r.pseudonym for r in reps}
    assert by["Dr Smith"] == by["Smith"]


def test_identifier_formats_and_lookalikes():
    utt = ("Ring 07700 900123 or +44 (0)117 496 0123 or (0161) 496 0000; mail a.b+c@example.org; "
           "NI JG103759A; NHS 943 476 5919; post to SW1A 1AA. Not: 2019-2021, Section 251, "
           "DS-2023-0417, 4010232138, ISO 27001, 1998 to 2003.")
    t = _doc([("Interviewer", "Go on."), ("Respondent", utt)])
    new, reps = redact(t, nlp=False)
    kinds = sorted(r.kind for r in reps)
    assert kinds == sorted(["PHONE"] * 3 + ["EMAIL", "NINO", "NHS", "POSTCODE"]), reps
    for keep in ("2019-2021", "Section 251", "DS-2023-0417", "4010232138", "ISO 27001"):
        assert keep in new.text
    assert new.turns[1].speaker == "Respondent"
    _offsets_valid(t, new, reps)


def test_same_number_in_different_formats_gets_one_pseudonym():
    t = _doc([("Interviewer", "Number?"),
              ("Respondent", "07700 900123, or 07700900123, or +44 7700 900 123.")])
    new, reps = redact(t, nlp=False)
    assert {r.pseudonym for r in reps} == {"[PHONE_1]"} and len(reps) == 3


def test_blank_pipeline_is_ignored_gracefully(nlp):
    t = _doc([("Interviewer", "Hello"), ("Respondent", "Tom Brennan leads it.")])
    new, reps = redact(t, nlp=nlp)  # blank pipeline: no ner, no error
    assert new.metadata["redacted"] is True


# -- the key and the name list ------------------------------------------------------------------

def test_key_written_only_when_asked(tmp_path, rules_result):
    _t, _gold, _new, reps = rules_result
    assert list(tmp_path.iterdir()) == []  # redact() itself writes nothing
    path = write_key({"planted.txt": reps}, tmp_path / "keys" / "key.csv")
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert rows and set(rows[0]) == {"document", "pseudonym", "kind", "original"}
    assert {(r["pseudonym"], r["original"]) for r in rows} == \
        {(r.pseudonym, r.original) for r in reps}
    assert [p.name for p in path.parent.iterdir()] == ["key.csv"]  # no temp file left


def test_read_name_list(tmp_path):
    p = tmp_path / "redact.txt"
    p.write_text("# people to redact\nGareth Llewellyn\n\nSiobhan  # the PI\ngareth llewellyn\n",
                 encoding="utf-8")
    assert read_name_list(p) == ["Gareth Llewellyn", "Siobhan"]
    with pytest.raises(ReadError, match="not found"):
        read_name_list(tmp_path / "missing.txt")
    p.write_text("Ann\n12345\n", encoding="utf-8")
    with pytest.raises(ReadError, match=r"redact.txt:2: .*no letters"):
        read_name_list(p)
    p.write_text("X\n", encoding="utf-8")
    with pytest.raises(ReadError, match="too short"):
        read_name_list(p)
    p.write_bytes(b"\x00\x01binary")
    with pytest.raises(ReadError, match="binary"):
        read_name_list(p)


# -- property test: planted emails / phones in random text keep offsets valid -------------------

_word = st.text(alphabet="abcdefghij klmnop,.'-\n", min_size=0, max_size=30)
_email = st.builds(lambda u, d: f"{u}@{d}.org", st.from_regex(r"[a-z][a-z0-9.]{0,8}[a-z]", fullmatch=True),
                   st.from_regex(r"[a-z]{2,8}", fullmatch=True))
_phone = st.builds(lambda a, b: f"07700 {a}{b}", st.just("900"), st.from_regex(r"\d{3}", fullmatch=True)) | \
    st.builds(lambda x: f"+44 20 7946 {x}", st.from_regex(r"\d{4}", fullmatch=True))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_word, st.one_of(_email, _phone), _word), min_size=1, max_size=5))
def test_random_texts_with_planted_items_keep_offsets_valid(parts):
    turns = []
    for i, (a, item, b) in enumerate(parts):
        utt = f"{a} {item} {b}".strip()
        turns.append(("Interviewer" if i % 2 else "Respondent", utt))
    t = _doc(turns)
    new, reps = redact(t, nlp=False)
    _offsets_valid(t, new, reps)
    for _a, item, _b in parts:
        assert item not in new.text
    assert all(isinstance(r, Replacement) for r in reps)


def test_ner_falls_back_gracefully_when_no_pipeline(monkeypatch):
    import spacy

    import qual.redact as r

    monkeypatch.setattr(r, "_NER_CACHE", {})

    def boom(name, *a, **k):
        raise OSError(f"[E050] Can't find model '{name}'")

    monkeypatch.setattr(spacy, "load", boom)
    assert r.load_ner() is None
    t = _doc([("Interviewer", "Hi"), ("Respondent", "Email me at x@example.org")])
    new, reps = r.redact(t)  # nlp=None: tries to load, falls back to the rules
    assert [x.kind for x in reps] == ["EMAIL"]


SAMPLES = REPO / "transcripts"


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("interview_*")))
def test_sample_transcripts(name):
    from qual.readers import read_metadata, read_transcript

    t = read_transcript(SAMPLES / name, metadata=read_metadata(SAMPLES).get(name))
    new, reps = redact(t, nlp=False)
    _offsets_valid(t, new, reps)
    assert "@example.org" not in new.text and "07700 900123" not in new.text
    assert "0117 496 0123" not in new.text
    for turn in t.turns:  # every named speaker is pseudonymised, role labels are kept
        if turn.speaker not in ("Interviewer", "Q", "A"):
            assert turn.speaker not in new.text


_KIND = st.sampled_from(["PERSON", "EMAIL", "PHONE", "NINO", "NHS", "POSTCODE"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(1, 15), _KIND), max_size=25))
def test_overlap_resolution_matches_the_simple_rule(raw):
    from qual.redact import _PRIORITY, _resolve

    spans = [(s, s + n, k, i) for i, (s, n, k) in enumerate(raw)]
    expect, taken = [], []
    for s in sorted(spans, key=lambda s: (-(s[1] - s[0]), _PRIORITY[s[2]], s[0])):
        if not any(s[0] < e and b < s[1] for b, e in taken):
            taken.append((s[0], s[1]))
            expect.append(s)
    assert _resolve(spans) == sorted(expect)
