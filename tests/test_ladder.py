"""The budget ladder of `bench --budgets auto`: its rungs, its stop rule and the bench's closing lines,
on fake results (no student is trained)."""

import pytest

from foster_core.cli_tables import format_bench_table, format_reach_lines
from foster_core.runs import experiment
from foster_core.runs.ladder import ladder_budgets, ladder_passed, ladder_stop, results_stop
from foster_core.runs.presets import sweep_budgets
from foster_core.runs.runner import RunOutcome
from foster_core.testing import tiny_context


def test_the_rungs_are_10_20_50_times_powers_of_ten_and_end_at_the_usable_sequences():
    assert ladder_budgets(10_000)[:8] == [10, 20, 50, 100, 200, 500, 1000, 2000]
    assert ladder_budgets(10_000)[-1] == 10_000 and ladder_budgets(10_000)[-2] == 5000
    assert ladder_budgets(120) == [10, 20, 50, 100, 120]  # never above the usable sequences
    assert ladder_budgets(50) == [10, 20, 50]  # a rung equal to the usable count is not tried twice
    assert ladder_budgets(7) == [7]
    with pytest.raises(ValueError, match="no usable training sequence"):
        ladder_budgets(0)


def test_a_method_stops_at_95_percent_of_full_or_a_quarter_of_the_training_positions():
    assert ladder_stop({"ratio_ndcg@10": 0.94, "position_share": 0.24}) is None
    assert "95% of full-data NDCG@10 (0.95)" in ladder_stop({"ratio_ndcg@10": 0.95, "position_share": 0.01})
    assert "holds 25% of the training positions" in ladder_stop({"ratio_ndcg@10": 0.5, "position_share": 0.25})
    # Results written before positions were recorded: the ratio alone decides.
    assert ladder_stop({"ratio_ndcg@10": 0.5}) is None


def _results(ndcg: float, share: float | None, train_seconds: float) -> dict:
    metric = {"mean": ndcg, "std": 0.0}
    results = {"test": {"ndcg@10": metric, "recall@10": metric}, "coverage": 0.5, "popular_share": 0.2,
               "student_seconds": train_seconds + 1.0, "student_train_seconds": train_seconds,
               "student_eval_seconds": 1.0}
    if share is not None:
        results.update(positions=int(share * 1000), position_share=share)
    return results


def test_run_bench_climbs_each_method_until_the_ladder_stops_it(monkeypatch):
    # Full data: NDCG@10 0.10 in 100 s of student training over 1000 training positions.
    monkeypatch.setattr(experiment, "evaluate_full", lambda *a, **k: _results(0.10, 1.0, 100.0))
    # random reaches 95% at n=50; teacher's data holds 25% of the training positions at n=20.
    fake = {("random", 10): _results(0.080, 0.01, 1.0), ("random", 20): _results(0.092, 0.02, 2.0),
            ("random", 50): _results(0.096, 0.05, 4.0),
            ("teacher", 10): _results(0.050, 0.125, 10.0), ("teacher", 20): _results(0.060, 0.25, 20.0)}

    def run_method(context, method, budget, *args, **kwargs):
        return RunOutcome(None, None, fake[(method, budget)], 0.5, 1.0)

    monkeypatch.setattr(experiment, "run_method", run_method)
    report = experiment.run_bench(tiny_context(), ["random", "teacher"], ladder_budgets(10_000),
                                  stop_after=ladder_stop)
    assert [(r["method"], r["budget"]) for r in report["rows"]] == [
        ("full", None), ("random", 10), ("random", 20), ("random", 50), ("teacher", 10), ("teacher", 20)]
    assert report["rows"][3]["position_share"] == 0.05 and report["rows"][0]["positions"] == 1000

    # n=20 of random: 2 s of student training against full data's 100 s.
    # The bench table ends with these lines, with why the ladder stopped each method.
    table = format_bench_table({**report, "ladder": {"budgets": [10, 20, 50], "stopped": {"teacher": "it held 25%"}}})
    assert table.endswith("(the ladder stopped: it held 25%)")
    lines = format_reach_lines(report["rows"], {"teacher": "it held 25%"})
    assert lines[0] == ("- random: 90% of full at n=20 (2.0% of the training data, student training 2 s, speed-up "
                        "50x against full data); 95% of full at n=50 (5.0% of the training data, student training "
                        "4 s, speed-up 25x against full data)")
    assert lines[1] == ("- teacher: 90% and 95% of full not reached (best 0.60 of full, at n=20) "
                        "(the ladder stopped: it held 25%)")
    # Both fractions at one budget: one clause.
    assert format_reach_lines(report["rows"][:2])[0].startswith("- random: 90% and 95% of full not reached")
    full_and_one = [report["rows"][0], {**report["rows"][3], "budget": 10}]
    assert format_reach_lines(full_and_one)[0].startswith("- random: 90% and 95% of full at n=10 (5.0% of the")
    # A run that kept another method's data is named so, in the table and in its own reach line.
    kept = [report["rows"][0], {**report["rows"][3], "method": "foster", "kept": "teacher"}]
    assert format_reach_lines(kept)[0].startswith("- foster (kept teacher's data): 90% and 95% of full at n=50")
    assert "| foster (kept teacher's data) | 50 |" in format_bench_table({**report, "rows": kept})


def test_the_bench_table_shows_positions_and_share_of_train_and_a_dash_where_older_results_lack_them():
    rows = []
    for method, budget, results in (("full", None, _results(0.10, 1.0, 100.0)), ("random", 10, _results(0.08, None, 1.0))):
        rows.append(experiment._bench_row(method, budget, results, _results(0.10, 1.0, 100.0), 0.0, 0.0, None))
    table = format_bench_table({"dataset": "d", "seeds": 1, "rows": rows})
    header = [line for line in table.splitlines() if line.startswith("| method")][0]
    assert header.startswith("| method | n | positions | share of train | NDCG@10 |")
    assert "| full | all | 1000 | 100.0% | 0.1000 ± 0.0000 |" in table
    assert "| random | 10 | – | – | 0.0800 ± 0.0000 |" in table
    assert "- random: 90% and 95% of full not reached (best 0.80 of full, at n=10)" in table


def test_a_runs_results_stop_the_ladder_against_the_full_data_reference():
    full = _results(0.10, 1.0, 100.0)
    assert results_stop(_results(0.094, 0.10, 1.0), full) is None
    assert "95% of full-data NDCG@10 (0.95)" in results_stop(_results(0.095, 0.10, 1.0), full)
    assert "holds 30% of the training positions" in results_stop(_results(0.05, 0.30, 1.0), full)
    stopped = {"random": {"budget": 20, "reason": "..."}}
    assert ladder_passed(stopped, "random", 50) and not ladder_passed(stopped, "random", 20)
    assert not ladder_passed(stopped, "teacher", 50) and not ladder_passed(None, "random", 50)


def test_the_apps_sweep_field_takes_auto_for_the_ladder_and_numbers_otherwise():
    assert sweep_budgets(" Auto ", 20, usable=671) == ([10, 20, 50, 100, 200, 500, 671], True)
    assert sweep_budgets("50, 10", 20, usable=671) == ([10, 50], False)
    assert sweep_budgets("", 20, usable=671) == ([20], False)
    with pytest.raises(ValueError, match="whole numbers"):
        sweep_budgets("auto, 10", 20, usable=671)
