"""Where a real-data training epoch goes (the expert's and the full-data student's), by operator, at
several batch sizes: one epoch of `train_on_sequences` on a seeded user sample, under torch.profiler.

Prints, per batch size, the epoch's seconds (with the profiler's own overhead) and rows per second, and the operators that take the most
of the epoch's CPU time (self time, so nothing is counted twice); writes JSON. No validation pass (the
profiled epoch has no split) and nothing read from or written to the expert cache. No assertions.

    python -m benchmarks.epoch_profile --dataset ../shared/data/amazon_games --users 10000 --batch-sizes 128 512
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from foster_core.core.atomic import atomic_write_json
from foster_core.core.data import DataConfig, leave_one_out, next_item_pairs
from foster_core.core.loaders import load_dataset
from foster_core.core.model import ModelConfig
from foster_core.core.training import TrainConfig, train_on_sequences
from foster_core.runs.experiment import encode_items


def profile_epoch(text_embeddings: torch.Tensor, train: list[np.ndarray], batch_size: int, top: int) -> dict:
    cfg = TrainConfig(epochs=1, batch_size=batch_size, device="cpu")
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_on_sequences(text_embeddings, train, None, ModelConfig(), cfg)
    seconds = time.perf_counter() - started
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    ops = [{"op": e.key, "self_share": e.self_cpu_time_total / total, "calls": e.count} for e in events[:top]]
    return {"batch_size": batch_size, "seconds": seconds, "ops": ops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="movielens")
    parser.add_argument("--users", type=int, default=10_000, help="seeded sample of users (0 = all)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    dataset = load_dataset(args.dataset, DataConfig())
    text_embeddings = encode_items(dataset)
    train = leave_one_out(dataset).train
    if args.users and args.users < len(train):
        keep = np.sort(np.random.default_rng(0).choice(len(train), args.users, replace=False))
        train = [train[i] for i in keep]
    rows = len(next_item_pairs(train, ModelConfig().max_len)[0])
    print(f"{dataset.name}: {len(train)} users, {rows} training rows, {dataset.num_items} items; "
          f"{torch.get_num_threads()} threads", flush=True)
    report = {"dataset": dataset.name, "users": len(train), "rows": rows, "items": dataset.num_items,
              "threads": torch.get_num_threads(), "runs": []}
    for batch_size in args.batch_sizes:
        run = profile_epoch(text_embeddings, train, batch_size, args.top)
        report["runs"].append(run)
        print(f"\nbatch {batch_size}: {run['seconds']:.1f} s for the epoch, {rows / run['seconds']:.0f} rows/s\n")
        print("| operator | share of self CPU time | calls |\n| --- | --- | --- |")
        for op in run["ops"]:
            print(f"| {op['op']} | {op['self_share']:.1%} | {op['calls']} |")
        if args.out:
            atomic_write_json(args.out, report)


if __name__ == "__main__":
    main()
