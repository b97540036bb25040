"""Compare: recommender metrics of every run side by side, metric vs budget, and what each run cost."""

import plotly.express as px
import streamlit as st

from foster_core.analysis.compare import REACH_FRACTIONS, architecture_table, budget_to_reach, compare_table
from foster_core.app.tables import (HIDDEN_STATUSES, architecture_view, budget_curves, full_reference_value,
                                   shown_metrics, side_by_side, visible_rows)
from foster_core.app.ui import cached_dataset, current_dataset_spec, run_store

st.title("Compare")
st.write("Each run trains fresh recommenders on its synthetic data alone and tests them on held-out last items "
         "(full ranking over all items). *Ratio to full* compares with training on all the real training data.")
store = run_store()
runs = store.list()  # listed once for every table of the page
table = compare_table(store, runs)
if table.empty:
    st.info("No runs yet: start one on the **Distill** page.")
    st.stop()

datasets = sorted(table["dataset"].dropna().unique().tolist())
try:
    current = cached_dataset(current_dataset_spec()).name
except Exception:  # a broken dataset choice must not hide the runs that exist
    current = None
dataset = st.selectbox("Dataset", datasets, index=datasets.index(current) if current in datasets else 0,
                       key="compare_dataset")
all_rows = table[table["dataset"] == dataset].reset_index(drop=True)
hidden = int(all_rows["status"].isin(HIDDEN_STATUSES).sum())
show_unfinished = st.checkbox(f"Show stopped and failed runs ({hidden})", value=False, key="compare_unfinished",
                              disabled=not hidden, help="They have no metrics; shown here to delete them.")
rows = visible_rows(all_rows, show_unfinished)
if (rows["preset"] == "quick").any():
    st.warning("Rows from the **quick** preset are indicative only: a briefly trained expert, few distillation "
               "steps, one student and a short full-data reference. Use the standard preset for numbers to report.")

finished = rows[rows["status"] == "finished"]
metrics = shown_metrics(rows)
st.subheader("How small can the data be?")
reach = budget_to_reach(finished)
if reach.empty:
    st.caption("No finished distillation runs yet.")
else:
    st.dataframe(reach, hide_index=True, width="stretch", key="compare_reach")
    st.caption(f"The smallest budget (synthetic sequences) whose NDCG@10 reaches "
               f"{' and '.join(f'{f:.0%}' for f in REACH_FRACTIONS)} of a recommender trained on all the real "
               "training data; *not reached*: none of the budgets tried does; *–*: no full-data run to compare with.")

shown = side_by_side(rows)
st.subheader("Side-by-side metrics (test split)")
st.caption("Select rows to draw only those runs, or to delete them. *distill s*: time to make the synthetic data; "
           "*student train s*: time to train one recommender on it; *full-data train s*: the same on all training "
           "data; *speed-up vs full*: how many times faster the synthetic data trains a recommender.")
selection = st.dataframe(
    shown, hide_index=True, width="stretch", on_select="rerun", selection_mode="multi-row", key=f"compare_rows_{show_unfinished}")
picked_rows = selection.selection.rows if selection else []
picked = rows.iloc[picked_rows] if picked_rows else finished

st.subheader("Metric vs budget")
metric = st.selectbox("Metric", metrics or ["ndcg@10"], key="compare_metric")
curves = budget_curves(picked, metric)
if curves.empty:
    st.caption("No finished distillation runs to draw yet.")
else:
    figure = px.line(curves, x="budget", y="mean", error_y="std", color="method", markers=True,
                     labels={"mean": metric, "budget": "budget (synthetic sequences)"})
    full = full_reference_value(picked, finished, metric)
    if full is not None:
        figure.add_hline(y=full, line_dash="dash", annotation_text="full data")
    if curves["budget"].nunique() == 1:  # one budget: a category axis, not a numeric range around it
        figure.update_xaxes(type="category")
    else:
        figure.update_xaxes(tickmode="array", tickvals=sorted(curves["budget"].unique().tolist()))
    figure.update_layout(height=420, margin=dict(t=30, b=10))
    st.plotly_chart(figure, width="stretch", key="compare_chart")

by_architecture = architecture_table(store, runs)
if not by_architecture.empty:
    by_architecture = by_architecture[by_architecture["dataset"] == dataset]
if not by_architecture.empty:
    st.subheader("Other recommenders on the same data")
    st.dataframe(architecture_view(by_architecture), hide_index=True, width="stretch", key="compare_architectures")
    st.caption("Runs whose synthetic data also trained other student architectures (`--students` on the command "
               "line). *ndcg@10 / own full*: against the same architecture trained on all the real training data; "
               "*speed-up vs own full*: how many times faster it trains on the synthetic data.")

st.subheader("Delete runs")
deletable = all_rows[all_rows["status"] != "running"]["run"].tolist()
doomed = st.multiselect("Runs to delete", deletable,
                        default=[r for r in rows.iloc[picked_rows]["run"].tolist() if r in deletable] if picked_rows else [],
                        key="compare_delete")
if doomed and st.button(f"Delete {len(doomed)} run(s)", type="secondary", key="compare_delete_button"):
    for run_id in doomed:
        store.delete(run_id)
    st.toast(f"Deleted {len(doomed)} run(s).")
    st.rerun()
