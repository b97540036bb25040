"""Atomic file writes: write to a temporary file in the target folder, then rename over the target.

A reader (or a process restarted after a kill) sees either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call write(temporary_path) and rename the result to path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        # mkstemp makes 0600 files; give the result the permissions a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, payload: object) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, default=str)

    return atomic_write(path, write)


def remove_temporaries(folder: str | Path) -> int:
    """Delete the temporary files that a process killed inside `atomic_write` left in `folder` (recursively).

    They are never read (their names start with a dot and end in .tmp), so this only frees the space."""
    removed = 0
    for leftover in Path(folder).rglob(".*.tmp"):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed


def read_json_or(path: str | Path, default):
    """The JSON in path, or `default` when it is missing or unreadable (atomic writes make torn files rare,
    but a run killed before its first write has none)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return default
