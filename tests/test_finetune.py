"""Encoder fine-tuning on tiny data with a tiny random BERT built in the test (no download)."""

import numpy as np
import pytest
import torch

from foster_core.core.data import DataConfig, leave_one_out

from foster_core.core.loaders import build_dataset
from foster_core.core.finetune import (FinetuneConfig, FinetunedItemEncoder, FinetuneTrainer, time_finetune_steps,
                                       train_finetuned)
from foster_core.testing import build_tiny_encoder
from foster_core.core.model import ModelConfig
from foster_core.core.text_encoder import EncoderConfig, TextEncoder
from foster_core.core.training import TrainConfig

from conftest import cyclic_tables

SMALL = ModelConfig(hidden=32, blocks=1, heads=2, dropout=0.0, max_len=10)


@pytest.fixture(scope="module")
def cyclic_words():
    """The cycle dataset with one pair of words per item, so that a tiny encoder can tell items apart."""
    interactions, items = cyclic_tables(n_items=12)
    items["text"] = [f"alpha{i} beta{i}" for i in range(len(items))]
    return build_dataset("cyclic", interactions, items, DataConfig(min_interactions=5, max_seq_len=10))


@pytest.fixture(scope="module")
def big_catalogue():
    """60 items, users of 8 items: a batch and a small subset never cover the catalogue."""
    interactions, items = cyclic_tables(n_users=30, n_items=60)
    items["text"] = [f"alpha{i} beta{i % 7}" for i in range(len(items))]
    return build_dataset("big", interactions, items, DataConfig(min_interactions=5, max_seq_len=10))


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory, cyclic_words, big_catalogue):
    return str(build_tiny_encoder(tmp_path_factory.mktemp("enc"), cyclic_words.item_texts + big_catalogue.item_texts))


def trainer(dataset, encoder, layers, subset_size=4, batch_size=8, **train):
    cfg = TrainConfig(lr=1e-2, batch_size=batch_size, device="cpu", **train)
    ft = FinetuneConfig(finetune_layers=layers, subset_size=subset_size, encoder_path=encoder, lm_lr=1e-3)
    return FinetuneTrainer(dataset.item_texts, leave_one_out(dataset), SMALL, cfg, ft)


def test_catalogue_embeddings_equal_the_frozen_text_encoder(cyclic_words, tiny_encoder, tmp_path):
    frozen = TextEncoder(EncoderConfig(model_path=tiny_encoder, max_length=64), device="cpu", cache_dir=tmp_path)
    np.testing.assert_allclose(trainer(cyclic_words, tiny_encoder, None).encoder.encode_all().numpy(),
                               frozen.encode(cyclic_words.item_texts), atol=1e-6)


def test_a_step_runs_only_the_batch_items_and_n_sampled_items_through_the_lm(big_catalogue, tiny_encoder, monkeypatch):
    run = trainer(big_catalogue, tiny_encoder, None, subset_size=5, batch_size=2)
    seen: list[torch.Tensor] = []
    original = FinetunedItemEncoder.forward
    monkeypatch.setattr(FinetunedItemEncoder, "forward", lambda self, items: seen.append(items) or original(self, items))
    index = run.batches()[0]
    seqs, targets = run.inputs[index], run.targets[index]
    run.step(seqs, targets)
    assert len(seen) == 1
    batch_items = set(seqs[seqs >= 0].tolist()) | set(targets[targets >= 0].tolist())
    assert batch_items <= set(seen[0].tolist())
    assert len(seen[0]) <= len(batch_items) + 5 < big_catalogue.num_items


def lm_snapshot(encoder: FinetunedItemEncoder) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in encoder.lm.state_dict().items()}


def changed(before: dict, encoder: FinetunedItemEncoder, prefix: str) -> bool:
    return any(not torch.equal(before[k], v) for k, v in encoder.lm.state_dict().items() if k.startswith(prefix))


def test_top_k_all_and_frozen_train_exactly_their_layers(cyclic_words, tiny_encoder, monkeypatch):
    for layers, expect_bottom, expect_top, expect_embeddings in ((1, False, True, False), (None, True, True, True),
                                                                 (0, False, False, False)):
        run = trainer(cyclic_words, tiny_encoder, layers)
        before = lm_snapshot(run.encoder)
        for index in run.batches()[:3]:
            run.step(run.inputs[index], run.targets[index])
        assert changed(before, run.encoder, "encoder.layer.0.") == expect_bottom, layers
        assert changed(before, run.encoder, "encoder.layer.1.") == expect_top, layers
        assert changed(before, run.encoder, "embeddings.") == expect_embeddings, layers
    # Frozen: the cached table is used and the language model never runs during a step.
    run = trainer(cyclic_words, tiny_encoder, 0)
    monkeypatch.setattr(FinetunedItemEncoder, "forward", lambda *a: pytest.fail("frozen step ran the LM"))
    run.step(run.inputs[:8], run.targets[:8])


def test_fine_tuning_learns_and_restores_a_consistent_best_epoch(cyclic_words, tiny_encoder):
    split = leave_one_out(cyclic_words)
    cfg = TrainConfig(epochs=12, lr=1e-2, batch_size=8, patience=12, device="cpu")
    ft = FinetuneConfig(subset_size=4, encoder_path=tiny_encoder, lm_lr=1e-3)
    result = train_finetuned(cyclic_words.item_texts, split, SMALL, cfg, ft)
    losses = [r["loss"] for r in result.history]
    assert losses[-1] < 0.5 * losses[0]
    assert result.best_valid["recall@10"] == 1.0 and result.best_valid["ndcg@10"] > 0.6
    assert result.seconds_per_step > 0 and result.mean_subset <= cyclic_words.num_items
    # The model's text table is the restored encoder's view of the whole catalogue.
    torch.testing.assert_close(result.model.text_embeddings, result.encoder.encode_all())


def test_step_timing_reports_both_modes(cyclic_words, tiny_encoder):
    timing = time_finetune_steps(cyclic_words.item_texts, leave_one_out(cyclic_words), SMALL,
                                 TrainConfig(batch_size=8, device="cpu"),
                                 FinetuneConfig(subset_size=4, encoder_path=tiny_encoder), steps=2, warmup=1)
    assert timing["frozen_s_per_step"] > 0 and timing["finetuned_s_per_step"] > 0
    assert timing["frozen_trainable_lm_params"] == 0 < timing["finetuned_trainable_lm_params"]


def test_bad_settings_are_refused(cyclic_words, tiny_encoder):
    with pytest.raises(ValueError, match="finetune_layers"):
        FinetuneConfig(finetune_layers=-1)
    with pytest.raises(ValueError, match="the encoder has 2 layers"):
        trainer(cyclic_words, tiny_encoder, 3)
    with pytest.raises(ValueError, match="bf16' needs a CUDA device"):
        trainer(cyclic_words, tiny_encoder, None, precision="bf16")
    with pytest.raises(ValueError, match="give finetune_layers None or k > 0"):
        time_finetune_steps(cyclic_words.item_texts, leave_one_out(cyclic_words), SMALL, TrainConfig(device="cpu"),
                            FinetuneConfig(finetune_layers=0, encoder_path=tiny_encoder))


def test_model_can_look_up_inputs_in_a_subset_table(cyclic_words):
    from foster_core.core.model import TextSASRec

    from conftest import random_text_embeddings

    model = TextSASRec(random_text_embeddings(cyclic_words.num_items), SMALL).eval()
    seqs = torch.tensor([[-1, -1, 3, 5], [1, 2, 3, 4]])
    subset = torch.tensor([1, 2, 3, 4, 5, 9])
    torch.testing.assert_close(model(seqs, item_table=model.item_embeddings(subset), table_items=subset), model(seqs))
    with pytest.raises(ValueError, match="missing from table_items"):
        model(seqs, item_table=model.item_embeddings(subset[1:]), table_items=subset[1:])
