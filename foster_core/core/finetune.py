"""Encoder fine-tuning: the language model trains together with the recommender (meant for a GPU).

The default everywhere else is a frozen encoder whose item embeddings are computed once and cached. Here
the language model's layers (all of them, or the top k) are trained with the text-SASRec, so item
embeddings change at every step and cannot be cached. FOSTER's subset idea keeps that affordable: every
item text is tokenised once (kept as tensors on the device), and a step runs only the items it needs
through the language model: the batch's input and target items plus N uniformly sampled items, with the
softmax over that subset. Evaluation computes every item's embedding once with the current language
model (no gradients) and ranks the full catalogue with the one protocol (`evaluation.evaluate_model`).

    text_v = normalise(mean_pool(LM(tokens_v)))     # as text_encoder does, for the sampled items only
    e_v    = Adapter(text_v)                        # the recommender's adapter (TextSASRec.adapter)

With `finetune_layers=0` the language model stays frozen and its embeddings are computed once: the same
loop with the cached table, which is what the step-time comparison measures against.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import PAD_ID, Split
from .evaluation import evaluate_model
from .model import ModelConfig, TextSASRec
from .runtime import autocast, check_precision, resolve_device, seed_everything, synchronize
from .text_encoder import load_hf_encoder, mean_pool_normalise
from .training import EpochCallback, TrainConfig, item_subset, next_item_pairs, run_epochs


@dataclass(frozen=True)
class FinetuneConfig:
    # None = every layer and the token embeddings; k = the top k transformer layers; 0 = frozen (cached table).
    finetune_layers: int | None = None
    subset_size: int = 512  # [N] uniformly sampled items per step, joined with the batch's items; 0 = all items
    lm_lr: float = 2e-5  # the language model's learning rate (the recommender keeps TrainConfig.lr)
    max_length: int = 64  # tokens per item text, for training and evaluation alike
    encoder_path: str | None = None  # any local Hugging Face encoder folder; None = the bundled MiniLM-L6
    encode_batch_size: int = 256  # items per forward pass when all item embeddings are computed
    steps_per_epoch: int = 0  # 0 = one full pass over the training pairs; > 0 caps an epoch (short runs)
    # Dropout inside the language model. Off by default, so that step 0 of fine-tuning computes exactly the
    # frozen encoder's embeddings and the two modes start from the same point.
    lm_dropout: bool = False

    def __post_init__(self) -> None:
        if self.finetune_layers is not None and self.finetune_layers < 0:
            raise ValueError(f"finetune_layers must be None (all), 0 (frozen) or a positive k, not {self.finetune_layers}")
        if self.subset_size < 0 or self.max_length < 1 or self.encode_batch_size < 1 or self.steps_per_epoch < 0:
            raise ValueError("subset_size and steps_per_epoch must be >= 0; max_length and encode_batch_size >= 1")


class ItemTextBank:
    """Every item text tokenised once: token ids and attention masks (M, T) on the device, T = the longest
    text (up to max_length). A batch of items is cut to its own longest text, so short titles stay cheap."""

    def __init__(self, tokenizer, texts: Sequence[str], max_length: int, device: torch.device):
        encoded = tokenizer(list(texts), padding="longest", truncation=True, max_length=max_length, return_tensors="pt")
        self.input_ids = encoded["input_ids"].to(device)
        self.attention_mask = encoded["attention_mask"].to(device)
        self.lengths = self.attention_mask.sum(1)

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def batch(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        longest = int(self.lengths[items].max())
        return self.input_ids[items, :longest], self.attention_mask[items, :longest]


def transformer_layers(lm: nn.Module) -> nn.ModuleList:
    """The stack of transformer layers of a Hugging Face encoder (BERT-style `encoder.layer`, or the one
    ModuleList as long as config.num_hidden_layers)."""
    stack = getattr(getattr(lm, "encoder", None), "layer", None)
    if isinstance(stack, nn.ModuleList):
        return stack
    wanted = getattr(getattr(lm, "config", None), "num_hidden_layers", None)
    for module in lm.modules():
        if isinstance(module, nn.ModuleList) and len(module) == wanted:
            return module
    raise ValueError(f"cannot find the transformer layers of {type(lm).__name__}; use finetune_layers=None (all)")


class FinetunedItemEncoder(nn.Module):
    """Item ids -> unit text embeddings through the (partly) trainable language model."""

    def __init__(self, lm: nn.Module, bank: ItemTextBank, finetune_layers: int | None, lm_dropout: bool = False):
        super().__init__()
        self.lm = lm
        self.bank = bank
        self.lm_dropout = lm_dropout
        if finetune_layers is None:
            lm.requires_grad_(True)
        else:
            lm.requires_grad_(False)
            if finetune_layers:
                layers = transformer_layers(lm)
                if finetune_layers > len(layers):
                    raise ValueError(f"finetune_layers={finetune_layers}, but the encoder has {len(layers)} layers")
                for layer in layers[len(layers) - finetune_layers :]:
                    layer.requires_grad_(True)
        self.train(False)

    def train(self, mode: bool = True) -> "FinetunedItemEncoder":
        # Without lm_dropout the language model always computes as in evaluation (no dropout).
        super().train(mode)
        self.lm.train(mode and self.lm_dropout)
        return self

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.lm.parameters())

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.lm.parameters() if p.requires_grad]

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        input_ids, attention_mask = self.bank.batch(items)
        tokens = self.lm(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool_normalise(tokens, attention_mask).float()

    @torch.no_grad()
    def encode_all(self, batch_size: int = 256) -> torch.Tensor:
        """(M, d) embeddings of the whole catalogue with the current weights, in evaluation mode."""
        was_training = self.training
        self.train(False)
        try:
            order = torch.argsort(self.bank.lengths.cpu(), stable=True).to(self.bank.input_ids.device)
            out = None
            for start in range(0, len(order), batch_size):
                items = order[start : start + batch_size]
                pooled = self(items)
                if out is None:
                    out = torch.empty(len(order), pooled.shape[1], device=pooled.device)
                out[items] = pooled
            return out
        finally:
            self.train(was_training)


def load_finetuned_encoder(texts: Sequence[str], ft: FinetuneConfig, device: torch.device) -> FinetunedItemEncoder:
    tokenizer, lm = load_hf_encoder(ft.encoder_path, device)
    return FinetunedItemEncoder(lm, ItemTextBank(tokenizer, texts, ft.max_length, device), ft.finetune_layers,
                                ft.lm_dropout)


class FinetuneTrainer:
    """One recommender and one encoder with their optimiser; `step` is one training step on a real batch.

    Used by `train_finetuned` (epochs, early stopping) and by `time_finetune_steps` (cost per step).
    """

    def __init__(self, item_texts: Sequence[str], split: Split, model_cfg: ModelConfig, cfg: TrainConfig,
                 ft: FinetuneConfig, encoder: FinetunedItemEncoder | None = None):
        self.device = resolve_device(cfg.device)
        check_precision(cfg.precision, self.device)
        self.split, self.model_cfg, self.cfg, self.ft = split, model_cfg, cfg, ft
        self.encoder = encoder or load_finetuned_encoder(item_texts, ft, self.device)
        initial = self.encoder.encode_all(ft.encode_batch_size)
        # Frozen: this table is the cache; fine-tuned: it only sizes the model and is replaced before evaluation.
        self.cached = None if self.encoder.trainable else initial
        self.generator = seed_everything(cfg.seed)
        self.model = TextSASRec(initial.cpu(), model_cfg).to(self.device)
        groups = [{"params": list(self.model.parameters()), "lr": cfg.lr}]
        if self.encoder.trainable:
            groups.append({"params": self.encoder.trainable_parameters(), "lr": ft.lm_lr})
        self.optimiser = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
        inputs, targets = next_item_pairs(split.train, model_cfg.max_len)
        if len(inputs) == 0:
            raise ValueError("No training sequence has two or more items; nothing to learn from.")
        self.inputs, self.targets = torch.from_numpy(inputs), torch.from_numpy(targets)

    @property
    def num_items(self) -> int:
        return len(self.encoder.bank)

    def subset(self, seqs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """V_s: the batch's input and target items and N uniform items, sorted and unique."""
        return item_subset(self.num_items, self.ft.subset_size, self.generator, seqs, targets).to(self.device)

    def loss(self, seqs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Next-item cross-entropy with softmax over V_s; only V_s's texts pass through the language model."""
        # Columns that are padding in every row carry nothing; dropping them is exact (right-aligned positions).
        first = int((seqs != PAD_ID).any(0).nonzero()[0])
        seqs, targets = seqs[:, first:], targets[:, first:]
        subset = self.subset(seqs, targets)
        text = self.encoder(subset) if self.cached is None else self.cached[subset]
        table = self.model.adapter(text)
        tokens = table[torch.searchsorted(subset, seqs.clamp(min=0))]
        hidden = self.model.forward_tokens(tokens, seqs != PAD_ID)
        real = targets != PAD_ID
        logits = self.model.score(hidden[real], item_table=table)
        return F.cross_entropy(logits.float(), torch.searchsorted(subset, targets[real])), len(subset)

    def step(self, seqs: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]:
        self.model.train()
        self.encoder.train()
        with autocast(self.device, self.cfg.precision):
            loss, subset_size = self.loss(seqs.to(self.device), targets.to(self.device))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"Fine-tuning loss became {loss.item()}; lower the learning rates.")
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        return loss.item(), subset_size

    def batches(self) -> list[torch.Tensor]:
        order = torch.randperm(len(self.inputs), generator=self.generator)
        chunks = list(order.split(self.cfg.batch_size))
        return chunks[: self.ft.steps_per_epoch] if self.ft.steps_per_epoch else chunks

    def refresh_item_table(self) -> None:
        """Point the recommender's text table at the current encoder (all items, no gradients)."""
        table = self.cached if self.cached is not None else self.encoder.encode_all(self.ft.encode_batch_size)
        self.model.replace_text_embeddings(table)

    def evaluate(self, which: str = "valid") -> dict[str, float]:
        self.refresh_item_table()
        return evaluate_model(self.model, self.split, which)

    def state(self) -> dict:
        return {"model": copy.deepcopy(self.model.state_dict()),
                "lm": {k: v.detach().clone() for k, v in self.encoder.lm.state_dict().items()}
                if self.encoder.trainable else None}

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        if state["lm"] is not None:
            self.encoder.lm.load_state_dict(state["lm"])


@dataclass
class FinetuneResult:
    model: TextSASRec  # its text table holds the best epoch's item embeddings
    encoder: FinetunedItemEncoder
    best_epoch: int
    best_valid: dict[str, float]
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    seconds_per_step: float = 0.0  # training steps only (no evaluation), mean over the run
    mean_subset: float = 0.0  # items through the language model per step


def train_finetuned(
    item_texts: Sequence[str],
    split: Split,
    model_cfg: ModelConfig | None = None,
    cfg: TrainConfig | None = None,
    ft: FinetuneConfig | None = None,
    callback: EpochCallback | None = None,
) -> FinetuneResult:
    """Full-data training with the encoder fine-tuned (or frozen with `finetune_layers=0`): epochs of
    real training-split batches, validation NDCG@10 with full ranking, early stopping, best epoch restored
    (recommender and language model)."""
    model_cfg, cfg, ft = model_cfg or ModelConfig(), cfg or TrainConfig(), ft or FinetuneConfig()
    trainer = FinetuneTrainer(item_texts, split, model_cfg, cfg, ft)
    start = time.perf_counter()
    totals = {"step_seconds": 0.0, "steps": 0, "items": 0}

    def train_epoch(epoch: int) -> dict:
        losses = []
        synchronize(trainer.device)
        epoch_start = time.perf_counter()
        for index in trainer.batches():
            loss, subset_size = trainer.step(trainer.inputs[index], trainer.targets[index])
            losses.append(loss)
            totals["items"] += subset_size
        synchronize(trainer.device)
        totals["step_seconds"] += time.perf_counter() - epoch_start
        totals["steps"] += len(losses)
        return {"loss": float(np.mean(losses)), "steps": len(losses)}

    history, best = run_epochs(cfg, train_epoch, lambda: trainer.evaluate("valid"), trainer.state, callback)
    if best.state is not None:
        trainer.load_state(best.state)
    trainer.refresh_item_table()
    trainer.model.eval()
    trainer.encoder.train(False)
    steps = max(1, totals["steps"])
    return FinetuneResult(trainer.model, trainer.encoder, best.epoch or history[-1]["epoch"], best.valid, history,
                          time.perf_counter() - start, totals["step_seconds"] / steps, totals["items"] / steps)


def time_finetune_steps(
    item_texts: Sequence[str],
    split: Split,
    model_cfg: ModelConfig | None = None,
    cfg: TrainConfig | None = None,
    ft: FinetuneConfig | None = None,
    steps: int = 20,
    warmup: int = 3,
) -> dict:
    """Seconds per training step with the encoder frozen (cached table) and fine-tuned (`ft`), on the same
    batches, after `warmup` untimed steps each; peak GPU memory per mode on CUDA."""
    model_cfg, cfg, ft = model_cfg or ModelConfig(), cfg or TrainConfig(), ft or FinetuneConfig()
    if ft.finetune_layers == 0:
        raise ValueError("time_finetune_steps compares against the frozen encoder; give finetune_layers None or k > 0")
    device = resolve_device(cfg.device)
    out: dict = {"steps": steps, "subset_size": ft.subset_size, "batch_size": cfg.batch_size,
                 "precision": cfg.precision, "finetune_layers": "all" if ft.finetune_layers is None else ft.finetune_layers}
    tokenizer, lm = load_hf_encoder(ft.encoder_path, device)
    bank = ItemTextBank(tokenizer, item_texts, ft.max_length, device)
    for mode, layers in (("frozen", 0), ("finetuned", ft.finetune_layers)):
        encoder = FinetunedItemEncoder(lm if mode == "frozen" else copy.deepcopy(lm), bank, layers, ft.lm_dropout)
        trainer = FinetuneTrainer(item_texts, split, model_cfg, cfg, ft, encoder)
        batches = trainer.batches()
        batches = (batches * (1 + (steps + warmup) // max(1, len(batches))))[: steps + warmup]
        for index in batches[:warmup]:
            trainer.step(trainer.inputs[index], trainer.targets[index])
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        synchronize(device)
        started = time.perf_counter()
        subsets = [trainer.step(trainer.inputs[i], trainer.targets[i])[1] for i in batches[warmup:]]
        synchronize(device)
        out[f"{mode}_s_per_step"] = (time.perf_counter() - started) / max(1, len(subsets))
        out[f"{mode}_items_per_step"] = float(np.mean(subsets)) if subsets else 0.0
        out[f"{mode}_trainable_lm_params"] = sum(p.numel() for p in encoder.trainable_parameters())
        if device.type == "cuda":
            out[f"{mode}_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        del trainer, encoder
    out["slowdown"] = out["finetuned_s_per_step"] / max(out["frozen_s_per_step"], 1e-12)
    return out
