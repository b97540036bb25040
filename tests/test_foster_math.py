"""FOSTER's math pinned with hand-computed values on tiny arrays (in the style of RecBole's tests/metrics).

Symbols are those of ../shared/foster-method.md: V_s the step's item subset, L_syn the synthetic loss,
L_r the co-occurrence regulariser, lambda the penalty weight, K_in / K_lab the input / label supports,
c the start's logit on the real item (init_scale).
"""

import math

import pytest
import torch
import torch.nn.functional as F

from foster_core.core.data import PAD_ID, leave_one_out
from foster_core.core.model import TextSASRec
from foster_core.core.synthetic import SyntheticData, expected_embeddings
from foster_core.core.training import TrainConfig, item_subset
from foster_core.methods.foster import FosterConfig, cooccurrence_loss, lambda_at
from foster_core.methods.registry import distill
from foster_core.methods.teacher import selected_coreset
from foster_core.methods.sparse import (SoftStartConfig, SparseSynthetic, soft_start, start_logits, starting_point,
                                       synthetic_loss)
from foster_core.testing import TINY_MODEL, cyclic_dataset, random_text_embeddings, tiny_context

ATOL = 1e-6


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """The cyclic dataset with random 16-d texts; the expert (trained once for the module) is cached here."""
    context = tiny_context(cache_dir=tmp_path_factory.mktemp("experts"),
                           expert_cfg=TrainConfig(epochs=3, lr=1e-2, batch_size=8))
    context.expert()
    return context


# ----------------------------------------------------------------------------- L_syn


def test_synthetic_loss_on_one_hot_data_is_plain_cross_entropy_over_the_subset():
    """K_in = K_lab = 1 with probability 1 is a real sequence: L_syn must be the ordinary next-item
    cross-entropy with the softmax over V_s, computed here from hard ids through the model's own forward."""
    dataset = cyclic_dataset(n_users=2, n_items=30, length=6)  # 12 of the 30 items occur
    sequences = leave_one_out(dataset).train
    torch.manual_seed(0)
    net = TextSASRec(random_text_embeddings(dataset.num_items), TINY_MODEL).eval()
    one_hot = SyntheticData.from_sequences(sequences, TINY_MODEL.max_len)
    n, L = one_hot.mask.shape
    # One logit per position: softmax over a support of one is probability 1, whatever its value.
    syn = SparseSynthetic(one_hot, torch.randn(n, L, 1), torch.randn(n, L, 1))
    subset = item_subset(dataset.num_items, 3, torch.Generator().manual_seed(0), syn.input_items, syn.label_items)
    assert len(subset) < dataset.num_items  # a real subset: the softmax does not see every item

    loss = synthetic_loss(net, syn, subset, net.item_embeddings(subset))

    inputs = torch.where(one_hot.mask, one_hot.input_items[..., 0], PAD_ID)  # left-padded hard ids
    hidden = net(inputs)[one_hot.mask]  # looked up in the whole catalogue, not through V_s
    logits = net.score(hidden, items=subset)
    row_of = {int(item): row for row, item in enumerate(subset)}
    targets = torch.tensor([row_of[int(v)] for v in one_hot.label_items[..., 0][one_hot.mask]])
    expected = F.cross_entropy(logits, targets)
    assert torch.isclose(loss, expected, atol=ATOL, rtol=0), (loss.item(), expected.item())


# ----------------------------------------------------------------------------- L_r


def test_cooccurrence_loss_on_three_items_by_hand():
    """Texts t0 = (1, 0, 0), t1 = (0.6, 0.8, 0), t2 = (0, 0.6, 0.8): cos(0,1) = 0.6, cos(1,2) = 0.48,
    cos(0,2) = 0. One sequence of three positions; inputs 0, 1, 2 (K_in = 1); labels half and half:

        position  input  labels (0.5 each)  next text = what follows the input
        0         0      1, 2               q0 = (0.3, 0.7, 0.4)
        1         1      2, 0               q1 = (0.5, 0.3, 0.4)
        2         2      0, 1               q2 = (0.8, 0.4, 0.0)

    ||q0-q1||^2 = 0.04 + 0.16 + 0    = 0.20
    ||q0-q2||^2 = 0.25 + 0.09 + 0.16 = 0.50   (A = 0: contributes nothing)
    ||q1-q2||^2 = 0.09 + 0.01 + 0.16 = 0.26

    With 2 neighbours each, every ordered pair counts once:
    L_r = (2 * 0.6 * 0.20 + 2 * 0.48 * 0.26) / (2 * 0.6 + 2 * 0.48) = 0.4896 / 2.16 = 17/75 = 0.22667.
    """
    text = torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.6, 0.8]])
    data = SyntheticData(input_items=torch.tensor([[[0], [1], [2]]]), input_probs=torch.ones(1, 3, 1),
                         label_items=torch.tensor([[[1, 2], [2, 0], [0, 1]]]), label_probs=torch.full((1, 3, 2), 0.5),
                         mask=torch.ones(1, 3, dtype=torch.bool))
    syn = SparseSynthetic(data, torch.zeros(1, 3, 1), torch.zeros(1, 3, 2))  # softmax(0, 0) = (0.5, 0.5)
    config = FosterConfig(reg_items=512, reg_neighbours=2)
    loss = cooccurrence_loss(syn, text, config, torch.Generator().manual_seed(0))
    assert abs(loss.item() - 17 / 75) < ATOL, loss.item()

    # q_u is a mass-weighted mean: the same sequence twice gives the same q's, hence the same L_r.
    twice = SyntheticData(*(torch.cat([t, t]) for t in (data.input_items, data.input_probs, data.label_items,
                                                        data.label_probs, data.mask)))
    doubled = SparseSynthetic(twice, torch.zeros(2, 3, 1), torch.zeros(2, 3, 2))
    assert abs(cooccurrence_loss(doubled, text, config, torch.Generator().manual_seed(0)).item() - 17 / 75) < ATOL


def test_cooccurrence_loss_is_zero_when_similar_items_have_the_same_successors():
    """Items 0 and 1 have parallel texts (A = 1) and the same next item 2; item 2 is orthogonal to both
    (A = 0): every weighted gap is 0, so L_r = 0 / 2 = 0."""
    text = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    data = SyntheticData(torch.tensor([[[0], [1], [2]]]), torch.ones(1, 3, 1), torch.tensor([[[2], [2], [0]]]),
                         torch.ones(1, 3, 1), torch.ones(1, 3, dtype=torch.bool))
    syn = SparseSynthetic(data, torch.zeros(1, 3, 1), torch.zeros(1, 3, 1))
    loss = cooccurrence_loss(syn, text, FosterConfig(reg_items=512, reg_neighbours=2), torch.Generator())
    assert abs(loss.item()) < ATOL


# ----------------------------------------------------------------------------- V_s


def test_item_subset_holds_the_uniform_draws_and_every_forced_item():
    targets = torch.tensor([[3, PAD_ID, 7]])  # a real batch's next items, with one padding position
    supports = torch.tensor([[[12, 3], [PAD_ID, 18]]])  # S's support items
    # The uniform draws of seed 0 (torch.randint(20, (5,))): 4, 19, 13, 0, 3.
    assert torch.randint(20, (5,), generator=torch.Generator().manual_seed(0)).tolist() == [4, 19, 13, 0, 3]
    subset = item_subset(20, 5, torch.Generator().manual_seed(0), targets, supports)
    # {4, 19, 13, 0, 3} | {3, 7} | {12, 3, 18}, sorted, each once; PAD (-1) left out.
    assert subset.tolist() == [0, 3, 4, 7, 12, 13, 18, 19]
    assert subset.dtype == torch.int64


def test_item_subset_of_size_zero_or_less_is_the_whole_catalogue():
    for size in (0, -1):
        subset = item_subset(6, size, torch.Generator().manual_seed(0), torch.tensor([3, PAD_ID]))
        assert subset.tolist() == [0, 1, 2, 3, 4, 5]


# ----------------------------------------------------------------------------- lambda


def test_lambda_grows_linearly_from_lambda_0_at_the_first_step_to_lambda_max_at_the_last():
    config = FosterConfig(steps=5, lambda_start=1.0, lambda_end=9.0)
    # (9 - 1) / (5 - 1) = 2 per step.
    assert [lambda_at(step, config) for step in range(1, 6)] == [1.0, 3.0, 5.0, 7.0, 9.0]
    config = FosterConfig(steps=3, lambda_start=0.5, lambda_end=0.0)  # a decreasing schedule works the same way
    assert [lambda_at(step, config) for step in range(1, 4)] == [0.5, 0.25, 0.0]
    assert lambda_at(1, FosterConfig(steps=1, lambda_start=2.0, lambda_end=10.0)) == 2.0  # one step: lambda_0


# ----------------------------------------------------------------------------- soft inputs


def test_expected_embeddings_of_a_two_item_support():
    table = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 4.0]])
    items = torch.tensor([[[0, 2], [1, 0]]])  # (n=1, L=2, K=2)
    probs = torch.tensor([[[0.25, 0.75], [0.5, 0.5]]])
    # 0.25 * (1, 0) + 0.75 * (2, 4) = (1.75, 3.0);  0.5 * (0, 1) + 0.5 * (1, 0) = (0.5, 0.5)
    expected = torch.tensor([[[1.75, 3.0], [0.5, 0.5]]])
    torch.testing.assert_close(expected_embeddings(items, probs, table), expected, atol=ATOL, rtol=0)


# ----------------------------------------------------------------------------- the start


def test_start_logits_put_c_on_the_real_item_and_recover_the_label_probs():
    label_probs = torch.tensor([[[0.7, 0.2, 0.1, 0.0], [0.25, 0.25, 0.25, 0.25]]])
    start = SyntheticData(torch.tensor([[[5, 1, 2], [3, 4, 0]]]), torch.ones(1, 2, 3) / 3,
                          torch.tensor([[[1, 2, 3, 4], [0, 1, 2, 3]]]), label_probs, torch.ones(1, 2, dtype=torch.bool))
    input_logits, label_logits = start_logits(start, 4.0)
    assert input_logits.tolist() == [[[4.0, 0.0, 0.0], [4.0, 0.0, 0.0]]]
    # softmax(4, 0, 0) = (e^4, 1, 1) / (e^4 + 2) = (0.964663, 0.017668, 0.017668)
    torch.testing.assert_close(F.softmax(input_logits, -1)[0, 0], torch.tensor([0.964663, 0.017668, 0.017668]),
                               atol=ATOL, rtol=0)
    assert math.isclose(math.exp(4) / (math.exp(4) + 2), 0.964663, abs_tol=ATOL)
    # A zero probability becomes log(1e-8): softmax gives it 1e-8, within the tolerance of 0.
    torch.testing.assert_close(F.softmax(label_logits, -1), label_probs, atol=ATOL, rtol=0)


def test_soft_start_puts_the_real_training_item_first_in_each_input_support(context):
    config = SoftStartConfig(input_support=3, label_support=4, init_packing="off")
    start = soft_start(context, 3, config)
    assert start.input_items.shape[-1] == 3 and start.label_items.shape[-1] == 4
    train_items = {int(v) for s in context.train for v in s}
    assert {int(v) for v in start.input_items[..., 0][start.mask]} <= train_items
    # The neighbours after the real item are other items (the real one is not repeated).
    first, rest = start.input_items[..., :1], start.input_items[..., 1:]
    assert not (rest == first)[start.mask].any()
    torch.testing.assert_close(start.label_probs[start.mask].sum(-1), torch.ones(int(start.mask.sum())))
    # The learnable S a run starts from (no noise): softmax of its logits is the start, c on the real item.
    first_step, syn = starting_point(context, 3, config, None)
    assert first_step == 1
    torch.testing.assert_close(F.softmax(syn.label_logits, -1), start.label_probs, atol=ATOL, rtol=0)
    c = config.init_scale
    real_mass = math.exp(c) / (math.exp(c) + 2)  # softmax(c, 0, 0)[0] over K_in = 3
    torch.testing.assert_close(F.softmax(syn.input_logits, -1)[..., 0], torch.full(start.mask.shape, real_mass),
                               atol=ATOL, rtol=0)


def test_the_weak_start_labels_each_position_with_its_real_next_item_and_no_expert(context):
    config = SoftStartConfig(input_support=3, label_support=4, init_packing="off", init_selection="random",
                             init_labels="real")
    start = soft_start(context, 3, config)
    # Each label support: the real next item first (as in the real sequences, each without its last item,
    # the holdout's target), then other items.
    real = selected_coreset(context, 3, "random", config.seed, drop_last=True)
    assert torch.equal(start.mask, real.mask)
    # So no row ends on a user's holdout pair: one position fewer than the whole sequences, label by label.
    whole = selected_coreset(context, 3, "random", config.seed)
    assert torch.equal(start.mask.sum(1), whole.mask.sum(1) - 1)
    assert torch.equal(start.label_items[..., 0][start.mask], whole.label_items[:, :-1, 0][whole.mask[:, :-1]])
    assert torch.equal(start.input_items[..., 0], real.input_items[..., 0])
    assert torch.equal(start.label_items[..., 0][start.mask], real.label_items[..., 0][real.mask])
    assert not (start.label_items[..., 1:] == start.label_items[..., :1])[start.mask].any()
    # softmax(c, 0, 0, 0) over K_lab = 4: the real next item gets e^c / (e^c + 3), each neighbour 1 / (e^c + 3).
    c = config.init_scale
    expected = torch.tensor([math.exp(c), 1.0, 1.0, 1.0]) / (math.exp(c) + 3)
    torch.testing.assert_close(start.label_probs[start.mask], expected.expand(int(start.mask.sum()), 4),
                               atol=ATOL, rtol=0)
    assert math.isclose(expected[0].item(), 0.947915, abs_tol=ATOL)  # 54.59815 / 57.59815
    # The `random` coreset of the same seed, less each last item: nothing from the expert.
    same = distill(context, "random", 3)
    assert torch.equal(start.input_items[..., 0][start.mask], same.input_items[:, :-1, 0][same.mask[:, :-1]])
    with pytest.raises(ValueError, match="init_labels must be 'expert' or 'real'"):
        SoftStartConfig(init_labels="teacher")


# ----------------------------------------------------------------------------- K_in = 2


QUICK = dict(steps=3, subset_size=8, input_support=3, label_support=5, real_batch_size=8, reg_items=16,
             select_every=0, checkpoint_every=0, log_every=1, synthetic_lr=0.1)


def test_two_inner_steps_run_deterministically_and_differ_from_one(context):
    two = distill(context, "foster", 4, FosterConfig(**QUICK, inner_steps=2))
    for probs in (two.input_probs, two.label_probs):
        real = probs[two.mask]
        assert torch.all(real >= 0) and torch.isfinite(real).all()
        torch.testing.assert_close(real.sum(-1), torch.ones(real.shape[0]))
    again = distill(context, "foster", 4, FosterConfig(**QUICK, inner_steps=2))
    assert torch.equal(two.input_probs, again.input_probs) and torch.equal(two.label_probs, again.label_probs)
    one = distill(context, "foster", 4, FosterConfig(**QUICK, inner_steps=1))
    # Same seed, same start and batches: only theta_hat's extra step differs, and it moves S.
    assert torch.equal(one.input_items, two.input_items)
    assert (one.input_probs - two.input_probs).abs().max() > 1e-6 or \
        (one.label_probs - two.label_probs).abs().max() > 1e-6


def test_a_snapshot_of_s_shares_no_tensor_with_the_s_that_goes_on_changing():
    init = SyntheticData(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 0.5),
                         torch.ones(1, 2, 3, dtype=torch.long), torch.full((1, 2, 3), 1 / 3), torch.tensor([[True, True]]))
    syn = SparseSynthetic(init, torch.zeros(1, 2, 2), torch.zeros(1, 2, 3))
    snapshot = syn.to_data()
    syn.label_items[0, 0, 0] = 7
    syn.input_items[0, 1, 1] = 5
    syn.mask[0, 0] = False
    assert snapshot.label_items[0, 0, 0] == 1 and snapshot.input_items[0, 1, 1] == 0 and bool(snapshot.mask[0, 0])
