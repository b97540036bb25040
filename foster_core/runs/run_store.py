"""The run store: one folder per distillation or baseline run, readable at every moment.

    runs/<run_id>/
      config.json           what was asked for (method, budget, dataset, every config dataclass)
      status.json           running | finished | failed | stopped, with a message and progress
      history.jsonl         one JSON line per logged step, appended while the run works (live curves)
      checkpoints/          periodic snapshots of the synthetic data (safetensors)
      synthetic.safetensors the final synthetic data
      results.json          evaluation of the synthetic data

Every file except history.jsonl is replaced atomically (temporary file + rename). history.jsonl is only
appended; a reader skips a torn last line, so a run killed mid-write still loads. A run whose status says
"running" but whose process is gone reads as "interrupted".
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..core.architectures import DEFAULT_ARCHITECTURE
from ..core.atomic import atomic_write, atomic_write_json, read_json_or, remove_temporaries
from ..methods.events import LoggedEvent, StepEvent, event_from_record

RUNS_ENV = "FOSTER_RUNS_DIR"
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
STATUSES = ("running", "finished", "failed", "stopped", "interrupted")
FULL = "full"  # the full-data reference's name in the run store and the bench table (not a method)


class RunNotFound(KeyError):
    pass


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_ENV) or "runs")


def utc_timestamp() -> str:
    """Now, as the run store and the job files write it (UTC, ISO 8601, seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed child of this process (the app's worker) stays a zombie until reaped, and signal 0 still
    # reaches a zombie: without this check a SIGKILLed worker would read as "running" for ever.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    if state in ("Z", "X"):
        try:
            os.waitpid(pid, os.WNOHANG)  # reap it if it is ours
        except ChildProcessError:
            pass
        return False
    return True


# "data": how the dataset was loaded (whole histories or the last items only); runs from before it was
# recorded match only each other.
SETUP_KEYS = ("dataset", "data", "model", "expert", "student")


def architecture_results(results: dict | None) -> dict[str, dict]:
    """Each student architecture's numbers in a results dict, by name. Results from before architectures
    (or with one) hold the headline architecture's alone: the default one, where they do not say."""
    results = results or {}
    if "by_architecture" in results:
        return results["by_architecture"]
    if "test" not in results:
        return {}
    return {results.get("architecture", DEFAULT_ARCHITECTURE): results}


def same_setup(a: dict, b: dict) -> bool:
    """Whether two run configs were measured the same way: dataset and its loading, recommender, expert and
    students.
    Compared as JSON, so a config read from a file matches one built in memory (lists vs tuples)."""
    def setup(config: dict) -> str:
        values = {k: config.get(k) for k in SETUP_KEYS}
        # Which student architectures were trained is not part of the setup: a reference trained for several
        # serves a run with any of them (each architecture's ratio looks up that architecture's numbers).
        if isinstance(values.get("student"), dict):
            values["student"] = {k: v for k, v in values["student"].items() if k != "architectures"}
        return json.dumps(values, sort_keys=True, default=str)
    return setup(a) == setup(b)


@dataclass
class Run:
    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    # --- writing (the process that owns the run)

    def set_status(self, status: str, message: str = "", **extra: object) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        current = self._read_json("status.json", {})
        current.update(extra)
        current.update(status=status, message=message, updated=utc_timestamp(), pid=os.getpid(), host=socket.gethostname())
        atomic_write_json(self.path / "status.json", current)

    def append_history(self, record: dict) -> None:
        line = json.dumps(record, default=float) + "\n"
        with open(self.path / "history.jsonl", "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()

    def write_results(self, results: dict) -> None:
        atomic_write_json(self.path / "results.json", results)

    def request_stop(self) -> None:
        """Ask the run to stop at its next step; works from another thread or another process."""
        (self.path / "STOP").touch()

    def stop_requested(self) -> bool:
        return (self.path / "STOP").exists()

    # --- reading (anyone)

    @property
    def config(self) -> dict:
        return self._read_json("config.json", {})

    @property
    def status(self) -> dict:
        status = self._read_json("status.json", {"status": "interrupted", "message": "no status was written"})
        if status.get("status") == "running" and status.get("host") == socket.gethostname():
            pid = status.get("pid")
            if isinstance(pid, int) and not process_alive(pid):
                status = {**status, "status": "interrupted", "message": "the process running it ended without finishing"}
        return status

    @property
    def history(self) -> list[dict]:
        path = self.path / "history.jsonl"
        if not path.is_file():
            return []
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a kill; the rest is intact
        return records

    @property
    def results(self) -> dict | None:
        return self._read_json("results.json", None)

    @property
    def synthetic_path(self) -> Path:
        return self.path / "synthetic.safetensors"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def latest_checkpoint(self) -> Path | None:
        checkpoints = sorted(self.checkpoint_dir.glob("step_*.safetensors"))
        return checkpoints[-1] if checkpoints else None

    @staticmethod
    def checkpoint_step(path: Path) -> int:
        """The step a checkpoint file was taken after (step_000120.safetensors -> 120)."""
        return int(path.stem.split("_")[-1])

    @property
    def events(self) -> list[LoggedEvent]:
        """The history as typed events (lines that are none are skipped)."""
        return [e for e in map(event_from_record, self.history) if e is not None]

    @property
    def step_events(self) -> list[StepEvent]:
        """The loss-curve points (selection records are not)."""
        return [e for e in self.events if isinstance(e, StepEvent)]

    def resumable(self) -> bool:
        """Whether `resume` may take this run up: it ended without finishing (killed, failed or stopped)."""
        return self.status.get("status") in ("interrupted", "failed", "stopped")

    def prepare_resume(self, step: int) -> None:
        """Make the folder ready to continue after `step`: drop what came later (loss records past the checkpoint,
        selection records, a stop request, temporaries a kill left behind, stale results) and say so."""
        if not self.resumable():
            raise ValueError(f"run {self.id} is {self.status.get('status')}; only an interrupted, failed or "
                             "stopped run can be resumed.")
        kept = [r for r in self.history
                if isinstance(event_from_record(r), StepEvent) and isinstance(r.get("step"), int) and r["step"] <= step]
        atomic_write(self.path / "history.jsonl",
                     lambda tmp: Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8"))
        for leftover in ("STOP", "results.json"):
            (self.path / leftover).unlink(missing_ok=True)
        remove_temporaries(self.path)
        resumes = int(self.status.get("resumes", 0)) + 1
        self.set_status("running", f"resumed from step {step}" if step else "restarted (no checkpoint yet)",
                        resumed_from=step, resumes=resumes, phase=None, started=time.time())

    def _read_json(self, name: str, default):
        return read_json_or(self.path / name, default)


class RunStore:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else default_runs_dir()
        self._lock = threading.Lock()

    def create(self, method: str, config: dict) -> Run:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        safe_method = re.sub(r"[^A-Za-z0-9_-]", "", method)[:24] or "run"
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            path = self.root / f"{stamp}-{safe_method}-{secrets.token_hex(3)}"
            path.mkdir()
        run = Run(path)
        atomic_write_json(path / "config.json", {"method": method, "created": utc_timestamp(), **config})
        run.set_status("running", "started", started=time.time())
        return run

    def get(self, run_id: str) -> Run:
        if not RUN_ID_PATTERN.match(run_id or ""):
            raise RunNotFound(f"not a valid run id: {run_id!r}")
        path = self.root / run_id
        if not (path / "config.json").is_file():
            raise RunNotFound(f"no run {run_id!r} in {self.root}")
        return Run(path)

    def list(self) -> list[Run]:
        if not self.root.is_dir():
            return []
        runs = [Run(p) for p in self.root.iterdir() if p.is_dir() and RUN_ID_PATTERN.match(p.name)
                and (p / "config.json").is_file()]
        return sorted(runs, key=lambda r: r.id, reverse=True)

    def find_reference(self, config: dict, runs: list[Run] | None = None,
                       architectures: tuple[str, ...] | list[str] = (DEFAULT_ARCHITECTURE,)) -> Run | None:
        """The newest finished full-data run that matches `config` (the same dataset, recommender, expert
        and students) and holds every one of the student `architectures`, since each architecture's ratio
        is to its own full-data training. The one definition of "the matching full-data run" (Compare's
        ratios, a job's check whether its reference exists already). `runs`: the store's listing, when the
        caller has it already."""
        for run in self.list() if runs is None else runs:
            candidate = run.config
            if candidate.get("method") != FULL or not same_setup(candidate, config):
                continue
            results = run.results  # read once: every property reads its file
            if results and set(architectures) <= set(architecture_results(results)):
                return run
        return None

    def delete(self, run_id: str) -> None:
        run = self.get(run_id)
        if run.status.get("status") == "running":
            raise ValueError(f"run {run_id} is still running; stop it first")
        if run.path.is_symlink() or run.path.resolve().parent != self.root.resolve():
            raise RunNotFound(f"{run_id} is not a folder of the run store {self.root}")
        shutil.rmtree(run.path)


def full_data_numbers(store: RunStore, runs: list[Run] | None, run: Run, config: dict, arch: str) -> dict | None:
    """Architecture `arch`'s numbers in the full-data run that `run` is compared with (the newest matching one
    that trained `arch`; a full-data run is its own), or None when there is none. `config`: the run's config,
    `runs`: the store's listing, when the caller has them already (None: the store is listed)."""
    reference = run if config.get("method") == FULL else store.find_reference(config, runs, (arch,))
    return architecture_results(reference.results).get(arch) if reference else None


@dataclass(frozen=True)
class ExportFile:
    filename: str
    description: str
    mime: str
    path: Path


EXPORTS = (
    ("synthetic.safetensors", "The synthetic data itself: per position, sparse input and label distributions "
                              "(load with foster_core.core.synthetic.SyntheticData.load).", "application/octet-stream"),
    ("item_ids.csv", "The dataset's item id of each item index in synthetic.safetensors (item_index,item_id).",
     "text/csv"),
    ("synthetic_top_items.csv", "Readable table: top-5 input and label items per position with text and "
                                "probability.", "text/csv"),
    ("synthetic_interactions.csv", "Each position's most probable item as interactions (user_id,item_id,timestamp; "
                                   "original item ids).", "text/csv"),
    ("synthetic.inter", "The same interactions as a RecBole atomic .inter file.", "text/tab-separated-values"),
    ("card.md", "Dataset card: source dataset, method, budget, metrics, costs, date and every config.",
     "text/markdown"),
    ("card.json", "The same dataset card as JSON.", "application/json"),
    ("config.json", "What was asked for: method, budget, dataset and every config.", "application/json"),
    ("results.json", "Evaluation: test and validation metrics per student, coverage, costs.", "application/json"),
)


def export_files(run: Run) -> list[ExportFile]:
    """The files of a run that can be downloaded, in a fixed order; missing ones are left out."""
    return [ExportFile(name, description, mime, run.path / name) for name, description, mime in EXPORTS
            if (run.path / name).is_file()]
