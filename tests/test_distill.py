"""Distillers on tiny data: one interface, budgets respected, only training items, FOSTER moves S."""

import numpy as np
import pytest
import torch

import torch.nn.functional as F

from foster_core.core.data import DataConfig
from foster_core.core.loaders import build_dataset
from foster_core.core.model import ModelConfig
from foster_core.core.runtime import resolve_device
from foster_core.core.synthetic import SyntheticData
from foster_core.core.training import TrainConfig
from foster_core.methods import StepEvent, get_method, method_names
from foster_core.methods import expert as expert_module
from foster_core.methods.coresets import kcenter_indices, packed_groups, selected_sequences
from foster_core.methods.expert import DistillContext
from foster_core.methods.registry import distill
from foster_core.methods.sparse import packs
from foster_core.methods.teacher import expert_labels, holdout_labels, labelled_selection
from foster_core.runs.evaluator import StudentConfig, evaluate_synthetic
from foster_core.runs.run_store import RunStore
from foster_core.runs.runner import run_method

from conftest import cyclic_tables, random_text_embeddings

TINY_MODEL = ModelConfig(hidden=16, blocks=1, heads=1, dropout=0.0, max_len=10)
# Shared values: each method takes the fields its config has (as a job's or the CLI's settings do).
QUICK = dict(steps=6, subset_size=8, input_support=3, label_support=5, reset_every=3, real_batch_size=8, log_every=2,
             checkpoint_every=3, unroll_steps=2, reg_items=16, select_every=4, select_epochs=4)


def config(method: str, **changes):
    return get_method(method).config({**QUICK, **changes})


@pytest.fixture
def context(cyclic_dataset, tmp_path):
    return DistillContext(cyclic_dataset, random_text_embeddings(cyclic_dataset.num_items), TINY_MODEL,
                          TrainConfig(epochs=8, lr=1e-2, batch_size=8), cache_dir=tmp_path)


@pytest.mark.parametrize("method", method_names())
def test_every_method_returns_budget_sequences_of_valid_distributions(context, method):
    events = []
    synthetic = distill(context, method, 4, config(method), on_event=events.append)
    assert synthetic.num_sequences == 4
    for probs in (synthetic.input_probs, synthetic.label_probs):
        real = probs[synthetic.mask]
        assert torch.all(real >= 0)
        torch.testing.assert_close(real.sum(-1), torch.ones(real.shape[0]))
    assert synthetic.input_items.max() < context.num_items and synthetic.label_items.max() < context.num_items
    steps = [e.step for e in events if isinstance(e, StepEvent)]
    assert steps == ([2, 4, 6] if get_method(method).loss_curves else [])


def test_coresets_use_training_items_only(context):
    for method in ("random", "longest", "kcenter", "herding"):
        synthetic = distill(context, method, 5, config(method))
        train_sets = [set(s.tolist()) for s in context.train]
        # Each synthetic row is one real training sequence: its items all come from one user's training part.
        for row in range(5):
            items = set(synthetic.input_items[row][synthetic.mask[row]].flatten().tolist())
            items |= set(synthetic.label_items[row][synthetic.mask[row]].flatten().tolist())
            assert any(items <= s for s in train_sets), method


def test_kcenter_and_herding_are_deterministic(context):
    a = distill(context, "kcenter", 6)
    b = distill(context, "kcenter", 6)
    assert torch.equal(a.input_items, b.input_items)
    assert torch.equal(distill(context, "herding", 6).input_items, distill(context, "herding", 6).input_items)
    assert not torch.equal(a.input_items, distill(context, "random", 6).input_items)


def test_teacher_labels_are_the_labellers_predictions(context):
    synthetic = distill(context, "teacher", 3, config("teacher"))
    expert = context.labeller()  # the expert refit on the whole training split
    hidden = expert(torch.where(synthetic.mask, synthetic.input_items[..., 0], -1))
    best = expert.score(hidden).argmax(-1)
    assert torch.equal(best[synthetic.mask], synthetic.label_items[..., 0][synthetic.mask])


def test_foster_changes_the_synthetic_data(context):
    init = distill(context, "teacher", 4, config("teacher"))
    out = distill(context, "foster", 4, config("foster", steps=20, synthetic_lr=0.2, select_every=0))
    # Inputs start at softmax(c, 0, 0) (plus 1% noise in the logits) and labels at the expert's.
    start_mass = torch.softmax(torch.tensor([config("foster").init_scale, 0.0, 0.0]), 0)[0]
    assert (out.input_probs[..., 0][out.mask] - start_mass).abs().max() > 0.05
    assert not torch.allclose(out.label_probs, init.label_probs, atol=1e-3)


def test_foster_start_gives_holdout_targets_no_more_label_mass_than_the_expert_does(context):
    # A synthetic row is a whole training sequence, whose last item is the holdout's target; the quick
    # students that choose FOSTER's S are scored on it, so a label may not point at it beyond the expert's
    # own prediction (a hard-label mix once raised the holdout score this way, not the test score).
    start = labelled_selection(context, 4, holdout_labels(config("foster")), "kcenter")  # as FOSTER's start
    expert = context.expert()
    with torch.no_grad():
        probs = F.softmax(expert.score(expert(torch.where(start.mask, start.input_items[..., 0], -1))), -1)
    _, labels, _ = start.dense(context.num_items)
    last_input = {tuple(x.tolist()): t for x, t in zip(context.holdout.valid_inputs, context.holdout.valid_targets)}
    checked = 0
    for row in range(4):
        inputs = start.input_items[row, start.mask[row], 0]
        target = last_input.get(tuple(inputs.tolist()))
        if target is None:
            continue
        top = probs[row, -1].topk(QUICK["label_support"])
        expert_mass = float(top.values[top.indices == target].sum() / top.values.sum())
        assert float(labels[row, -1, target]) == pytest.approx(expert_mass, abs=1e-6)
        checked += 1
    assert checked > 0


def test_auto_and_the_device_it_picks_share_one_cached_expert(cyclic_dataset, tmp_path):
    def key(device: str) -> str:
        return DistillContext(cyclic_dataset, random_text_embeddings(cyclic_dataset.num_items), TINY_MODEL,
                              TrainConfig(epochs=8, device=device), cache_dir=tmp_path).expert_key()

    picked = resolve_device("auto").type
    other = "cuda" if picked == "cpu" else "cpu"
    assert key(picked) == key("auto")
    if other == "cpu" or torch.cuda.is_available():
        assert key(other) != key("auto")


def test_the_experts_cache_key_is_pinned(cyclic_dataset, tmp_path):
    # Cached experts (an hour of training on large data) live under this key: a change to the configs'
    # fields or to what the key hashes retrains them all, so it must be a deliberate one.
    key = DistillContext(cyclic_dataset, random_text_embeddings(cyclic_dataset.num_items), TINY_MODEL,
                         TrainConfig(epochs=8), cache_dir=tmp_path).expert_key()
    assert key == "863614389c9ef26fb62ef56b"


def test_budget_beyond_the_data_is_a_clear_error(context):
    with pytest.raises(ValueError, match="more than the"):
        distill(context, "random", 10_000)
    with pytest.raises(ValueError, match="unknown method"):
        distill(context, "magic", 2)


def test_run_method_records_history_checkpoints_and_results(context, tmp_path):
    store = RunStore(tmp_path / "runs")
    outcome = run_method(context, "foster", 3, config("foster"), StudentConfig(seeds=(0, 1), epochs=4, eval_every=2),
                         store)
    run = store.get(outcome.run.id)
    assert run.status["status"] == "finished"
    assert [e.step for e in run.step_events] == [2, 4, 6] == [e.step for e in outcome.history if isinstance(e, StepEvent)]
    # S is chosen among steps 0, 4 and 6 (select_every=4, plus the last) on the training split's holdout.
    selection = [r for r in run.history if r.get("phase") == "select"]
    assert [r["step"] for r in selection] == [0, 4, 6]
    chosen = [r for r in run.history if r.get("phase") == "selected"]
    assert len(chosen) == 1 and chosen[0]["holdout_ndcg@10"] == max(r["holdout_ndcg@10"] for r in selection)
    assert [p.name for p in sorted(run.checkpoint_dir.iterdir())] == ["step_000003.safetensors", "step_000006.safetensors"]
    assert {"synthetic_top_items.csv", "synthetic_interactions.csv", "synthetic.inter"} <= {p.name for p in run.path.iterdir()}
    saved = SyntheticData.load(run.synthetic_path)
    assert torch.equal(saved.input_items, outcome.synthetic.input_items)
    results = run.results
    assert set(results["test"]["ndcg@10"]) == {"mean", "std"} and len(results["per_seed_test"]) == 2
    assert 0.0 <= results["coverage"] <= 1.0


def test_stop_request_ends_a_run_as_stopped(context, tmp_path):
    store = RunStore(tmp_path / "runs")
    seen = []

    def stop_after_first(event):
        seen.append(event)
        store.list()[0].request_stop()

    outcome = run_method(context, "foster", 3, config("foster", steps=50), store=store, on_event=stop_after_first)
    assert outcome.run.status["status"] == "stopped"
    assert len(seen) == 1 and outcome.run.synthetic_path.is_file()


def test_evaluator_treats_real_sequences_as_one_hot_data(context):
    synthetic = distill(context, "random", 6)
    result = evaluate_synthetic(context, synthetic, StudentConfig(seeds=(0,), epochs=3, eval_every=1))
    assert result["test"]["ndcg@10"]["std"] == 0.0
    assert 0.0 <= result["test"]["ndcg@10"]["mean"] <= 1.0


def test_kcenter_never_picks_the_same_row_twice():
    # Three distinct points, each repeated: after the three, only duplicates remain.
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]).repeat(3, 1)
    picks = kcenter_indices(points, 6, seed=0)
    assert len(set(picks)) == 6
    assert {tuple(points[i].tolist()) for i in picks[:3]} == {(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)}


def test_configs_reject_unknown_choices():
    with pytest.raises(ValueError, match="init_packing must be"):
        get_method("foster").config(init_packing="yes")
    with pytest.raises(ValueError, match="selection must be"):
        get_method("teacher").config(selection="magic")
    with pytest.raises(ValueError, match="init_selection must be"):
        get_method("bptt").config(init_selection="magic")


def test_holdout_split_never_holds_validation_or_test_items(context):
    holdout = context.holdout
    assert [len(s) for s in holdout.train] == [len(s) - 1 for s in context.train if len(s) >= 2]
    assert holdout.valid_targets.tolist() == [s[-1] for s in context.train if len(s) >= 2]


def test_expert_is_chosen_on_the_holdout_not_on_validation(context, monkeypatch):
    seen = {}

    def spy(text, train, split, *args, **kwargs):
        seen["train"], seen["split"] = train, split
        return real(text, train, split, *args, **kwargs)

    real = expert_module.train_on_sequences
    monkeypatch.setattr(expert_module, "train_on_sequences", spy)
    context.expert()
    assert seen["split"] is context.holdout and seen["train"] is context.holdout.train


def test_teacher_labels_random_sequences_and_foster_starts_from_its_own_selection(context):
    foster = config("foster", init_selection="kcenter")
    teacher = distill(context, "teacher", 4, config("teacher"))
    assert torch.equal(teacher.input_items, distill(context, "random", 4).input_items)
    start = labelled_selection(context, 4, foster, foster.init_selection)
    # FOSTER's K-Center start works on the expert's summaries (the kcenter method, needing no expert, on texts).
    assert torch.equal(start.input_items, selected_sequences(context, "kcenter", 4, foster.seed).input_items)
    assert start.label_items.shape[-1] == foster.label_support


def test_packed_start_lays_whole_training_sequences_end_to_end(tmp_path):
    interactions, items = cyclic_tables(n_users=30, length=5)  # 3 training items per user
    dataset = build_dataset("short", interactions, items, DataConfig(min_interactions=5, max_seq_len=10))
    context = DistillContext(dataset, random_text_embeddings(dataset.num_items), TINY_MODEL,
                             TrainConfig(epochs=2, batch_size=8), cache_dir=tmp_path)
    packed = [np.concatenate(g) for g in packed_groups(context, 4, "random", seed=0)]
    assert len(packed) == 4
    # A 3-item sequence fills 2 positions: four fit in L = max_len - 1 = 9 positions, a fifth does not.
    assert all(len(seq) == 12 for seq in packed)
    pieces = [tuple(seq[i : i + 3]) for seq in packed for i in (0, 3, 6, 9)]
    train = [tuple(s) for s in context.train]
    assert all(piece in train for piece in pieces)
    # No training sequence is used twice (cyclic users can share a sequence, so count per sequence).
    assert all(pieces.count(p) <= train.count(p) for p in pieces)

    # 30 sequences of 3 items cannot fill 25 rows of 10: every row still gets at least one whole sequence.
    sparse = [np.concatenate(g) for g in packed_groups(context, 25, "kcenter", seed=0)]
    assert len(sparse) == 25 and all(len(seq) in (3, 6, 9, 12) for seq in sparse)
    assert sum(len(seq) for seq in sparse) == 30 * 3

    plain = labelled_selection(context, 4, config("foster"), "random")
    start = labelled_selection(context, 4, config("foster"), "random", packed=True)
    # Four 3-item sequences per row, 2 positions each: no position asks for the next user's first item.
    assert int(start.mask.sum()) == 4 * 4 * 2 and int(plain.mask.sum()) == 4 * 2
    assert start.segments[0, -8:].tolist() == [1, 1, 2, 2, 3, 3, 4, 4]

    # Each user's labels are the expert's on that user alone: the packed row's positions carry exactly the
    # labels of its sequences labelled one per row.
    groups = packed_groups(context, 4, "random", seed=0)
    alone = expert_labels(context, SyntheticData.from_sequences([q for g in groups for q in g], 9), config("foster"))
    first_row = alone.mask[:4]
    assert torch.equal(start.label_items[0][start.mask[0]], alone.label_items[:4][first_row])
    assert torch.allclose(start.label_probs[0][start.mask[0]], alone.label_probs[:4][first_row])
    assert torch.equal(start.input_items[0, -8:, 0], torch.from_numpy(np.concatenate([q[:-1] for q in groups[0]])))


def test_packing_rows_keeps_each_rows_positions_and_labels_in_order():
    # Two rows of L = 4: [-, -, 1, 2] -> labels [-, -, 2, 3], and [-, -, -, 7] -> label [-, -, -, 8].
    rows = SyntheticData.from_sequences([np.array([1, 2, 3]), np.array([7, 8])], 4)
    packed = rows.packed([2])
    assert packed.mask.tolist() == [[False, True, True, True]]
    assert packed.input_items[0, :, 0].tolist() == [0, 1, 2, 7]
    assert packed.label_items[0, :, 0].tolist() == [0, 2, 3, 8]
    assert packed.input_probs[0, :, 0].tolist() == [0.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="add up to 3"):
        rows.packed([3])
    three = SyntheticData.from_sequences([np.array([1, 2, 3, 4])] * 2, 4)
    with pytest.raises(ValueError, match="more than L = 4"):
        three.packed([2])


def test_auto_packing_packs_short_sequences_only(context, tmp_path):
    interactions, items = cyclic_tables(n_users=30, length=5)
    short = build_dataset("short", interactions, items, DataConfig(min_interactions=5, max_seq_len=10))
    short_context = DistillContext(short, random_text_embeddings(short.num_items), TINY_MODEL, cache_dir=tmp_path)
    auto = get_method("foster").config().init_packing
    assert auto == "auto"
    assert packs(short_context, auto)  # 3 training items of max_len 10
    assert not packs(context, auto)  # 6 of 10
    assert packs(context, "on") and not packs(short_context, "off")


def test_ablation_script_scores_variants_with_the_bench_students(context):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("ablation", Path(__file__).parents[1] / "benchmarks" / "ablation.py")
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    student = StudentConfig(seeds=(0,), epochs=3, patience=3, eval_every=1)
    # Without teacher's data as a candidate (its own test is below), the selection keeps one of S's steps.
    base = config("foster", device="cpu", teacher_candidate=False)
    rows = [ablation.run_variant(context, 4, base, student, v) for v in ("start", "reg")]
    assert [r["variant"] for r in rows] == ["start", "reg"]
    # The start has no selection; FOSTER's selection keeps one of its candidate steps (0, 4, 6 in QUICK).
    assert rows[0]["kept_step"] is None and rows[1]["kept_step"] in (0, 4, 6)
    assert all(0.0 <= r["ndcg@10"]["mean"] <= 1.0 for r in rows)
    full = {"ndcg@10": {"mean": 0.5, "std": 0.0}}
    text = ablation.table({"dataset": "cyclic", "budget": 4, "full": full, "rows": rows[::-1]})
    # Rows print in the script's variant order, whatever order they were measured in.
    assert text.index("- regulariser L_r") < text.index("- all updates")
    assert f"{rows[0]['ndcg@10']['mean'] / 0.5:.2f}" in text


def test_a_run_that_kept_teacher_s_data_records_it_in_its_results(tmp_path, monkeypatch):
    from foster_core.methods import foster
    from foster_core.testing import tiny_context

    scores = iter([0.9, 0.1, 0.2])  # teacher's data is scored first, then S's two candidates
    monkeypatch.setattr(foster, "holdout_score", lambda context, data, config: next(scores))
    context = tiny_context(cache_dir=tmp_path)
    config = get_method("foster").config(dict(steps=2, select_every=2, label_support=5, log_every=1))
    student = StudentConfig(seeds=(0,), epochs=2, eval_every=1, device="cpu")
    outcome = run_method(context, "foster", 4, config, student, store=RunStore(tmp_path / "runs"))
    assert outcome.results["kept"] == "teacher"
    assert outcome.run.results["kept"] == "teacher" and "(kept teacher's data)" in (outcome.run.path / "card.md").read_text()
