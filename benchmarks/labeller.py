"""The expert against its refit on the whole training split (the labeller), as models and as labellers.

Prints and writes (--out) the test NDCG@10 of the expert and of the labeller themselves (diagnostics: no
method reads them), then, for each, the test NDCG@10 of the bench's students on `teacher`'s data and on
FOSTER's start at one budget, labelled by that model: the same real sequences, only the labels differ.

    python -m benchmarks.labeller --dataset ../shared/data/amazon_scientific --budget 20 --out labeller.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from foster_core.core.atomic import atomic_write_json
from foster_core.core.data import DataConfig
from foster_core.core.evaluation import evaluate_model
from foster_core.core.loaders import load_dataset
from foster_core.core.model import ModelConfig
from foster_core.core.training import TrainConfig
from foster_core.methods.foster import FosterConfig
from foster_core.methods.sparse import packs
from foster_core.methods.teacher import LABEL_EXPERTS, TeacherConfig, distill_teacher, labelled_selection
from foster_core.runs.evaluator import StudentConfig, evaluate_synthetic
from foster_core.runs.experiment import build_context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="movielens")
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3, help="students per data")
    parser.add_argument("--time-limit", type=float, default=0.0, help="the expert's time limit, as the bench's")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    dataset = load_dataset(args.dataset, DataConfig())
    context = build_context(dataset, ModelConfig(), TrainConfig(time_limit_s=args.time_limit))
    models = {"holdout": context.expert(), "refit": context.labeller()}
    report = {"dataset": dataset.name, "budget": args.budget, "expert_seconds": context.expert_seconds,
              "labeller_seconds": context.labeller_seconds, "epochs": context.labeller_config().epochs,
              "models": {name: evaluate_model(model, context.split, "test") for name, model in models.items()},
              "rows": []}
    for name, metrics in report["models"].items():
        print(f"{name} model itself: test NDCG@10 {metrics['ndcg@10']:.4f}", flush=True)
    student = StudentConfig(seeds=tuple(range(args.seeds)))
    for label_expert in LABEL_EXPERTS:
        foster = FosterConfig(label_expert=label_expert)
        data = {"teacher": distill_teacher(context, args.budget, TeacherConfig(label_expert=label_expert)),
                "foster_start": labelled_selection(context, args.budget, foster, foster.init_selection,
                                                   packed=packs(context, foster.init_packing))}
        for method, synthetic in data.items():
            test = evaluate_synthetic(context, synthetic, student)["test"]
            report["rows"].append({"method": method, "label_expert": label_expert, **test})
            print(f"{method}, labels by {label_expert}: NDCG@10 {test['ndcg@10']['mean']:.4f} ± "
                  f"{test['ndcg@10']['std']:.4f}", flush=True)
            if args.out:
                atomic_write_json(args.out, report)


if __name__ == "__main__":
    main()
