"""The architecture as the folder tree shows it: layers import only the layers below them, Streamlit only
in the app layer, no import hidden inside a function to dodge a cycle, every module a readable size, and
one module per method behind the registry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from foster_core.methods import all_methods

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "foster_core"
# Lowest first. A module may import its own layer and the layers before it; cli.py and __main__.py sit on top.
LAYERS = ["core", "methods", "runs", "analysis", "app"]
LIBRARY = sorted(PACKAGE.rglob("*.py"))


def layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else "top"


def imported_modules(tree: ast.AST, path: Path) -> list[tuple[str, ast.AST]]:
    """(absolute module name, node) of every import in the file, relative imports resolved."""
    package = ".".join(("foster_core",) + path.relative_to(PACKAGE).parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((name, node))
    return found


def test_the_tree_has_the_layers_and_the_scan_sees_them():
    assert {layer_of(p) for p in LIBRARY} == {"top", *LAYERS}
    assert len(LIBRARY) > 25


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_layer_imports_only_the_layers_below_it(path):
    layer = layer_of(path)
    allowed = LAYERS if layer == "top" else LAYERS[: LAYERS.index(layer) + 1]
    for name, _ in imported_modules(ast.parse(path.read_text()), path):
        parts = name.split(".")
        if parts[0] == "foster_core" and len(parts) > 1 and parts[1] in LAYERS:
            assert parts[1] in allowed, f"{path.name} ({layer}) imports {name}"
        if parts[0] == "streamlit":
            assert layer == "app", f"{path.name} imports Streamlit outside the app layer"


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_function_level_import_of_the_library(path):
    tree = ast.parse(path.read_text())
    for function in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
        for name, node in imported_modules(function, path):
            assert not name.startswith("foster_core"), f"{path.name}:{node.lineno} imports {name} inside a function"


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_is_at_most_450_lines(path):
    assert len(path.read_text().splitlines()) <= 450


def test_benchmarks_and_scripts_do_not_import_streamlit():
    for path in [*(ROOT / "benchmarks").glob("*.py"), *(ROOT / "scripts").glob("*.py")]:
        assert "import streamlit" not in path.read_text(), path


def test_each_method_lives_in_a_module_of_its_own_and_registers_what_the_app_and_cli_need():
    modules = {spec.distill.__module__ for spec in all_methods()}
    assert {"foster_core.methods.foster", "foster_core.methods.bptt", "foster_core.methods.teacher",
            "foster_core.methods.coresets", "foster_core.methods.dealrec", "foster_core.methods.goracs"} == modules
    for spec in all_methods():
        assert spec.help and spec.config_class.__module__.startswith("foster_core.methods")
        assert isinstance(spec.config(), spec.config_class)
