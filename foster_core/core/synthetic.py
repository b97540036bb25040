"""Synthetic sequences: per position, a sparse distribution over items for the input and for the label.

n sequences of L positions. Position (j, t) holds an input distribution over K_in candidate items and a
next-item label distribution over K_lab candidates. Sparse supports keep memory and every step of work
independent of the catalogue size M; `dense` expands them to (n, L, M) when a student trains on them.
A real sequence is the special case K = 1 (one-hot inputs and labels). A packed row holds several
sequences end to end; `segments` says where each begins, so a student keeps them apart (core/model.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .atomic import atomic_write
from .data import PAD_ID, pad_left


def expected_embeddings(items: torch.Tensor, probs: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Each position's expected row of `table` under its sparse distribution: sum_k probs[..., k] *
    table[items[..., k]]. How soft inputs enter a model, and how the app places a position in text space."""
    return (probs.unsqueeze(-1) * table[items]).sum(-2)


@dataclass
class SyntheticData:
    input_items: torch.Tensor  # (n, L, K_in) int64
    input_probs: torch.Tensor  # (n, L, K_in), rows sum to 1
    label_items: torch.Tensor  # (n, L, K_lab) int64
    label_probs: torch.Tensor  # (n, L, K_lab)
    mask: torch.Tensor  # (n, L) bool; False = left padding of a shorter sequence
    # (n, L) int64, for packed rows: which sequence of its row a position belongs to, 1, 2, ... from the
    # left, 0 at padding. None = each row is one sequence.
    segments: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n, L = self.mask.shape
        for name in ("input_items", "input_probs", "label_items", "label_probs"):
            if tuple(getattr(self, name).shape[:2]) != (n, L):
                raise ValueError(f"{name} has shape {tuple(getattr(self, name).shape)}, expected ({n}, {L}, K)")
        if self.segments is not None:
            if tuple(self.segments.shape) != (n, L):
                raise ValueError(f"segments has shape {tuple(self.segments.shape)}, expected ({n}, {L})")
            if not bool(((self.segments > 0) == self.mask.bool()).all()):
                raise ValueError("segments must be 0 exactly at the padding positions")
            if bool((self.segments.diff(dim=1) < 0).any()):
                raise ValueError("segments must not decrease along a row (sequences laid left to right)")

    @property
    def num_sequences(self) -> int:
        return self.mask.shape[0]

    @property
    def num_positions(self) -> int:
        """Non-padding input positions: what a budget really buys (packed sequences hold several users)."""
        return int(self.mask.sum())

    @classmethod
    def from_sequences(cls, sequences: list[np.ndarray], max_len: int) -> "SyntheticData":
        """Real training sequences as one-hot synthetic data: input t is item t, label t is item t+1."""
        inputs = torch.from_numpy(pad_left([s[:-1] for s in sequences], max_len))
        labels = torch.from_numpy(pad_left([s[1:] for s in sequences], max_len))
        mask = inputs != PAD_ID
        ones = mask.float().unsqueeze(-1)
        return cls(inputs.clamp(min=0).unsqueeze(-1), ones, labels.clamp(min=0).unsqueeze(-1), ones.clone(), mask)

    def dense(self, num_items: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs (n, L, M), labels (n, L, M), mask (n, L)) for training a student."""
        n, L = self.mask.shape
        inputs = torch.zeros(n, L, num_items).scatter_add_(2, self.input_items, self.input_probs.float())
        labels = torch.zeros(n, L, num_items).scatter_add_(2, self.label_items, self.label_probs.float())
        return inputs, labels, self.mask

    def top_items(self, which: str = "input", k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
        """(items, probs), each (n, L, k'), the k most probable items per position, most probable first."""
        items, probs = (self.input_items, self.input_probs) if which == "input" else (self.label_items, self.label_probs)
        top = probs.topk(min(k, probs.shape[-1]), dim=-1)
        return items.gather(-1, top.indices), top.values

    def coverage(self, num_items: int, threshold: float = 0.01) -> float:
        """Share of the catalogue with at least `threshold` probability at some real input or label position."""
        seen = torch.zeros(num_items, dtype=torch.bool)
        for items, probs in ((self.input_items, self.input_probs), (self.label_items, self.label_probs)):
            keep = (probs >= threshold) & self.mask.unsqueeze(-1)
            seen[items[keep]] = True
        return float(seen.float().mean())

    def packed(self, group_sizes: list[int]) -> "SyntheticData":
        """Consecutive rows laid end to end, `group_sizes[j]` of them into row j: each row's real positions,
        in order, left-padded to L, numbered in `segments`. Every position keeps the labels it had in its own
        row, so labels made before packing are conditioned on that row's own prefix, never on another row's
        items."""
        if sum(group_sizes) != self.num_sequences:
            raise ValueError(f"group sizes add up to {sum(group_sizes)}, not the {self.num_sequences} rows")
        L = self.mask.shape[1]
        fields = (self.input_items, self.input_probs, self.label_items, self.label_probs)
        packed = [torch.zeros((len(group_sizes), L) + f.shape[2:], dtype=f.dtype) for f in fields]
        segments = torch.zeros(len(group_sizes), L, dtype=torch.long)
        first = 0
        for row, size in enumerate(group_sizes):
            keep = self.mask[first:first + size]
            length = int(keep.sum())
            if length > L:
                raise ValueError(f"row {row} would hold {length} positions, more than L = {L}")
            for target, source in zip(packed, fields):
                target[row, L - length:] = source[first:first + size][keep]
            sequence_of = torch.arange(1, size + 1)[:, None].expand(size, L)
            segments[row, L - length:] = sequence_of[keep]
            first += size
        return SyntheticData(*packed, segments > 0, segments)

    def save(self, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
        tensors = {
            "input_items": self.input_items, "input_probs": self.input_probs.float(),
            "label_items": self.label_items, "label_probs": self.label_probs.float(), "mask": self.mask,
        }
        if self.segments is not None:
            tensors["segments"] = self.segments
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))

    @classmethod
    def load(cls, path: str | Path) -> "SyntheticData":
        t = load_file(str(path))
        return cls(t["input_items"], t["input_probs"], t["label_items"], t["label_probs"], t["mask"].bool(),
                   t.get("segments"))
