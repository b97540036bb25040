"""The expert and its trajectory, made apart from the distillers that use them (as MTT's buffer.py).

`DistillContext` is what every method may use: the training split (never validation or test items),
the items' text embeddings, and an expert recommender trained on the training split with its epoch
chosen on the training split's own holdout, and its refit on the whole training split (the labeller). The
expert and its per-epoch checkpoints (the trajectory
theta*_0..theta*_K that FOSTER's resets draw from) are trained once per dataset and settings and cached
on disk under a key that hashes everything they depend on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core import distributed
from ..core.atomic import atomic_write_json
from ..core.data import Dataset, Split, holdout_split, leave_one_out, pad_left, usable_indices
from ..core.model import ModelConfig, TextSASRec
from ..core.runtime import device_key, resolve_device
from ..core.text_encoder import default_cache_dir
from ..core.train_state import clear_train_state
from ..core.training import EpochCallback, TrainConfig, load_checkpoint, save_checkpoint, train_on_sequences

# A sequence's text summary weighs each item by this per step back from its last item (half weight about
# 7 items back): the expert's summary, its last hidden state, leans on the recent items as well.
RECENCY_DECAY = 0.9


@dataclass
class DistillContext:
    """The training split, item text embeddings and (lazily, cached) an expert trained on them."""

    dataset: Dataset
    text_embeddings: torch.Tensor
    model_cfg: ModelConfig = field(default_factory=ModelConfig)
    expert_cfg: TrainConfig = field(default_factory=TrainConfig)
    cache_dir: Path | None = None
    # Called after each epoch of the expert's training (epoch, loss, holdout metrics, seconds): progress.
    on_expert_epoch: EpochCallback | None = field(default=None, repr=False, compare=False)
    split: Split = field(init=False)
    holdout: Split = field(init=False)
    _expert: TextSASRec | None = field(default=None, init=False, repr=False)
    _trajectory: list[Path] = field(default_factory=list, init=False, repr=False)
    _labeller: TextSASRec | None = field(default=None, init=False, repr=False)
    _best_epoch: int = field(default=0, init=False, repr=False)
    expert_seconds: float = field(default=0.0, init=False)
    labeller_seconds: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.split = leave_one_out(self.dataset)
        self.holdout = holdout_split(self.split.train)

    @property
    def train(self) -> list[np.ndarray]:
        return self.split.train

    @property
    def num_items(self) -> int:
        return self.dataset.num_items

    @cached_property
    def usable(self) -> np.ndarray:
        """Indices of the training sequences with an (input, next item) pair: what a method may pick."""
        return usable_indices(self.train)

    def new_model(self) -> TextSASRec:
        return TextSASRec(self.text_embeddings, self.model_cfg)

    # ------------------------------------------------------------------ the cached expert

    def expert_key(self) -> str:
        digest = hashlib.sha256()
        # "holdout": the expert selects its epoch on the training split's holdout (older caches did not).
        expert_cfg = asdict(self.expert_cfg)
        expert_cfg["device"] = device_key(expert_cfg["device"])  # "auto" and what it resolves to: one entry
        digest.update(json.dumps([asdict(self.model_cfg), expert_cfg, "holdout"], sort_keys=True).encode())
        digest.update(np.ascontiguousarray(self.text_embeddings.numpy()).tobytes())
        for seq in self.train:
            digest.update(seq.tobytes() + b"|")
        # Cached full-data results, kept beside the expert, hold validation and test metrics.
        digest.update(self.split.valid_targets.tobytes() + self.split.test_targets.tobytes())
        return digest.hexdigest()[:24]

    def expert_folder(self) -> Path:
        return (self.cache_dir or default_cache_dir()) / "experts" / self.expert_key()

    def expert_cached(self) -> bool:
        """Whether the expert is in memory or on disk already (asking for it would not train it)."""
        return self._expert is not None or (self.expert_folder() / "expert.json").is_file()

    def labeller_config(self) -> TrainConfig:
        """The labeller's training: the expert's, for the expert's best number of epochs, every one of them
        run (no split to stop on; the time limit already capped the expert, whose epochs these are)."""
        self.expert()
        return replace(self.expert_cfg, epochs=max(1, self._best_epoch), time_limit_s=0.0)

    def labeller_cached(self) -> bool:
        """Whether the expert's refit is in memory or on disk already."""
        return self._labeller is not None or (self.expert_folder() / "labeller.json").is_file()

    def expert(self) -> TextSASRec:
        """The model trained on the training split, its epoch chosen on the training split's own holdout
        (never on validation), cached on disk."""
        if self._expert is None:
            self._load_or_train_expert()
        return self._expert

    def trajectory(self) -> list[Path]:
        """Checkpoints theta*_0..theta*_K of the expert's training, one per epoch up to its best."""
        if self._expert is None:
            self._load_or_train_expert()
        return self._trajectory

    def _load_or_train_expert(self) -> None:
        folder = self.expert_folder()
        meta_path = folder / "expert.json"
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            model = load_checkpoint(self.new_model(), folder / "best.safetensors")
            self._trajectory = [folder / name for name in meta["trajectory"]]
            self.expert_seconds = meta["seconds"]
            self._best_epoch = int(meta.get("best_epoch", len(self._trajectory) - 1))
        else:
            with torch.enable_grad():  # callers may ask for the expert from inside torch.no_grad()
                result = train_on_sequences(self.text_embeddings, self.holdout.train, self.holdout, self.model_cfg,
                                            self.expert_cfg, checkpoint_dir=folder, callback=self.on_expert_epoch)
            model = result.model.cpu()
            # The trajectory stops at the best epoch: later epochs were overfitting by the holdout's account.
            self._trajectory = result.checkpoints[: result.best_epoch + 1]
            self.expert_seconds = result.seconds
            self._best_epoch = result.best_epoch
            if distributed.is_main():  # under torchrun every process trained it; the first one keeps it
                save_checkpoint(model, folder / "best.safetensors")
                atomic_write_json(meta_path, {"trajectory": [p.name for p in self._trajectory],
                                              "seconds": result.seconds, "best_epoch": result.best_epoch,
                                              "valid": result.best_valid})
                clear_train_state(folder)  # only now: a kill before expert.json was written resumes, finished
        self._expert = model.to(resolve_device(self.expert_cfg.device)).eval()

    def labeller(self) -> TextSASRec:
        """The expert refit on the whole training split: the same model and seed, trained from scratch for
        the expert's best number of epochs (chosen on the holdout), without the holdout held back.

        The holdout is each user's last training item, the most recent target of every user: on
        short-sequence data a quarter of the training targets (amazon_scientific), which the expert never
        learns from. The labels a method hands out come from this model; everything chosen on the holdout
        (FOSTER's candidates, its quick students' data) keeps the expert's labels, which never saw the
        holdout's targets (docs/distillation-notes.md, 2026-12-04)."""
        if self._labeller is None:
            self._load_or_train_labeller()
        return self._labeller

    def _load_or_train_labeller(self) -> None:
        expert = self.expert()
        folder = self.expert_folder()
        meta_path = folder / "labeller.json"
        if self._best_epoch < 1:  # the expert's best was its untrained start: nothing to refit
            self._labeller = expert
            return
        if meta_path.is_file():
            model = load_checkpoint(self.new_model(), folder / "labeller.safetensors")
            self.labeller_seconds = json.loads(meta_path.read_text())["seconds"]
        else:
            with torch.enable_grad():
                result = train_on_sequences(self.text_embeddings, self.train, None, self.model_cfg,
                                            self.labeller_config(),
                                            callback=self.on_expert_epoch, resume_dir=folder / "labeller_state")
            model = result.model.cpu()
            self.labeller_seconds = result.seconds
            if distributed.is_main():
                save_checkpoint(model, folder / "labeller.safetensors")
                atomic_write_json(meta_path, {"seconds": result.seconds, "epochs": self._best_epoch})
                clear_train_state(folder / "labeller_state")
        self._labeller = model.to(resolve_device(self.expert_cfg.device)).eval()

    @torch.no_grad()
    def sequence_embeddings(self, indices: np.ndarray | None = None) -> torch.Tensor:
        """The expert's last hidden state for each training sequence (unit norm): a sequence's summary.
        Trains the expert when it is not cached; `text_sequence_embeddings` needs none."""
        expert = self.expert()
        seqs = self.train if indices is None else [self.train[i] for i in indices]
        device = next(expert.parameters()).device
        out = []
        for start in range(0, len(seqs), 512):
            batch = torch.from_numpy(pad_left(seqs[start : start + 512], self.model_cfg.max_len)).to(device)
            out.append(expert.last_hidden(batch).cpu())
        return F.normalize(torch.cat(out), dim=-1)

    def text_sequence_embeddings(self, indices: np.ndarray | None = None) -> torch.Tensor:
        """Each training sequence's summary without an expert (unit norm): the mean of its items' text
        embeddings over the last max_len items (what a student sees), each weighted by RECENCY_DECAY per
        item it lies back from the last, since the next item follows the recent ones most."""
        seqs = self.train if indices is None else [self.train[i] for i in indices]
        text = F.normalize(self.text_embeddings.float(), dim=-1)
        rows = []
        for seq in seqs:
            tail = torch.from_numpy(np.asarray(seq[-self.model_cfg.max_len:], dtype=np.int64))
            weights = RECENCY_DECAY ** torch.arange(len(tail) - 1, -1, -1, dtype=torch.float32)
            rows.append(weights @ text[tail] / weights.sum())
        return F.normalize(torch.stack(rows), dim=-1)
