import torch
import torch.nn.functional as F

from foster_core.core.data import PAD_ID
from foster_core.core.model import ModelConfig, TextSASRec

from conftest import random_text_embeddings


def make_model(dropout: float = 0.0, num_items: int = 30) -> TextSASRec:
    torch.manual_seed(0)
    return TextSASRec(random_text_embeddings(num_items), ModelConfig(hidden=16, blocks=2, heads=2, dropout=dropout, max_len=8))


def padded_batch() -> torch.Tensor:
    return torch.tensor([[PAD_ID, PAD_ID, PAD_ID, 3, 4, 5], [1, 2, 3, 4, 5, 6], [PAD_ID] * 5 + [7]])


def test_eval_mode_matches_train_mode_without_dropout():
    model = make_model(dropout=0.0)
    seqs = padded_batch()
    model.train()
    train_out = model(seqs)
    model.eval()
    with torch.no_grad():
        eval_out = model(seqs)
    torch.testing.assert_close(train_out, eval_out)


def test_padding_gives_finite_zero_rows_and_does_not_change_real_positions():
    model = make_model().eval()
    seqs = padded_batch()
    hidden = model(seqs)
    assert torch.isfinite(hidden).all()
    assert (hidden[0, :3] == 0).all()
    # The same sequence without its padding columns gives the same last hidden state.
    torch.testing.assert_close(model(seqs[:1, 3:])[0, -1], hidden[0, -1])


def test_soft_one_hot_equals_hard_ids():
    model = make_model().eval()
    seqs = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    probs = F.one_hot(seqs, model.num_items).float()
    hard = model(seqs)
    soft = model.forward_soft(probs, model.item_embeddings())
    torch.testing.assert_close(hard, soft)


def test_scores_on_a_subset_are_the_matching_columns_of_full_scores():
    model = make_model().eval()
    hidden = model(torch.tensor([[1, 2, 3]]))[:, -1]
    subset = torch.tensor([0, 7, 29])
    torch.testing.assert_close(model.score(hidden, subset), model.score(hidden)[:, subset])


def test_causality_future_items_do_not_change_past_states():
    model = make_model().eval()
    a = model(torch.tensor([[1, 2, 3, 4]]))
    b = model(torch.tensor([[1, 2, 3, 9]]))
    torch.testing.assert_close(a[:, :3], b[:, :3])
    assert not torch.allclose(a[:, 3], b[:, 3])


def test_text_embeddings_are_frozen_and_not_in_checkpoints():
    model = make_model()
    assert "text_embeddings" not in model.state_dict()
    assert all(p is not model.text_embeddings for p in model.parameters())
