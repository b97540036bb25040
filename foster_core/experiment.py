"""End-to-end recipes shared by the CLI and the app: encode item texts, train on the full training
split, evaluate the model and the popularity reference with the one protocol, and report it all."""

from __future__ import annotations

import platform
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import torch

from .data import Dataset, leave_one_out
from .evaluation import evaluate_model, evaluate_split, popularity_scorer
from .model import ModelConfig
from .runtime import resolve_device
from .text_encoder import EncoderConfig, ProgressCallback, TextEncoder
from .training import EpochCallback, TrainConfig, train_on_sequences


def encode_items(
    dataset: Dataset,
    encoder_cfg: EncoderConfig | None = None,
    device: str = "auto",
    cache_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> torch.Tensor:
    encoder = TextEncoder(encoder_cfg, device=device, cache_dir=cache_dir)
    return torch.from_numpy(encoder.encode(dataset.item_texts, progress))


def machine_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(device)}"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def train_full_data(
    dataset: Dataset,
    model_cfg: ModelConfig | None = None,
    train_cfg: TrainConfig | None = None,
    encoder_cfg: EncoderConfig | None = None,
    cache_dir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    encode_progress: ProgressCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> dict:
    """Train a text-SASRec on the full training split; return a JSON-ready report with both reference rows."""
    model_cfg, train_cfg = model_cfg or ModelConfig(), train_cfg or TrainConfig()
    encoder_cfg = encoder_cfg or EncoderConfig()
    device = resolve_device(train_cfg.device)
    split = leave_one_out(dataset)

    started = time.perf_counter()
    text_embeddings = encode_items(dataset, encoder_cfg, train_cfg.device, cache_dir, encode_progress)
    encode_seconds = time.perf_counter() - started

    result = train_on_sequences(
        text_embeddings, split.train, split, model_cfg, train_cfg, checkpoint_dir=checkpoint_dir, callback=on_epoch
    )
    popularity = popularity_scorer(split.train, dataset.num_items)
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": dataset.stats(),
        "config": {
            "model": asdict(model_cfg),
            "train": asdict(train_cfg),
            "encoder": asdict(encoder_cfg),
        },
        "device": str(device),
        "machine": machine_description(device),
        "torch": torch.__version__,
        "seconds": {"encode": round(encode_seconds, 2), "train": round(result.seconds, 2)},
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "evaluation": "full ranking over all items, the user's history masked, leave-one-out",
        "model": {"valid": result.best_valid, "test": evaluate_model(result.model, split, "test")},
        "popularity": {
            "valid": evaluate_split(popularity, split, dataset.num_items, "valid", model_cfg.max_len),
            "test": evaluate_split(popularity, split, dataset.num_items, "test", model_cfg.max_len),
        },
        "history": result.history,
        "checkpoints": [str(p) for p in result.checkpoints],
    }
