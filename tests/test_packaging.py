"""`pip install .`: the pyproject declares the library, its pinned dependencies and the `foster-studio`
command, which runs the same main as `python -m foster_core`."""

import importlib
import re
import tomllib
from pathlib import Path

import foster_core.cli

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_foster_studio_command_resolves_to_the_cli_main():
    target = PYPROJECT["project"]["scripts"]["foster-studio"]
    module, _, attribute = target.partition(":")
    assert getattr(importlib.import_module(module), attribute) is foster_core.cli.main
    assert "from .cli import main" in (ROOT / "foster_core" / "__main__.py").read_text()  # python -m foster_core


def test_the_dependencies_are_the_pins_of_requirements_txt():
    pins = {line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")}
    declared = set(PYPROJECT["project"]["dependencies"]) | set(PYPROJECT["project"]["optional-dependencies"]["test"])
    assert declared == pins
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", pin) for pin in declared)


def test_the_package_is_the_library_alone():
    found = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    assert found == ["foster_core", "foster_core.*"]  # not app_pages, tests, benchmarks or scripts
