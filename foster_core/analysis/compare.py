"""The comparison over the run store: one row per run, test metrics mean ± std, ratio to the matching
full-data run, costs and status (the Compare page)."""

from __future__ import annotations

import pandas as pd

from ..runs.evaluator import HEADLINE
from ..runs.experiment import FULL
from ..runs.run_store import RunStore


def compare_table(store: RunStore) -> pd.DataFrame:
    """One row per run: test metrics mean ± std, ratio to the matching full-data run, costs, status."""
    rows = []
    for run in store.list():
        config, results, status = run.config, run.results, run.status
        reference = store.find_reference(config) if config.get("method") != FULL else run
        row = {"run": run.id, "method": config.get("method"), "budget": config.get("budget"),
               "dataset": config.get("dataset"), "preset": config.get("preset", ""),
               "status": status.get("status"), "created": config.get("created", "")}
        test = (results or {}).get("test", {})
        ref_test = ((reference.results or {}).get("test", {}) if reference else {})
        for metric in HEADLINE:
            if metric in test:
                row[metric] = test[metric]["mean"]
                row[f"{metric} std"] = test[metric]["std"]
                if metric in ("ndcg@10", "recall@10", "recall@20") and metric in ref_test:
                    row[f"{metric} / full"] = test[metric]["mean"] / max(ref_test[metric]["mean"], 1e-12)
        row["seeds"] = len((results or {}).get("per_seed_test", [])) or None
        row["distill s"] = (results or {}).get("distill_seconds")
        row["student train s"] = (results or {}).get("student_seconds")
        row["full-data train s"] = (reference.results or {}).get("student_seconds") if reference else None
        row["coverage"] = (results or {}).get("coverage")
        row["popular share"] = (results or {}).get("popular_share")
        rows.append(row)
    return pd.DataFrame(rows)


def mean_std(frame: pd.DataFrame, metric: str) -> pd.Series:
    """'0.0412 ± 0.0031' strings for a table cell."""
    return frame.apply(lambda r: (f"{r[metric]:.4f} ± {r[f'{metric} std']:.4f}"
                                  if pd.notna(r.get(metric)) else "–"), axis=1)
