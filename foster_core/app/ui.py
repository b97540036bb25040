"""Streamlit plumbing shared by the app's pages: page setup, cached loaders, the chosen dataset, the sidebar.

Only caching and layout live here; everything computed comes from the other foster_core modules. app.py
calls `setup_page` and `sidebar` once per script run, before the chosen page runs."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

import streamlit as st

from ..core.config import from_dict, to_dict
from ..core.data import Dataset, usable_sequence_count
from ..core.loaders import load_dataset
from ..core.model import ModelConfig
from ..core.sources import default_dataset
from ..core.training import TrainConfig
from ..methods.expert import DistillContext
from ..runs.experiment import build_context
from ..runs.jobs import JobQueue
from ..runs.run_store import Run, RunStore
from .forms import browsing_order, run_label

DATASET_KEY = "dataset_spec"


def setup_page(title: str) -> None:
    """The browser tab's title and the wide layout, for the page about to run."""
    st.set_page_config(page_title="FOSTER Studio" if title == "Home" else f"{title} · FOSTER Studio", layout="wide")


def current_dataset_spec() -> str:
    """The dataset chosen on the Home page (kept for the session; a new session starts from the default)."""
    if DATASET_KEY not in st.session_state:
        st.session_state[DATASET_KEY] = default_dataset()
    return st.session_state[DATASET_KEY]


def choose_dataset(spec: str) -> None:
    """Make `spec` the session's dataset. The sidebar was drawn before the page ran, so a change reruns the
    script once to show it there (uploads are saved by content, so the rerun chooses the same folder)."""
    if current_dataset_spec() != spec:
        st.session_state[DATASET_KEY] = spec
        st.rerun()


@st.cache_resource(show_spinner="Loading the dataset...")
def cached_dataset(spec: str) -> Dataset:
    return load_dataset(spec)


@st.cache_data(show_spinner=False)
def cached_usable_count(spec: str) -> int:
    """The largest budget the dataset allows (its split is computed once per dataset, not per rerun)."""
    return usable_sequence_count(cached_dataset(spec))


@st.cache_resource(show_spinner="Encoding item texts (cached on disk after the first time)...")
def cached_context(spec: str, model_json: str, expert_json: str) -> DistillContext:
    """The distillation context of a run's settings; its expert is loaded lazily from the disk cache."""
    return build_context(cached_dataset(spec), from_dict(ModelConfig, json.loads(model_json)),
                         from_dict(TrainConfig, json.loads(expert_json)))


def context_for_run(config: dict, spec: str) -> DistillContext:
    model = to_dict(from_dict(ModelConfig, config.get("model", {})))
    expert = to_dict(from_dict(TrainConfig, config.get("expert", {})))
    return cached_context(spec, json.dumps(model, sort_keys=True), json.dumps(expert, sort_keys=True))


def run_store() -> RunStore:
    return RunStore()


def job_queue() -> JobQueue:
    return JobQueue()


def sidebar() -> None:
    """The dataset in use and any job at work, on every page."""
    with st.sidebar:
        st.caption(f"Dataset: **{current_dataset_spec()}**  \nRuns: `{run_store().root}`")
        active = job_queue().active()
        if active:
            st.info(f"{len(active)} job(s) queued or running — see **Distill**.")


def dataclass_inputs(config: Any, key_prefix: str, choices: dict[str, list[str]] | None = None,
                     skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """One input per field of a dataclass config, defaults taken from `config`; returns the edited values."""
    choices = choices or {}
    values = to_dict(config)
    edited = {}
    columns = st.columns(3)
    for index, f in enumerate(x for x in fields(config) if x.name not in skip):
        column = columns[index % 3]
        value, key = values[f.name], f"{key_prefix}_{f.name}"
        if f.name in choices:
            options = choices[f.name]
            edited[f.name] = column.selectbox(f.name, options, index=options.index(value), key=key)
        elif isinstance(value, bool):
            edited[f.name] = column.checkbox(f.name, value=value, key=key)
        elif isinstance(value, int):
            edited[f.name] = int(column.number_input(f.name, value=value, step=1, key=key))
        elif isinstance(value, float):
            edited[f.name] = float(column.number_input(f.name, value=value, format="%g", key=key))
        elif isinstance(value, str):
            edited[f.name] = column.text_input(f.name, value=value, key=key)
    return edited


def pick_run(runs: list[Run], key: str, empty: str) -> Run:
    """A run chosen in a select box, finished runs and methods with loss curves first, each labelled with its
    status; with no run the page says `empty` and stops."""
    runs = browsing_order(runs)
    if not runs:
        st.info(empty)
        st.stop()
    labels = {r.id: run_label(r, status=True) for r in runs}
    run_id = st.selectbox("Run", list(labels), format_func=labels.get, key=key)
    return next(r for r in runs if r.id == run_id)
