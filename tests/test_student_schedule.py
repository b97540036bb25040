"""Students validate by optimiser steps on a schedule that thins out; full-data training keeps one
validation per epoch under the same rule."""

from __future__ import annotations

import pytest

from foster_core.core.training import TrainConfig, run_epochs
from foster_core.methods.registry import distill
from foster_core.runs import evaluator
from foster_core.runs.evaluator import (StudentConfig, StudentTrainConfig, evaluate_synthetic,
                                        student_validation_epochs, validation_epochs)
from foster_core.testing import tiny_context


def test_twenty_synthetic_sequences_against_six_hundred_users_of_full_data():
    # n = 20: one step per epoch. The gap is 5 steps until a quarter of the steps taken exceeds 5 (after
    # step 25: 6.25, so step 32), then grows by a quarter (8, 10, 12.5, 15.75, 19.75, 24.75 steps) up to
    # 30 steps: 600 / 20 = 30 steps to see as many sequences as the real split holds, and 60 // 2 = 30.
    thinning = StudentConfig(eval_growth=0.25)
    assert student_validation_epochs(thinning, 20, 600) == (
        5, 10, 15, 20, 25, 32, 40, 50, 63, 79, 99, 124, 154, 184, 214, 244, 274, 300)
    # Full data, 600 users in batches of 128: 5 steps per epoch, and one epoch is the longest gap: a validation
    # after every epoch, as the full-data reference's TrainConfig (eval_every 1) has it.
    assert validation_epochs(200, 5, 5, 0.25, 5) == tuple(range(1, 201))
    # A student with more sequences sees the real split's size sooner: n = 200 caps the gap at 3 steps,
    # under the 5-step floor, so it validates every 5 steps.
    assert student_validation_epochs(thinning, 200, 600) == tuple(range(5, 301, 5))
    # The default (no growth) is the fixed schedule students always had: every 5 steps and the last.
    assert student_validation_epochs(StudentConfig(), 20, 600) == tuple(range(5, 301, 5))


def test_no_growth_is_the_fixed_schedule_and_the_last_epoch_always_counts():
    assert validation_epochs(22, 1, 5, 0.0, 100) == (5, 10, 15, 20, 22)
    assert TrainConfig(epochs=22, eval_every=5).validates_after(20)
    assert [e for e in range(1, 23) if TrainConfig(epochs=22, eval_every=5).validates_after(e)] == [5, 10, 15, 20, 22]
    with pytest.raises(ValueError, match="eval_every and patience"):
        StudentConfig(eval_every=0)


def test_the_epoch_loop_validates_on_the_schedule_and_stops_by_steps():
    schedule = student_validation_epochs(StudentConfig(eval_growth=0.25), 20, 600)
    cfg = StudentTrainConfig(epochs=300, patience=60, validation_epochs=schedule)
    scores = iter([0.5] + [0.1] * 20)  # the best comes first: patience (60 steps) ends the run at step 65
    history, best = run_epochs(cfg, lambda e: {"loss": 0.0}, lambda: {"ndcg@10": next(scores)}, dict)
    assert [r["epoch"] for r in history if "valid" in r] == [5, 10, 15, 20, 25, 32, 40, 50, 63]
    assert best.epoch == 5 and history[-1]["epoch"] == 65


def test_evaluate_synthetic_trains_each_student_on_the_schedule(tmp_path, monkeypatch):
    context = tiny_context(cache_dir=tmp_path / "cache")
    synthetic = distill(context, "random", 4)
    student = StudentConfig(seeds=(0, 1), epochs=12, eval_every=2, patience=12, eval_growth=0.25, device="cpu")
    seen = []
    real = evaluator.train_on_synthetic

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        seen.append([r["epoch"] for r in result.history if "valid" in r])
        return result

    monkeypatch.setattr(evaluator, "train_on_synthetic", spy)
    results = evaluate_synthetic(context, synthetic, student)
    # 4 sequences, 40 usable real ones: at most 10 steps between validations, and 12 // 2 = 6.
    expected = student_validation_epochs(student, 4, len(context.usable))
    assert expected == (2, 4, 6, 8, 10, 12)  # the 2-step floor holds while a quarter of the steps is below 2
    assert seen == [list(expected)] * 2
    assert results["student_eval_seconds"] > 0 and results["student_train_seconds"] > 0
