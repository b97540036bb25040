"""The app's pages under streamlit.testing: every page renders; a quick job started on Distill reaches Compare,
Explore and Export. Tiny generated data, a temporary runs dir and cache (FOSTER_DATASET, FOSTER_RUNS_DIR)."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from foster_core.core.data import DataError

from foster_core.core.loaders import load_dataset
from foster_core.runs.jobs import JobQueue
from foster_core.core.sources import save_upload, upload_error_message

from conftest import cyclic_tables

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PAGES = {name: str(ROOT / "pages" / f"{name}.py") for name in ("1_Distill", "2_Explore", "3_Compare", "4_Export")}


def test_home_page_renders_the_bundled_dataset():
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    assert app.title[0].value == "FOSTER Studio"
    assert [m.value for m in app.metric][0] == "671"


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """A tiny dataset folder and an empty runs dir, pointed at by the app's environment variables."""
    root = tmp_path_factory.mktemp("studio")
    interactions, items = cyclic_tables()
    (root / "tiny").mkdir()
    interactions.to_csv(root / "tiny" / "interactions.csv", index=False)
    items.to_csv(root / "tiny" / "items.csv", index=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FOSTER_DATASET", str(root / "tiny"))
        patch.setenv("FOSTER_RUNS_DIR", str(root / "runs"))
        patch.setenv("FOSTER_DATA_DIR", str(root))
        patch.setenv("FOSTER_JOB_THREADS", "1")
        yield root


def run_page(path: str, session: dict | None = None) -> AppTest:
    app = AppTest.from_file(path, default_timeout=120)
    for key, value in (session or {}).items():
        app.session_state[key] = value
    return app.run()


def test_every_page_renders_before_any_run(studio):
    home = run_page(APP)
    assert not home.exception
    assert [m.value for m in home.metric][0] == "40"  # the tiny dataset's users
    for name, path in PAGES.items():
        page = run_page(path)
        assert not page.exception, name
    assert "No runs yet" in run_page(PAGES["3_Compare"]).info[0].value


def test_a_budget_sweep_beyond_the_data_is_refused_on_the_page_before_start(studio):
    distill = run_page(PAGES["1_Distill"])
    distill.text_input(key="sweep").set_value("10 20 5000").run()
    assert not distill.exception
    assert any("budget 5000 is more than the 40 usable training sequences" in e.value for e in distill.error)
    assert not [b for b in distill.button if b.key == "start"]
    distill.text_input(key="sweep").set_value("10 20").run()
    assert not distill.error and any("budgets 10, 20" in c.value for c in distill.caption)


def test_quick_distillation_from_the_distill_page_reaches_compare_explore_and_export(studio):
    distill = run_page(PAGES["1_Distill"])
    assert distill.radio(key="preset").value == "quick"
    distill.number_input(key="budget").set_value(5)
    distill.multiselect(key="baselines").set_value(["random"])
    distill.button(key="start").click().run()
    assert not distill.exception
    queue = JobQueue(studio / "runs")
    [job] = queue.jobs()
    state = queue.wait(job, timeout=240)
    assert state["status"] == "finished", job.log[-3000:]

    distill.run()  # a fresh visit reattaches to the job from the store
    assert not distill.exception
    assert any("Finished" in s.value for s in distill.success)

    compare = run_page(PAGES["3_Compare"])
    assert not compare.exception
    table = compare.dataframe[0].value
    assert set(table["method"]) == {"foster", "random", "full"}
    foster = table[table["method"] == "foster"].iloc[0]
    assert "±" in foster["ndcg@10 (mean ± std)"] and foster["ndcg@10 / full"] > 0
    assert compare.warning  # quick numbers are flagged as indicative

    foster_run = next(r for r in queue.store.list() if r.config["method"] == "foster")
    explore = run_page(PAGES["2_Explore"], {"explore_run": foster_run.id, "explore_selected": 2})
    assert not explore.exception
    positions = explore.dataframe[0].value
    assert "Synthetic sequence #2" in [h.value for h in explore.subheader][0]
    assert positions["input items (p)"].str.contains("item number").all()
    assert positions["nearest real item texts"].str.contains("of the cycle").all()

    export = run_page(PAGES["4_Export"], {"export_run": foster_run.id})
    assert not export.exception
    labels = [b.proto.label for b in export.get("download_button")]
    assert labels == ["synthetic.safetensors", "synthetic_top_items.csv", "synthetic_interactions.csv",
                      "synthetic.inter", "config.json", "results.json"]


def test_data_folder_source_lists_the_folders_of_the_data_dir(studio):
    home = run_page(APP)
    home.radio(key="dataset_source").set_value("Data folder").run()
    assert not home.exception
    assert "tiny" in home.selectbox[0].options


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
