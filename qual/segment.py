"""Segmentation: stakeholder turns into coding units of whole sentences.

Each stakeholder turn becomes one segment, or, when it is long, several windows of
consecutive whole sentences (at most ``max_sentences`` sentences and about ``max_words``
words each). A sentence is never cut, unless it is longer than ``max_sentence_words`` words
(default 4 x ``max_words``): such a run of unpunctuated text (one enormous turn, an automatic
transcript) is cut at word boundaries, preferably after a comma or dash, into pieces of at
most ``max_words`` words. So no segment is longer than ``max_sentence_words`` words.
Interviewer and other turns are kept as single context segments so the app can show them,
but only stakeholder segments are coded. Every segment satisfies
``document.text[start:end] == segment.text``.

Sentence boundaries come from spaCy: by default a blank English pipeline with the
rule-based ``sentencizer`` (no model download, fast); any spaCy ``Language`` with sentence
boundaries can be passed in instead.
"""

from __future__ import annotations

import sys

import re
from dataclasses import dataclass

from .model import Segment, Transcript


RUN_ON_FACTOR = 4


@dataclass(frozen=True)
class SegmentParams:
    max_sentences: int = 5
    max_words: int = 120
    # A "sentence" longer than this many words is not a sentence but a run of unpunctuated
    # text (an automatic transcript, one enormous turn): it is cut into pieces of at most
    # max_words words. Default: RUN_ON_FACTOR x max_words. Real sentences stay whole.
    max_sentence_words: int | None = None

    def __post_init__(self):
        if self.max_sentences < 1:
            raise ValueError("max_sentences must be at least 1")
        if self.max_words < 1:
            raise ValueError("max_words must be at least 1")
        if self.max_sentence_words is None:
            object.__setattr__(self, "max_sentence_words", RUN_ON_FACTOR * self.max_words)
        if self.max_sentence_words < self.max_words:
            raise ValueError("max_sentence_words must be at least max_words")


def preload_spacy_without_torch() -> bool:
    """Import spaCy without PyTorch, when that is safe; True if it did. thinc (spaCy's
    machine-learning layer) imports torch whenever it is installed, 1.6 s of every ``ingest``
    and ``code``, although the blank pipeline with the sentencizer never uses it. So while
    spaCy is imported, ``import torch`` is made to fail (thinc then records that it has no
    torch), and it works again at once after, for the PyTorch route or the ONNX export.

    Called by the command line before it starts any work, and it does nothing unless this
    thread is the process's only one (another thread could be importing torch in that moment)
    and neither spaCy nor torch is loaded yet."""
    import threading

    if "spacy" in sys.modules or "torch" in sys.modules or threading.active_count() > 1:
        return False
    sys.modules["torch"] = None     # type: ignore[assignment]  (import torch -> ImportError)
    try:
        import spacy  # noqa: F401
    finally:
        if sys.modules.get("torch", False) is None:
            del sys.modules["torch"]
    return True


def make_nlp():
    """A blank English spaCy pipeline with the rule-based sentencizer (offline, fast)."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.max_length = 10_000_000
    return nlp


def _sentence_spans(doc, base: int) -> list[tuple[int, int]]:
    spans = []
    for sent in doc.sents:
        text = sent.text
        stripped = text.strip()
        if not stripped:
            continue
        lead = len(text) - len(text.lstrip())
        start = base + sent.start_char + lead
        spans.append((start, start + len(stripped)))
    return _reattach_openers(doc.text, spans, base)


_OPENERS = "[({\u201c\u2018"


def _reattach_openers(text: str, spans: list[tuple[int, int]], base: int
                      ) -> list[tuple[int, int]]:
    """The sentencizer leaves an opening bracket or quote at the end of the sentence before
    it ("…a date. [" + "laughs] If we…"): move it to the start of the sentence it opens."""
    out = list(spans)
    for i in range(len(out) - 1):
        start, end = out[i]
        cut = end
        while cut > start and text[cut - 1 - base] in _OPENERS:
            cut -= 1
        if cut == end or not text[start - base:cut - base].strip():
            continue
        new_end = start + len(text[start - base:cut - base].rstrip())
        out[i] = (start, new_end)
        out[i + 1] = (cut, out[i + 1][1])
    return out


_WORD_RE = re.compile(r"\S+")
_BREAK_RE = re.compile(r"[,;:)\u2013\u2014]$|^[-\u2013\u2014]+$")


def _bounded(text: str, spans: list[tuple[int, int]], max_words: int,
             max_sentence_words: int) -> list[tuple[int, int]]:
    """Cut any sentence longer than ``max_sentence_words`` words (a turn without punctuation,
    a runaway transcription) into pieces of at most ``max_words`` whole words. A piece ends
    after a comma, semicolon, colon or dash in its second half where there is one, else at the
    limit. Sentences within ``max_sentence_words`` are never cut."""
    out = []
    for start, end in spans:
        if (end - start < 2 * max_sentence_words
                or len(text[start:end].split()) <= max_sentence_words):
            out.append((start, end))
            continue
        words = [(m.start(), m.end()) for m in _WORD_RE.finditer(text, start, end)]
        i, n = 0, len(words)
        while n - i > max_words:
            cut = i + max_words
            for j in range(i + max_words, i + max(1, max_words // 2), -1):
                if _BREAK_RE.search(text[words[j - 1][0]:words[j - 1][1]]):
                    cut = j
                    break
            out.append((words[i][0], words[cut - 1][1]))
            i = cut
        out.append((words[i][0], words[n - 1][1]))
    return out


def _windows(spans: list[tuple[int, int]], words: list[int], params: SegmentParams):
    """Greedy windows of whole sentences within the sentence and word limits."""
    window: list[int] = []
    count = 0
    for i, n in enumerate(words):
        if window and (len(window) >= params.max_sentences or count + n > params.max_words):
            yield window
            window, count = [], 0
        window.append(i)
        count += n
    if window:
        yield window


def segment(transcript: Transcript, nlp=None, params: SegmentParams | None = None) -> list[Segment]:
    """Cut a transcript into segments with offsets into ``transcript.text``."""
    params = params or SegmentParams()
    nlp = nlp or make_nlp()
    text = transcript.text
    out: list[Segment] = []
    last_question = ""
    stakeholder_turns = [(i, t) for i, t in enumerate(transcript.turns) if t.role == "stakeholder"]
    docs = dict(zip((i for i, _ in stakeholder_turns),
                    nlp.pipe(text[t.start:t.end] for _, t in stakeholder_turns)))
    for i, turn in enumerate(transcript.turns):
        utterance = text[turn.start:turn.end]
        if not utterance.strip():
            continue
        if turn.role != "stakeholder":
            start = turn.start + len(utterance) - len(utterance.lstrip())
            end = turn.end - (len(utterance) - len(utterance.rstrip()))
            utterance = text[start:end]
            out.append(Segment(transcript.name, start, end, utterance, turn.speaker, turn.role, i))
            if turn.role == "interviewer":
                last_question = utterance
            continue
        spans = _bounded(text, _sentence_spans(docs[i], turn.start), params.max_words,
                         params.max_sentence_words)
        words = [len(text[s:e].split()) for s, e in spans]
        for window in _windows(spans, words, params):
            start, end = spans[window[0]][0], spans[window[-1]][1]
            out.append(Segment(transcript.name, start, end, text[start:end], turn.speaker,
                               turn.role, i, context=last_question))
    return out
