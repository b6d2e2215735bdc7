"""qual: qualitative coding of stakeholder interviews against a codebook of themes.

The package is a one-way flow of plain data (see ``DESIGN.md`` in the shared folder):
read -> redact -> segment -> embed -> code -> topics -> review -> summarise/export.
Heavy libraries (torch, sentence-transformers, spaCy, BERTopic) are imported lazily
inside the functions that need them so that ``python -m qual --help`` starts fast.
"""

__version__ = "0.1.0"

THEMES = ("public", "people", "processes", "technical")
POLARITIES = ("barrier", "opportunity", "neutral")
ROLES = ("interviewer", "stakeholder", "other")
