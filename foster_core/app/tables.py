"""The Compare page's tables, shaped from analysis.compare.compare_table (no Streamlit here)."""

from __future__ import annotations

import pandas as pd

from ..analysis.compare import mean_std

METRICS = ("ndcg@10", "recall@10", "ndcg@20", "recall@20")
RATIOS = ("ndcg@10 / full", "recall@10 / full", "recall@20 / full")
COSTS = ("seeds", "distill s", "student train s", "full-data train s", "coverage", "popular share")


def shown_metrics(rows: pd.DataFrame) -> list[str]:
    return [m for m in METRICS if m in rows]


def side_by_side(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per run: method, budget, preset, status, each metric as mean ± std, ratios to full, costs."""
    shown = rows[["method", "budget", "preset", "status"]].copy()
    for metric in shown_metrics(rows):
        shown[f"{metric} (mean ± std)"] = mean_std(rows, metric)
    for column in RATIOS + COSTS:
        if column in rows:
            shown[column] = rows[column]
    shown["run"] = rows["run"]
    return shown


def budget_curves(picked: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean and std of `metric` per (method, budget) of the distillation runs among `picked`, by budget."""
    if metric not in picked:
        return pd.DataFrame(columns=["method", "budget", "mean", "std"])
    curves = picked[(picked["method"] != "full") & picked[metric].notna()]
    std = f"{metric} std"
    curves = curves.assign(**{std: curves[std] if std in curves else float("nan")})
    return curves.groupby(["method", "budget"], as_index=False).agg(
        mean=(metric, "mean"), std=(std, "mean")).sort_values("budget")


def full_reference_value(picked: pd.DataFrame, finished: pd.DataFrame, metric: str) -> float | None:
    """The full-data reference's `metric`: of a picked full run, else of any finished one."""
    for frame in (picked, finished):
        if metric in frame:
            full = frame[(frame["method"] == "full") & frame[metric].notna()]
            if not full.empty:
                return float(full[metric].iloc[0])
    return None
