"""How close synthetic sequences come to real users' sequences: does a distilled set copy real users?

Each synthetic sequence is read as the item sequence of its most probable input items (padding skipped).
Against the training split it gets:
- its nearest real sequence: the one holding the most of its positions' items; ties go to the longest
  in-order run shared with it, then to the lowest index;
- the share of its positions whose item appears in that real sequence;
- the longest run of consecutive positions copied in order from that real sequence (the longest contiguous
  common substring of the two item sequences), and the longest such run with any real sequence at all.

FOSTER's start lays several real users end to end in one synthetic sequence, so the nearest real sequence may
cover only part of it; the share then says how much, and the longest run with any real user still finds a
copied stretch of another user. Short histories never reach the copy threshold, so each sequence a row holds
(one, or several packed ones: `SyntheticData.segments`) is also checked whole: does it repeat, in full and in
order, a stretch of one real user's history? A row of ten copied five-item users copies ten people.

Exact and fast at tens of thousands of users: shared positions come from an inverted index (item -> real
sequences holding it), and the longest runs from growing the common substrings of all synthetic sequences
together, one item at a time, keeping only the stretches some real sequence also holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .synthetic import SyntheticData

# A synthetic sequence "copies a real user" when it repeats at least this many of one real user's items
# consecutively and in the same order. By chance, in a catalogue of thousands of items, a run this long is
# practically impossible; it is a recognisable stretch of a person's history (a fifth of a 50-item sequence).
COPY_RUN_THRESHOLD = 10
_BATCH = 4096  # tied candidate sequences compared at once when breaking a tie by run
# A sequence held in a row counts as a real user's history copied whole when all of its items, at least this
# many, repeat consecutively and in order in one real sequence. A pair of popular items often does by chance.
WHOLE_HISTORY_MIN = 3


@dataclass(frozen=True)
class SequenceCopy:
    """One synthetic sequence against the real training sequences."""

    synthetic: int  # the synthetic sequence's index
    positions: int  # its non-padding positions
    nearest_real: int | None  # the real sequence sharing the most of its items; None when none shares any
    shared_positions: int  # its positions whose top input item appears in the nearest real sequence
    share: float  # shared_positions / positions (0 for an empty sequence)
    run: int  # the longest run of consecutive positions copied in order from the nearest real sequence
    longest_run: int  # the same with any real sequence
    longest_run_real: int | None  # the lowest-index real sequence holding that longest run
    sequences: int = 1  # the sequences laid end to end in it, of WHOLE_HISTORY_MIN items or more
    whole_histories: int = 0  # of those, the ones that repeat a stretch of one real user's history in full


@dataclass(frozen=True)
class CopyReport:
    rows: list[SequenceCopy]
    threshold: int = COPY_RUN_THRESHOLD

    @property
    def copying_sequences(self) -> int:
        """Synthetic sequences repeating `threshold` or more consecutive items of one real user."""
        return sum(row.longest_run >= self.threshold for row in self.rows)

    @property
    def whole_histories(self) -> int:
        return sum(row.whole_histories for row in self.rows)

    @property
    def held_sequences(self) -> int:
        return sum(row.sequences for row in self.rows)

    @property
    def mean_share(self) -> float:
        return float(np.mean([row.share for row in self.rows])) if self.rows else 0.0

    @property
    def summary(self) -> str:
        """One line for people: how many synthetic sequences copy a real user, and the mean share."""
        n = len(self.rows)
        if not n:
            return "No synthetic sequences to compare with real users."
        copying = self.copying_sequences
        verb = "copies" if 1 in (copying, n) else "copy"  # "1 of 20 ... copies", "3 of 20 ... copy"
        held = self.held_sequences
        return (f"{copying} of {n} synthetic sequence{'' if n == 1 else 's'} {verb} {self.threshold} or more "
                f"consecutive items of one real user; "
                f"{self.whole_histories} of the {held} sequences of {WHOLE_HISTORY_MIN} or more items they hold "
                f"repeat a stretch of one real user's history in full; "
                f"on average {self.mean_share:.0%} of a synthetic sequence's positions appear in its nearest real "
                f"user's sequence.")

    def to_dict(self) -> dict:
        """Plain JSON: the summary line and its numbers, then one row per synthetic sequence."""
        return {"summary": self.summary, "threshold": self.threshold, "sequences": len(self.rows),
                "copying_sequences": self.copying_sequences, "mean_share": self.mean_share,
                "whole_histories": self.whole_histories, "held_sequences": self.held_sequences,
                "rows": [asdict(row) for row in self.rows]}


def top_input_sequences(synthetic: SyntheticData) -> list[np.ndarray]:
    """Each synthetic sequence as the most probable input item of each of its non-padding positions."""
    top = synthetic.top_items("input", 1)[0][..., 0]  # the item the position table and strip rank first
    return [top[j][synthetic.mask[j]].numpy().astype(np.int64) for j in range(synthetic.num_sequences)]


def held_sequences(synthetic: SyntheticData) -> list[list[np.ndarray]]:
    """Per synthetic sequence, the sequences it holds: itself, or each packed one (`segments`) on its own."""
    rows = top_input_sequences(synthetic)
    if synthetic.segments is None:
        return [[row] for row in rows]
    ids = [synthetic.segments[j][synthetic.mask[j]].numpy() for j in range(synthetic.num_sequences)]
    return [np.split(row, np.flatnonzero(np.diff(seg)) + 1) if len(row) else [row] for row, seg in zip(rows, ids)]


class ItemIndex:
    """Inverted index over real sequences: for each item, the sequences holding it (each once)."""

    def __init__(self, real: list[np.ndarray]):
        self.size = len(real)
        lengths = np.array([len(s) for s in real], dtype=np.int64)
        items = np.concatenate(real).astype(np.int64) if len(real) else np.zeros(0, dtype=np.int64)
        owners = np.repeat(np.arange(self.size, dtype=np.int64), lengths)
        pairs = np.sort(items * max(self.size, 1) + owners)  # by item, then by sequence
        pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]  # a sequence holding an item twice counts once
        self.sequences = pairs % max(self.size, 1)
        self.items = pairs // max(self.size, 1)

    def shared_positions(self, query: np.ndarray) -> np.ndarray:
        """(real sequences,) how many of `query`'s positions hold an item that each real sequence holds."""
        distinct, counts = np.unique(query, return_counts=True)
        starts = np.searchsorted(self.items, distinct, side="left")
        ends = np.searchsorted(self.items, distinct, side="right")
        holders = [self.sequences[s:e] for s, e in zip(starts, ends)]
        if not holders:
            return np.zeros(self.size, dtype=np.int64)
        weights = np.repeat(counts, ends - starts)
        return np.bincount(np.concatenate(holders), weights=weights, minlength=self.size).round().astype(np.int64)


def pad_right(sequences: list[np.ndarray], pad: int = -1) -> np.ndarray:
    """(len(sequences), longest) int64, each row a sequence followed by `pad` (no item id is negative)."""
    out = np.full((len(sequences), max([len(s) for s in sequences], default=0)), pad, dtype=np.int64)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = seq
    return out


def common_runs(query: np.ndarray, real: np.ndarray) -> np.ndarray:
    """(rows of `real`,) the longest run of consecutive items of `query` appearing in the same order and
    consecutively in each row of `real` (rows padded with negative ids), by dynamic programming along the
    diagonals of the match matrix, all rows at once."""
    best = np.zeros(len(real), dtype=np.int64)
    previous = np.zeros(real.shape, dtype=np.int64)
    for item in query:
        matches = real == item
        current = np.zeros_like(previous)
        current[:, 0] = matches[:, 0]
        current[:, 1:] = (previous[:, :-1] + 1) * matches[:, 1:]
        np.maximum(best, current.max(axis=1, initial=0), out=best)
        previous = current
    return best


def longest_runs(queries: list[np.ndarray], real: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the longest run of consecutive items it shares in order with any real sequence, and the
    lowest index of a real sequence holding such a run (-1 when it shares no item at all).

    Stretches (windows) of every sequence grow one item at a time; at each length a window is kept only while
    some real window and some query window hold the same items, so the work shrinks as the length grows. Equal
    windows share an exact id (no hashing), the pair (id at this length, next item) giving the next id."""
    runs = np.zeros(len(queries), dtype=np.int64)
    owners = np.full(len(queries), -1, dtype=np.int64)
    sequences = list(real) + list(queries)
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    if not len(queries) or lengths.sum() == 0:
        return runs, owners
    tokens = np.concatenate(sequences).astype(np.int64)
    owner = np.repeat(np.arange(len(sequences)), lengths)  # the sequence each token belongs to
    end = np.repeat(np.cumsum(lengths), lengths)  # one past the last token of that sequence
    base = int(tokens.max()) + 1
    starts, groups = np.arange(len(tokens)), tokens
    length = 1
    while len(starts):
        from_real = owner[starts] < len(real)
        size = int(groups.max()) + 1
        in_real = np.bincount(groups[from_real], minlength=size) > 0
        in_query = np.bincount(groups[~from_real], minlength=size) > 0
        keep = in_real[groups] & in_query[groups]
        starts, groups, from_real = starts[keep], groups[keep], from_real[keep]
        if not len(starts):
            break
        first_real = np.full(size, len(real), dtype=np.int64)  # the lowest real sequence holding each window
        np.minimum.at(first_real, groups[from_real], owner[starts[from_real]])
        query = owner[starts[~from_real]] - len(real)
        found = np.full(len(queries), len(real), dtype=np.int64)
        np.minimum.at(found, query, first_real[groups[~from_real]])
        reached = np.unique(query)
        runs[reached], owners[reached] = length, found[reached]
        longer = starts + length < end[starts]  # windows that can take one more item of their own sequence
        starts, groups = starts[longer], groups[longer]
        if not len(starts):
            break
        groups = dense_ids(groups * base + tokens[starts + length])
        length += 1
    return runs, owners


def dense_ids(keys: np.ndarray) -> np.ndarray:
    """Equal keys get equal ids 0, 1, 2, ... (in key order): np.unique's inverse, by one sort."""
    order = np.argsort(keys)
    ordered = keys[order]
    ids = np.empty(len(keys), dtype=np.int64)
    ids[order] = np.cumsum(np.r_[False, ordered[1:] != ordered[:-1]])
    return ids


def nearest_real(query: np.ndarray, index: ItemIndex, padded: np.ndarray, bound: int) -> tuple[int | None, int, int]:
    """(nearest real sequence, positions shared with it, longest run copied from it) for one query. `bound`
    is the longest run the query shares with any real sequence: no tied candidate can beat it, so the tie
    search stops when it is reached."""
    shared = index.shared_positions(query)
    most = int(shared.max(initial=0))
    if most == 0:
        return None, 0, 0
    tied = np.flatnonzero(shared == most)  # ascending: the first of equals is the lowest index
    best_run, best = -1, int(tied[0])
    for start in range(0, len(tied), _BATCH):
        chunk = tied[start : start + _BATCH]
        runs = common_runs(query, padded[chunk])
        top = int(np.argmax(runs))
        if runs[top] > best_run:
            best_run, best = int(runs[top]), int(chunk[top])
        if best_run >= min(most, bound):
            break
    return best, most, best_run


def copy_report(synthetic: SyntheticData, real: list[np.ndarray], threshold: int = COPY_RUN_THRESHOLD) -> CopyReport:
    """Every synthetic sequence against the real (training) sequences; see the module's docstring."""
    if threshold < 1:
        raise ValueError(f"the copy threshold is a number of consecutive items, at least 1 (got {threshold})")
    real = [np.asarray(s, dtype=np.int64) for s in real]
    queries = top_input_sequences(synthetic)
    longest, longest_owner = longest_runs(queries, real)
    held = [[q for q in row if len(q) >= WHOLE_HISTORY_MIN] for row in held_sequences(synthetic)]
    pieces = [q for row in held for q in row]
    whole = longest_runs(pieces, real)[0] == np.array([len(q) for q in pieces], dtype=np.int64)
    whole_by_row = np.split(whole, np.cumsum([len(row) for row in held])[:-1])
    index, padded = ItemIndex(real), pad_right(real)
    rows = []
    for j, query in enumerate(queries):
        nearest, shared, run = nearest_real(query, index, padded, int(longest[j]))
        rows.append(SequenceCopy(synthetic=j, positions=len(query), nearest_real=nearest, shared_positions=shared,
                                 share=shared / len(query) if len(query) else 0.0, run=run,
                                 longest_run=int(longest[j]),
                                 longest_run_real=int(longest_owner[j]) if longest_owner[j] >= 0 else None,
                                 sequences=len(held[j]), whole_histories=int(whole_by_row[j].sum())))
    return CopyReport(rows, threshold)
