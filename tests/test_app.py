"""The app under streamlit.testing, entered through app.py and its st.navigation as a visitor would: every page
renders with the shared sidebar; the Distill page takes its methods and settings from the registry; a quick job
started on Distill reaches Compare, Explore and Export. Tiny generated data, a temporary runs dir and cache
(FOSTER_DATASET, FOSTER_RUNS_DIR)."""

import json
from dataclasses import fields
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from foster_core.core.architectures import architecture_names
from foster_core.core.data import DataError
from foster_core.core.loaders import load_dataset
from foster_core.core.sources import save_upload, upload_error_message
from foster_core.methods import all_methods, get_method, method_names
from foster_core.methods.coresets import SELECTIONS
from foster_core.methods.sparse import PACKING
from foster_core.runs.jobs import JobQueue, job_configs
from foster_core.runs.presets import PRESETS
from foster_core.analysis.compare import NOT_REACHED
from foster_core.app.tables import DEFAULT_COLUMNS
from foster_core.analysis.progress import TERM_HELP, term_label
from foster_core.runs.run_store import export_files

from conftest import make_studio

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PAGES = {"Distill": "app_pages/distill.py", "Explore": "app_pages/explore.py", "Compare": "app_pages/compare.py",
         "Export": "app_pages/export.py"}


def open_app(page: str | None = None, session: dict | None = None) -> AppTest:
    """A new session: app.py opens on Home, then (as a click in the sidebar would) switches to `page`."""
    app = AppTest.from_file(APP, default_timeout=120)
    for key, value in (session or {}).items():
        app.session_state[key] = value
    app.run()
    if page is not None:
        app.switch_page(PAGES[page]).run()
    return app


def sidebar_text(app: AppTest) -> str:
    return " ".join(c.value for c in app.sidebar.caption)


def test_home_page_renders_the_bundled_dataset():
    home = open_app()
    assert not home.exception
    assert home.title[0].value == "FOSTER Studio"
    assert [m.value for m in home.metric][0] == "671"
    assert "Dataset: **movielens**" in sidebar_text(home)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """Shared by the tests that follow one story (no runs yet, then one quick job)."""
    with pytest.MonkeyPatch.context() as patch:
        yield make_studio(tmp_path_factory.mktemp("studio"), patch)


@pytest.fixture
def own_studio(tmp_path, monkeypatch):
    """A studio of the test's own, for tests that leave jobs behind."""
    return make_studio(tmp_path, monkeypatch)


def test_every_page_renders_before_any_run_with_the_shared_sidebar(studio):
    app = open_app()
    assert not app.exception
    assert [m.value for m in app.metric][0] == "40"  # the tiny dataset's users
    for name, path in PAGES.items():
        app.switch_page(path).run()
        assert not app.exception, name
        assert app.title[0].value == name
        # app.py draws the sidebar once for every page: the dataset and the runs folder are named on each.
        assert str(studio / "tiny") in sidebar_text(app) and str(studio / "runs") in sidebar_text(app), name
        if name == "Compare":
            assert "No runs yet" in app.info[0].value


def test_the_distill_page_takes_methods_help_and_settings_from_the_registry(studio):
    distill = open_app("Distill")
    assert not distill.exception
    method = distill.selectbox(key="method")
    assert method.options == method_names() and method.value == PRESETS["quick"].methods[0] == "foster"
    assert all(spec.help in method.help for spec in all_methods())
    assert any(get_method("foster").help in c.value for c in distill.caption)

    # Advanced settings: one input per field of the main method's config, starting from the preset's values.
    prefix = "distill_quick_foster_"
    inputs = {w.key[len(prefix):]: w for kind in ("number_input", "selectbox", "checkbox", "text_input")
              for w in distill.get(kind) if (w.key or "").startswith(prefix)}
    assert set(inputs) == {f.name for f in fields(get_method("foster").config_class)}
    assert inputs["steps"].value == PRESETS["quick"].distill["steps"] == 20
    assert inputs["init_selection"].options == list(SELECTIONS)
    assert inputs["init_packing"].options == list(PACKING)
    assert inputs["device"].options == ["auto", "cpu", "cuda"]

    distill.selectbox(key="method").set_value("random").run()  # a coreset: its config has only seed and device
    assert not distill.exception
    keys = {w.key for kind in ("number_input", "selectbox") for w in distill.get(kind)
            if (w.key or "").startswith("distill_quick_random_")}
    assert keys == {"distill_quick_random_seed", "distill_quick_random_device"}
    assert any(get_method("random").help in c.value for c in distill.caption)
    assert not [w for w in distill.number_input if (w.key or "").startswith(prefix)]


def test_a_budget_sweep_beyond_the_data_is_refused_on_the_page_before_start(studio):
    distill = open_app("Distill")
    distill.text_input(key="sweep").set_value("10 20 5000").run()
    assert not distill.exception
    assert any("budget 5000 is more than the 40 usable training sequences" in e.value for e in distill.error)
    assert not [b for b in distill.button if b.key == "start"]
    distill.text_input(key="sweep").set_value("10 20").run()
    assert not distill.error and any("budgets 10, 20" in c.value for c in distill.caption)
    # `auto`: the budget ladder up to the 40 usable sequences, the reference first.
    distill.text_input(key="sweep").set_value("auto").run()
    assert not distill.error
    assert any("the full-data reference first" in c.value and "budgets 10, 20, 40" in c.value for c in distill.caption)


def test_the_advanced_settings_reach_the_job_as_its_shared_method_values(own_studio, monkeypatch):
    spawned = []
    monkeypatch.setattr(JobQueue, "_spawn", lambda self, job, spec: spawned.append(spec))
    distill = open_app("Distill")
    distill.number_input(key="distill_quick_foster_steps").set_value(0).run()
    # The method's own config check refuses it before anything starts.
    assert any("steps" in e.value and "at least 1" in e.value for e in distill.error)
    assert not [b for b in distill.button if b.key == "start"]

    distill.number_input(key="distill_quick_foster_steps").set_value(7)
    distill.selectbox(key="distill_quick_foster_init_selection").set_value("herding")
    distill.number_input(key="distill_quick_foster_label_support").set_value(5)
    distill.multiselect(key="baselines").set_value(["teacher", "random"]).run()
    assert not distill.error
    # Student architectures from the registry; none chosen is refused before Start.
    architectures = distill.multiselect(key="student_architectures_quick")
    assert architectures.options == architecture_names() and architectures.value == ["sasrec"]
    architectures.set_value([]).run()
    assert any("at least one architecture" in e.value for e in distill.error)
    distill.multiselect(key="student_architectures_quick").set_value(["sasrec", "gru4rec"]).run()
    assert not distill.error
    distill.button(key="start").click().run()
    assert not distill.exception
    [spec] = spawned
    assert spec.methods == ["foster", "teacher", "random"] and spec.preset == "quick"
    assert spec.distill["steps"] == 7 and spec.distill["init_selection"] == "herding"
    assert spec.distill["reset_every"] == PRESETS["quick"].distill["reset_every"]  # the rest from the preset
    configs = job_configs(spec).methods
    assert configs["foster"].steps == 7 and configs["foster"].label_support == 5
    assert configs["teacher"].label_support == 5  # a baseline takes the shared fields it has
    assert job_configs(spec).student.architectures == ("sasrec", "gru4rec")
    assert [job.spec.methods for job in JobQueue(own_studio / "runs").jobs()] == [spec.methods]


def test_quick_distillation_from_the_distill_page_reaches_compare_explore_and_export(studio):
    distill = open_app("Distill")
    assert distill.radio(key="preset").value == "quick"
    distill.number_input(key="budget").set_value(5)
    distill.multiselect(key="baselines").set_value(["random"])
    distill.button(key="start").click().run()
    assert not distill.exception
    queue = JobQueue(studio / "runs")
    [job] = queue.jobs()
    state = queue.wait(job, timeout=240)
    assert state["status"] == "finished", job.log[-3000:]

    distill = open_app("Distill")  # a fresh visit reattaches to the job from the store
    assert not distill.exception
    assert any("Finished" in s.value for s in distill.success)
    foster_run = next(r for r in queue.store.list() if r.config["method"] == "foster")
    # The job's most informative run is the one with loss curves (foster's), drawn from its step events.
    assert foster_run.step_events and foster_run.config["distill"]["steps"] == PRESETS["quick"].distill["steps"]
    assert any(f"Loss terms of run {foster_run.id}" in c.proto.spec for c in distill.get("plotly_chart"))
    # Every logged term has its own one-line explanation (defect 6).
    terms = {term for event in foster_run.step_events for term in event.values}
    assert terms and all(term in TERM_HELP for term in terms)
    explained = " ".join(m.value for m in distill.markdown)
    assert all(f"**{term_label(term)}** (`{term}`): {TERM_HELP[term]}" in explained for term in terms)
    # The finished job's headline numbers (defect 5): NDCG@10 of each run, its ratio to full, the reference named.
    [headline] = [d.value for d in distill.dataframe if "ndcg@10 / full" in d.value]
    assert list(headline["run"]) and "foster n=5" in set(headline["run"]) and "random n=5" in set(headline["run"])
    foster_line = headline[headline["run"] == "foster n=5"].iloc[0]
    assert foster_line["ndcg@10"].endswith("(1 student)") and foster_line["ndcg@10 / full"].endswith("×")
    page_text = " ".join(str(e.value) for kind in ("caption", "markdown", "warning", "info") for e in distill.get(kind))
    assert "n=None" not in page_text and "n=None" not in headline.to_string()
    assert "has no loss curve" not in page_text
    # The quick preset scores S on the holdout against teacher, so a new user sees the quality chart.
    assert foster_run.config["distill"]["select_every"] == PRESETS["quick"].distill["select_every"] > 0
    assert any("Quality of the synthetic data" in c.proto.spec for c in distill.get("plotly_chart"))

    compare = open_app("Compare")
    assert not compare.exception
    # The analyst's question first: the ratio to full data against budget, with the 90% and 95% lines, from 0.
    [chart] = [json.loads(c.proto.spec) for c in compare.get("plotly_chart")]
    assert {t["name"] for t in chart["data"]} == {"foster", "random"}
    assert {"90% of full data", "95% of full data", "full data"} <= {a["text"] for a in chart["layout"]["annotations"]}
    assert chart["layout"]["yaxis"]["range"][0] == 0
    assert chart["layout"]["xaxis"]["type"] == "category"  # one budget: no numeric 4..6 range around it
    compare.radio(key="compare_x").set_value("student train s").run()  # the student's seconds instead
    assert not compare.exception
    [chart] = [json.loads(c.proto.spec) for c in compare.get("plotly_chart")]
    assert "full data" in {t["name"] for t in chart["data"]}  # where all the data puts a recommender
    assert chart["layout"]["xaxis"]["title"]["text"].startswith("seconds to train one recommender")
    # Then the smallest budget reaching 90% / 95% of full data, with the share of the data and the cost there.
    reach = compare.dataframe[0].value
    assert list(reach.columns[:3]) == ["method", "target", "smallest budget"]
    assert set(reach["method"]) == {"foster", "random"}
    assert set(reach["target"]) == {"90% of full data", "95% of full data"}
    assert all(cell == "5" or cell.startswith(f"{NOT_REACHED} (best ") for cell in reach["smallest budget"])
    reached = reach[reach["smallest budget"] == "5"]
    assert reached["share of training data"].str.endswith("%").all() and (reached["training (s)"] != "–").all()
    table = compare.dataframe[1].value
    assert list(table["method"]) == ["full data", "random", "foster"]  # full data first, then the registry's order
    # The narrow default view: the ratio, NDCG@10 and the three costs; one student reads "1 student".
    assert list(table.columns) == DEFAULT_COLUMNS
    foster = table[table["method"] == "foster"].iloc[0]
    assert foster["NDCG@10 (mean ± std)"].endswith("(1 student)") and float(foster["quality vs full"].rstrip("%")) > 0
    assert foster["speed-up"].endswith("×") and foster["status"] == "done"
    full = table[table["method"] == "full data"].iloc[0]
    assert full["budget"] == "all" and full["speed-up"] == "–" and full["quality vs full"] == "100.0%"
    assert not table.isin(["None", "nan", None]).any().any()
    compare.toggle(key="compare_more").set_value(True).run()  # every column, the share of the data among them
    wide = compare.dataframe[1].value
    assert {"share of training data", "positions", "full-data training (s)", "run id"} <= set(wide.columns)
    assert wide[wide["method"] == "full data"].iloc[0]["share of training data"] == "100.0%"
    assert compare.warning  # quick numbers are flagged as indicative
    # One student architecture: no table of other recommenders (tests/test_architectures.py has one).
    assert not any(h.value == "Other recommenders on the same data" for h in compare.subheader)

    # Defect 3: with no choice made, Explore and Export open on the finished foster run (it has loss curves),
    # and Explore's run list shows each run's status.
    explore = open_app("Explore")
    assert not explore.exception
    run_box = explore.selectbox(key="explore_run")
    assert run_box.value == foster_run.id and "finished" in run_box.format_func(run_box.value)
    export = open_app("Export")
    assert not export.exception and export.selectbox(key="export_run").value == foster_run.id

    explore = open_app("Explore", {"explore_run": foster_run.id, "explore_selected": 2})
    assert not explore.exception
    positions = explore.table[0].value  # a static table: texts wrap and every column shows (defect 7)
    assert "Synthetic sequence #2" in [h.value for h in explore.subheader][0]
    firsts = positions[positions["position"] != ""]  # one row per item; a position's number on its first row
    assert firsts["input item"].str.contains("item number").all() and (firsts["input p"] > 0).all()
    assert positions["nearest real item (not itself)"].str.contains("of the cycle").all()
    # How close each synthetic sequence comes to a real user, as the run's results recorded it.
    assert "How close to real users?" in [h.value for h in explore.subheader]
    summary = foster_run.results["copying"]["summary"]
    assert len(explore.dataframe[0].value) == 5 and any(summary in m.value for m in explore.markdown)
    # The whole sequence at a glance above the table: one stacked bar per position, item texts on hover.
    [strip] = [json.loads(c.proto.spec) for c in explore.get("plotly_chart") if "per position" in c.proto.spec]
    assert strip["layout"]["barmode"] == "stack" and strip["data"][0]["name"] == "1st item"
    assert len(strip["data"][0]["customdata"]) == len(firsts)
    assert all("item number" in text for text in strip["data"][0]["customdata"])

    export = open_app("Export", {"export_run": foster_run.id})
    assert not export.exception
    labels = [b.proto.label for b in export.get("download_button")]
    assert labels == [entry.filename for entry in export_files(foster_run)]  # every file the library exports
    assert {"synthetic.safetensors", "synthetic_top_items.csv", "synthetic_interactions.csv", "synthetic.inter",
            "config.json", "results.json"} <= set(labels)


def test_data_folder_source_lists_the_folders_of_the_data_dir(studio):
    home = open_app()
    home.radio(key="dataset_source").set_value("Data folder").run()
    assert not home.exception
    assert "tiny" in home.selectbox[0].options


def test_choosing_a_dataset_on_home_shows_it_in_the_sidebar_at_once(studio):
    home = open_app()
    assert str(studio / "tiny") in sidebar_text(home)
    home.radio(key="dataset_source").set_value("Bundled MovieLens").run()
    assert not home.exception
    assert [m.value for m in home.metric][0] == "671"
    assert "Dataset: **movielens**" in sidebar_text(home)  # the sidebar is drawn before the page chooses
    home.switch_page(PAGES["Distill"]).run()  # the choice is the session's, on every page
    assert not home.exception and "Dataset: **movielens**" in sidebar_text(home)


def test_an_upload_with_a_missing_column_gives_the_loaders_message_naming_the_uploaded_file(tmp_path):
    folder = save_upload("clicks.csv", b"user,item_id,timestamp\nu1,i1,1\n", "titles.csv", b"item_id,text\ni1,a\n",
                         root=tmp_path)
    assert folder.parent == tmp_path and sorted(p.name for p in folder.iterdir()) == ["interactions.csv", "items.csv"]
    with pytest.raises(DataError) as caught:
        load_dataset(folder)
    message = upload_error_message(caught.value, folder, "clicks.csv", "titles.csv")
    assert "clicks.csv" in message and "user_id" in message and str(tmp_path) not in message


def test_an_upload_cannot_choose_where_it_is_written(tmp_path):
    folder = save_upload("../../evil.csv", b"a", "../x/items.parquet", b"b", root=tmp_path)
    assert folder.parent == tmp_path
    with pytest.raises(DataError, match="RecBole files come in pairs"):
        save_upload("x.inter", b"a", "items.csv", b"b", root=tmp_path)
