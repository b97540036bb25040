"""The validation-schedule benchmark: a recorded curve replayed under a rule chooses what the real training
under that rule chooses."""

from __future__ import annotations

from foster_core.core.training import TrainConfig, train_on_synthetic
from foster_core.methods.registry import get_method
from foster_core.runs.evaluator import StudentConfig
from foster_core.runs.runner import run_method
from foster_core.testing import tiny_context

from benchmarks.validation_schedule import on_users, record_student, replay


def curve(scores: dict[int, float]) -> list[dict]:
    return [{"epoch": e, "valid": {"ndcg@10": s}, "test": {"ndcg@10": s / 2}} for e, s in sorted(scores.items())]


def test_replay_counts_patience_in_epochs():
    # A noisy, rising curve: best at 10, two dips, then a better point at 40.
    recorded = curve({5: 0.1, 10: 0.3, 15: 0.2, 20: 0.25, 25: 0.2, 30: 0.1, 35: 0.2, 40: 0.4, 45: 0.1, 50: 0.1})
    assert replay(recorded, (50, 5, 10)) == {"epoch": 10, "test": 0.15, "steps": 20, "validations": 4}
    # Every 10 epochs with 10 epochs of patience, it also stops at 20; 30 epochs of patience reach 40.
    assert replay(recorded, (50, 10, 10))["steps"] == 20
    assert replay(recorded, (50, 10, 30)) == {"epoch": 40, "test": 0.2, "steps": 50, "validations": 5}
    assert replay(recorded, (30, 10, 30))["epoch"] == 10  # the last epoch always validates


def test_recorded_curve_replays_the_real_training(tmp_path):
    context = tiny_context(cache_dir=tmp_path)
    synthetic = run_method(context, "random", 4, get_method("random").config({"seed": 0}), evaluate=False).synthetic
    student = StudentConfig(seeds=(0,), epochs=30, eval_every=5, device="cpu")
    recorded = record_student(context, synthetic, 0, student)
    assert [p["epoch"] for p in recorded["curve"]] == list(range(5, 31, 5)) and recorded["steps"] == 30
    assert recorded["step_s"] > 0 and recorded["valid_s"] > 0 and recorded["test_s"] > 0
    real = train_on_synthetic(context.text_embeddings, synthetic, context.split, context.model_cfg,
                              TrainConfig(epochs=30, batch_size=4, lr=student.lr, patience=10, eval_every=5,
                                          seed=0, device="cpu"))
    replayed = replay(recorded["curve"], (30, 5, 10))
    assert (replayed["epoch"], replayed["steps"]) == (real.best_epoch, len(real.history))


def test_a_sample_of_validation_users_replays_the_loop_that_validates_on_them(tmp_path):
    # The recorded per-user ranks, cut to the users `valid_users` draws, choose what a loop validating on
    # those users alone chooses.
    context = tiny_context(cache_dir=tmp_path)
    synthetic = run_method(context, "random", 4, get_method("random").config({"seed": 0}), evaluate=False).synthetic
    student = StudentConfig(seeds=(0,), epochs=30, eval_every=5, device="cpu")
    users = len(context.split.train) // 3
    recorded = record_student(context, synthetic, 0, student, users=(users,))
    assert recorded["valid_ranks"].shape == (6, len(context.split.train))
    assert set(recorded["valid_s_by_users"]) == {str(users)}
    all_users = on_users(recorded["valid_ranks"], 0)
    assert [p["valid"] for p in recorded["curve"]] == all_users
    sample = on_users(recorded["valid_ranks"], users)
    real = train_on_synthetic(context.text_embeddings, synthetic, context.split, context.model_cfg,
                              TrainConfig(epochs=30, batch_size=4, lr=student.lr, patience=10, eval_every=5,
                                          seed=0, device="cpu", valid_users=users))
    assert [r["valid"] for r in real.history if "valid" in r] == sample[: len(real.history) // 5]
    replayed = replay(recorded["curve"], (30, 5, 10), sample)
    assert (replayed["epoch"], replayed["steps"]) == (real.best_epoch, len(real.history))
