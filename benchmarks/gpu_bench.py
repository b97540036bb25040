"""One-shot GPU benchmark of foster_core, with a CPU smoke run (--smoke) of the same code paths.

Run it once on a CUDA machine (via benchmarks/gpu_check.sh), or with --smoke on any CPU in a few minutes
(generated data and a tiny random encoder).

Sections, each with its own caps and, on a real run, all under one deadline (a section that would not fit
is skipped and says so; a section that fails records its error and the others still run). A smoke run has
no deadline and no time caps, so it runs every section whatever the machine's load:

- parity: the same tiny training run on the CPU and on the GPU; metrics within a stated tolerance;
- data: load amazon_games, encode item texts (frozen MiniLM), build the distillation context;
- full: full-data training time and test NDCG@10 (epochs and seconds capped);
- expert + foster: FOSTER at n = 20 and 50 through runs.runner.run_method: distill time, peak memory, test
  NDCG@10, ratio to full, student training time vs full-data training time;
- steps: one first-order FOSTER step vs one unrolled bi-level (bptt) step, same n, same model: seconds per
  step and peak memory (benchmarks/step_cost.time_steps);
- catalogue: a FOSTER step with a generated catalogue of 1M and 10M items at a fixed subset size;
- finetune: frozen vs fine-tuned encoder: seconds per step (fp32, and bf16 on CUDA) and test NDCG@10 of
  a short run of each (foster_core.core.finetune).

Writes gpu_bench.json and gpu_bench.md into --out after every section (a run cut short keeps what it
measured) and prints the markdown table last. Run from the repository root:

    python -m benchmarks.gpu_bench --data DATA/amazon_games --encoder DATA/all-MiniLM-L6-v2 --out OUT
    python -m benchmarks.gpu_bench --smoke --out /tmp/gpu_smoke
    python -m benchmarks.gpu_bench --prepare .gpu      # copy data + an fp16 MiniLM into a folder to carry
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import tempfile
import time
import traceback
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from benchmarks.step_cost import time_steps
from foster_core.core.data import Dataset, leave_one_out
from foster_core.core.evaluation import evaluate_model
from foster_core.core.finetune import FinetuneConfig, time_finetune_steps, train_finetuned
from foster_core.core.loaders import load_dataset
from foster_core.core.model import ModelConfig, TextSASRec
from foster_core.core.runtime import PeakMemory, resolve_device, synchronize
from foster_core.core.synthetic import SyntheticData
from foster_core.core.text_encoder import EncoderConfig, bundled_model_path
from foster_core.core.training import TrainConfig, item_subset, train_on_sequences
from foster_core.methods.foster import FosterConfig, cooccurrence_loss
from foster_core.methods.registry import get_method
from foster_core.methods.sparse import SparseSynthetic, real_loss, start_logits, synthetic_loss
from foster_core.runs.evaluator import StudentConfig
from foster_core.runs.experiment import build_context
from foster_core.runs.runner import run_method
from foster_core.testing import SMALL_MODEL, build_tiny_encoder, cyclic_dataset, random_text_embeddings, zipf_dataset

REPO = Path(__file__).resolve().parents[1]

# Caps for one H100 (the whole script must end within 8 minutes, pytest included) and for the CPU smoke run.
# budget_s is the whole run's deadline and *_time_s cap a training run; 0 = none. The smoke run has neither,
# so what it runs never depends on the machine's speed or load: its epoch and step caps keep it short.
GPU_PROFILE = dict(
    budget_s=400, full_epochs=40, full_time_s=60, expert_epochs=30, expert_time_s=45, foster_steps=200,
    select_epochs=50, budgets=[20, 50], student_seeds=1, student_epochs=150, student_patience=60,
    student_eval_every=10, step_steps=20, unroll=[5, 20], catalogue_sizes=[1_000_000, 10_000_000],
    catalogue_steps=10, catalogue_n=20, subset_size=512, ft_steps=20, ft_epochs=3, ft_steps_per_epoch=60, ft_time_s=40,
    ft_max_length=32, ft_layers="all", parity_epochs=5, smoke_users=0, smoke_items=0,
)
SMOKE_PROFILE = dict(
    budget_s=0, full_epochs=3, full_time_s=0, expert_epochs=3, expert_time_s=0, foster_steps=6,
    select_epochs=5, budgets=[5, 10], student_seeds=1, student_epochs=10, student_patience=10,
    student_eval_every=5, step_steps=4, unroll=[2], catalogue_sizes=[2_000, 8_000], catalogue_steps=2, catalogue_n=2,
    subset_size=64, ft_steps=3, ft_epochs=2, ft_steps_per_epoch=3, ft_time_s=0, ft_max_length=16,
    ft_layers="all", parity_epochs=3, smoke_users=150, smoke_items=300,
)
# Rough seconds a section needs on an H100 at the caps above; under a deadline, a section starts only if this
# much is left. A smoke run given a deadline (--budget-s) scales them down by it.
SECTION_SECONDS = dict(parity=10, data=30, full=75, expert=55, foster=45, steps=25, catalogue=30, finetune=80)
# CPU/GPU parity tolerances (tiny data: one user of 40 moves NDCG@10 by up to 0.025).
PARITY_LOSS_RTOL = 1e-3  # per-epoch training loss, same initialisation and batches, dropout off
PARITY_METRIC_ATOL = 0.05  # validation/test NDCG@10 and Recall@10 after that training
PARITY_EVAL_ATOL = 1e-4  # metrics of the very same weights evaluated on each device


# ----------------------------------------------------------------------------- report plumbing


class Report:
    """Sections in order, written to JSON and markdown after each one; `budget_s` > 0 sets a deadline for
    starting sections (0 = none: every section runs)."""

    def __init__(self, out: Path, budget_s: float, meta: dict):
        self.out = out
        self.deadline = time.perf_counter() + budget_s if budget_s > 0 else None
        self.budget_s = budget_s
        self.data: dict = {"meta": meta, "sections": {}}
        out.mkdir(parents=True, exist_ok=True)

    def remaining(self) -> float:
        return math.inf if self.deadline is None else self.deadline - time.perf_counter()

    def run(self, name: str, needs_s: float, fn: Callable[[], dict]) -> dict | None:
        if self.remaining() < needs_s:
            entry = {"status": "skipped", "reason": f"time budget: {self.remaining():.0f} s left, needs ~{needs_s:.0f} s"}
            self.data["sections"][name] = entry
            self.write()
            print(f"[{name}] skipped: {entry['reason']}", flush=True)
            return None
        left = "no deadline" if self.deadline is None else f"{self.remaining():.0f} s left"
        print(f"[{name}] start ({left})", flush=True)
        started = time.perf_counter()
        try:
            result = fn()
            entry = {"status": "ok", **result}
        except Exception as exc:  # one broken section must not cost the others their measurements
            entry = {"status": "failed", "error": f"{exc.__class__.__name__}: {exc}",
                     "traceback": traceback.format_exc(limit=8)}
            result = None
            print(entry["traceback"], flush=True)
        entry["wall_s"] = round(time.perf_counter() - started, 2)
        self.data["sections"][name] = entry
        self.write()
        print(f"[{name}] {entry['status']} in {entry['wall_s']} s", flush=True)
        return result

    def write(self) -> None:
        self.data["meta"]["written"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        (self.out / "gpu_bench.json").write_text(json.dumps(self.data, indent=2, default=_jsonable))
        (self.out / "gpu_bench.md").write_text(markdown(self.data))


def _jsonable(value: object) -> object:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (Path, torch.device)):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(data: dict) -> str:
    """The short table: one row per measurement, '–' where a column does not apply."""
    meta, sections = data["meta"], data["sections"]
    lines = [f"# GPU benchmark, {meta['date']}, {meta['machine']}, torch {meta['torch']}, dataset {meta['dataset']}", "",
             "| measurement | time | peak MB | NDCG@10 (test) | vs full |", "| --- | --- | --- | --- | --- |"]

    def row(what: str, time_text: str = "–", peak: float | None = None, ndcg: float | None = None,
            ratio: str = "–") -> None:
        lines.append(f"| {what} | {time_text} | {_fmt(peak, 0)} | {_fmt(ndcg)} | {ratio} |")

    full = sections.get("full", {})
    full_ndcg = full.get("test", {}).get("ndcg@10") if full.get("status") == "ok" else None
    for name, entry in sections.items():
        if entry.get("status") != "ok":
            row(f"{name}: {entry.get('status')} ({entry.get('reason') or entry.get('error', '')[:80]})")
            continue
        if name == "parity":
            verdict = ("pass" if entry["passed"] else "FAIL") if "gpu_test" in entry else "CPU only, not compared"
            row(f"CPU/GPU parity ({entry['devices']}): max abs ΔNDCG@10 train {_fmt(entry['max_metric_diff'], 5)}, "
                f"same weights {_fmt(entry['max_eval_diff'], 6)}, loss rel {entry['max_loss_rel_diff']:.1e} "
                f"(tolerances {PARITY_METRIC_ATOL}, {PARITY_EVAL_ATOL}, {PARITY_LOSS_RTOL}): {verdict}")
        elif name == "data":
            row(f"load + encode {entry['items']:,} item texts ({entry['users']:,} users)",
                f"{entry['load_s']:.1f} s + {entry['encode_s']:.1f} s")
        elif name == "full":
            row(f"full-data training ({entry['epochs_run']} epochs, best {entry['best_epoch']}"
                f"{', time-capped' if entry['time_capped'] else ''})", f"{entry['train_s']:.1f} s",
                None, full_ndcg, "1.00")
        elif name == "expert":
            row(f"expert for FOSTER (training holdout, best epoch {entry['best_epoch']})", f"{entry['seconds']:.1f} s")
        elif name.startswith("foster_n"):
            ratio = f"{entry['ndcg@10'] / full_ndcg:.2f}" if full_ndcg else "–"
            row(f"FOSTER n={entry['budget']}: distill ({entry['steps']} steps)", f"{entry['distill_s']:.1f} s",
                entry["peak_mb"], entry["ndcg@10"], ratio)
            student = f"{entry['student_s']:.1f} s"
            if full.get("status") == "ok":
                student += f" ({entry['student_s'] / full['train_s']:.2f}x full-data training)"
            row(f"FOSTER n={entry['budget']}: student training on the synthetic data", student)
        elif name == "steps":
            for step in entry["rows"]:
                row(f"{step['label']} step (n=20, {step['items_per_step']:,} items)",
                    f"{step['s_per_step'] * 1e3:.1f} ms", step["peak_mb"])
            if entry.get("memory_ratio"):
                row(f"peak memory, bptt K={entry['memory_ratio']['unroll']} / FOSTER: "
                    f"{entry['memory_ratio']['ratio']:.1f}x")
        elif name == "catalogue":
            for step in entry["rows"]:
                how = (f"S's items from a pool of {step['support_pool']:,}" if step.get("support_pool")
                       else "S's items anywhere in the catalogue")
                row(f"FOSTER step, catalogue {step['items']:,} items, {how} (n={entry['n']}, N={step['subset_size']}, "
                    f"{step['items_per_step']:,.0f} items/step)", f"{step['s_per_step'] * 1e3:.1f} ms", step["peak_mb"])
        elif name == "finetune":
            for timing in entry["timings"]:
                row(f"frozen encoder step ({timing['precision']}, {timing['frozen_items_per_step']:.0f} items)",
                    f"{timing['frozen_s_per_step'] * 1e3:.1f} ms", timing.get("frozen_peak_mb"))
                row(f"fine-tuned encoder step ({timing['precision']}, layers {timing['finetune_layers']})",
                    f"{timing['finetuned_s_per_step'] * 1e3:.1f} ms ({timing['slowdown']:.1f}x)",
                    timing.get("finetuned_peak_mb"))
            for run in entry["runs"]:
                row(f"short run, {run['mode']} encoder ({run['epochs']} epochs x ≤{run['steps_per_epoch']} steps)",
                    f"{run['train_s']:.1f} s", None, run["ndcg@10"],
                    f"{run['ndcg@10'] / full_ndcg:.2f}" if full_ndcg else "–")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- generated data


def smoke_text(item: int) -> str:
    """Words shared across items (kind, shade), so text neighbours mean something to the tiny encoder."""
    return f"thing{item} kind{item % 7} shade{item % 5}"


def smoke_dataset(users: int, items: int, seed: int = 0) -> Dataset:
    """Zipf-like popularity over `items` items, 12 interactions per user."""
    return zipf_dataset(items, users=users, length=12, seed=seed, text=smoke_text)


# ----------------------------------------------------------------------------- sections


def parity_section(args: argparse.Namespace) -> dict:
    """The same tiny run on the CPU and on CUDA: identical initialisation and batches, dropout off."""
    dataset = cyclic_dataset()
    split = leave_one_out(dataset)
    text = random_text_embeddings(dataset.num_items)
    model_cfg = SMALL_MODEL
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    runs = {}
    for device in devices:
        cfg = TrainConfig(epochs=args.parity_epochs, lr=1e-2, batch_size=8, patience=100, device=device)
        result = train_on_sequences(text, split.train, split, model_cfg, cfg)
        runs[device] = {"losses": [r["loss"] for r in result.history], "valid": result.best_valid,
                        "test": evaluate_model(result.model, split, "test"), "model": result.model}
    out: dict = {"devices": " vs ".join(devices), "tolerance": {"loss_rtol": PARITY_LOSS_RTOL,
                 "metric_atol": PARITY_METRIC_ATOL, "eval_atol": PARITY_EVAL_ATOL},
                 "cpu_test": runs["cpu"]["test"], "max_metric_diff": 0.0, "max_eval_diff": 0.0, "max_loss_rel_diff": 0.0}
    if "cuda" in runs:
        cpu, gpu = runs["cpu"], runs["cuda"]
        out["gpu_test"] = gpu["test"]
        out["max_loss_rel_diff"] = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(cpu["losses"], gpu["losses"]))
        out["max_metric_diff"] = max(abs(cpu[w][k] - gpu[w][k]) for w in ("valid", "test") for k in ("ndcg@10", "recall@10"))
        # The CPU-trained weights, evaluated on the GPU: only the evaluation code path differs.
        moved = cpu["model"].to("cuda")
        same_weights = evaluate_model(moved, split, "test")
        out["max_eval_diff"] = max(abs(same_weights[k] - cpu["test"][k]) for k in same_weights)
        out["note"] = "GPU leg ran"
    else:
        out["note"] = "no CUDA device: only the CPU leg ran; nothing was compared"
    out["passed"] = (out["max_loss_rel_diff"] <= PARITY_LOSS_RTOL and out["max_metric_diff"] <= PARITY_METRIC_ATOL
                     and out["max_eval_diff"] <= PARITY_EVAL_ATOL)
    return out


def data_section(args: argparse.Namespace, state: dict) -> dict:
    started = time.perf_counter()
    if args.smoke:
        dataset = smoke_dataset(args.smoke_users, args.smoke_items)
    else:
        dataset = load_dataset(args.data)
    load_s = time.perf_counter() - started
    encoder_path = args.encoder
    if encoder_path is None and args.smoke:
        encoder_path = str(build_tiny_encoder(Path(state["tmp"]) / "tiny_encoder", dataset.item_texts))
    state["encoder_path"] = encoder_path
    expert_cfg = TrainConfig(epochs=args.expert_epochs, time_limit_s=args.expert_time_s, device=args.device)
    started = time.perf_counter()
    context = build_context(dataset, ModelConfig(), expert_cfg, EncoderConfig(model_path=encoder_path),
                            cache_dir=state["tmp"])
    encode_s = time.perf_counter() - started
    state["context"] = context
    return {"dataset": dataset.name, "users": dataset.num_users, "items": dataset.num_items,
            "interactions": dataset.num_interactions, "load_s": load_s, "encode_s": encode_s,
            "encoder": encoder_path or "bundled all-MiniLM-L6-v2"}


def full_section(args: argparse.Namespace, state: dict) -> dict:
    context = state["context"]
    cfg = TrainConfig(epochs=args.full_epochs, time_limit_s=args.full_time_s, device=args.device)
    result = train_on_sequences(context.text_embeddings, context.train, context.split, context.model_cfg, cfg)
    test = evaluate_model(result.model, context.split, "test")
    return {"train_s": result.seconds, "epochs_run": len(result.history), "best_epoch": result.best_epoch,
            "time_capped": result.history[-1].get("stopped") == "time_limit_s", "valid": result.best_valid,
            "test": test, "s_per_epoch": result.seconds / len(result.history), "config": asdict(cfg)}


def expert_section(args: argparse.Namespace, state: dict) -> dict:
    context = state["context"]
    context.expert()
    # The trajectory ends at the expert's best epoch (methods/expert.py), so its length gives that epoch.
    return {"seconds": context.expert_seconds, "best_epoch": len(context.trajectory()) - 1}


def foster_section(args: argparse.Namespace, state: dict, budget: int) -> dict:
    config = FosterConfig(steps=args.foster_steps, device=args.device, select_every=args.foster_steps,
                           select_epochs=args.select_epochs, checkpoint_every=0, log_every=max(1, args.foster_steps // 4))
    student = StudentConfig(seeds=tuple(range(args.student_seeds)), epochs=args.student_epochs,
                            patience=args.student_patience, eval_every=args.student_eval_every, device=args.device)
    outcome = run_method(state["context"], "foster", budget, config, student)
    test = outcome.results["test"]
    return {"budget": budget, "steps": args.foster_steps, "distill_s": outcome.distill_seconds,
            "peak_mb": outcome.peak_mb, "ndcg@10": test["ndcg@10"]["mean"], "ndcg@10_std": test["ndcg@10"]["std"],
            "recall@10": test["recall@10"]["mean"], "student_s": outcome.results["student_seconds"],
            "students": len(student.seeds), "config": asdict(config), "student": asdict(student)}


def steps_section(args: argparse.Namespace, state: dict) -> dict:
    """First-order FOSTER vs unrolled bptt on the same context, n = 20."""
    context = state["context"]
    # Fields a method does not have (reset_every and select_every for bptt) are dropped by .config().
    base = dict(steps=args.step_steps, log_every=1, checkpoint_every=0, device=args.device, reset_every=5,
                select_every=0, subset_size=args.subset_size)
    foster, bptt = get_method("foster"), get_method("bptt")
    runs = [(f"FOSTER first-order, N={args.subset_size}", "foster", foster.config(base))]
    runs += [(f"bptt unrolled K={k}, N={args.subset_size}", "bptt", bptt.config(base, unroll_steps=k))
             for k in args.unroll]
    time_steps(context, *runs[0][1:], args.device)  # warm-up: allocator growth is not a step's cost
    rows = []
    for label, method, config in runs:
        per_step, peak, scored = time_steps(context, method, config, args.device)
        rows.append({"label": label, "method": method, "unroll": config.unroll_steps if method == "bptt" else None,
                     "s_per_step": per_step, "peak_mb": peak, "items_per_step": scored or context.num_items})
    out: dict = {"rows": rows, "budget": 20}
    if len(rows) > 1 and rows[0]["peak_mb"] > 0:
        out["memory_ratio"] = {"unroll": rows[-1]["unroll"], "ratio": rows[-1]["peak_mb"] / rows[0]["peak_mb"]}
    return out


def foster_step_cost(num_items: int, subset_size: int, steps: int, device: str, n: int = 20, length: int = 50,
                     text_dim: int = 384, batch_size: int = 128, warmup: int = 2, seed: int = 0,
                     support_pool: int | None = None) -> dict:
    """Seconds per FOSTER step with a generated catalogue of `num_items` items at a fixed subset size.

    Built from FOSTER's own step pieces (SparseSynthetic, start_logits, item_subset, synthetic_loss,
    real_loss, cooccurrence_loss) in methods.foster.distill_foster's order (one inner step), without an
    expert: on a 10M-item catalogue, training an expert and initialising S from it (O(n L M) on the CPU)
    would cost minutes, and neither is part of a step.
    S, the real batch and the text table are random; quality is not measured here.

    S's supports are drawn from the whole catalogue by default, so |V_s| grows with M until it reaches
    n x L x (K_in + K_lab) (23,520 items at n = 20): at 10k items they cover the catalogue. A real S's
    supports are real items and their text neighbours, a few thousand whatever M is (3,000-4,300 on
    MovieLens and Amazon); `support_pool=P` draws them from P items so that |V_s| is the same at every M
    and only the catalogue size changes.
    """
    dev = resolve_device(device)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    config = FosterConfig(subset_size=subset_size, device=device)
    started = time.perf_counter()
    text = F.normalize(torch.randn(num_items, text_dim, device=dev), dim=-1)  # generated where it lives
    model_cfg = ModelConfig(max_len=length)
    theta, theta_hat = TextSASRec(text, model_cfg).to(dev).train(), TextSASRec(text, model_cfg).to(dev).train()
    L, k_in, k_lab = length - 1, config.input_support, config.label_support
    pool = min(support_pool or num_items, num_items)
    init = SyntheticData(torch.randint(pool, (n, L, k_in), generator=generator), torch.full((n, L, k_in), 1 / k_in),
                         torch.randint(pool, (n, L, k_lab), generator=generator),
                         torch.full((n, L, k_lab), 1 / k_lab), torch.ones(n, L, dtype=torch.bool))
    syn = SparseSynthetic(init, *start_logits(init, config.init_scale)).to(dev)
    syn_params = list(syn.parameters())
    opt_theta = torch.optim.Adam(theta.parameters(), lr=config.outer_lr)
    opt_hat = torch.optim.Adam(theta_hat.parameters(), lr=config.inner_lr)
    opt_syn = torch.optim.Adam(syn_params, lr=config.synthetic_lr)
    seqs = torch.randint(num_items, (batch_size, length), generator=generator).to(dev)
    targets = torch.randint(num_items, (batch_size, length), generator=generator).to(dev)
    synchronize(dev)
    setup_s = time.perf_counter() - started
    lam = config.lambda_start

    def step() -> int:
        subset = item_subset(num_items, config.subset_size, generator, targets, syn.input_items,
                             syn.label_items).to(dev)
        hat_params, theta_params = list(theta_hat.parameters()), list(theta.parameters())
        loss_hat = synthetic_loss(theta_hat, syn, subset, theta_hat.item_embeddings(subset))
        g_hat = torch.autograd.grad(loss_hat, hat_params + syn_params)
        table = theta.item_embeddings(subset)
        loss = real_loss(theta, seqs, targets, subset, table) + lam * synthetic_loss(theta, syn, subset, table)
        g = torch.autograd.grad(loss, theta_params + syn_params)
        loss_reg = cooccurrence_loss(syn, text, config, generator)
        g_reg = torch.autograd.grad(config.reg_weight * loss_reg, syn_params, allow_unused=True)
        for params, grads, opt in ((hat_params, g_hat[: len(hat_params)], opt_hat),
                                   (theta_params, g[: len(theta_params)], opt_theta)):
            for p, grad in zip(params, grads):
                p.grad = grad
            opt.step()
        for p, gs, gh, gr in zip(syn_params, g[len(theta_params):], g_hat[len(hat_params):], g_reg):
            p.grad = gs - lam * gh + (gr if gr is not None else 0.0)
        opt_syn.step()
        return len(subset)

    for _ in range(warmup):
        step()
    synchronize(dev)
    with PeakMemory(dev) as memory:
        started = time.perf_counter()
        sizes = [step() for _ in range(steps)]
        synchronize(dev)
        per_step = (time.perf_counter() - started) / steps
    table_mb = text.numel() * text.element_size() / 2**20
    return {"items": num_items, "subset_size": subset_size, "support_pool": support_pool,
            "items_per_step": float(np.mean(sizes)),
            "s_per_step": per_step, "peak_mb": memory.peak_mb, "text_table_mb": table_mb, "setup_s": setup_s}


SUPPORT_POOL = 5_000  # distinct items a real S's supports span: 3,000-4,300 on MovieLens and Amazon


def catalogue_section(args: argparse.Namespace) -> dict:
    rows = []
    for size in args.catalogue_sizes:
        for pool in (None, SUPPORT_POOL):
            rows.append(foster_step_cost(size, args.subset_size, args.catalogue_steps, args.device, n=args.catalogue_n,
                                         support_pool=pool))
            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # the last size's 15 GB text table goes back before the next one
    return {"rows": rows, "n": args.catalogue_n,
            "note": "items/step = N uniform + the real batch's targets + S's supports (n x L x (K_in + K_lab)); "
                    "peak MB = memory a step adds on top of the text table (text_table_mb)"}


def finetune_section(args: argparse.Namespace, state: dict) -> dict:
    context = state["context"]
    texts, split = context.dataset.item_texts, context.split
    layers = None if args.ft_layers == "all" else int(args.ft_layers)
    ft = FinetuneConfig(finetune_layers=layers, subset_size=args.subset_size, encoder_path=state.get("encoder_path"),
                        max_length=args.ft_max_length, steps_per_epoch=args.ft_steps_per_epoch)
    precisions = ["fp32"] + (["bf16"] if resolve_device(args.device).type == "cuda" else [])
    timings = [time_finetune_steps(texts, split, context.model_cfg, TrainConfig(device=args.device, precision=p), ft,
                                   steps=args.ft_steps) for p in precisions]
    runs = []
    for mode, mode_layers in (("frozen", 0), ("fine-tuned", layers)):
        cfg = TrainConfig(epochs=args.ft_epochs, patience=args.ft_epochs, time_limit_s=args.ft_time_s, device=args.device)
        mode_ft = FinetuneConfig(**{**asdict(ft), "finetune_layers": mode_layers})
        result = train_finetuned(texts, split, context.model_cfg, cfg, mode_ft)
        test = evaluate_model(result.model, split, "test")
        runs.append({"mode": mode, "layers": "none" if mode_layers == 0 else args.ft_layers, "epochs": len(result.history),
                     "steps_per_epoch": args.ft_steps_per_epoch, "train_s": result.seconds,
                     "s_per_step": result.seconds_per_step, "items_per_step": result.mean_subset,
                     "best_epoch": result.best_epoch, "valid": result.best_valid, "ndcg@10": test["ndcg@10"], "test": test})
        del result
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return {"timings": timings, "runs": runs, "config": asdict(ft)}


# ----------------------------------------------------------------------------- preparing the carried folder


def prepare(folder: Path, data: Path) -> None:
    """Copy amazon_games and a half-precision MiniLM (the device tool carries at most 64 MiB; the fp32 model is
    87 MiB) into `folder`, which the GPU run gets as DATA_DIR."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "amazon_games"
    target.mkdir(exist_ok=True)
    for name in ("interactions.csv", "items.csv", "README.txt"):
        if (data / name).is_file():
            shutil.copyfile(data / name, target / name)
    source = bundled_model_path()
    model = folder / "all-MiniLM-L6-v2"
    model.mkdir(exist_ok=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copyfile(source / name, model / name)
    weights = load_file(str(source / "model.safetensors"))
    # Integer buffers (position ids) keep their type; only floating weights are halved.
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in weights.items()},
              str(model / "model.safetensors"), metadata={"format": "pt"})
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20
    print(f"prepared {folder} ({size:.1f} MiB): amazon_games/ and all-MiniLM-L6-v2/ (fp16 weights, used in fp32)")


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder for gpu_bench.json and gpu_bench.md")
    parser.add_argument("--data", type=Path, help="the amazon_games folder (interactions.csv + items.csv)")
    parser.add_argument("--encoder", help="a local Hugging Face encoder folder; default: the bundled MiniLM-L6")
    parser.add_argument("--smoke", action="store_true", help="generated data, tiny encoder, tiny epoch and step caps, no deadline or time caps: "
                        "any CPU, a few minutes on two threads")
    parser.add_argument("--prepare", type=Path, help="write the folder to carry to a GPU machine, then exit")
    parser.add_argument("--source-data", type=Path, default=REPO.parent / "shared" / "data" / "amazon_games",
                        help="where --prepare copies amazon_games from")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-table", action="store_true", help="do not print the table at the end (gpu_check.sh prints it)")
    parser.add_argument("--sections", nargs="+", default=["parity", "data", "full", "expert", "foster", "steps",
                                                          "catalogue", "finetune"])
    for key, value in GPU_PROFILE.items():  # every cap can be overridden; unset ones come from the profile
        kind = type(value[0]) if isinstance(value, list) else type(value)
        seconds = key == "budget_s" or key.endswith("_time_s")
        parser.add_argument(f"--{key.replace('_', '-')}", type=kind, nargs="+" if isinstance(value, list) else None,
                            default=None, help=(f"seconds, 0 = none (default {value}; smoke {SMOKE_PROFILE[key]})"
                                                if seconds else f"default {value}; smoke {SMOKE_PROFILE[key]}"))
    args = parser.parse_args(argv)
    profile = SMOKE_PROFILE if args.smoke else GPU_PROFILE
    for key, value in profile.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not args.prepare and args.out is None:
        parser.error("--out is required")
    if not args.prepare and not args.smoke and args.data is None:
        parser.error("--data is required (or --smoke)")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.prepare:
        prepare(args.prepare, args.source_data)
        return {}
    device = resolve_device(args.device)  # an explicit --device cuda without a GPU stops here, loudly
    machine = (f"GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda"
               else f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": machine, "device": str(device),
            "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
            "dataset": "generated (smoke)" if args.smoke else str(args.data), "smoke": args.smoke,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    report = Report(args.out, args.budget_s, meta)
    scale = args.budget_s / GPU_PROFILE["budget_s"] if args.smoke else 1.0  # only matters under a deadline
    needs = {name: seconds * scale for name, seconds in SECTION_SECONDS.items()}
    with tempfile.TemporaryDirectory(prefix="gpu_bench_") as tmp:
        state: dict = {"tmp": tmp}
        wanted = set(args.sections)
        if "parity" in wanted:
            report.run("parity", needs["parity"], lambda: parity_section(args))
        if wanted & {"data", "full", "expert", "foster", "steps", "finetune"}:
            report.run("data", needs["data"], lambda: data_section(args, state))
        has_context = "context" in state
        if "full" in wanted and has_context:
            report.run("full", needs["full"], lambda: full_section(args, state))
        if wanted & {"expert", "foster", "steps"} and has_context:
            report.run("expert", needs["expert"], lambda: expert_section(args, state))
        if "foster" in wanted and has_context:
            for budget in args.budgets:
                report.run(f"foster_n{budget}", needs["foster"], lambda b=budget: foster_section(args, state, b))
        if "steps" in wanted and has_context:
            report.run("steps", needs["steps"], lambda: steps_section(args, state))
        if "catalogue" in wanted:
            report.run("catalogue", needs["catalogue"], lambda: catalogue_section(args))
        if "finetune" in wanted and has_context:
            report.run("finetune", needs["finetune"], lambda: finetune_section(args, state))
    report.write()
    if not args.no_table:
        print()
        print(markdown(report.data), flush=True)
    return report.data


if __name__ == "__main__":
    main()
