"""The Compare page's tables and chart data, shaped from analysis.compare (no Streamlit here): the ratio
to full data against budget, the smallest budget reaching 90% / 95% of it, and the runs side by side."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from plotly.colors import qualitative

from ..analysis.compare import (MISSING, NOT_REACHED, QUEUED, budget_label, format_number, in_table_order,
                                mean_std, with_kept_labels)
from ..core.architectures import architecture_rank
from ..methods import method_names
from ..runs.experiment import FULL

HIDDEN_STATUSES = ("stopped", "failed", "interrupted")  # no metrics: shown only when asked for
PENDING_STATUSES = ("running", QUEUED)  # no numbers yet: their cells stay empty, the status says why
FULL_DATA = "full data"  # how the full-data reference reads in a table or a legend
FULL_DATA_COLOUR = "black"  # its marker, apart from every method's colour
# One colour per method, in the registry's order, so a method keeps its colour on every chart: plotly's D3
# colours without its grey (close to full data's black and grey lines), its two pale ones darkened to read on
# white, ordered so the methods most often set side by side (random, teacher, foster) read blue, green, orange.
D3 = dict(zip(("blue", "orange", "green", "red", "purple", "brown", "pink", "grey", "olive", "cyan"), qualitative.D3))
METHOD_PALETTE = [D3["blue"], D3["purple"], D3["brown"], D3["pink"], "#0E8A96", "#8C8C17", D3["green"],
                  D3["orange"], D3["red"]]

# The side-by-side table's columns: plain name -> (width in pixels, help with the technical name). The first
# nine are the default view, narrow enough for a 1400 px window; "more columns" shows them all.
SIDE_BY_SIDE = {
    "method": (90, "How the data was made. *full data*: all the real training data, the reference."),
    "budget": (64, "Synthetic sequences in the data (n); *all*: the whole training split."),
    "status": (118, "done, running (making the data, or training recommenders on it), queued behind another "
                    "job, or stopped / failed / interrupted."),
    "quality vs full": (104, "NDCG@10 of recommenders trained on this data as a share of the NDCG@10 of one "
                             "trained on all the real training data (ratio to full). 100% = as good as full data."),
    "NDCG@10 (mean ± std)": (150, "Ranking quality on the held-out last items (test split, full ranking over all "
                                  "items): mean ± std over the recommenders (students) trained."),
    "making data (s)": (104, "Seconds to make the synthetic data (distill_seconds)."),
    "training (s)": (88, "Seconds to train one recommender on this data: its training steps alone "
                         "(student_train_seconds)."),
    "speed-up": (80, "How many times faster a recommender trains on this data than on all the real training "
                     "data: full-data training seconds over this row's."),
    "finished": (84, "When the run finished (UTC, month-day hour:minute); tells apart runs of the same settings. "
                     "The run id is among the more columns."),
    "recall@10 vs full": (None, "Recall@10 as a share of full data's (ratio to full)."),
    "recall@20 vs full": (None, "Recall@20 as a share of full data's (ratio to full)."),
    "Recall@10 (mean ± std)": (None, "Test split, mean ± std over the recommenders trained."),
    "NDCG@20 (mean ± std)": (None, "Test split, mean ± std over the recommenders trained."),
    "Recall@20 (mean ± std)": (None, "Test split, mean ± std over the recommenders trained."),
    "recommenders trained": (None, "Students trained on the data, one per seed."),
    "full-data training (s)": (None, "Seconds to train one recommender on all the real training data."),
    "positions": (None, "Item positions a recommender trains on: non-padding inputs of the synthetic data, or "
                        "every next-item target of the training split for full data."),
    "share of training data": (None, "Positions over the training split's next-item targets (position_share)."),
    "item coverage": (None, "Share of the catalogue the synthetic data mentions (coverage)."),
    "popular share": (None, "Share of the label mass on the 10% most popular items (popular_share)."),
    "preset": (None, "The settings preset the run was started with."),
    "created": (None, "When the run started (UTC)."),
    "run id": (None, "The run's folder in the run store."),
}
DEFAULT_COLUMNS = list(SIDE_BY_SIDE)[:9]
# Columns of compare_table -> (side-by-side name, format). Ratios read as a share of full data.
RATIO_CELLS = {"ndcg@10 / full": "quality vs full", "recall@10 / full": "recall@10 vs full",
               "recall@20 / full": "recall@20 vs full"}
MEAN_STD_CELLS = {"ndcg@10": "NDCG@10 (mean ± std)", "recall@10": "Recall@10 (mean ± std)",
                  "ndcg@20": "NDCG@20 (mean ± std)", "recall@20": "Recall@20 (mean ± std)"}
NUMBER_CELLS = {"distill s": ("making data (s)", "{:.1f}"), "student train s": ("training (s)", "{:.1f}"),
                "speed-up vs full": ("speed-up", "{:.1f}×"), "seeds": ("recommenders trained", "{:.0f}"),
                "full-data train s": ("full-data training (s)", "{:.1f}"), "positions": ("positions", "{:,.0f}"),
                "coverage": ("item coverage", "{:.3f}"), "popular share": ("popular share", "{:.3f}")}

REACH_HELP = {
    "method": "How the synthetic data was made.",
    "target": "The share of full-data quality (NDCG@10 of a recommender trained on all the real training data).",
    "smallest budget": "The fewest synthetic sequences (n) whose recommenders reach the target, among the budgets "
                       "tried; *not reached*: none does, with the best share and where it was reached (the other columns "
                       "then describe that best budget).",
    "quality there": "Its NDCG@10 as a share of full data's (ratio to full), mean over its runs; where the target "
                     "is not reached, at the best budget tried.",
    "share of training data": "Its positions over the training split's next-item targets (position_share); "
                              "*–*: runs from before this was recorded.",
    "training (s)": "Seconds to train one recommender on that data (student_train_seconds).",
    "speed-up": "How many times faster than training on all the real training data.",
}


def method_colours(methods=()) -> dict[str, str]:
    """Method name -> chart colour: the registry's methods each their own fixed colour (whichever methods a
    chart shows), then any other `methods` by name, the palette starting over past its end."""
    names = method_names()
    names += sorted({str(m) for m in methods} - set(names))
    return {name: METHOD_PALETTE[i % len(METHOD_PALETTE)] for i, name in enumerate(names)}


def format_share(value) -> str:
    """A share of full data or of the training data: '93.4%', '0.23%' below one percent, '–' without one."""
    if value is None or pd.isna(value):
        return MISSING
    return f"{value * 100:.2g}%" if 0 < value < 0.01 else f"{value:.1%}"


def short_time(stamp) -> str:
    """An ISO 8601 time as the run store writes it, '2026-12-03T08:35:12+00:00', as '12-03 08:35'; '' without one."""
    if stamp is None or (not isinstance(stamp, str) and pd.isna(stamp)) or len(str(stamp)) < 16:
        return ""
    return f"{str(stamp)[5:10]} {str(stamp)[11:16]}"


def status_label(status, phase=None) -> str:
    """A run's status in plain words: 'done', 'running (making data)', 'running (training)', 'queued', ..."""
    if status == "finished":
        return "done"
    if status == "running":
        return "running (training)" if phase == "evaluate" else "running (making data)"
    return MISSING if status is None or pd.isna(status) else str(status)


def visible_rows(rows: pd.DataFrame, show_unfinished: bool) -> pd.DataFrame:
    """The rows of the table, in its order (analysis.compare.in_table_order): stopped, failed and interrupted
    runs only when asked for."""
    if not show_unfinished and not rows.empty:
        rows = rows[~rows["status"].isin(HIDDEN_STATUSES)]
    return in_table_order(rows)


def side_by_side(rows: pd.DataFrame, more: bool = False) -> pd.DataFrame:
    """One line per row of `rows` (in its order), as text cells: method ('full data' for the reference),
    budget ('all' for it), status, the ratio to full as a share, NDCG@10 as mean ± std ('1 student' where
    there is no spread), and the costs. `more`: every column of SIDE_BY_SIDE. A missing value reads '–'; a
    running or queued row's numbers are empty, since its status says why."""
    phases = rows["phase"] if "phase" in rows else [None] * len(rows)
    shown = pd.DataFrame({"method": [FULL_DATA if m == FULL else m for m in with_kept_labels(rows)["method"]],
                          "budget": [budget_label(m, b) for m, b in zip(rows["method"], rows["budget"])],
                          "status": [status_label(s, p) for s, p in zip(rows["status"], phases)]},
                         index=rows.index)
    shown["finished"] = [short_time(t) for t in rows["finished"]] if "finished" in rows else ""
    for column, name in RATIO_CELLS.items():
        shown[name] = [format_share(v) for v in rows[column]] if column in rows else MISSING
    for metric, name in MEAN_STD_CELLS.items():
        shown[name] = mean_std(rows, metric) if metric in rows else MISSING
    for column, (name, pattern) in NUMBER_CELLS.items():
        shown[name] = [format_number(v, pattern) for v in rows[column]] if column in rows else MISSING
    shown["share of training data"] = ([format_share(v) for v in rows["position share"]]
                                       if "position share" in rows else MISSING)
    shown["preset"] = rows["preset"].fillna("").replace("", MISSING) if "preset" in rows else MISSING
    shown["created"] = rows["created"].fillna("").replace("", MISSING) if "created" in rows else MISSING
    shown["run id"] = rows["run"].fillna("").replace("", MISSING)
    shown.loc[(rows["method"] == FULL).to_numpy(), "making data (s)"] = MISSING  # all the data: nothing to make
    pending = rows["status"].isin(PENDING_STATUSES).to_numpy()
    numbers = [*RATIO_CELLS.values(), *MEAN_STD_CELLS.values(), *(n for n, _ in NUMBER_CELLS.values()),
               "share of training data"]
    shown.loc[pending, numbers] = ""
    return shown[list(SIDE_BY_SIDE) if more else DEFAULT_COLUMNS]


def reach_view(reach: pd.DataFrame) -> pd.DataFrame:
    """budget_to_reach as text cells, one line per (method, target): the smallest budget, its share of the
    training data and the student's cost there; 'not reached (best 84.0% at n=50)' where no budget tried
    reaches the target, the other cells then those of n=50; '–' where there is no full-data run to compare with."""
    out = []
    for _, row in reach.iterrows():
        if not pd.isna(row["budget"]):
            budget = format_number(row["budget"], "{:.0f}")
        elif not pd.isna(row["best ratio"]):
            budget = f"{NOT_REACHED} (best {format_share(row['best ratio'])} at n={row['best budget']:.0f})"
        else:
            budget = f"{MISSING} (no full-data run to compare with)"
        out.append({"method": row["method"], "target": f"{row['fraction']:.0%} of full data",
                    "smallest budget": budget, "quality there": format_share(row["ratio"]),
                    "share of training data": format_share(row["position share"]),
                    "training (s)": format_number(row["student train s"], "{:.1f}"),
                    "speed-up": format_number(row["speed-up vs full"], "{:.1f}×")})
    return pd.DataFrame(out, columns=list(REACH_HELP))


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


X_AXES = {"budget": "budget (synthetic sequences)", "student train s": "seconds to train one recommender"}


def ratio_curves(rows: pd.DataFrame, metric: str = "ndcg@10") -> pd.DataFrame:
    """The chart's points: per (method, budget) of the finished distillation runs with a ratio, the mean
    ratio to full data, its spread (the students' std over the full-data mean) and the seconds to train one
    recommender; methods in the registry's order, each by budget."""
    ratio, spread = f"{metric} / full", f"{metric} / full std"
    columns = ["method", "budget", "ratio", "ratio std", "student train s", "runs"]
    if rows.empty or ratio not in rows:
        return pd.DataFrame(columns=columns)
    done = with_kept_labels(rows[(rows["method"] != FULL) & (rows["status"] == "finished") & rows[ratio].notna()])
    done = done.reindex(columns=sorted({*done.columns, spread, "student train s"}))
    curves = done.groupby(["method", "budget"], as_index=False).agg(
        ratio=(ratio, "mean"), **{"ratio std": (spread, "mean")}, **{"student train s": ("student train s", "mean")},
        runs=(ratio, "size"))
    return in_table_order(curves)[columns]


def full_data_seconds(rows: pd.DataFrame) -> float | None:
    """Seconds to train one recommender on all the data: the finished full-data runs' mean, or None."""
    if rows.empty or "student train s" not in rows:
        return None
    full = rows[(rows["method"] == FULL) & (rows["status"] == "finished")]["student train s"].dropna()
    return float(full.mean()) if not full.empty else None


def x_axis(values, x: str) -> dict:
    """The chart's x axis (plotly update_xaxes arguments) for the points' `values` of column `x`: one value
    is a category (not a numeric range around it); values spanning ten times or more a log scale, said in
    the title; budgets get a tick at each budget tried."""
    values = sorted({float(v) for v in values if v is not None and not pd.isna(v)})
    title = X_AXES[x]
    if len(values) <= 1:
        return {"type": "category", "title": title}
    axis = {"type": "linear"}
    if values[0] > 0 and values[-1] / values[0] >= 10:
        axis, title = {"type": "log", "dtick": 1}, f"{title} (log scale)"  # ticks at 1, 10, 100, ... only
    if x == "budget":
        axis.update(tickmode="array", tickvals=values, ticktext=[f"{v:g}" for v in values])
    return {**axis, "title": title}


def y_axis(curves: pd.DataFrame, metric: str = "ndcg@10") -> dict:
    """The chart's y axis: from 0, so small differences look small, to a little above full data (or the
    highest error bar), as percentages of full data."""
    top = (curves["ratio"] + curves["ratio std"].fillna(0)).max() if not curves.empty else 1.0
    top = max(1.05, float(top) + 0.05) if np.isfinite(top) else 1.05
    return {"range": [0, top], "tickformat": ".0%",
            "title": f"{metric.upper()} as a share of full data (axis from 0)"}


def markdown_text(text) -> str:
    """A cell of st.table (which reads Markdown and wraps it): Markdown's special characters escaped, and the
    cell's lines (a table cell cannot break a line) joined by a middle dot."""
    escaped = re.sub(r"([\\`*_{}\[\]()#+\-!|$<>~])", r"\\\1", str(text))
    return " · ".join(line.strip() for line in escaped.split("\n") if line.strip())


def markdown_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Every text cell of `frame` as markdown_text, so long item texts wrap and keep their line breaks."""
    return frame.apply(lambda column: column.map(markdown_text) if column.dtype == object else column)
