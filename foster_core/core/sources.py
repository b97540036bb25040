"""Where datasets come from: the bundled default, a data folder of dataset sub-folders, the app's uploads,
and how a run's recorded dataset is found again (for resume and Explore)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from .atomic import atomic_write
from .data import DataError
from .loaders import check_file_size, check_not_archive
from .text_encoder import default_cache_dir

DATA_DIR_ENV = "FOSTER_DATA_DIR"
DATASET_ENV = "FOSTER_DATASET"
DEFAULT_DATA_DIR = Path("../shared/data")
UPLOAD_SUFFIXES = {"interactions": (".csv", ".tsv", ".parquet", ".inter"), "items": (".csv", ".tsv", ".parquet", ".item")}

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
    folder = (root or upload_dir()) / f"{upload_stem(interactions_name)}-{digest[:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    if inter_suffix == ".inter":
        names = ("upload.inter", "upload.item")
    else:
        names = (f"interactions{inter_suffix}", f"items{item_suffix}")
    for name, content in zip(names, (interactions, items)):
        # Atomic: a session killed mid-write leaves the old file or none, never half an upload.
        atomic_write(folder / name, lambda tmp, content=content: Path(tmp).write_bytes(content))
    return folder


def upload_stem(name: str) -> str:
    """The upload folder's readable part: the interactions file's name without suffix, as letters, digits,
    '_' and '-' only (never a path), or 'upload' when nothing is left."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name.replace("\\", "/")).stem).strip("_-.")[:40]
    return stem or "upload"


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
