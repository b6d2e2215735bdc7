"""The house keeps its shape: imports run one way along the flow (docs/architecture.md).

Read from the source (no module is imported), so a new import that reaches back up the flow, an
app that imports the command line, or SQL outside the store fails here with the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: The rooms in the order of the flow. A module may import its own room and the rooms before
#: it, never one after it. Every module of qual/ must be in exactly one room.
ROOMS = [
    ("foundation", ["qual", "qual.errors", "qual.hashing", "qual.atomic", "qual.model",
                    "qual.safeyaml", "qual.cells", "qual.lineage", "qual.store",
                    "qual.codebook", "qual.scope"]),
    ("read", ["qual.readers", "qual.readers.*"]),
    ("redact", ["qual.redact"]),
    ("segment", ["qual.segment"]),
    ("embed", ["qual.embed", "qual.onnx_encoder"]),
    ("code", ["qual.coder", "qual.fitted", "qual.evaluate"]),
    ("topics", ["qual.topics", "qual.topicview"]),
    ("review", ["qual.review", "qual.stakeholders", "qual.agreement", "qual.audit"]),
    ("summarise and export", ["qual.summarise", "qual.export", "qual.qdpx", "qual.qdpx_import"]),
    ("compose", ["qual.project"]),
    ("doors", ["qual.cli", "qual.__main__", "qual.commands", "qual.commands.*", "qual.access",
               "qual.netguard", "app"]),
]


def _room_of(module: str) -> int | None:
    for i, (_, members) in enumerate(ROOMS):
        for m in members:
            if module == m or (m.endswith(".*") and module.startswith(m[:-1])):
                return i
    return None


def _modules() -> dict[str, Path]:
    found = {"app": REPO / "app.py"}
    for path in sorted((REPO / "qual").rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path):
    """``(line, imported module)`` for every import of a qual module in ``path``, lazy ones
    inside functions included. ``from qual import x`` names the sub-module x when it is one."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    lazy_door = set()
    if module == "qual":          # the package's __getattr__: `from qual import Project`
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
                lazy_door = {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in lazy_door:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "qual" or alias.name.startswith("qual."):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not (target == "qual" or target.startswith("qual.")):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield node.lineno, sub if sub in MODULES else target


def test_every_module_is_in_a_room_and_the_architecture_doc_names_it():
    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    unplaced = [m for m in MODULES if _room_of(m) is None]
    assert not unplaced, f"put these modules in a room of ROOMS and docs/architecture.md: {unplaced}"
    for module, path in MODULES.items():
        shown = "app.py" if module == "app" else str(path.relative_to(REPO))
        if path.name == "__init__.py":
            shown = str(path.parent.relative_to(REPO)) + "/"
        elif module.startswith("qual.commands."):
            shown = path.stem                   # listed in the row of qual/commands/
        assert f"`{shown}`" in doc, f"docs/architecture.md does not name {shown}"


def test_imports_never_reach_back_up_the_flow():
    wrong = []
    for module, path in MODULES.items():
        own = _room_of(module)
        for line, target in _imports(module, path):
            room = _room_of(target)
            assert room is not None, f"{path}:{line} imports {target}, which is in no room"
            if room > own:
                wrong.append(f"{path.relative_to(REPO)}:{line}: {module} ({ROOMS[own][0]}) "
                             f"imports {target} ({ROOMS[room][0]}), later in the flow")
    assert not wrong, "\n".join(wrong)


def test_the_app_and_the_command_line_never_import_each_other():
    wrong = []
    for module, path in MODULES.items():
        for line, target in _imports(module, path):
            cli = target == "qual.cli" or target.startswith("qual.commands")
            if module == "app" and cli:
                wrong.append(f"app.py:{line} imports {target}")
            if (module.startswith("qual.commands") or module == "qual.cli") and target == "app":
                wrong.append(f"{path.relative_to(REPO)}:{line} imports the app")
            if not (module == "app" or module.startswith(("qual.cli", "qual.commands",
                                                          "qual.__main__"))) and cli:
                wrong.append(f"{path.relative_to(REPO)}:{line}: {module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_only_the_project_module_and_the_doors_import_the_project():
    users = {module for module, path in MODULES.items()
             for _, target in _imports(module, path) if target == "qual.project"}
    outside = sorted(m for m in users if _room_of(m) != len(ROOMS) - 1)
    assert not outside, f"only the doors compose through qual.project; also: {outside}"
    assert {"qual.cli", "app"} <= users, "the command line and the app go through qual.project"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "qual.store"))
def test_only_the_store_speaks_sql(module):
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                 [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        assert not any(n.split(".")[0] in ("sqlite3", "sqlalchemy", "apsw") for n in names), \
            f"{MODULES[module]}:{node.lineno} imports a database driver; SQL lives in qual/store.py"
        if isinstance(node, ast.Attribute) and node.attr in ("execute", "executemany",
                                                             "executescript"):
            owner = ast.unparse(node.value)
            assert "conn" not in owner and "cursor" not in owner, \
                f"{MODULES[module]}:{node.lineno} runs SQL ({owner}.{node.attr}); ask the store"


def test_the_checker_sees_a_back_reach_and_a_lazy_import(tmp_path):
    """The rules are not vacuous: a stage module importing the project, inside a function,
    is found with its line."""
    fake = tmp_path / "segment.py"
    fake.write_text("def f():\n    from .project import Project\n    return Project\n")
    found = list(_imports("qual.segment", fake))
    assert found == [(2, "qual.project")]
    assert _room_of("qual.project") > _room_of("qual.segment")


def test_help_and_the_project_import_load_no_heavy_library():
    """`python -m qual --help` and `from qual import Project` stay quick: pandas, numpy, torch,
    spaCy and BERTopic are imported by the work that needs them, not by the doors."""
    import subprocess
    import sys

    heavy = ("pandas", "numpy", "torch", "spacy", "sentence_transformers", "bertopic",
             "sklearn", "streamlit")
    probe = ("import sys, contextlib, io\n"
             "from qual.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    main([])                     # the help, with every command's parser\n"
             "from qual import Project\n"
             f"print([m for m in {heavy!r} if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout.strip().splitlines()[-1]
    assert out == "[]", f"loaded by --help or `from qual import Project`: {out}"


def test_the_coder_names_of_the_options_are_the_coders():
    import qual
    from qual.coder import CODERS, DEFAULT_CODER

    assert sorted(qual.CODER_NAMES) == sorted(CODERS) and qual.DEFAULT_CODER == DEFAULT_CODER


def test_every_public_door_of_the_project_has_a_docstring():
    import inspect

    import qual.project as P

    missing = [name for name in P.__all__ if not inspect.getdoc(getattr(P, name))]
    for name, member in inspect.getmembers(P.Project):
        target = member.fget if isinstance(member, property) else member
        if not name.startswith("_") and not inspect.getdoc(target):
            missing.append(f"Project.{name}")
    assert not missing, f"public, without a docstring: {missing}"
