"""The codebook: themes, sub-codes, guidance and example utterances, read from YAML.

A codebook is a YAML file (or a folder of them; see ``load_codebook``) with this shape::

    name: ...                      # required (in at least one file of a folder)
    description: ...               # optional
    themes:                        # list, in display/report order
      - id: public                 # required; lower case letters, digits, "_" or "-"
        name: ...                  # required
        color: "#0072b2"           # optional "#rgb" or "#rrggbb" (stored as lower-case #rrggbb)
        definition: ...            # required
        use_when: ...              # optional
        do_not_use_when: ...       # optional
        subcodes:                  # required, at least one
          - id: public.trust       # required; "<theme id>.<slug>"
            name: ...              # required
            definition: ...        # required
            use_when: ...          # optional
            do_not_use_when: ...   # optional
            examples: ["...", ...] # required, at least one non-empty string
    none:                          # optional: what falls outside every theme
      definition: ...
      examples: [...]
    polarity:                      # optional; keys among barrier, opportunity, neutral
      barrier: {definition: ..., examples: [...]}

Validation happens on load. Every problem is a ``CodebookError`` naming the file, the 1-based
line (from the YAML node marks) and the field path, e.g. ``themes[2].subcodes[0].examples``.
Unknown keys are errors (to catch typos), and so are duplicate YAML keys, which plain YAML
would silently collapse.

Version
-------
``Codebook.version`` is the first 12 hex digits of the SHA-256 of the canonical JSON of
``Codebook.to_dict()`` (keys sorted, compact separators, UTF-8). ``to_dict()`` holds the parsed
content after normalisation (text stripped of surrounding whitespace, colours lower-case
``#rrggbb``, missing optional fields as ""). So comments, indentation, quoting and key order do
not change the version, nor does splitting the same content over several files; any change to
an id, a name, a definition, the guidance, a colour, an example, or the order of themes,
sub-codes or examples does. The file path is not part of it.

Reference sets
--------------
A codebook's folder (the folder given, or the folder of the file given) may hold a
``reference/`` sub-folder of labelled CSV files: real or
realistic answers coded by people (columns ``text`` and ``themes``, optionally ``polarity``,
``source``, ``question``, ``id``). They are not part of the YAML structure (``to_dict``) but
they are part of the version: the version of a codebook with reference rows is the hash of
``to_dict()`` together with every reference row. ``HybridCoder`` learns from them beside the
examples; errors name the file, the line and the column.
"""

from __future__ import annotations

import csv
import difflib
import io
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

import yaml

from qual import POLARITIES
from qual.errors import CodebookError
from qual.hashing import sha256_json

__all__ = [
    "NONE",
    "SubCode",
    "Theme",
    "ReferenceExample",
    "Codebook",
    "load_codebook",
    "codebook_from_dict",
    "save_codebook",
    "dump_codebook",
    "add_subcode",
    "default_codebook_path",
]

#: Label used for passages (and examples) that fall outside every theme.
NONE = "none"

TOP_KEYS = ("name", "description", "themes", "none", "polarity")
THEME_KEYS = ("id", "name", "color", "definition", "use_when", "do_not_use_when", "subcodes")
SUBCODE_KEYS = ("id", "name", "definition", "use_when", "do_not_use_when", "examples")
SECTION_KEYS = ("definition", "examples")
YAML_SUFFIXES = (".yaml", ".yml")

#: Okabe-Ito colours, given in turn to themes that do not set their own.
DEFAULT_COLORS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7",
                  "#56b4e9", "#d55e00", "#f0e442", "#000000")

_ID = r"[a-z][a-z0-9_-]*"
_THEME_ID_RE = re.compile(rf"^{_ID}$")
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_COLOR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")

_Loc = tuple  # a field path: mapping keys (str) and list indices (int)


# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class SubCode:
    """One sub-code of a theme; ``theme`` is the id of the theme it belongs to."""

    id: str
    name: str
    definition: str
    use_when: str = ""
    do_not_use_when: str = ""
    examples: list[str] = field(default_factory=list)
    theme: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "definition": self.definition,
            "use_when": self.use_when,
            "do_not_use_when": self.do_not_use_when,
            "examples": list(self.examples),
        }


@dataclass(frozen=True)
class Theme:
    id: str
    name: str
    definition: str
    use_when: str = ""
    do_not_use_when: str = ""
    color: str = ""
    subcodes: list[SubCode] = field(default_factory=list)

    def __post_init__(self) -> None:
        for sub in self.subcodes:
            if not sub.theme:
                object.__setattr__(sub, "theme", self.id)
            elif sub.theme != self.id:
                raise CodebookError(f"sub-code '{sub.id}' says it belongs to theme '{sub.theme}' "
                                    f"but is listed under theme '{self.id}'")

    @property
    def subcode_ids(self) -> list[str]:
        return [s.id for s in self.subcodes]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "color": self.color,
            "definition": self.definition,
            "use_when": self.use_when,
            "do_not_use_when": self.do_not_use_when,
            "subcodes": [s.to_dict() for s in self.subcodes],
        }


@dataclass(frozen=True)
class ReferenceExample:
    """One labelled answer of a reference set: ``themes`` is a tuple of theme ids, empty for
    ``none``; ``polarity`` may be empty; ``source`` groups the answers of one witness or
    interview (cross-validation keeps a source whole); ``origin`` is ``file:line``."""

    text: str
    themes: tuple[str, ...]
    polarity: str = ""
    source: str = ""
    origin: str = ""


@dataclass(frozen=True)
class Codebook:
    """A validated codebook. Treat it as immutable: ``add_subcode`` returns a new one.

    ``polarity`` and ``polarity_definitions`` always hold the three keys of
    ``qual.POLARITIES``. ``version`` is computed from the content (see the module docstring)
    whatever is passed in; ``path`` (where it was loaded from) takes no part in equality.
    """

    name: str
    description: str = ""
    themes: list[Theme] = field(default_factory=list)
    none_examples: list[str] = field(default_factory=list)
    none_definition: str = ""
    polarity: dict[str, list[str]] = field(default_factory=dict)
    polarity_definitions: dict[str, str] = field(default_factory=dict)
    version: str = field(default="", compare=False)
    path: str = field(default="", compare=False)
    reference: tuple[ReferenceExample, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        for mapping in (self.polarity, self.polarity_definitions):
            unknown = sorted(set(mapping) - set(POLARITIES))
            if unknown:
                raise CodebookError(f"unknown polarity '{unknown[0]}' (expected one of "
                                    f"{', '.join(POLARITIES)})", path=self.path or None,
                                    field=f"polarity.{unknown[0]}")
        object.__setattr__(self, "polarity",
                           {k: list(self.polarity.get(k, [])) for k in POLARITIES})
        object.__setattr__(self, "polarity_definitions",
                           {k: self.polarity_definitions.get(k, "") for k in POLARITIES})
        content = self.to_dict()
        if self.reference:
            content = {"codebook": content,
                       "reference": [[r.text, list(r.themes), r.polarity, r.source]
                                     for r in self.reference]}
        object.__setattr__(self, "version", sha256_json(content)[:12])

    # -- lookups -------------------------------------------------------------------------

    @property
    def theme_ids(self) -> list[str]:
        """Theme ids in file order."""
        return [t.id for t in self.themes]

    @property
    def subcode_ids(self) -> list[str]:
        """Sub-code ids in file order (theme by theme)."""
        return [s.id for t in self.themes for s in t.subcodes]

    @property
    def subcodes(self) -> list[SubCode]:
        return [s for t in self.themes for s in t.subcodes]

    def theme(self, theme_id: str) -> Theme:
        for t in self.themes:
            if t.id == theme_id:
                return t
        raise KeyError(f"unknown theme '{theme_id}' (known: {', '.join(self.theme_ids)})")

    def subcode(self, subcode_id: str) -> SubCode:
        for s in self.subcodes:
            if s.id == subcode_id:
                return s
        raise KeyError(f"unknown sub-code '{subcode_id}'")

    def theme_of(self, subcode_id: str) -> str:
        """The id of the theme a sub-code belongs to."""
        return self.subcode(subcode_id).theme

    def labelled_examples(self, include_none: bool = True) -> list[tuple[str, str, str]]:
        """``(text, theme_id, subcode_id)`` for every example; none examples as (text, NONE, NONE)."""
        rows = [(e, s.theme, s.id) for s in self.subcodes for e in s.examples]
        if include_none:
            rows += [(e, NONE, NONE) for e in self.none_examples]
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The content in the file structure; the version is the hash of exactly this."""
        return {
            "name": self.name,
            "description": self.description,
            "themes": [t.to_dict() for t in self.themes],
            "none": {"definition": self.none_definition, "examples": list(self.none_examples)},
            "polarity": {k: {"definition": self.polarity_definitions.get(k, ""),
                             "examples": list(self.polarity.get(k, []))} for k in POLARITIES},
        }


def default_codebook_path() -> Path:
    """The repository's ``codebook/`` folder."""
    return Path(__file__).resolve().parent.parent / "codebook"


# --------------------------------------------------------------------------------------------
# Where things are in the source: field paths to lines


def _field_name(loc: Iterable) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Source:
    """One file (or an in-memory dict): its path and the line of every field path in it.

    A mapping entry is placed on the line of its key, a list item on the line where it starts,
    and a field that is absent on the line of the nearest enclosing item that is present.
    """

    def __init__(self, path: str | None, root_line: int | None = None,
                 value_lines: dict | None = None, key_lines: dict | None = None):
        self.path = path
        self.root_line = root_line
        self.value_lines = value_lines or {}
        self.key_lines = key_lines or {}

    def line(self, loc: _Loc) -> int | None:
        loc = tuple(loc)
        while loc:
            if isinstance(loc[-1], str) and loc in self.key_lines:
                return self.key_lines[loc]
            if loc in self.value_lines:
                return self.value_lines[loc]
            loc = loc[:-1]
        return self.root_line

    def where(self, loc: _Loc) -> str:
        line = self.line(loc)
        name = Path(self.path).name if self.path else "<codebook>"
        return f"{name}:{line}" if line is not None else name

    def error(self, message: str, loc: _Loc = ()) -> CodebookError:
        return CodebookError(message, path=self.path, line=self.line(loc),
                             field=_field_name(loc) or None)


def _map_lines(node: yaml.Node, src: _Source, loc: _Loc = ()) -> None:
    """Record the line of every mapping key and value and of every list item; reject duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise CodebookError("mapping keys must be plain names", path=src.path,
                                    line=key_node.start_mark.line + 1,
                                    field=_field_name(loc) or None)
            key = key_node.value
            key_line = key_node.start_mark.line + 1
            if key in seen:
                raise CodebookError(f"duplicate key '{key}' (first given on line {seen[key]})",
                                    path=src.path, line=key_line,
                                    field=_field_name(loc + (key,)))
            seen[key] = key_line
            src.key_lines[loc + (key,)] = key_line
            _map_lines(value_node, src, loc + (key,))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            src.value_lines[loc + (i,)] = item.start_mark.line + 1
            _map_lines(item, src, loc + (i,))


def _read_yaml(path: Path) -> tuple[Any, _Source]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CodebookError(f"cannot read codebook: {exc.strerror or exc}", path=path) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CodebookError("codebook is not UTF-8 text", path=path,
                            line=raw[:exc.start].count(b"\n") + 1) from exc

    from .safeyaml import loader_class, refusal

    loader = loader_class()(text)
    try:
        refused = refusal(text, "a codebook")       # alias bombs, recursion, deep nesting
        if refused is not None:
            raise CodebookError(refused[1], path=path, line=refused[0])
        node = loader.get_single_node()
        if node is None:
            raise CodebookError("codebook file is empty", path=path, line=1)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "cannot parse"
        if exc.context and exc.problem:
            context = exc.context
            if exc.context_mark is not None and exc.context_mark.line != mark.line:
                context += f" (from line {exc.context_mark.line + 1})"
            problem = f"{context}, {problem}"
        raise CodebookError(f"invalid YAML: {problem}", path=path,
                            line=mark.line + 1 if mark is not None else None) from exc
    except yaml.YAMLError as exc:
        raise CodebookError(f"invalid YAML: {exc}", path=path) from exc
    finally:
        loader.dispose()

    src = _Source(str(path), root_line=node.start_mark.line + 1)
    _map_lines(node, src)
    return data, src


# --------------------------------------------------------------------------------------------
# Validation of one file's parsed content


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _mapping(value: Any, loc: _Loc, src: _Source, allowed: tuple[str, ...],
             what: str) -> dict:
    if not isinstance(value, dict):
        raise src.error(f"{what} must be a mapping of 'key: value' lines, got {_type_name(value)}",
                        loc)
    for key in value:
        if not isinstance(key, str) or key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise src.error(f"unknown key '{key}' in {what}{hint} (allowed: {', '.join(allowed)})",
                            loc + (str(key),))
    return value


def _text(m: dict, key: str, loc: _Loc, src: _Source, what: str, required: bool) -> str:
    floc = loc + (key,)
    value = m.get(key)
    if value is None:
        if required:
            if key in m:
                raise src.error(f"'{key}' of {what} is empty", floc)
            raise src.error(f"missing required field '{key}' in {what}", floc)
        return ""
    if not isinstance(value, str):
        hint = " (put it in quotes if it is meant as text)" \
            if isinstance(value, (bool, int, float)) or type(value).__name__ in ("date", "datetime") \
            else ""
        raise src.error(f"'{key}' of {what} must be text, got {_type_name(value)}{hint}", floc)
    value = value.strip()
    if required and not value:
        raise src.error(f"'{key}' of {what} is empty", floc)
    return value


def _norm_example(text: str) -> str:
    return " ".join(text.split()).casefold()


def _examples(m: dict, key: str, loc: _Loc, src: _Source, what: str,
              required: bool) -> list[tuple[str, _Loc]]:
    floc = loc + (key,)
    value = m.get(key)
    if value is None:
        if required:
            raise src.error(f"{what} needs at least one example", floc)
        return []
    if not isinstance(value, list):
        raise src.error(f"'{key}' of {what} must be a list of quoted utterances, "
                        f"got {_type_name(value)}", floc)
    if required and not value:
        raise src.error(f"{what} needs at least one example", floc)
    out: list[tuple[str, _Loc]] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        iloc = floc + (i,)
        if item is None or (isinstance(item, str) and not item.strip()):
            raise src.error(f"empty example in {what}", iloc)
        if not isinstance(item, str):
            raise src.error(f"example in {what} must be text, got {_type_name(item)} "
                            f"(put it in quotes)", iloc)
        text = item.strip()
        norm = _norm_example(text)
        if norm in seen:
            raise src.error(f"duplicate example in {what} (same as {key}[{seen[norm]}])", iloc)
        seen[norm] = i
        out.append((text, iloc))
    return out


@dataclass
class _Part:
    """The validated content of one file, still carrying its source locations."""

    src: _Source
    name: tuple[str, _Loc] | None = None
    description: tuple[str, _Loc] | None = None
    themes: list[tuple[dict, _Loc]] = field(default_factory=list)  # theme fields + subcodes
    none_definition: tuple[str, _Loc] | None = None
    none_examples: list[tuple[str, _Loc]] = field(default_factory=list)
    polarity_definitions: dict[str, tuple[str, _Loc]] = field(default_factory=dict)
    polarity: dict[str, list[tuple[str, _Loc]]] = field(default_factory=dict)


def _parse_color(m: dict, loc: _Loc, src: _Source, what: str) -> str:
    floc = loc + ("color",)
    if "color" not in m:
        return ""
    value = m["color"]
    if value is None:
        raise src.error(f"'color' of {what} is empty; write it in quotes, e.g. color: \"#0072b2\" "
                        f"(an unquoted # starts a YAML comment)", floc)
    if not isinstance(value, str) or not _COLOR_RE.match(value.strip()):
        raise src.error(f"invalid colour {value!r} for {what}: expected \"#rgb\" or \"#rrggbb\"",
                        floc)
    value = value.strip().lower()
    if len(value) == 4:
        value = "#" + "".join(c * 2 for c in value[1:])
    return value


def _parse_subcode(raw: Any, loc: _Loc, src: _Source, theme_id: str) -> dict:
    what = f"sub-code {loc[-1] + 1} of theme '{theme_id}'"
    m = _mapping(raw, loc, src, SUBCODE_KEYS, what)
    sid = _text(m, "id", loc, src, what, required=True)
    prefix = f"{theme_id}."
    if not sid.startswith(prefix):
        raise src.error(f"sub-code id '{sid}' must start with its theme id, as in "
                        f"'{prefix}{sid.rsplit('.', 1)[-1]}'", loc + ("id",))
    if not _SLUG_RE.match(sid[len(prefix):]):
        raise src.error(f"sub-code id '{sid}': the part after '{prefix}' must be lower case "
                        f"letters, digits, '_' or '-'", loc + ("id",))
    what = f"sub-code '{sid}'"
    return {
        "id": sid,
        "name": _text(m, "name", loc, src, what, required=True),
        "definition": _text(m, "definition", loc, src, what, required=True),
        "use_when": _text(m, "use_when", loc, src, what, required=False),
        "do_not_use_when": _text(m, "do_not_use_when", loc, src, what, required=False),
        "examples": _examples(m, "examples", loc, src, what, required=True),
        "_loc": loc,
    }


def _parse_theme(raw: Any, loc: _Loc, src: _Source) -> dict:
    what = f"theme {loc[-1] + 1}"
    m = _mapping(raw, loc, src, THEME_KEYS, what)
    tid = _text(m, "id", loc, src, what, required=True)
    if not _THEME_ID_RE.match(tid):
        raise src.error(f"theme id '{tid}' must be lower case letters, digits, '_' or '-', "
                        f"starting with a letter", loc + ("id",))
    if tid == NONE:
        raise src.error(f"'{NONE}' is reserved for passages outside every theme", loc + ("id",))
    what = f"theme '{tid}'"
    theme = {
        "id": tid,
        "name": _text(m, "name", loc, src, what, required=True),
        "color": _parse_color(m, loc, src, what),
        "definition": _text(m, "definition", loc, src, what, required=True),
        "use_when": _text(m, "use_when", loc, src, what, required=False),
        "do_not_use_when": _text(m, "do_not_use_when", loc, src, what, required=False),
    }
    sloc = loc + ("subcodes",)
    subs = m.get("subcodes")
    if subs is None or subs == []:
        raise src.error(f"{what} needs at least one sub-code under 'subcodes'", sloc)
    if not isinstance(subs, list):
        raise src.error(f"'subcodes' of {what} must be a list, got {_type_name(subs)}", sloc)
    parsed: list[dict] = []
    first: dict[str, _Loc] = {}
    for i, raw_sub in enumerate(subs):
        sub = _parse_subcode(raw_sub, sloc + (i,), src, tid)
        if sub["id"] in first:
            raise src.error(f"duplicate sub-code id '{sub['id']}' (first at "
                            f"{src.where(first[sub['id']])})", sloc + (i, "id"))
        first[sub["id"]] = sloc + (i, "id")
        parsed.append(sub)
    theme["subcodes"] = parsed
    return theme


def _parse_section(raw: Any, loc: _Loc, src: _Source, what: str
                   ) -> tuple[tuple[str, _Loc] | None, list[tuple[str, _Loc]]]:
    m = _mapping(raw, loc, src, SECTION_KEYS, what)
    definition = _text(m, "definition", loc, src, what, required=False)
    return ((definition, loc + ("definition",)) if definition else None,
            _examples(m, "examples", loc, src, what, required=False))


def _parse_part(data: Any, src: _Source) -> _Part:
    if not isinstance(data, dict):
        raise src.error(f"a codebook must be a mapping with keys {', '.join(TOP_KEYS)}; "
                        f"got {_type_name(data)}")
    m = _mapping(data, (), src, TOP_KEYS, "the codebook")
    part = _Part(src)
    for key in ("name", "description"):
        if key in m:
            value = _text(m, key, (), src, "the codebook", required=key == "name")
            if value:
                setattr(part, key, (value, (key,)))
    if "themes" in m:
        themes = m["themes"]
        if not isinstance(themes, list):
            raise src.error(f"'themes' must be a list of themes, got {_type_name(themes)}",
                            ("themes",))
        part.themes = [(_parse_theme(t, ("themes", i), src), ("themes", i))
                       for i, t in enumerate(themes)]
    if m.get("none") is not None:
        part.none_definition, part.none_examples = _parse_section(
            m["none"], (NONE,), src, "'none'")
    if m.get("polarity") is not None:
        pol = m["polarity"]
        if not isinstance(pol, dict):
            raise src.error(f"'polarity' must be a mapping with keys {', '.join(POLARITIES)}, "
                            f"got {_type_name(pol)}", ("polarity",))
        for key, value in pol.items():
            if key not in POLARITIES:
                close = difflib.get_close_matches(str(key), POLARITIES, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise src.error(f"unknown polarity '{key}'{hint} (expected one of "
                                f"{', '.join(POLARITIES)})", ("polarity", str(key)))
            if value is None:
                continue
            definition, examples = _parse_section(value, ("polarity", key), src,
                                                  f"polarity '{key}'")
            if definition:
                part.polarity_definitions[key] = definition
            part.polarity[key] = examples
    return part


# --------------------------------------------------------------------------------------------
# Combining files into one codebook


def _merge(parts: list[_Part], origin: str | None) -> Codebook:
    def single(attr: str, label: str) -> str:
        chosen: tuple[str, _Loc, _Part] | None = None
        for part in parts:
            got = getattr(part, attr)
            if got is None:
                continue
            if chosen is None:
                chosen = (got[0], got[1], part)
            elif got[0] != chosen[0]:
                raise part.src.error(f"{label} differs from the one in "
                                     f"{chosen[2].src.where(chosen[1])}", got[1])
        return chosen[0] if chosen else ""

    def pooled(lists: list[tuple[_Part, list[tuple[str, _Loc]]]], what: str,
               seen: dict[str, tuple[_Part, _Loc, str]]) -> list[str]:
        out = []
        for part, items in lists:
            for text, loc in items:
                norm = _norm_example(text)
                if norm in seen:
                    other_part, other_loc, other_what = seen[norm]
                    raise part.src.error(
                        f"example also appears in {other_what} "
                        f"({other_part.src.where(other_loc)})", loc)
                seen[norm] = (part, loc, what)
                out.append(text)
        return out

    name = single("name", "'name'")
    if not name:
        raise CodebookError("the codebook has no 'name'", path=origin,
                            line=parts[0].src.root_line if len(parts) == 1 else None,
                            field="name")
    description = single("description", "'description'")
    none_definition = single("none_definition", "the definition of 'none'")

    theme_dicts: list[tuple[dict, _Loc, _Part]] = []
    theme_first: dict[str, tuple[_Part, _Loc]] = {}
    sub_first: dict[str, tuple[_Part, _Loc]] = {}
    # Code names are unique across the whole tree (themes and sub-codes together, ignoring case
    # and spacing): QDA tools such as QualCoder key codes by name and drop a second code of the
    # same name, with its codings, when a .qdpx is imported.
    name_first: dict[str, tuple[str, _Part, _Loc]] = {}

    def unique_name(name: str, what: str, part: _Part, nloc: _Loc) -> None:
        key = " ".join(name.split()).casefold()
        if key in name_first:
            other_what, other, other_loc = name_first[key]
            raise part.src.error(f"{what} has the name '{name}', already the name of "
                                 f"{other_what} ({other.src.where(other_loc)}); code names "
                                 f"must be unique across all themes and sub-codes", nloc)
        name_first[key] = (what, part, nloc)

    for part in parts:
        for theme, loc in part.themes:
            if theme["id"] in theme_first:
                other, other_loc = theme_first[theme["id"]]
                raise part.src.error(f"duplicate theme id '{theme['id']}' (first at "
                                     f"{other.src.where(other_loc)})", loc + ("id",))
            theme_first[theme["id"]] = (part, loc + ("id",))
            unique_name(theme["name"], f"theme '{theme['id']}'", part, loc + ("name",))
            for sub in theme["subcodes"]:
                sloc = sub["_loc"] + ("id",)
                if sub["id"] in sub_first:
                    other, other_loc = sub_first[sub["id"]]
                    raise part.src.error(f"duplicate sub-code id '{sub['id']}' (first at "
                                         f"{other.src.where(other_loc)})", sloc)
                sub_first[sub["id"]] = (part, sloc)
                unique_name(sub["name"], f"sub-code '{sub['id']}'", part,
                            sub["_loc"] + ("name",))
            theme_dicts.append((theme, loc, part))
    if not theme_dicts:
        raise CodebookError("the codebook has no themes", path=origin, field="themes")

    # Within one class examples must be unique; an example may sit under two sub-codes
    # (a passage can carry several codes), but never under a sub-code and 'none', nor under
    # two polarities: those labels contradict each other.
    seen_none: dict[str, tuple[_Part, _Loc, str]] = {}
    none_examples = pooled([(p, p.none_examples) for p in parts], "'none'", seen_none)
    themes: list[Theme] = []
    used_colors = {t["color"] for t, _, _ in theme_dicts if t["color"]}
    spare_colors = [c for c in DEFAULT_COLORS if c not in used_colors]
    for theme, _loc, part in theme_dicts:
        subcodes = []
        for sub in theme["subcodes"]:
            for text, eloc in sub["examples"]:
                norm = _norm_example(text)
                if norm in seen_none:
                    other_part, other_loc, _ = seen_none[norm]
                    raise part.src.error(f"example of '{sub['id']}' is also a 'none' example "
                                         f"({other_part.src.where(other_loc)})", eloc)
            subcodes.append(SubCode(id=sub["id"], name=sub["name"],
                                    definition=sub["definition"], use_when=sub["use_when"],
                                    do_not_use_when=sub["do_not_use_when"],
                                    examples=[t for t, _ in sub["examples"]], theme=theme["id"]))
        color = theme["color"] or (spare_colors.pop(0) if spare_colors else DEFAULT_COLORS[0])
        themes.append(Theme(id=theme["id"], name=theme["name"], definition=theme["definition"],
                            use_when=theme["use_when"], do_not_use_when=theme["do_not_use_when"],
                            color=color, subcodes=subcodes))

    seen_pol: dict[str, tuple[_Part, _Loc, str]] = {}
    polarity = {k: pooled([(p, p.polarity.get(k, [])) for p in parts], f"polarity '{k}'",
                          seen_pol) for k in POLARITIES}
    polarity_definitions = {}
    for k in POLARITIES:
        chosen = None
        for part in parts:
            got = part.polarity_definitions.get(k)
            if got is None:
                continue
            if chosen is None:
                chosen = (got, part)
            elif got[0] != chosen[0][0]:
                raise part.src.error(f"the definition of polarity '{k}' differs from the one in "
                                     f"{chosen[1].src.where(chosen[0][1])}", got[1])
        polarity_definitions[k] = chosen[0][0] if chosen else ""

    return Codebook(name=name, description=description, themes=themes,
                    none_examples=none_examples, none_definition=none_definition,
                    polarity=polarity, polarity_definitions=polarity_definitions,
                    path=str(origin) if origin is not None else "")


# --------------------------------------------------------------------------------------------
# Public entry points


def _codebook_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir()
                  if f.is_file() and f.suffix.lower() in YAML_SUFFIXES
                  and not f.name.startswith("."))


def load_codebook(path: str | os.PathLike | None = None) -> Codebook:
    """Load and validate a codebook from a YAML file or a folder of them.

    A folder's ``*.yaml``/``*.yml`` files (hidden files excepted) are read in sorted order and
    combined: themes in file order, ``none`` and ``polarity`` examples pooled. A theme or
    sub-code id defined twice is an error, and so is a ``name``, ``description`` or definition
    given differently in two files. ``path=None`` loads ``default_codebook_path()``.
    """
    p = Path(path) if path is not None else default_codebook_path()
    if not p.exists():
        raise CodebookError("codebook not found", path=p)
    if p.is_dir():
        files = _codebook_files(p)
        if not files:
            raise CodebookError("folder holds no codebook (*.yaml or *.yml) files", path=p)
    else:
        files = [p]
    parts = [_parse_part(*_read_yaml(f)) for f in files]
    book = _merge(parts, str(p))
    ref = (p if p.is_dir() else p.parent) / REFERENCE_FOLDER
    if ref.is_dir():
        rows = [r for f in sorted(ref.glob("*.csv")) if not f.name.startswith(".")
                for r in read_reference_csv(f, book.theme_ids)]
        book = replace(book, reference=tuple(rows))
    return book


REFERENCE_FOLDER = "reference"
MAX_REFERENCE_BYTES = 50_000_000


def read_reference_csv(path: str | os.PathLike, theme_ids: list[str]) -> list[ReferenceExample]:
    """Read one reference set (see the module docstring). Every fault is a CodebookError
    naming the file, the line and the column."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_REFERENCE_BYTES:
            raise CodebookError(f"reference set over {MAX_REFERENCE_BYTES // 1_000_000} MB",
                                path=path)
        raw = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CodebookError("not UTF-8 text; save the reference set as UTF-8", path=path) from None
    except OSError as e:
        raise CodebookError(f"cannot read the reference set: {e.strerror or e}", path=path) from None
    reader = csv.DictReader(io.StringIO(raw, newline=""))
    try:
        header = [c.strip() for c in (reader.fieldnames or [])]
    except csv.Error as e:
        raise CodebookError(f"not a valid CSV file: {e}", path=path, line=1) from None
    for col in ("text", "themes"):
        if col not in header:
            raise CodebookError(f"no '{col}' column (columns found: {', '.join(header) or 'none'})",
                                path=path, line=1, field=col)
    reader.fieldnames = header
    known = set(theme_ids)
    rows: list[ReferenceExample] = []
    start = 2
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            text = (row.get("text") or "").strip()
            labels = [t.strip() for t in (row.get("themes") or "").split(";") if t.strip()]
            where = dict(path=path, line=line)
            if not text:
                raise CodebookError("empty text", field="text", **where)
            if not labels:
                raise CodebookError(f"empty; give one or more of {', '.join(theme_ids)} or "
                                    f"'{NONE}', separated by ';'", field="themes", **where)
            bad = [t for t in labels if t not in known | {NONE}]
            if bad:
                raise CodebookError(f"unknown theme '{bad[0]}' (expected "
                                    f"{', '.join(theme_ids)} or '{NONE}')", field="themes", **where)
            if NONE in labels and len(labels) > 1:
                raise CodebookError(f"'{NONE}' cannot be combined with a theme", field="themes",
                                    **where)
            polarity = (row.get("polarity") or "").strip()
            if polarity and polarity not in POLARITIES:
                raise CodebookError(f"unknown polarity '{polarity}' (expected "
                                    f"{', '.join(POLARITIES)} or empty)", field="polarity", **where)
            rows.append(ReferenceExample(
                text=text, themes=tuple(t for t in labels if t != NONE), polarity=polarity,
                source=(row.get("source") or "").strip() or f"{path.name}:{line}",
                origin=f"{path}:{line}"))
    except csv.Error as e:
        raise CodebookError(f"not a valid CSV file: {e}", path=path, line=start) from None
    if not rows:
        raise CodebookError("no rows after the header", path=path, line=2)
    return rows


def codebook_from_dict(data: Any, path: str | None = None) -> Codebook:
    """Validate content already parsed into the file structure (e.g. from REFI-QDA import).

    Errors name the field path; they carry no line.
    """
    src = _Source(path)
    return _merge([_parse_part(data, src)], path)


class _Dumper(yaml.SafeDumper):
    """Indents lists under their key, which reads more like the hand-written codebook."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


def dump_codebook(codebook: Codebook) -> str:
    """The codebook as YAML text in the file structure (empty optional fields left out)."""
    data = codebook.to_dict()
    if not data["description"]:
        del data["description"]
    for theme in data["themes"]:
        for section in [theme, *theme["subcodes"]]:
            for key in ("use_when", "do_not_use_when"):
                if not section[key]:
                    del section[key]
    for key in ("none", *[("polarity", k) for k in POLARITIES]):
        section = data[key] if isinstance(key, str) else data[key[0]][key[1]]
        if not section["definition"]:
            del section["definition"]
    header = (f"# {codebook.name}\n"
              f"# Written by qual. Version {codebook.version} is a hash of the content below;\n"
              f"# comments and layout do not change it. Structure: see qual/codebook.py.\n\n")
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=92,
                     default_flow_style=False)
    return header + body


def _save_target(path: Path) -> Path:
    if path.suffix.lower() in YAML_SUFFIXES:
        if path.is_dir():
            raise CodebookError("cannot write the codebook: this is a folder", path=path)
        return path
    if path.is_dir():
        files = _codebook_files(path)
        if len(files) == 1:
            return files[0]
        if not files:
            return path / "codebook.yaml"
        raise CodebookError(f"folder holds {len(files)} codebook files; name the file to write",
                            path=path)
    raise CodebookError("codebook path must be a .yaml/.yml file or an existing folder",
                        path=path)


def save_codebook(codebook: Codebook, path: str | os.PathLike) -> Path:
    """Write the codebook as YAML, atomically (temporary file, then ``os.replace``).

    ``path`` is a ``.yaml``/``.yml`` file, or a folder: a folder holding one codebook file has
    that file replaced, an empty folder gets ``codebook.yaml``. Comments in a file being
    replaced are not kept (the version does not depend on them; ``save_added_subcode`` keeps
    them when one sub-code was added). Returns the file written.
    """
    target = _save_target(Path(path))
    _write_atomic(target, dump_codebook(codebook))
    return target


def _subcode_block(new: Codebook, subcode_id: str, indent: int) -> str:
    """One sub-code of ``new`` as a YAML list item, indented to sit among its siblings."""
    for theme in new.to_dict()["themes"]:
        for sub in theme["subcodes"]:
            if sub["id"] == subcode_id:
                item = {k: v for k, v in sub.items()
                        if v or k not in ("use_when", "do_not_use_when")}
                text = yaml.dump([item], Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                                 width=92 - indent, default_flow_style=False)
                return "".join(" " * indent + line if line.strip() else line
                               for line in text.splitlines(keepends=True))
    raise KeyError(subcode_id)


def _with_subcode_inserted(text: str, new: Codebook, theme_id: str, subcode_id: str) -> str | None:
    """The codebook file ``text`` with the sub-code inserted after the theme's last sub-code,
    comments and layout untouched; None when the file's shape does not allow it."""
    root = yaml.compose(text)
    if not isinstance(root, yaml.MappingNode):
        return None
    values = {k.value: v for k, v in root.value if isinstance(k, yaml.ScalarNode)}
    themes = values.get("themes")
    if not isinstance(themes, yaml.SequenceNode):
        return None
    for item in themes.value:
        if not isinstance(item, yaml.MappingNode):
            continue
        fields = {k.value: v for k, v in item.value if isinstance(k, yaml.ScalarNode)}
        if getattr(fields.get("id"), "value", None) != theme_id:
            continue
        subs = fields.get("subcodes")
        if not isinstance(subs, yaml.SequenceNode) or not subs.value or subs.flow_style:
            return None
        last = subs.value[-1]
        lines = text.splitlines(keepends=True)
        end = min(last.end_mark.line, len(lines) - 1)
        if end == last.end_mark.line and lines[end][:last.end_mark.column].strip() in ("", "-"):
            end -= 1                            # the mark is where the next item begins
        while end > last.start_mark.line and (not lines[end].strip()
                                              or lines[end].lstrip().startswith("#")):
            end -= 1
        head = "".join(lines[:end + 1])
        if not head.endswith("\n"):
            head += "\n"
        indent = max(last.start_mark.column - 2, 0)
        return head + "\n" + _subcode_block(new, subcode_id, indent) + "".join(lines[end + 1:])
    return None


def save_added_subcode(new: Codebook, theme_id: str, subcode_id: str,
                       path: str | os.PathLike) -> tuple[Path, bool]:
    """Write ``new`` (a codebook with one sub-code added by ``add_subcode``) to ``path``,
    keeping the file's comments and layout: the sub-code is inserted after its theme's last
    sub-code. The result is read back and must give exactly ``new``; where it cannot (an
    unusual layout), the whole codebook is written as ``save_codebook`` would, without the
    comments. Returns ``(file written, whether the comments were kept)``."""
    target = _save_target(Path(path))
    try:
        original = target.read_text(encoding="utf-8")
        text = _with_subcode_inserted(original, new, theme_id, subcode_id)
        if text is not None and codebook_from_dict(yaml.safe_load(text),
                                                   str(target)).version != new.version:
            text = None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, CodebookError, KeyError):
        text = None
    if text is None:
        return save_codebook(new, target), False
    _write_atomic(target, text)
    return target, True


def _write_atomic(target: Path, text: str) -> None:
    from .atomic import write_text_atomic

    write_text_atomic(target, text, what="the codebook", error=CodebookError)


def add_subcode(codebook: Codebook, theme_id: str, subcode_id: str, name: str, definition: str,
                examples: list[str], *, use_when: str = "", do_not_use_when: str = ""
                ) -> Codebook:
    """A new codebook with a sub-code appended to a theme; the original is unchanged.

    ``subcode_id`` may be the full ``"<theme>.<slug>"`` or just the slug. The result is
    validated like a loaded codebook, so errors name the offending argument or field.
    """
    where = codebook.path or None
    if theme_id not in codebook.theme_ids:
        raise CodebookError(f"unknown theme '{theme_id}' (known: {', '.join(codebook.theme_ids)})",
                            path=where, field="theme")
    if not isinstance(subcode_id, str) or not subcode_id.strip():
        raise CodebookError("sub-code id is empty", path=where, field="id")
    subcode_id = subcode_id.strip()
    if "." not in subcode_id:
        subcode_id = f"{theme_id}.{subcode_id}"
    if not subcode_id.startswith(f"{theme_id}."):
        raise CodebookError(f"sub-code id '{subcode_id}' must start with '{theme_id}.'",
                            path=where, field="id")
    if subcode_id in codebook.subcode_ids:
        raise CodebookError(f"sub-code '{subcode_id}' already exists", path=where, field="id")
    if isinstance(examples, str) or not isinstance(examples, (list, tuple)):
        raise CodebookError("examples must be a list of utterances", path=where,
                            field="examples")
    data = codebook.to_dict()
    index = codebook.theme_ids.index(theme_id)
    subcodes = data["themes"][index]["subcodes"]
    new_at = f"themes[{index}].subcodes[{len(subcodes)}]"
    subcodes.append({
        "id": subcode_id, "name": name, "definition": definition, "use_when": use_when,
        "do_not_use_when": do_not_use_when, "examples": list(examples),
    })
    try:
        return codebook_from_dict(data, where)
    except CodebookError as exc:
        # Name the argument at fault ("name", "examples[1]") rather than its place in the file.
        if exc.field and exc.field.startswith(new_at):
            rest = exc.field[len(new_at):].lstrip(".")
            raise CodebookError(exc.message, path=where, field=rest or None) from exc
        raise
