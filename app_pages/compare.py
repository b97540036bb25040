"""Compare: which budget buys 90% and 95% of full-data quality and what a recommender costs there (a chart,
then a table), then every run side by side, the other student architectures, and deleting runs."""

import pandas as pd
import plotly.express as px
import streamlit as st

from foster_core.analysis.compare import (REACH_FRACTIONS, architecture_table, budget_to_reach, compare_table,
                                          queued_rows)
from foster_core.app.tables import (FULL_DATA, FULL_DATA_COLOUR, HIDDEN_STATUSES, PENDING_STATUSES, REACH_HELP,
                                    SIDE_BY_SIDE, X_AXES, architecture_view, full_data_seconds, method_colours,
                                    ratio_curves, reach_view, side_by_side, visible_rows, x_axis, y_axis)
from foster_core.app.ui import cached_dataset, current_dataset_spec, job_queue, run_store

st.title("Compare")
st.write("How good is a recommender trained on the small synthetic data, against one trained on all the real "
         "training data, and what does it cost? Each run trains fresh recommenders on its data alone and tests "
         "them on each user's held-out last item, ranked among all items.")
store = run_store()
runs = store.list()  # listed once for every table of the page
table = compare_table(store, runs)
queued = queued_rows(job_queue().active())
if not queued.empty:  # runs a job has still to start: their dataset as the job's runs name it, else loaded
    names = dict(zip(table["dataset_spec"], table["dataset"])) if not table.empty else {}
    for spec in set(queued["dataset_spec"]) - set(names):
        try:
            names[spec] = cached_dataset(spec).name
        except Exception:  # a dataset that no longer loads: its queued runs will fail and say so
            names[spec] = None
    queued["dataset"] = queued["dataset_spec"].map(names)
    table = pd.concat([table, queued], ignore_index=True)
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
                              disabled=not hidden, help="They have no results; shown here to delete them.")
rows = visible_rows(all_rows, show_unfinished)  # full data first, then each method by budget
if (rows["preset"] == "quick").any():
    st.warning("Rows from the **quick** preset are indicative only: a briefly trained expert, few distillation "
               "steps, one student and a short full-data reference. Use the standard preset for numbers to report.")
targets = " and ".join(f"{f:.0%}" for f in REACH_FRACTIONS)

st.subheader("Quality against the size of the data")
x = st.radio("Horizontal axis", list(X_AXES), format_func=X_AXES.get, horizontal=True, key="compare_x",
             help="The budget is the number of synthetic sequences; the seconds are those of training one "
                  "recommender on the data (student_train_seconds).")
curves = ratio_curves(rows)
if curves.empty:
    st.caption("No finished distillation runs with a full-data run to compare with yet.")
else:
    figure = px.line(curves, x=x, y="ratio", error_y="ratio std", color="method", markers=True,
                     color_discrete_map=method_colours(curves["method"]),
                     hover_data={"budget": True, "student train s": ":.1f", "runs": True, "ratio": ":.1%"},
                     labels={"ratio": "share of full data", "ratio std": "std", **X_AXES})
    x_values = curves[x].tolist()
    full_seconds = full_data_seconds(rows)
    if x == "student train s" and full_seconds is not None:  # where all the data puts a recommender
        figure.add_scatter(x=[full_seconds], y=[1.0], mode="markers", name=FULL_DATA,
                           marker=dict(symbol="star", size=13, color=FULL_DATA_COLOUR))
        x_values.append(full_seconds)
    # Each line's label at its right end, outside the plot, where no point or error bar can cover it.
    figure.add_hline(y=1.0, line_dash="dot", line_color="grey", annotation_text=FULL_DATA,
                     annotation_position="right")
    for fraction in REACH_FRACTIONS:
        figure.add_hline(y=fraction, line_dash="dash", line_color="firebrick", line_width=1,
                         annotation_text=f"{fraction:.0%} of full data", annotation_position="right",
                         annotation_font_color="firebrick")
    figure.update_xaxes(**x_axis(x_values, x))
    figure.update_yaxes(**y_axis(curves))
    figure.update_layout(height=440, margin=dict(t=40, b=10, r=120), legend_title_text="method",
                         legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0))
    st.plotly_chart(figure, width="stretch", key="compare_chart")
    st.caption("Each point is a method's mean NDCG@10 at one budget, as a share of the NDCG@10 of a recommender "
               "trained on all the real training data (ratio to full); bars: ± the std over the recommenders "
               "trained, on the same scale. The vertical axis starts at 0. Click a method in the legend to hide it.")

st.subheader("How small can the data be?")
reach = budget_to_reach(rows[rows["status"] == "finished"])
if reach.empty:
    st.caption("No finished distillation runs yet.")
else:
    st.dataframe(reach_view(reach), hide_index=True, width="stretch", key="compare_reach",
                 column_config={name: st.column_config.TextColumn(name, help=text) for name, text in REACH_HELP.items()})
    st.caption(f"For each method, the fewest synthetic sequences whose recommenders reach {targets} of the quality "
               "of one trained on all the real training data, the share of the training data that is, and what "
               "training a recommender on it costs. *not reached*: none of the budgets tried does; the best "
               "share reached says how far off, and the row's other columns describe that best budget; *–*: no full-data run to compare with, or not recorded by "
               "older runs.")

st.subheader("Every run side by side")
more = st.toggle("More columns", value=False, key="compare_more",
                 help="Recall and NDCG@20, positions and share of the training data, full-data training time, "
                      "coverage, preset, date and run id.")
shown = side_by_side(rows, more=more)
column_config = {name: st.column_config.TextColumn(name, width=SIDE_BY_SIDE[name][0], help=SIDE_BY_SIDE[name][1])
                 for name in shown.columns}
selection = st.dataframe(shown, hide_index=True, width="stretch", on_select="rerun", selection_mode="multi-row",
                         column_config=column_config, key=f"compare_rows_{show_unfinished}_{more}")
picked_rows = selection.selection.rows if selection else []
st.caption("Test split. Full data first, then each method by budget. Select rows to delete them below; hover "
           "a column's name for what it means.")

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
settled = all_rows[~all_rows["status"].isin(PENDING_STATUSES) & (all_rows["run"] != "")]
deletable = settled["run"].tolist()
doomed = st.multiselect("Runs to delete", deletable,
                        default=[r for r in rows.iloc[picked_rows]["run"].tolist() if r in deletable] if picked_rows else [],
                        key="compare_delete")
if doomed and st.button(f"Delete {len(doomed)} run(s)", type="secondary", key="compare_delete_button"):
    for run_id in doomed:
        store.delete(run_id)
    st.toast(f"Deleted {len(doomed)} run(s).")
    st.rerun()
