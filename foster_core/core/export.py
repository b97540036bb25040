"""Exports of synthetic data for people and for other recommender libraries.

- a readable table: per sequence and position, the top-k input and label items with text and probability;
- "hard" interactions: each position's most probable item (the last label appended), as the generic
  CSV (user_id,item_id,timestamp) and as a RecBole `.inter` file, with the original item ids;
- `item_ids.csv`: the dataset's item id of every item index, since synthetic.safetensors holds indices.

docs/export-format.md describes every file, tensor, shape and the padding.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .atomic import atomic_write
from .data import Dataset
from .synthetic import SyntheticData


def top_items_table(synthetic: SyntheticData, dataset: Dataset, k: int = 5) -> pd.DataFrame:
    rows = []
    for kind in ("input", "label"):
        items, probs = synthetic.top_items(kind, k)
        for j in range(synthetic.num_sequences):
            real_positions = synthetic.mask[j].nonzero().flatten().tolist()
            for position, t in enumerate(real_positions):
                for rank in range(items.shape[-1]):
                    item = int(items[j, t, rank])
                    rows.append({"sequence": j, "position": position, "kind": kind, "rank": rank + 1,
                                 "item_id": dataset.item_ids[item], "text": dataset.item_texts[item],
                                 "probability": round(float(probs[j, t, rank]), 6)})
    return pd.DataFrame(rows, columns=["sequence", "position", "kind", "rank", "item_id", "text", "probability"])


def hard_interactions(synthetic: SyntheticData, dataset: Dataset) -> pd.DataFrame:
    """One synthetic user per sequence: the argmax input item of every real position, then the last label.
    A packed row (`segments`) gives one user per sequence it holds, `synthetic_<row>_<k>`, so another
    library never reads two users as one history."""
    inputs, _ = synthetic.top_items("input", 1)
    labels, _ = synthetic.top_items("label", 1)
    rows = []
    for j in range(synthetic.num_sequences):
        positions = synthetic.mask[j].nonzero().flatten().tolist()
        owners = [0] * len(positions) if synthetic.segments is None else synthetic.segments[j, positions].tolist()
        for k, owner in enumerate(dict.fromkeys(owners)):
            mine = [t for t, o in zip(positions, owners) if o == owner]
            sequence = [int(inputs[j, t, 0]) for t in mine] + [int(labels[j, mine[-1], 0])]
            user = f"synthetic_{j}" if synthetic.segments is None else f"synthetic_{j}_{k + 1}"
            rows += [{"user_id": user, "item_id": dataset.item_ids[item], "timestamp": step}
                     for step, item in enumerate(sequence)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


ITEM_IDS_FILE = "item_ids.csv"


def item_ids_table(dataset: Dataset) -> pd.DataFrame:
    """item_index -> item_id: the tensors' item indices are positions in the dataset's item list."""
    return pd.DataFrame({"item_index": range(dataset.num_items), "item_id": dataset.item_ids})


def read_item_ids(path: str | Path) -> list[str]:
    """The item ids of an exported item_ids.csv, indexed by item index (ids stay text: '007' is not 7)."""
    table = pd.read_csv(path, dtype={"item_id": str}, keep_default_na=False)
    if list(table.columns) != ["item_index", "item_id"] or table["item_index"].tolist() != list(range(len(table))):
        raise ValueError(f"{path}: expected the columns item_index,item_id with indices 0, 1, 2, ... in order")
    return table["item_id"].tolist()


def write_exports(folder: str | Path, synthetic: SyntheticData, dataset: Dataset, k: int = 5) -> dict[str, Path]:
    """Write the item id map, the table and both hard formats next to the synthetic tensors; returns the
    paths by format."""
    folder = Path(folder)
    hard = hard_interactions(synthetic, dataset)
    recbole = hard.rename(columns={"user_id": "user_id:token", "item_id": "item_id:token", "timestamp": "timestamp:float"})
    outputs = {
        "item_ids_csv": (folder / ITEM_IDS_FILE, lambda p: item_ids_table(dataset).to_csv(p, index=False)),
        "top_items_csv": (folder / "synthetic_top_items.csv", lambda p: top_items_table(synthetic, dataset, k).to_csv(p, index=False)),
        "hard_csv": (folder / "synthetic_interactions.csv", lambda p: hard.to_csv(p, index=False)),
        "recbole_inter": (folder / "synthetic.inter", lambda p: recbole.to_csv(p, sep="\t", index=False)),
    }
    return {name: atomic_write(path, write) for name, (path, write) in outputs.items()}
