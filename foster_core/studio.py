"""What the app shows, computed here so the pages stay thin: data sources and uploads, dataset profiles,
presets, live progress of a run, loss curves, and the comparison table over the run store."""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .benchmark import HEADLINE, StudentConfig
from .atomic import atomic_write
from .data import DataError, Dataset, check_file_size, check_not_archive
from .distill import DistillConfig
from .jobs import JobSpec
from .run_store import Run, RunStore
from .text_encoder import default_cache_dir
from .training import TrainConfig

DATA_DIR_ENV = "FOSTER_DATA_DIR"
DATASET_ENV = "FOSTER_DATASET"
DEFAULT_DATA_DIR = Path("../shared/data")
UPLOAD_SUFFIXES = {"interactions": (".csv", ".tsv", ".parquet", ".inter"), "items": (".csv", ".tsv", ".parquet", ".item")}

# ----------------------------------------------------------------------------- data sources


def default_dataset() -> str:
    return os.environ.get(DATASET_ENV) or "movielens"


def data_dir() -> Path | None:
    """The folder whose sub-folders are offered as datasets: $FOSTER_DATA_DIR, else ../shared/data if present."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured)
    return DEFAULT_DATA_DIR if DEFAULT_DATA_DIR.is_dir() else None


def dataset_folders(root: Path | None) -> list[Path]:
    """Sub-folders holding a loadable pair (interactions.* + items.*, or x.inter + x.item)."""
    if root is None or not root.is_dir():
        return []
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        names = {p.name for p in folder.iterdir()}
        generic = any(f"interactions{s}" in names for s in (".csv", ".tsv", ".parquet")) and any(
            f"items{s}" in names for s in (".csv", ".tsv", ".parquet"))
        recbole = any(n.endswith(".inter") for n in names)
        if generic or recbole:
            found.append(folder)
    return found


def upload_dir() -> Path:
    """The app's own data folder: uploads are written here and nowhere else."""
    return default_cache_dir() / "uploads"


def save_upload(interactions_name: str, interactions: bytes, items_name: str, items: bytes,
                root: Path | None = None) -> Path:
    """Write an uploaded pair into a folder of its own (named by content) that `load_dataset` reads.

    The names chosen here, not the uploaded names, reach the disk, so an upload cannot write elsewhere."""
    for name, content in ((interactions_name, interactions), (items_name, items)):
        check_file_size(len(content), name)
        check_not_archive(name, content[:8])
    inter_suffix, item_suffix = Path(interactions_name).suffix.lower(), Path(items_name).suffix.lower()
    if inter_suffix not in UPLOAD_SUFFIXES["interactions"]:
        raise DataError(f"{interactions_name}: interactions must be .csv, .tsv, .parquet or RecBole .inter")
    if item_suffix not in UPLOAD_SUFFIXES["items"]:
        raise DataError(f"{items_name}: items must be .csv, .tsv, .parquet or RecBole .item")
    if (inter_suffix == ".inter") != (item_suffix == ".item"):
        raise DataError("RecBole files come in pairs: upload an .inter file with its .item file.")
    digest = hashlib.sha256(interactions + b"\0" + items).hexdigest()[:16]
    folder = (root or upload_dir()) / f"upload-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    if inter_suffix == ".inter":
        names = ("upload.inter", "upload.item")
    else:
        names = (f"interactions{inter_suffix}", f"items{item_suffix}")
    for name, content in zip(names, (interactions, items)):
        # Atomic: a session killed mid-write leaves the old file or none, never half an upload.
        atomic_write(folder / name, lambda tmp, content=content: Path(tmp).write_bytes(content))
    return folder


def upload_error_message(error: Exception, folder: Path, interactions_name: str, items_name: str) -> str:
    """The loader's message, naming the files the person uploaded rather than our copies of them."""
    message = str(error)
    saved = {p: (interactions_name if p.suffix == ".inter" or p.stem == "interactions" else items_name)
             for p in folder.iterdir()}
    for path, original in saved.items():
        message = message.replace(str(path), original)
    message = message.replace(str(folder), "upload")
    for path, original in saved.items():  # the loader may name a file by its bare name
        message = message.replace(path.name, original)
    return message


# ----------------------------------------------------------------------------- dataset profile


def sequence_lengths(dataset: Dataset) -> np.ndarray:
    return np.array([len(s) for s in dataset.sequences])


def popularity_curve(dataset: Dataset) -> pd.DataFrame:
    """Interactions per item, most popular first: the long tail."""
    counts = np.sort(np.bincount(np.concatenate(dataset.sequences), minlength=dataset.num_items))[::-1]
    return pd.DataFrame({"item rank": np.arange(1, len(counts) + 1), "interactions": counts})


def head_share(dataset: Dataset, share: float = 0.1) -> float:
    """Share of all interactions that go to the `share` most popular items."""
    counts = popularity_curve(dataset)["interactions"].to_numpy()
    return float(counts[: max(1, int(share * len(counts)))].sum() / max(counts.sum(), 1))


def sample_texts(dataset: Dataset, n: int = 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(dataset.num_items, min(n, dataset.num_items), replace=False))
    return pd.DataFrame({"item_id": [dataset.item_ids[i] for i in picks], "text": [dataset.item_texts[i] for i in picks]})


# ----------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class Preset:
    """A starting point for the Distill page's settings."""

    description: str
    distill: DistillConfig
    student: StudentConfig
    expert: TrainConfig
    budgets: tuple[int, ...] = (20,)
    methods: tuple[str, ...] = ("foster", "random")
    reference: bool = True


PRESETS: dict[str, Preset] = {
    "quick": Preset(
        "First result in about two minutes on a 2-core CPU: a 10-epoch expert, 40 FOSTER steps, one student of "
        "at most 100 epochs, and a 10-epoch full-data reference. Numbers are indicative, not paper-grade.",
        DistillConfig(steps=40, log_every=2, checkpoint_every=20, reset_every=20, select_every=0),
        StudentConfig(seeds=(0,), epochs=100, patience=30, eval_every=5),
        TrainConfig(epochs=10, patience=5),
    ),
    "standard": Preset(
        f"The library defaults: a fully trained expert, {DistillConfig().steps} FOSTER steps with selection on the "
        "training holdout, three students per run. Tens of minutes on a CPU for MovieLens (the expert and "
        "reference are cached).",
        DistillConfig(), StudentConfig(), TrainConfig(),
    ),
}


def parse_budgets(text: str, default: int, usable: int | None = None) -> list[int]:
    """The budgets typed into the sweep field ("10, 20, 50"; spaces or semicolons work too), or [default]
    when it is empty; each at least 1 and at most `usable` sequences."""
    budgets = []
    for part in re.split(r"[,;\s]+", text.strip()):
        if not part:
            continue
        try:
            budgets.append(int(part))
        except ValueError:
            raise ValueError(f"budgets are whole numbers separated by commas, e.g. 10, 20, 50 ({part!r} is not one)") from None
    budgets = sorted(set(budgets)) or [int(default)]
    if budgets[0] < 1:
        raise ValueError(f"a budget is a number of synthetic sequences, at least 1 (got {budgets[0]})")
    if usable is not None and budgets[-1] > usable:
        raise ValueError(f"budget {budgets[-1]} is more than the {usable} usable training sequences of this dataset")
    return budgets


def job_spec(dataset: str, preset: Preset, methods: list[str], budgets: list[int], distill: DistillConfig,
             student: StudentConfig, expert: TrainConfig, preset_name: str, threads: int = 0,
             reference: bool = True) -> JobSpec:
    student_dict = asdict(student)
    student_dict["seeds"] = list(student.seeds)
    return JobSpec(dataset=dataset, methods=list(methods), budgets=[int(b) for b in budgets], distill=asdict(distill),
                   student=student_dict, expert=asdict(expert), reference=reference, preset=preset_name,
                   threads=threads)


# ----------------------------------------------------------------------------- live progress


@dataclass
class Progress:
    fraction: float | None  # None while no step count is known (coresets, evaluation)
    text: str
    eta_seconds: float | None = None
    loss_records: list[dict] = field(default_factory=list)


def loss_records(run: Run) -> list[dict]:
    """The history lines that are loss-curve points (selection candidates are not)."""
    return [r for r in run.history if "phase" not in r and "step" in r]


def run_progress(run: Run) -> Progress:
    status = run.status
    records = loss_records(run)
    state = status.get("status")
    if state != "running":
        return Progress(1.0 if state == "finished" else None, f"{state}: {status.get('message', '')}", None, records)
    if status.get("phase") == "evaluate":
        return Progress(None, "evaluating: training fresh students on the synthetic data", None, records)
    selecting = [r for r in run.history if r.get("phase") == "select"]
    if selecting:
        last = selecting[-1]
        return Progress(None, f"choosing the best checkpoint on the training holdout "
                              f"({last.get('candidate')} of {last.get('candidates')})", None, records)
    if records:
        last = records[-1]
        total, step, seconds = last.get("of") or 0, last["step"], last.get("seconds", 0.0)
        eta = seconds / max(step, 1) * (total - step) if total else None
        return Progress(step / total if total else None, f"step {step} of {total}", eta, records)
    started = status.get("started")
    elapsed = f" ({time.time() - started:.0f} s)" if isinstance(started, (int, float)) else ""
    return Progress(None, f"{status.get('message', 'starting')}{elapsed}", None, records)


def loss_frame(records: list[dict]) -> pd.DataFrame:
    """Long format (step, term, value) of every numeric loss term, for one line per term."""
    skip = {"step", "of", "seconds", "subset"}
    rows = [{"step": r["step"], "term": k, "value": float(v)} for r in records for k, v in r.items()
            if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool)]
    return pd.DataFrame(rows, columns=["step", "term", "value"])


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


# ----------------------------------------------------------------------------- comparison


def _same_setup(a: dict, b: dict) -> bool:
    return all(a.get(k) == b.get(k) for k in ("dataset", "model", "expert"))


def find_reference(runs: list[Run], config: dict) -> Run | None:
    """The newest finished full-data run for the same dataset, model and expert settings."""
    for run in runs:
        if run.config.get("method") == "full" and run.results and _same_setup(run.config, config):
            return run
    return None


def compare_table(store: RunStore) -> pd.DataFrame:
    """One row per run: test metrics mean ± std, ratio to the matching full-data run, costs, status."""
    runs = store.list()
    rows = []
    for run in runs:
        config, results, status = run.config, run.results, run.status
        reference = find_reference(runs, config) if config.get("method") != "full" else run
        row = {"run": run.id, "method": config.get("method"), "budget": config.get("budget"),
               "dataset": config.get("dataset"), "preset": config.get("preset", ""),
               "status": status.get("status"), "created": config.get("created", "")}
        test = (results or {}).get("test", {})
        ref_test = ((reference.results or {}).get("test", {}) if reference else {})
        for metric in HEADLINE:
            if metric in test:
                row[metric] = test[metric]["mean"]
                row[f"{metric} std"] = test[metric]["std"]
                if metric in ("ndcg@10", "recall@10", "recall@20") and metric in ref_test:
                    row[f"{metric} / full"] = test[metric]["mean"] / max(ref_test[metric]["mean"], 1e-12)
        row["seeds"] = len((results or {}).get("per_seed_test", [])) or None
        row["distill s"] = (results or {}).get("distill_seconds")
        row["student train s"] = (results or {}).get("student_seconds")
        row["full-data train s"] = (reference.results or {}).get("student_seconds") if reference else None
        row["coverage"] = (results or {}).get("coverage")
        row["popular share"] = (results or {}).get("popular_share")
        rows.append(row)
    return pd.DataFrame(rows)


def mean_std(frame: pd.DataFrame, metric: str) -> pd.Series:
    """'0.0412 ± 0.0031' strings for a table cell."""
    return frame.apply(lambda r: (f"{r[metric]:.4f} ± {r[f'{metric} std']:.4f}"
                                  if pd.notna(r.get(metric)) else "–"), axis=1)


def resolve_dataset_spec(config: dict) -> str:
    """The load_dataset spec of a run's dataset: recorded by app jobs; for other runs, found by name."""
    if config.get("dataset_spec"):
        return config["dataset_spec"]
    name = str(config.get("dataset", ""))
    if name.lower() == "movielens":
        return "movielens"
    for root in (data_dir(), upload_dir()):
        if root is not None and (root / name).is_dir():
            return str(root / name)
    raise DataError(f"cannot find the dataset {name!r} of this run: it was not made by the app, and no folder "
                    f"of that name is in the data folder ({data_dir()}) or the uploads ({upload_dir()}).")


@dataclass(frozen=True)
class ExportFile:
    filename: str
    description: str
    mime: str
    path: Path


EXPORTS = (
    ("synthetic.safetensors", "The synthetic data itself: per position, sparse input and label distributions "
                              "(load with foster_core.synthetic.SyntheticData.load).", "application/octet-stream"),
    ("synthetic_top_items.csv", "Readable table: top-5 input and label items per position with text and "
                                "probability.", "text/csv"),
    ("synthetic_interactions.csv", "Each position's most probable item as interactions (user_id,item_id,timestamp; "
                                   "original item ids).", "text/csv"),
    ("synthetic.inter", "The same interactions as a RecBole atomic .inter file.", "text/tab-separated-values"),
    ("config.json", "What was asked for: method, budget, dataset and every config.", "application/json"),
    ("results.json", "Evaluation: test and validation metrics per student, coverage, costs.", "application/json"),
)


def export_files(run: Run) -> list[ExportFile]:
    """The files of a run that can be downloaded, in a fixed order; missing ones are left out."""
    return [ExportFile(name, description, mime, run.path / name) for name, description, mime in EXPORTS
            if (run.path / name).is_file()]
