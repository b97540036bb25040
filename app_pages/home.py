"""Home: what FOSTER Studio is, which dataset to use, and what the dataset looks like."""

import plotly.express as px
import streamlit as st

from foster_core.analysis.profile import head_share, popularity_curve, sample_texts, sequence_lengths
from foster_core.app.ui import cached_dataset, choose_dataset, current_dataset_spec
from foster_core.core.data import DataError
from foster_core.core.loaders import max_file_bytes
from foster_core.core.runtime import resolve_device
from foster_core.core.sources import data_dir, dataset_folders, save_upload, upload_error_message

st.title("FOSTER Studio")
st.write(
    "Dataset distillation for text-based sequential recommendation: shrink thousands of real user "
    "sequences into a few dozen synthetic ones that train a recommender nearly as well."
)
with st.expander("How to use it (five pages, no code)", expanded=False):
    st.markdown(
        "1. **Home** (this page): pick a dataset — the bundled MovieLens works out of the box.\n"
        "2. **Distill**: choose the *quick* preset and press *Start*; watch the loss curves. FOSTER and a random "
        "sample of real sequences of the same size are both evaluated.\n"
        "3. **Explore**: see the synthetic sequences on a map next to real ones, with their item texts.\n"
        "4. **Compare**: which budget reaches 90% and 95% of training on all the data, and what it costs.\n"
        "5. **Export**: download the synthetic data and its dataset card."
    )

current = current_dataset_spec()
folders = dataset_folders(data_dir())
sources = ["Bundled MovieLens", "Data folder", "Upload files"]
default_source = 0 if current == "movielens" else (1 if any(str(f) == current for f in folders) else 2)
source = st.radio("Dataset source", sources, index=default_source, horizontal=True, key="dataset_source")

if source == "Bundled MovieLens":
    choose_dataset("movielens")
elif source == "Data folder":
    if not folders:
        looked = (f"Looked in: {data_dir()}" if data_dir() is not None
                  else "No data folder is set (FOSTER_DATA_DIR is unset and ../shared/data does not exist).")
        st.warning(f"No dataset folders found. Set FOSTER_DATA_DIR to a folder whose sub-folders hold "
                   f"interactions.csv + items.csv (or x.inter + x.item). {looked}")
    else:
        names = [f.name for f in folders]
        chosen = next((f.name for f in folders if str(f) == current), names[0])
        name = st.selectbox(f"Folder in {data_dir()}", names, index=names.index(chosen))
        choose_dataset(str(folders[names.index(name)]))
else:
    st.caption("Interactions: columns user_id,item_id,timestamp (CSV, TSV, Parquet) or a RecBole .inter file; "
               f"items: item_id,text or the matching .item file. UTF-8, at most {max_file_bytes() // 2**20} MB "
               "a file; archives (zip, gz, ...) are not accepted.")
    left, right = st.columns(2)
    interactions = left.file_uploader("Interactions file", type=["csv", "tsv", "parquet", "inter"])
    items = right.file_uploader("Items file", type=["csv", "tsv", "parquet", "item"])
    if interactions and items:
        try:
            folder = save_upload(interactions.name, interactions.getvalue(), items.name, items.getvalue())
            try:
                cached_dataset(str(folder))
            except DataError as exc:
                raise DataError(upload_error_message(exc, folder, interactions.name, items.name)) from None
            choose_dataset(str(folder))
            st.success(f"Loaded {interactions.name} with {items.name}.")
        except DataError as exc:
            st.error(f"This upload cannot be used: {exc}")
            st.stop()
    elif current in ("movielens",) or any(str(f) == current for f in folders):
        st.info("Upload both files to use them; until then the dataset stays as it was.")

try:
    dataset = cached_dataset(current_dataset_spec())
except DataError as exc:
    st.error(str(exc))
    st.stop()

stats = dataset.stats()
cols = st.columns(5)
cols[0].metric("Users", f"{stats['users']:,}")
cols[1].metric("Items", f"{stats['items']:,}")
cols[2].metric("Interactions", f"{stats['interactions']:,}")
cols[3].metric("Median sequence length", f"{stats['seq_len_median']:g}")
cols[4].metric("Device", resolve_device("auto").type.upper())
st.subheader(f"Dataset: {dataset.name}")
for note in dataset.notes:
    st.caption(note)

left, right = st.columns(2)
seq_lengths = sequence_lengths(dataset)
lengths = px.histogram(x=seq_lengths, nbins=50, labels={"x": "items per user (after filtering)"},
                       title="Sequence lengths")
lengths.update_layout(yaxis_title="users", height=340, margin=dict(t=50, b=10))
if len(set(seq_lengths.tolist())) <= 10:  # a few distinct lengths: one whole-number tick each
    lengths.update_xaxes(tickmode="array", tickvals=sorted(set(seq_lengths.tolist())))
left.plotly_chart(lengths, width="stretch")
curve = popularity_curve(dataset)
tail = px.line(curve, x="item rank", y="interactions", log_y=True, title="Item popularity (long tail)")
tail.update_yaxes(dtick=1, title="interactions (log scale)")  # ticks at 1, 10, 100, ... only
tail.update_layout(height=340, margin=dict(t=50, b=10))
right.plotly_chart(tail, width="stretch")
right.caption(f"The top 10% of items get {head_share(dataset):.0%} of the interactions.")

st.subheader("Sample item texts")
st.dataframe(sample_texts(dataset), hide_index=True, width="stretch")
