"""Time the quick preset as the app starts it, on a fresh cache, and how responsive the machine stays meanwhile.

    python benchmarks/quick_preset.py [--dataset movielens] [--threads 0] [--cache-dir DIR] [--out result.json]

The job goes through `JobQueue.submit`, as the Distill page's button does: a worker process with the app's
default threads and priority, a new runs folder and, unless --cache-dir names one, a new cache folder (so
the item texts are encoded and the expert trained; run twice with the same --cache-dir for the cached time).
The table gives the second at which each phase started and when the first FOSTER numbers
were written.

Responsiveness: this process (normal priority, standing in for the app) runs the same small fixed piece of
Python work every half second and times it, first with the machine idle, then while the job runs. The
ratio of the medians says how much slower the app's own work gets while a job uses the cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foster_core.runs.jobs import FINAL, JobQueue, default_threads, job_spec  # noqa: E402
from foster_core.runs.presets import PRESETS  # noqa: E402


def app_work() -> float:
    """Seconds one fixed piece of pure-Python work takes (about 10 ms on an idle core)."""
    start = time.perf_counter()
    total = 0
    for i in range(200_000):
        total += i * i % 7
    return time.perf_counter() - start


def idle_latencies(count: int = 20) -> list[float]:
    samples = []
    for _ in range(count):
        samples.append(app_work())
        time.sleep(0.05)
    return samples


def time_quick_preset(dataset: str, threads: int, cache_dir: str | None = None) -> dict:
    preset = PRESETS["quick"]
    spec = job_spec(dataset, list(preset.methods), list(preset.budgets), preset.distill, preset.student_config(),
                    preset.expert_config(), preset="quick", threads=threads)
    spec.cache_dir = cache_dir or tempfile.mkdtemp(prefix="quick_cache_")
    runs = Path(tempfile.mkdtemp(prefix="quick_runs_"))
    idle = idle_latencies()
    start = time.time()
    job = JobQueue(runs).submit(spec)
    phases: dict[str, float] = {}
    busy: list[float] = []
    first_foster = None
    while True:
        state = job.state
        phase = state.get("phase")
        label = phase.get("label") if isinstance(phase, dict) else state.get("message", "")
        phases.setdefault(str(label), round(time.time() - start, 1))
        for run_id in state.get("run_ids", []):
            config, results = runs / run_id / "config.json", runs / run_id / "results.json"
            if first_foster is None and results.is_file() and config.is_file() \
                    and json.loads(config.read_text()).get("method") == "foster":
                first_foster = round(time.time() - start, 1)
        if state.get("status") in FINAL:
            break
        busy.append(app_work())
        time.sleep(0.5)
    return {"dataset": dataset, "fresh_cache": cache_dir is None, "threads": threads or default_threads(),
            "status": state.get("status"),
            "first_foster_s": first_foster, "job_s": round(time.time() - start, 1), "phases_started_s": phases,
            "app_work_idle_ms": round(1000 * statistics.median(idle), 1),
            "app_work_during_job_ms": round(1000 * statistics.median(busy), 1) if busy else None,
            "app_work_during_job_p95_ms": round(1000 * sorted(busy)[int(0.95 * (len(busy) - 1))], 1) if busy else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="movielens")
    parser.add_argument("--threads", type=int, default=0, help="worker threads; 0 = the app's default")
    parser.add_argument("--cache-dir", help="the cache folder to use (default: a new, empty one)")
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args()
    result = time_quick_preset(args.dataset, args.threads, args.cache_dir)
    print(f"quick preset on {result['dataset']}, {result['threads']} worker threads: job {result['status']}")
    print("| phase | started at (s) |\n| --- | --- |")
    for label, second in result["phases_started_s"].items():
        print(f"| {label} | {second} |")
    print(f"first FOSTER numbers after {result['first_foster_s']} s; job done after {result['job_s']} s")
    print(f"app's fixed work: {result['app_work_idle_ms']} ms idle, {result['app_work_during_job_ms']} ms median "
          f"(p95 {result['app_work_during_job_p95_ms']} ms) while the job runs")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
