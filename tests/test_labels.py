"""Label distributions from the expert's scores: prefix exclusion, temperature, support (hand-computed)."""

from __future__ import annotations

import pytest
import torch

from foster_core.core.data import PAD_ID
from foster_core.methods.registry import distill
from foster_core.methods.teacher import LabelConfig, TeacherConfig, expert_labels, label_distributions, prefix_items
from foster_core.testing import tiny_context

# One sequence, two positions, a catalogue of 5 items; the inputs are item 1, then item 3.
SCORES = torch.tensor([[[2.0, 5.0, 1.0, 4.0, 0.5],
                        [0.0, 6.0, 3.0, 7.0, 1.0]]])
INPUTS = torch.tensor([[1, 3]])


def test_excluded_prefix_leaves_the_softmax_over_the_other_items():
    items, probs = label_distributions(SCORES, INPUTS, LabelConfig(label_support=5), exclude_prefix=True)
    # Position 1's prefix is {1, 3}: its label holds exactly items 0, 2 and 4, in order of score.
    assert items[0, 1].tolist() == [2, 4, 0]
    rest = torch.tensor([3.0, 1.0, 0.0])
    assert torch.allclose(probs[0, 1], torch.softmax(rest, 0), atol=1e-6)
    # Position 0's prefix is {1}: item 3 may still be its label, item 1 may not.
    assert 1 not in items[0, 0].tolist() and items[0, 0, 0] == 3
    assert torch.allclose(probs[0, 0], torch.softmax(torch.tensor([4.0, 2.0, 1.0]), 0), atol=1e-6)


def test_without_exclusion_the_prefix_keeps_its_mass():
    items, probs = label_distributions(SCORES, INPUTS, LabelConfig(label_support=2))
    assert items[0, 1].tolist() == [3, 1]
    assert torch.allclose(probs[0, 1], torch.softmax(torch.tensor([7.0, 6.0]), 0), atol=1e-6)


def test_temperature_divides_the_scores_before_the_cut():
    items, probs = label_distributions(SCORES, INPUTS, LabelConfig(label_support=3, label_temperature=2.0),
                                       exclude_prefix=True)
    assert items[0, 1].tolist() == [2, 4, 0]
    assert torch.allclose(probs[0, 1], torch.softmax(torch.tensor([1.5, 0.5, 0.0]), 0), atol=1e-6)


def test_padding_is_no_prefix_and_a_full_catalogue_prefix_is_left_unmasked():
    scores = torch.tensor([[[1.0, 3.0, 2.0]] * 4])
    items, _ = label_distributions(scores, torch.tensor([[PAD_ID, 0, 1, 2]]),
                                   LabelConfig(label_support=3), exclude_prefix=True)
    assert items[0, 0, 0] == 1  # padding hides nothing: the top item stays
    assert items[0, 2].tolist() == [2]  # prefix {0, 1}: one item is left, so K = 1 everywhere
    assert items[0, 3].tolist() == [1]  # prefix = the whole catalogue: nothing hidden


def test_label_config_refuses_a_non_positive_temperature():
    with pytest.raises(ValueError, match="label_temperature"):
        LabelConfig(label_temperature=0.0)


def test_relabelled_teacher_data_never_points_into_its_own_prefix(tmp_path):
    context = tiny_context(cache_dir=tmp_path)
    config = TeacherConfig(label_support=4)
    data = expert_labels(context, distill(context, "teacher", 4, config), config, exclude_prefix=True)
    inputs = prefix_items(data)
    for row in range(data.num_sequences):
        for t in range(data.mask.shape[1]):
            if data.mask[row, t]:
                seen = set(inputs[row, : t + 1][inputs[row, : t + 1] != PAD_ID].tolist())
                assert not seen & set(data.label_items[row, t].tolist())
    assert torch.allclose(data.label_probs.sum(-1), torch.ones(data.mask.shape))
