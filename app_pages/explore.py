"""Explore: real and synthetic sequences on one map; a synthetic sequence position by position, with texts."""

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from foster_core.analysis.projection import (MapConfig, coverage_summary, expert_is_cached, map_frame,
                                             nearest_real_sequences, popularity_profile, position_table)
from foster_core.analysis.strip import REST, position_strip
from foster_core.app.forms import method_spec
from foster_core.app.tables import markdown_cells
from foster_core.app.ui import context_for_run, pick_run, run_store
from foster_core.core.data import DataError
from foster_core.core.sources import resolve_dataset_spec
from foster_core.core.synthetic import SyntheticData

st.title("Explore")
st.write("Each dot is a user sequence. Grey dots are real training sequences, coloured ones the synthetic sequences "
         "of a run. Synthetic data that covers the map like the real data does tends to train better recommenders.")
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


with st.spinner("Fitting UMAP (the very first fit compiles with numba and takes several seconds; then it is cached)..."):
    frame, real_emb, syn_emb = cached_map(run_id, space, int(max_real))
real_rows, syn_rows = frame[frame.source == "real"], frame[frame.source == "synthetic"]
st.caption(f"{len(real_rows):,} of {len(context.train):,} real sequences shown"
           + (" (a random sample)" if len(real_rows) < len(context.train) else "")
           + f"; {len(syn_rows)} synthetic. Click a coloured dot, or lasso/box-select several, to inspect one.")

options = list(range(synthetic.num_sequences))
pick_key = f"explore_pick_{run_id}"


def on_map_select() -> None:
    """A click (or a lasso/box) on the map chooses the synthetic sequence before the page is drawn again, so the
    map highlights it and the table below shows it in the same rerun."""
    selection = (st.session_state.get("explore_map") or {}).get("selection") or {}
    picked = [int(p["customdata"]) for p in selection.get("points", [])
              if p.get("curve_number") == 1 and p.get("customdata") is not None]
    if picked:
        st.session_state["explore_selected"] = picked[0]
        st.session_state[pick_key] = picked[0]
    st.session_state["explore_picked_count"] = len(picked)


def on_pick() -> None:
    st.session_state["explore_selected"] = st.session_state[pick_key]


selected = st.session_state.get("explore_selected", 0)
selected = selected if selected in options else 0
figure = go.Figure()
figure.add_trace(go.Scattergl(x=real_rows.x, y=real_rows.y, mode="markers", name="real",
                              marker=dict(size=5, color="rgba(140,140,140,0.45)"),
                              customdata=real_rows["index"], text=real_rows.hover,
                              hovertemplate="real #%{customdata}<br>%{text}<extra></extra>"))
figure.add_trace(go.Scattergl(x=syn_rows.x, y=syn_rows.y, mode="markers", name="synthetic",
                              marker=dict(size=11, color="#e4572e", line=dict(width=1, color="white")),
                              customdata=syn_rows["index"], text=syn_rows.hover,
                              hovertemplate="synthetic #%{customdata}<br>%{text}<extra></extra>"))
chosen = syn_rows[syn_rows["index"] == selected]
figure.add_trace(go.Scattergl(x=chosen.x, y=chosen.y, mode="markers", name=f"selected #{selected}",
                              marker=dict(size=22, color="rgba(0,0,0,0)", line=dict(width=3, color="#1b4f9c")),
                              hoverinfo="skip"))
# Plotly's default drag mode (zoom): a click selects a point there, while with dragmode="lasso" it does not.
# Box and lasso stay available in the chart's tool bar.
figure.update_layout(height=520, margin=dict(t=30, b=10), clickmode="event+select",
                     xaxis=dict(showticklabels=False, title=None), yaxis=dict(showticklabels=False, title=None),
                     title=f"UMAP of {space} embeddings", legend=dict(orientation="h", y=-0.02))
st.plotly_chart(figure, width="stretch", on_select=on_map_select, selection_mode=("points", "box", "lasso"),
                key="explore_map")

if st.session_state.get("explore_picked_count", 0) > 1:
    st.caption(f"{st.session_state['explore_picked_count']} synthetic sequences selected; showing the first. "
               "Pick another below.")
st.session_state[pick_key] = selected  # before the widget exists in this run: the map's choice shows in it
selected = st.selectbox("Synthetic sequence", options, key=pick_key, on_change=on_pick,
                        format_func=lambda j: f"#{j}: {syn_rows[syn_rows['index'] == j].hover.iloc[0]}")
st.session_state["explore_selected"] = selected

st.subheader(f"Synthetic sequence #{selected}, position by position")
st.caption("Each position is a distribution over items: the most probable input items with their probabilities, "
           "the next-item label distribution, and the real items whose texts are nearest to the position's "
           "expected text embedding (cosine similarity).")
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
bars.update_layout(barmode="stack", height=200, margin=dict(t=30, b=10), bargap=0.15,
                   title="Top input items' probabilities per position (hover for the item texts)",
                   xaxis=dict(title=None, dtick=1 if strip["position"].nunique() <= 30 else 5),
                   yaxis=dict(title="p", range=[0, 1], tickformat=".1f"),
                   legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom", traceorder="normal"))
st.plotly_chart(bars, width="stretch", key="explore_strip")

table = position_table(context, synthetic, selected)
st.table(markdown_cells(table.drop(columns=["top input item", "top input p"])), hide_index=True)

st.subheader("Nearest real sequences")
real_indices = real_rows["index"].to_numpy()
st.dataframe(nearest_real_sequences(context, real_emb, real_indices, syn_emb[selected]), hide_index=True,
             width="stretch")

st.subheader("Item popularity and catalogue coverage")
summary = coverage_summary(context, synthetic)
cols = st.columns(len(summary))
for col, (name, value) in zip(cols, summary.items()):
    col.metric(name, f"{value:.1%}" if isinstance(value, float) else f"{value:,}")
profile = popularity_profile(context, synthetic)
bars = px.bar(profile, x="popularity group", y="share", color="source", barmode="group",
              color_discrete_map={"real": "#8c8c8c", "synthetic": "#e4572e"},
              title="Share of interactions (real) and of probability mass (synthetic) by item popularity group")
bars.update_layout(height=360, yaxis_tickformat=".0%", margin=dict(t=50, b=10))
st.plotly_chart(bars, width="stretch")
st.caption(f"Popularity groups are tenths of the catalogue ranked by training interactions. "
           f"Mean top-input probability in this sequence: {np.mean(table['top input p']):.2f}.")
