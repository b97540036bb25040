"""Device resolution, precision and the time limit: explicit requests are honoured or refused, never
silently replaced; defaults stay what existing results were produced with."""

import pytest
import torch

from foster_core.core.data import leave_one_out
from foster_core.core.model import ModelConfig
from foster_core.core.runtime import autocast, check_precision, resolve_device
from foster_core.core.text_encoder import TextEncoder, load_hf_encoder
from foster_core.core.training import TrainConfig, train_on_sequences

from conftest import random_text_embeddings

SMALL = ModelConfig(hidden=16, blocks=1, heads=2, dropout=0.0, max_len=10)


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_is_cpu_without_cuda_and_cuda_with_it(no_cuda, monkeypatch):
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_explicit_cuda_without_a_gpu_is_a_clear_error(no_cuda):
    for asked in ("cuda", "cuda:0", torch.device("cuda")):
        with pytest.raises(ValueError, match="no CUDA GPU is available.*use 'auto' or 'cpu'"):
            resolve_device(asked)


def test_cuda_index_beyond_the_devices_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match=r"only 1 CUDA device\(s\)"):
        resolve_device("cuda:3")


def test_unknown_device_names_are_errors_and_cpu_objects_pass():
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_every_entry_point_refuses_cuda_without_a_gpu(no_cuda, cyclic_dataset):
    with pytest.raises(ValueError, match="no CUDA GPU"):
        TextEncoder(device="cuda")
    split = leave_one_out(cyclic_dataset)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        train_on_sequences(random_text_embeddings(cyclic_dataset.num_items), split.train, None, SMALL,
                           TrainConfig(epochs=1, device="cuda"))


def test_precision_values_and_bf16_refused_on_the_cpu(cyclic_dataset):
    assert TrainConfig().precision == "fp32" and TrainConfig().time_limit_s == 0.0
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        TrainConfig(precision="fp16")
    with pytest.raises(ValueError, match="bf16' needs a CUDA device"):
        check_precision("bf16", torch.device("cpu"))
    check_precision("bf16")  # without a device only the name is checked (configs are built before devices)
    split = leave_one_out(cyclic_dataset)
    with pytest.raises(ValueError, match="bf16' needs a CUDA device"):
        train_on_sequences(random_text_embeddings(cyclic_dataset.num_items), split.train, None, SMALL,
                           TrainConfig(epochs=1, device="cpu", precision="bf16"))
    with autocast(torch.device("cpu"), "fp32"):
        assert not torch.is_autocast_enabled("cpu")


def test_explicit_fp32_is_the_default_run_bit_for_bit(cyclic_dataset):
    split = leave_one_out(cyclic_dataset)
    emb = random_text_embeddings(cyclic_dataset.num_items)
    run = lambda cfg: [r["loss"] for r in train_on_sequences(emb, split.train, None, SMALL, cfg).history]
    assert run(TrainConfig(epochs=2, batch_size=8)) == run(TrainConfig(epochs=2, batch_size=8, precision="fp32"))


def test_time_limit_stops_after_the_epoch_that_passes_it(cyclic_dataset):
    split = leave_one_out(cyclic_dataset)
    result = train_on_sequences(random_text_embeddings(cyclic_dataset.num_items), split.train, split, SMALL,
                                TrainConfig(epochs=50, batch_size=8, time_limit_s=1e-6))
    assert len(result.history) == 1 and result.history[-1]["stopped"] == "time_limit_s"
    assert result.best_epoch == 1
    with pytest.raises(ValueError, match="time_limit_s"):
        TrainConfig(time_limit_s=-1)


def test_progress_line_states_the_time_left_under_patience_and_under_the_time_limit():
    from foster_core.runs.evaluator import EpochReporter
    lines = []
    record = {"epoch": 2, "loss": 1.0, "seconds": 20.0, "valid": {"ndcg@10": 0.5}}
    # 10 s an epoch; best at epoch 2 with patience 5: 5 epochs (50 s) left if it stops improving.
    EpochReporter("x", TrainConfig(epochs=100, patience=5), lines.append)(record)
    assert lines[-1].endswith("10.0 s/epoch, 50 s left if NDCG@10 stops improving")
    # 80 s of a 100 s limit left: 8 more epochs, the last one passing it, so at most 80 s.
    EpochReporter("x", TrainConfig(epochs=100, patience=5, time_limit_s=100), lines.append)(record)
    assert lines[-1].endswith("50 s left if NDCG@10 stops improving, 1 min 20 s at most (time limit)")
    # 75 s left: the 8th epoch still passes it (the limit ends the run after that epoch, not before).
    EpochReporter("x", TrainConfig(epochs=100, patience=5, time_limit_s=95), lines.append)(record)
    assert lines[-1].endswith("1 min 20 s at most (time limit)")
    # No validation (the labeller runs all its epochs): every epoch left counts.
    EpochReporter("x", TrainConfig(epochs=12, patience=5), lines.append)({"epoch": 2, "loss": 1.0, "seconds": 20.0})
    assert lines[-1] == "x: epoch 2, loss 1.0000; 10.0 s/epoch, 1 min 40 s left (epoch 2 of 12)"


def test_half_precision_encoder_folder_is_used_in_fp32(tmp_path):
    from foster_core.testing import build_tiny_encoder

    folder = build_tiny_encoder(tmp_path / "tiny", ["red apple", "green pear"])
    from transformers import AutoModel

    AutoModel.from_pretrained(folder).half().save_pretrained(tmp_path / "half")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "half" / name).write_bytes((folder / name).read_bytes())
    _, model = load_hf_encoder(tmp_path / "half")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
