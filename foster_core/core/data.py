"""Datasets of item texts and chronological user sequences, and the leave-one-out split.

A dataset is a catalogue of M items (internal ids 0..M-1, each with a text) and one chronological
sequence of internal item ids per user. Files become datasets in `loaders.py`; everything that reads a
dataset's sequences (training, distillers, baselines, the app) uses the primitives here, so a rule such as
"a usable sequence has at least two items" exists once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

PAD_ID = -1  # fills the left of sequences shorter than a batch's length


class DataError(ValueError):
    """A problem with the user's data, worded for the person who supplied it."""


@dataclass(frozen=True)
class DataConfig:
    min_interactions: int = 5  # users with fewer interactions are dropped
    # The model's input window. Histories stay whole: training reads a long history in windows of this
    # many items (training.next_item_pairs) and evaluation masks all of it.
    max_seq_len: int = 50
    # True: keep only each user's most recent max_seq_len items, as every dataset did before 12/2026
    # (on MovieLens 1M that dropped 70% of the interactions).
    truncate_histories: bool = False

    def __post_init__(self) -> None:
        # Leave-one-out needs a test item, a validation item and at least one training item.
        if self.min_interactions < 3:
            raise DataError(f"min_interactions must be at least 3 (got {self.min_interactions}).")
        if self.max_seq_len < 3:
            raise DataError(f"max_seq_len must be at least 3 (got {self.max_seq_len}).")


@dataclass
class Dataset:
    name: str
    item_ids: list[str]  # original ids; the list index is the internal id
    item_texts: list[str]
    user_ids: list[str]
    sequences: list[np.ndarray]  # internal item ids, oldest first
    notes: list[str] = field(default_factory=list)  # what loading dropped or changed, for people
    config: DataConfig = field(default_factory=DataConfig)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def num_users(self) -> int:
        return len(self.sequences)

    @property
    def num_interactions(self) -> int:
        return int(sum(len(s) for s in self.sequences))

    def stats(self) -> dict:
        lengths = np.array([len(s) for s in self.sequences])
        return {
            "name": self.name,
            "users": self.num_users,
            "items": self.num_items,
            "interactions": self.num_interactions,
            "seq_len_median": float(np.median(lengths)),
            "seq_len_mean": round(float(lengths.mean()), 2),
            "seq_len_max": int(lengths.max()),
            "config": asdict(self.config),
            "notes": list(self.notes),
        }


@dataclass
class Split:
    """Leave-one-out: per user, the last item is test, the one before it validation, the rest training."""

    train: list[np.ndarray]
    valid_targets: np.ndarray
    test_targets: np.ndarray

    @property
    def valid_inputs(self) -> list[np.ndarray]:
        return self.train

    @property
    def test_inputs(self) -> list[np.ndarray]:
        return [np.append(seq, v) for seq, v in zip(self.train, self.valid_targets)]

    def sample_users(self, users: int, seed: int = 0) -> "Split":
        """The split of at most `users` users drawn without replacement (seeded, in their original order);
        the split itself when it has no more users than that."""
        keep = sample_user_indices(len(self.train), users, seed)
        return self if keep is None else self.subset(keep)

    def shard(self, part: int, parts: int) -> "Split":
        """Every `parts`-th user from user `part` on: one process's share when several validate together."""
        return self if parts == 1 else self.subset(np.arange(part, len(self.train), parts))

    def subset(self, keep: np.ndarray) -> "Split":
        """The split of the users at indices `keep`, in that order."""
        return Split([self.train[i] for i in keep], self.valid_targets[keep], self.test_targets[keep])


def sample_user_indices(count: int, users: int, seed: int = 0) -> np.ndarray | None:
    """Sorted indices of at most `users` of `count` users, drawn without replacement (seeded); None for
    all of them (`users` 0, or no more users than that)."""
    if users <= 0 or count <= users:
        return None
    return np.sort(np.random.default_rng(seed).choice(count, users, replace=False))


def pad_left(sequences: list[np.ndarray], length: int, pad: int = PAD_ID) -> np.ndarray:
    """(len(sequences), length) int64, each row's most recent items at the right, padded on the left."""
    out = np.full((len(sequences), length), pad, dtype=np.int64)
    for row, seq in enumerate(sequences):
        tail = seq[-length:]
        if len(tail):
            out[row, length - len(tail) :] = tail
    return out


def leave_one_out(dataset: Dataset) -> Split:
    seqs = dataset.sequences
    return Split(
        train=[s[:-2] for s in seqs],
        valid_targets=np.array([s[-2] for s in seqs], dtype=np.int64),
        test_targets=np.array([s[-1] for s in seqs], dtype=np.int64),
    )


def holdout_split(train: list[np.ndarray]) -> Split:
    """A split carved from the training split alone: each training sequence's last item is the holdout
    target, the items before it are the inputs. The expert, its trajectory and FOSTER's checkpoint choice
    select on this holdout, so nothing a distiller produces depends on validation or test items.
    (`test_targets` repeats the holdout targets; this split has no test of its own.)"""
    # A sequence of one item has no (input, next item) pair to train on or hold out.
    kept = [s for s in train if usable(s)]
    targets = np.array([s[-1] for s in kept], dtype=np.int64)
    return Split(train=[s[:-1] for s in kept], valid_targets=targets, test_targets=targets.copy())


def next_item_pairs(train: list[np.ndarray], max_len: int, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-item targets, both (rows, max_len) and left-padded: every training target of every
    usable sequence exactly once, each seen after at most max_len items of its own past.

    A sequence with at most max_len targets is one row, as it always was. A longer one is read in windows
    from its end: each window is the max_len items before its last target, and it trains (a target other
    than PAD_ID) only its last `stride` targets; the next window ends `stride` targets earlier; the oldest
    window, which starts at the sequence's first item, trains all of its targets. So every target is trained
    once, after at least max_len - stride items of context (or all there are, near a sequence's start).
    `stride` defaults to half the window: twice the positions of non-overlapping windows, and no target
    with less than half a window of context."""
    stride = max(1, max_len // 2) if stride is None else stride
    if not 1 <= stride <= max_len:
        raise ValueError(f"stride must be between 1 and max_len ({max_len}), not {stride}")
    inputs, targets = [], []
    for seq in train:
        if not usable(seq):
            continue
        end = len(seq) - 1  # the window's last target
        while True:
            start = max(0, end - max_len)  # the window's first input
            window_targets = seq[start + 1 : end + 1].copy()
            if start > 0:  # an older window trains the rest
                window_targets[:-stride] = PAD_ID
            inputs.append(seq[start:end])
            targets.append(window_targets)
            if start == 0:
                break
            end -= stride
    return pad_left(inputs, max_len), pad_left(targets, max_len)


def usable(seq: np.ndarray) -> bool:
    """A sequence with at least one (input, next item) pair: something to train on or hold out."""
    return len(seq) >= 2


def usable_indices(sequences: list[np.ndarray]) -> np.ndarray:
    """Positions of the usable sequences, in order."""
    return np.array([i for i, s in enumerate(sequences) if usable(s)], dtype=np.int64)


def training_targets(sequences: list[np.ndarray]) -> int:
    """Next-item targets in `sequences` (every item after a sequence's first): the training positions that a
    synthetic set's `num_positions` is a share of."""
    return int(sum(max(0, len(s) - 1) for s in sequences))


def item_counts(sequences: list[np.ndarray], num_items: int) -> np.ndarray:
    """Interactions per item over `sequences` (the popularity every popularity view and baseline uses)."""
    if not sequences:
        return np.zeros(num_items, dtype=np.int64)
    return np.bincount(np.concatenate(sequences).astype(np.int64), minlength=num_items)


def popular_items(sequences: list[np.ndarray], num_items: int, share: float = 0.1) -> np.ndarray:
    """The `share` most popular items (at least one), most popular first; count ties by item id."""
    counts = item_counts(sequences, num_items)
    return np.argsort(-counts, kind="stable")[: max(1, int(share * num_items))]


def usable_sequence_count(dataset: Dataset) -> int:
    """How many training sequences a distiller can use (a budget's upper bound), without an expert."""
    return len(usable_indices(leave_one_out(dataset).train))
