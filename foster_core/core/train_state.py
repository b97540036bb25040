"""A training loop's state after each epoch, on disk, so that a killed training continues where it stopped.

An amazon_games expert trains for more than an hour on one CPU thread; before this, a kill at epoch 39 lost
every epoch (its per-epoch weights alone cannot continue it: AdamW's moments and the random streams were
gone). `fit` writes `resume.pt` beside its epoch checkpoints after every epoch, atomically, and on its next
call with the same checkpoint folder reloads it and goes on from the next epoch. Everything the next epoch
depends on is in it: weights, optimiser moments, every random stream (batch order, sampled negatives,
dropout), the history and the best epoch so far. So a resumed training ends with the same weights as one
never killed (tests/test_train_state.py pins it). A `fingerprint` of the configs and the data guards against
continuing some other training that used the same folder, and the model's layout (class, weight shapes)
against code that changed since: either mismatch starts afresh. The caller clears the state once it has
kept the result (`clear_train_state`).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch

from .atomic import atomic_write

RESUME_FILE = "resume.pt"


def fingerprint(*configs: object, tensors: tuple[torch.Tensor, ...] = ()) -> str:
    """A digest of JSON-able configs and of the training tensors' bytes: what makes two trainings the same."""
    digest = hashlib.sha256(json.dumps(configs, sort_keys=True, default=str).encode())
    for tensor in tensors:
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def random_streams(generators: tuple[torch.Generator, ...], device: torch.device) -> dict:
    """The states of the given generators and of torch's global streams (dropout draws from those)."""
    state = {"generators": [g.get_state() for g in generators], "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_random_streams(state: dict, generators: tuple[torch.Generator, ...], device: torch.device) -> None:
    for generator, saved in zip(generators, state["generators"], strict=True):
        generator.set_state(saved)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def save_train_state(folder: Path, state: dict) -> Path:
    """Write `state` (tensors, numbers, strings, lists and dicts of them) to folder/resume.pt, atomically."""
    return atomic_write(Path(folder) / RESUME_FILE, lambda tmp: torch.save(state, tmp))


def load_train_state(folder: Path, expected_fingerprint: str) -> dict | None:
    """The saved state of the training with this fingerprint, or None: no file, another training's file, or
    one that cannot be read (then the training starts from its first epoch, as it would have anyway)."""
    path = Path(folder) / RESUME_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a torn or foreign file: atomic writes make this rare; starting afresh is safe
        warnings.warn(f"{path}: the saved training state cannot be read ({error}); training starts from epoch 1")
        return None
    return state if state.get("fingerprint") == expected_fingerprint else None


def clear_train_state(folder: Path) -> None:
    """Remove folder/resume.pt once the training it belongs to has finished, and the folder if that leaves
    it empty (a folder of its own, as each full-data student has)."""
    (Path(folder) / RESUME_FILE).unlink(missing_ok=True)
    try:
        Path(folder).rmdir()
    except OSError:  # not empty: it holds the epoch checkpoints, or other files
        pass
