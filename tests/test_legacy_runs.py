"""Run folders written before the layout redesign (one 31-field DistillConfig per run) still load: their
configs become the per-method configs, their histories read as typed events, and they resume."""

import json

from foster_core.core.config import from_dict, to_dict
from foster_core.methods import CandidateScored, CandidateSelected, StepEvent, get_method
from foster_core.methods.teacher import TeacherConfig
from foster_core.runs.evaluator import StudentConfig
from foster_core.runs.jobs import job_configs
from foster_core.runs.resume import resume_spec
from foster_core.runs.run_store import RunStore

# What a run folder's config.json held on 2026-11-27 (DistillConfig fields, some since removed or renamed).
OLD_DISTILL = {"seed": 3, "device": "cpu", "label_support": 8, "teacher_selection": "kcenter",
               "init_selection": "herding", "init_packing": "off", "steps": 40, "subset_size": 256,
               "input_support": 8, "init_scale": 4.0, "init_noise": 0.01, "learn_labels": True, "inner_steps": 1,
               "inner_lr": 0.001, "outer_lr": 0.001, "synthetic_lr": 0.01, "lambda_start": 1.0, "lambda_end": 10.0,
               "reset_every": 20, "reset_outer": True, "s_update": "penalty", "reg_weight": 0.1,
               "reg_neighbours": 10, "reg_items": 512, "select_every": 0, "select_epochs": 100,
               "real_batch_size": 128, "log_every": 2, "checkpoint_every": 20, "unroll_steps": 5, "unroll_lr": 0.01}
OLD_HISTORY = [
    {"step": 2, "of": 40, "seconds": 1.5, "loss_real": 7.1, "loss_syn": 6.2, "loss_syn_inner": 6.1, "gap": 0.1,
     "loss_reg": 0.3, "lambda": 1.4, "label_entropy": 1.9, "subset": 900},
    {"phase": "select", "step": 0, "of": 40, "holdout_ndcg@10": 0.04, "candidate": 1, "candidates": 2},
    {"phase": "selected", "step": 0, "of": 40, "holdout_ndcg@10": 0.04},
]


def old_run(store: RunStore, method: str):
    run = store.create(method, {"budget": 5, "dataset": "movielens", "dataset_spec": "movielens",
                                "distill": OLD_DISTILL, "student": {"seeds": [0, 1], "epochs": 30},
                                "model": {"hidden": 16}, "expert": {"epochs": 3}})
    (run.path / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in OLD_HISTORY))
    return run


def test_an_old_distill_config_becomes_each_method_config(tmp_path):
    foster = get_method("foster").config(OLD_DISTILL)
    assert (foster.steps, foster.subset_size, foster.reset_every, foster.init_selection) == (40, 256, 20, "herding")
    teacher = get_method("teacher").config(OLD_DISTILL)
    assert isinstance(teacher, TeacherConfig) and teacher.selection == "kcenter" and teacher.label_support == 8
    bptt = get_method("bptt").config(OLD_DISTILL)
    assert (bptt.unroll_steps, bptt.seed) == (5, 3)
    assert get_method("random").config(OLD_DISTILL).seed == 3
    assert from_dict(StudentConfig, {"seeds": [0, 1]}).seeds == (0, 1)  # JSON lists come back as tuples
    assert to_dict(foster)["steps"] == 40 and "s_update" not in to_dict(foster)


def test_an_old_history_reads_as_typed_events(tmp_path):
    run = old_run(RunStore(tmp_path / "runs"), "foster")
    events = run.events
    assert [type(e) for e in events] == [StepEvent, CandidateScored, CandidateSelected]
    [step] = run.step_events
    assert step.step == 2 and step.of == 40 and step.subset == 900
    assert step.losses() == {"loss_real": 7.1, "loss_syn": 6.2, "loss_syn_inner": 6.1, "loss_reg": 0.3}
    assert step.to_record() == OLD_HISTORY[0]  # the JSON form is unchanged
    assert events[1].to_record() == OLD_HISTORY[1] and events[2].to_record() == OLD_HISTORY[2]


def test_an_old_interrupted_run_resumes_with_its_own_settings(tmp_path):
    store = RunStore(tmp_path / "runs")
    run = old_run(store, "foster")
    run.set_status("stopped", "stopped on request")
    spec = resume_spec(run, store)
    configs = job_configs(spec)
    assert spec.resume_run == run.id and spec.methods == ["foster"] and spec.budgets == [5]
    foster = configs.methods["foster"]
    assert (foster.steps, foster.seed, foster.device, foster.checkpoint_every) == (40, 3, "cpu", 20)
    assert configs.student.seeds == (0, 1) and configs.model.hidden == 16 and configs.expert.epochs == 3
