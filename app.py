"""FOSTER Studio home page: the dataset at a glance. The full app (distill, explore, compare) is built on this."""

import streamlit as st

from foster_core.data import DataError, load_dataset
from foster_core.runtime import resolve_device

st.set_page_config(page_title="FOSTER Studio", layout="wide")


@st.cache_resource(show_spinner="Loading the dataset...")
def cached_dataset(spec: str):
    return load_dataset(spec)


st.title("FOSTER Studio")
st.write(
    "Dataset distillation for text-based sequential recommendation: shrink thousands of real user "
    "sequences into a few dozen synthetic ones that train a recommender nearly as well."
)

try:
    dataset = cached_dataset("movielens")
except DataError as exc:
    st.error(str(exc))
    st.stop()

stats = dataset.stats()
cols = st.columns(4)
cols[0].metric("Users", f"{stats['users']:,}")
cols[1].metric("Items", f"{stats['items']:,}")
cols[2].metric("Interactions", f"{stats['interactions']:,}")
cols[3].metric("Device", resolve_device("auto").type.upper())
st.subheader(f"Dataset: {dataset.name}")
for note in dataset.notes:
    st.caption(note)
st.dataframe({"item text": dataset.item_texts[:10]}, hide_index=True)
