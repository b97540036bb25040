"""A dataset at a glance: sequence lengths, the popularity long tail, sample item texts (the Home page)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.data import Dataset, item_counts


def sequence_lengths(dataset: Dataset) -> np.ndarray:
    return np.array([len(s) for s in dataset.sequences])


def popularity_curve(dataset: Dataset) -> pd.DataFrame:
    """Interactions per item, most popular first: the long tail."""
    counts = np.sort(item_counts(dataset.sequences, dataset.num_items))[::-1]
    return pd.DataFrame({"item rank": np.arange(1, len(counts) + 1), "interactions": counts})


def head_share(dataset: Dataset, share: float = 0.1) -> float:
    """Share of all interactions that go to the `share` most popular items."""
    counts = popularity_curve(dataset)["interactions"].to_numpy()
    return float(counts[: max(1, int(share * len(counts)))].sum() / max(counts.sum(), 1))


def sample_texts(dataset: Dataset, n: int = 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    picks = rng.choice(dataset.num_items, min(n, dataset.num_items), replace=False)
    frame = pd.DataFrame({"item_id": [dataset.item_ids[i] for i in picks], "text": [dataset.item_texts[i] for i in picks]})
    return frame.iloc[sorted(range(len(frame)), key=lambda i: id_sort_key(frame["item_id"].iloc[i]))].reset_index(drop=True)


def id_sort_key(item_id) -> tuple:
    """Numeric ids in numeric order (2 before 10), then any other ids as text."""
    text = str(item_id)
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)
