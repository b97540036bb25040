"""CUDA checks (marked `gpu`: `pytest -m gpu tests/test_gpu.py`; skipped with the reason where no CUDA device
exists) and a CPU smoke run of the one-shot GPU benchmark driver."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from foster_core.core.data import leave_one_out
from foster_core.core.evaluation import evaluate_model
from foster_core.core.finetune import FinetuneConfig, build_tiny_encoder, time_finetune_steps, train_finetuned
from foster_core.core.model import ModelConfig
from foster_core.core.runtime import resolve_device
from foster_core.core.text_encoder import EncoderConfig, TextEncoder
from foster_core.core.training import TrainConfig, train_on_sequences, train_on_soft

from conftest import random_text_embeddings

REPO = Path(__file__).resolve().parents[1]
SMALL = ModelConfig(hidden=32, blocks=1, heads=2, dropout=0.0, max_len=10)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device here (torch.cuda.is_available() is False); "
                                       "run on a GPU machine: pytest -m gpu tests/test_gpu.py")


def load_gpu_bench():
    spec = importlib.util.spec_from_file_location("gpu_bench", REPO / "benchmarks" / "gpu_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    bench = load_gpu_bench()
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
    from foster_core.runs.evaluator import StudentConfig
    from foster_core.runs.runner import run_method
    from foster_core.UNMAPPED_distill import DistillConfig
    from foster_core.methods.expert import DistillContext

    context = DistillContext(cyclic_dataset, random_text_embeddings(cyclic_dataset.num_items), SMALL,
                             TrainConfig(epochs=3, device="cuda"), tmp_path)
    student = StudentConfig(seeds=(0,), epochs=5, eval_every=5, device="cuda")
    for method in ("foster", "bptt"):
        config = DistillConfig(steps=3, device="cuda", select_every=0, checkpoint_every=0, log_every=1,
                               subset_size=4, unroll_steps=2)
        outcome = run_method(context, method, 4, config, student)
        assert outcome.peak_mb > 0, method
        assert 0.0 <= outcome.results["test"]["ndcg@10"]["mean"] <= 1.0


def test_benchmark_driver_smoke_run_on_the_cpu(tmp_path):
    """The driver's every section, tiny, on the CPU: the code paths the GPU run takes, minus CUDA."""
    bench = load_gpu_bench()
    data = bench.main(["--smoke", "--device", "cpu", "--out", str(tmp_path), "--smoke-users", "60",
                       "--smoke-items", "80", "--budgets", "4", "--catalogue-sizes", "500", "--unroll", "2",
                       "--step-steps", "2", "--foster-steps", "2"])
    sections = data["sections"]
    assert {name: entry["status"] for name, entry in sections.items()} == {
        name: "ok" for name in ("parity", "data", "full", "expert", "foster_n4", "steps", "catalogue", "finetune")}
    assert sections["parity"]["note"].startswith("no CUDA device")
    assert json.loads((tmp_path / "gpu_bench.json").read_text())["sections"].keys() == sections.keys()
    table = (tmp_path / "gpu_bench.md").read_text()
    assert "| full-data training" in table and "fine-tuned encoder step" in table and "bptt unrolled K=2" in table
