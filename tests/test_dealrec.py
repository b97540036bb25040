"""DEALRec: the projected last-layer gradient against autograd, the influence score on a hand-made case,
equal-width strata, coverage-enhanced sampling that reaches every stratum, and picks that a run can use."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from foster_core.core.data import pad_left
from foster_core.methods.coresets import SELECTORS, check_selection
from foster_core.methods.dealrec import (DEALRecConfig, coverage_sample, dealrec_indices, influence_scores,
                                         score_strata, sequence_gradients)
from foster_core.methods.registry import distill, get_method
from foster_core.testing import tiny_context


@pytest.fixture
def context(tmp_path):
    return tiny_context(cache_dir=tmp_path)


def test_influence_is_the_dot_product_with_the_inverse_fisher_times_the_mean_gradient():
    # Mean gradient (0, 1); Fisher diag(2/4, 8/4); H^-1 mean = (0, 1/2); score = g . (0, 1/2) / 4.
    gradients = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, 2.0]])
    scores = influence_scores(gradients, damping=1e-9)
    torch.testing.assert_close(scores, torch.tensor([0.0, 0.0, 0.25, 0.25]))


def test_strata_cut_the_score_range_into_equal_widths():
    assert score_strata(np.array([0.0, 0.5, 1.0, 0.25, 0.74]), 4).tolist() == [0, 2, 3, 1, 2]
    assert score_strata(np.array([3.0, 3.0]), 5).tolist() == [0, 0]  # no range: one stratum


def test_coverage_sampling_serves_small_strata_first_and_reaches_every_stratum():
    strata_of = np.array([0] * 50 + [1] * 3 + [2] * 10)
    picks = coverage_sample(strata_of, 10, np.random.default_rng(0))
    # Smallest first: stratum 1 gets min(3, 10 // 3) = 3, stratum 2 min(10, 7 // 2) = 3, stratum 0 the last 4.
    assert np.bincount(strata_of[picks], minlength=3).tolist() == [4, 3, 3]
    assert len(set(picks.tolist())) == 10
    assert sorted(strata_of[picks[:3]].tolist()) == [0, 1, 2]  # strata take turns: any prefix spreads out
    tiny = coverage_sample(np.array([0] * 5 + [1]), 4, np.random.default_rng(1))
    assert np.bincount(np.array([0] * 5 + [1])[tiny]).tolist() == [3, 1]


def test_coverage_sampling_gives_exactly_count_even_when_strata_run_short():
    strata_of = np.array([0, 1, 1, 2, 2, 2, 2, 2])
    for count in range(1, 9):
        picks = coverage_sample(strata_of, count, np.random.default_rng(count))
        assert len(picks) == count and len(set(picks.tolist())) == count


def test_projected_gradient_is_the_output_table_gradient_seen_through_the_projections(context):
    model = context.new_model().eval()
    sequences = [context.train[i] for i in context.usable[:3]]
    gradients, losses = sequence_gradients(model, sequences, context.model_cfg.max_len, dim=64, seed=7)
    # The same Gaussian projections, drawn in the same order from the same seed.
    generator = torch.Generator().manual_seed(7)
    item_projection = torch.randn(context.num_items, 32, generator=generator) / math.sqrt(32)
    flat_projection = torch.randn(32 * context.model_cfg.hidden, 64, generator=generator) / math.sqrt(64)
    for row, seq in enumerate(sequences):
        inputs = torch.from_numpy(pad_left([seq[:-1]], context.model_cfg.max_len))
        targets = torch.from_numpy(seq[1:].astype(np.int64))
        hidden = model(inputs)[0, -len(targets):].detach()
        scorer = model.item_embeddings().detach().requires_grad_(True)  # the output table, untied
        loss = F.cross_entropy(hidden @ scorer.T, targets, reduction="sum")
        loss.backward()
        expected = (item_projection.T @ scorer.grad).flatten() @ flat_projection
        torch.testing.assert_close(gradients[row], expected, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(losses[row], loss.detach())


def test_last_only_counts_the_holdout_pair_alone(context):
    model = context.new_model().eval()
    seq = context.train[context.usable[0]]
    _, last = sequence_gradients(model, [seq], context.model_cfg.max_len, last_only=True)
    hidden = model(torch.from_numpy(pad_left([seq[:-1]], context.model_cfg.max_len)))[0, -1]
    expected = F.cross_entropy(hidden @ model.item_embeddings().T, torch.tensor(int(seq[-1])))
    torch.testing.assert_close(last, expected.detach().reshape(1))


def test_picks_are_distinct_usable_exactly_count_and_fixed_by_the_seed(context):
    for count in (1, 5, 12, len(context.usable)):
        picks = dealrec_indices(context, count, seed=3)
        assert len(picks) == count and len(set(picks.tolist())) == count
        assert set(picks.tolist()) <= set(context.usable.tolist())
    assert dealrec_indices(context, 6, seed=3).tolist() == dealrec_indices(context, 6, seed=3).tolist()
    assert dealrec_indices(context, 6, seed=3).tolist() != dealrec_indices(context, 6, seed=4).tolist()


def test_registered_method_selector_and_config(context):
    spec = get_method("dealrec")
    assert spec.needs_expert and not spec.resumable
    synthetic = distill(context, "dealrec", 4, spec.config({"seed": 2, "strata": 3}))
    assert synthetic.num_sequences == 4
    check_selection("dealrec", "selection")  # offered as a start for teacher and FOSTER
    assert SELECTORS["dealrec"](context, 4, 2).tolist() == dealrec_indices(context, 4, 2).tolist()
    with pytest.raises(ValueError, match="strata"):
        DEALRecConfig(strata=0)
