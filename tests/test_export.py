import numpy as np
import pandas as pd
import torch

from foster_core.core.data import DataConfig

from foster_core.core.loaders import load_dataset
from foster_core.core.export import hard_interactions, top_items_table, write_exports
from foster_core.core.synthetic import SyntheticData


def test_exports_round_trip_through_the_generic_and_recbole_loaders(cyclic_dataset, tmp_path):
    sequences = [cyclic_dataset.sequences[0][:-2], cyclic_dataset.sequences[1][:-2]]
    synthetic = SyntheticData.from_sequences(sequences, max_len=9)
    hard = hard_interactions(synthetic, cyclic_dataset)
    # A one-hot synthetic sequence exports back to the real sequence it came from.
    first = hard[hard.user_id == "synthetic_0"].item_id.tolist()
    assert first == [cyclic_dataset.item_ids[i] for i in sequences[0]]

    paths = write_exports(tmp_path, synthetic, cyclic_dataset)
    items = pd.DataFrame({"item_id": cyclic_dataset.item_ids, "text": cyclic_dataset.item_texts})
    items.to_csv(tmp_path / "items.csv", index=False)
    (tmp_path / "synthetic.item").write_text("item_id:token\ttitle:token_seq\n" + "".join(
        f"{i}\t{t}\n" for i, t in zip(cyclic_dataset.item_ids, cyclic_dataset.item_texts)))
    config = DataConfig(min_interactions=3)
    generic = load_dataset(paths["hard_csv"], config, items=tmp_path / "items.csv")
    recbole = load_dataset(paths["recbole_inter"], config)
    assert generic.num_users == recbole.num_users == 2
    assert [len(s) for s in generic.sequences] == [len(s) for s in sequences]


def test_top_items_table_shows_texts_and_probabilities(cyclic_dataset):
    n, L = 1, 3
    probs = torch.tensor([[[0.7, 0.2, 0.1]] * L])
    items = torch.tensor([[[0, 1, 2]] * L])
    synthetic = SyntheticData(items, probs, items.clone(), probs.clone(), torch.ones(n, L, dtype=torch.bool))
    table = top_items_table(synthetic, cyclic_dataset, k=2)
    assert len(table) == 2 * L * 2  # input and label, L positions, top 2
    top = table[(table.kind == "input") & (table.position == 0)]
    assert top["probability"].tolist() == [0.7, 0.2]
    assert top["text"].tolist() == [cyclic_dataset.item_texts[0], cyclic_dataset.item_texts[1]]
    assert np.isclose(table.groupby(["kind", "position"]).probability.sum(), 0.9).all()
