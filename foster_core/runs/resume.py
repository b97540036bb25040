"""Resuming a killed run: rebuild what it was working on from its own folder, then continue it there.

A run folder records the method, budget and every config; app runs also record the dataset spec and their
job (whose spec holds the data filters and cache folder). `resume_spec` turns that into a one-run JobSpec,
which the app hands to the background worker and the CLI (`python -m foster_core resume RUN_ID`) runs in
the foreground. Only S is restored from the latest checkpoint (see methods/foster.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from ..core.config import known_values, to_dict
from ..core.loaders import load_dataset
from ..core.model import ModelConfig
from ..core.sources import resolve_dataset_spec
from ..core.training import TrainConfig
from ..methods.events import Event
from ..methods.registry import get_method
from .evaluator import StudentConfig
from .experiment import build_context
from .jobs import JOBS_FOLDER, JobSpec, job_configs
from .run_store import Run, RunStore
from .runner import RunOutcome, run_method


def resume_spec(run: Run, store: RunStore, dataset: str | None = None, cache_dir: str | None = None) -> JobSpec:
    """The one-run job that continues `run`; `dataset` overrides the recorded spec (needed for CLI runs)."""
    config = run.config
    method = get_method(str(config.get("method")))
    if not method.resumable:
        raise ValueError(f"{method.name} runs cannot be resumed (run {run.id}); start it again instead.")
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
        dataset = resolve_dataset_spec(config)  # the recorded spec, else found by name (DataError if not)
    # A run written by an older version may lack fields (they take their defaults) or hold removed ones.
    return JobSpec(dataset=dataset, methods=[method.name], budgets=[int(config["budget"])],
                   distill=to_dict(method.config(config.get("distill", {}))),
                   student=known_values(StudentConfig, config.get("student", {})),
                   expert=known_values(TrainConfig, config.get("expert", {})),
                   model=known_values(ModelConfig, config.get("model", {})), data=job_spec.get("data", {}),
                   reference=False, preset=str(config.get("preset", "custom")),
                   threads=int(job_spec.get("threads", 0)),
                   cache_dir=cache_dir if cache_dir is not None else job_spec.get("cache_dir"), resume_run=run.id)


def resume_in_foreground(run_id: str, runs_dir: str | Path | None = None, dataset: str | None = None,
                         cache_dir: str | None = None, on_event: Callable[[Event], None] | None = None) -> RunOutcome:
    """Continue a run in this process (the CLI)."""
    store = RunStore(runs_dir)
    run = store.get(run_id)
    spec = resume_spec(run, store, dataset, cache_dir)
    configs = job_configs(spec)
    context = build_context(load_dataset(spec.dataset, configs.data), configs.model, configs.expert,
                            cache_dir=spec.cache_dir)
    if context.dataset.name != run.config.get("dataset"):
        raise ValueError(f"run {run.id} was made on dataset {run.config.get('dataset')!r}, not {context.dataset.name!r}.")
    method = spec.methods[0]
    return run_method(context, method, spec.budgets[0], configs.methods[method], configs.student, store,
                      on_event=on_event, resume_run=run)
