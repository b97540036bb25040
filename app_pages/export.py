"""Export: download a run's synthetic data in every format the library writes, with its config and metrics."""

import pandas as pd
import streamlit as st

from foster_core.app.ui import pick_run, run_store
from foster_core.runs.run_store import export_files

st.title("Export")
st.write("Take the synthetic data elsewhere: as tensors, as a readable table with item texts, or as plain "
         "interactions for any recommender library (generic CSV or RecBole).")
store = run_store()
run = pick_run([r for r in store.list() if r.synthetic_path.is_file()], "export_run",
               "Nothing to export yet: finish a run on the **Distill** page.")

for entry in export_files(run):
    left, right = st.columns([1, 2])
    left.download_button(entry.filename, entry.path.read_bytes(), file_name=f"{run.id}-{entry.filename}",
                         mime=entry.mime, key=f"download_{entry.filename}", width="stretch")
    right.caption(entry.description)

top_items = run.path / "synthetic_top_items.csv"
if top_items.is_file():
    st.subheader("Preview: synthetic_top_items.csv")
    st.dataframe(pd.read_csv(top_items, nrows=200), hide_index=True, width="stretch")
