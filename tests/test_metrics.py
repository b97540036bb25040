"""Ranking metrics against hand-computed cases (in the spirit of RecBole's tests/metrics)."""

import math

import numpy as np
import pytest
import torch

from foster_core.core.data import PAD_ID
from foster_core.core.evaluation import NonFiniteScoresError, evaluate_scorer, metrics_from_ranks, popularity_scorer, target_ranks


def test_target_ranked_first_scores_one():
    scores = torch.tensor([[0.1, 0.9, 0.3, 0.2]])
    ranks = target_ranks(scores, torch.tensor([1]))
    assert ranks.tolist() == [0]
    m = metrics_from_ranks(ranks, ks=(1, 2))
    assert m == {"ndcg@1": 1.0, "recall@1": 1.0, "ndcg@2": 1.0, "recall@2": 1.0}


def test_rank_three_gives_half_ndcg():
    # Target item 3 has two items above it: rank 2 (0-based), NDCG = 1/log2(2+2) = 0.5.
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.5]])
    ranks = target_ranks(scores, torch.tensor([3]))
    assert ranks.tolist() == [2]
    m = metrics_from_ranks(ranks, ks=(2, 3))
    assert m["recall@2"] == 0.0 and m["ndcg@2"] == 0.0  # outside the top 2
    assert m["recall@3"] == 1.0 and m["ndcg@3"] == pytest.approx(0.5)


def test_ties_count_against_the_target():
    scores = torch.tensor([[0.5, 0.5, 0.5, 0.1]])
    assert target_ranks(scores, torch.tensor([0])).tolist() == [2]
    constant = torch.zeros(3, 50)
    ranks = target_ranks(constant, torch.tensor([0, 7, 49]))
    assert metrics_from_ranks(ranks, ks=(10,))["recall@10"] == 0.0


def test_history_mask_lifts_the_target_and_a_masked_target_misses():
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.1], [0.9, 0.8, 0.7, 0.1]])
    history = torch.tensor([[0, 1, 0], [PAD_ID, PAD_ID, 1]])  # user 0 bought item 0 twice
    ranks = target_ranks(scores, torch.tensor([2, 1]), history)
    # User 0: items 0 and 1 are history (the repeat counted once), so target 2 ranks first.
    # User 1: the target is history, a miss.
    assert ranks.tolist() == [0, 4]
    m = metrics_from_ranks(ranks, ks=(1,))
    assert m["recall@1"] == 0.5 and m["ndcg@1"] == 0.5


def test_mean_over_users_matches_hand_computation():
    ranks = np.array([0, 1, 4, 30])
    m = metrics_from_ranks(ranks, ks=(10, 20))
    expected_ndcg = (1 + 1 / math.log2(3) + 1 / math.log2(6) + 0) / 4
    assert m["ndcg@10"] == pytest.approx(expected_ndcg)
    assert m["recall@10"] == 0.75 and m["recall@20"] == 0.75


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_scores_fail_loudly(bad):
    # NaN compares false with everything, so naive counting would put the target first: a fake hit.
    scores = torch.tensor([[0.3, bad, 0.2]])
    with pytest.raises(NonFiniteScoresError):
        target_ranks(scores, torch.tensor([1]))


def test_nan_model_fails_evaluation():
    def nan_scorer(seqs):
        return torch.full((seqs.shape[0], 5), float("nan"))

    with pytest.raises(NonFiniteScoresError):
        evaluate_scorer(nan_scorer, [np.array([0, 1])], np.array([2]), num_items=5)


def test_evaluate_scorer_masks_full_history():
    # Scores prefer items 0,1,2,... in order; history [0, 1] is masked, so target 2 ranks first.
    def ordered(seqs):
        return torch.arange(6, 0, -1, dtype=torch.float32).expand(seqs.shape[0], -1)

    m = evaluate_scorer(ordered, [np.array([0, 1]), np.array([3])], np.array([2, 2]), num_items=6, ks=(1,))
    # Second user: items 0 and 1 are unmasked and above 2, rank 2: a miss at K=1.
    assert m["recall@1"] == 0.5


def test_popularity_ranks_by_training_counts():
    scorer = popularity_scorer([np.array([2, 2, 1]), np.array([2, 1, 0])], num_items=4)
    scores = scorer(torch.zeros(1, 3, dtype=torch.long))[0]
    assert torch.argsort(scores, descending=True).tolist() == [2, 1, 0, 3]


def test_history_ranks_equal_ranking_with_the_history_masked_out():
    # The rank from history ids equals the rank among items with the history's scores set to -inf, with ties,
    # repeats and padding, on random cases.
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        scores = torch.randint(0, 6, (8, 12), generator=generator).float()  # many ties
        targets = torch.randint(0, 12, (8,), generator=generator)
        history = torch.randint(-1, 12, (8, 5), generator=generator)  # -1 = PAD_ID
        mask = torch.zeros(8, 13, dtype=torch.bool).scatter_(1, torch.where(history < 0, 12, history), True)[:, :12]
        masked = scores.masked_fill(mask, float("-inf"))
        expected = (masked >= masked.gather(1, targets.view(-1, 1))).sum(1) - 1
        expected = torch.where(mask.gather(1, targets.view(-1, 1)).squeeze(1), torch.full_like(expected, 12), expected)
        assert target_ranks(scores, targets, history).tolist() == expected.tolist()


def test_length_batches_cap_users_and_padded_positions():
    from foster_core.core.evaluation import length_batches

    lengths = np.array([1, 1, 2, 2, 3, 5, 5, 9])
    cuts = length_batches(lengths, batch_size=4, positions=8)
    # 4 users (the cap) padded to 2 = 8 positions; then 3 and 5: 2 x 5 = 10 > 8, so 3 alone; 5, 5: 10 > 8,
    # so each alone; 9 > 8 positions, but a batch always holds one user.
    assert [(c.start, c.stop) for c in cuts] == [(0, 4), (4, 5), (5, 6), (6, 7), (7, 8)]
    assert [(c.start, c.stop) for c in length_batches(lengths, 100, 1000)] == [(0, 8)]
