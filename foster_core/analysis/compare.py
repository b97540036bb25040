"""The comparison over the run store: one row per run, test metrics mean ± std, ratio to the matching
full-data run, costs and status (the Compare page, and a finished job's headline numbers on Distill)."""

from __future__ import annotations

import pandas as pd

from ..runs.evaluator import HEADLINE, architecture_rows, ratio_to, speed_up, student_train_seconds
from ..runs.experiment import FULL
from ..core.architectures import DEFAULT_ARCHITECTURE
from ..runs.run_store import Run, RunStore, architecture_results

MISSING = "–"  # how every table cell without a value reads


def compare_table(store: RunStore, runs: list[Run] | None = None) -> pd.DataFrame:
    """One row per run: test metrics mean ± std, ratio to the matching full-data run, costs, status.
    `runs`: the store's listing, when the caller has it already (each reference is looked up in it)."""
    rows = []
    runs = store.list() if runs is None else runs
    for run in runs:
        config, results, status = run.config, run.results, run.status
        # The headline numbers are one architecture's: the ratio and speed-up are against that architecture's
        # own full-data training, whatever the reference's own headline is.
        arch = (results or {}).get("architecture", DEFAULT_ARCHITECTURE)
        reference_numbers = full_data_numbers(store, runs, run, config, arch)
        row = {"run": run.id, "method": config.get("method"), "budget": config.get("budget"),
               "dataset": config.get("dataset"), "preset": config.get("preset", ""),
               "status": status.get("status"), "created": config.get("created", "")}
        test = (results or {}).get("test", {})
        ref_test = (reference_numbers or {}).get("test", {})
        for metric in HEADLINE:
            if metric in test:
                row[metric] = test[metric]["mean"]
                row[f"{metric} std"] = test[metric]["std"]
                if metric in ("ndcg@10", "recall@10", "recall@20") and metric in ref_test:
                    row[f"{metric} / full"] = ratio_to(test[metric]["mean"], ref_test[metric]["mean"])
        row["seeds"] = len((results or {}).get("per_seed_test", [])) or None
        row["distill s"] = (results or {}).get("distill_seconds")
        row["student train s"] = student_train_seconds(results)
        row["full-data train s"] = student_train_seconds(reference_numbers)
        row["speed-up vs full"] = speed_up(row["student train s"], row["full-data train s"], config.get("method"))
        row["coverage"] = (results or {}).get("coverage")
        row["popular share"] = (results or {}).get("popular_share")
        rows.append(row)
    return pd.DataFrame(rows)


def full_data_numbers(store: RunStore, runs: list[Run], run: Run, config: dict, arch: str) -> dict | None:
    """Architecture `arch`'s numbers in the full-data run that `run` is compared with (the newest matching one
    that trained `arch`; a full-data run is its own), or None when there is none."""
    reference = run if config.get("method") == FULL else store.find_reference(config, runs, (arch,))
    return architecture_results(reference.results).get(arch) if reference else None


def architecture_table(store: RunStore, runs: list[Run] | None = None) -> pd.DataFrame:
    """One row per (finished run, student architecture), for the runs whose students were of several
    architectures: test metrics, the ratio to the same architecture's full-data training (in the matching
    full-data run), and the training speed-up against it. Empty when no run trained several."""
    rows = []
    runs = store.list() if runs is None else runs
    for run in runs:
        config, results = run.config, run.results or {}
        if "by_architecture" not in results or run.status.get("status") != "finished":
            continue
        references = {arch: full_data_numbers(store, runs, run, config, arch) for arch in architecture_results(results)}
        references = {arch: numbers for arch, numbers in references.items() if numbers is not None}
        for row in architecture_rows(config.get("method"), config.get("budget"), results,
                                     {"by_architecture": references}):
            rows.append({"run": run.id, "dataset": config.get("dataset"), **_flat(row)})
    return pd.DataFrame(rows)


def _flat(row: dict) -> dict:
    """architecture_rows' {'mean', 'std'} metrics as 'metric' and 'metric std' columns, as compare_table's."""
    out = {}
    for key, value in row.items():
        if isinstance(value, dict) and "mean" in value:
            out[key], out[f"{key} std"] = value["mean"], value["std"]
        else:
            out[key] = value
    return out


def format_mean_std(mean, std, seeds=None) -> str:
    """'0.0412 ± 0.0031'; '0.0412 (1 student)' when one student was trained (its std is not a spread);
    '–' when there is no value."""
    if mean is None or pd.isna(mean):
        return MISSING
    if seeds is not None and not pd.isna(seeds) and int(seeds) == 1:
        return f"{mean:.4f} (1 student)"
    if std is None or pd.isna(std):
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {std:.4f}"


def mean_std(frame: pd.DataFrame, metric: str) -> pd.Series:
    """format_mean_std of every row, for a table column."""
    return frame.apply(lambda r: format_mean_std(r.get(metric), r.get(f"{metric} std"), r.get("seeds")), axis=1)


def format_number(value, pattern: str = "{:.2f}") -> str:
    """A table cell: the value formatted, or '–' when missing."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return MISSING
    return pattern.format(value)


def budget_label(method, budget) -> str:
    """The budget cell: the full-data reference trains on all the data."""
    if method == FULL:
        return "all"
    return format_number(budget, "{:.0f}")


def run_title(method, budget) -> str:
    """How a run is named in a sentence: 'foster n=20', or 'full data' for the full-data reference."""
    if method == FULL:
        return "full data"
    if budget is None or pd.isna(budget):
        return str(method)
    return f"{method} n={int(budget) if float(budget).is_integer() else budget}"


def job_headline(table: pd.DataFrame, run_ids: list[str], metric: str = "ndcg@10",
                 finished_only: bool = False) -> pd.DataFrame:
    """A job's headline numbers, one row per run of the job: the metric as mean ± std (or '1 student'), the ratio
    to full data, and the student training speed-up against full data. `finished_only`: the runs done so far of
    a job still at work (its first method's numbers show while the baselines run)."""
    columns = ["run", metric, f"{metric} / full", "student train s", "speed-up vs full"]
    if table.empty or not run_ids:
        return pd.DataFrame(columns=columns)
    rows = table[table["run"].isin(run_ids)]
    if finished_only:
        rows = rows[rows["status"] == "finished"]
    out = []
    for _, row in rows.iterrows():
        student = row.get("student train s")
        speedup = speed_up(student, row.get("full-data train s"), row.get("method"))
        out.append({"run": run_title(row.get("method"), row.get("budget")),
                    metric: format_mean_std(row.get(metric), row.get(f"{metric} std"), row.get("seeds")),
                    f"{metric} / full": format_number(row.get(f"{metric} / full"), "{:.2f}×"),
                    "student train s": format_number(student, "{:.1f}"),
                    "speed-up vs full": format_number(speedup, "{:.1f}×")})
    return pd.DataFrame(out, columns=columns)


NOT_REACHED = "not reached"
REACH_FRACTIONS = (0.90, 0.95)


def budget_to_reach(table: pd.DataFrame, metric: str = "ndcg@10",
                    fractions: tuple[float, ...] = REACH_FRACTIONS) -> pd.DataFrame:
    """For each distillation method, the smallest budget whose `metric` reaches each fraction of full data.

    Reads the finished rows of a compare_table (one dataset): a budget's ratio is the mean of `metric / full`
    over its runs. A cell is the budget (as text), 'not reached' when the method's runs with a ratio all fall
    short, or '–' when none of its runs has a ratio (no matching full-data run yet). One row per method, with
    the budgets tried and the best ratio, so 'not reached' can be read against what was tried."""
    ratio = f"{metric} / full"
    columns = ["method", *(reach_column(f, metric) for f in fractions), "budgets tried", "best ratio"]
    if table.empty or "method" not in table:
        return pd.DataFrame(columns=columns)
    rows = table[table["method"] != FULL]
    if "status" in rows:
        rows = rows[rows["status"] == "finished"]
    out = []
    for method, runs in rows.groupby("method", sort=False):
        ratios = (runs.dropna(subset=[ratio]).groupby("budget")[ratio].mean().sort_index()
                  if ratio in runs else pd.Series(dtype=float))
        line = {"method": method, "budgets tried": ", ".join(f"{b:.0f}" for b in sorted(runs["budget"].dropna().unique())),
                "best ratio": format_number(ratios.max() if not ratios.empty else None, "{:.2f}×")}
        for fraction in fractions:
            reached = ratios[ratios >= fraction]
            line[reach_column(fraction, metric)] = (MISSING if ratios.empty else
                                                    NOT_REACHED if reached.empty else f"{reached.index[0]:.0f}")
        out.append(line)
    return pd.DataFrame(out, columns=columns)


def reach_column(fraction: float, metric: str = "ndcg@10") -> str:
    """The name of budget_to_reach's column for one fraction, e.g. 'budget for 90% of full ndcg@10'."""
    return f"budget for {fraction:.0%} of full {metric}"
