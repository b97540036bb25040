"""The budget ladder (`bench --budgets auto`): how small can the synthetic data be and still train a good
student? Each method tries 10, 20, 50, 100, 200, 500, ... sequences and stops climbing once its students
reach 95% of the full-data NDCG@10, or once its synthetic data holds a quarter of the training positions
(beyond that it is no longer a small summary of the data), and never goes past the usable sequences.

Works on the bench's rows (runs/experiment.py `run_bench`): each holds `ratio_ndcg@10` to full data and,
where the evaluator recorded it, `position_share`.
"""

from __future__ import annotations

from .evaluator import ratio_to

LADDER_WORD = "auto"  # what asks for the ladder: `bench --budgets auto`, and the app's budget sweep field
LADDER_STEPS = (10, 20, 50)  # times 1, 10, 100, ...: 10, 20, 50, 100, 200, 500, ...
STOP_RATIO = 0.95  # of full-data NDCG@10
STOP_POSITION_SHARE = 0.25  # of the training split's next-item targets
REACH_FRACTIONS = (0.90, 0.95)  # Compare's targets and the closing line of each method in the bench table


def ladder_budgets(usable: int) -> list[int]:
    """The rungs below `usable` (the usable training sequences), then `usable` itself as the last one."""
    if usable < 1:
        raise ValueError("the dataset has no usable training sequence (each needs at least two items)")
    rungs, scale = [], 1
    while True:
        for step in LADDER_STEPS:
            if step * scale >= usable:
                return rungs + [usable]
            rungs.append(step * scale)
        scale *= 10


def ladder_stop(row: dict) -> str | None:
    """Why a method tries no larger budget after this bench row, or None to climb on."""
    ratio, share = row.get("ratio_ndcg@10"), row.get("position_share")
    if ratio is not None and ratio >= STOP_RATIO:
        return f"reached {STOP_RATIO:.0%} of full-data NDCG@10 ({ratio:.2f})"
    if share is not None and share >= STOP_POSITION_SHARE:
        return (f"the synthetic data holds {share:.0%} of the training positions "
                f"(the ladder stops at {STOP_POSITION_SHARE:.0%})")
    return None


def results_stop(results: dict, full: dict) -> str | None:
    """`ladder_stop` for one run's results against the full-data reference's (the app's ladder jobs, which
    build no bench rows)."""
    ratio = ratio_to(results["test"]["ndcg@10"]["mean"], full["test"]["ndcg@10"]["mean"])
    return ladder_stop({"ratio_ndcg@10": ratio, "position_share": results.get("position_share")})


def ladder_passed(stopped: dict | None, method: str, budget: int) -> bool:
    """Whether a ladder job never runs this pair: it stopped `method` at a smaller budget (`stopped`: the job
    state's ladder_stopped, method -> {"budget", "reason"})."""
    return bool(stopped) and method in stopped and budget > stopped[method]["budget"]
