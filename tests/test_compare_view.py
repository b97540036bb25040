"""The Compare page's answer to "which budget buys 90% and 95% of full-data quality, and what does a student
cost there?", on hand-made run stores and frames: the ratio to full and its spread, the table's order, the
smallest budget per target (or how far off), the chart's points and axes, and running and queued runs."""

import json
import os

import pandas as pd
import pytest

from foster_core.analysis.compare import (NOT_REACHED, QUEUED, budget_to_reach, compare_table, in_table_order,
                                          queued_rows)
from foster_core.app.tables import (DEFAULT_COLUMNS, FULL_DATA_COLOUR, SIDE_BY_SIDE, full_data_seconds, method_colours,
                                    ratio_curves, reach_view, side_by_side, status_label, visible_rows, x_axis, y_axis)
from foster_core.methods import method_names
from foster_core.runs.jobs import JobQueue, JobSpec
from foster_core.runs.run_store import RunStore

SETUP = {"dataset": "tiny", "model": {}, "expert": {}, "student": {}}


def finished(store: RunStore, method: str, budget, ndcg: float, std: float, train_s: float, **results):
    run = store.create(method, {**SETUP, "budget": budget})
    run.write_results({"test": {"ndcg@10": {"mean": ndcg, "std": std}}, "student_train_seconds": train_s, **results})
    run.set_status("finished")
    return run


def test_the_ratio_to_full_and_its_spread_are_the_means_and_std_over_the_full_data_mean(tmp_path):
    store = RunStore(tmp_path)
    finished(store, "full", None, 0.050, 0.002, 40.0, positions=800, position_share=1.0)
    new = finished(store, "foster", 20, 0.045, 0.005, 2.0, positions=160, position_share=0.2)
    old = finished(store, "random", 20, 0.030, 0.010, 4.0)  # from before positions were recorded
    table = compare_table(store).set_index("run")
    assert table.loc[new.id, "ndcg@10 / full"] == pytest.approx(0.9)  # 0.045 / 0.050
    assert table.loc[new.id, "ndcg@10 / full std"] == pytest.approx(0.1)  # 0.005 / 0.050
    assert table.loc[old.id, "ndcg@10 / full"] == pytest.approx(0.6) and table.loc[old.id, "speed-up vs full"] == 10.0
    assert table.loc[new.id, "position share"] == 0.2 and pd.isna(table.loc[old.id, "position share"])
    wide = side_by_side(visible_rows(table.reset_index(), False), more=True).set_index("method")
    assert wide.loc["foster", "quality vs full"] == "90.0%" and wide.loc["random", "quality vs full"] == "60.0%"
    assert wide.loc["foster", "share of training data"] == "20.0%" and wide.loc["foster", "positions"] == "160"
    assert wide.loc["random", "share of training data"] == "–" and wide.loc["full data", "positions"] == "800"
    assert wide.loc["foster", "speed-up"] == "20.0×" and wide.loc["full data", "speed-up"] == "–"


def test_rows_read_full_data_first_then_the_registrys_methods_each_by_budget():
    rows = pd.DataFrame({"run": list("abcdefg"), "status": "finished",
                         "method": ["foster", "random", "homemade", "full", "foster", "random", "teacher"],
                         "budget": [50, 100, 5, None, 10, 20, 10]})
    ordered = in_table_order(rows)
    # random, teacher, foster: the registry's order; an unknown method last; budgets ascending numerically.
    assert list(ordered["run"]) == ["d", "f", "b", "g", "e", "a", "c"]
    assert list(side_by_side(visible_rows(rows, False))["method"]) == ["full data", "random", "random", "teacher",
                                                                       "foster", "foster", "homemade"]


def test_the_smallest_budget_per_target_with_its_share_of_the_data_and_the_students_cost():
    rows = [  # method, budget, ratio, position share, student s, full-data s
        ("foster", 10, 0.86, 0.01, 1.0, 30.0), ("foster", 20, 0.92, 0.02, 2.0, 30.0),
        ("foster", 20, 0.96, 0.02, 4.0, 30.0), ("foster", 50, 0.97, 0.05, 5.0, 30.0),
        ("random", 10, 0.50, None, 1.0, 30.0), ("random", 50, 0.84, None, 6.0, 30.0), ("random", 100, 0.80, None, 9.0, 30.0),
        ("full", None, 1.0, 1.0, 30.0, 30.0)]
    table = pd.DataFrame([{"method": m, "budget": b, "ndcg@10 / full": r, "position share": p, "student train s": s,
                           "full-data train s": f, "status": "finished"} for m, b, r, p, s, f in rows])
    reach = budget_to_reach(table)
    assert list(zip(reach["method"], reach["fraction"])) == [("random", 0.9), ("random", 0.95), ("foster", 0.9),
                                                             ("foster", 0.95)]
    foster = reach[reach["method"] == "foster"].set_index("fraction")
    # Budget 20's two runs: ratio (0.92 + 0.96) / 2 = 0.94 reaches 90% but not 95%; budget 50 reaches 95%.
    assert foster.loc[0.90, "budget"] == 20 and foster.loc[0.90, "ratio"] == pytest.approx(0.94)
    assert foster.loc[0.90, "student train s"] == 3.0 and foster.loc[0.90, "speed-up vs full"] == 10.0  # 30 / 3
    assert foster.loc[0.95, "budget"] == 50 and foster.loc[0.95, "speed-up vs full"] == 6.0  # 30 / 5
    view = reach_view(reach).set_index(["method", "target"])
    assert view.loc[("foster", "90% of full data"), "smallest budget"] == "20"
    assert view.loc[("foster", "90% of full data"), "share of training data"] == "2.0%"
    assert view.loc[("foster", "90% of full data"), "quality there"] == "94.0%"
    assert view.loc[("foster", "95% of full data"), "speed-up"] == "6.0×"
    # Not reached: the best ratio tried and its budget say how far off; no share recorded reads "–".
    assert view.loc[("random", "90% of full data"), "smallest budget"] == f"{NOT_REACHED} (best 84.0% at n=50)"
    # The other columns then describe that best budget (n=50: 6.0 s, 30 / 6 = 5.0× faster), no share recorded: "–".
    not_reached = view.loc[("random", "95% of full data")]
    assert not_reached["smallest budget"] == f"{NOT_REACHED} (best 84.0% at n=50)"
    assert not_reached["quality there"] == "84.0%" and not_reached["training (s)"] == "6.0"
    assert not_reached["speed-up"] == "5.0×" and not_reached["share of training data"] == "–"
    assert pd.isna(reach.set_index(["method", "fraction"]).loc[("random", 0.95), "budget"])


def test_a_method_without_a_full_data_run_has_no_target_budget_and_says_why():
    table = pd.DataFrame([{"method": "foster", "budget": 20, "ndcg@10 / full": None, "status": "finished"}])
    [line] = reach_view(budget_to_reach(table, fractions=(0.9,))).to_dict("records")
    assert line["smallest budget"] == "– (no full-data run to compare with)" and line["quality there"] == "–"


def test_running_and_queued_rows_say_their_status_instead_of_a_row_of_dashes():
    assert status_label("finished") == "done" and status_label("running") == "running (making data)"
    assert status_label("running", "evaluate") == "running (training)" and status_label(QUEUED) == "queued"
    rows = pd.DataFrame([
        {"run": "f", "method": "full", "budget": None, "status": "finished", "ndcg@10": 0.05, "ndcg@10 std": 0.0,
         "ndcg@10 / full": 1.0, "seeds": 3, "student train s": 20.0, "distill s": 0.0},
        {"run": "r", "method": "foster", "budget": 20, "status": "running", "phase": "evaluate"},
        {"run": "", "method": "foster", "budget": 50, "status": QUEUED}])
    shown = side_by_side(visible_rows(rows, False))
    assert list(shown["status"]) == ["done", "running (training)", "queued"]
    assert shown.iloc[0]["making data (s)"] == "–"  # full data is not made: its 0 s would read as free
    for line in (1, 2):  # no numbers yet: empty cells, not "–"
        assert set(shown.iloc[line][DEFAULT_COLUMNS[3:]]) == {""}
    assert list(shown.columns) == DEFAULT_COLUMNS and len(DEFAULT_COLUMNS) == 9
    assert list(side_by_side(rows, more=True).columns) == list(SIDE_BY_SIDE)


def test_a_jobs_runs_still_to_start_are_queued_rows(tmp_path):
    queue = JobQueue(tmp_path)
    spec = JobSpec(dataset="movielens", methods=["foster", "random"], budgets=[10, 20], preset="quick")
    waiting = queue.submit(spec, start=False)  # its worker has not taken it up: every pair is queued
    working = queue.submit(spec, start=False)
    working.update(status="running", run_ids=["made-1", "made-2", "made-3"], pid=os.getpid())
    training_reference = queue.submit(spec, start=False)  # its last pair started, then the reference to train
    training_reference.update(status="running", run_ids=["a", "b", "c", "d"], reference="to train", pid=os.getpid())
    done = queue.submit(spec, start=False)
    done.update(status="finished")
    queued = queued_rows([waiting, working, training_reference, done])
    assert list(zip(queued["job"], queued["method"], queued["budget"].fillna(-1))) == [
        (waiting.id, "foster", 10), (waiting.id, "random", 10), (waiting.id, "foster", 20), (waiting.id, "random", 20),
        (working.id, "random", 20),  # pairs run budget by budget; three runs are made already
        (training_reference.id, "full", -1)]
    assert set(queued["status"]) == {QUEUED} and set(queued["run"]) == {""}
    assert set(queued["dataset_spec"]) == {"movielens"} and set(queued["preset"]) == {"quick"}
    assert queued_rows([]).empty


def test_the_chart_points_are_means_per_budget_on_axes_that_do_not_exaggerate():
    rows = pd.DataFrame([
        {"method": "foster", "budget": 10, "ndcg@10 / full": 0.80, "ndcg@10 / full std": 0.04, "student train s": 1.0},
        {"method": "foster", "budget": 10, "ndcg@10 / full": 0.90, "ndcg@10 / full std": 0.02, "student train s": 3.0},
        {"method": "foster", "budget": 500, "ndcg@10 / full": 1.02, "ndcg@10 / full std": 0.06, "student train s": 9.0},
        {"method": "random", "budget": 100, "ndcg@10 / full": 0.70, "ndcg@10 / full std": 0.01, "student train s": 5.0},
        {"method": "random", "budget": 200, "ndcg@10 / full": None, "student train s": 5.0},  # no reference: no point
        {"method": "full", "budget": None, "ndcg@10 / full": 1.0, "ndcg@10 / full std": 0.0, "student train s": 40.0},
    ]).assign(status="finished")
    curves = ratio_curves(rows)
    assert list(zip(curves["method"], curves["budget"])) == [("random", 100), ("foster", 10), ("foster", 500)]
    first = curves[(curves["method"] == "foster") & (curves["budget"] == 10)].iloc[0]
    assert first["ratio"] == pytest.approx(0.85) and first["ratio std"] == pytest.approx(0.03)
    assert first["student train s"] == 2.0 and first["runs"] == 2
    assert full_data_seconds(rows) == 40.0
    axis = y_axis(curves)
    assert axis["range"] == [0, pytest.approx(1.02 + 0.06 + 0.05)] and "from 0" in axis["title"]
    budgets = x_axis(curves["budget"], "budget")
    assert budgets["type"] == "log" and "log scale" in budgets["title"] and budgets["tickvals"] == [10, 100, 500]
    assert x_axis([20, 20], "budget")["type"] == "category"
    assert x_axis([2.0, 5.0], "student train s") == {"type": "linear", "title": "seconds to train one recommender"}


def test_each_method_keeps_its_own_colour_whichever_methods_a_chart_shows():
    everyone = method_colours()
    assert len(set(everyone.values())) == len(everyone) == len(method_names())  # all distinct
    assert method_colours(["foster"])["foster"] == everyone["foster"] == method_colours(["homemade"])["foster"]
    assert everyone["random"] == "#1F77B4" and everyone["foster"] == "#FF7F0E"  # blue against orange
    assert FULL_DATA_COLOUR not in everyone.values() and "#7F7F7F" not in everyone.values()  # no grey
    assert method_colours(["homemade"])["homemade"]  # an unknown method gets a colour too


def test_two_runs_of_the_same_settings_tell_apart_by_when_they_finished(tmp_path):
    store = RunStore(tmp_path)
    first, second = (finished(store, "random", 5, 0.03, 0.0, 1.0) for _ in range(2))
    for run, stamp in ((first, "2026-12-03T08:35:12+00:00"), (second, "2026-12-03T09:02:40+00:00")):
        run.set_status("finished")
        status = json.loads((run.path / "status.json").read_text())
        (run.path / "status.json").write_text(json.dumps({**status, "updated": stamp}))
    running = store.create("foster", {**SETUP, "budget": 5})
    running.set_status("running")
    shown = side_by_side(in_table_order(compare_table(store)))
    assert "finished" in DEFAULT_COLUMNS and sorted(shown["finished"]) == ["", "12-03 08:35", "12-03 09:02"]
    assert shown.loc[shown["status"] != "done", "finished"].tolist() == [""]  # not finished: no time


def test_a_run_that_kept_another_method_s_data_names_it_beside_its_method():
    rows = pd.DataFrame({"run": ["a", "b"], "status": "finished", "method": ["foster", "foster"], "budget": [20, 50],
                         "kept": ["teacher", ""]})
    assert list(side_by_side(visible_rows(rows, False))["method"]) == ["foster (kept teacher's data)", "foster"]
    # The chart draws it apart from FOSTER's own curve.
    rows = rows.assign(**{"ndcg@10 / full": [0.93, 0.80], "ndcg@10 / full std": 0.01, "student train s": 2.0})
    assert set(ratio_curves(rows)["method"]) == {"foster (kept teacher's data)", "foster"}


def test_a_run_that_kept_another_method_s_data_reaches_its_targets_under_its_own_name():
    table = pd.DataFrame([{"method": m, "budget": 20, "ndcg@10 / full": r, "status": "finished", "kept": k,
                           "position share": 0.02, "student train s": 2.0, "full-data train s": 30.0}
                          for m, r, k in (("foster", 0.80, ""), ("foster", 0.93, "teacher"))])
    reach = budget_to_reach(table).set_index(["method", "fraction"])
    assert pd.isna(reach.loc[("foster", 0.9), "budget"]) and reach.loc[("foster", 0.9), "best ratio"] == 0.80
    assert reach.loc[("foster (kept teacher's data)", 0.9), "budget"] == 20
