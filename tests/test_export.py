import numpy as np
import pytest
import pandas as pd
import torch

from foster_core.core.data import DataConfig

from foster_core.core.loaders import load_dataset
from foster_core.core.export import hard_interactions, read_item_ids, top_items_table, write_exports
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


def test_a_packed_row_exports_one_user_per_sequence_it_holds(cyclic_dataset):
    sequences = [np.array([0, 1, 2]), np.array([5, 6]), np.array([3, 4, 7, 8])]
    packed = SyntheticData.from_sequences(sequences, max_len=9).packed([2, 1])
    hard = hard_interactions(packed, cyclic_dataset)
    ids = cyclic_dataset.item_ids
    users = {user: group.item_id.tolist() for user, group in hard.groupby("user_id", sort=False)}
    assert users == {"synthetic_0_1": [ids[i] for i in (0, 1, 2)], "synthetic_0_2": [ids[5], ids[6]],
                     "synthetic_1_1": [ids[i] for i in (3, 4, 7, 8)]}


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


def test_a_reloaded_tensor_export_maps_back_to_the_dataset_item_ids(tmp_path):
    # Item ids that a number parser would spoil: leading zeros, and one that reads like a float.
    interactions = pd.DataFrame({"user_id": ["u1"] * 4 + ["u2"] * 4,
                                 "item_id": ["007", "1e3", "b", "007", "b", "1e3", "x", "b"],
                                 "timestamp": list(range(8))})
    items = pd.DataFrame({"item_id": ["007", "1e3", "b", "x"], "text": ["seven", "thousand", "bee", "ex"]})
    interactions.to_csv(tmp_path / "interactions.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    dataset = load_dataset(tmp_path, DataConfig(min_interactions=3, max_seq_len=6))
    sequences = [np.asarray(s) for s in dataset.sequences]
    synthetic = SyntheticData.from_sequences(sequences, max_len=6)  # length 3 inputs, left-padded to 6
    synthetic.save(tmp_path / "synthetic.safetensors")
    write_exports(tmp_path, synthetic, dataset)

    reloaded = SyntheticData.load(tmp_path / "synthetic.safetensors")
    item_ids = read_item_ids(tmp_path / "item_ids.csv")
    assert item_ids == dataset.item_ids
    for j, sequence in enumerate(sequences):
        real = reloaded.mask[j]
        assert not real[:3].any()  # left padding
        inputs = [item_ids[i] for i in reloaded.input_items[j, real, 0].tolist()]
        assert inputs == [dataset.item_ids[i] for i in sequence[:-1]]
    # The user's original sequence, in the original ids (u1 walked 007, 1e3, b, 007).
    first = [item_ids[i] for i in reloaded.input_items[0, reloaded.mask[0], 0].tolist()]
    last_label = item_ids[int(reloaded.label_items[0, -1, 0])]
    assert first + [last_label] == interactions[interactions.user_id == dataset.user_ids[0]].item_id.tolist()


def test_an_item_id_file_that_is_not_an_export_is_refused(tmp_path):
    (tmp_path / "item_ids.csv").write_text("item_index,item_id\n1,a\n0,b\n")
    with pytest.raises(ValueError, match="indices 0, 1, 2"):
        read_item_ids(tmp_path / "item_ids.csv")
