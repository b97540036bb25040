"""A dataset card for each distilled set: what it is, where it came from and how good it is.

Written into the run folder (`card.md` for people, `card.json` for programs) beside the exports, so a
published synthetic set says on its own its source dataset, method, budget, preset, every config, its
metrics next to the full-data numbers they are a share of, how much of the training data it amounts to,
how close it comes to copying real users, and its date. A run's full-data reference may finish after the
run (a job trains it last): `refresh_cards` then rewrites the cards that can now state their ratios.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.atomic import atomic_write, atomic_write_json
from ..core.architectures import DEFAULT_ARCHITECTURE
from ..methods.events import CandidateSelected, kept_label
from .evaluator import HEADLINE, ratio_to, speed_up, student_train_seconds
from .run_store import Run, RunStore, architecture_results, full_data_numbers, same_setup, utc_timestamp

CARD_FILES = ("card.md", "card.json")
RATIO_METRICS = ("ndcg@10", "recall@10")
NO_PRESET = "custom"  # runs made from the command line, or with settings of their own
# Presets whose settings are cut short to answer in minutes: their numbers show a direction, no more.
INDICATIVE_PRESETS = frozenset({"quick"})
INDICATIVE_WARNING = ("Indicative numbers: this run used the quick preset (a short expert, few distillation steps "
                      "and one quickly trained student). Rerun with the standard preset before publishing them.")


def card_data(run: Run, store: RunStore | None = None, runs: list[Run] | None = None) -> dict:
    """The card's content as JSON: provenance from config.json, quality from results.json (when evaluated),
    and the full-data numbers from the matching full-data run of `store` (default: the run's own store;
    `runs`: its listing, when the caller has it already)."""
    config, results = run.config, run.results or {}
    test = results.get("test", {})
    arch = results.get("architecture", DEFAULT_ARCHITECTURE)
    store = store or RunStore(run.path.parent)
    full = full_data_numbers(store, runs, run, config, arch) if test else None
    preset = config.get("preset") or NO_PRESET
    copying = results.get("copying")
    return {
        "name": f"{config.get('dataset')} distilled by {kept_label(str(config.get('method')), results.get('kept'))} "
                f"to {config.get('budget')} sequences",
        "run": run.id, "created": config.get("created"), "card_written": utc_timestamp(),
        "source_dataset": config.get("dataset"), "method": config.get("method"), "budget": config.get("budget"),
        "status": run.status.get("status"),
        "preset": preset, "indicative": preset in INDICATIVE_PRESETS,
        "warning": INDICATIVE_WARNING if preset in INDICATIVE_PRESETS else None,
        # Non-padding input positions of the synthetic data, and their share of the training split's
        # next-item targets (None in results written before they were recorded).
        "positions": results.get("positions"), "position_share": results.get("position_share"),
        "kept": _kept(run),
        "config": {k: config.get(k) for k in ("distill", "student", "model", "expert")},
        "metrics": {"test": {m: test[m] for m in HEADLINE if m in test},
                    "students": len(results.get("per_seed_test", [])),
                    "architecture": arch if test else None,
                    # Every student architecture's test NDCG@10 and Recall@10, where several were trained.
                    "by_architecture": ({a: {m: numbers["test"][m] for m in RATIO_METRICS}
                                         for a, numbers in architecture_results(results).items()}
                                        if "by_architecture" in results else {}),
                    "protocol": "full ranking over all items, the user's history masked, leave-one-out; "
                                "mean and std over fresh students trained on the synthetic data alone"},
        "full_data": _against_full(config.get("method"), results, full),
        "copying": copying.get("summary") if isinstance(copying, dict) else None,
        "costs": {k: results.get(k) for k in ("distill_seconds", "student_seconds", "student_train_seconds",
                                          "student_eval_seconds", "peak_mb")},
        "coverage": results.get("coverage"), "popular_share": results.get("popular_share"),
        "files": {"synthetic.safetensors": "per position, sparse input and label distributions over item indices "
                                           "(left padding where mask is false)",
                  "item_ids.csv": "the dataset's item id of each item index (item_index,item_id)",
                  "synthetic_top_items.csv": "top-5 input and label items per position, with text",
                  "synthetic_interactions.csv": "each position's most probable item as user_id,item_id,timestamp",
                  "synthetic.inter": "the same as a RecBole atomic .inter file"},
        "format": "docs/export-format.md of FOSTER Studio describes every file, tensor, shape and the padding",
    }


def _kept(run: Run) -> str | None:
    """Which candidate a run's holdout selection kept, in words; None for runs that select nothing."""
    selected = next((e for e in run.events if isinstance(e, CandidateSelected)), None)
    if selected is None:
        return None
    if selected.kept:
        return (f"{selected.kept}'s data for the same budget (real training sequences with the expert's "
                f"labels, not distilled ones): it scored above the synthetic data of every step on held-out "
                f"training data (NDCG@10 {selected.holdout_ndcg:.4f})")
    return f"the synthetic data after step {selected.step} of {selected.of} (held-out NDCG@10 {selected.holdout_ndcg:.4f})"


def _against_full(method: str | None, results: dict, full: dict | None) -> dict | None:
    """The full-data students' test numbers, the synthetic data's ratio to them, and the speed-up of training
    a student on the synthetic data instead; None without a matching full-data run."""
    if not full or "test" not in full:
        return None
    test, full_test = results.get("test", {}), full["test"]
    train, full_train = student_train_seconds(results), student_train_seconds(full)
    return {"test": {m: full_test[m] for m in HEADLINE if m in full_test},
            "students": len(full.get("per_seed_test", [])),
            "ratio": {m: ratio_to(test[m]["mean"], full_test[m]["mean"])
                      for m in RATIO_METRICS if m in test and m in full_test},
            "student_train_seconds": full_train, "student_train_speedup": speed_up(train, full_train, method)}


def card_markdown(card: dict) -> str:
    lines = [f"# {card['name']}", ""]
    if card.get("warning"):
        lines += [f"> **{card['warning']}**", ""]
    lines += [f"- **Source dataset:** {card['source_dataset']}",
              f"- **Method:** {card['method']}, **budget:** {card['budget']} synthetic sequences",
              f"- **Preset:** {card.get('preset') or NO_PRESET}",
              f"- **Size:** {_size(card)}",
              *([f"- **Kept:** {card['kept']}"] if card.get("kept") else []),
              *([f"- **Against full data:** {_headline(card)}"] if card["metrics"]["test"] else []),
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
        lines += _full_data_section(card)
    else:
        lines += ["Not evaluated (the run did not finish).", ""]
    if card.get("copying"):
        lines += ["## How close to real users", "", card["copying"], ""]
    costs = {k: v for k, v in card["costs"].items() if v is not None}
    if costs:
        lines += ["## Costs", "", *[f"- {k}: {v:.1f}" for k, v in costs.items()], ""]
    lines += ["## Files", "", *[f"- `{name}`: {what}" for name, what in card["files"].items()], ""]
    if card.get("format"):
        lines += [f"Format: {card['format']}.", ""]
    lines += ["## Configuration", "", "```json"]
    lines += [json.dumps(card["config"], indent=2, sort_keys=True, default=str), "```", ""]
    return "\n".join(lines)


def _size(card: dict) -> str:
    positions, share = card.get("positions"), card.get("position_share")
    if positions is None or share is None:
        return "– (not recorded by this run)"
    return f"{positions} positions, {share:.1%} of the training data's next-item targets"


def _full_data_section(card: dict) -> list[str]:
    full = card.get("full_data")
    lines = ["## Against the full training data", ""]
    if not full:
        return lines + ["No matching full-data run in the run store yet, so no ratio to full data (the card is "
                        "rewritten when one finishes).", ""]
    test = card["metrics"]["test"]
    lines += [f"Students of the same kind trained on all the training data instead, same protocol "
              f"(`{card['metrics']['architecture']}`):", "",
              "| metric | synthetic data | full data | ratio to full |", "| --- | --- | --- | --- |"]
    for metric in RATIO_METRICS:
        if metric in full["ratio"]:
            reference = full["test"][metric]
            # One full-data student has no spread: say so rather than print a std of zero.
            spread = " (1 student)" if full.get("students") == 1 else f" ± {reference['std']:.4f}"
            lines.append(f"| {metric} | {test[metric]['mean']:.4f} | {reference['mean']:.4f}{spread} | "
                         f"{full['ratio'][metric]:.2f} |")
    speedup = full.get("student_train_speedup")
    if speedup is not None:
        ours = card["costs"].get("student_train_seconds") or card["costs"].get("student_seconds")
        lines += ["", f"Training a student on the synthetic data takes {ours:.1f} s against "
                      f"{full['student_train_seconds']:.1f} s on full data: a speed-up of {speedup:.1f}x."]
    return lines + [""]


def _headline(card: dict) -> str:
    """The card's one-line verdict: the ratios to full data and the training speed-up."""
    full = card.get("full_data")
    if not full or not full.get("ratio"):
        return "– (no matching full-data run yet)"
    text = ", ".join(f"{ratio:.2f} of full-data {metric.replace('ndcg', 'NDCG').replace('recall', 'Recall')}"
                     for metric, ratio in full["ratio"].items())
    speedup = full.get("student_train_speedup")
    return text + ("" if speedup is None else f"; student training {speedup:.1f}x faster than on full data")


def write_card(run: Run, store: RunStore | None = None, runs: list[Run] | None = None) -> tuple[Path, Path]:
    """Write (or rewrite) card.md and card.json into the run folder, atomically (`runs`: see card_data)."""
    card = card_data(run, store, runs)
    md = atomic_write(run.path / "card.md", lambda tmp: Path(tmp).write_text(card_markdown(card), encoding="utf-8"))
    return md, atomic_write_json(run.path / "card.json", card)


def refresh_cards(store: RunStore, reference: Run) -> list[Run]:
    """Rewrite the cards of the store's runs measured like the full-data run `reference` (which may have
    finished after them), so they state their ratios to full data; returns the runs rewritten."""
    setup, rewritten, runs = reference.config, [], store.list()
    for run in runs:  # one listing of the store for every card, not one per card
        if run.id != reference.id and (run.path / "card.json").is_file() and same_setup(run.config, setup):
            write_card(run, store, runs)
            rewritten.append(run)
    return rewritten
