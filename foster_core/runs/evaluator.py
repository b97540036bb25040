"""The one evaluator for every method: fresh students trained on synthetic data alone, and the full-data
reference trained the same way on the whole training split.

`evaluate_synthetic` trains one student per seed (random initialisation) on the synthetic data, with soft
inputs and soft labels over the full catalogue, chooses each student's epoch on validation, and reports
test metrics as mean and std over seeds, with full ranking and no sampled negatives.

Students may be of several architectures (`StudentConfig.architectures`, names from
core/architectures.py). The first is the headline: its numbers are the results' top-level keys, as they
always were. With more than one, `by_architecture` holds every architecture's numbers under its name, and
the full-data reference trains each architecture on the whole training split, so a ratio is always to the
same architecture's own full-data training.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..core.architectures import DEFAULT_ARCHITECTURE, get_architecture
from ..core.atomic import atomic_write_json
from ..core.copying import copy_report
from ..core.data import popular_items, training_targets, usable
from ..core.evaluation import evaluate_model
from ..core.synthetic import SyntheticData
from ..core.train_state import clear_train_state
from ..core.training import TrainConfig, TrainResult, train_on_sequences, train_on_synthetic
from ..methods.expert import DistillContext
from .run_store import FULL, architecture_results

HEADLINE = ("ndcg@10", "recall@10", "ndcg@20", "recall@20")


@dataclass(frozen=True)
class StudentConfig:
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 300
    lr: float = 3e-3
    patience: int = 60  # epochs
    eval_every: int = 5
    device: str = "auto"
    architectures: tuple[str, ...] = (DEFAULT_ARCHITECTURE,)  # the first is the headline

    def __post_init__(self) -> None:
        if not self.architectures:
            raise ValueError("students need at least one architecture")
        for name in self.architectures:
            get_architecture(name)  # an unknown name is refused here, with the list of known ones


def summarise(per_seed: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and (population) std over seeds of each headline metric."""
    return {k: {"mean": float(np.mean([m[k] for m in per_seed])), "std": float(np.std([m[k] for m in per_seed]))}
            for k in HEADLINE}


Say = Callable[[str], None]  # a progress line for a person


def evaluate_synthetic(context: DistillContext, synthetic: SyntheticData, student: StudentConfig | None = None,
                       progress: Say | None = None) -> dict:
    student = student or StudentConfig()
    by_architecture = {}
    for arch in student.architectures:
        tests, valids, costs = [], [], []
        for seed in student.seeds:
            cfg = TrainConfig(epochs=student.epochs, batch_size=max(1, synthetic.num_sequences), lr=student.lr,
                              patience=student.patience, eval_every=student.eval_every, seed=seed, device=student.device)
            result = train_on_synthetic(context.text_embeddings, synthetic, context.split, context.model_cfg, cfg,
                                        arch=arch)
            tests.append(_timed_test(result, context, costs))
            _say_student(progress, _label("student", arch, student), len(tests), len(student.seeds), tests[-1],
                         costs[-1])
            valids.append(result.best_valid)
        by_architecture[arch] = {"test": summarise(tests), "valid": summarise(valids), "per_seed_test": tests,
                                 **student_costs(costs)}
    return {**_headline(by_architecture), "coverage": synthetic.coverage(context.num_items),
            "popular_share": popular_share(context, synthetic), **position_counts(context, synthetic),
            "copying": copy_report(synthetic, context.train).to_dict()}


def evaluate_full(context: DistillContext, student: StudentConfig | None = None, progress: Say | None = None) -> dict:
    """Full-data reference: fresh models on the whole training split, one per seed and architecture (cached
    beside the expert, since they depend only on the data and the configs)."""
    student = student or StudentConfig()
    by_architecture = {arch: _full_students(context, student, arch, progress) for arch in student.architectures}
    return {**_headline(by_architecture), "coverage": None, "popular_share": real_popular_share(context),
            **position_counts(context, None)}


def position_counts(context: DistillContext, synthetic: SyntheticData | None) -> dict:
    """`positions`: the non-padding input positions a student trains on (all training targets for full data);
    `position_share`: that over the training split's next-item targets, the share of the data S amounts to."""
    total = training_targets(context.train)
    positions = total if synthetic is None else synthetic.num_positions
    return {"positions": positions, "position_share": positions / max(total, 1)}


def _full_students(context: DistillContext, student: StudentConfig, arch: str, progress: Say | None) -> dict:
    """One architecture's full-data students, cached beside the expert (whose key covers the data and the
    expert's configs): the seed list's file, and one file per seed (the file of a one-seed list), so a run
    with more seeds trains only the new ones and a killed run keeps its finished seeds. Another
    architecture's file names add a digest of its model class and config changes, so an edited
    architecture trains anew; the default's keep the names they always had."""
    if arch == DEFAULT_ARCHITECTURE:
        prefix = "full_eval"
    else:
        architecture = get_architecture(arch)
        digest = hashlib.sha256(repr((architecture.model_class.__name__, architecture.overrides)).encode())
        prefix = f"full_eval_{arch}_{digest.hexdigest()[:8]}"

    def cache(seeds: tuple[int, ...]) -> Path:
        return context.expert_folder() / f"{prefix}_seeds_{'-'.join(map(str, seeds))}.json"

    if cache(student.seeds).is_file():
        return json.loads(cache(student.seeds).read_text())
    tests, valids, costs = [], [], []
    label = _label("full-data student", arch, student)
    for seed in student.seeds:
        if cache((seed,)).is_file():  # this seed's student, trained before (alone or in another seed list)
            one = json.loads(cache((seed,)).read_text())
            tests.append(one["per_seed_test"][0])
            valids.append({k: v["mean"] for k, v in one["valid"].items()})
            costs.append((one["student_train_seconds"], one["student_eval_seconds"]))
            continue
        cfg = replace(context.expert_cfg, seed=seed, device=student.device)
        on_epoch = EpochReporter(f"{label} {len(tests) + 1}/{len(student.seeds)}", cfg, progress) if progress else None
        # A killed student continues from its last epoch on the next call (these take an hour at 50k users).
        unfinished = context.expert_folder() / f"{prefix}_seed_{seed}_unfinished"
        result = train_on_sequences(context.text_embeddings, context.train, context.split, context.model_cfg, cfg,
                                    callback=on_epoch, arch=arch, resume_dir=unfinished)
        tests.append(_timed_test(result, context, costs))
        _say_student(progress, label, len(tests), len(student.seeds), tests[-1], costs[-1])
        valids.append(result.best_valid)
        atomic_write_json(cache((seed,)), _full_results(tests[-1:], valids[-1:], costs[-1:]))
        clear_train_state(unfinished)  # kept: the seed's file holds it now
    results = _full_results(tests, valids, costs)
    atomic_write_json(cache(student.seeds), results)
    return results


def _full_results(tests: list[dict], valids: list[dict], costs: list[tuple[float, float]]) -> dict:
    return {"test": summarise(tests), "valid": summarise(valids), "per_seed_test": tests, **student_costs(costs)}


def _headline(by_architecture: dict[str, dict]) -> dict:
    """The results' top level: the first architecture's numbers, its name, and (with several) every one."""
    arch = next(iter(by_architecture))
    out = {**by_architecture[arch], "architecture": arch}
    if len(by_architecture) > 1:
        out["by_architecture"] = by_architecture
    return out


def student_train_seconds(results: dict | None) -> float | None:
    """Seconds to train one student: its training steps alone (`student_train_seconds`) where the results say,
    else `student_seconds` (older results, whose figure includes the student's evaluation passes)."""
    results = results or {}
    value = results.get("student_train_seconds")
    return value if value is not None else results.get("student_seconds")


def ratio_to(mean: float, reference_mean: float) -> float:
    """A metric's mean over the reference's (full data's): the "ratio to full" of every table."""
    return mean / max(reference_mean, 1e-12)


def speed_up(student_seconds: float | None, full_seconds: float | None, method: str | None = None) -> float | None:
    """How many times faster a student trains on the synthetic data than on all the data: full-data training
    seconds over the student's. None for the full-data reference itself, or when a time is missing."""
    def missing(x) -> bool:
        return x is None or (isinstance(x, float) and np.isnan(x))
    if method == FULL or missing(student_seconds) or missing(full_seconds) or student_seconds <= 0:
        return None
    return float(full_seconds) / float(student_seconds)


def architecture_rows(method: str, budget: int | None, results: dict | None, full: dict | None) -> list[dict]:
    """One row per student architecture of a result: test metrics, the ratio to the same architecture's
    full-data training, and the training speed-up against it (the bench's and Compare's transfer table).
    An architecture the full-data results lack gets no ratio and no speed-up."""
    references = architecture_results(full)
    rows = []
    for arch, numbers in architecture_results(results).items():
        reference = references.get(arch)
        ref_test = (reference or {}).get("test", {})
        train, full_train = student_train_seconds(numbers), student_train_seconds(reference)
        rows.append({
            "architecture": arch, "method": method, "budget": budget,
            **{k: numbers["test"][k] for k in ("ndcg@10", "recall@10")},
            "seeds": len(numbers.get("per_seed_test", [])) or None,
            **{f"ratio_{k}": ratio_to(numbers["test"][k]["mean"], ref_test[k]["mean"]) if k in ref_test else None
               for k in ("ndcg@10", "recall@10")},
            "student_train_seconds": train, "full_train_seconds": full_train,
            "train_speedup": speed_up(train, full_train, method),
        })
    return rows


def _label(what: str, arch: str, student: StudentConfig) -> str:
    """'student', or 'gru4rec student' when several architectures are trained."""
    return what if len(student.architectures) == 1 else f"{arch} {what}"


def _timed_test(result: TrainResult, context: DistillContext, costs: list[tuple[float, float]]) -> dict[str, float]:
    """The test metrics of a trained student; appends its (training seconds, evaluation seconds) to `costs`,
    where evaluation is its validation passes and this test pass."""
    started = time.perf_counter()
    test = evaluate_model(result.model, context.split, "test")
    costs.append((result.train_seconds, result.eval_seconds + time.perf_counter() - started))
    return test


def _say_student(progress: Say | None, label: str, done: int, total: int, test: dict[str, float],
                 cost: tuple[float, float]) -> None:
    if progress:
        progress(f"{label} {done}/{total}: test NDCG@10 {test['ndcg@10']:.4f}; training {cost[0]:.1f} s, "
                 f"evaluation {cost[1]:.1f} s")


class EpochReporter:
    """An epoch callback that turns each epoch of a training run into a progress line: loss, validation
    NDCG@10, seconds per epoch and the time left if the run stopped improving now (early stopping ends it
    `patience` epochs after its best one, and at `epochs` at the latest): a lower bound while it improves."""

    def __init__(self, label: str, cfg: TrainConfig, say: Say):
        self.label, self.cfg, self.say = label, cfg, say
        self.best_epoch, self.best = 0, -1.0

    def __call__(self, record: dict) -> None:
        epoch = record["epoch"]
        text = f"{self.label}: epoch {epoch}, loss {record['loss']:.4f}"
        if "valid" in record:
            score = record["valid"]["ndcg@10"]
            if score > self.best:
                self.best_epoch, self.best = epoch, score
            text += f", NDCG@10 {score:.4f} (best {self.best:.4f} at epoch {self.best_epoch})"
        per_epoch = record["seconds"] / epoch
        if "valid" not in record:  # nothing to stop on: every epoch runs
            self.say(f"{text}; {per_epoch:.1f} s/epoch, {format_seconds(per_epoch * max(0, self.cfg.epochs - epoch))} "
                     f"left (epoch {epoch} of {self.cfg.epochs})")
            return
        last = min(self.cfg.epochs, self.best_epoch + self.cfg.patience)
        left = per_epoch * max(0, last - epoch)
        text += f"; {per_epoch:.1f} s/epoch, {format_seconds(left)} left if NDCG@10 stops improving"
        if self.cfg.time_limit_s:  # the run also ends with the first epoch past its time limit
            epochs_to_limit = max(0, math.ceil((self.cfg.time_limit_s - record["seconds"]) / per_epoch))
            text += f", {format_seconds(per_epoch * epochs_to_limit)} at most (time limit)"
        self.say(text)


def format_seconds(seconds: float | None) -> str:
    """'42 s', '3 min 05 s', or '–' without a value: how every progress line and page states a duration."""
    if seconds is None:
        return "–"
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def student_costs(costs: list[tuple[float, float]]) -> dict[str, float]:
    """Mean seconds per student: training steps, evaluation (validation and test passes), and their sum
    (`student_seconds`, the key older results hold)."""
    train, evaluation = (float(np.mean([c[i] for c in costs])) for i in (0, 1))
    return {"student_seconds": train + evaluation, "student_train_seconds": train, "student_eval_seconds": evaluation}


def _popular_flags(context: DistillContext) -> torch.Tensor:
    flags = torch.zeros(context.num_items, dtype=torch.bool)
    flags[torch.from_numpy(popular_items(context.train, context.num_items))] = True
    return flags


def popular_share(context: DistillContext, synthetic: SyntheticData) -> float:
    """Share of the synthetic label mass on the 10% most popular training items (collapse shows as ~1)."""
    flags = _popular_flags(context)
    mass = synthetic.label_probs * synthetic.mask.unsqueeze(-1)
    return float((mass * flags[synthetic.label_items]).sum() / mass.sum())


def real_popular_share(context: DistillContext) -> float:
    """The same share for the real training targets (every item after a sequence's first)."""
    flags = _popular_flags(context)
    items = torch.from_numpy(np.concatenate([s[1:] for s in context.train if usable(s)]))
    return float(flags[items].float().mean())
