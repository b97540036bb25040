"""The comparison over the run store: one row per run, test metrics mean ± std, ratio to the matching
full-data run, costs and status (the Compare page, and a finished job's headline numbers on Distill)."""

from __future__ import annotations

import pandas as pd

from ..runs.evaluator import HEADLINE
from ..runs.experiment import FULL
from ..runs.run_store import RunStore

MISSING = "–"  # how every table cell without a value reads


def compare_table(store: RunStore) -> pd.DataFrame:
    """One row per run: test metrics mean ± std, ratio to the matching full-data run, costs, status."""
    rows = []
    runs = store.list()  # listed once: each row's reference is looked up in it, not in a new listing
    for run in runs:
        config, results, status = run.config, run.results, run.status
        reference = store.find_reference(config, runs) if config.get("method") != FULL else run
        row = {"run": run.id, "method": config.get("method"), "budget": config.get("budget"),
               "dataset": config.get("dataset"), "preset": config.get("preset", ""),
               "status": status.get("status"), "created": config.get("created", "")}
        test = (results or {}).get("test", {})
        ref_test = ((reference.results or {}).get("test", {}) if reference else {})
        for metric in HEADLINE:
            if metric in test:
                row[metric] = test[metric]["mean"]
                row[f"{metric} std"] = test[metric]["std"]
                if metric in ("ndcg@10", "recall@10", "recall@20") and metric in ref_test:
                    row[f"{metric} / full"] = test[metric]["mean"] / max(ref_test[metric]["mean"], 1e-12)
        row["seeds"] = len((results or {}).get("per_seed_test", [])) or None
        row["distill s"] = (results or {}).get("distill_seconds")
        row["student train s"] = (results or {}).get("student_seconds")
        row["full-data train s"] = (reference.results or {}).get("student_seconds") if reference else None
        row["coverage"] = (results or {}).get("coverage")
        row["popular share"] = (results or {}).get("popular_share")
        rows.append(row)
    return pd.DataFrame(rows)


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


def job_headline(table: pd.DataFrame, run_ids: list[str], metric: str = "ndcg@10") -> pd.DataFrame:
    """A finished job's headline numbers, one row per run of the job: the metric as mean ± std (or '1 student'),
    the ratio to full data, and the student training speed-up against full data."""
    columns = ["run", metric, f"{metric} / full", "student train s", "speed-up vs full"]
    if table.empty or not run_ids:
        return pd.DataFrame(columns=columns)
    rows = table[table["run"].isin(run_ids)]
    out = []
    for _, row in rows.iterrows():
        student, full = row.get("student train s"), row.get("full-data train s")
        speedup = (full / student if student and full and not pd.isna(student) and not pd.isna(full)
                   and row.get("method") != FULL else None)
        out.append({"run": run_title(row.get("method"), row.get("budget")),
                    metric: format_mean_std(row.get(metric), row.get(f"{metric} std"), row.get("seeds")),
                    f"{metric} / full": format_number(row.get(f"{metric} / full"), "{:.2f}×"),
                    "student train s": format_number(student, "{:.1f}"),
                    "speed-up vs full": format_number(speedup, "{:.1f}×")})
    return pd.DataFrame(out, columns=columns)
