"""Training whose cost follows the batch: the sampled softmax, length buckets, sparse students, and the split
of a student's time into training and evaluation. Hand-computed cases, plus equality with the dense paths."""

import math

import numpy as np
import pytest
import torch

from foster_core.core.data import PAD_ID, leave_one_out
from foster_core.core.model import ModelConfig
from foster_core.core.synthetic import SyntheticData
from foster_core.core.batches import shuffled_batches
from foster_core.core.training import (TrainConfig, softmax_items, train_on_sequences, train_on_soft,
                                       train_on_synthetic)
from foster_core.testing import random_text_embeddings, zipf_dataset

SMALL = ModelConfig(hidden=32, blocks=1, heads=2, dropout=0.0, max_len=10)


def test_small_catalogues_keep_the_exact_softmax():
    items, weights = softmax_items(50, torch.tensor([3, 7]), TrainConfig(softmax_negatives=8, full_softmax_up_to=50),
                                   torch.Generator().manual_seed(0))
    assert items.tolist() == list(range(50)) and weights.abs().sum() == 0
    items, _ = softmax_items(5000, torch.tensor([3]), TrainConfig(softmax_negatives=0, full_softmax_up_to=10),
                             torch.Generator().manual_seed(0))
    assert len(items) == 5000


def test_sampled_items_hold_the_touched_items_at_weight_zero_and_the_rest_at_minus_log_q():
    # M = 10 items, N = 4 draws: an untouched item is drawn with q = 1 - 0.9^4 = 0.3439.
    cfg = TrainConfig(softmax_negatives=4, full_softmax_up_to=0)
    touched = torch.tensor([2, 5])
    items, weights = softmax_items(10, touched, cfg, torch.Generator().manual_seed(1))
    assert items.tolist() == sorted(items.tolist()) and len(set(items.tolist())) == len(items)
    assert {2, 5} <= set(items.tolist())
    for item, weight in zip(items.tolist(), weights.tolist()):
        expected = 0.0 if item in (2, 5) else -math.log(0.3439)
        assert weight == pytest.approx(expected, abs=1e-6)


def test_the_corrected_partition_function_is_unbiased():
    # exp(scores) weighted by 1/q over the drawn items, plus the touched items exactly, averages to the sum.
    scores = torch.linspace(-2.0, 3.0, 40)
    exact = float(scores.exp().sum())
    cfg = TrainConfig(softmax_negatives=6, full_softmax_up_to=0)
    generator = torch.Generator().manual_seed(0)
    estimates = []
    for _ in range(4000):
        items, weights = softmax_items(40, torch.tensor([39]), cfg, generator)
        estimates.append(float((scores[items] + weights).exp().sum()))
    assert np.mean(estimates) == pytest.approx(exact, rel=0.02)
    # An uncorrected sum over the same items is far below it: the correction is what makes it unbiased.
    assert float(scores[items].exp().sum()) < 0.8 * exact


def test_length_buckets_cover_every_row_once_with_batches_of_similar_length():
    lengths = torch.tensor([1, 9, 2, 8, 3, 7, 4, 6, 5, 5, 1, 9])
    rows = torch.arange(12)
    batches = [b[0] for b in shuffled_batches((rows,), 3, torch.Generator().manual_seed(0), lengths)]
    assert sorted(torch.cat(batches).tolist()) == list(range(12))
    spans = sorted((int(lengths[b].min()), int(lengths[b].max()), int(lengths[b].sum())) for b in batches)
    # Sorted by length, each row in the batch where its first position falls, every 3 x 5 (the mean length)
    # = 15 real positions; the rows start at 0, 1, 2, 4, 7, 11 | 16, 21, 27 | 34, 42 | 51: many short rows in
    # a batch, few long ones.
    assert spans == [(1, 5, 16), (5, 7, 18), (8, 9, 17), (9, 9, 9)]
    # Rows of equal length: batches of exactly batch_size rows, as without buckets.
    equal = [len(b[0]) for b in shuffled_batches((rows,), 4, torch.Generator().manual_seed(0), torch.full((12,), 3))]
    assert equal == [4, 4, 4]


def test_length_buckets_sort_within_chunks_of_the_shuffled_rows():
    lengths, rows = torch.arange(1, 17), torch.arange(16)  # row r is r + 1 long: sorted by length = by id
    order = torch.randperm(16, generator=torch.Generator().manual_seed(0))  # the function's first draw
    chunks = [set(c.tolist()) for c in order.split(2 * 4)]  # 4 batches' worth of 2 rows
    batches = [set(b[0].tolist()) for b in shuffled_batches((rows,), 2, torch.Generator().manual_seed(0), lengths,
                                                            chunk=4)]
    assert sorted(r for b in batches for r in b) == list(range(16))
    for chunk in chunks:  # every batch inside one chunk, and the chunk's batches runs of its sorted rows
        inside = sorted((b for b in batches if b <= chunk), key=min)
        assert [r for b in inside for r in sorted(b)] == sorted(chunk)


def _soft_data(dataset, split, n: int) -> SyntheticData:
    """A few real sequences made soft: each position spreads 20% of its mass over two other items."""
    real = SyntheticData.from_sequences(split.train[:n], SMALL.max_len)
    others = (real.input_items + torch.tensor([0, 1, 2])) % dataset.num_items
    probs = torch.tensor([0.8, 0.1, 0.1]).expand(others.shape).clone()
    return SyntheticData(others, probs, (real.label_items + torch.tensor([0, 3])) % dataset.num_items,
                         torch.tensor([0.7, 0.3]).expand(*real.label_items.shape[:2], 2).clone(), real.mask)


def test_the_sparse_student_trains_exactly_as_the_dense_one_with_the_exact_softmax(monkeypatch):
    dataset = zipf_dataset(60, users=30, length=8)
    split = leave_one_out(dataset)
    emb = random_text_embeddings(dataset.num_items)
    synthetic = _soft_data(dataset, split, 6)
    cfg = TrainConfig(epochs=6, lr=1e-2, batch_size=6, patience=6, eval_every=2, full_softmax_up_to=10_000)
    inputs, labels, mask = synthetic.dense(dataset.num_items)
    dense = train_on_soft(emb, inputs, labels, split, SMALL, cfg, mask=mask)
    monkeypatch.setattr(SyntheticData, "dense", lambda *a: (_ for _ in ()).throw(AssertionError("dense tensors built")))
    sparse = train_on_synthetic(emb, synthetic, split, SMALL, cfg)
    assert [r["loss"] for r in sparse.history] == pytest.approx([r["loss"] for r in dense.history], rel=1e-4)
    assert sparse.best_valid["ndcg@10"] == pytest.approx(dense.best_valid["ndcg@10"], abs=1e-6)


def test_the_sparse_student_with_sampled_negatives_still_learns():
    dataset = zipf_dataset(300, users=60, length=10)
    split = leave_one_out(dataset)
    emb = random_text_embeddings(dataset.num_items)
    synthetic = SyntheticData.from_sequences(split.train[:20], SMALL.max_len)
    cfg = TrainConfig(epochs=60, lr=1e-2, batch_size=20, patience=60, eval_every=10, softmax_negatives=32,
                      full_softmax_up_to=0)
    result = train_on_synthetic(emb, synthetic, split, SMALL, cfg)
    losses = [r["loss"] for r in result.history]
    assert losses[-1] < 0.7 * losses[0]


def test_real_data_training_with_the_exact_softmax_and_no_buckets_is_unchanged_by_the_item_table():
    # The per-batch item table over all M items is the catalogue's table: the same loss as the model's own lookup.
    dataset = zipf_dataset(40, users=24, length=6)
    split = leave_one_out(dataset)
    emb = random_text_embeddings(dataset.num_items)
    cfg = TrainConfig(epochs=2, batch_size=8, bucket_by_length=False)
    first = train_on_sequences(emb, split.train, split, SMALL, cfg)
    again = train_on_sequences(emb, split.train, split, SMALL, cfg)
    assert [r["loss"] for r in first.history] == [r["loss"] for r in again.history]
    seqs = torch.tensor([[PAD_ID, 0, 1, 2]])
    table = first.model.item_embeddings()
    torch.testing.assert_close(first.model(seqs, item_table=table), first.model(seqs))


def test_sampled_softmax_training_learns_a_large_catalogue():
    dataset = zipf_dataset(400, users=200, length=10)
    split = leave_one_out(dataset)
    emb = random_text_embeddings(dataset.num_items)
    cfg = TrainConfig(epochs=8, lr=5e-3, batch_size=32, patience=8, softmax_negatives=64, full_softmax_up_to=0)
    result = train_on_sequences(emb, split.train, split, SMALL, cfg)
    assert result.best_valid["ndcg@10"] > result.history[0]["valid"]["ndcg@10"] or result.best_epoch == 1
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_a_training_result_splits_its_seconds_into_training_and_validation():
    dataset = zipf_dataset(40, users=24, length=6)
    split = leave_one_out(dataset)
    result = train_on_sequences(random_text_embeddings(dataset.num_items), split.train, split, SMALL,
                                TrainConfig(epochs=4, batch_size=8, eval_every=2, patience=4))
    assert sum("eval_seconds" in r for r in result.history) == 2  # epochs 2 and 4
    assert 0 < result.eval_seconds < result.seconds
    assert result.train_seconds == pytest.approx(result.seconds - result.eval_seconds)


def test_validation_samples_are_seeded_and_the_whole_split_when_small():
    dataset = zipf_dataset(40, users=30, length=6)
    split = leave_one_out(dataset)
    assert split.sample_users(0) is split and split.sample_users(30) is split
    sample = split.sample_users(10)
    again = split.sample_users(10)
    assert len(sample.train) == 10 and sample.valid_targets.tolist() == again.valid_targets.tolist()
    # Each sampled user keeps its own inputs and targets, in the original order.
    rows = [i for i, seq in enumerate(split.train) if any(seq is s for s in sample.train)]
    assert rows == sorted(rows) and split.test_targets[rows].tolist() == sample.test_targets.tolist()
