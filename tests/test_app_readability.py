"""Issue 15's new-user defects, checked without training: the pure functions behind the pages (compare cells,
run order, stop notes, loss-term help, Home's sample ids, upload names) and light AppTest visits."""

import base64
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest

from foster_core.analysis.compare import (MISSING, budget_label, budget_to_reach, compare_table,
                                          format_mean_std, job_headline, run_title, student_train_seconds)
from foster_core.analysis.profile import id_sort_key, sample_texts
from foster_core.analysis.progress import QUALITY_HELP, TERM_HELP, holdout_quality, run_holdout_quality, term_help
from foster_core.analysis.strip import REST, STRIP_COLUMNS, position_strip, rank_label
from foster_core.app import forms
from foster_core.app.tables import markdown_text, side_by_side, visible_rows
from foster_core.core import sources
from foster_core.core.config import to_dict
from foster_core.core.loaders import load_dataset
from foster_core.core.sources import save_upload
from foster_core.core.synthetic import SyntheticData
from foster_core.methods import CandidateScored, CandidateSelected, StepEvent, all_methods, get_method
from foster_core.methods.events import ReferenceScored, event_from_record
from foster_core.methods.foster import holdout_score, select_on_holdout
from foster_core.methods.teacher import holdout_labels, labelled_selection
from foster_core.testing import tiny_context
from foster_core.runs.run_store import RunStore

from conftest import cyclic_tables, make_studio

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    return make_studio(tmp_path, monkeypatch)


def open_page(page: str | None = None) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120)
    app.run()
    if page:
        app.switch_page(f"app_pages/{page}.py").run()
    return app


# Defect 2: a budget of 0 is refused clearly and Start is not offered (it used to run silently at 20).
def test_a_budget_of_zero_is_refused_and_start_is_not_offered(tiny):
    distill = open_page("distill")
    assert [b for b in distill.button if b.key == "start"]
    distill.number_input(key="budget").set_value(0).run()
    assert not distill.exception
    assert any("at least 1 (got 0)" in e.value for e in distill.error)
    assert not [b for b in distill.button if b.key == "start"]
    assert not any("budgets 20" in c.value for c in distill.caption)
    distill.number_input(key="budget").set_value(-3).run()
    assert any("at least 1 (got -3)" in e.value for e in distill.error)
    distill.number_input(key="budget").set_value(5).run()
    assert not distill.error and [b for b in distill.button if b.key == "start"]


# Defect 3: Explore and Export open on the newest finished run, preferring methods with loss curves.
def test_runs_are_offered_finished_first_then_those_with_loss_curves(tmp_path):
    store = RunStore(tmp_path)
    curves = next(s.name for s in all_methods() if s.loss_curves)
    plain = next(s.name for s in all_methods() if not s.loss_curves)
    stopped = store.create(curves, {"budget": 5})
    stopped.set_status("stopped", "stopped on request")
    baseline = store.create(plain, {"budget": 5})
    baseline.set_status("finished", "done")
    best = store.create(curves, {"budget": 5})
    best.set_status("finished", "done")
    order = forms.browsing_order(store.list())
    assert [r.id for r in order] == [best.id, baseline.id, stopped.id]
    assert "finished" in forms.run_label(best) and "stopped" in forms.run_label(stopped)


# Defect 4: Compare's cells.
def test_compare_cells_read_plainly():
    assert format_mean_std(0.04123, 0.0, 1) == "0.0412 (1 student)"
    assert format_mean_std(0.04123, 0.0031, 3) == "0.0412 ± 0.0031"
    assert format_mean_std(float("nan"), None, None) == MISSING == "–"
    assert budget_label("full", None) == "all" and budget_label("foster", 20.0) == "20"
    rows = pd.DataFrame([
        {"run": "a", "method": "foster", "budget": 20, "preset": "quick", "status": "finished", "ndcg@10": 0.04,
         "ndcg@10 std": 0.0, "seeds": 1, "ndcg@10 / full": 0.8, "distill s": 3.0},
        {"run": "b", "method": "full", "budget": None, "preset": "quick", "status": "finished", "ndcg@10": 0.05,
         "ndcg@10 std": 0.001, "seeds": 2, "ndcg@10 / full": 1.0, "distill s": 0.0},
        {"run": "c", "method": "foster", "budget": 20, "preset": "quick", "status": "stopped", "ndcg@10": None,
         "ndcg@10 std": None, "seeds": None, "ndcg@10 / full": None, "distill s": None},
    ])
    assert list(visible_rows(rows, False)["run"]) == ["b", "a"]  # full data first
    assert list(visible_rows(rows, True)["run"]) == ["b", "a", "c"]
    shown = side_by_side(visible_rows(rows, True))
    assert list(shown.columns[:4]) == ["method", "budget", "status", "quality vs full"]
    assert list(shown["method"]) == ["full data", "foster", "foster"]
    assert list(shown["budget"]) == ["all", "20", "20"]
    assert list(shown["quality vs full"]) == ["100.0%", "80.0%", "–"]
    assert shown.iloc[1]["NDCG@10 (mean ± std)"] == "0.0400 (1 student)"
    assert shown.iloc[2]["NDCG@10 (mean ± std)"] == "–" and shown.iloc[2]["making data (s)"] == "–"
    assert not shown.isin(["None", "nan"]).any().any()


# Defect 5: the headline numbers of a job name the full-data reference "full data".
def test_job_headline_names_the_reference_full_data_and_gives_the_speed_up():
    table = pd.DataFrame([
        {"run": "r1", "method": "foster", "budget": 20.0, "ndcg@10": 0.04, "ndcg@10 std": 0.002, "seeds": 3,
         "ndcg@10 / full": 0.8, "student train s": 2.0, "full-data train s": 20.0},
        {"run": "r2", "method": "full", "budget": None, "ndcg@10": 0.05, "ndcg@10 std": 0.0, "seeds": 1,
         "ndcg@10 / full": 1.0, "student train s": 20.0, "full-data train s": 20.0},
        {"run": "other", "method": "random", "budget": 20.0, "ndcg@10": 0.01, "ndcg@10 std": 0.0, "seeds": 1,
         "ndcg@10 / full": 0.2, "student train s": 2.0, "full-data train s": 20.0},
    ])
    headline = job_headline(table, ["r1", "r2"])
    assert list(headline["run"]) == ["foster n=20", "full data"]
    assert list(headline["ndcg@10"]) == ["0.0400 ± 0.0020", "0.0500 (1 student)"]
    assert list(headline["ndcg@10 / full"]) == ["0.80×", "1.00×"]
    assert list(headline["speed-up vs full"]) == ["10.0×", "–"]
    assert run_title("full", None) == "full data" and "None" not in run_title("foster", float("nan"))
    # While the job works, only its finished runs have numbers to show.
    running = table.assign(status=["finished", "running", "finished"])
    assert list(job_headline(running, ["r1", "r2"], finished_only=True)["run"]) == ["foster n=20"]
    assert len(job_headline(running, ["r1", "r2"])) == 2


# Defect 6: each loss term has a one-line explanation.
def test_every_logged_loss_term_has_help():
    for term in ("loss_real", "loss_syn", "loss_syn_inner", "gap", "loss_reg", "lambda", "label_entropy"):
        assert term_help(term) == TERM_HELP[term] and "\n" not in TERM_HELP[term]
    assert "reset" in TERM_HELP["loss_syn"]  # the jumps at each reset are expected, not divergence
    assert term_help("something new")  # an unknown term still gets a line


# Defect 7: position texts wrap in a Markdown table, their own characters escaped.
def test_position_texts_keep_their_lines_and_characters():
    cell = markdown_text("0.50  Toy Story (1995) *x* $5\n0.20  a_b")
    assert cell.split(" · ") == ["0.50  Toy Story \\(1995\\) \\*x\\* \\$5", "0.20  a\\_b"]


# Defect 8: a Stop note does not contradict itself, and a stopped job names the runs it skipped.
def test_stop_notes_agree_with_the_checkpoints_and_name_skipped_runs(tmp_path):
    store = RunStore(tmp_path)
    run = store.create("foster", {"budget": 5})
    run.set_status("stopped", "stopped on request; the synthetic data so far was saved")
    note = forms.interrupted_note(run)
    assert "before its first checkpoint" in note and "step 0" in note and "saved" not in note
    job = SimpleNamespace(run_ids=[run.id], spec=SimpleNamespace(pairs=lambda: [("foster", 5), ("random", 5)]))
    assert forms.skipped_runs(job, store) == ["random n=5"]


# Defect 9: Home.
def test_sample_item_ids_sort_numerically_when_numeric():
    assert sorted(["10", "2", "x", "1"], key=id_sort_key) == ["1", "2", "10", "x"]
    interactions, items = cyclic_tables()
    folder = save_upload("clicks.csv", interactions.to_csv(index=False).encode(), "titles.csv",
                         items.to_csv(index=False).encode(), root=Path(__import__("tempfile").mkdtemp()))
    samples = sample_texts(load_dataset(folder), n=8)
    keys = [id_sort_key(i) for i in samples["item_id"]]
    assert keys == sorted(keys) and len(keys) == 8


def test_an_upload_folder_is_named_after_its_interactions_file(tmp_path):
    folder = save_upload("My Clicks.csv", b"a", "titles.csv", b"b", root=tmp_path)
    assert folder.parent == tmp_path and folder.name.startswith("My_Clicks-")
    assert save_upload("My Clicks.csv", b"a", "titles.csv", b"b", root=tmp_path) == folder  # same content, same
    assert save_upload("../..\\x/--.csv", b"a", "i.csv", b"b", root=tmp_path).name.startswith("upload-")


def test_home_says_when_no_data_folder_is_set_and_draws_readable_charts(tiny, monkeypatch):
    monkeypatch.delenv("FOSTER_DATA_DIR")
    monkeypatch.setattr(sources, "DEFAULT_DATA_DIR", tiny / "no-such-folder")
    home = open_page()
    assert not home.exception
    specs = [json.loads(c.proto.spec) for c in home.get("plotly_chart")]
    tail = next(s for s in specs if s["layout"]["yaxis"].get("type") == "log")
    assert tail["layout"]["yaxis"]["dtick"] == 1  # 1, 10, 100: no 5, 2 between
    assert len(tail["layout"]["title"]["text"]) <= 40  # fits its half-width column
    lengths = next(s for s in specs if s["data"][0]["type"] == "histogram")
    ticks = lengths["layout"]["xaxis"]["tickvals"]  # the tiny data has few lengths: one whole-number tick each
    assert ticks and all(float(t).is_integer() for t in ticks)
    home.radio(key="dataset_source").set_value("Data folder").run()
    warning = " ".join(w.value for w in home.warning)
    assert "No data folder is set" in warning and "None" not in warning


# ----------------------------------------------------------------------------- issue 15, what was left

def scored_history() -> list:
    """A FOSTER run's events as a run folder holds them: steps, teacher, three candidates, the kept one."""
    return [StepEvent(2, 4, 0.1, {"loss_real": 2.0, "loss_syn": 1.5}), StepEvent(4, 4, 0.2, {"loss_real": 1.9, "loss_syn": 1.2}),
            ReferenceScored("teacher", 0.030), CandidateScored(0, 4, 0.020, 1, 3), CandidateScored(2, 4, 0.035, 2, 3),
            CandidateScored(4, 4, 0.028, 3, 3), CandidateSelected(2, 4, 0.035)]


def test_the_teacher_reference_is_a_typed_event_that_reads_back_from_its_record():
    event = ReferenceScored("teacher", 0.0312)
    record = event.to_record()
    assert record["phase"] == "reference" and record["holdout_ndcg@10"] == 0.0312
    assert event_from_record(json.loads(json.dumps(record))) == event
    assert event_from_record({"phase": "something later", "step": 3}) is None  # not read as a step


def test_holdout_quality_gives_the_candidates_their_start_and_the_teacher_line():
    quality = holdout_quality(scored_history(), select_every=2, status="finished")
    assert list(quality.points["step"]) == [0, 2, 4]
    assert list(quality.points["holdout ndcg@10"]) == [0.020, 0.035, 0.028]
    assert list(quality.points["candidate"]) == ["start", "checkpoint", "checkpoint"]
    assert list(quality.points["selected"]) == [False, True, False]
    assert quality.start == 0.020 and quality.references == {"teacher": 0.030} and not quality.note
    # Teacher is scored first: while the candidates wait, the bar to beat already shows.
    early = holdout_quality(scored_history()[:3], select_every=2, status="running")
    assert early.points.empty and early.references == {"teacher": 0.030} and early.start is None and not early.empty
    # No scores: each case says why.
    assert "select_every = 0" in holdout_quality(scored_history()[:2], 0, "finished").note
    assert "after the last step" in holdout_quality(scored_history()[:2], 50, "running").note
    assert "stopped" in holdout_quality([], 50, "stopped").note
    assert "start" in QUALITY_HELP and "teacher" in QUALITY_HELP and "\n" not in QUALITY_HELP


def test_a_method_that_does_not_select_on_the_holdout_gets_no_quality_panel(tmp_path):
    store = RunStore(tmp_path)
    selecting = store.create("foster", {"budget": 5, "distill": {"select_every": 0}})
    assert run_holdout_quality(selecting) is not None  # says why it has no scores
    other = store.create("bptt", {"budget": 5, "distill": {"steps": 4}})
    assert run_holdout_quality(other) is None
    for event in scored_history():
        other.append_history(event.to_record())
    assert run_holdout_quality(other).start == 0.020  # scores in the history are drawn whatever the config


def test_teacher_is_scored_with_the_same_quick_student_and_the_choice_does_not_change(tmp_path):
    context = tiny_context(cache_dir=tmp_path)
    config = get_method("foster").config(dict(steps=4, select_every=2, select_epochs=4, label_support=5))
    candidates = [(step, labelled_selection(context, 4, holdout_labels(config), selection))
                  for step, selection in ((0, "kcenter"), (2, "longest"), (4, "herding"))]
    events = []
    chosen = select_on_holdout(context, candidates, config, events.append)
    assert chosen is select_on_holdout(context, candidates, config, None)  # the silent selection keeps the same S
    assert isinstance(events[0], ReferenceScored) and events[0].name == "teacher"
    # teacher's data as the holdout scores it: labelled by the expert, not by its refit (the labeller)
    teacher = get_method("teacher").distill(context, 4, get_method("teacher").config(to_dict(holdout_labels(config))))
    assert events[0].holdout_ndcg == holdout_score(context, teacher, config)
    scored = [e for e in events if isinstance(e, CandidateScored)]
    assert [e.holdout_ndcg for e in scored] == [holdout_score(context, data, config) for _, data in candidates]
    assert isinstance(events[-1], CandidateSelected) and len(events) == 1 + len(candidates) + 1


def test_teacher_s_data_is_kept_only_when_it_scores_above_every_candidate(tmp_path, monkeypatch):
    from foster_core.methods import foster

    context = tiny_context(cache_dir=tmp_path)
    config = get_method("foster").config(dict(steps=4, select_every=2, select_epochs=4, label_support=5))
    candidates = [(step, labelled_selection(context, 4, holdout_labels(config), selection))
                  for step, selection in ((0, "kcenter"), (2, "longest"), (4, "herding"))]
    own = {id(data): score for (_, data), score in zip(candidates, (0.020, 0.035, 0.028))}
    for teacher_score, kept in ((0.036, "teacher"), (0.035, ""), (0.030, "")):  # a tie keeps S
        monkeypatch.setattr(foster, "holdout_score", lambda ctx, data, cfg: own.get(id(data), teacher_score))
        events = []
        chosen = select_on_holdout(context, candidates, config, events.append)
        assert events[-1].kept == kept
        if kept:
            assert chosen.label_items.shape[0] == 4 and all(chosen is not data for _, data in candidates)
            assert events[-1].holdout_ndcg == teacher_score
            quality = holdout_quality(events, 2, "finished")
            assert quality.kept_reference == "teacher" and not quality.points["selected"].any()
        else:
            assert chosen is candidates[1][1] and events[-1].step == 2
    monkeypatch.setattr(foster, "holdout_score", lambda ctx, data, cfg: own.get(id(data), 0.9))
    events = []
    off = replace(config, teacher_candidate=False)  # only S's own candidates: no teacher scored
    assert select_on_holdout(context, candidates, off, events.append) is candidates[1][1]
    assert not any(isinstance(e, ReferenceScored) for e in events)
    kept = CandidateSelected(0, 4, 0.036, kept="teacher")
    assert event_from_record(json.loads(json.dumps(kept.to_record()))) == kept
    assert "kept" not in CandidateSelected(2, 4, 0.035).to_record()


def test_budget_to_reach_finds_the_smallest_budget_per_method_on_a_hand_made_table():
    rows = [("foster", 10, 0.85), ("foster", 20, 0.93), ("foster", 20, 0.97), ("foster", 50, 0.96),
            ("random", 10, 0.40), ("random", 50, 0.91), ("teacher", 20, None), ("full", None, 1.0)]
    table = pd.DataFrame([{"method": m, "budget": b, "ndcg@10 / full": r, "status": "finished"} for m, b, r in rows]
                         + [{"method": "random", "budget": 5, "ndcg@10 / full": 0.99, "status": "stopped"}])
    reach = budget_to_reach(table).set_index(["method", "fraction"])
    assert list(reach.index.get_level_values(0).unique()) == ["random", "teacher", "foster"]  # registry order, no full
    assert reach.loc[("foster", 0.90), "budget"] == 20 and reach.loc[("foster", 0.95), "budget"] == 20  # 0.93, 0.97
    assert reach.loc[("foster", 0.95), "ratio"] == pytest.approx(0.95)
    assert reach.loc[("random", 0.90), "budget"] == 50 and pd.isna(reach.loc[("random", 0.95), "budget"])
    assert reach.loc[("random", 0.95), "best ratio"] == 0.91 and reach.loc[("random", 0.95), "best budget"] == 50
    # No full-data run: no ratio, so neither a budget nor a best ratio ("–", not "not reached").
    assert pd.isna(reach.loc[("teacher", 0.90), "budget"]) and pd.isna(reach.loc[("teacher", 0.90), "best ratio"])
    assert budget_to_reach(pd.DataFrame()).empty


def test_costs_use_the_students_training_seconds_and_give_the_speed_up(tmp_path):
    store = RunStore(tmp_path)
    setup = {"dataset": "tiny", "model": {}, "expert": {}, "student": {}}
    test = {m: {"mean": 0.05, "std": 0.0} for m in ("ndcg@10", "recall@10", "recall@20")}
    full = store.create("full", {**setup, "budget": None})
    full.write_results({"test": test, "student_seconds": 30.0, "student_train_seconds": 20.0})
    full.set_status("finished")
    new = store.create("foster", {**setup, "budget": 5})
    new.write_results({"test": test, "distill_seconds": 7.0, "student_seconds": 3.0, "student_train_seconds": 2.0})
    new.set_status("finished")
    old = store.create("random", {**setup, "budget": 5})
    old.write_results({"test": test, "student_seconds": 4.0})  # results from before the split of the seconds
    old.set_status("finished")
    table = compare_table(store).set_index("run")
    assert table.loc[new.id, "student train s"] == 2.0 and table.loc[new.id, "full-data train s"] == 20.0
    assert table.loc[new.id, "speed-up vs full"] == 10.0 and table.loc[old.id, "speed-up vs full"] == 5.0
    assert pd.isna(table.loc[full.id, "speed-up vs full"])  # the reference against itself is no speed-up
    assert student_train_seconds({"student_seconds": 4.0}) == 4.0 and student_train_seconds(None) is None
    headline = job_headline(table.reset_index(), [new.id])
    assert list(headline["speed-up vs full"]) == ["10.0×"] and list(headline["student train s"]) == ["2.0"]
    shown = side_by_side(visible_rows(table.reset_index(), False))
    columns = list(shown.columns)
    assert columns[3] == "quality vs full" and columns.index("speed-up") > columns.index("NDCG@10 (mean ± std)")
    assert list(shown["speed-up"]) == ["–", "5.0×", "10.0×"]  # full data, random, foster


def test_the_position_strip_holds_each_positions_top_items_and_the_rest_of_its_mass():
    items = torch.tensor([[[3, 1, 2], [4, 0, 5], [0, 0, 0]]])
    probs = torch.tensor([[[0.5, 0.3, 0.2], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    synthetic = SyntheticData(items, probs, items, probs, torch.tensor([[True, True, False]]))
    texts = [f"item {i}" for i in range(5)] + ["a very long text " * 10]
    strip = position_strip(synthetic, 0, texts, k=2, text_width=20)
    assert list(strip.columns) == STRIP_COLUMNS
    first = strip[strip["position"] == 0]
    assert list(first["rank"]) == ["1st", "2nd", REST] and list(first["item"]) == [3, 1, -1]
    assert list(first["text"][:2]) == ["item 3", "item 1"]
    assert first["p"].tolist() == pytest.approx([0.5, 0.3, 0.2])  # the rest: the 3rd item's mass
    second = strip[strip["position"] == 1]
    assert list(second["rank"]) == ["1st", REST] and second["p"].tolist() == pytest.approx([1.0, 0.0])
    assert set(strip["position"]) == {0, 1}  # the padded position is not drawn
    assert [rank_label(r) for r in (1, 2, 3, 4, 11, 12, 21)] == ["1st", "2nd", "3rd", "4th", "11th", "12th", "21st"]


def chart_values(values) -> list:
    """A plotly trace's x or y as a list: Plotly writes numeric arrays as {"dtype", "bdata"} (base64)."""
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values)


def test_distill_draws_the_candidates_against_their_start_and_teacher(tiny):
    store = RunStore(tiny / "runs")
    run = store.create("foster", {"budget": 5, "dataset": "tiny", "distill": {"steps": 4, "select_every": 2}})
    for event in scored_history():
        run.append_history(event.to_record())
    run.set_status("finished", "done")
    distill = open_page("distill")  # no job from the app: the latest run with curves is shown
    assert not distill.exception
    [quality] = [json.loads(c.proto.spec) for c in distill.get("plotly_chart") if "Quality of the synthetic data" in c.proto.spec]
    candidates = next(t for t in quality["data"] if t["name"] == "checkpoints of the synthetic data")
    assert chart_values(candidates["x"]) == [0, 2, 4] and chart_values(candidates["y"]) == [0.020, 0.035, 0.028]
    kept = next(t for t in quality["data"] if t["name"] == "kept")
    assert chart_values(kept["x"]) == [2]
    lines = {t["name"]: chart_values(t["y"]) for t in quality["data"] if t["mode"] == "lines"}
    assert lines == {"start 0.0200": [0.020, 0.020], "teacher 0.0300": [0.030, 0.030]}
    # The dashed reference lines are drawn over the checkpoints' line (the start sits on its first point),
    # yet listed before it in the legend.
    names = [t["name"] for t in quality["data"]]
    assert names.index("start 0.0200") > names.index("checkpoints of the synthetic data")
    ranks = {t["name"]: t.get("legendrank", 1000) for t in quality["data"]}
    assert ranks["start 0.0200"] < ranks["checkpoints of the synthetic data"] < ranks["kept"]
    assert any(c.value == QUALITY_HELP for c in distill.caption)
