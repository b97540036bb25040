"""How cost grows with the number of users: seconds per expert epoch, per FOSTER step and per student on
seeded user samples of one dataset (the whole catalogue kept, so every sample shares one text table).

For each sample size: one expert epoch on the training split's holdout (training seconds, and one early
stopping validation pass), FOSTER steps at one budget (per-step seconds, no selection phase), and one
student with the evaluator's default schedule on that FOSTER data (training and evaluation seconds; the
evaluation includes the test pass over every user). Experts are trained in a temporary folder, never
read from the cache. Prints a markdown table and writes JSON; no assertions.

    python -m benchmarks.scaling --dataset ../shared/data/amazon_games --users 10000 25000 50000 --out docs/results/scaling_amazon_games.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from foster_core.core.atomic import atomic_write_json
from foster_core.core.data import Dataset
from foster_core.core.loaders import load_dataset
from foster_core.core.model import ModelConfig
from foster_core.core.training import TrainConfig
from foster_core.methods import StepEvent
from foster_core.methods.expert import DistillContext
from foster_core.methods.foster import FosterConfig
from foster_core.methods.registry import distill
from foster_core.runs.evaluator import StudentConfig, evaluate_synthetic
from foster_core.runs.experiment import encode_items, machine_description
from foster_core.runs.run_store import utc_timestamp


def sample_users(dataset: Dataset, users: int, seed: int) -> Dataset:
    """`users` users drawn without replacement (seeded), every item kept."""
    if users >= dataset.num_users:
        return dataset
    keep = np.sort(np.random.default_rng(seed).choice(dataset.num_users, users, replace=False))
    return replace(dataset, name=f"{dataset.name}[{users} users]", user_ids=[dataset.user_ids[i] for i in keep],
                   sequences=[dataset.sequences[i] for i in keep])


def measure(dataset: Dataset, text: torch.Tensor, budget: int, steps: int, seed: int, folder: Path) -> dict:
    epochs: list[dict] = []
    context = DistillContext(dataset, text, ModelConfig(), TrainConfig(epochs=1, seed=seed), folder,
                             on_expert_epoch=epochs.append)
    context.expert()
    epoch = epochs[0]
    step_seconds: list[float] = []
    config = FosterConfig(steps=steps, select_every=0, log_every=1, seed=seed)
    started = time.perf_counter()
    data = distill(context, "foster", budget, config,
                   on_event=lambda e: step_seconds.append(e.seconds) if isinstance(e, StepEvent) else None)
    foster_seconds = time.perf_counter() - started
    # Per step from the second half (the first steps include loading the trajectory and warm-up).
    half = len(step_seconds) // 2
    per_step = (step_seconds[-1] - step_seconds[half - 1]) / (len(step_seconds) - half)
    student = evaluate_synthetic(context, data, StudentConfig(seeds=(seed,)))
    return {"users": dataset.num_users, "holdout_users": len(context.holdout.train),
            "interactions": dataset.num_interactions,
            "expert_epoch_train_s": epoch["seconds"] - epoch.get("eval_seconds", 0.0),
            "expert_valid_pass_s": epoch.get("eval_seconds", 0.0),
            "foster_step_s": per_step, "foster_total_s": foster_seconds,
            "student_train_s": student["student_train_seconds"], "student_eval_s": student["student_eval_seconds"],
            "student_ndcg@10": student["test"]["ndcg@10"]["mean"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 25_000, 50_000])
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10, help="FOSTER steps timed per sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    args = parser.parse_args()
    full = load_dataset(args.dataset)
    text = encode_items(full)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for users in args.users:
            rows.append(measure(sample_users(full, users, args.seed), text, args.budget, args.steps, args.seed,
                                Path(tmp) / str(users)))
            print(rows[-1], flush=True)
    machine = machine_description(torch.device("cpu"))
    print(f"\n{full.name}: {full.num_items} items; FOSTER n = {args.budget}; {machine}\n")
    print("| users | expert epoch s (training) | validation pass s | s per user per epoch (ms) | FOSTER step s | "
          "student training s | student evaluation s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['users']:,} | {r['expert_epoch_train_s']:.1f} | {r['expert_valid_pass_s']:.1f} | "
              f"{1000 * r['expert_epoch_train_s'] / r['holdout_users']:.2f} | {r['foster_step_s']:.2f} | "
              f"{r['student_train_s']:.1f} | {r['student_eval_s']:.1f} |")
    if args.out:
        atomic_write_json(args.out, {"created": utc_timestamp(), "dataset": full.name, "items": full.num_items,
                                     "budget": args.budget, "machine": machine, "torch": torch.__version__,
                                     "rows": rows})


if __name__ == "__main__":
    main()
