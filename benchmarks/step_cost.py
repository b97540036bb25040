"""Cost of one distillation step as the catalogue grows: FOSTER with item subsets, FOSTER over the full
catalogue, and the unrolled bi-level baseline (bptt). Prints a markdown table; no assertions.

Synthetic workload (no quality measured here): random unit "text" embeddings for M items, 2,000 users with
20 interactions drawn from a Zipf-like popularity, n = 20 synthetic sequences.

    python -m benchmarks.step_cost --sizes 5000 20000 80000 --steps 12
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from foster_core.core.model import ModelConfig
from foster_core.core.runtime import PeakMemory, resolve_device
from foster_core.core.training import TrainConfig
from foster_core.methods import StepEvent, get_method
from foster_core.methods.expert import DistillContext
from foster_core.methods.registry import distill
from foster_core.testing import random_text_embeddings, zipf_dataset


def synthetic_workload(num_items: int, users: int = 2000, length: int = 20, seed: int = 0):
    """Zipf-popular generated sequences and random unit text embeddings (384-d, as MiniLM's)."""
    dataset = zipf_dataset(num_items, users, length, seed)
    return dataset, random_text_embeddings(dataset.num_items, 384, seed)


def time_steps(context: DistillContext, method: str, config: object, device: str) -> tuple[float, float, int]:
    seconds: list[float] = []
    subset: list[int] = []

    def record(event: object) -> None:
        if isinstance(event, StepEvent):
            seconds.append(event.seconds)
            subset.append(event.subset)

    with PeakMemory(resolve_device(device)) as memory:
        distill(context, method, 20, config, on_event=record)
    # Per-step time from the second half of the run (the first steps include warm-up).
    half = len(seconds) // 2
    per_step = (seconds[-1] - seconds[half - 1]) / (len(seconds) - half) if half else seconds[-1]
    return per_step, memory.peak_mb, max(subset) if subset else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[5000, 20000, 80000])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"# step cost, {time.strftime('%Y-%m-%d')}, {device} ({platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads), torch {torch.__version__}\n")
    print("| catalogue M | method | items scored per step | s / step | peak MB |")
    print("| --- | --- | --- | --- | --- |")
    for size in args.sizes:
        dataset, text = synthetic_workload(size)
        context = DistillContext(dataset, text, ModelConfig(max_len=20), TrainConfig(epochs=2, device=args.device))
        context.expert()
        base = dict(steps=args.steps, log_every=1, checkpoint_every=0, device=args.device, reset_every=5)
        foster, bptt = get_method("foster"), get_method("bptt")
        runs = [("foster, N=512", "foster", foster.config(base, subset_size=512)),
                ("foster, full catalogue", "foster", foster.config(base, subset_size=0)),
                ("bptt, K=5, N=512", "bptt", bptt.config(base, subset_size=512, unroll_steps=5))]
        time_steps(context, *runs[0][1:], args.device)  # warm-up: the allocator's first growth is not a step's cost
        for label, method, config in runs:
            per_step, peak, scored = time_steps(context, method, config, args.device)
            print(f"| {dataset.num_items:,} | {label} | {scored or dataset.num_items:,} | {per_step:.3f} | {peak:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
