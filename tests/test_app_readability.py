"""Issue 15's new-user defects, checked without training: the pure functions behind the pages (compare cells,
run order, stop notes, loss-term help, Home's sample ids, upload names) and light AppTest visits."""

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from foster_core.analysis.compare import MISSING, budget_label, format_mean_std, job_headline, run_title
from foster_core.analysis.profile import id_sort_key, sample_texts
from foster_core.analysis.progress import TERM_HELP, term_help
from foster_core.app import forms
from foster_core.app.tables import markdown_text, side_by_side, visible_rows
from foster_core.core import sources
from foster_core.core.loaders import load_dataset
from foster_core.core.sources import save_upload
from foster_core.methods import all_methods
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
    assert list(visible_rows(rows, False)["run"]) == ["a", "b"]
    assert list(visible_rows(rows, True)["run"]) == ["a", "b", "c"]
    shown = side_by_side(rows)
    assert list(shown.columns[:3]) == ["method", "budget", "ndcg@10 / full"]
    assert list(shown["budget"]) == ["20", "all", "20"]
    assert list(shown["ndcg@10 / full"]) == ["0.80×", "1.00×", "–"]
    assert shown.iloc[0]["ndcg@10 (mean ± std)"] == "0.0400 (1 student)"
    assert shown.iloc[2]["ndcg@10 (mean ± std)"] == "–" and shown.iloc[2]["distill s"] == "–"
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
