"""Does the training split's holdout rank synthetic data the way the test does? A diagnostic for the
development datasets only: it reads test metrics, so nothing it finds may choose anything in a method.

FOSTER keeps the S whose quick student scores best on the training split's holdout (`select_on_holdout`).
Before that score may also choose between different starts (FOSTER's K-Center start or `teacher`'s data),
it has to order S as the test does. Here, for one dataset and budget:

CANDIDATES: FOSTER's own candidates (the S at each step its selection scores, captured from one bench-config
run, seed 0), `teacher`'s S, and each other method's S (seed 0, the bench's configs).
SCORES per candidate:
  quick        the holdout NDCG@10 of FOSTER's quick student as it runs today (one seed, its epoch budget)
  quick_mean   the mean of --quick-seeds such quick students (seeds 0, 1, ...): "several quick students"
  long         the holdout NDCG@10 of one student trained as the evaluator trains (epochs, patience), seed 0
  test         the evaluator's students (StudentConfig, --seeds): test NDCG@10 mean and std
AGREEMENT, per holdout score, over the candidates:
  kendall_tau  Kendall's tau-b between the holdout score and the test mean
  pairs        of the candidate pairs whose test means differ by more than the larger of their two stds, the
               share the holdout orders the same way
  regret       test mean of the best candidate minus that of the holdout's pick, among FOSTER's candidates
               alone (today's choice) and among them plus `teacher`'s S (a choice of start)

    OMP_NUM_THREADS=1 python -m benchmarks.holdout_agreement --dataset ../shared/data/amazon_scientific --budget 20
    python -m benchmarks.holdout_agreement --dataset movielens --budget 20 --summary-only

The candidates' S are kept in --work, and the JSON is written after every candidate; --resume goes on from both.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from foster_core.core.atomic import atomic_write_json
from foster_core.core.config import to_dict
from foster_core.core.data import DataConfig
from foster_core.core.loaders import load_dataset
from foster_core.core.model import ModelConfig
from foster_core.core.synthetic import SyntheticData
from foster_core.core.text_encoder import default_cache_dir
from foster_core.core.training import TrainConfig, train_on_synthetic
from foster_core.methods import foster
from foster_core.methods.registry import all_methods, get_method
from foster_core.runs.evaluator import StudentConfig, evaluate_synthetic
from foster_core.runs.experiment import build_context

METRIC = "ndcg@10"
SCORES = ("quick", "quick_mean", "long")
SELECTING = "foster"  # the method whose holdout selection is examined
REFERENCE = "teacher"  # the other start that selection could choose


def kendall(xs: list[float], ys: list[float]) -> float | None:
    """Kendall's tau-b (ties in either list handled); None when either list is constant."""
    if len(xs) < 2 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    return float(kendalltau(xs, ys).statistic)


def pair_agreement(holdout: list[float], test_mean: list[float], test_std: list[float]) -> tuple[float | None, int]:
    """Share of the pairs whose test means differ by more than the larger of their stds that the holdout
    orders the same way (a holdout tie counts as disagreement), and how many such pairs there are."""
    agree = total = 0
    for i in range(len(holdout)):
        for j in range(i + 1, len(holdout)):
            gap = test_mean[i] - test_mean[j]
            if abs(gap) <= max(test_std[i], test_std[j]):
                continue
            total += 1
            agree += (holdout[i] - holdout[j]) * gap > 0
    return (agree / total if total else None), total


def regret(holdout: list[float], test_mean: list[float]) -> float:
    """Test mean of the best candidate minus that of the holdout's pick (the first of equal holdout scores)."""
    return float(max(test_mean) - test_mean[int(np.argmax(holdout))])


def agreement(candidates: list[dict]) -> dict:
    """The agreement of each holdout score with the test, over the candidates that have every score."""
    done = [c for c in candidates if "test" in c and all(s in c for s in SCORES)]
    means = [c["test"]["mean"] for c in done]
    stds = [c["test"]["std"] for c in done]
    own = [i for i, c in enumerate(done) if c["method"] == SELECTING]
    starts = own + [i for i, c in enumerate(done) if c["method"] == REFERENCE]
    out = {"candidates": len(done)}
    for score in SCORES:
        values = [c[score] for c in done]
        share, pairs = pair_agreement(values, means, stds)
        out[score] = {"kendall_tau": kendall(values, means), "pairs_agreeing": share, "pairs": pairs,
                      "regret_own": regret([values[i] for i in own], [means[i] for i in own]) if own else None,
                      "regret_with_reference": (regret([values[i] for i in starts], [means[i] for i in starts])
                                                if len(starts) > len(own) else None)}
    return out


def table(report: dict) -> str:
    lines = ["| candidate | quick (today) | quick, mean of seeds | long student | test NDCG@10 |",
             "| --- | --- | --- | --- | --- |"]
    for c in report["candidates"]:
        cells = [f"{c[s]:.4f}" if s in c else "–" for s in SCORES]
        test = f"{c['test']['mean']:.4f} ± {c['test']['std']:.4f}" if "test" in c else "–"
        lines.append(f"| {c['name']} | " + " | ".join(cells) + f" | {test} |")
    summary = report.get("agreement", {})
    lines += ["", "| holdout score | Kendall tau | pairs ordered as the test (pairs) | regret, FOSTER's candidates "
              "| regret, with teacher's S |", "| --- | --- | --- | --- | --- |"]

    def num(x: float | None) -> str:
        return "–" if x is None else f"{x:.3f}"

    for score in SCORES:
        s = summary.get(score)
        if s:
            lines.append(f"| {score} | {num(s['kendall_tau'])} | {num(s['pairs_agreeing'])} ({s['pairs']}) | "
                         f"{num(s['regret_own'])} | {num(s['regret_with_reference'])} |")
    return "\n".join(lines)


def make_candidates(context, budget: int, methods: list[str], work: Path) -> list[tuple[str, str, Path]]:
    """(name, method, file) for each candidate; each S is made once and kept in `work`."""
    work.mkdir(parents=True, exist_ok=True)
    out = []
    if SELECTING in methods:
        files = sorted(work.glob(f"{SELECTING}_step*.pt"), key=lambda p: int(p.stem.split("step")[1]))
        if not files:
            captured = []
            original = foster.select_on_holdout

            def capture(ctx, candidates, config, on_event):
                captured.extend(candidates)
                return candidates[-1][1]

            foster.select_on_holdout = capture  # the run's candidates, not its choice
            try:
                get_method(SELECTING).distill(context, budget, get_method(SELECTING).config({"seed": 0}))
            finally:
                foster.select_on_holdout = original
            for step, data in captured:
                data.save(work / f"{SELECTING}_step{step:04d}.pt")
            files = sorted(work.glob(f"{SELECTING}_step*.pt"), key=lambda p: int(p.stem.split("step")[1]))
        out += [(f"{SELECTING} step {int(p.stem.split('step')[1])}", SELECTING, p) for p in files]
    for method in methods:
        if method == SELECTING:
            continue
        path = work / f"{method}.pt"
        if not path.is_file():
            spec = get_method(method)
            spec.distill(context, budget, spec.config({"seed": 0})).save(path)
        out.append((method, method, path))
    return out


def holdout_student(context, synthetic: SyntheticData, cfg: TrainConfig) -> float:
    result = train_on_synthetic(context.text_embeddings, synthetic, context.holdout, context.model_cfg, cfg)
    return float(result.best_valid[METRIC])


def fill_scores(context, synthetic: SyntheticData, entry: dict, quick_seeds: int, student: StudentConfig) -> None:
    """Fill in the candidate's missing scores (each written as soon as it exists, by the caller)."""
    config = get_method(SELECTING).config({"seed": 0})
    if "quick_seeds" not in entry:
        entry["quick_seeds"] = []
    while len(entry["quick_seeds"]) < quick_seeds:  # FOSTER's own quick student, seed by seed
        seeded = replace(config, seed=len(entry["quick_seeds"]))
        entry["quick_seeds"].append(foster.holdout_score(context, synthetic, seeded))
        yield
    entry["quick"], entry["quick_mean"] = entry["quick_seeds"][0], float(np.mean(entry["quick_seeds"]))
    if "long" not in entry:
        cfg = TrainConfig(epochs=student.epochs, batch_size=max(1, synthetic.num_sequences), lr=student.lr,
                          patience=student.patience, eval_every=student.eval_every, seed=0, device=student.device)
        entry["long"] = holdout_student(context, synthetic, cfg)
        yield
    if "test" not in entry:
        results = evaluate_synthetic(context, synthetic, student)
        entry["test"] = results["test"][METRIC]
        entry["test_per_seed"] = [t[METRIC] for t in results["per_seed_test"]]
        yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="../shared/data/amazon_scientific",
                        help="a development dataset folder, or 'movielens' (bundled)")
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--methods", nargs="+", default=[m.name for m in all_methods() if m.in_default_bench],
                        help=f"methods whose S are candidates ({SELECTING}: each S its selection scores)")
    parser.add_argument("--quick-seeds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3, help="the evaluator's test students per candidate")
    parser.add_argument("--work", type=Path, help="where the candidates' S are kept "
                        "(default: <cache>/holdout_agreement/<dataset>_n<budget>)")
    parser.add_argument("--out", type=Path, help="default docs/results/holdout_agreement_<dataset>_n<budget>.json")
    parser.add_argument("--resume", action="store_true", help="keep what --out and --work hold already")
    parser.add_argument("--summary-only", action="store_true", help="print the table of --out; train nothing")
    args = parser.parse_args()
    name = Path(args.dataset).name if Path(args.dataset).is_dir() else args.dataset
    out = args.out or Path(f"docs/results/holdout_agreement_{name}_n{args.budget}.json")
    work = args.work or default_cache_dir() / "holdout_agreement" / f"{name}_n{args.budget}"
    student = StudentConfig(seeds=tuple(range(args.seeds)))
    report = json.loads(out.read_text()) if (args.resume or args.summary_only) and out.is_file() else {
        "dataset": name, "budget": args.budget, "student": to_dict(student), "quick_seeds": args.quick_seeds,
        "quick_student": {"epochs": get_method(SELECTING).config().select_epochs}, "candidates": []}

    def write() -> None:
        report["agreement"] = agreement(report["candidates"])
        report["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        atomic_write_json(out, report)

    if not args.summary_only:
        dataset = load_dataset(args.dataset, DataConfig())
        context = build_context(dataset, ModelConfig(), TrainConfig())
        report["stats"] = dataset.stats()
        print(f"{dataset.name}: {dataset.num_users} users, {dataset.num_items} items", flush=True)
        by_name = {c["name"]: c for c in report["candidates"]}
        for cand_name, method, path in make_candidates(context, args.budget, args.methods, work):
            entry = by_name.get(cand_name)
            if entry is None:
                entry = {"name": cand_name, "method": method}
                report["candidates"].append(entry)
                by_name[cand_name] = entry
            for _ in fill_scores(context, SyntheticData.load(path), entry, args.quick_seeds, student):
                write()
            print(f"{cand_name}: quick {entry['quick']:.4f}, mean {entry['quick_mean']:.4f}, long {entry['long']:.4f}, "
                  f"test {entry['test']['mean']:.4f} ± {entry['test']['std']:.4f}", flush=True)
    write()
    print(table(report))


if __name__ == "__main__":
    main()
