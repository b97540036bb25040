"""Packed rows: several real sequences end to end in one synthetic row, kept apart by `segments`.

A student reads each sequence of a packed row exactly as it would read that sequence alone in a
left-padded row of its own; these tests pin that, and the bookkeeping, with hand-written rows.
"""

import numpy as np
import pytest
import torch

from foster_core.core.data import PAD_ID, leave_one_out
from foster_core.core.gru4rec import TextGRU4Rec
from foster_core.core.model import ModelConfig, TextSASRec, segment_ends
from foster_core.core.synthetic import SyntheticData
from foster_core.core.training import TrainConfig, train_on_synthetic
from foster_core.methods.teacher import LabelConfig, label_distributions

from conftest import random_text_embeddings

CFG = ModelConfig(hidden=16, blocks=2, heads=2, dropout=0.0, max_len=8)
# One row of L = 7: padding, a sequence of two items, one of three, one of one.
SEGMENTS = torch.tensor([[0, 1, 1, 2, 2, 2, 3]])
ITEMS = torch.tensor([[PAD_ID, 4, 5, 9, 1, 2, 7]])


def alone_rows() -> torch.Tensor:
    """The three sequences of ITEMS, each left-padded to L = 7 in a row of its own."""
    pad = [PAD_ID] * 7
    return torch.tensor([pad[:5] + [4, 5], pad[:4] + [9, 1, 2], pad[:6] + [7]])


def test_segment_ends_are_the_last_column_of_each_sequence():
    assert segment_ends(SEGMENTS).tolist() == [[0, 2, 2, 5, 5, 5, 6]]
    assert segment_ends(torch.tensor([[0, 0, 1, 1]])).tolist() == [[1, 1, 3, 3]]


@pytest.mark.parametrize("model_class", [TextSASRec, TextGRU4Rec])
def test_a_packed_row_is_read_as_its_sequences_alone(model_class):
    torch.manual_seed(0)
    model = model_class(random_text_embeddings(12), CFG).eval()
    table = model.item_embeddings()
    timeline = ITEMS != PAD_ID
    with torch.no_grad():
        packed = model.forward_tokens(table[ITEMS.clamp(min=0)], timeline, SEGMENTS)[0]
        alone = model(alone_rows())
        plain = model.forward_tokens(table[ITEMS.clamp(min=0)], timeline)[0]
    torch.testing.assert_close(packed[1:3], alone[0, -2:])
    torch.testing.assert_close(packed[3:6], alone[1, -3:])
    torch.testing.assert_close(packed[6], alone[2, -1])
    assert (packed[0] == 0).all()
    # Without segments the third sequence's item reads the two before it as its own history.
    assert not torch.allclose(plain[6], alone[2, -1])


def test_one_sequence_per_row_gives_the_same_states_with_or_without_segments():
    torch.manual_seed(0)
    model = TextSASRec(random_text_embeddings(12), CFG).eval()
    rows = alone_rows()
    table = model.item_embeddings()
    with torch.no_grad():
        tokens, timeline = table[rows.clamp(min=0)], rows != PAD_ID
        torch.testing.assert_close(model.forward_tokens(tokens, timeline, timeline.long()),
                                   model.forward_tokens(tokens, timeline))


def test_packing_numbers_the_sequences_of_each_row_and_saving_keeps_them(tmp_path):
    rows = SyntheticData.from_sequences([np.array([1, 2, 3]), np.array([7, 8]), np.array([4, 5, 6])], 4)
    packed = rows.packed([2, 1])
    assert packed.segments.tolist() == [[0, 1, 1, 2], [0, 0, 1, 1]]
    assert rows.segments is None
    back = SyntheticData.load(packed.save(tmp_path / "s.safetensors"))
    assert torch.equal(back.segments, packed.segments)
    assert SyntheticData.load(rows.save(tmp_path / "r.safetensors")).segments is None


def test_segments_that_disagree_with_the_mask_or_run_backwards_are_refused():
    data = SyntheticData.from_sequences([np.array([1, 2, 3])], 3)  # mask [False, True, True]
    fields = (data.input_items, data.input_probs, data.label_items, data.label_probs, data.mask)
    with pytest.raises(ValueError, match="0 exactly at the padding"):
        SyntheticData(*fields, torch.tensor([[1, 1, 1]]))
    with pytest.raises(ValueError, match="must not decrease"):
        SyntheticData(*fields, torch.tensor([[0, 2, 1]]))
    with pytest.raises(ValueError, match="segments has shape"):
        SyntheticData(*fields, torch.tensor([[0, 1]]))


def test_excluding_the_prefix_starts_afresh_at_each_packed_sequence():
    # Items 0..3. Row: [0, 1 | 0]: the second sequence's prefix is item 0 alone, not items 0 and 1.
    scores = torch.tensor([[[4.0, 3.0, 2.0, 1.0]] * 3])
    inputs = torch.tensor([[0, 1, 0]])
    items, _ = label_distributions(scores, inputs, LabelConfig(label_support=2), exclude_prefix=True,
                                   segments=torch.tensor([[1, 1, 2]]))
    assert items[0].tolist() == [[1, 2], [2, 3], [1, 2]]
    unsegmented, _ = label_distributions(scores, inputs, LabelConfig(label_support=2), exclude_prefix=True)
    assert unsegmented[0, 2].tolist() == [2, 3]


def test_a_student_trains_on_packed_rows_as_on_their_sequences_one_per_row(cyclic_dataset):
    split = leave_one_out(cyclic_dataset)
    sequences = [np.asarray(s)[-3:] for s in split.train[:4]]  # 2 positions each
    rows = SyntheticData.from_sequences(sequences, 8)
    packed = rows.packed([2, 2])
    emb = random_text_embeddings(cyclic_dataset.num_items)

    def student(data: SyntheticData):
        # Dropout 0 and one batch of every row: the loss is the mean over the same positions either way.
        cfg = TrainConfig(epochs=3, batch_size=data.num_sequences, lr=1e-2, seed=0, device="cpu")
        return train_on_synthetic(emb, data, split, CFG, cfg).model

    for a, b in zip(student(rows).parameters(), student(packed).parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)  # Adam amplifies float noise
