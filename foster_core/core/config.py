"""Configs to and from plain dicts: the one way a config crosses a process boundary or a file.

Every config is a frozen dataclass with working defaults. A run folder, a job file or a preset stores
`to_dict(config)`; `from_dict(cls, values)` reads it back. Reading is lenient in the two ways that old
files need: a field the file lacks takes its default, and a field this version no longer has is dropped
(a class may list renamed fields in `RENAMED = {"old name": "new name"}`). Lists become tuples where the
field's default is a tuple (JSON has no tuples).
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, fields, is_dataclass
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


def to_dict(config: Any) -> dict:
    """A JSON-ready dict of a dataclass config (tuples become lists when written as JSON)."""
    if not is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"to_dict takes a dataclass config, not {type(config).__name__}")
    return asdict(config)


def known_values(cls: type, values: Mapping[str, Any] | None) -> dict:
    """The entries of `values` that are fields of `cls`, renamed fields under their new names."""
    renamed = getattr(cls, "RENAMED", {})
    by_name = {f.name: f for f in fields(cls)}
    out: dict = {}
    for key, value in (values or {}).items():
        key = renamed.get(key, key)
        if key not in by_name:
            continue
        default = by_name[key].default
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        out[key] = value
    return out


def from_dict(cls: type[T], values: Mapping[str, Any] | None = None, **overrides: Any) -> T:
    """`cls` built from a stored dict (unknown keys dropped, missing ones at their defaults) and overrides."""
    return cls(**{**known_values(cls, values), **known_values(cls, overrides)})


def field_defaults(cls: type) -> dict:
    """Each field's default, for forms and help text."""
    out = {}
    for f in fields(cls):
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:  # type: ignore[misc]
            out[f.name] = f.default_factory()  # type: ignore[misc]
    return out
