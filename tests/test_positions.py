"""What a budget buys: a synthetic set's positions and their share of the training targets, by hand."""

from __future__ import annotations

import numpy as np

from foster_core.core.data import training_targets
from foster_core.core.synthetic import SyntheticData


def test_training_targets_count_every_item_after_a_sequences_first():
    sequences = [np.array([1, 2, 3]), np.array([4]), np.array([5, 6]), np.array([], dtype=np.int64)]
    assert training_targets(sequences) == 2 + 0 + 1 + 0


def test_positions_are_the_non_padding_inputs_of_s():
    # Two real sequences of 4 and 2 items in windows of 5: 3 and 1 input positions, the rest left padding.
    synthetic = SyntheticData.from_sequences([np.array([1, 2, 3, 4]), np.array([7, 8])], max_len=5)
    assert synthetic.num_positions == 3 + 1
    assert synthetic.mask.shape == (2, 5)
