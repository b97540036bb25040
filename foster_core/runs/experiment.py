"""End-to-end recipes shared by the CLI and the app: encode item texts, train on the full training
split, evaluate the model and the popularity reference with the one protocol, and report it all."""

from __future__ import annotations

import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch

from ..core import distributed
from ..core.config import to_dict
from ..core.data import Dataset, leave_one_out
from ..core.evaluation import evaluate_model, evaluate_split, popularity_scorer
from ..core.model import ModelConfig
from ..core.runtime import resolve_device
from ..core.text_encoder import EncoderConfig, ProgressCallback, TextEncoder
from ..core.training import EpochCallback, TrainConfig, train_on_sequences
from ..core.train_state import clear_train_state
from ..methods.expert import DistillContext
from ..methods.events import Event
from ..methods.registry import get_method
from .card import refresh_cards
from .evaluator import StudentConfig, architecture_rows, evaluate_full, ratio_to
from .run_store import FULL, Run, RunStore
from .runner import run_config, run_method


def encode_items(
    dataset: Dataset,
    encoder_cfg: EncoderConfig | None = None,
    device: str = "auto",
    cache_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> torch.Tensor:
    with distributed.main_first():  # under torchrun, the first process fills the cache the others read
        encoder = TextEncoder(encoder_cfg, device=device, cache_dir=cache_dir)
        return torch.from_numpy(encoder.encode(dataset.item_texts, progress))


def machine_description(device: torch.device) -> str:
    processes = f" x {distributed.world_size()} processes" if distributed.active() else ""
    if device.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(device)}{processes}"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads{processes}"


def train_full_data(
    dataset: Dataset,
    model_cfg: ModelConfig | None = None,
    train_cfg: TrainConfig | None = None,
    encoder_cfg: EncoderConfig | None = None,
    cache_dir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    encode_progress: ProgressCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> dict:
    """Train a text-SASRec on the full training split; return a JSON-ready report with both reference rows.
    Under torchrun every process trains (see core/distributed.py) and only the first evaluates and reports:
    the others return {}."""
    model_cfg, train_cfg = model_cfg or ModelConfig(), train_cfg or TrainConfig()
    encoder_cfg = encoder_cfg or EncoderConfig()
    device = resolve_device(train_cfg.device)
    split = leave_one_out(dataset)

    started = time.perf_counter()
    text_embeddings = encode_items(dataset, encoder_cfg, train_cfg.device, cache_dir, encode_progress)
    encode_seconds = time.perf_counter() - started

    result = train_on_sequences(
        text_embeddings, split.train, split, model_cfg, train_cfg, checkpoint_dir=checkpoint_dir, callback=on_epoch
    )
    if not distributed.is_main():
        return {}
    if checkpoint_dir is not None:  # the result is in hand: a rerun trains again, it does not resume
        clear_train_state(checkpoint_dir)
    popularity = popularity_scorer(split.train, dataset.num_items)
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": dataset.stats(),
        "config": {
            "model": to_dict(model_cfg),
            "train": to_dict(train_cfg),
            "encoder": to_dict(encoder_cfg),
        },
        "device": str(device),
        "machine": machine_description(device),
        "processes": distributed.world_size(),  # torchrun's processes that trained it together
        "torch": torch.__version__,
        "seconds": {"encode": round(encode_seconds, 2), "train": round(result.seconds, 2)},
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "evaluation": "full ranking over all items, the user's history masked, leave-one-out",
        "model": {"valid": result.best_valid, "test": evaluate_model(result.model, split, "test")},
        "popularity": {
            "valid": evaluate_split(popularity, split, dataset.num_items, "valid", model_cfg.max_len),
            "test": evaluate_split(popularity, split, dataset.num_items, "test", model_cfg.max_len),
        },
        "history": result.history,
        "checkpoints": [str(p) for p in result.checkpoints],
    }


def build_context(dataset: Dataset, model_cfg: ModelConfig | None = None, expert_cfg: TrainConfig | None = None,
                  encoder_cfg: EncoderConfig | None = None, cache_dir: str | Path | None = None,
                  encode_progress: ProgressCallback | None = None) -> DistillContext:
    """Everything a distiller needs: split, text embeddings, and (lazily, cached) the expert."""
    expert_cfg = expert_cfg or TrainConfig()
    text_embeddings = encode_items(dataset, encoder_cfg, expert_cfg.device, cache_dir, encode_progress)
    return DistillContext(dataset, text_embeddings, model_cfg or ModelConfig(), expert_cfg,
                          Path(cache_dir) if cache_dir else None)


def record_full_run(context: DistillContext, student: StudentConfig, store: RunStore,
                    extra_config: dict | None = None, progress: Callable[[str], None] | None = None) -> Run:
    """The full-data reference as a run of method `full` in the store (the app's Compare page reads it)."""
    config = run_config(context, FULL, None, None, student)
    del config["distill"]
    run = store.create(FULL, {**config, **(extra_config or {})})
    run.set_status("running", "training on the full training split", phase="evaluate")
    results = evaluate_full(context, student, progress)
    results = {**results, "method": FULL, "budget": None, "distill_seconds": 0.0, "peak_mb": 0.0,
               "expert_seconds": context.expert_seconds}
    run.write_results(results)
    run.set_status("finished", "done")
    refresh_cards(store, run)  # the runs that finished before their reference now state their ratios
    return run


def run_bench(context: DistillContext, methods: list[str], budgets: list[int], configs: dict | None = None,
              student: StudentConfig | None = None, store: RunStore | None = None,
              progress: Callable[[str], None] | None = None, details: Callable[[str], None] | None = None,
              on_event: Callable[[Event], None] | None = None,
              stop_after: Callable[[dict], str | None] | None = None) -> dict:
    """Every method at every budget, evaluated by the same students, next to the full-data row.
    `configs` maps a method to its config (default: the method's defaults). `progress` gets the label of
    each run as it starts, `details` a line per student and per full-data epoch, `on_event` every method's
    events (steps, selection). `stop_after` (the budget ladder, runs/ladder.py) sees each method's row and
    returns why that method tries no larger budget, or None to go on."""
    student = student or StudentConfig()
    configs = {m: configs.get(m) if configs else None for m in methods if m != FULL}
    configs = {m: c or get_method(m).config() for m, c in configs.items()}
    say = progress or (lambda label: None)
    say("full training split")
    full = (record_full_run(context, student, store, progress=details).results if store
            else evaluate_full(context, student, details))
    rows = [_bench_row(FULL, None, full, full, context.expert_seconds, 0.0, None)]
    by_architecture = architecture_rows(FULL, None, full, full)
    for method, config in configs.items():
        for budget in budgets:
            say(f"{method} n={budget}")
            outcome = run_method(context, method, budget, config, student, store, on_event=on_event,
                                 progress=details)
            rows.append(_bench_row(method, budget, outcome.results, full, outcome.distill_seconds, outcome.peak_mb,
                                   outcome.run.id if outcome.run else None))
            by_architecture += architecture_rows(method, budget, outcome.results, full)
            reason = stop_after(rows[-1]) if stop_after else None
            if reason:
                say(f"{method}: no larger budget, {reason}")
                break
    # With several student architectures: every one's numbers, each against its own full-data training.
    transfer = {"by_architecture": by_architecture} if len(student.architectures) > 1 else {}
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": context.dataset.name, "stats": context.dataset.stats(), "seeds": len(student.seeds),
        "machine": machine_description(resolve_device(student.device)), "torch": torch.__version__,
        "config": {"methods": {m: to_dict(c) for m, c in configs.items()}, "student": to_dict(student),
                   "model": to_dict(context.model_cfg), "expert": to_dict(context.expert_cfg)},
        "expert_seconds": context.expert_seconds, "labeller_seconds": context.labeller_seconds,
        "rows": rows, **transfer,
    }


def _bench_row(method: str, budget: int | None, results: dict, full: dict, distill_seconds: float, peak_mb: float,
               run_id: str | None) -> dict:
    test = results["test"]
    return {
        "method": method, "budget": budget, **{k: test[k] for k in test},
        **{f"ratio_{k}": ratio_to(test[k]["mean"], full["test"][k]["mean"]) for k in ("ndcg@10", "recall@10")},
        "coverage": results["coverage"], "popular_share": results["popular_share"],
        "distill_seconds": distill_seconds, "peak_mb": peak_mb, "student_seconds": results["student_seconds"],
        **{k: results.get(k) for k in ("student_train_seconds", "student_eval_seconds", "positions", "position_share")},
        **({"kept": results["kept"]} if results.get("kept") else {}),  # another method's data the run kept
        "run_id": run_id,
    }
