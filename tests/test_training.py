import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from foster_core.core.loaders import build_dataset

from foster_core.core.data import leave_one_out
from foster_core.core.model import ModelConfig, TextSASRec
from foster_core.core.training import TrainConfig, load_checkpoint, next_item_pairs, train_on_sequences, train_on_soft

from conftest import random_text_embeddings

SMALL = ModelConfig(hidden=32, blocks=1, heads=2, dropout=0.0, max_len=10)


def test_overfits_a_tiny_dataset(cyclic_dataset):
    split = leave_one_out(cyclic_dataset)
    emb = random_text_embeddings(cyclic_dataset.num_items)
    result = train_on_sequences(emb, split.train, split, SMALL, TrainConfig(epochs=60, lr=1e-2, batch_size=8, patience=60))
    losses = [r["loss"] for r in result.history]
    assert losses[-1] < 0.5 * losses[0]
    first_valid = result.history[0]["valid"]["ndcg@10"]
    assert result.best_valid["ndcg@10"] > first_valid
    # The cycle is deterministic, so a trained model should rank the next item first almost always.
    assert result.best_valid["recall@10"] > 0.9


def test_training_batches_never_contain_valid_or_test_items(monkeypatch):
    # Each user's last two items are unique to that user, so any leak is visible as a held-out id.
    rows = []
    for u in range(12):
        rows += [(f"u{u}", f"shared{(u + t) % 6}", t) for t in range(5)]
        rows += [(f"u{u}", f"valid{u}", 5), (f"u{u}", f"test{u}", 6)]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    items = pd.DataFrame({"item_id": sorted(set(inter.item_id)), "text": sorted(set(inter.item_id))})
    dataset = build_dataset("leak", inter, items)
    split = leave_one_out(dataset)
    held_out = set(split.valid_targets.tolist()) | set(split.test_targets.tolist())
    assert len(held_out) == 24

    inputs, targets = next_item_pairs(split.train, 10)
    assert not held_out & set(np.unique(targets).tolist())

    seen: list[torch.Tensor] = []
    original = TextSASRec.forward

    def spy(self, seqs, *args, **kwargs):
        if self.training:
            seen.append(seqs.clone())
        return original(self, seqs, *args, **kwargs)

    monkeypatch.setattr(TextSASRec, "forward", spy)
    train_on_sequences(random_text_embeddings(dataset.num_items), split.train, split, SMALL,
                       TrainConfig(epochs=2, batch_size=4))
    assert sum(b.shape[0] for b in seen) == 2 * len(split.train)
    assert not held_out & set(torch.cat([b.flatten() for b in seen]).tolist())


def test_same_seed_same_run_different_seed_different_run(cyclic_dataset):
    split = leave_one_out(cyclic_dataset)
    emb = random_text_embeddings(cyclic_dataset.num_items)
    run = lambda seed: [r["loss"] for r in train_on_sequences(
        emb, split.train, None, SMALL, TrainConfig(epochs=3, seed=seed, batch_size=8)).history]
    assert run(1) == run(1)
    assert run(1) != run(2)


def test_checkpoint_every_epoch_and_reload(cyclic_dataset, tmp_path):
    split = leave_one_out(cyclic_dataset)
    emb = random_text_embeddings(cyclic_dataset.num_items)
    result = train_on_sequences(emb, split.train, None, SMALL, TrainConfig(epochs=3), checkpoint_dir=tmp_path)
    assert [p.name for p in result.checkpoints] == [f"epoch_00{k}.safetensors" for k in range(4)]
    fresh = load_checkpoint(TextSASRec(emb, SMALL), result.checkpoints[-1]).eval()
    seqs = torch.tensor([[0, 1, 2]])
    torch.testing.assert_close(fresh(seqs), result.model(seqs))


def test_soft_training_learns_soft_labels(cyclic_dataset):
    split = leave_one_out(cyclic_dataset)
    emb = random_text_embeddings(cyclic_dataset.num_items)
    inputs, targets = next_item_pairs(split.train[:10], 10)
    m = cyclic_dataset.num_items
    soft_inputs = F.one_hot(torch.from_numpy(inputs).clamp(min=0), m).float() * 0.9 + 0.1 / m
    soft_targets = F.one_hot(torch.from_numpy(targets).clamp(min=0), m).float() * 0.9 + 0.1 / m
    result = train_on_soft(emb, soft_inputs, soft_targets, split, SMALL, TrainConfig(epochs=40, lr=1e-2, patience=40))
    losses = [r["loss"] for r in result.history]
    assert losses[-1] < 0.6 * losses[0]
    assert result.best_valid["ndcg@10"] > result.history[0]["valid"]["ndcg@10"]


def test_soft_training_rejects_mismatched_shapes(cyclic_dataset):
    emb = random_text_embeddings(cyclic_dataset.num_items)
    bad = torch.zeros(2, 5, cyclic_dataset.num_items + 1)
    try:
        train_on_soft(emb, bad, bad)
    except ValueError as exc:
        assert "must both be" in str(exc)
    else:
        raise AssertionError("mismatched soft data was accepted")
