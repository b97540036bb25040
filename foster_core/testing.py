"""Generated data and tiny models for tests, smoke runs and benchmarks: the one home of their builders.

Nothing here is part of the method. Library modules never import this module; tests (tests/conftest.py)
and benchmarks (benchmarks/gpu_bench.py) do.

    cyclic_tables / cyclic_dataset   users walk the item cycle i -> i+1: the next item is fully predictable
    zipf_tables / zipf_dataset       items drawn from a Zipf-like popularity: a catalogue of any size
    random_text_embeddings           unit rows standing in for encoder output
    tiny_context                     a DistillContext on the cyclic dataset with a tiny model and expert
    build_tiny_encoder               a tiny random BERT with a word-level tokenizer, as a local HF folder
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .core.data import DataConfig, Dataset
from .core.loaders import build_dataset
from .core.model import ModelConfig
from .core.training import TrainConfig
from .methods.expert import DistillContext

# A one-block text-SASRec that learns the cycle in a few epochs (tests of the methods).
TINY_MODEL = ModelConfig(hidden=16, blocks=1, heads=1, dropout=0.0, max_len=10)
# A little wider, two heads (tests of training, devices and fine-tuning; the GPU benchmark's parity run).
SMALL_MODEL = ModelConfig(hidden=32, blocks=1, heads=2, dropout=0.0, max_len=10)
# The expert of a tiny context: enough epochs to learn the cycle, seconds on a CPU.
TINY_EXPERT = TrainConfig(epochs=8, lr=1e-2, batch_size=8)


def cycle_text(item: int) -> str:
    return f"item number {item} of the cycle"


def numbered_text(item: int) -> str:
    return f"item {item}"


def word_text(item: int) -> str:
    """One pair of words per item, so that a tiny word-level encoder tells every item apart."""
    return f"alpha{item} beta{item}"


def cyclic_tables(n_users: int = 40, n_items: int = 12, length: int = 8, seed: int = 0,
                  text: Callable[[int], str] = cycle_text) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(interactions, items): each user walks the item cycle i -> i+1 from a random start, `length` steps."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        start = int(rng.integers(n_items))
        for t in range(length):
            rows.append((f"u{user}", f"i{(start + t) % n_items}", t))
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)], "text": [text(i) for i in range(n_items)]})
    return interactions, items


def cyclic_dataset(n_users: int = 40, n_items: int = 12, length: int = 8, seed: int = 0,
                   text: Callable[[int], str] = cycle_text, max_seq_len: int | None = None) -> Dataset:
    """The cyclic tables as a Dataset (every user kept; sequences of up to length + 2 items by default)."""
    interactions, items = cyclic_tables(n_users, n_items, length, seed, text)
    return build_dataset("cyclic", interactions, items,
                         DataConfig(min_interactions=5, max_seq_len=max_seq_len or length + 2))


def zipf_tables(num_items: int, users: int = 2000, length: int = 20, seed: int = 0, exponent: float = 0.8,
                text: Callable[[int], str] = numbered_text) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(interactions, items): `users` users of `length` items each, drawn with popularity 1 / rank^exponent.

    Every item gets a text row, so the catalogue is exactly the items that occur."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, num_items + 1) ** exponent
    drawn = rng.choice(num_items, size=(users, length), p=weights / weights.sum())
    interactions = pd.DataFrame({"user_id": np.repeat(np.arange(users), length), "item_id": drawn.ravel(),
                                 "timestamp": np.tile(np.arange(length), users)})
    items = pd.DataFrame({"item_id": np.arange(num_items), "text": [text(i) for i in range(num_items)]})
    return interactions, items


def zipf_dataset(num_items: int, users: int = 2000, length: int = 20, seed: int = 0, exponent: float = 0.8,
                 text: Callable[[int], str] = numbered_text) -> Dataset:
    interactions, items = zipf_tables(num_items, users, length, seed, exponent, text)
    return build_dataset(f"synthetic-{num_items}", interactions, items, DataConfig(min_interactions=5, max_seq_len=length))


def random_text_embeddings(num_items: int, dim: int = 16, seed: int = 0) -> torch.Tensor:
    """Stand-in for encoder output (unit rows) where a test is about the recommender, not the encoder."""
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(num_items, dim, generator=generator), dim=-1)


def tiny_context(dataset: Dataset | None = None, cache_dir: str | Path | None = None,
                 model_cfg: ModelConfig = TINY_MODEL, expert_cfg: TrainConfig = TINY_EXPERT, text_dim: int = 16,
                 seed: int = 0) -> DistillContext:
    """A DistillContext on `dataset` (default: the cyclic dataset) with random text embeddings; its expert
    trains on first use (a few seconds) and is cached under `cache_dir`."""
    dataset = dataset if dataset is not None else cyclic_dataset()
    return DistillContext(dataset, random_text_embeddings(dataset.num_items, text_dim, seed), model_cfg, expert_cfg,
                          Path(cache_dir) if cache_dir is not None else None)


def build_tiny_encoder(folder: str | Path, texts: Sequence[str], hidden: int = 32, layers: int = 2,
                       seed: int = 0) -> Path:
    """A tiny random BERT and a word-level tokenizer for `texts`, saved as a local Hugging Face folder.

    Exercises every code path of a real encoder with no download and in milliseconds; its embeddings mean
    nothing.
    """
    # Imported here, as core.text_encoder does: loading transformers' BERT takes seconds, and every test
    # session imports this module through conftest.py, most of them without needing an encoder.
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    words = sorted({w for text in texts for w in text.lower().replace("|", " ").split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    BertTokenizer(vocab={word: index for index, word in enumerate(vocab)}, do_lower_case=True).save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=128)
    BertModel(config).save_pretrained(folder)
    return folder
