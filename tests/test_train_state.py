"""A killed training resumes from its last finished epoch and ends as an unbroken one does (train_state.py)."""

from dataclasses import replace

import pytest
import torch

from foster_core.core.data import leave_one_out
from foster_core.core.model import ModelConfig
from foster_core.core.train_state import RESUME_FILE, clear_train_state
from foster_core.core.training import LoopState, TrainConfig, run_epochs, train_on_sequences
from foster_core.testing import cyclic_dataset, tiny_context

from conftest import random_text_embeddings

# Dropout and sampled negatives on, so that every random stream the resume must restore is in play.
MODEL = ModelConfig(hidden=16, blocks=1, heads=1, dropout=0.2, max_len=10)
CFG = TrainConfig(epochs=4, lr=1e-2, batch_size=8, patience=50, softmax_negatives=4, full_softmax_up_to=0)


class Killed(Exception):
    """Stands in for a kill: raised from the epoch callback, before that epoch's state is saved."""


def kill_after(epoch: int):
    def callback(record: dict) -> None:
        if record["epoch"] == epoch:
            raise Killed
    return callback


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_a_killed_training_resumes_and_ends_as_an_unbroken_one(tmp_path):
    # 300 items, so that a batch's sampled negatives are mostly items it does not touch: their stream matters.
    dataset = cyclic_dataset(n_items=300)
    split = leave_one_out(dataset)
    emb = random_text_embeddings(dataset.num_items)
    unbroken = train_on_sequences(emb, split.train, split, MODEL, CFG, checkpoint_dir=tmp_path / "a")
    # The callback runs before the epoch's state is saved, so a kill there loses that epoch, as a real kill
    # in mid-epoch would: the resumed run must train epoch 3 again, from epoch 2's state.
    with pytest.raises(Killed):
        train_on_sequences(emb, split.train, split, MODEL, CFG, checkpoint_dir=tmp_path / "b", callback=kill_after(3))
    assert (tmp_path / "b" / RESUME_FILE).is_file()
    seen = []
    resumed = train_on_sequences(emb, split.train, split, MODEL, CFG, checkpoint_dir=tmp_path / "b",
                                 callback=lambda r: seen.append(r["epoch"]))
    assert seen == [3, 4]  # only the epochs the killed run had not finished
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in unbroken.history]
    assert [r["valid"] for r in resumed.history] == [r["valid"] for r in unbroken.history]
    assert resumed.best_epoch == unbroken.best_epoch
    for name, tensor in weights(unbroken.model).items():
        assert torch.equal(weights(resumed.model)[name], tensor), name
    assert [p.name for p in resumed.checkpoints] == [p.name for p in unbroken.checkpoints]
    # Finished, the state stays until the caller has kept the result: a kill before that trains nothing again.
    seen.clear()
    again = train_on_sequences(emb, split.train, split, MODEL, CFG, checkpoint_dir=tmp_path / "b",
                               callback=lambda r: seen.append(r["epoch"]))
    assert seen == [] and again.best_epoch == unbroken.best_epoch
    clear_train_state(tmp_path / "b")
    assert not (tmp_path / "b" / RESUME_FILE).exists() and (tmp_path / "b" / "epoch_004.safetensors").is_file()


def test_another_trainings_state_is_not_resumed(tmp_path):
    dataset = cyclic_dataset()
    split = leave_one_out(dataset)
    emb = random_text_embeddings(dataset.num_items)
    with pytest.raises(Killed):
        train_on_sequences(emb, split.train, split, MODEL, CFG, checkpoint_dir=tmp_path, callback=kill_after(2))
    other = replace(CFG, lr=5e-3)
    seen = []
    train_on_sequences(emb, split.train, split, MODEL, other, checkpoint_dir=tmp_path,
                       callback=lambda r: seen.append(r["epoch"]))
    assert seen == [1, 2, 3, 4]  # another learning rate: a training of its own, from epoch 1


def test_auto_and_the_device_it_picks_resume_each_other_but_a_changed_model_or_a_torn_file_starts_afresh(tmp_path):
    dataset = cyclic_dataset()
    split = leave_one_out(dataset)
    emb = random_text_embeddings(dataset.num_items)

    def epochs_trained(cfg: TrainConfig) -> list[int]:
        seen = []
        train_on_sequences(emb, split.train, split, MODEL, cfg, checkpoint_dir=tmp_path,
                           callback=lambda r: seen.append(r["epoch"]))
        return seen

    with pytest.raises(Killed):
        train_on_sequences(emb, split.train, split, MODEL, replace(CFG, device="auto"), checkpoint_dir=tmp_path,
                           callback=kill_after(2))
    assert epochs_trained(replace(CFG, device="cpu")) == [2, 3, 4]  # "auto" is the CPU here: the same training
    state = torch.load(tmp_path / RESUME_FILE, weights_only=True)
    torch.save({**state, "finished": False, "layout": ["AnotherModel", {}]}, tmp_path / RESUME_FILE)
    assert epochs_trained(CFG) == [1, 2, 3, 4]  # weights of another model's code are not loaded
    (tmp_path / RESUME_FILE).write_bytes(b"torn")
    with pytest.warns(UserWarning, match="cannot be read"):
        assert epochs_trained(CFG) == [1, 2, 3, 4]


def test_a_finished_loop_trains_no_further_epoch():
    # A kill after the last epoch's state was saved (but before the result was kept) must not add an epoch.
    trained = []
    history = [{"epoch": 1, "loss": 1.0, "seconds": 1.0}]
    state = LoopState(history=list(history), elapsed=1.0, finished=True)
    out, best = run_epochs(TrainConfig(epochs=5), lambda e: trained.append(e) or {"loss": 0.0}, None, dict,
                           resumed=state)
    assert trained == [] and out == history


def test_the_loop_state_marks_patience_and_the_last_epoch(tmp_path):
    states = []
    scores = iter([0.5, 0.4, 0.3, 0.2])  # best at epoch 1, then worse: patience 2 stops after epoch 3
    run_epochs(TrainConfig(epochs=10, patience=2), lambda e: {"loss": 0.0}, lambda: {"ndcg@10": next(scores)}, dict,
               after_epoch=lambda s: states.append((len(s.history), s.best.epoch, s.finished)))
    assert states == [(1, 1, False), (2, 1, False), (3, 1, True)]


def test_the_expert_resumes_after_a_kill(tmp_path):
    unbroken = tiny_context(cache_dir=tmp_path / "a")
    expected = weights(unbroken.expert())
    killed = tiny_context(cache_dir=tmp_path / "b")
    killed.on_expert_epoch = kill_after(5)
    with pytest.raises(Killed):
        killed.expert()
    assert not killed.expert_cached() and (killed.expert_folder() / RESUME_FILE).is_file()
    again = tiny_context(cache_dir=tmp_path / "b")
    resumed = weights(again.expert())
    assert all(torch.equal(resumed[k], v) for k, v in expected.items())
    assert [p.name for p in again.trajectory()] == [p.name for p in unbroken.trajectory()]


def test_a_killed_full_data_student_resumes(tmp_path):
    from foster_core.runs.evaluator import StudentConfig, evaluate_full

    student = StudentConfig(seeds=(0,))
    expected = evaluate_full(tiny_context(cache_dir=tmp_path / "a"), student)
    context = tiny_context(cache_dir=tmp_path / "b")

    def kill_at_epoch_3(line: str) -> None:
        if "epoch 3," in line:
            raise Killed

    with pytest.raises(Killed):
        evaluate_full(context, student, progress=kill_at_epoch_3)
    unfinished = list(context.expert_folder().glob("*_unfinished"))
    assert len(unfinished) == 1 and (unfinished[0] / RESUME_FILE).is_file()
    again = evaluate_full(tiny_context(cache_dir=tmp_path / "b"), student)
    assert again["per_seed_test"] == expected["per_seed_test"]
    assert not list(context.expert_folder().glob("*_unfinished"))  # done: nothing left behind
