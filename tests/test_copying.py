"""How close synthetic sequences come to real users: hand-computed cases on tiny data, and the fast search
checked against a plain search over every real sequence."""

import json

import numpy as np
import pytest
import torch

from foster_core.core.copying import (COPY_RUN_THRESHOLD, ItemIndex, common_runs, copy_report, longest_runs,
                                      pad_right, top_input_sequences)
from foster_core.core.synthetic import SyntheticData
from foster_core.methods.registry import distill
from foster_core.runs.evaluator import StudentConfig, evaluate_synthetic
from foster_core.testing import tiny_context


def as_synthetic(sequences: list[list[int]], length: int = 12) -> SyntheticData:
    """One-hot synthetic data whose inputs are exactly `sequences` (left-padded)."""
    return SyntheticData.from_sequences([np.array(s + [0]) for s in sequences], length)


REAL = [np.array([1, 2, 3, 4, 5]), np.array([6, 7, 8]), np.array([1, 9, 3])]


def test_a_copy_of_a_real_sequence_shares_every_position_in_one_run():
    [row] = copy_report(as_synthetic([[1, 2, 3, 4, 5]]), REAL).rows
    assert (row.nearest_real, row.positions, row.shared_positions, row.share) == (0, 5, 5, 1.0)
    assert row.run == row.longest_run == 5 and row.longest_run_real == 0


def test_a_shuffled_copy_shares_every_item_but_no_two_in_order():
    [row] = copy_report(as_synthetic([[5, 3, 1, 4, 2]]), REAL).rows
    assert (row.nearest_real, row.share, row.run, row.longest_run) == (0, 1.0, 1, 1)


def test_a_sequence_of_items_no_real_user_holds_shares_nothing():
    [row] = copy_report(as_synthetic([[10, 11, 12]]), REAL).rows
    assert (row.nearest_real, row.shared_positions, row.share, row.run) == (None, 0, 0.0, 0)
    assert (row.longest_run, row.longest_run_real) == (0, None)


def test_ties_on_shared_positions_go_to_the_longer_run_then_the_lower_index():
    # [1, 9, 3]: 3 of its positions in real 0 ([1, 2, 3, 4, 5] holds 1 and 3 only: 2) and all 3 in real 2.
    # [3, 1]: 2 shared with real 0 and with real 2, run 1 with each: the lower index, 0.
    # [9, 3, 1]: 2 shared with real 0 (1, 3: run 1) and 3 with real 2 (run 2: 9, 3).
    rows = copy_report(as_synthetic([[3, 1], [9, 3, 1]]), REAL).rows
    assert (rows[0].nearest_real, rows[0].shared_positions, rows[0].run) == (0, 2, 1)
    assert (rows[1].nearest_real, rows[1].shared_positions, rows[1].run) == (2, 3, 2)
    tied = [np.array([7, 1, 2]), np.array([1, 3, 2]), np.array([3, 1, 2, 8])]
    [row] = copy_report(as_synthetic([[1, 2, 3]]), tied).rows  # all hold 1 and 2; 3 in the last two
    assert (row.nearest_real, row.shared_positions, row.run) == (2, 3, 2)  # [1, 2] in order beats [1] or [2]


def test_packed_users_show_as_a_partial_share_and_the_longest_run_finds_another_user():
    real = [np.array([10, 11, 12, 13, 14]), np.array([20, 21, 22])]
    # Five items of user 0 out of order (run 1), three of user 1 in order (run 3).
    [row] = copy_report(as_synthetic([[10, 20, 21, 22, 12, 11, 14, 13]]), real).rows
    assert (row.nearest_real, row.shared_positions, row.share, row.run) == (0, 5, 5 / 8, 1)
    assert (row.longest_run, row.longest_run_real) == (3, 1)
    # Two users end to end: the longer is the nearest, covering its own part of the positions.
    [row] = copy_report(as_synthetic([[20, 21, 22, 10, 11, 12, 13, 14]]), real).rows
    assert (row.nearest_real, row.share, row.run, row.longest_run) == (0, 5 / 8, 5, 5)


def test_each_packed_sequence_is_checked_whole_against_real_histories():
    real = [np.array([10, 11, 12, 13, 14]), np.array([20, 21, 22])]
    # One row, three packed sequences: [10, 11, 12] and [20, 21, 22] repeat real stretches in full; [12, 10]
    # has fewer than WHOLE_HISTORY_MIN items and is not counted. No run reaches the threshold of 10.
    rows = SyntheticData.from_sequences([np.array(s + [0]) for s in ([10, 11, 12], [20, 21, 22], [12, 10])], 8)
    [row] = copy_report(rows.packed([3]), real).rows
    assert (row.sequences, row.whole_histories, row.longest_run) == (2, 2, 3)
    # The same items without segments: one sequence of 8, not a real stretch.
    [plain] = copy_report(as_synthetic([[10, 11, 12, 20, 21, 22, 12, 10]]), real).rows
    assert (plain.sequences, plain.whole_histories) == (1, 0)
    report = copy_report(as_synthetic([[10, 11, 12, 13], [13, 11, 12], [21, 22]]), real)
    assert [(r.sequences, r.whole_histories) for r in report.rows] == [(1, 1), (1, 0), (0, 0)]
    assert (report.whole_histories, report.held_sequences) == (1, 2)
    assert "1 of the 2 sequences of 3 or more items they hold repeat a stretch of one real user's history in " \
           "full" in report.summary


def test_the_summary_counts_sequences_copying_a_run_of_the_threshold_and_serialises_to_json():
    report = copy_report(as_synthetic([[1, 2, 3, 4, 5], [5, 3, 1, 4, 2], [10, 11]]), REAL, threshold=3)
    assert report.copying_sequences == 1 and report.mean_share == pytest.approx((1 + 1 + 0) / 3)
    assert report.summary.startswith("1 of 3 synthetic sequences copies 3 or more consecutive items of one real user")
    assert "67%" in report.summary
    data = json.loads(json.dumps(report.to_dict()))
    assert data["summary"] == report.summary and data["threshold"] == 3 and data["copying_sequences"] == 1
    assert [r["nearest_real"] for r in data["rows"]] == [0, 0, None]
    assert copy_report(as_synthetic([[1, 2]]), REAL).threshold == COPY_RUN_THRESHOLD
    with pytest.raises(ValueError, match="at least 1"):
        copy_report(as_synthetic([[1, 2]]), REAL, threshold=0)


def test_each_position_counts_its_most_probable_input_item_and_padding_is_skipped():
    items = torch.tensor([[[4, 1], [2, 3], [0, 0]]])
    probs = torch.tensor([[[0.4, 0.6], [0.9, 0.1], [1.0, 0.0]]])
    mask = torch.tensor([[True, True, False]])
    synthetic = SyntheticData(items, probs, items, probs, mask)
    assert [s.tolist() for s in top_input_sequences(synthetic)] == [[1, 2]]
    [row] = copy_report(synthetic, REAL).rows
    assert (row.positions, row.nearest_real, row.run) == (2, 0, 2)


def plain_longest_common_run(a: np.ndarray, b: np.ndarray) -> int:
    best = 0
    for i in range(len(a)):
        for j in range(len(b)):
            k = 0
            while i + k < len(a) and j + k < len(b) and a[i + k] == b[j + k]:
                k += 1
            best = max(best, k)
    return best


def test_the_fast_search_agrees_with_a_plain_search_over_every_real_sequence():
    rng = np.random.default_rng(0)
    real = [rng.integers(0, 12, rng.integers(1, 9)) for _ in range(40)]
    queries = [rng.integers(0, 12, rng.integers(0, 10)) for _ in range(25)]
    queries += [np.concatenate([real[3], real[7]]), real[5][::-1].copy()]
    index, padded = ItemIndex(real), pad_right(real)
    runs, owners = longest_runs(queries, real)
    for j, query in enumerate(queries):
        shared = [sum(item in set(r.tolist()) for item in query) for r in real]
        assert index.shared_positions(query).tolist() == shared
        plain = [plain_longest_common_run(query, r) for r in real]
        assert common_runs(query, padded).tolist() == plain
        assert runs[j] == max(plain) and owners[j] == (plain.index(max(plain)) if max(plain) else -1)


def test_every_evaluation_reports_how_closely_the_synthetic_data_copies_real_users(tmp_path):
    context = tiny_context(cache_dir=tmp_path)
    synthetic = distill(context, "random", 4)  # whole real training sequences: each copies one user entirely
    copying = evaluate_synthetic(context, synthetic, StudentConfig(seeds=(0,), epochs=2, eval_every=1))["copying"]
    # Their 6 training items are too few for a copied run of COPY_RUN_THRESHOLD, but all of them are copied.
    assert copying["summary"].startswith(f"0 of 4 synthetic sequences copy {COPY_RUN_THRESHOLD} or more")
    assert copying["mean_share"] == 1.0 and copying["summary"].endswith("on average 100% of a synthetic "
                                                                         "sequence's positions appear in its nearest "
                                                                         "real user's sequence.")
    for row in copying["rows"]:
        real = context.train[row["nearest_real"]]
        assert row["share"] == 1.0 and row["run"] == row["positions"] == len(real) - 1  # inputs: all but the last
