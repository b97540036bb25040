"""A name -> entry table that refuses duplicates and answers an unknown name with the known ones: the one
mechanism behind the method registry (methods/registry.py) and the student registry (architectures.py)."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind  # what an entry is, for messages: "method", "student architecture"
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; choose from {', '.join(self._entries)}")
        return self._entries[name]

    def names(self) -> list[str]:
        """Every name, in registration order."""
        return list(self._entries)

    def entries(self) -> list[T]:
        return list(self._entries.values())
