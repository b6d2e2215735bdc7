from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qual.model import Transcript, Turn
from qual.readers import find_transcripts, read_transcript
from qual.segment import SegmentParams, segment

from conftest import INQUIRY, SAMPLES


def _transcript(parts):
    """Build a transcript from (speaker, role, utterance) parts with real offsets."""
    text, turns = "", []
    for speaker, role, utterance in parts:
        text += f"{speaker}: "
        turns.append(Turn(speaker, len(text), len(text) + len(utterance), role))
        text += utterance + "\n\n"
    return Transcript("t.txt", text, turns)


def test_long_turn_is_split_into_windows_of_whole_sentences(nlp):
    sentences = [f"This is sentence number {i} about linking the census to health records." for i in range(12)]
    t = _transcript([("Q", "interviewer", "What gets in the way?"),
                     ("Ann", "stakeholder", " ".join(sentences))])
    segs = segment(t, nlp, SegmentParams(max_sentences=5, max_words=1000))
    coded = [s for s in segs if s.role == "stakeholder"]
    assert [s.text.count("This is sentence") for s in coded] == [5, 5, 2]
    assert all(s.text.endswith("records.") for s in coded)
    assert all(s.context == "What gets in the way?" for s in coded)
    assert all(t.text[s.start:s.end] == s.text for s in segs)


def test_word_limit_splits_but_never_inside_a_sentence(nlp):
    long = "word " * 200
    t = _transcript([("Ann", "stakeholder", f"Short one. {long.strip()}. Another short one.")])
    segs = segment(t, nlp, SegmentParams(max_sentences=10, max_words=50))
    assert [s.text.split()[0] for s in segs] == ["Short", "word", "Another"]


def test_interviewer_turns_are_context_not_coded(nlp):
    t = _transcript([("Q", "interviewer", "Tell me about trust. And security?"),
                     ("Ann", "stakeholder", "People worry. They really do."),
                     ("Chair", "other", "Thank you.")])
    segs = segment(t, nlp)
    assert [(s.role, s.text) for s in segs] == [
        ("interviewer", "Tell me about trust. And security?"),
        ("stakeholder", "People worry. They really do."),
        ("other", "Thank you.")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["interviewer", "stakeholder", "other"]),
                          st.lists(st.text(min_size=0, max_size=40), min_size=1, max_size=8)),
                min_size=1, max_size=6),
       st.integers(1, 4), st.integers(1, 30))
def test_offsets_hold_for_any_text(nlp, turns, max_sentences, max_words):
    parts = [(f"S{i}", role, " ".join(s + "." for s in sents)) for i, (role, sents) in enumerate(turns)]
    t = _transcript(parts)
    for s in segment(t, nlp, SegmentParams(max_sentences, max_words)):
        assert t.text[s.start:s.end] == s.text
        assert s.text == s.text.strip() and s.text


def test_offsets_hold_on_every_sample_and_inquiry_file(nlp):
    files, _ = find_transcripts([SAMPLES, INQUIRY / "transcripts"])
    assert len(files) == 14
    for path in files:
        t = read_transcript(path)
        segs = segment(t, nlp)
        assert any(s.role == "stakeholder" for s in segs), path
        for s in segs:
            assert t.text[s.start:s.end] == s.text, (path, s)


def test_a_bracket_opening_a_stage_direction_stays_with_it(nlp):
    words = "we never agreed on a format for the dates in the returns, so nothing matched"
    turn = (f"The barrier is that {words}. [laughs] If we got the basics right, "
            f"{words}. (pause) And then “the spine” would work. {words}.")
    t = _transcript([("Ann", "stakeholder", turn)])
    segs = segment(t, nlp, SegmentParams(max_sentences=1, max_words=1000))
    texts = [s.text for s in segs]
    assert not any(x.endswith(("[", "(", "“")) for x in texts), texts
    assert texts[1].startswith("[laughs] If we") and texts[2].startswith("(pause) And then")
    assert all(t.text[s.start:s.end] == s.text for s in segs)
