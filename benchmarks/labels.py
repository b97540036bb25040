"""Label settings (support, temperature, prefix exclusion) for `teacher` and FOSTER's start, chosen on the
training split's holdout; test NDCG@10 only for the record.

Each label setting is `support,temperature,exclude` (exclude: on = leave each position's prefix out of its
label). For every setting and seed s (0 .. --seeds-1): `teacher`'s data and FOSTER's start (K-Center
sequences, packed as FOSTER packs them, with the expert's labels: what the label settings change; the
S-updates then start from it) are made with seed s and scored by FOSTER's quick student (seed s) on the
holdout. With --test, seed 0's data of each is also scored on the test split by the bench's students.
Also per data: the share of positions whose most probable label is the position's own input item, and the
label mass on the position's prefix (items evaluation would mask).

    python -m benchmarks.labels --dataset movielens --labels 16,1,off 16,1,on --out labels.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from foster_core.core.atomic import atomic_write_json
from foster_core.core.data import PAD_ID, DataConfig
from foster_core.core.loaders import load_dataset
from foster_core.core.model import ModelConfig
from foster_core.core.synthetic import SyntheticData
from foster_core.core.training import TrainConfig
from foster_core.methods.foster import FosterConfig, holdout_score
from foster_core.methods.sparse import packs
from foster_core.methods.teacher import (TeacherConfig, distill_teacher, expert_labels, labelled_selection,
                                         prefix_items)
from foster_core.runs.evaluator import StudentConfig, evaluate_synthetic
from foster_core.runs.experiment import build_context


def parse_label(text: str) -> dict:
    support, temperature, exclude = text.split(",")
    if exclude not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"exclude must be on or off, not {exclude!r}")
    return {"label_support": int(support), "label_temperature": float(temperature), "exclude_prefix": exclude == "on"}


def prefix_label_stats(data: SyntheticData) -> dict:
    """Share of real positions whose top label is their own input item; mean label mass on prefix items."""
    inputs = prefix_items(data)
    top = data.label_items.gather(-1, data.label_probs.argmax(-1, keepdim=True)).squeeze(-1)
    own = (top == inputs)[data.mask]
    masses = []
    for row in range(data.num_sequences):
        seen: set[int] = set()
        for t in range(data.mask.shape[1]):
            if inputs[row, t] == PAD_ID:
                continue
            seen.add(int(inputs[row, t]))
            hit = torch.tensor([int(i) in seen for i in data.label_items[row, t]])
            masses.append(float(data.label_probs[row, t][hit].sum()))
    return {"own_input_top_share": float(own.float().mean()), "prefix_mass": float(np.mean(masses))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="movielens")
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--labels", nargs="+", type=parse_label, default=[parse_label("16,1,off")])
    parser.add_argument("--test", action="store_true", help="also score seed 0's data on the test split (3 students)")
    parser.add_argument("--truncate-histories", action="store_true",
                        help="keep each user's last 50 items only (the loading before whole histories)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    dataset = load_dataset(args.dataset, DataConfig(truncate_histories=args.truncate_histories))
    context = build_context(dataset, ModelConfig(), TrainConfig())
    context.expert()
    print(f"{dataset.name}: {dataset.num_users} users, {dataset.num_items} items; expert {context.expert_seconds:.0f} s",
          flush=True)
    report = {"dataset": dataset.name, "budget": args.budget, "truncate_histories": args.truncate_histories,
              "expert_seconds": context.expert_seconds, "rows": []}
    for method in ("teacher", "foster_start"):  # one method's settings side by side first
        for label in args.labels:
            settings = {k: v for k, v in label.items() if k != "exclude_prefix"}  # the configs' label fields
            row = {"method": method, **label, "holdout": [], "seconds": 0.0}
            started = time.perf_counter()
            for seed in range(args.seeds):
                if method == "teacher":
                    config = TeacherConfig(seed=seed, **settings)
                    data = distill_teacher(context, args.budget, config)
                else:
                    config = FosterConfig(seed=seed, **settings)
                    data = labelled_selection(context, args.budget, config, config.init_selection,
                                              packed=packs(context, config.init_packing))
                if label["exclude_prefix"]:  # the same inputs, relabelled without each position's prefix
                    data = expert_labels(context, data, config, exclude_prefix=True)
                row["holdout"].append(holdout_score(context, data, FosterConfig(seed=seed)))
                if seed == 0:
                    row.update(prefix_label_stats(data))
                    if args.test:
                        row["test"] = evaluate_synthetic(context, data, StudentConfig())["test"]
            row["seconds"] = time.perf_counter() - started
            report["rows"].append(row)
            if args.out:
                atomic_write_json(args.out, report)
            test = f", test {row['test']['ndcg@10']['mean']:.4f} ± {row['test']['ndcg@10']['std']:.4f}" if "test" in row else ""
            print(f"{method} {label}: holdout {np.mean(row['holdout']):.4f} ± {np.std(row['holdout']):.4f} "
                  f"{[round(h, 4) for h in row['holdout']]}{test}; own-input top {row['own_input_top_share']:.3f}, "
                  f"prefix mass {row['prefix_mass']:.3f}", flush=True)


if __name__ == "__main__":
    main()
