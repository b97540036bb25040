"""GORACS: Sinkhorn on hand-made transport problems, greedy facility location that never picks a copy of a
pick while another sequence is left, swaps that lower the balanced transport cost, and usable picks."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from foster_core.methods.coresets import SELECTORS, check_selection
from foster_core.methods.goracs import (GORACSConfig, goracs_indices, greedy_transport, refine_swaps,
                                        sinkhorn_plans, spherical_kmeans, transport_cost)
from foster_core.methods.registry import distill, get_method
from foster_core.testing import tiny_context


@pytest.fixture
def context(tmp_path):
    return tiny_context(cache_dir=tmp_path)


def unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def test_sinkhorn_moves_uniform_rows_onto_the_target_weights():
    cost = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    # Rows carry 1/2 each; the target wants 3/4 on column 0: row 1 must send 1/4 across, at cost 1.
    plan = sinkhorn_plans(cost, torch.tensor([0.75, 0.25]), eps=0.01)
    torch.testing.assert_close(plan, torch.tensor([[0.5, 0.0], [0.25, 0.25]]), atol=1e-3, rtol=0)
    torch.testing.assert_close(transport_cost(cost, torch.tensor([0.75, 0.25]), eps=0.01), torch.tensor(0.25),
                               atol=1e-3, rtol=0)
    # Batched: two rows both near column 0 must still send half the mass to column 1.
    both_left = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    batched = transport_cost(torch.stack([cost, both_left]), torch.tensor([0.5, 0.5]), eps=0.01)
    torch.testing.assert_close(batched, torch.tensor([0.0, 0.5]), atol=1e-3, rtol=0)


def test_kmeans_finds_two_clusters_and_their_shares():
    points = unit(*([[1.0, 0.05 * i] for i in range(6)] + [[0.05 * i, 1.0] for i in range(2)]))
    centres, weights = spherical_kmeans(points, 2, seed=0)
    assert sorted(weights.tolist()) == [0.25, 0.75]
    assert torch.allclose(centres.norm(dim=1), torch.ones(2))


def test_greedy_serves_the_heaviest_prototype_first_and_never_picks_a_copy_while_others_are_left():
    prototypes, weights = unit([1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]), torch.tensor([0.6, 0.3, 0.1])
    directions = unit([1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.1])  # rows 0 and 1 are the same sequence
    cost = 1.0 - directions @ prototypes.T
    assert greedy_transport(cost, weights, directions, 3) == [0, 2, 3]
    assert greedy_transport(cost, weights, directions, 4) == [0, 2, 3, 1]  # the copy only when nothing else is left


def test_refinement_swaps_a_compromise_pick_for_one_that_lowers_the_balanced_transport_cost():
    prototypes, weights = unit([1.0, 0.0], [0.0, 1.0]), torch.tensor([0.5, 0.5])
    directions = unit([1.0, 1.0], [1.0, 0.0], [0.0, 1.0])  # a middle row, then one on each prototype
    cost = 1.0 - directions @ prototypes.T
    greedy = greedy_transport(cost, weights, directions, 2)
    assert greedy == [0, 1]  # the middle row serves both prototypes best when masses are free
    before = float(transport_cost(cost[greedy], weights, 0.01))
    refined = refine_swaps(cost, weights, directions, greedy, rounds=5, eps=0.01)
    assert sorted(refined) == [1, 2]
    assert float(transport_cost(cost[refined], weights, 0.01)) < before - 0.1


def test_picks_are_distinct_usable_exactly_count_and_fixed_by_the_seed(context):
    for count in (1, 5, 20, len(context.usable)):
        picks = goracs_indices(context, count, seed=0)
        assert len(picks) == count and len(set(picks.tolist())) == count
        assert set(picks.tolist()) <= set(context.usable.tolist())
    assert goracs_indices(context, 6, seed=1).tolist() == goracs_indices(context, 6, seed=1).tolist()


def test_duplicated_sequences_are_not_both_picked(context):
    # The cyclic users walk the same 12-item cycle from random starts: 40 sequences, only 12 different.
    distinct = {tuple(context.train[i]) for i in context.usable}
    assert len(distinct) < len(context.usable)
    for count in (6, len(distinct)):
        picked = [tuple(context.train[i]) for i in goracs_indices(context, count, seed=0)]
        assert len(set(picked)) == count


def test_registered_method_selector_and_config(context):
    spec = get_method("goracs")
    assert spec.needs_expert and not spec.resumable
    synthetic = distill(context, "goracs", 4, spec.config({"seed": 2, "utility_weight": 0.0}))
    assert synthetic.num_sequences == 4
    check_selection("goracs", "init_selection")  # offered as a start for teacher and FOSTER
    assert SELECTORS["goracs"](context, 4, 2).tolist() == goracs_indices(context, 4, 2).tolist()
    with pytest.raises(ValueError, match="sinkhorn_eps"):
        GORACSConfig(sinkhorn_eps=0.0)
    assert np.array_equal(goracs_indices(context, 3, 0, GORACSConfig(refine_rounds=0)),
                          goracs_indices(context, 3, 0, GORACSConfig(refine_up_to=0)))
