"""Tiny generated data shared by the tests: small enough to train in seconds, structured enough to learn.

The builders live in foster_core.testing (the benchmarks use them too); `cyclic_tables` and
`random_text_embeddings` are importable from here as well, as the tests have always done."""

from __future__ import annotations

from pathlib import Path

import pytest

from foster_core.core.data import Dataset
from foster_core.testing import cyclic_dataset as build_cyclic_dataset
from foster_core.testing import cyclic_tables, random_text_embeddings

__all__ = ["cyclic_tables", "random_text_embeddings"]


@pytest.fixture
def tiny_folder(tmp_path):
    """A dataset folder (interactions.csv + items.csv) of the cyclic tables, as a user would point at."""
    interactions, items = cyclic_tables()
    folder = tmp_path / "tiny"
    folder.mkdir()
    interactions.to_csv(folder / "interactions.csv", index=False)
    items.to_csv(folder / "items.csv", index=False)
    return folder


@pytest.fixture
def cyclic_dataset() -> Dataset:
    """40 users walking a 12-item cycle, 8 items each (sequences kept up to 10 items)."""
    return build_cyclic_dataset()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """No test reads or writes the user's real embedding cache."""
    monkeypatch.setenv("FOSTER_CACHE_DIR", str(tmp_path / "cache"))


def make_studio(root: Path, patch: pytest.MonkeyPatch) -> Path:
    """A tiny dataset folder and an empty runs dir under `root`, pointed at by the app's environment variables."""
    interactions, items = cyclic_tables()
    (root / "tiny").mkdir()
    interactions.to_csv(root / "tiny" / "interactions.csv", index=False)
    items.to_csv(root / "tiny" / "items.csv", index=False)
    patch.setenv("FOSTER_DATASET", str(root / "tiny"))
    patch.setenv("FOSTER_RUNS_DIR", str(root / "runs"))
    patch.setenv("FOSTER_DATA_DIR", str(root))
    patch.setenv("FOSTER_JOB_THREADS", "1")
    return root
