"""Whole histories: loaders keep them, training reads them in windows, evaluation reads the last window."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from foster_core.core.data import PAD_ID, DataConfig, Split
from foster_core.core.evaluation import evaluate_scorer
from foster_core.core.loaders import build_dataset
from foster_core.core.model import TextSASRec
from foster_core.core.training import TrainConfig, next_item_pairs, train_on_sequences
from foster_core.testing import SMALL_MODEL, cyclic_tables, random_text_embeddings

SEVEN = np.array([10, 11, 12, 13, 14, 15, 16])  # a user's 7 training items: targets 11..16
P = PAD_ID


def test_seven_items_in_windows_of_three_default_stride():
    # max_len 3, stride 1: each window trains its last target, the oldest (from item 10) all of its own.
    inputs, targets = next_item_pairs([SEVEN], 3)
    assert inputs.tolist() == [[13, 14, 15], [12, 13, 14], [11, 12, 13], [10, 11, 12]]
    assert targets.tolist() == [[P, P, 16], [P, P, 15], [P, P, 14], [11, 12, 13]]


def test_seven_items_in_non_overlapping_and_half_overlapping_windows():
    inputs, targets = next_item_pairs([SEVEN], 3, stride=3)
    assert inputs.tolist() == [[13, 14, 15], [10, 11, 12]]
    assert targets.tolist() == [[14, 15, 16], [11, 12, 13]]
    inputs, targets = next_item_pairs([SEVEN], 3, stride=2)
    assert inputs.tolist() == [[13, 14, 15], [11, 12, 13], [P, 10, 11]]
    assert targets.tolist() == [[P, 15, 16], [P, 13, 14], [P, 11, 12]]


@pytest.mark.parametrize("length, max_len, stride", [(2, 3, 1), (4, 3, 1), (50, 7, 3), (51, 10, 5), (23, 5, 5)])
def test_every_target_trains_exactly_once_after_its_own_past(length, max_len, stride):
    seq = np.arange(100, 100 + length)
    inputs, targets = next_item_pairs([seq, np.array([7])], max_len, stride)
    trained = targets[targets != PAD_ID]
    assert sorted(trained.tolist()) == seq[1:].tolist()  # once each; the one-item sequence gives nothing
    rows, cols = np.nonzero(targets != PAD_ID)
    assert (inputs[rows, cols] == targets[rows, cols] - 1).all()  # the input at a target's position is its predecessor
    context = (inputs != PAD_ID).cumsum(1)[rows, cols]
    assert (context >= np.minimum(max_len - stride + 1, targets[rows, cols] - 100)).all()


def test_short_sequences_stay_one_row_each():
    seqs = [np.array([1, 2, 3]), np.array([4, 5])]
    inputs, targets = next_item_pairs(seqs, 5)
    assert inputs.tolist() == [[P, P, P, 1, 2], [P, P, P, P, 4]]
    assert targets.tolist() == [[P, P, P, 2, 3], [P, P, P, P, 5]]


def test_stride_outside_the_window_is_refused():
    with pytest.raises(ValueError, match="stride"):
        next_item_pairs([SEVEN], 3, stride=4)


def test_loader_keeps_whole_histories_unless_asked_to_truncate():
    inter, items = cyclic_tables(n_users=3, n_items=12, length=8)
    whole = build_dataset("w", inter, items, DataConfig(min_interactions=5, max_seq_len=6))
    assert [len(s) for s in whole.sequences] == [8, 8, 8]
    assert any("whole histories" in n for n in whole.notes)
    cut = build_dataset("c", inter, items, DataConfig(min_interactions=5, max_seq_len=6, truncate_histories=True))
    assert [len(s) for s in cut.sequences] == [6, 6, 6]


def test_training_sees_every_window_of_a_long_history(monkeypatch):
    inter, items = cyclic_tables(n_users=4, n_items=12, length=30)
    dataset = build_dataset("long", inter, items, DataConfig(min_interactions=5))
    train = [s[:-2] for s in dataset.sequences]  # 28 items: 27 targets, more than the window of 10
    seen = []
    original = TextSASRec.forward

    def spy(self, seqs, *args, **kwargs):
        if self.training:
            seen.append(seqs.shape)
        return original(self, seqs, *args, **kwargs)

    monkeypatch.setattr(TextSASRec, "forward", spy)
    train_on_sequences(random_text_embeddings(dataset.num_items), train, None, SMALL_MODEL,
                       TrainConfig(epochs=1, batch_size=64))
    windows = len(next_item_pairs(train, SMALL_MODEL.max_len)[0])
    assert windows == 4 * 5  # ends at targets 27, 22, 17, 12, then the oldest window (targets 1..7)
    assert sum(shape[0] for shape in seen) == windows and max(shape[1] for shape in seen) <= SMALL_MODEL.max_len


def test_evaluation_reads_the_last_window_and_masks_the_whole_history():
    history = np.arange(1, 30)  # 29 items seen; the model's window is 5
    widths = []

    def scorer(seqs: torch.Tensor) -> torch.Tensor:
        widths.append(seqs.shape[1])
        scores = torch.zeros(seqs.shape[0], 40)
        scores[:, 1] = 5.0  # item 1 is seen long before the window: masked all the same
        scores[:, 35] = 1.0
        return scores

    metrics = evaluate_scorer(scorer, [history], np.array([35]), 40, max_len=5)
    assert widths == [5] and metrics["recall@10"] == 1.0 and metrics["ndcg@10"] == 1.0
