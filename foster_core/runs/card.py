"""A dataset card for each distilled set: what it is, where it came from and how good it is.

Written into the run folder (`card.md` for people, `card.json` for programs) beside the exports, so a
published synthetic set says its source dataset, method, budget, every config, its metrics and its date.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.atomic import atomic_write, atomic_write_json
from ..core.architectures import DEFAULT_ARCHITECTURE
from .evaluator import HEADLINE
from .run_store import Run, architecture_results, utc_timestamp

CARD_FILES = ("card.md", "card.json")


def card_data(run: Run) -> dict:
    """The card's content as JSON: provenance from config.json, quality from results.json (when evaluated)."""
    config, results = run.config, run.results or {}
    test = results.get("test", {})
    return {
        "name": f"{config.get('dataset')} distilled by {config.get('method')} to {config.get('budget')} sequences",
        "run": run.id, "created": config.get("created"), "card_written": utc_timestamp(),
        "source_dataset": config.get("dataset"), "method": config.get("method"), "budget": config.get("budget"),
        "status": run.status.get("status"),
        "config": {k: config.get(k) for k in ("distill", "student", "model", "expert")},
        "metrics": {"test": {m: test[m] for m in HEADLINE if m in test},
                    "students": len(results.get("per_seed_test", [])),
                    "architecture": results.get("architecture", DEFAULT_ARCHITECTURE) if test else None,
                    # Every student architecture's test NDCG@10 and Recall@10, where several were trained.
                    "by_architecture": ({arch: {m: numbers["test"][m] for m in ("ndcg@10", "recall@10")}
                                         for arch, numbers in architecture_results(results).items()}
                                        if "by_architecture" in results else {}),
                    "protocol": "full ranking over all items, the user's history masked, leave-one-out; "
                                "mean and std over fresh students trained on the synthetic data alone"},
        "costs": {k: results.get(k) for k in ("distill_seconds", "student_seconds", "student_train_seconds",
                                          "student_eval_seconds", "peak_mb")},
        "coverage": results.get("coverage"), "popular_share": results.get("popular_share"),
        "files": {"synthetic.safetensors": "per position, sparse input and label distributions over item ids",
                  "synthetic_top_items.csv": "top-5 input and label items per position, with text",
                  "synthetic_interactions.csv": "each position's most probable item as user_id,item_id,timestamp",
                  "synthetic.inter": "the same as a RecBole atomic .inter file"},
    }


def card_markdown(card: dict) -> str:
    lines = [f"# {card['name']}", "",
             f"- **Source dataset:** {card['source_dataset']}",
             f"- **Method:** {card['method']}, **budget:** {card['budget']} synthetic sequences",
             f"- **Run:** `{card['run']}`, created {card['created']} (status: {card['status']})", ""]
    test = card["metrics"]["test"]
    if test:
        lines += [f"## Quality ({card['metrics']['students']} student(s); {card['metrics']['protocol']})", "",
                  "| metric | mean | std |", "| --- | --- | --- |"]
        # One student has no spread: the std cell says so instead of reading as a real zero.
        spread = (lambda v: "– (1 student)") if card["metrics"]["students"] == 1 else (lambda v: f"{v['std']:.4f}")
        lines += [f"| {m} | {v['mean']:.4f} | {spread(v)} |" for m, v in test.items()]
        lines.append("")
        others = card["metrics"].get("by_architecture") or {}
        if others:
            lines += [f"The table is for the `{card['metrics']['architecture']}` students. Every student "
                      "architecture trained on the same data:", "", "| student | NDCG@10 | Recall@10 |",
                      "| --- | --- | --- |"]
            lines += [f"| {arch} | {v['ndcg@10']['mean']:.4f} ± {v['ndcg@10']['std']:.4f} | "
                      f"{v['recall@10']['mean']:.4f} ± {v['recall@10']['std']:.4f} |" for arch, v in others.items()]
            lines.append("")
    else:
        lines += ["Not evaluated (the run did not finish).", ""]
    costs = {k: v for k, v in card["costs"].items() if v is not None}
    if costs:
        lines += ["## Costs", "", *[f"- {k}: {v:.1f}" for k, v in costs.items()], ""]
    lines += ["## Files", "", *[f"- `{name}`: {what}" for name, what in card["files"].items()], "",
              "## Configuration", "", "```json"]
    lines += [json.dumps(card["config"], indent=2, sort_keys=True, default=str), "```", ""]
    return "\n".join(lines)


def write_card(run: Run) -> tuple[Path, Path]:
    """Write (or rewrite) card.md and card.json into the run folder, atomically."""
    card = card_data(run)
    md = atomic_write(run.path / "card.md", lambda tmp: Path(tmp).write_text(card_markdown(card), encoding="utf-8"))
    return md, atomic_write_json(run.path / "card.json", card)
