"""CUDA checks (marked `gpu`: `pytest -m gpu tests/test_gpu.py`; skipped with the reason where no CUDA device
exists) and a CPU smoke run of the one-shot GPU benchmark driver."""

import json

import numpy as np
import pytest
import torch

from benchmarks import gpu_bench as bench
from foster_core.core.data import leave_one_out
from foster_core.core.evaluation import evaluate_model
from foster_core.core.finetune import FinetuneConfig, time_finetune_steps, train_finetuned
from foster_core.core.runtime import resolve_device
from foster_core.core.text_encoder import EncoderConfig, TextEncoder
from foster_core.core.training import TrainConfig, train_on_sequences, train_on_soft
from foster_core.methods.registry import get_method
from foster_core.runs.evaluator import StudentConfig
from foster_core.runs.runner import run_method
from foster_core.testing import SMALL_MODEL as SMALL
from foster_core.testing import build_tiny_encoder, random_text_embeddings, tiny_context

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device here (torch.cuda.is_available() is False); "
                                       "run on a GPU machine: pytest -m gpu tests/test_gpu.py")


@pytest.mark.parametrize("asked", ["auto", "cuda", "cuda:0"])
@pytest.mark.gpu
@needs_cuda
def test_cuda_is_chosen_and_named(asked):
    assert resolve_device(asked).type == "cuda"


@pytest.mark.gpu
@needs_cuda
def test_training_and_evaluation_stay_on_the_gpu(cyclic_dataset):
    split = leave_one_out(cyclic_dataset)
    result = train_on_sequences(random_text_embeddings(cyclic_dataset.num_items), split.train, split, SMALL,
                                TrainConfig(epochs=20, lr=1e-2, batch_size=8, device="cuda"))
    assert {p.device.type for p in result.model.parameters()} == {"cuda"}
    assert result.best_valid["recall@10"] > 0.5


@pytest.mark.gpu
@needs_cuda
def test_bf16_autocast_trains_hard_and_soft(cyclic_dataset):
    split = leave_one_out(cyclic_dataset)
    emb = random_text_embeddings(cyclic_dataset.num_items)
    cfg = TrainConfig(epochs=20, lr=1e-2, batch_size=8, device="cuda", precision="bf16")
    hard = train_on_sequences(emb, split.train, split, SMALL, cfg)
    losses = [r["loss"] for r in hard.history]
    assert np.isfinite(losses).all() and losses[-1] < 0.7 * losses[0]
    m = cyclic_dataset.num_items
    soft = torch.full((4, 9, m), 1.0 / m)
    result = train_on_soft(emb, soft, soft, split, SMALL, TrainConfig(epochs=3, device="cuda", precision="bf16"))
    assert np.isfinite([r["loss"] for r in result.history]).all()


@pytest.mark.gpu
@needs_cuda
def test_cpu_gpu_parity_within_the_stated_tolerance():
    parity = bench.parity_section(bench.parse_args(["--smoke", "--out", "unused"]))
    assert parity["devices"] == "cpu vs cuda"
    assert parity["max_eval_diff"] <= bench.PARITY_EVAL_ATOL, parity
    assert parity["max_loss_rel_diff"] <= bench.PARITY_LOSS_RTOL, parity
    assert parity["max_metric_diff"] <= bench.PARITY_METRIC_ATOL, parity


@pytest.mark.gpu
@needs_cuda
def test_encoder_on_the_gpu_matches_the_cpu(tmp_path, cyclic_dataset):
    folder = str(build_tiny_encoder(tmp_path / "enc", cyclic_dataset.item_texts))
    cpu = TextEncoder(EncoderConfig(model_path=folder), device="cpu", cache_dir=tmp_path / "a").encode(cyclic_dataset.item_texts)
    gpu = TextEncoder(EncoderConfig(model_path=folder), device="cuda", cache_dir=tmp_path / "b").encode(cyclic_dataset.item_texts)
    np.testing.assert_allclose(cpu, gpu, atol=1e-4)


@pytest.mark.gpu
@needs_cuda
def test_finetuning_on_the_gpu_in_fp32_and_bf16(tmp_path, cyclic_dataset):
    folder = str(build_tiny_encoder(tmp_path / "enc", cyclic_dataset.item_texts))
    split = leave_one_out(cyclic_dataset)
    ft = FinetuneConfig(subset_size=4, encoder_path=folder, lm_lr=1e-3)
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig(epochs=3, lr=1e-2, batch_size=8, device="cuda", precision=precision)
        result = train_finetuned(cyclic_dataset.item_texts, split, SMALL, cfg, ft)
        assert {p.device.type for p in result.encoder.lm.parameters()} == {"cuda"}
        assert np.isfinite([r["loss"] for r in result.history]).all()
        assert 0.0 <= evaluate_model(result.model, split, "test")["ndcg@10"] <= 1.0
    timing = time_finetune_steps(cyclic_dataset.item_texts, split, SMALL, TrainConfig(batch_size=8, device="cuda"), ft,
                                 steps=2, warmup=1)
    assert timing["finetuned_peak_mb"] > 0


@pytest.mark.gpu
@needs_cuda
def test_foster_and_bptt_run_on_the_gpu(cyclic_dataset, tmp_path):
    context = tiny_context(cyclic_dataset, tmp_path, SMALL, TrainConfig(epochs=3, device="cuda"))
    student = StudentConfig(seeds=(0,), epochs=5, eval_every=5, device="cuda")
    for method in ("foster", "bptt"):
        # Each method's config keeps the fields it has (bptt has no select_every, FOSTER no unroll_steps).
        config = get_method(method).config(steps=3, device="cuda", select_every=0, checkpoint_every=0, log_every=1,
                                           subset_size=4, unroll_steps=2)
        outcome = run_method(context, method, 4, config, student)
        assert outcome.peak_mb > 0, method
        assert 0.0 <= outcome.results["test"]["ndcg@10"]["mean"] <= 1.0


def test_benchmark_driver_smoke_run_on_the_cpu(tmp_path):
    """The driver's every section, tiny, on the CPU: the code paths the GPU run takes, minus CUDA.

    The smoke run has no deadline and no time caps, so every section runs whatever the machine's load; the
    test checks what each produced, never how long it took."""
    data = bench.main(["--smoke", "--device", "cpu", "--out", str(tmp_path), "--smoke-users", "60",
                       "--smoke-items", "80", "--budgets", "4", "--catalogue-sizes", "500", "--unroll", "2",
                       "--step-steps", "2", "--foster-steps", "2", "--catalogue-steps", "1", "--no-table"])
    assert data["meta"]["args"]["budget_s"] == 0 and data["meta"]["args"]["full_time_s"] == 0
    sections = data["sections"]
    assert {name: entry["status"] for name, entry in sections.items()} == {
        name: "ok" for name in ("parity", "data", "full", "expert", "foster_n4", "steps", "catalogue", "finetune")}
    parity = sections["parity"]
    if torch.cuda.is_available():
        assert parity["devices"] == "cpu vs cuda"
    else:
        assert parity["devices"] == "cpu" and parity["note"].startswith("no CUDA device")
    assert sections["data"]["users"] == 60 and sections["data"]["items"] > 20
    full = sections["full"]
    assert full["epochs_run"] == 3 and not full["time_capped"] and 0.0 <= full["test"]["ndcg@10"] <= 1.0
    foster = sections["foster_n4"]
    assert foster["budget"] == 4 and foster["steps"] == 2 and 0.0 <= foster["ndcg@10"] <= 1.0
    assert [(row["method"], row["unroll"]) for row in sections["steps"]["rows"]] == [("foster", None), ("bptt", 2)]
    assert all(row["s_per_step"] > 0 and row["items_per_step"] > 0 for row in sections["steps"]["rows"])
    # One catalogue size, S's supports drawn from the whole catalogue and from a fixed pool.
    assert [(row["items"], row["support_pool"]) for row in sections["catalogue"]["rows"]] == [
        (500, None), (500, bench.SUPPORT_POOL)]
    finetune = sections["finetune"]
    assert [t["precision"] for t in finetune["timings"]] == ["fp32"]  # bf16 is timed on CUDA only
    assert [(run["mode"], run["epochs"]) for run in finetune["runs"]] == [("frozen", 2), ("fine-tuned", 2)]
    assert json.loads((tmp_path / "gpu_bench.json").read_text())["sections"].keys() == sections.keys()
    table = (tmp_path / "gpu_bench.md").read_text()
    for line in ("| full-data training", "| FOSTER n=4: distill", "FOSTER first-order, N=64 step",
                 "bptt unrolled K=2", "catalogue 500 items", "fine-tuned encoder step", "short run, frozen encoder"):
        assert line in table, line


def test_a_real_run_keeps_its_deadline_and_a_section_that_would_not_fit_is_skipped(tmp_path):
    """Time budgets stay in the benchmark for real runs; checked here on the Report alone, with no clock race:
    a section needing more than any deadline holds is skipped, one needing nothing runs."""
    assert bench.GPU_PROFILE["budget_s"] > 0 and bench.parse_args(["--out", "x", "--data", "d"]).budget_s > 0
    meta = {"date": "today", "machine": "here", "torch": torch.__version__, "dataset": "none"}
    report = bench.Report(tmp_path, 60, meta)
    assert report.run("big", 1e9, lambda: {"ran": True}) is None
    assert report.data["sections"]["big"]["status"] == "skipped"
    assert report.run("small", 0, lambda: {"ran": True}) == {"ran": True}
    unlimited = bench.Report(tmp_path, 0, meta)
    assert unlimited.run("big", 1e9, lambda: {"ran": True}) == {"ran": True}
