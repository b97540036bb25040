"""Training a TextSASRec on real sequences (hard next-item labels) or on soft synthetic sequences.

Both go through one loop, `fit`: epochs of mini-batches, validation NDCG@10 after each epoch, early
stopping with the best epoch's weights restored, and an optional checkpoint per epoch (the expert
trajectory that FOSTER's parameter reset draws from). Only training-split items ever reach a batch;
validation items are used to choose the epoch, never as inputs or labels.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from .atomic import atomic_write
from .data import PAD_ID, Split, pad_left, usable
from .evaluation import evaluate_model
from .model import ModelConfig, TextSASRec
from .synthetic import SyntheticData
from .runtime import autocast, check_precision, resolve_device, seed_everything

EpochCallback = Callable[[dict], None]
SELECTION_METRIC = "ndcg@10"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 200  # upper bound; early stopping usually ends sooner
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 15  # epochs without a better validation NDCG@10 before stopping
    eval_every: int = 1  # epochs between validation checks (many tiny epochs on synthetic data)
    seed: int = 0
    device: str = "auto"
    # "fp32", or "bf16" autocast of the forward passes on CUDA (refused on the CPU; see runtime.check_precision).
    precision: str = "fp32"
    # Stop after the first epoch that ends past this many seconds of training; 0 = no limit. For runs that
    # must fit a time budget (the GPU benchmark); the best epoch so far is restored as usual.
    time_limit_s: float = 0.0

    def __post_init__(self) -> None:
        check_precision(self.precision)
        if self.time_limit_s < 0:
            raise ValueError(f"time_limit_s must be 0 (no limit) or positive, not {self.time_limit_s}")


@dataclass
class TrainResult:
    model: TextSASRec
    best_epoch: int
    best_valid: dict[str, float]
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    checkpoints: list[Path] = field(default_factory=list)


def next_item_pairs(train: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-item targets (both left-padded, (U, max_len)): every prefix predicts its next item."""
    kept = [s for s in train if usable(s)]
    return pad_left([s[:-1] for s in kept], max_len), pad_left([s[1:] for s in kept], max_len)


def item_subset(num_items: int, size: int, generator: torch.Generator, *always: torch.Tensor) -> torch.Tensor:
    """V_s, the items a step's softmax runs over: `size` items drawn uniformly (with replacement) plus every
    non-padding item of `always` (a batch's targets, S's supports, ...), sorted and unique, on the CPU.
    `size <= 0` means the whole catalogue. Sorted, so `searchsorted` maps an item id to its row in V_s."""
    if size <= 0:
        return torch.arange(num_items)
    parts = [torch.randint(num_items, (size,), generator=generator)]
    parts += [items[items != PAD_ID].flatten().cpu() for items in always]
    return torch.unique(torch.cat(parts))


def train_on_sequences(
    text_embeddings: torch.Tensor,
    train: list[np.ndarray],
    split: Split | None = None,
    model_cfg: ModelConfig | None = None,
    cfg: TrainConfig | None = None,
    checkpoint_dir: str | Path | None = None,
    callback: EpochCallback | None = None,
) -> TrainResult:
    """Train on real training-split sequences with cross-entropy over all items."""
    model_cfg, cfg = model_cfg or ModelConfig(), cfg or TrainConfig()
    inputs, targets = next_item_pairs(train, model_cfg.max_len)
    if len(inputs) == 0:
        raise ValueError("No training sequence has two or more items; nothing to learn from.")
    inputs, targets = torch.from_numpy(inputs), torch.from_numpy(targets)

    def batch_loss(model: TextSASRec, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        seqs, next_items = batch
        # Columns that are padding in every row carry nothing; dropping them is exact (right-aligned positions).
        first = int((seqs != PAD_ID).any(0).nonzero()[0])
        seqs, next_items = seqs[:, first:], next_items[:, first:]
        hidden = model(seqs)
        real = next_items != PAD_ID
        logits = model.score(hidden[real])  # only real positions: padding costs nothing
        return F.cross_entropy(logits, next_items[real])

    return fit(text_embeddings, (inputs, targets), batch_loss, split, model_cfg, cfg, checkpoint_dir, callback)


def train_on_soft(
    text_embeddings: torch.Tensor,
    soft_inputs: torch.Tensor,
    soft_targets: torch.Tensor,
    split: Split | None = None,
    model_cfg: ModelConfig | None = None,
    cfg: TrainConfig | None = None,
    callback: EpochCallback | None = None,
    mask: torch.Tensor | None = None,
) -> TrainResult:
    """Train on synthetic sequences: inputs (n, L, M), next-item label distributions (n, L, M), and an
    optional (n, L) mask of real positions (False = left padding)."""
    model_cfg, cfg = model_cfg or ModelConfig(), cfg or TrainConfig()
    if soft_inputs.shape != soft_targets.shape or soft_inputs.shape[-1] != text_embeddings.shape[0]:
        raise ValueError(
            f"soft inputs {tuple(soft_inputs.shape)} and targets {tuple(soft_targets.shape)} must both be "
            f"(n, L, {text_embeddings.shape[0]})"
        )
    if mask is None:
        mask = torch.ones(soft_inputs.shape[:2], dtype=torch.bool)

    def batch_loss(model: TextSASRec, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        probs, labels, real = batch
        table = model.item_embeddings()
        hidden = model.forward_soft(probs, table, real)
        real = real[:, -hidden.shape[1] :]
        log_probs = F.log_softmax(model.score(hidden[real], item_table=table), dim=-1)
        return -(labels[:, -hidden.shape[1] :][real] * log_probs).sum(-1).mean()

    tensors = (soft_inputs.float(), soft_targets.float(), mask.bool())
    return fit(text_embeddings, tensors, batch_loss, split, model_cfg, cfg, None, callback)


def train_on_synthetic(
    text_embeddings: torch.Tensor,
    synthetic: SyntheticData,
    split: Split | None = None,
    model_cfg: ModelConfig | None = None,
    cfg: TrainConfig | None = None,
    callback: EpochCallback | None = None,
) -> TrainResult:
    """Train a student on synthetic data alone (how every method is evaluated): soft inputs and soft labels
    over each position's candidate items. Equal to `train_on_soft` on `synthetic.dense(M)`."""
    inputs, labels, mask = synthetic.dense(text_embeddings.shape[0])
    return train_on_soft(text_embeddings, inputs, labels, split, model_cfg, cfg, callback, mask)


def fit(
    text_embeddings: torch.Tensor,
    tensors: tuple[torch.Tensor, ...],
    batch_loss: Callable[[TextSASRec, tuple[torch.Tensor, ...]], torch.Tensor],
    split: Split | None,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    checkpoint_dir: str | Path | None = None,
    callback: EpochCallback | None = None,
) -> TrainResult:
    """The one training loop. Without a split it runs all epochs and keeps the last weights."""
    generator = seed_everything(cfg.seed)
    device = resolve_device(cfg.device)
    check_precision(cfg.precision, device)
    model = TextSASRec(torch.as_tensor(text_embeddings), model_cfg).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    checkpoints: list[Path] = []
    if checkpoint_dir is not None:
        checkpoints.append(save_checkpoint(model, Path(checkpoint_dir) / "epoch_000.safetensors"))

    start = time.perf_counter()

    def train_epoch(epoch: int) -> dict:
        model.train()
        losses = []
        for batch in _batches(tensors, cfg.batch_size, generator):
            with autocast(device, cfg.precision):
                loss = batch_loss(model, tuple(t.to(device) for t in batch))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"Training loss became {loss.item()} at epoch {epoch}; lower the learning rate.")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        if checkpoint_dir is not None:
            checkpoints.append(save_checkpoint(model, Path(checkpoint_dir) / f"epoch_{epoch:03d}.safetensors"))
        return {"loss": float(np.mean(losses))}

    evaluate = (lambda: evaluate_model(model, split, "valid")) if split is not None else None
    history, best = run_epochs(cfg, train_epoch, evaluate, lambda: copy.deepcopy(model.state_dict()), callback)
    if best.state is not None:
        model.load_state_dict(best.state)
    model.eval()
    return TrainResult(model, best.epoch or history[-1]["epoch"], best.valid, history, time.perf_counter() - start,
                       checkpoints)


@dataclass
class BestEpoch:
    """The epoch with the best validation NDCG@10 so far, and a snapshot of what it trained."""

    epoch: int = 0  # 0 = none evaluated yet
    score: float = -1.0
    valid: dict[str, float] = field(default_factory=dict)
    state: object = None


def run_epochs(cfg: TrainConfig, train_epoch: Callable[[int], dict], evaluate: Callable[[], dict] | None,
               snapshot: Callable[[], object], callback: EpochCallback | None = None) -> tuple[list[dict], BestEpoch]:
    """The one epoch loop with early stopping, for every trainer (`fit`, `finetune.train_finetuned`).

    Each epoch: `train_epoch(epoch)` (its dict joins the epoch's record), validation every `eval_every`
    epochs and at the last, a snapshot of the best epoch; stop after `patience` epochs without a better
    validation NDCG@10, or past `time_limit_s`. Without `evaluate` every epoch runs and nothing is kept."""
    start = time.perf_counter()
    history: list[dict] = []
    best = BestEpoch()
    for epoch in range(1, cfg.epochs + 1):
        record = {"epoch": epoch, **train_epoch(epoch), "seconds": time.perf_counter() - start}
        if evaluate is not None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
            valid = evaluate()
            record["valid"] = valid
            if valid[SELECTION_METRIC] > best.score:
                best = BestEpoch(epoch, valid[SELECTION_METRIC], valid, snapshot())
        history.append(record)
        if callback:
            callback(record)
        if evaluate is not None and epoch - best.epoch >= cfg.patience:
            break
        if cfg.time_limit_s and record["seconds"] >= cfg.time_limit_s:
            record["stopped"] = "time_limit_s"
            break
    return history, best


def _batches(tensors: tuple[torch.Tensor, ...], batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
    order = torch.randperm(len(tensors[0]), generator=generator)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        yield tuple(t[index] for t in tensors)


def save_checkpoint(model: TextSASRec, path: Path) -> Path:
    """Weights only (safetensors), written to a temporary file and renamed, so a kill never leaves half a file."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(state, tmp))


def load_checkpoint(model: TextSASRec, path: str | Path) -> TextSASRec:
    model.load_state_dict(load_file(str(path), device=str(next(model.parameters()).device)))
    return model
