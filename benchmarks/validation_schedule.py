"""What a distilled student costs end to end under other validation schedules, replayed on recorded curves.

RECORD: each method's synthetic data is made once (seed 0, through `run_method`, as the bench makes it), and
students (seeds 0, 1, 2) train on it with the student's usual config except patience = epochs, so all 300
epochs run; at every validation (every 5 epochs) the validation metrics (what early stopping reads) and the
test NDCG@10 of the model at that point are kept. The test pass is the benchmark's own (the loop's
`evaluate_model` is wrapped here, with its time kept apart), so a student's unit costs are its seconds per
training step and per validation pass alone.
REPLAY: for each rule (TrainConfig epochs / eval_every / patience) the real
`run_epochs` runs with a fake training epoch and the recorded validation metrics, so the real stopping logic
chooses the epoch; that epoch's recorded test NDCG@10, the steps and the validations are read off. Modelled
student seconds = steps x step_s + validations x valid_s (the method's mean unit costs); the speed-up is the
full-data student's end-to-end `student_seconds` (steps, validations and its test pass; read from a bench
JSON, not trained here) over that. "oracle" is the best recorded test point, for reference only.

    OMP_NUM_THREADS=1 python -m benchmarks.validation_schedule --dataset ../shared/data/amazon_scientific \
        --budget 20 --methods random kcenter teacher foster
    python -m benchmarks.validation_schedule --replay-only --rules 300,10,60   # new rules, no training

USERS: every validation's per-user ranks are kept too (an .npz in the cache folder, --ranks), so the current
rule is also replayed with validation on a fixed sample of k users (`--valid-users`, drawn as the training
loop's `valid_users` draws them), its cost from validation passes on k users timed after each student.

The JSON is written after each recorded student; --resume keeps the students an earlier (killed) run recorded.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from foster_core.core import training
from foster_core.core.atomic import atomic_write_json
from foster_core.core.config import to_dict
from foster_core.core.atomic import atomic_write
from foster_core.core.data import DataConfig, sample_user_indices
from foster_core.core.evaluation import metrics_from_ranks, model_ranks
from foster_core.core.loaders import load_dataset
from foster_core.core.model import ModelConfig
from foster_core.core.text_encoder import default_cache_dir
from foster_core.core.training import TrainConfig, run_epochs, train_on_synthetic
from foster_core.methods.registry import get_method
from foster_core.runs.evaluator import StudentConfig
from foster_core.runs.experiment import build_context
from foster_core.runs.runner import run_method

METRIC = "ndcg@10"
CURRENT = (300, 5, 60)
RULES = [CURRENT, (300, 10, 60), (300, 20, 60), (300, 25, 75), (200, 10, 60), (150, 10, 60), (150, 25, 50),
         (100, 10, 40),
         # Hard-label coresets peak at epoch 5 and collapse by 10; `teacher` dips after epoch 5 and climbs
         # again after 30: so validation every 5 epochs and 60 of patience, over fewer epochs.
         (150, 5, 60), (120, 5, 60), (100, 5, 60), (80, 5, 60), (300, 5, 40)]
UNITS = (("steps", "step_s"), ("validations", "valid_s"))
USERS = (1000, 2000, 4000)  # validation users replayed by default (what a pass on them costs is timed)
FULL_FIELD = "student_seconds"  # the full-data row's steps + validation passes + test pass, per student


def rule_name(rule: tuple[int, ...]) -> str:
    return "epochs {} / every {} / patience {}".format(*rule)


def parse_rule(text: str) -> tuple[int, int, int]:
    rule = tuple(int(x) for x in text.split(","))
    if len(rule) != 3:
        raise argparse.ArgumentTypeError(f"a rule is epochs,eval_every,patience, not {text!r}")
    return rule  # type: ignore[return-value]


def record_student(context, synthetic, seed: int, student: StudentConfig, users: tuple[int, ...] = USERS) -> dict:
    """One student trained for all `student.epochs` (patience = epochs), with its curve of validation
    metrics and test metrics at every validation, and its unit costs. `valid_ranks` (validations, users)
    holds every validation's per-user ranks; `valid_s_by_users` the seconds of a validation pass on a
    sample of k users, for each k in `users`."""
    # The TrainConfig `evaluate_synthetic` builds, with patience = epochs so that no early stop cuts the curve.
    cfg = TrainConfig(epochs=student.epochs, batch_size=max(1, synthetic.num_sequences), lr=student.lr,
                      patience=student.epochs, eval_every=student.eval_every, seed=seed, device=student.device)
    original, valid_s, tests, curve, ranks = training.evaluate_model, [], [], [], []

    def evaluate(model, split, which: str = "valid") -> dict:  # the loop's validation, plus a test pass
        started = time.perf_counter()
        ranks.append(model_ranks(model, split, which))
        valid = metrics_from_ranks(ranks[-1])
        valid_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        tests.append((original(model, context.split, "test"), time.perf_counter() - started))
        return valid

    def on_epoch(record: dict) -> None:
        if "valid" in record:
            curve.append({"epoch": record["epoch"], "valid": record["valid"], "test": tests[-1][0]})

    training.evaluate_model = evaluate
    try:
        result = train_on_synthetic(context.text_embeddings, synthetic, context.split, context.model_cfg, cfg,
                                    callback=on_epoch, arch=student.architectures[0])
    finally:
        training.evaluate_model = original
    by_users = {}
    for k in users:
        sample = context.split.sample_users(k)
        started = time.perf_counter()
        original(result.model, sample, "valid")
        by_users[str(k)] = time.perf_counter() - started
    return {"seed": seed, "steps": len(result.history), "step_s": result.train_seconds / len(result.history),
            "valid_s": float(np.mean(valid_s)), "test_s": float(np.mean([t for _, t in tests])),
            "valid_s_by_users": by_users, "loop_seconds": result.seconds, "curve": curve,
            "valid_ranks": torch.stack(ranks).numpy().astype(np.int32)}


def rank_key(method: str, seed: int) -> str:
    return f"{method}_seed{seed}"


def on_users(ranks: np.ndarray, users: int) -> list[dict]:
    """Each validation's metrics on the sample of `users` users the training loop would draw."""
    keep = sample_user_indices(ranks.shape[1], users)
    return [metrics_from_ranks(torch.from_numpy(r if keep is None else r[keep])) for r in ranks]


def save_ranks(path: Path, ranks: dict[str, np.ndarray]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **ranks)
    atomic_write(path, write)


def replay(curve: list[dict], rule: tuple[int, int, int], valid: list[dict] | None = None) -> dict:
    """The real loop's choice under `rule`, on a recorded curve: chosen epoch, its test metric, steps and
    validations run."""
    epochs, every, patience = rule
    points = {p["epoch"]: p for p in curve}
    seen = {p["epoch"]: v for p, v in zip(curve, valid)} if valid is not None else {e: p["valid"] for e, p in points.items()}
    cfg = TrainConfig(epochs=epochs, eval_every=every, patience=patience)
    now = [0]

    def train_epoch(epoch: int) -> dict:
        now[0] = epoch
        return {}

    def evaluate() -> dict:
        if now[0] not in points:
            raise ValueError(f"{rule_name(rule)} validates at epoch {now[0]}, which was not recorded")
        return seen[now[0]]

    history, best = run_epochs(cfg, train_epoch, evaluate, lambda: None)
    return {"epoch": best.epoch, "test": points[best.epoch]["test"][METRIC], "steps": len(history),
            "validations": sum("valid" in r for r in history)}


def summarise(report: dict, rules: list[tuple[int, int, int]], users: tuple[int, ...] = (),
              ranks: dict[str, np.ndarray] | None = None) -> list[dict]:
    """One row per method and rule (and the oracle): mean ± std (population) over the recorded students;
    and for each k in `users`, the current rule validating on k users (students whose `ranks` are kept)."""
    reference, rows, ranks = report["full_reference"], [], ranks or {}
    full_seconds = reference.get("seconds")
    for method, entry in report["methods"].items():
        students = entry["students"]
        if not students:
            continue
        units = {k: float(np.mean([s[k] for s in students])) for k in ("step_s", "valid_s", "test_s")}
        entry["unit_costs"] = units
        current = [replay(s["curve"], CURRENT) for s in students]
        floor = np.mean([r["test"] for r in current]) - np.std([r["test"] for r in current])
        current_seconds = sum(np.mean([r[k] for r in current]) * units[u] for k, u in UNITS)
        bench = reference.get("bench_seconds", {}).get(method)
        keys = [rank_key(method, s["seed"]) for s in students]
        variants = [(rule, None) for rule in rules]
        if all(k in ranks for k in keys) and all("valid_s_by_users" in s for s in students):
            variants += [(CURRENT, k) for k in users]
        for rule, k in variants:
            if k is None:
                runs, valid_s = [replay(s["curve"], rule) for s in students], units["valid_s"]
            else:
                runs = [replay(s["curve"], rule, on_users(ranks[key], k)) for s, key in zip(students, keys)]
                valid_s = float(np.mean([s["valid_s_by_users"][str(k)] for s in students]))
            tests = [r["test"] for r in runs]
            steps, validations = (float(np.mean([r[k] for r in runs])) for k, _ in UNITS)
            seconds = steps * units["step_s"] + validations * valid_s
            saving = float(current_seconds / seconds)  # against the current rule, on the same unit costs
            rows.append({"method": method, "rule": list(rule), "valid_users": k,
                         "name": rule_name(rule) + (f" / {k} users" if k else ""), "students": len(runs),
                         "test_mean": float(np.mean(tests)), "test_std": float(np.std(tests)), "tests": tests,
                         "epochs_chosen": [r["epoch"] for r in runs], "steps": steps, "validations": validations,
                         "seconds": seconds, "saving": saving, "no_loss": bool(np.mean(tests) >= floor - 1e-12),
                         "speedup": full_seconds / seconds if full_seconds else None,
                         "speedup_with_test": full_seconds / (seconds + units["test_s"]) if full_seconds else None,
                         # Unit costs move with the machine's load: the bench's own seconds for this method,
                         # from the run (and load) of the full-data row, cut by the saving.
                         "speedup_bench_scaled": full_seconds * saving / bench if full_seconds and bench else None})
        best = [max(s["curve"], key=lambda p: p["test"][METRIC]) for s in students]
        tests = [p["test"][METRIC] for p in best]
        rows.append({"method": method, "rule": None, "name": "oracle (best test point)", "students": len(best),
                     "test_mean": float(np.mean(tests)), "test_std": float(np.std(tests)), "tests": tests,
                     "epochs_chosen": [p["epoch"] for p in best]})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| method | rule (epochs/every/patience/validations) | test NDCG@10 | no loss | epochs chosen | steps | "
             "validations | student s | x current | speed-up | speed-up, bench-scaled |", "|" + " --- |" * 11]

    def times(x: float | None) -> str:
        return f"{x:.1f}x" if x else "–"

    for r in rows:
        users = [f"{r['valid_users']} users"] if r.get("valid_users") else []
        rule = "/".join(map(str, r["rule"] + users)) if r["rule"] else "oracle"
        cost = (f"{r['steps']:.0f} | {r['validations']:.1f} | {r['seconds']:.1f} | {times(r['saving'])} | "
                f"{times(r['speedup'])} | {times(r['speedup_bench_scaled'])}") if r["rule"] else " | ".join("–" * 6)
        flag = ("yes" if r["no_loss"] else "NO") if r["rule"] else "–"
        lines.append(f"| {r['method']} | {rule} | {r['test_mean']:.4f} ± {r['test_std']:.4f} | {flag} | "
                     f"{', '.join(map(str, r['epochs_chosen']))} | {cost} |")
    return "\n".join(lines)


def full_reference(path: Path | None, budget: int) -> dict:
    """The full-data student's end-to-end seconds from a bench JSON (its `full` row), and the bench's own
    student seconds of the methods it ran at this budget."""
    if path is None or not path.is_file():
        return {"file": str(path) if path else None, "field": FULL_FIELD, "seconds": None}
    rows = json.loads(path.read_text())["rows"]
    row = next((r for r in rows if r["method"] == "full"), {})
    return {"file": str(path), "field": FULL_FIELD, "seconds": row.get(FULL_FIELD),
            "train_seconds": row.get("student_train_seconds"), "eval_seconds": row.get("student_eval_seconds"),
            "bench_seconds": {r["method"]: r[FULL_FIELD] for r in rows if r.get("budget") == budget}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="../shared/data/amazon_scientific",
                        help="a dataset folder, or 'movielens' (bundled); loaded as `bench` loads it")
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--methods", nargs="+", default=["random", "kcenter", "teacher", "foster"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=StudentConfig.epochs,
                        help="epochs each student is recorded for (the students' default; more shows where they peak)")
    parser.add_argument("--rules", nargs="+", type=parse_rule, default=[],
                        help="extra rules epochs,eval_every,patience (eval_every a multiple of 5)")
    parser.add_argument("--full-json", type=Path, help="bench JSON with the full-data row, loaded as this run loads "
                        "the data (default: docs/results/bench_<dataset>_n<budget>_cost.json; none: no speed-ups)")
    parser.add_argument("--out", type=Path, help="default docs/results/validation_schedule_<dataset>_n<budget>.json")
    parser.add_argument("--resume", action="store_true", help="keep the students recorded in --out already")
    parser.add_argument("--replay-only", action="store_true", help="replay the curves in --out; train nothing")
    parser.add_argument("--valid-users", nargs="+", type=int, default=list(USERS),
                        help="validation users the current rule is also replayed with (costs timed for the defaults)")
    parser.add_argument("--ranks", type=Path, help="the per-user validation ranks, megabytes: kept out of the "
                        "repository (default: <cache>/validation_schedule/<--out's name>.npz)")
    args = parser.parse_args()
    rules = RULES + [r for r in args.rules if r not in RULES]
    name = Path(args.dataset).name if Path(args.dataset).is_dir() else args.dataset
    out = args.out or Path(f"docs/results/validation_schedule_{name}_n{args.budget}.json")
    full_json = args.full_json or Path(f"docs/results/bench_{name}_n{args.budget}_cost.json")
    student = StudentConfig(seeds=tuple(range(args.seeds)), epochs=args.epochs)
    report = json.loads(out.read_text()) if (args.resume or args.replay_only) and out.is_file() else {
        "dataset": name, "budget": args.budget, "student": to_dict(student),
        "recorded": {"epochs": student.epochs, "eval_every": student.eval_every, "patience": student.epochs},
        "methods": {}}
    report["full_reference"] = full_reference(full_json, args.budget)
    ranks_path = args.ranks or default_cache_dir() / "validation_schedule" / f"{out.stem}.npz"
    ranks = dict(np.load(ranks_path)) if (args.resume or args.replay_only) and ranks_path.is_file() else {}

    def write() -> None:
        report["rows"] = summarise(report, rules, tuple(args.valid_users), ranks)
        report["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        atomic_write_json(out, report)

    if not args.replay_only:
        dataset = load_dataset(args.dataset, DataConfig())
        context = build_context(dataset, ModelConfig(), TrainConfig())
        report["stats"] = dataset.stats()  # how the data was loaded: a full-data reference must match it
        print(f"{dataset.name}: {dataset.num_users} users, {dataset.num_items} items", flush=True)
        for method in args.methods:
            entry = report["methods"].setdefault(method, {"students": []})
            if len(entry["students"]) >= args.seeds:
                continue
            config = get_method(method).config({"seed": 0, "device": student.device})  # the bench's config
            outcome = run_method(context, method, args.budget, config, student, evaluate=False)
            synthetic, entry["distill_seconds"] = outcome.synthetic, outcome.distill_seconds
            for seed in student.seeds[len(entry["students"]):]:
                s = record_student(context, synthetic, seed, student, tuple(args.valid_users))
                ranks[rank_key(method, seed)] = s.pop("valid_ranks")
                save_ranks(ranks_path, ranks)
                entry["students"].append(s)
                print(f"{method} student {seed}: best test {max(p['test'][METRIC] for p in s['curve']):.4f}; "
                      f"step {s['step_s'] * 1000:.0f} ms, validation {s['valid_s']:.2f} s, test {s['test_s']:.2f} s",
                      flush=True)
                write()
    write()
    ref = report["full_reference"]
    print(f"full-data reference: {ref['field']} = {ref['seconds']} s ({ref['file']})")
    print(table(report["rows"]))
    keep = [r for r in rules if all(x["no_loss"] for x in report["rows"] if x["rule"] == list(r) and not x.get("valid_users"))]
    print("rules with no method below its current mean - std: " + "; ".join(map(rule_name, keep)))


if __name__ == "__main__":
    main()
