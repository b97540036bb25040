"""Explore: real and synthetic sequences on one map; a synthetic sequence position by position, with texts; how
close each synthetic sequence comes to a real user's."""

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from foster_core.analysis.projection import (COPY_COLUMNS, MapConfig, copy_table, coverage_summary,
                                             expert_is_cached, map_frame, nearest_real_sequences, popularity_profile,
                                             position_table, position_view, run_copying, with_copying)
from foster_core.analysis.strip import REST, position_strip
from foster_core.app.forms import method_spec
from foster_core.app.tables import markdown_cells
from foster_core.app.ui import context_for_run, pick_run, run_store
from foster_core.core.data import DataError
from foster_core.core.sources import resolve_dataset_spec
from foster_core.core.synthetic import SyntheticData

st.title("Explore")
st.write("Each dot is a user sequence: grey for real training sequences, coloured for a run's synthetic ones. "
         "Synthetic data that covers the map like the real data does tends to train better recommenders.")
store = run_store()
# Finished runs first, those of methods that optimise synthetic data (loss curves) before the rest, newest first.
run = pick_run([r for r in store.list() if r.synthetic_path.is_file() and method_spec(r.config.get("method"))],
               "explore_run", "No synthetic data yet: start a run on the **Distill** page.")
run_id = run.id
try:
    spec = resolve_dataset_spec(run.config)
    context = context_for_run(run.config, spec)
except DataError as exc:
    st.error(str(exc))
    st.stop()
synthetic = SyntheticData.load(run.synthetic_path)

spaces = ["text", "hidden"] if expert_is_cached(context) else ["text"]
left, right = st.columns([2, 1])
space = left.radio("Embedding space", spaces, horizontal=True, key="explore_space",
                   format_func={"text": "text (expected item-text embedding)",
                                "hidden": "recommender hidden state (the expert)"}.get)
max_real = right.number_input("Real sequences on the map (sampled beyond this)", 100, 20000, 2000, step=500,
                              key="explore_max_real")


@st.cache_data(show_spinner=False, max_entries=16)
def cached_map(run_id: str, space: str, max_real: int):
    return map_frame(context, synthetic, space, MapConfig(max_real=max_real))


@st.cache_data(show_spinner=False, max_entries=16)
def cached_copying(run_id: str) -> dict:
    return run_copying(run.results, synthetic, context.train)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_coverage(run_id: str):
    """The run's catalogue coverage and popularity profile: they read every training sequence, once per run."""
    return coverage_summary(context, synthetic), popularity_profile(context, synthetic)


with st.spinner("Fitting UMAP (the very first fit compiles with numba and takes several seconds; then it is cached)..."):
    frame, real_emb, syn_emb = cached_map(run_id, space, int(max_real))
with st.spinner("Comparing the synthetic sequences with every real user's..."):
    copying = cached_copying(run_id)
frame = with_copying(frame, copying)
real_rows, syn_rows = frame[frame.source == "real"], frame[frame.source == "synthetic"]

options = list(range(synthetic.num_sequences))
pick_key = f"explore_pick_{run_id}"


def choose(picked: list[int], count_key: str) -> None:
    """Make the first of `picked` the sequence shown below, before the page is drawn again."""
    if picked:
        st.session_state["explore_selected"] = picked[0]
        st.session_state[pick_key] = picked[0]
    st.session_state[count_key] = len(picked)


def on_map_select() -> None:
    """A click (or a lasso/box) on the map chooses the synthetic sequence before the page is drawn again, so the
    map highlights it and the table below shows it in the same rerun."""
    selection = (st.session_state.get("explore_map") or {}).get("selection") or {}
    choose([int(p["customdata"]) for p in selection.get("points", [])
            if p.get("curve_number") == 1 and p.get("customdata") is not None], "explore_picked_count")


def on_copy_select() -> None:
    """A row picked in the copying table shows that synthetic sequence position by position."""
    rows = ((st.session_state.get("explore_copying") or {}).get("selection") or {}).get("rows", [])
    choose([int(copying["rows"][r]["synthetic"]) for r in rows], "explore_copy_picked")  # the table's row order


def on_pick() -> None:
    st.session_state["explore_selected"] = st.session_state[pick_key]


selected = st.session_state.get("explore_selected", 0)
selected = selected if selected in options else 0
figure = go.Figure()
figure.add_trace(go.Scattergl(x=real_rows.x, y=real_rows.y, mode="markers", name="real",
                              marker=dict(size=5, color="rgba(140,140,140,0.45)"),
                              customdata=real_rows["index"], text=real_rows.hover,
                              hovertemplate="<b>real #%{customdata}</b><br>%{text}<extra></extra>"))
figure.add_trace(go.Scattergl(x=syn_rows.x, y=syn_rows.y, mode="markers", name="synthetic",
                              marker=dict(size=11, color=syn_rows["share"], colorscale="YlOrRd", cmin=0, cmax=1,
                                          line=dict(width=1, color="#555"),
                                          colorbar=dict(title=dict(text="positions in<br>nearest real<br>user",
                                                                   side="top"),
                                                        tickformat=".0%", thickness=14, len=0.8)),
                              customdata=syn_rows["index"], text=syn_rows.hover,
                              hovertemplate="<b>synthetic #%{customdata}</b><br>%{text}<extra></extra>"))
chosen = syn_rows[syn_rows["index"] == selected]
figure.add_trace(go.Scattergl(x=chosen.x, y=chosen.y, mode="markers", name=f"selected #{selected}",
                              marker=dict(size=22, color="rgba(0,0,0,0)", line=dict(width=3, color="#1b4f9c")),
                              hoverinfo="skip"))
# Plotly's default drag mode (zoom): a click selects a point there, while with dragmode="lasso" it does not.
# Box and lasso stay available in the chart's tool bar.
figure.update_layout(height=440, margin=dict(t=30, b=10), clickmode="event+select", hoverlabel=dict(align="left"),
                     xaxis=dict(showticklabels=False, title=None), yaxis=dict(showticklabels=False, title=None),
                     title=f"UMAP of {space} embeddings", legend=dict(orientation="h", y=-0.02))
st.plotly_chart(figure, width="stretch", on_select=on_map_select, selection_mode=("points", "box", "lasso"),
                key="explore_map")
st.caption(f"{len(real_rows):,} of {len(context.train):,} real sequences shown"
           + (" (a random sample)" if len(real_rows) < len(context.train) else "")
           + f"; {len(syn_rows)} synthetic, coloured by the share of their positions found in one real user's "
             "sequence (**How close to real users?** below). Click a coloured dot, or lasso/box-select, to "
             "inspect one.")

if st.session_state.get("explore_picked_count", 0) > 1:
    st.caption(f"{st.session_state['explore_picked_count']} synthetic sequences selected; showing the first. "
               "Pick another below.")
st.session_state[pick_key] = selected  # before the widget exists in this run: the map's choice shows in it
labels = dict(zip(syn_rows["index"], syn_rows["label"]))
selected = st.selectbox("Synthetic sequence", options, key=pick_key, on_change=on_pick,
                        format_func=lambda j: f"#{j}: {labels.get(j, '')}")
st.session_state["explore_selected"] = selected

st.subheader(f"Synthetic sequence #{selected}, position by position")
row = next((r for r in copying.get("rows", []) if r["synthetic"] == selected), None)
copied = ("" if row is None else " It shares no item with any real user." if row["nearest_real"] is None else
          f" {row['share']:.0%} of its positions appear in real user #{row['nearest_real']}'s sequence; its longest "
          f"run copied in order from one real user is {row['longest_run']} items.")
st.caption("Each position's most probable input items and next-item labels with their probabilities, and the real "
           "items whose texts are nearest to its expected text embedding (cosine similarity; every input "
           "item of the position, shown or not, left out)." + copied)
strip = position_strip(synthetic, selected, context.dataset.item_texts)
ranks = [r for r in strip["rank"].unique() if r != REST] + [REST]
shades = ["#1b4f9c", "#5b8bd0", "#a9c4ec", "#e6e6e6"]  # most probable darkest; the rest of the mass pale grey
bars = go.Figure()
for rank, shade in zip(ranks, shades[: len(ranks) - 1] + [shades[-1]]):
    part = strip[strip["rank"] == rank]
    bars.add_trace(go.Bar(x=part["position"], y=part["p"], name=rank if rank == REST else f"{rank} item",
                          marker_color=shade, customdata=part["text"],
                          hovertemplate=("position %{x}: rest of the mass %{y:.2f}<extra></extra>" if rank == REST else
                                         f"position %{{x}} · {rank} item · p %{{y:.2f}}<br>%{{customdata}}<extra></extra>")))
bars.update_layout(barmode="stack", height=180, margin=dict(t=30, b=10), bargap=0.15, hoverlabel=dict(align="left"),
                   title="Top input items' probabilities per position (hover for the item texts)",
                   xaxis=dict(title=None, dtick=1 if strip["position"].nunique() <= 30 else 5),
                   yaxis=dict(title="p", range=[0, 1], tickformat=".1f"),
                   legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom", traceorder="normal"))
st.plotly_chart(bars, width="stretch", key="explore_strip")

table = position_table(context, synthetic, selected)
# A static table wraps long item texts (a grid would cut them); a fixed height scrolls a long sequence.
st.table(position_view(markdown_cells(table)), hide_index=True, height=min(400, 40 + 34 * len(table)))

st.subheader("How close to real users?")
st.markdown(f"**{copying['summary']}**")
st.caption("Each synthetic sequence (its positions' most probable input items) against every real training sequence. "
           "Many consecutive items in the same order repeat part of one person's history: check before publishing. "
           "Click a column to sort; pick a row to show that sequence above.")
copies = copy_table(copying)
columns = {name: st.column_config.NumberColumn(name, help=text, format="%d") for name, text in COPY_COLUMNS.items()}
columns["positions shared"] = st.column_config.ProgressColumn("positions shared", help=COPY_COLUMNS["positions shared"],
                                                             min_value=0.0, max_value=1.0, format="percent")
st.dataframe(copies, hide_index=True, width="stretch", height=min(250, 38 + 35 * len(copies)), column_config=columns,
             key="explore_copying", on_select=on_copy_select, selection_mode="single-row")

with st.expander("Nearest real sequences on the map (by embedding)"):
    real_indices = real_rows["index"].to_numpy()
    st.table(markdown_cells(nearest_real_sequences(context, real_emb, real_indices, syn_emb[selected])),
             hide_index=True)

with st.expander("Item popularity and catalogue coverage"):
    summary, profile = cached_coverage(run_id)
    cols = st.columns(len(summary))
    for col, (name, value) in zip(cols, summary.items()):
        col.metric(name, f"{value:.1%}" if isinstance(value, float) else f"{value:,}")
    popularity = px.bar(profile, x="popularity group", y="share", color="source", barmode="group",
                        color_discrete_map={"real": "#8c8c8c", "synthetic": "#e4572e"},
                        title="Share of interactions (real) and of probability mass (synthetic) by item "
                              "popularity group")
    popularity.update_layout(height=360, yaxis_tickformat=".0%", margin=dict(t=50, b=10))
    st.plotly_chart(popularity, width="stretch")
    top_p = table.loc[table["rank"] == 1, "input p"]
    st.caption(f"Popularity groups are tenths of the catalogue ranked by training interactions. "
               f"Mean top-input probability in this sequence: {np.mean(top_p):.2f}.")
