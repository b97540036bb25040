"""Transfer: the same distilled data trains other recommenders. Each student architecture of
core/architectures.py trains on each method's synthetic data and on the full training split, under the one
protocol (early stopping on validation, full-ranking test), and is compared with its own full-data training.

The synthetic data comes from finished runs of a run store (`--runs`, e.g. a bench's runs: distilled once,
as a user would) and from methods distilled here with their defaults (`--methods`). Full-data students are
cached per architecture beside the expert, as the bench's are. `--full-seeds` trains fewer full-data
students than synthetic ones, for architectures whose full-data training takes hours on a CPU; the table
then says how many. Prints the table (`python -m foster_core bench --students` prints the same one) and
writes JSON; no assertions.

    python -m benchmarks.transfer --dataset ../shared/data/amazon_scientific --runs-dir runs --runs RUN_ID ... \
        --methods kcenter --budget 20 --students sasrec gru4rec id-sasrec --out docs/results/transfer.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from foster_core.cli import format_architecture_table
from foster_core.core.architectures import architecture_names
from foster_core.core.atomic import atomic_write_json
from foster_core.core.loaders import load_dataset
from foster_core.core.synthetic import SyntheticData
from foster_core.core.training import TrainConfig
from foster_core.methods.registry import distill, method_names
from foster_core.runs.evaluator import StudentConfig, architecture_rows, evaluate_full, evaluate_synthetic
from foster_core.runs.experiment import build_context, machine_description
from foster_core.core.runtime import resolve_device
from foster_core.runs.run_store import FULL, RunStore, same_setup, utc_timestamp
from foster_core.runs.runner import run_config


def say(line: str) -> None:
    print(f"  {line}", flush=True)


def rows_as_results(rows: list[dict]) -> list[tuple[str, int, dict]]:
    """The synthetic-data rows of a report as (method, budget, results) with what architecture_rows reads."""
    grouped: dict[tuple[str, int], dict] = {}
    for row in rows:
        if row["method"] != "full":
            grouped.setdefault((row["method"], row["budget"]), {})[row["architecture"]] = {
                "test": {k: row[k] for k in ("ndcg@10", "recall@10")}, "per_seed_test": [{}] * (row["seeds"] or 0),
                "student_train_seconds": row["student_train_seconds"]}
    return [(method, budget, {"by_architecture": archs}) for (method, budget), archs in grouped.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--runs-dir", type=Path, help="the run store holding --runs")
    parser.add_argument("--runs", nargs="*", default=[], help="finished runs whose synthetic data is evaluated")
    parser.add_argument("--methods", nargs="*", default=[], choices=method_names(), help="methods distilled here")
    parser.add_argument("--budget", type=int, default=20, help="budget of the methods distilled here")
    parser.add_argument("--students", nargs="+", default=architecture_names(), choices=architecture_names())
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--full-seeds", type=int, default=None, help="full-data students per architecture "
                        "(default: --seeds)")
    parser.add_argument("--rescore", type=Path, help="an earlier report of this script: keep its synthetic-data "
                        "rows, and take the full-data rows and every ratio anew (after more full-data seeds)")
    parser.add_argument("--time-limit", type=float, default=TrainConfig.time_limit_s, metavar="SECONDS",
                        help="the expert's and full-data students' time limit, as the bench's --time-limit "
                             "(the runs must have been made with the same)")
    parser.add_argument("--out")
    args = parser.parse_args()

    context = build_context(load_dataset(args.dataset), expert_cfg=TrainConfig(time_limit_s=args.time_limit))
    context.expert()
    student = StudentConfig(seeds=tuple(range(args.seeds)), architectures=tuple(args.students))
    full_student = StudentConfig(seeds=tuple(range(args.full_seeds or args.seeds)), architectures=student.architectures)
    sources: list[tuple[str, int, SyntheticData]] = []
    store = RunStore(args.runs_dir) if args.runs else None
    for run_id in args.runs:
        run = store.get(run_id)
        # The same dataset, recommender and expert (the students here may differ from the run's own).
        if not same_setup({**run.config, "student": None}, {**run_config(context, FULL, None, None, student),
                                                             "student": None}):
            raise SystemExit(f"run {run_id} was not made with this dataset, model and expert")
        sources.append((run.config["method"], run.config["budget"], SyntheticData.load(run.synthetic_path)))
    for method in args.methods:
        print(f"- distilling {method} n={args.budget}", flush=True)
        sources.append((method, args.budget, distill(context, method, args.budget)))

    results = rows_as_results(json.loads(args.rescore.read_text())["by_architecture"]) if args.rescore else []
    for method, budget, synthetic in sources:  # the cheap students first, the full-data ones last
        print(f"- students on {method} n={budget}", flush=True)
        results.append((method, budget, evaluate_synthetic(context, synthetic, student, say)))
    print("- full-data students", flush=True)
    full = evaluate_full(context, full_student, say)
    rows = architecture_rows("full", None, full, full)
    for method, budget, result in results:
        rows += architecture_rows(method, budget, result, full)
    report = {"created": utc_timestamp(), "dataset": context.dataset.name, "stats": context.dataset.stats(),
              "seeds": args.seeds, "full_seeds": args.full_seeds or args.seeds,
              "machine": machine_description(resolve_device(student.device)), "torch": torch.__version__,
              "by_architecture": rows}
    print(f"\n{context.dataset.name}: {args.seeds} students per row"
          + (f" ({report['full_seeds']} per full-data row)" if args.full_seeds else "")
          + f"; {report['machine']}\n")
    print(format_architecture_table(report))
    if args.out:
        atomic_write_json(args.out, report)
        print(f"Results written to {args.out}")


if __name__ == "__main__":
    main()
