"""Methods that need no expert never train one: not through the registry, the runner, the full-data
reference nor the command line; kcenter and herding embed sequences by their items' texts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from foster_core.cli import main
from foster_core.core.data import Dataset
from foster_core.methods import get_method, method_names
from foster_core.methods.coresets import CORESET_SELECTORS, SELECTORS
from foster_core.methods.expert import RECENCY_DECAY, DistillContext
from foster_core.methods.registry import distill, needs_expert
from foster_core.runs.evaluator import StudentConfig, evaluate_full
from foster_core.runs.run_store import RunStore
from foster_core.runs.runner import run_method
from foster_core.testing import cyclic_tables, tiny_context

EXPERT_FREE = ("random", "longest", "kcenter", "herding")  # every method registered with needs_expert=False
STUDENT = StudentConfig(seeds=(0,), epochs=2, eval_every=1, device="cpu")


class ExpertTrained(RuntimeError):
    pass


def refuse_expert(*args, **kwargs):
    raise ExpertTrained("the expert was trained")


@pytest.fixture
def no_expert(monkeypatch):
    """Any attempt to load or train the expert raises."""
    monkeypatch.setattr(DistillContext, "_load_or_train_expert", refuse_expert)


def test_methods_say_whether_they_need_the_expert():
    assert [m for m in method_names() if not get_method(m).needs_expert] == list(EXPERT_FREE)
    assert get_method("teacher").needs_expert and get_method("foster").needs_expert
    assert not needs_expert(["full", "random", "kcenter"])  # the full-data reference needs none either
    assert needs_expert(["random", "foster"])


def test_expert_free_methods_distil_and_evaluate_without_the_expert(no_expert, tmp_path):
    context = tiny_context(cache_dir=tmp_path / "cache")
    store = RunStore(tmp_path / "runs")
    for method in EXPERT_FREE:
        assert distill(context, method, 4).num_sequences == 4
        outcome = run_method(context, method, 4, student=STUDENT, store=store)
        assert outcome.run.status["status"] == "finished", outcome.run.status
        assert 0.0 <= outcome.results["test"]["ndcg@10"]["mean"] <= 1.0
    # The full-data reference is cached in the expert's folder: naming the folder trains nothing.
    full = evaluate_full(context, STUDENT)
    assert 0.0 <= full["test"]["ndcg@10"]["mean"] <= 1.0
    assert not context.expert_cached()
    with pytest.raises(ExpertTrained):  # the guard works: a method that needs the expert asks for it
        run_method(context, "teacher", 4, student=STUDENT)


def test_start_selections_keep_the_experts_summaries(no_expert, tmp_path):
    context = tiny_context(cache_dir=tmp_path / "cache")
    for name in ("kcenter", "herding"):
        assert len(CORESET_SELECTORS[name](context, 3, 0)) == 3
        with pytest.raises(ExpertTrained):
            SELECTORS[name](context, 3, 0)


def test_text_summary_is_the_recency_weighted_mean_of_item_texts():
    # Items 0..2 with orthonormal texts; the first user's training sequence is [0, 1, 2] (its last two items
    # are validation and test): weights 0.81, 0.9, 1 from oldest to newest.
    sequences = [np.array([0, 1, 2, 0, 1]), np.array([2, 1, 0, 2, 1])]
    dataset = Dataset("hand", ["a", "b", "c"], ["A", "B", "C"], ["u", "v"], sequences)
    context = DistillContext(dataset, torch.eye(3))
    assert list(context.train[0]) == [0, 1, 2]
    summaries = context.text_sequence_embeddings(np.array([0]))
    expected = torch.tensor([RECENCY_DECAY ** 2, RECENCY_DECAY, 1.0])
    assert torch.allclose(summaries[0], expected / expected.norm())
    assert torch.allclose(summaries.norm(dim=-1), torch.ones(1))


def test_cli_distill_and_bench_of_expert_free_methods_train_no_expert(no_expert, tmp_path, capsys):
    inter, items = cyclic_tables(n_users=16, n_items=8, length=6)
    inter.to_csv(tmp_path / "interactions.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    common = ["--dataset", str(tmp_path), "--max-len", "8", "--device", "cpu", "--seeds", "1",
              "--runs-dir", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")]
    assert main(["distill", "--method", "random", "--budget", "3", *common]) == 0
    assert "Expert" not in capsys.readouterr().out
    out = tmp_path / "bench.json"
    assert main(["bench", "--methods", "full", "longest", "kcenter", "--budgets", "2", "--out", str(out), *common]) == 0
    assert [r["method"] for r in json.loads(out.read_text())["rows"]] == ["full", "longest", "kcenter"]
