"""Nothing executes from data, names cannot leave their folders, and the server's defaults are safe."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from foster_core.core.data import DataError
from foster_core.runs.jobs import JobQueue
from foster_core.runs.run_store import RunNotFound, RunStore
from foster_core.core.sources import save_upload, upload_dir

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*ROOT.glob("foster_core/**/*.py"), ROOT / "app.py", *ROOT.glob("app_pages/*.py"), *ROOT.glob("scripts/*.py")])

# (pattern, why it is refused); each is matched against every line of the app's and library's source.
UNSAFE = [
    (re.compile(r"^\s*(import|from)\s+(pickle|cPickle|dill|joblib|shelve|marshal)\b"), "unpickling modules"),
    (re.compile(r"\bpickle\.loads?\("), "pickle.load"),
    (re.compile(r"read_pickle\("), "pandas.read_pickle"),
    (re.compile(r"allow_pickle\s*=\s*True"), "numpy pickles"),
    (re.compile(r"(?<![.\w])(eval|exec)\("), "eval/exec"),
    (re.compile(r"yaml\.load\((?!.*SafeLoader)"), "yaml.load without SafeLoader"),
    (re.compile(r"trust_remote_code\s*=\s*True"), "remote model code"),
    (re.compile(r"shell\s*=\s*True"), "shell commands"),
]


def test_no_source_line_can_execute_data():
    found = []
    for path in SOURCES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            for pattern, why in UNSAFE:
                if pattern.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {why}: {line.strip()}")
    assert not found, "\n".join(found)


def test_every_torch_load_is_weights_only_and_numpy_refuses_pickles():
    found = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"torch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in match.group(1):
                found.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
    assert not found, "\n".join(found)
    # np.load without allow_pickle (projection.py's cache) is safe because numpy refuses pickles by default;
    # allow_pickle=True anywhere is caught by the scan above.
    import inspect

    import numpy as np

    assert inspect.signature(np.load).parameters["allow_pickle"].default is False


def test_the_scan_sees_the_files_it_should():
    names = {p.name for p in SOURCES}
    assert {"data.py", "loaders.py", "text_encoder.py", "run_store.py", "foster.py", "ui.py", "app.py"} <= names
    assert any(p.parent.name == "app_pages" for p in SOURCES)


@pytest.mark.parametrize("bad", ["../x", "..", "a/../../b", "/etc/passwd", ".jobs", "a\\b", "a\x00b", "", "x" * 300])
def test_run_and_job_ids_cannot_reach_outside_their_folders(tmp_path, bad):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "config.json").write_text("{}")
    store = RunStore(tmp_path / "runs")
    store.create("foster", {})
    with pytest.raises(RunNotFound):
        store.get(bad)
    with pytest.raises(RunNotFound):
        store.delete(bad)
    with pytest.raises(KeyError):
        JobQueue(tmp_path / "runs").get(bad)
    assert (tmp_path / "outside" / "config.json").is_file()


def test_a_symlinked_run_folder_is_not_followed_out_of_the_store_on_delete(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "config.json").write_text('{"method": "foster"}')
    (victim / "status.json").write_text('{"status": "finished"}')
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "20260101-000000-foster-abcdef").symlink_to(victim)
    with pytest.raises(RunNotFound):
        RunStore(tmp_path / "runs").delete("20260101-000000-foster-abcdef")
    assert (victim / "config.json").is_file()


@pytest.mark.parametrize("interactions_name, items_name", [
    ("../../etc/cron.d/x.csv", "../items.csv"), ("/tmp/abs.csv", "/tmp/abs_items.csv"),
    ("..\\..\\win.csv", "i.csv"), ("a.csv\x00.sh", "i.csv"), (".csv", ".csv"),
])
def test_uploads_are_written_only_into_the_apps_data_folder(tmp_path, monkeypatch, interactions_name, items_name):
    monkeypatch.setenv("FOSTER_CACHE_DIR", str(tmp_path / "cache"))
    before = {p for p in tmp_path.rglob("*")}
    try:
        folder = save_upload(interactions_name, b"user_id,item_id,timestamp\n", items_name, b"item_id,text\n")
    except DataError:
        folder = None  # refused by its suffix: nothing written at all
    written = {p for p in tmp_path.rglob("*")} - before
    root = upload_dir().resolve()
    assert all(p.resolve() == root or p.resolve().is_relative_to(root) or root.is_relative_to(p.resolve())
               for p in written)
    if folder is not None:
        assert folder.resolve().parent == root
        assert sorted(p.name for p in folder.iterdir()) in (["interactions.csv", "items.csv"],)


def test_streamlit_serves_locally_with_xsrf_on_and_no_usage_statistics():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"].get("enableCORS", True) is True  # CORS protection stays on (the default)
    assert config["browser"]["gatherUsageStats"] is False
    readme = (ROOT / "README.md").read_text()
    assert "streamlit run app.py" in readme and "--server.address 0.0.0.0" in readme
    start = re.search(r"pip install -r requirements.txt && (streamlit run app\.py[^\n]*)", readme).group(1)
    assert "0.0.0.0" not in start and "server.address" not in start  # exposing it is a separate, explicit option
