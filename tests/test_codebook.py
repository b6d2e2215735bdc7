"""Tests for qual/codebook.py: the shipped codebook, validation errors, versions, saving, editing."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from qual.codebook import (
    NONE,
    Codebook,
    SubCode,
    Theme,
    add_subcode,
    codebook_from_dict,
    default_codebook_path,
    load_codebook,
    save_codebook,
)
from qual.errors import CodebookError

DATA = Path(__file__).parent / "data" / "codebooks"
MINIMAL = DATA / "minimal.yaml"
SHIPPED_FILE = default_codebook_path() / "osr.yaml"

THEMES = ["public", "people", "processes", "technical"]
REQUIRED_SUBCODES = [
    "public.trust", "public.transparency", "public.security", "public.engagement",
    "public.benefit",
    "people.leadership", "people.skills", "people.capacity", "people.culture",
    "processes.legal", "processes.governance", "processes.access", "processes.discoverability",
    "technical.standards", "technical.quality", "technical.linkage", "technical.infrastructure",
]


def norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based number of the nth line of ``text`` containing ``needle``.

    A needle that starts with spaces must start the line, so "  - id: beta" does not also
    match "      - id: beta.one".
    """
    hits = [i for i, line in enumerate(text.splitlines(), start=1)
            if (line.startswith(needle) if needle[:1].isspace() else needle in line)]
    assert len(hits) >= nth, f"{needle!r} occurs {len(hits)} times"
    return hits[nth - 1]


def variant(tmp_path: Path, *edits: tuple[str, str], name: str = "variant.yaml") -> Path:
    """minimal.yaml with each ``old`` (which must occur exactly once) replaced by ``new``."""
    text = MINIMAL.read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path) -> CodebookError:
    with pytest.raises(CodebookError) as info:
        load_codebook(path)
    return info.value


@pytest.fixture(scope="module")
def shipped() -> Codebook:
    return load_codebook()


# --------------------------------------------------------------------------------------------
# The shipped codebook


def test_shipped_loads_the_same_from_folder_and_file(shipped):
    single = load_codebook(SHIPPED_FILE)
    assert shipped == single
    assert shipped.version == single.version
    assert Path(shipped.path) == default_codebook_path()


def test_shipped_has_the_four_themes_in_order(shipped):
    assert shipped.theme_ids == THEMES
    assert shipped.name
    assert shipped.description


def test_shipped_has_every_required_subcode_under_its_theme(shipped):
    assert set(REQUIRED_SUBCODES) <= set(shipped.subcode_ids)
    for sid in shipped.subcode_ids:
        assert shipped.theme_of(sid) == sid.split(".")[0]


def test_shipped_example_counts(shipped):
    for sub in shipped.subcodes:
        assert 12 <= len(sub.examples) <= 30, (sub.id, len(sub.examples))
    assert len(shipped.none_examples) >= 40
    for polarity in ("barrier", "opportunity", "neutral"):
        assert len(shipped.polarity[polarity]) >= 25, polarity
        assert shipped.polarity_definitions[polarity]
    assert shipped.none_definition


def test_shipped_guidance_and_colours_are_complete(shipped):
    colours = [t.color for t in shipped.themes]
    assert len(set(colours)) == len(colours)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours)
    for item in [*shipped.themes, *shipped.subcodes]:
        assert item.name and item.definition and item.use_when and item.do_not_use_when, item.id


def test_shipped_examples_are_unique_across_the_whole_codebook(shipped):
    everything = [e for s in shipped.subcodes for e in s.examples] + shipped.none_examples
    everything += [e for k in shipped.polarity for e in shipped.polarity[k]]
    counts: dict[str, int] = {}
    for text in everything:
        counts[norm(text)] = counts.get(norm(text), 0) + 1
    assert [t for t, n in counts.items() if n > 1] == []


def test_shipped_none_examples_include_passing_mentions_of_data_and_departments(shipped):
    passing = [e for e in shipped.none_examples
               if re.search(r"\b(data|department)\b", e, re.IGNORECASE)]
    assert len(passing) >= 3


def test_labelled_examples_cover_subcodes_and_none(shipped):
    rows = shipped.labelled_examples()
    assert len(rows) == sum(len(s.examples) for s in shipped.subcodes) + len(shipped.none_examples)
    assert ("Yeah. Yeah, absolutely.", NONE, NONE) in rows
    assert {theme for _, theme, _ in rows} == set(THEMES) | {NONE}
    assert len(shipped.labelled_examples(include_none=False)) == len(rows) - len(
        shipped.none_examples)


# --------------------------------------------------------------------------------------------
# Version


def test_version_is_12_hex_and_stable_across_loads(shipped):
    assert re.fullmatch(r"[0-9a-f]{12}", shipped.version)
    assert load_codebook().version == shipped.version


def test_version_ignores_comments_and_layout(tmp_path, shipped):
    text = SHIPPED_FILE.read_text(encoding="utf-8")
    edited = "# an extra comment at the top\n\n" + text.replace(
        "name: OSR data sharing and linkage", "name:    'OSR data sharing and linkage'   # hi")
    assert edited != text
    path = tmp_path / "osr.yaml"
    path.write_text(edited + "\n\n", encoding="utf-8")
    shutil.copytree(SHIPPED_FILE.parent / "reference", tmp_path / "reference")
    assert load_codebook(path).version == shipped.version


def test_version_changes_when_an_example_changes(tmp_path, shipped):
    text = SHIPPED_FILE.read_text(encoding="utf-8")
    example = shipped.subcode("technical.linkage").examples[0]
    assert text.count(example) == 1
    path = tmp_path / "osr.yaml"
    path.write_text(text.replace(example, example + " Really."), encoding="utf-8")
    changed = load_codebook(path)
    assert changed.version != shipped.version
    assert changed.subcode("technical.linkage").examples[0] == example + " Really."
    assert changed != shipped


def test_version_follows_content_not_path(tmp_path):
    copy = tmp_path / "elsewhere.yaml"
    shutil.copy(MINIMAL, copy)
    assert load_codebook(copy).version == load_codebook(MINIMAL).version


# --------------------------------------------------------------------------------------------
# Validation errors name the file, the line and the field

# (edits to minimal.yaml, text of the line the error must point at, nth occurrence of that
#  text in the edited file, field, words the message must contain)
CASES = {
    "missing sub-code name": (
        [("        name: Alpha two\n", "")],
        "      - id: alpha.two", 1, "themes[0].subcodes[1].name", "missing required field 'name'"),
    "missing theme definition": (
        [("    definition: Things about beta.\n", "")],
        "  - id: beta", 1, "themes[1].definition", "missing required field 'definition'"),
    "missing theme id": (
        [("  - id: beta\n    name: Beta theme", "  - name: Beta theme")],
        "  - name: Beta theme", 1, "themes[1].id", "missing required field 'id'"),
    "empty list of examples": (
        [('        examples:\n          - "Alpha two is where it gets tricky."',
          "        examples: []")],
        "examples: []", 1, "themes[0].subcodes[1].examples", "at least one example"),
    "empty example": (
        [('          - "Alpha one keeps coming up, you know."', '          - ""')],
        '- ""', 1, "themes[0].subcodes[0].examples[1]", "empty example"),
    "examples not a list": (
        [('        examples:\n          - "Alpha two is where it gets tricky."',
          '        examples: "Alpha two is where it gets tricky."')],
        'examples: "Alpha two', 1, "themes[0].subcodes[1].examples", "must be a list"),
    "example not text": (
        [('          - "Alpha two is where it gets tricky."', "          - 2024")],
        "- 2024", 1, "themes[0].subcodes[1].examples[0]", "must be text"),
    "name not text": (
        [("    name: Beta theme", "    name: 42")],
        "name: 42", 1, "themes[1].name", "must be text"),
    "empty codebook name": (
        [("name: Test codebook", "name:")],
        "name:", 1, "name", "empty"),
    "duplicate theme id": (
        [("  - id: beta\n", "  - id: alpha\n"),
         ("      - id: beta.one", "      - id: alpha.three")],
        "  - id: alpha", 2, "themes[1].id", "duplicate theme id 'alpha'"),
    "duplicate sub-code id": (
        [("      - id: alpha.two", "      - id: alpha.one")],
        "      - id: alpha.one", 2, "themes[0].subcodes[1].id", "duplicate sub-code id"),
    "sub-code id without its theme prefix": (
        [("      - id: alpha.two", "      - id: beta.two")],
        "      - id: beta.two", 1, "themes[0].subcodes[1].id", "must start with its theme id"),
    "badly formed theme id": (
        [("  - id: beta\n", "  - id: Beta Theme\n")],
        "  - id: Beta Theme", 1, "themes[1].id", "lower case"),
    "invalid colour": (
        [('    color: "#112233"', '    color: "blue"')],
        'color: "blue"', 1, "themes[0].color", "invalid colour"),
    "unquoted colour": (
        [('    color: "#112233"', "    color: #112233")],
        "color: #112233", 1, "themes[0].color", "quotes"),
    "unknown polarity key": (
        [("  opportunity:", "  oportunity:")],
        "  oportunity:", 1, "polarity.oportunity", "did you mean 'opportunity'"),
    "unknown top-level key": (
        [("description: Two themes", "descripton: Two themes")],
        "descripton:", 1, "descripton", "did you mean 'description'"),
    "unknown sub-code key": (
        [("        definition: The first alpha thing.", "        defintion: The first alpha thing.")],
        "defintion:", 1, "themes[0].subcodes[0].defintion", "unknown key 'defintion'"),
    "duplicate YAML key": (
        [("    name: Alpha theme\n", "    name: Alpha theme\n    name: Alpha again\n")],
        "name: Alpha again", 1, "themes[0].name", "duplicate key 'name'"),
    "example in a sub-code and in none": (
        [('    - "Lovely weather today."', '    - "Alpha two is where it gets tricky."')],
        '          - "Alpha two is where it gets tricky."', 1,
        "themes[0].subcodes[1].examples[0]", "also a 'none' example"),
    "example under two polarities": (
        [('      - "The new template made it quick."', '      - "It just never gets signed off."')],
        '      - "It just never gets signed off."', 2, "polarity.opportunity.examples[0]",
        "also appears in polarity 'barrier'"),
    "no sub-codes": (
        [("        examples:\n          - \"Beta, honestly, is the whole story.\"\n", ""),
         ("    subcodes:\n      - id: beta.one\n        name: Beta one\n"
          "        definition: The only beta thing.\n        use_when: Beta is meant.\n",
          "    subcodes: []\n")],
        "    subcodes: []", 1, "themes[1].subcodes", "at least one sub-code"),
    "sub-code named like its theme": (
        [("        name: Alpha two\n", "        name: Alpha theme\n")],
        "        name: Alpha theme", 1, "themes[0].subcodes[1].name",
        "already the name of theme 'alpha'"),
    "sub-code named like another theme's sub-code (case and spacing aside)": (
        [("        name: Beta one\n", "        name: alpha  ONE\n")],
        "        name: alpha  ONE", 1, "themes[1].subcodes[0].name",
        "already the name of sub-code 'alpha.one'"),
    "YAML value where a key is expected": (
        [("    name: Beta theme", "    name: Beta: theme")],
        "name: Beta: theme", 1, None, "invalid YAML"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_validation_error_names_file_line_and_field(tmp_path, case):
    edits, needle, nth, field, words = CASES[case]
    path = variant(tmp_path, *edits)
    err = load_error(path)
    expected_line = line_of(path.read_text(encoding="utf-8"), needle, nth)
    assert err.path == str(path)
    assert err.line == expected_line, str(err)
    assert err.field == field
    assert words in err.message
    prefix = f"{path}:{expected_line}: " + (f"field '{field}': " if field else "")
    assert str(err).startswith(prefix)


def test_bad_yaml_syntax_reports_the_line(tmp_path):
    path = DATA / "bad_syntax.yaml"
    text = path.read_text(encoding="utf-8")
    err = load_error(path)
    assert err.path == str(path)
    assert err.line == line_of(text, "definition: The first alpha thing.")
    assert f"from line {line_of(text, 'name: [Alpha one')}" in err.message
    assert "invalid YAML" in err.message


@pytest.mark.parametrize("content", ["- just\n- a list\n", "just some text\n"])
def test_top_level_must_be_a_mapping(tmp_path, content):
    path = tmp_path / "list.yaml"
    path.write_text(content, encoding="utf-8")
    err = load_error(path)
    assert err.line == 1
    assert err.field is None
    assert "must be a mapping" in err.message


@pytest.mark.parametrize("content", ["", "# only a comment\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.yaml"
    path.write_text(content, encoding="utf-8")
    err = load_error(path)
    assert "empty" in err.message and err.path == str(path)


def test_missing_name(tmp_path):
    path = variant(tmp_path, ("name: Test codebook\n", ""))
    err = load_error(path)
    assert err.field == "name" and "no 'name'" in err.message and err.path == str(path)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MINIMAL.read_text(encoding="utf-8").replace(
        "Lovely weather today.", "Lovely weather today, caf\u00e9.").encode("latin-1"))
    err = load_error(path)
    assert "UTF-8" in err.message
    assert err.line == line_of(MINIMAL.read_text(encoding="utf-8"), "Lovely weather today.")


def test_missing_file_and_empty_folder(tmp_path):
    err = load_error(tmp_path / "nope.yaml")
    assert err.path == str(tmp_path / "nope.yaml") and "not found" in err.message
    (tmp_path / "notes.txt").write_text("not a codebook", encoding="utf-8")
    err = load_error(tmp_path)
    assert err.path == str(tmp_path) and "no codebook" in err.message


def test_codebook_from_dict_errors_name_the_field():
    data = load_codebook(MINIMAL).to_dict()
    data["themes"][1]["subcodes"][0]["examples"].append("   ")
    with pytest.raises(CodebookError) as info:
        codebook_from_dict(data, path="in-memory")
    assert info.value.field == "themes[1].subcodes[0].examples[1]"
    assert info.value.line is None


def test_direct_construction_checks_polarity_keys_and_computes_version():
    sub = SubCode(id="x.a", name="A", definition="d", examples=["e"])
    theme = Theme(id="x", name="X", definition="d", subcodes=[sub])
    assert sub.theme == "x"
    cb = Codebook(name="n", themes=[theme], polarity={"barrier": ["b"]}, version="made-up")
    assert cb.version != "made-up" and len(cb.version) == 12
    assert cb.polarity == {"barrier": ["b"], "opportunity": [], "neutral": []}
    with pytest.raises(CodebookError):
        Codebook(name="n", themes=[theme], polarity={"barriers": ["b"]})


# --------------------------------------------------------------------------------------------
# Lookups


def test_lookups(shipped):
    assert shipped.theme("processes").name
    assert shipped.subcode("processes.access").theme == "processes"
    assert shipped.theme_of("public.security") == "public"
    assert shipped.theme("people").subcode_ids[0] == "people.leadership"
    with pytest.raises(KeyError):
        shipped.theme("finance")
    with pytest.raises(KeyError):
        shipped.subcode("public.nothing")


def test_colour_shorthand_is_normalised_and_missing_colour_gets_a_default(tmp_path):
    cb = load_codebook(variant(tmp_path, ('    color: "#112233"', '    color: "#ABC"')))
    assert cb.theme("alpha").color == "#aabbcc"
    assert re.fullmatch(r"#[0-9a-f]{6}", cb.theme("beta").color)
    assert cb.theme("beta").color != cb.theme("alpha").color


# --------------------------------------------------------------------------------------------
# Folders


def split_minimal(folder: Path, first: str = "a.yaml", second: str = "b.yaml") -> None:
    """Write minimal.yaml as two files: name + alpha + none, then beta + polarity."""
    text = MINIMAL.read_text(encoding="utf-8")
    beta_at = text.index("  - id: beta")
    none_at = text.index("none:")
    polarity_at = text.index("polarity:")
    folder.mkdir(exist_ok=True)
    (folder / first).write_text(text[:beta_at] + text[none_at:polarity_at], encoding="utf-8")
    (folder / second).write_text("themes:\n" + text[beta_at:none_at] + text[polarity_at:],
                                 encoding="utf-8")


def test_folder_combines_files_into_the_same_codebook(tmp_path):
    split_minimal(tmp_path / "cb")
    (tmp_path / "cb" / "README.md").write_text("ignored", encoding="utf-8")
    combined = load_codebook(tmp_path / "cb")
    whole = load_codebook(MINIMAL)
    assert combined.theme_ids == ["alpha", "beta"]
    assert combined.none_examples == whole.none_examples
    assert combined.polarity == whole.polarity
    assert combined == whole and combined.version == whole.version


def test_folder_files_are_read_in_sorted_order(tmp_path):
    split_minimal(tmp_path / "cb", first="2_alpha.yml", second="1_beta.yaml")
    assert load_codebook(tmp_path / "cb").theme_ids == ["beta", "alpha"]


def test_folder_duplicate_theme_across_files(tmp_path):
    folder = tmp_path / "cb"
    folder.mkdir()
    shutil.copy(MINIMAL, folder / "a.yaml")
    extra = "themes:\n" + MINIMAL.read_text(encoding="utf-8").split("themes:\n")[1].split(
        "none:")[0]
    (folder / "b.yaml").write_text(extra, encoding="utf-8")
    err = load_error(folder)
    assert err.path == str(folder / "b.yaml")
    assert err.line == line_of(extra, "  - id: alpha")
    assert err.field == "themes[0].id"
    assert "a.yaml:" in err.message


def test_code_name_clash_names_both_codes_files_and_lines(tmp_path):
    folder = tmp_path / "cb"
    split_minimal(folder)
    b = folder / "b.yaml"
    b.write_text(b.read_text(encoding="utf-8").replace("name: Beta one", "name: Alpha one"),
                 encoding="utf-8")
    err = load_error(folder)
    a_line = line_of((folder / "a.yaml").read_text(encoding="utf-8"), "name: Alpha one")
    assert err.path == str(b)
    assert err.line == line_of(b.read_text(encoding="utf-8"), "name: Alpha one")
    assert err.field == "themes[0].subcodes[0].name"
    assert "sub-code 'beta.one' has the name 'Alpha one'" in err.message
    assert f"sub-code 'alpha.one' (a.yaml:{a_line})" in err.message
    # the same check holds for a codebook given as data (a .qdc import, add_subcode)
    data = load_codebook(MINIMAL).to_dict()
    data["themes"][1]["name"] = "Alpha theme"
    with pytest.raises(CodebookError, match="theme 'beta' has the name 'Alpha theme', already "
                                            "the name of theme 'alpha'"):
        codebook_from_dict(data)


def test_shipped_code_names_are_unique(shipped):
    names = [t.name for t in shipped.themes] + [s.name for s in shipped.subcodes]
    assert len({" ".join(n.split()).casefold() for n in names}) == len(names)
    assert shipped.subcode("public.engagement").name != shipped.theme("public").name


def test_folder_conflicting_names(tmp_path):
    folder = tmp_path / "cb"
    split_minimal(folder)
    b = folder / "b.yaml"
    b.write_text("name: Another name\n" + b.read_text(encoding="utf-8"), encoding="utf-8")
    err = load_error(folder)
    assert err.path == str(b) and err.line == 1 and err.field == "name"


# --------------------------------------------------------------------------------------------
# Saving


def test_save_and_reload_round_trip(tmp_path, shipped):
    target = save_codebook(shipped, tmp_path / "saved.yaml")
    assert target == tmp_path / "saved.yaml"
    again = load_codebook(target)
    # the YAML holds the codebook; its reference sets stay in the folder it came from
    alone = replace(shipped, reference=())
    assert again == shipped and again.version == alone.version != shipped.version
    assert shipped.version in target.read_text(encoding="utf-8").splitlines()[1]
    assert [p.name for p in tmp_path.iterdir()] == ["saved.yaml"]  # no temporary files left


def test_save_round_trip_drops_nothing_from_sparse_codebook(tmp_path):
    small = load_codebook(MINIMAL)
    again = load_codebook(save_codebook(small, tmp_path / "small.yml"))
    assert again == small and again.version == small.version
    assert again.polarity_definitions["opportunity"] == ""


def test_save_replaces_an_existing_file_atomically(tmp_path):
    path = tmp_path / "cb.yaml"
    shutil.copy(MINIMAL, path)
    cb = load_codebook(path)
    bigger = add_subcode(cb, "beta", "two", "Beta two", "Another beta thing.", ["Beta two, yes."])
    save_codebook(bigger, path)
    assert load_codebook(path).version == bigger.version != cb.version


def test_save_to_a_folder(tmp_path):
    cb = load_codebook(MINIMAL)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert save_codebook(cb, empty) == empty / "codebook.yaml"
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(MINIMAL, one / "mine.yaml")
    assert save_codebook(cb, one) == one / "mine.yaml"
    assert load_codebook(one) == cb
    two = tmp_path / "two"
    split_minimal(two)
    with pytest.raises(CodebookError, match="several|2 codebook files"):
        save_codebook(cb, two)
    with pytest.raises(CodebookError, match=r"\.yaml"):
        save_codebook(cb, tmp_path / "no_suffix")


# --------------------------------------------------------------------------------------------
# add_subcode


def test_add_subcode_returns_a_new_codebook(shipped):
    before = (shipped.version, list(shipped.subcode_ids))
    new = add_subcode(shipped, "technical", "technical.synthetic", "Synthetic data",
                      "Using synthetic versions of datasets.",
                      ["We made a synthetic copy so people could test code."],
                      use_when="Synthetic data is discussed.")
    assert (shipped.version, shipped.subcode_ids) == before
    assert new.theme("technical").subcode_ids[-1] == "technical.synthetic"
    assert new.theme_of("technical.synthetic") == "technical"
    assert new.subcode("technical.synthetic").use_when == "Synthetic data is discussed."
    assert new.version != shipped.version
    assert new.path == shipped.path


def test_add_subcode_accepts_a_bare_slug(shipped):
    new = add_subcode(shipped, "people", "wellbeing", "Wellbeing", "Staff wellbeing.",
                      ["Honestly the team is exhausted."])
    assert "people.wellbeing" in new.subcode_ids


@pytest.mark.parametrize("args, field, words", [
    (("finance", "finance.x", "X", "d", ["e"]), "theme", "unknown theme"),
    (("public", "public.trust", "X", "d", ["e"]), "id", "already exists"),
    (("public", "people.x", "X", "d", ["e"]), "id", "must start with 'public.'"),
    (("public", "", "X", "d", ["e"]), "id", "empty"),
    (("public", "public.Bad Slug", "X", "d", ["e"]), "id", "lower case"),
    (("public", "public.x", "", "d", ["e"]), "name", "empty"),
    (("public", "public.x", "X", "d", []), "examples", "at least one"),
    (("public", "public.x", "X", "d", ["fine", " "]), "examples[1]",
     "empty example"),
    (("public", "public.x", "X", "d", "one string"), "examples", "list"),
    (("public", "public.x", "X", "d", ["Yeah. Yeah, absolutely."]),
     "examples[0]", "'none' example"),
])
def test_add_subcode_rejects_bad_input(shipped, args, field, words):
    with pytest.raises(CodebookError) as info:
        add_subcode(shipped, *args)
    assert info.value.field == field
    assert words in info.value.message
