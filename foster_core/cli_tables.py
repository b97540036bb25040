"""The tables the command line prints: `train`'s summary, `bench`'s table with its closing line per method,
and the bench's transfer table over student architectures."""

from __future__ import annotations

import pandas as pd

from .analysis.compare import MISSING, budget_to_reach, format_mean_std, format_number
from .methods.events import kept_label
from .core.architectures import architecture_rank
from .runs.evaluator import format_seconds, speed_up, student_train_seconds
from .runs.run_store import FULL


def format_bench_table(report: dict) -> str:
    full = report["rows"][0]  # the full-data row comes first
    lines = [f"{report['dataset']} — test metrics, mean ± std over {report['seeds']} students; full ranking",
             "| method | n | positions | share of train | NDCG@10 | Recall@10 | ratio NDCG@10 | ratio Recall@10 | "
             "coverage | top-10% share | distill s | peak MB | student train s | student eval s | train speed-up |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in report["rows"]:
        cov = "" if row["coverage"] is None else f"{row['coverage']:.3f}"
        train, evaluation = row.get("student_train_seconds"), row.get("student_eval_seconds")
        # Student training seconds of full data over this row's: what training on the distilled data saves.
        speedup = speed_up(train, full.get("student_train_seconds"))
        lines.append(
            f"| {kept_label(row['method'], row.get('kept'))} | {row['budget'] if row['budget'] is not None else 'all'} | "
            f"{format_number(row.get('positions'), '{:.0f}')} | {format_number(row.get('position_share'), '{:.1%}')} | "
            f"{row['ndcg@10']['mean']:.4f} ± {row['ndcg@10']['std']:.4f} | {row['recall@10']['mean']:.4f} ± {row['recall@10']['std']:.4f} | "
            f"{row['ratio_ndcg@10']:.2f} | {row['ratio_recall@10']:.2f} | {cov} | {row['popular_share']:.2f} | "
            f"{row['distill_seconds']:.1f} | {row['peak_mb']:.0f} | "
            f"{'' if train is None else f'{train:.1f}'} | {'' if evaluation is None else f'{evaluation:.1f}'} | "
            f"{format_speedup(speedup)} |")
    reach = format_reach_lines(report["rows"], report.get("ladder", {}).get("stopped"))
    if reach:
        lines += ["", "Smallest budget per method that reaches a share of the full-data NDCG@10:", *reach]
    if "by_architecture" in report:
        lines += ["", format_architecture_table(report)]
    return "\n".join(lines)


def format_reach_lines(rows: list[dict], stops: dict[str, str] | None = None) -> list[str]:
    """One line per method: the smallest budget reaching 90% and 95% of full data, with its share of the
    training data, its student training time and that training's speed-up against full data; where the
    budget ladder stopped a method, why. The budgets come from Compare's `budget_to_reach`, on the bench rows."""
    full = next((r for r in rows if r["method"] == FULL), {})
    table = pd.DataFrame([{"method": r["method"], "kept": r.get("kept", ""), "budget": r["budget"],
                           "ndcg@10 / full": r.get("ratio_ndcg@10"),
                           "position share": r.get("position_share"), "student train s": student_train_seconds(r),
                           "full-data train s": student_train_seconds(full)}
                          for r in rows if r["method"] != FULL])
    lines = []
    for method, reaches in budget_to_reach(table).groupby("method", sort=False):
        clauses: dict[object, list[dict]] = {}  # fractions reached at the same budget share a clause
        for reach in reaches.astype(object).where(reaches.notna(), None).to_dict("records"):  # NaN -> None
            clauses.setdefault(reach["budget"], []).append(reach)
        stop = (stops or {}).get(method)
        lines.append(f"- {method}: " + "; ".join(map(_reach_text, clauses.values()))
                     + (f" (the ladder stopped: {stop})" if stop else ""))
    return lines


def _reach_text(group: list[dict]) -> str:
    fractions, reach = " and ".join(f"{r['fraction']:.0%}" for r in group), group[0]
    if reach["budget"] is None:
        return (f"{fractions} of full not reached (best {reach['best ratio']:.2f} of full, "
                f"at n={int(reach['best budget'])})")
    share = format_number(reach["position share"], "{:.1%} of the training data")
    speedup = format_speedup(reach["speed-up vs full"]) or MISSING
    return (f"{fractions} of full at n={int(reach['budget'])} ({share}, student training "
            f"{format_seconds(reach['student train s'])}, speed-up {speedup} against full data)")


def format_speedup(speedup: float | None) -> str:
    """'51x', '6.3x', '0.4x' (below 10, a decimal: a speed-up under 1 means the synthetic data trains slower), or ''."""
    if speedup is None:
        return ""
    return f"{speedup:.0f}x" if speedup >= 10 else f"{speedup:.1f}x"


def format_architecture_table(report: dict) -> str:
    """The bench's transfer table: every student architecture on every method's data, each against its own
    full-data training."""
    lines = ["Student architectures — each ratio and speed-up is against the same architecture trained on full data",
             "| student | method | n | NDCG@10 | Recall@10 | ratio NDCG@10 | student train s | train speed-up |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in sorted(report["by_architecture"], key=lambda r: architecture_rank(r["architecture"])):
        ratio, train, speedup = row["ratio_ndcg@10"], row["student_train_seconds"], row["train_speedup"]
        lines.append(
            f"| {row['architecture']} | {row['method']} | {row['budget'] if row['budget'] is not None else 'all'} | "
            f"{format_mean_std(row['ndcg@10']['mean'], row['ndcg@10']['std'], row.get('seeds'))} | "
            f"{format_mean_std(row['recall@10']['mean'], row['recall@10']['std'], row.get('seeds'))} | "
            f"{'' if ratio is None else f'{ratio:.2f}'} | {'' if train is None else f'{train:.1f}'} | "
            f"{format_speedup(speedup)} |")
    return "\n".join(lines)


def format_summary(report: dict) -> str:
    lines = [
        f"Device {report['device']} ({report['machine']}); encode {report['seconds']['encode']:.1f}s, "
        f"train {report['seconds']['train']:.1f}s, best epoch {report['best_epoch']} of {report['epochs_run']}",
        "| model | split | NDCG@10 | Recall@10 | NDCG@20 | Recall@20 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in ("popularity", "model"):
        for split in ("valid", "test"):
            m = report[name][split]
            label = "text-SASRec" if name == "model" else name
            lines.append(f"| {label} | {split} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | "
                         f"{m['ndcg@20']:.4f} | {m['recall@20']:.4f} |")
    return "\n".join(lines)
