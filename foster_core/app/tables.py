"""The Compare page's tables, shaped from analysis.compare.compare_table (no Streamlit here)."""

from __future__ import annotations

import re

import pandas as pd

from ..analysis.compare import budget_label, format_number, mean_std
from ..core.architectures import architecture_rank
from ..runs.evaluator import HEADLINE
from ..runs.experiment import FULL

METRICS = HEADLINE
RATIOS = ("ndcg@10 / full", "recall@10 / full", "recall@20 / full")
COSTS = {"seeds": "{:.0f}", "distill s": "{:.1f}", "student train s": "{:.1f}", "full-data train s": "{:.1f}",
         "speed-up vs full": "{:.1f}×", "coverage": "{:.3f}", "popular share": "{:.3f}"}
HIDDEN_STATUSES = ("stopped", "failed", "interrupted")  # no metrics: shown only when asked for


def shown_metrics(rows: pd.DataFrame) -> list[str]:
    return [m for m in METRICS if m in rows]


def visible_rows(rows: pd.DataFrame, show_unfinished: bool) -> pd.DataFrame:
    """The rows of the table: stopped, failed and interrupted runs only when asked for."""
    if show_unfinished or rows.empty:
        return rows.reset_index(drop=True)
    return rows[~rows["status"].isin(HIDDEN_STATUSES)].reset_index(drop=True)


def side_by_side(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per run, as text cells ('–' where a value is missing): method, budget ('all' for the full-data
    reference), the ratios to full first, then each metric as mean ± std ('1 student' where there is no
    spread), status, preset, costs and the run id."""
    shown = pd.DataFrame({"method": rows["method"],
                          "budget": [budget_label(m, b) for m, b in zip(rows["method"], rows["budget"])]},
                         index=rows.index)
    for column in RATIOS:
        if column in rows:
            shown[column] = [format_number(v, "{:.2f}×") for v in rows[column]]
    for metric in shown_metrics(rows):
        shown[f"{metric} (mean ± std)"] = mean_std(rows, metric)
    shown["status"] = rows["status"].fillna("–")
    shown["preset"] = rows["preset"].fillna("").replace("", "–")
    for column, pattern in COSTS.items():
        if column in rows:
            shown[column] = [format_number(v, pattern) for v in rows[column]]
    shown["run"] = rows["run"]
    return shown


def architecture_view(rows: pd.DataFrame) -> pd.DataFrame:
    """The per-architecture table as text cells: each student architecture's NDCG@10 on each run's data, its
    ratio to that architecture's own full-data training, its training seconds and speed-up."""
    if rows.empty:
        return pd.DataFrame()
    # The registry's order (the default student first), then each method's rows by budget, full data first.
    rows = rows.assign(_arch=rows["architecture"].map(architecture_rank), _full=rows["method"] != FULL)
    rows = rows.sort_values(["_arch", "_full", "method", "budget"], na_position="first", kind="stable")
    return pd.DataFrame({
        "student": rows["architecture"],
        "method": rows["method"],
        "budget": [budget_label(m, b) for m, b in zip(rows["method"], rows["budget"])],
        "ndcg@10 / own full": [format_number(v, "{:.2f}×") for v in rows["ratio_ndcg@10"]],
        "ndcg@10 (mean ± std)": mean_std(rows, "ndcg@10"),
        "student train s": [format_number(v, "{:.1f}") for v in rows["student_train_seconds"]],
        "speed-up vs own full": [format_number(v, "{:.1f}×") for v in rows["train_speedup"]],
        "run": rows["run"],
    })


def budget_curves(picked: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean and std of `metric` per (method, budget) of the distillation runs among `picked`, by budget."""
    if metric not in picked:
        return pd.DataFrame(columns=["method", "budget", "mean", "std"])
    curves = picked[(picked["method"] != FULL) & picked[metric].notna()]
    std = f"{metric} std"
    curves = curves.assign(**{std: curves[std] if std in curves else float("nan")})
    return curves.groupby(["method", "budget"], as_index=False).agg(
        mean=(metric, "mean"), std=(std, "mean")).sort_values("budget")


def full_reference_value(picked: pd.DataFrame, finished: pd.DataFrame, metric: str) -> float | None:
    """The full-data reference's `metric`: of a picked full run, else of any finished one."""
    for frame in (picked, finished):
        if metric in frame:
            full = frame[(frame["method"] == FULL) & frame[metric].notna()]
            if not full.empty:
                return float(full[metric].iloc[0])
    return None


def markdown_text(text) -> str:
    """A cell of st.table (which reads Markdown and wraps it): Markdown's special characters escaped, and the
    cell's lines (a table cell cannot break a line) joined by a middle dot."""
    escaped = re.sub(r"([\\`*_{}\[\]()#+\-!|$<>~])", r"\\\1", str(text))
    return " · ".join(line.strip() for line in escaped.split("\n") if line.strip())


def markdown_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Every text cell of `frame` as markdown_text, so long item texts wrap and keep their line breaks."""
    return frame.apply(lambda column: column.map(markdown_text) if column.dtype == object else column)
