import json
import subprocess
import sys
import threading

import pytest

from foster_core.runs.run_store import RunNotFound, RunStore


def test_run_lifecycle_list_load_delete(tmp_path):
    store = RunStore(tmp_path)
    run = store.create("random", {"budget": 20, "dataset": "tiny"})
    assert run.status["status"] == "running"
    run.append_history({"step": 1, "loss": 2.0})
    run.append_history({"step": 2, "loss": 1.5})
    run.write_results({"ndcg@10": 0.1})
    run.set_status("finished", "done")
    loaded = store.get(run.id)
    assert loaded.config["budget"] == 20 and loaded.config["method"] == "random"
    assert [r["loss"] for r in loaded.history] == [2.0, 1.5]
    assert loaded.results == {"ndcg@10": 0.1} and loaded.status["status"] == "finished"
    assert [r.id for r in store.list()] == [run.id]
    store.delete(run.id)
    assert store.list() == []
    assert not list(tmp_path.rglob("*.tmp"))


def test_torn_history_line_is_skipped(tmp_path):
    run = RunStore(tmp_path).create("foster", {})
    run.append_history({"step": 1})
    with open(run.path / "history.jsonl", "a") as handle:
        handle.write('{"step": 2, "lo')  # what a kill mid-write leaves
    assert run.history == [{"step": 1}]


def test_running_run_whose_process_died_reads_as_interrupted(tmp_path):
    code = ("import sys; from foster_core.runs.run_store import RunStore; "
            f"r = RunStore({str(tmp_path)!r}).create('foster', {{}}); print(r.id)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    run = RunStore(tmp_path).get(proc.stdout.strip())
    assert run.status["status"] == "interrupted"
    RunStore(tmp_path).delete(run.id)  # an interrupted run can be deleted


def test_stop_request_from_another_thread(tmp_path):
    run = RunStore(tmp_path).create("foster", {})
    assert not run.stop_requested()
    thread = threading.Thread(target=RunStore(tmp_path).get(run.id).request_stop)
    thread.start()
    thread.join()
    assert run.stop_requested()


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", ".hidden", "x" * 200])
def test_run_ids_cannot_escape_the_store(tmp_path, bad):
    with pytest.raises(RunNotFound):
        RunStore(tmp_path).get(bad)


def test_a_running_run_cannot_be_deleted(tmp_path):
    store = RunStore(tmp_path)
    run = store.create("foster", {})
    with pytest.raises(ValueError, match="still running"):
        store.delete(run.id)
    assert json.loads((run.path / "config.json").read_text())["method"] == "foster"


def test_a_run_loaded_another_way_is_not_measured_the_same_way():
    from foster_core.runs.run_store import same_setup
    base = {"dataset": "tiny", "model": {"hidden": 8}, "expert": {}, "student": {"seeds": [0]}}
    whole = {**base, "data": {"truncate_histories": False}}
    assert same_setup(whole, {**base, "data": {"truncate_histories": False}})
    assert not same_setup(whole, {**base, "data": {"truncate_histories": True}})
    assert not same_setup(whole, base)  # a run from before the loading was recorded
