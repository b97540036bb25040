"""The comparison over the run store: one row per run, test metrics mean ± std, ratio to the matching
full-data run, costs and status (the Compare page, and a finished job's headline numbers on Distill); the
runs a job has still to start; and, per method, the smallest budget that reaches 90% / 95% of full data."""

from __future__ import annotations

import pandas as pd

from ..core.architectures import DEFAULT_ARCHITECTURE
from ..methods import method_names
from ..methods.events import kept_label
from ..runs.evaluator import HEADLINE, architecture_rows, ratio_to, speed_up, student_train_seconds
from ..runs.experiment import FULL
from ..runs.jobs import ACTIVE, Job
from ..runs.ladder import REACH_FRACTIONS
from ..runs.run_store import Run, RunStore, architecture_results, full_data_numbers

MISSING = "–"  # how every table cell without a value reads
RATIO_METRICS = ("ndcg@10", "recall@10", "recall@20")  # the metrics with a ratio to full data
QUEUED = "queued"  # the status of a run a job has still to start (it has no run folder yet)


def with_kept_labels(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` whose method names the data each run kept (`kept_label`); rows without a `kept` column as they are."""
    if "kept" not in rows:
        return rows
    return rows.assign(method=[kept_label(m, k) for m, k in zip(rows["method"], rows["kept"])])


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
               "dataset": config.get("dataset"), "dataset_spec": config.get("dataset_spec"),
               "preset": config.get("preset", ""), "status": status.get("status"), "phase": status.get("phase"),
               "created": config.get("created", ""),
               "finished": status.get("updated", "") if status.get("status") == "finished" else ""}
        test = (results or {}).get("test", {})
        ref_test = (reference_numbers or {}).get("test", {})
        for metric in HEADLINE:
            if metric in test:
                row[metric] = test[metric]["mean"]
                row[f"{metric} std"] = test[metric]["std"]
                if metric in RATIO_METRICS and metric in ref_test:
                    row[f"{metric} / full"] = ratio_to(test[metric]["mean"], ref_test[metric]["mean"])
                    # The spread over students on the ratio's scale: std over the full-data mean.
                    row[f"{metric} / full std"] = ratio_to(test[metric]["std"], ref_test[metric]["mean"])
        row["seeds"] = len((results or {}).get("per_seed_test", [])) or None
        row["distill s"] = (results or {}).get("distill_seconds")
        row["student train s"] = student_train_seconds(results)
        row["full-data train s"] = student_train_seconds(reference_numbers)
        row["speed-up vs full"] = speed_up(row["student train s"], row["full-data train s"], config.get("method"))
        row["coverage"] = (results or {}).get("coverage")
        row["popular share"] = (results or {}).get("popular_share")
        row["positions"] = (results or {}).get("positions")  # older results lack both: shown as "–"
        row["position share"] = (results or {}).get("position_share")
        row["kept"] = (results or {}).get("kept", "")  # another method's data the run kept (FOSTER: teacher's)
        rows.append(row)
    return pd.DataFrame(rows)


def queued_rows(jobs: list[Job]) -> pd.DataFrame:
    """The runs that active jobs have still to start, as compare_table rows with status 'queued' (no run id,
    no numbers; `dataset_spec` says which dataset, as the job was given it). A job starts its (method, budget)
    pairs in order, then the full-data reference when it has to train one (its state says "to train"), so
    the ones after those it started are still to come."""
    rows = []
    for job in jobs:
        state = job.state
        if state.get("status") not in ACTIVE:
            continue
        spec = job.spec
        if spec.resume_run:  # a resumed run continues in its own folder, already in the store
            continue
        started = len(state.get("started_pairs", state.get("run_ids", [])))
        pairs = [*spec.pairs(), *([(FULL, None)] if state.get("reference") == "to train" else [])]
        for method, budget in pairs[started:]:
            rows.append({"run": "", "method": method, "budget": budget, "dataset": None,
                         "dataset_spec": spec.dataset, "preset": spec.preset, "status": QUEUED, "phase": None,
                         "created": state.get("submitted", ""), "job": job.id})
    return pd.DataFrame(rows)


def method_rank(method) -> int:
    """Where a method's rows go in a table: full data first, then the registry's order, unknown names last."""
    if method == FULL:
        return -1
    names = method_names()
    return names.index(method) if method in names else len(names)


def in_table_order(rows: pd.DataFrame) -> pd.DataFrame:
    """Full data first, then each method in the registry's order (unknown ones by name), each by budget
    ascending; rows that tie keep their order (the store lists the newest first). A fresh index."""
    if rows.empty or "method" not in rows:
        return rows.reset_index(drop=True)
    keyed = rows.assign(_rank=rows["method"].map(method_rank), _name=rows["method"].astype(str),
                        _budget=pd.to_numeric(rows["budget"], errors="coerce"))
    keyed = keyed.sort_values(["_rank", "_name", "_budget"], na_position="first", kind="stable")
    return keyed.drop(columns=["_rank", "_name", "_budget"]).reset_index(drop=True)


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
REACH_COLUMNS = ["method", "fraction", "budget", "ratio", "position share", "student train s", "full-data train s",
                 "speed-up vs full", "best ratio", "best budget"]


def budget_to_reach(table: pd.DataFrame, metric: str = "ndcg@10",
                    fractions: tuple[float, ...] = REACH_FRACTIONS) -> pd.DataFrame:
    """For each distillation method and each fraction of full data, the smallest budget whose `metric`
    reaches it, and what that budget amounts to: its ratio, share of the training data and student cost.

    Reads the finished rows of a compare_table (one dataset). Each budget's numbers are the means over its
    runs (those with a ratio). One row per (method, fraction), methods in the registry's order. `budget` is
    missing when no budget tried reaches the fraction: `best ratio` and `best budget` then say how far off
    the method is, and the ratio, share and costs are those of that best budget; all are missing when none of
    its runs has a ratio (no matching full-data run)."""
    ratio = f"{metric} / full"
    if table.empty or "method" not in table:
        return pd.DataFrame(columns=REACH_COLUMNS)
    rows = table[table["method"] != FULL]
    if "status" in rows:
        rows = rows[rows["status"] == "finished"]
    rows = rows.reindex(columns=sorted({*rows.columns, ratio, *REACH_COLUMNS[4:7]}))
    rows = with_kept_labels(rows)  # a run that kept another method's data reaches its targets under its own name
    out = []
    for method, runs in in_table_order(rows).groupby("method", sort=False):
        per_budget = (runs.dropna(subset=[ratio, "budget"]).groupby("budget")
                      [[ratio, "position share", "student train s", "full-data train s"]].mean().sort_index())
        best = per_budget[ratio].idxmax() if not per_budget.empty else None
        for fraction in fractions:
            line = dict.fromkeys(REACH_COLUMNS)
            line.update(method=method, fraction=fraction)
            if best is not None:
                line.update({"best ratio": per_budget.loc[best, ratio], "best budget": best})
            reached = per_budget[per_budget[ratio] >= fraction]
            # Not reached: the numbers of the best budget tried, so the cost of getting closest still shows.
            there = reached.index[0] if not reached.empty else best
            if there is not None:
                at = per_budget.loc[there]
                line.update({"ratio": at[ratio], "position share": at["position share"],
                             "student train s": at["student train s"], "full-data train s": at["full-data train s"],
                             "speed-up vs full": speed_up(at["student train s"], at["full-data train s"], method)})
            if not reached.empty:
                line["budget"] = there
            out.append(line)
    return pd.DataFrame(out, columns=REACH_COLUMNS)
