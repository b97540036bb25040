"""Resuming a killed run: rebuild what it was working on from its own folder, then continue it there.

A run folder records the method, budget and every config; app runs also record the dataset spec and their
job (whose spec holds the data filters and cache folder). `resume_spec` turns that into a one-run JobSpec,
which the app hands to the background worker and the CLI (`python -m foster_core resume RUN_ID`) runs in
the foreground. Only S is restored from the latest checkpoint; see distill.distill_foster.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Callable

from .distill import RESUMABLE, DistillConfig
from .jobs import JOBS_FOLDER, JobSpec
from .run_store import Run, RunStore


def _known_fields(config_class: type, values: dict) -> dict:
    # A run written by an older version may lack fields (they take their defaults) or hold removed ones.
    names = {f.name for f in fields(config_class)}
    return {k: v for k, v in (values or {}).items() if k in names}


def resume_spec(run: Run, store: RunStore, dataset: str | None = None, cache_dir: str | None = None) -> JobSpec:
    """The one-run job that continues `run`; `dataset` overrides the recorded spec (needed for CLI runs)."""
    from .benchmark import StudentConfig
    from .model import ModelConfig
    from .training import TrainConfig

    config = run.config
    method = config.get("method")
    if method not in RESUMABLE:
        raise ValueError(f"only {' and '.join(RESUMABLE)} runs can be resumed; run {run.id} is {method!r}.")
    if not run.resumable():
        raise ValueError(f"run {run.id} is {run.status.get('status')}; only an interrupted, failed or stopped run "
                         "can be resumed.")
    job_spec: dict = {}
    if config.get("job"):
        try:
            job_spec = json.loads((store.root / JOBS_FOLDER / str(config["job"]) / "job.json").read_text())
        except (OSError, json.JSONDecodeError):
            job_spec = {}
    if dataset is None:
        from .studio import resolve_dataset_spec

        dataset = resolve_dataset_spec(config)  # the recorded spec, else found by name (DataError if not)
    student = _known_fields(StudentConfig, config.get("student", {}))
    if "seeds" in student:
        student["seeds"] = list(student["seeds"])
    return JobSpec(dataset=dataset, methods=[method], budgets=[int(config["budget"])],
                   distill=_known_fields(DistillConfig, config.get("distill", {})), student=student,
                   expert=_known_fields(TrainConfig, config.get("expert", {})),
                   model=_known_fields(ModelConfig, config.get("model", {})), data=job_spec.get("data", {}),
                   reference=False, preset=str(config.get("preset", "custom")),
                   threads=int(job_spec.get("threads", 0)),
                   cache_dir=cache_dir if cache_dir is not None else job_spec.get("cache_dir"), resume_run=run.id)


def resume_in_foreground(run_id: str, runs_dir: str | Path | None = None, dataset: str | None = None,
                         cache_dir: str | None = None, on_record: Callable[[dict], None] | None = None):
    """Continue a run in this process (the CLI); returns benchmark.RunOutcome."""
    from .benchmark import run_method
    from .data import load_dataset
    from .experiment import build_context
    from .jobs import _configs

    store = RunStore(runs_dir)
    run = store.get(run_id)
    spec = resume_spec(run, store, dataset, cache_dir)
    distill_cfg, student_cfg, expert_cfg, model_cfg, data_cfg = _configs(spec)
    context = build_context(load_dataset(spec.dataset, data_cfg), model_cfg, expert_cfg, cache_dir=spec.cache_dir)
    if context.dataset.name != run.config.get("dataset"):
        raise ValueError(f"run {run.id} was made on dataset {run.config.get('dataset')!r}, not {context.dataset.name!r}.")
    return run_method(context, spec.methods[0], spec.budgets[0], distill_cfg, student_cfg, store,
                      on_record=on_record, resume_run=run)
