"""The labeller: the expert refit on the whole training split for the expert's chosen epochs. It labels what
`teacher` and FOSTER hand out; what the holdout scores keeps the expert's labels."""

from __future__ import annotations

import pytest
import torch

from foster_core.core.training import train_on_sequences
from foster_core.methods import foster as foster_module
from foster_core.methods.expert import DistillContext
from foster_core.methods.foster import FosterConfig
from foster_core.methods.registry import distill, needs_labeller
from foster_core.methods.teacher import LabelConfig, TeacherConfig, expert_labels
from foster_core.testing import tiny_context


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_the_labeller_is_the_expert_trained_on_the_whole_training_split_for_its_epochs(tmp_path):
    context = tiny_context(cache_dir=tmp_path)
    labeller = context.labeller()
    best_epoch = len(context.trajectory()) - 1
    assert best_epoch >= 1, "the tiny expert should improve on its untrained start"
    config = context.labeller_config()
    assert config.epochs == best_epoch and config.time_limit_s == 0.0
    # The same training by hand: every training-split sequence (the holdout's targets included), no split.
    by_hand = train_on_sequences(context.text_embeddings, context.train, None, context.model_cfg, config).model
    for name, value in weights(by_hand).items():
        assert torch.equal(value.cpu(), labeller.state_dict()[name].cpu()), name
    # It differs from the expert, which never trained on the holdout's targets.
    assert any(not torch.equal(v, context.expert().state_dict()[k]) for k, v in labeller.state_dict().items())
    # Cached: a fresh context on the same data loads it instead of training it again.
    again = tiny_context(cache_dir=tmp_path)
    assert again.labeller_cached()
    for name, value in weights(again.labeller()).items():
        assert torch.equal(value, labeller.state_dict()[name]), name


def test_teacher_labels_come_from_the_labeller_or_the_expert_as_configured(tmp_path, monkeypatch):
    context = tiny_context(cache_dir=tmp_path)
    refit = distill(context, "teacher", 4, TeacherConfig())
    held = distill(context, "teacher", 4, TeacherConfig(label_expert="holdout"))
    assert torch.equal(refit.input_items, held.input_items)  # the same real sequences
    assert not torch.allclose(refit.label_probs, held.label_probs)
    # The refit's labels are the expert's recipe applied to the labeller's scores.
    monkeypatch.setattr(context, "expert", context.labeller)
    by_labeller = expert_labels(context, held, LabelConfig(label_expert="holdout"))
    assert torch.equal(by_labeller.label_items, refit.label_items)
    assert torch.allclose(by_labeller.label_probs, refit.label_probs)


def test_foster_scores_its_candidates_on_expert_labels_and_hands_out_the_labellers(tmp_path, monkeypatch):
    context = tiny_context(cache_dir=tmp_path)
    context.expert()
    calls: list[str] = []
    real_labeller, real_score = DistillContext.labeller, foster_module.holdout_score

    def labeller(self):
        calls.append("labeller")
        return real_labeller(self)

    def holdout_score(ctx, data, config):
        calls.append("score")
        return real_score(ctx, data, config)

    monkeypatch.setattr(DistillContext, "labeller", labeller)
    monkeypatch.setattr(foster_module, "holdout_score", holdout_score)
    config = FosterConfig(steps=2, select_every=1, select_epochs=3, subset_size=0, device="cpu")
    data = distill(context, "foster", 4, config)
    # Every candidate (and teacher's data) was scored before the labeller was first asked for labels.
    first = calls.index("labeller")
    assert calls.count("score") == 4 and "score" not in calls[first:]
    relabelled = expert_labels(context, data, config)
    assert torch.equal(relabelled.label_items, data.label_items)
    assert torch.allclose(relabelled.label_probs, data.label_probs)


def test_which_methods_need_the_labeller_and_bad_settings():
    assert needs_labeller(["teacher"]) and needs_labeller(["random", "foster"])
    assert not needs_labeller(["full", "random", "kcenter", "dealrec", "goracs"])
    with pytest.raises(ValueError, match="label_expert"):
        LabelConfig(label_expert="validation")


def test_an_expert_best_at_its_start_is_its_own_labeller(tmp_path):
    context = tiny_context(cache_dir=tmp_path)
    context.expert()
    context._best_epoch = 0  # as when no trained epoch beat the untrained start on the holdout
    assert context.labeller() is context.expert()


def test_only_settings_that_use_the_refit_train_it():
    assert needs_labeller(["foster"], {"label_expert": "refit"})
    assert not needs_labeller(["foster", "teacher"], {"label_expert": "holdout"})


def test_the_quick_preset_keeps_its_short_experts_labels():
    from foster_core.runs.presets import PRESETS

    assert not needs_labeller(PRESETS["quick"].methods, PRESETS["quick"].distill)
    assert needs_labeller(PRESETS["standard"].methods, PRESETS["standard"].distill)
