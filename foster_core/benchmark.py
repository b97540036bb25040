"""One evaluator for all methods, the run orchestration behind the app and the CLI, and the bench.

`evaluate_synthetic` trains fresh students (random initialisation, one per seed) on synthetic data alone,
with soft inputs and soft labels over the full catalogue, chooses each student's epoch on validation, and
reports test metrics as mean and std over seeds. `evaluate_full` does the same for full-data training.
"""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from .atomic import atomic_write_json
from .distill import RESUMABLE, DistillConfig, DistillContext, check_budget, distill
from .evaluation import evaluate_model
from .export import write_exports
from .run_store import Run, RunStore
from .runtime import resolve_device
from .synthetic import SyntheticData
from .training import TrainConfig, train_on_sequences, train_on_soft

HEADLINE = ("ndcg@10", "recall@10", "ndcg@20", "recall@20")


@dataclass(frozen=True)
class StudentConfig:
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 300
    lr: float = 3e-3
    patience: int = 60  # epochs
    eval_every: int = 5
    device: str = "auto"


def _summarise(per_seed: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {k: {"mean": float(np.mean([m[k] for m in per_seed])), "std": float(np.std([m[k] for m in per_seed]))}
            for k in HEADLINE}


def evaluate_synthetic(context: DistillContext, synthetic: SyntheticData, student: StudentConfig | None = None) -> dict:
    student = student or StudentConfig()
    inputs, labels, mask = synthetic.dense(context.num_items)
    tests, valids, seconds = [], [], []
    for seed in student.seeds:
        cfg = TrainConfig(epochs=student.epochs, batch_size=max(1, synthetic.num_sequences), lr=student.lr,
                          patience=student.patience, eval_every=student.eval_every, seed=seed, device=student.device)
        result = train_on_soft(context.text_embeddings, inputs, labels, context.split, context.model_cfg, cfg, mask=mask)
        tests.append(evaluate_model(result.model, context.split, "test"))
        valids.append(result.best_valid)
        seconds.append(result.seconds)
    return {
        "test": _summarise(tests), "valid": _summarise(valids), "per_seed_test": tests,
        "student_seconds": float(np.mean(seconds)),
        "coverage": synthetic.coverage(context.num_items),
        "popular_share": popular_share(context, synthetic),
    }


def evaluate_full(context: DistillContext, student: StudentConfig | None = None) -> dict:
    """Full-data reference: fresh models on the whole training split, one per seed (cached beside the expert,
    since it depends only on the data and the configs)."""
    student = student or StudentConfig()
    cache = context.expert_folder() / f"full_eval_seeds_{'-'.join(map(str, student.seeds))}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    tests, valids, seconds = [], [], []
    for seed in student.seeds:
        cfg = TrainConfig(**{**asdict(context.expert_cfg), "seed": seed, "device": student.device})
        result = train_on_sequences(context.text_embeddings, context.train, context.split, context.model_cfg, cfg)
        tests.append(evaluate_model(result.model, context.split, "test"))
        valids.append(result.best_valid)
        seconds.append(result.seconds)
    results = {"test": _summarise(tests), "valid": _summarise(valids), "per_seed_test": tests,
               "student_seconds": float(np.mean(seconds)), "coverage": None, "popular_share": real_popular_share(context)}
    atomic_write_json(cache, results)
    return results


def _popular_items(context: DistillContext, share: float = 0.1) -> torch.Tensor:
    counts = np.bincount(np.concatenate(context.train), minlength=context.num_items)
    top = np.argsort(-counts, kind="stable")[: max(1, int(share * context.num_items))]
    flags = torch.zeros(context.num_items, dtype=torch.bool)
    flags[torch.from_numpy(top)] = True
    return flags


def popular_share(context: DistillContext, synthetic: SyntheticData) -> float:
    """Share of the synthetic label mass on the 10% most popular training items (collapse shows as ~1)."""
    flags = _popular_items(context)
    mass = synthetic.label_probs * synthetic.mask.unsqueeze(-1)
    return float((mass * flags[synthetic.label_items]).sum() / mass.sum())


def real_popular_share(context: DistillContext) -> float:
    flags = _popular_items(context)
    items = torch.from_numpy(np.concatenate([s[1:] for s in context.train if len(s) >= 2]))
    return float(flags[items].float().mean())


class PeakMemory:
    """Peak memory of a block: CUDA allocator peak on a GPU, sampled resident set growth on the CPU."""

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        self.peak_mb = 0.0

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._base = _rss_mb()
            self._stop = threading.Event()
            self._peak = self._base
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._peak = max(self._peak, _rss_mb())

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.peak_mb = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self._peak, _rss_mb()) - self._base


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return 0.0


@dataclass
class RunOutcome:
    run: Run | None
    synthetic: SyntheticData | None
    results: dict | None
    distill_seconds: float = 0.0
    peak_mb: float = 0.0
    history: list[dict] = field(default_factory=list)


def run_method(
    context: DistillContext,
    method: str,
    budget: int,
    config: DistillConfig | None = None,
    student: StudentConfig | None = None,
    store: RunStore | None = None,
    evaluate: bool = True,
    on_record: Callable[[dict], None] | None = None,
    resume_run: Run | None = None,
) -> RunOutcome:
    """Distil with one method, record everything in the run store (when given), evaluate with students.

    With `resume_run` (an interrupted foster or bptt run), continue that run in its own folder from its latest
    checkpoint of S (see distill_foster); without a checkpoint it starts over there."""
    config = config or DistillConfig()
    student = student or StudentConfig()
    check_budget(context, budget)  # a user mistake, not a failed run: no run folder for it
    resume = None
    if resume_run is not None:
        run = resume_run
        resume = _resume_point(run)
        run.prepare_resume(resume[0] if resume else 0)
    else:
        run = store.create(method, {
            "budget": budget, "dataset": context.dataset.name, "distill": asdict(config), "student": asdict(student),
            "model": asdict(context.model_cfg), "expert": asdict(context.expert_cfg),
        }) if store else None
    history: list[dict] = []

    def callback(record: dict) -> None:
        if "checkpoint" in record:
            if run:
                record["checkpoint"].save(run.checkpoint_dir / f"step_{record['step']:06d}.safetensors")
            return
        _check_finite(record)
        history.append(record)
        if run:
            run.append_history(record)
        if on_record:
            on_record(record)

    try:
        context.expert()  # the expert is shared by all runs; it is not part of a method's own cost
        device = resolve_device(config.device)
        started = time.perf_counter()
        with PeakMemory(device) as memory:
            synthetic = distill(context, method, budget, config, callback, run.stop_requested if run else None,
                                **({"resume": resume} if resume else {}))
        seconds = time.perf_counter() - started
        if run and run.stop_requested():
            synthetic.save(run.synthetic_path)
            run.set_status("stopped", "stopped on request; the synthetic data so far was saved")
            return RunOutcome(run, synthetic, None, seconds, memory.peak_mb, history)
        if run:
            synthetic.save(run.synthetic_path, {"method": method, "budget": str(budget)})
            write_exports(run.path, synthetic, context.dataset)
            run.set_status("running", "evaluating with fresh students", phase="evaluate")
        results = None
        if evaluate:
            results = evaluate_synthetic(context, synthetic, student)
            results.update(method=method, budget=budget, distill_seconds=seconds, peak_mb=memory.peak_mb)
            if run:
                run.write_results(results)
        if run:
            run.set_status("finished", "done")
        return RunOutcome(run, synthetic, results, seconds, memory.peak_mb, history)
    except Exception as exc:
        if run:
            run.set_status("failed", f"{exc.__class__.__name__}: {exc}", traceback=traceback.format_exc(limit=5))
        raise


def _resume_point(run: Run) -> tuple[int, SyntheticData] | None:
    """(step, S) of the run's latest checkpoint, or None when it was killed before its first one."""
    if run.config.get("method") not in RESUMABLE:
        raise ValueError(f"only {' and '.join(RESUMABLE)} runs can be resumed; run {run.id} is "
                         f"{run.config.get('method')!r} (start it again instead).")
    checkpoint = run.latest_checkpoint()
    if checkpoint is None:
        return None
    return int(checkpoint.stem.split("_")[-1]), SyntheticData.load(checkpoint)


def _check_finite(record: dict) -> None:
    """A loss that became NaN or infinite ends the run with a message instead of training on garbage."""
    bad = [k for k, v in record.items() if k.startswith("loss") and isinstance(v, float) and not np.isfinite(v)]
    if bad:
        raise FloatingPointError(
            f"{', '.join(bad)} became {record[bad[0]]} at step {record.get('step')}: the run diverged. Try a smaller "
            "synthetic_lr / outer_lr, or resume it from its last checkpoint.")
