"""Readers: transcript files -> :class:`~qual.model.Transcript` (plain text + speaker turns).

This is the edge of the flow where files are touched. Every reader builds the same thing:

* ``Transcript.text`` -- a clean plain text a reviewer reads. Each speaker turn starts with
  ``Name: `` followed by the utterance; markup around labels is stripped (``**Name**:``,
  ``[Name]``, ``<v Name>``, timestamps); headings and stage directions (``*(Pause)*``,
  ``*DR X (sworn).*``, ``Title`` + ``=====``) are kept as their own lines but are not turns;
  a paragraph without a label continues the previous speaker's turn and keeps its paragraph
  break; blocks (turns, headings, stage directions) are separated by one blank line; line
  endings are ``\\n``.
* ``Transcript.turns`` -- one :class:`~qual.model.Turn` per speaker turn, whose ``[start, end)``
  covers the utterance only (not the label), stripped of surrounding whitespace, so that
  ``text[start:end]`` is the utterance. This invariant is held by a property test for every
  format.
* roles -- assigned by :func:`assign_roles` (see its docstring for the precedence).

One module per format family, behind :func:`read_transcript` and :func:`find_transcripts`:

* ``files`` -- finding transcripts in folders, ``metadata.csv``, dispatch by suffix;
* ``base`` -- decoding, front matter, label recognition and the renderer every format shares;
* ``plain`` -- ``.txt``, ``.md``, ``.rst``;
* ``docx`` -- Word;
* ``captions`` -- ``.vtt``, ``.srt``;
* ``roles`` -- interviewer or stakeholder.

Supported formats: ``.txt``, ``.md``, ``.rst`` (one parser: ``Name:``, ``**Name**:``,
``**Name:**``, ``*Name*:``, ``[Name] text``, ``Q:``/``A:``, ``Q.``/``A.``, optional
timestamps ``[00:01:02] Name:`` / ``Name (00:01:02):``, Otter-style ``Name  0:03`` lines,
YAML front matter), ``.docx`` (python-docx: bold or plain labels, headings by style, italic
stage directions, speaker/text tables), ``.vtt`` and ``.srt`` (parsed here, not with
webvtt-py, so that every malformed cue is reported with its line number; ``<v Name>`` voice
tags or ``Name:`` prefixes; consecutive cues of one speaker merge into one turn).

Every bad input raises :class:`~qual.errors.ReadError` with one human message naming the file
(and the line where there is one); no other exception escapes for bad content.
"""

from .base import decode_text
from .files import (METADATA_FILE, NAME_LIST_FILE, SUPPORTED, find_transcripts, read_metadata,
                    read_transcript, side_file)
from .roles import assign_roles

__all__ = [
    "SUPPORTED",
    "METADATA_FILE",
    "NAME_LIST_FILE",
    "side_file",
    "read_transcript",
    "find_transcripts",
    "read_metadata",
    "assign_roles",
    "decode_text",
]
