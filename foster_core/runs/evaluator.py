"""The one evaluator for every method: fresh students trained on synthetic data alone, and the full-data
reference trained the same way on the whole training split.

`evaluate_synthetic` trains one student per seed (random initialisation) on the synthetic data, with soft
inputs and soft labels over the full catalogue, chooses each student's epoch on validation, and reports
test metrics as mean and std over seeds, with full ranking and no sampled negatives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..core.atomic import atomic_write_json
from ..core.data import popular_items, usable
from ..core.evaluation import evaluate_model
from ..core.synthetic import SyntheticData
from ..core.training import TrainConfig, train_on_sequences, train_on_synthetic
from ..methods.expert import DistillContext

HEADLINE = ("ndcg@10", "recall@10", "ndcg@20", "recall@20")


@dataclass(frozen=True)
class StudentConfig:
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 300
    lr: float = 3e-3
    patience: int = 60  # epochs
    eval_every: int = 5
    device: str = "auto"


def summarise(per_seed: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and (population) std over seeds of each headline metric."""
    return {k: {"mean": float(np.mean([m[k] for m in per_seed])), "std": float(np.std([m[k] for m in per_seed]))}
            for k in HEADLINE}


def evaluate_synthetic(context: DistillContext, synthetic: SyntheticData, student: StudentConfig | None = None) -> dict:
    student = student or StudentConfig()
    tests, valids, seconds = [], [], []
    for seed in student.seeds:
        cfg = TrainConfig(epochs=student.epochs, batch_size=max(1, synthetic.num_sequences), lr=student.lr,
                          patience=student.patience, eval_every=student.eval_every, seed=seed, device=student.device)
        result = train_on_synthetic(context.text_embeddings, synthetic, context.split, context.model_cfg, cfg)
        tests.append(evaluate_model(result.model, context.split, "test"))
        valids.append(result.best_valid)
        seconds.append(result.seconds)
    return {
        "test": summarise(tests), "valid": summarise(valids), "per_seed_test": tests,
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
        cfg = replace(context.expert_cfg, seed=seed, device=student.device)
        result = train_on_sequences(context.text_embeddings, context.train, context.split, context.model_cfg, cfg)
        tests.append(evaluate_model(result.model, context.split, "test"))
        valids.append(result.best_valid)
        seconds.append(result.seconds)
    results = {"test": summarise(tests), "valid": summarise(valids), "per_seed_test": tests,
               "student_seconds": float(np.mean(seconds)), "coverage": None, "popular_share": real_popular_share(context)}
    atomic_write_json(cache, results)
    return results


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
