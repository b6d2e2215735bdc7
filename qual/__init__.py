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
#: ``--encoder``: the route for the sentence model: onnx (fp32 on ONNX Runtime, the default),
#: fp32 (the same on PyTorch), int8 (opt-in) -- README "Speed"
ENCODERS = ("onnx", "fp32", "int8")
DEFAULT_ENCODER = "onnx"
#: ``--coder``: the names of ``qual.coder.CODERS`` (here so that ``--help`` imports no coder)
CODER_NAMES = ("embedding", "hybrid")
DEFAULT_CODER = "hybrid"


def __getattr__(name):
    """``from qual import Project`` without importing the stages until they are used."""
    if name == "Project":
        from .project import Project

        return Project
    raise AttributeError(f"module 'qual' has no attribute {name!r}")


__all__ = ["Project", "THEMES", "POLARITIES", "ROLES", "__version__"]
