"""FOSTER minus each component at one budget, every variant scored by the same students as the bench.

Variants (ids for --variants):
  all        FOSTER with its defaults
  subset     - item subset sampling (softmax over the full catalogue)
  reset      - trajectory-anchored reset (R = 0)
  reg        - co-occurrence regulariser (mu = 0)
  select     - holdout selection (S of the last step; teacher's data is then no candidate either)
  teacher_candidate  - teacher's data as a candidate of the holdout selection (only S's own checkpoints)
  packing    - packed start (one real sequence per synthetic sequence, left-padded)
  kcenter    - random start: FOSTER started from K-Center sequences instead
  labeller   - the refit labeller: the data handed out keeps the expert's own labels (label_expert "holdout")
  start      - all updates: FOSTER's start itself (selected real sequences, expert labels)
  start_joined  the start with its packed rows read as one sequence each (segments dropped): what keeping
             a row's users apart adds
  weak       FOSTER from a weak start: random real sequences without their last item (the holdout's target),
             labels the real next items (init_labels "real")
  weak_start that weak start itself, no updates (FOSTER's soft start with init_labels "real")
  teacher    the `teacher` baseline (random real sequences, the expert's labels)

`weak` against `weak_start` is the mechanism test: do the updates climb from a start that holds no expert
knowledge towards `teacher`?

Writes JSON (--out) and prints a markdown table; no assertions. Variants can be split across processes
(--variants) and their JSON files merged with --merge.

    python -m benchmarks.ablation --dataset ../shared/data/amazon_scientific --budget 20 --out ablation.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

from foster_core.core.atomic import atomic_write_json
from foster_core.core.data import DataConfig
from foster_core.core.loaders import load_dataset
from foster_core.core.model import ModelConfig
from foster_core.core.training import TrainConfig
from foster_core.methods import CandidateSelected, DistillContext
from foster_core.methods.foster import FosterConfig
from foster_core.methods.registry import distill
from foster_core.methods.sparse import packs, starting_point
from foster_core.methods.teacher import labelled_selection
from foster_core.runs.evaluator import StudentConfig, evaluate_full, evaluate_synthetic
from foster_core.runs.experiment import build_context

VARIANTS = {
    "all": ("FOSTER (all components)", {}),
    "subset": ("- item subset sampling (full catalogue)", {"subset_size": 0}),
    "reset": ("- trajectory reset", {"reset_every": 0}),
    "reg": ("- regulariser L_r", {"reg_weight": 0.0}),
    "select": ("- holdout selection (S of the last step)", {"select_every": 0}),
    "teacher_candidate": ("- teacher's data as a candidate (S's own checkpoints only)", {"teacher_candidate": False}),
    "packing": ("- packed start (one real sequence per row)", {"init_packing": "off"}),
    "kcenter": ("- random start (K-Center sequences)", {"init_selection": "kcenter"}),
    "labeller": ("- the refit labeller (the expert's own labels)", {"label_expert": "holdout"}),
    "start": ("- all updates (the start itself)", None),
    "start_joined": ("the start, each packed row read as one sequence (no segments)", "start_joined"),
    "weak": ("FOSTER from a weak start (random sequences, real next items)",
             {"init_selection": "random", "init_labels": "real"}),
    "weak_start": ("the weak start itself (no updates)", "weak_start"),
    "teacher": ("teacher (random sequences, expert labels)", "teacher"),
}
METRICS = ("ndcg@10", "recall@10")


def run_variant(context: DistillContext, budget: int, base: FosterConfig, student: StudentConfig, variant: str) -> dict:
    label, changes = VARIANTS[variant]
    events: list = []
    started = time.perf_counter()
    if changes in (None, "start_joined"):
        data = labelled_selection(context, budget, base, base.init_selection, packed=packs(context, base.init_packing))
        if changes:  # students then read a row's users as one history (attention and positions run across them)
            data = replace(data, segments=None)
    elif changes == "weak_start":
        # FOSTER's step-0 S for the weak start, as its students would see it.
        data = starting_point(context, budget, replace(base, **VARIANTS["weak"][1]), None)[1].to_data()
    elif changes == "teacher":
        data = distill(context, "teacher", budget)
    else:
        data = distill(context, "foster", budget, replace(base, **changes), on_event=events.append)
    seconds = time.perf_counter() - started
    results = evaluate_synthetic(context, data, student)
    # The S the holdout selection kept: a step, or the method whose data was kept instead.
    kept = [e.kept or e.step for e in events if isinstance(e, CandidateSelected)]
    return {"variant": variant, "label": label, "distill_seconds": seconds, "kept_step": kept[0] if kept else None,
            **{k: results["test"][k] for k in results["test"]}, "coverage": results["coverage"]}


def table(report: dict) -> str:
    full = report["full"]
    lines = [f"{report['dataset']}, n = {report['budget']}; full data NDCG@10 "
             f"{full['ndcg@10']['mean']:.4f} ± {full['ndcg@10']['std']:.4f}", "",
             "| variant | NDCG@10 | Recall@10 | ratio | distill s | step kept |", "| --- | --- | --- | --- | --- | --- |"]
    for row in sorted(report["rows"], key=lambda r: list(VARIANTS).index(r["variant"])):
        cells = [f"{row[m]['mean']:.4f} ± {row[m]['std']:.4f}" for m in METRICS]
        ratio = row["ndcg@10"]["mean"] / full["ndcg@10"]["mean"]
        kept = row.get("kept_step")  # absent from reports written before it was recorded
        lines.append(f"| {row['label']} | {cells[0]} | {cells[1]} | {ratio:.2f} | {row['distill_seconds']:.0f} | "
                     f"{'' if kept is None else kept} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="movielens")
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--full-seeds", type=int, default=None,
                        help="full-data students (default: --seeds), for data whose full-data training takes hours")
    parser.add_argument("--time-limit", type=float, default=TrainConfig.time_limit_s, metavar="SECONDS",
                        help="the expert's and full-data students' time limit, as the bench's --time-limit")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--merge", nargs="+", type=Path, help="merge these ablation JSON files into --out")
    args = parser.parse_args()
    if args.merge:
        reports = [json.loads(p.read_text()) for p in args.merge]
        merged = {**reports[0], "rows": [row for r in reports for row in r["rows"]]}
        if args.out:
            atomic_write_json(args.out, merged)
        print(table(merged))
        return

    dataset = load_dataset(args.dataset, DataConfig())
    context = build_context(dataset, ModelConfig(), TrainConfig(time_limit_s=args.time_limit))
    student = StudentConfig(seeds=tuple(range(args.seeds)))
    full_student = StudentConfig(seeds=tuple(range(args.full_seeds or args.seeds)))
    base = FosterConfig()
    report = {"dataset": dataset.name, "budget": args.budget, "config": asdict(base), "student": asdict(student),
              "full": evaluate_full(context, full_student)["test"], "full_seeds": len(full_student.seeds), "rows": []}
    for variant in args.variants:
        report["rows"].append(run_variant(context, args.budget, base, student, variant))
        if args.out:  # after every variant, so a long run killed part-way keeps what it measured
            atomic_write_json(args.out, report)
        print(f"{variant}: {report['rows'][-1]['ndcg@10']['mean']:.4f}", flush=True)
    print(table(report))


if __name__ == "__main__":
    main()
