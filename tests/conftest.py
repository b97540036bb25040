"""Tiny generated data shared by the tests: small enough to train in seconds, structured enough to learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from foster_core.core.data import DataConfig, Dataset

from foster_core.core.loaders import build_dataset


def cyclic_tables(n_users: int = 40, n_items: int = 12, length: int = 8, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each user walks the item cycle i -> i+1 from a random start: the next item is fully predictable."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        start = int(rng.integers(n_items))
        for t in range(length):
            rows.append((f"u{user}", f"i{(start + t) % n_items}", t))
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)],
                          "text": [f"item number {i} of the cycle" for i in range(n_items)]})
    return interactions, items


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
    interactions, items = cyclic_tables()
    return build_dataset("cyclic", interactions, items, DataConfig(min_interactions=5, max_seq_len=10))


def random_text_embeddings(num_items: int, dim: int = 16, seed: int = 0) -> torch.Tensor:
    """Stand-in for encoder output (unit rows) where a test is about the recommender, not the encoder."""
    generator = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(num_items, dim, generator=generator), dim=-1)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """No test reads or writes the user's real embedding cache."""
    monkeypatch.setenv("FOSTER_CACHE_DIR", str(tmp_path / "cache"))
