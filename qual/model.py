"""Plain data passed between the stages of the flow."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Turn:
    """One speaker turn. ``text[start:end]`` of the owning Transcript is the utterance
    (without the speaker label)."""

    speaker: str
    start: int
    end: int
    role: str = "other"          # interviewer | stakeholder | other
    timestamp: str | None = None  # cue start time for vtt/srt, e.g. "00:01:02.500"
    end_timestamp: str | None = None


@dataclass
class Transcript:
    """A document as read from a file: plain text, speaker turns with offsets, metadata."""

    name: str                    # file name, e.g. "interview_01.txt"
    text: str
    turns: list[Turn]
    metadata: dict = field(default_factory=dict)
    path: str | None = None
    format: str = "txt"          # txt | md | rst | docx | vtt | srt
    sha256: str = ""             # hash of the source file's bytes

    def turn_text(self, turn: Turn) -> str:
        return self.text[turn.start:turn.end]


@dataclass
class Segment:
    """A coding unit: a span of whole sentences of one turn. ``text == document.text[start:end]``."""

    document: str
    start: int
    end: int
    text: str
    speaker: str
    role: str
    turn_index: int
    context: str = ""            # the interviewer's question before this turn, if any
