"""The real bundled MiniLM-L6 (a few short texts keep this fast)."""

import numpy as np
import pytest

from foster_core.core.text_encoder import EncoderConfig, TextEncoder, bundled_model_path

TEXTS = ["Toy Story (1995) | Animation, Comedy", "Heat (1995) | Action, Crime", "a grit sanding roll", "Toy Story"]


def test_unit_norm_deterministic_and_semantic(tmp_path):
    first = TextEncoder(device="cpu", cache_dir=tmp_path / "a").encode(TEXTS)
    second = TextEncoder(device="cpu", cache_dir=tmp_path / "b").encode(TEXTS)
    assert first.shape == (4, 384) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(first, second, atol=1e-6)
    similarity = first @ first.T
    # The two Toy Story texts are closer to each other than to the sanding roll.
    assert similarity[0, 3] > similarity[2, 3] + 0.2


def test_second_call_hits_the_cache_without_running_the_model(tmp_path, monkeypatch):
    encoder = TextEncoder(device="cpu", cache_dir=tmp_path)
    progress = []
    first = encoder.encode(TEXTS, lambda done, total: progress.append((done, total)))
    assert progress[-1] == (4, 4)

    def fail(*args, **kwargs):
        raise AssertionError("the model ran although the embeddings were cached")

    fresh = TextEncoder(device="cpu", cache_dir=tmp_path)
    monkeypatch.setattr(fresh, "_load", fail)
    monkeypatch.setattr(fresh, "_encode_uncached", fail)
    np.testing.assert_array_equal(fresh.encode(TEXTS), first)
    # Another order of texts is another key: it must run the model.
    with pytest.raises(AssertionError, match="the model ran"):
        fresh.encode(list(reversed(TEXTS)))


def test_cache_folder_follows_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("FOSTER_CACHE_DIR", str(tmp_path / "moved"))
    encoder = TextEncoder(device="cpu")
    encoder.encode(TEXTS[:2])
    assert list((tmp_path / "moved" / "text_embeddings").glob("*.npy"))
    assert not list((tmp_path / "moved" / "text_embeddings").glob("*.tmp"))


def test_corrupt_cache_entry_is_recomputed(tmp_path):
    encoder = TextEncoder(device="cpu", cache_dir=tmp_path)
    good = encoder.encode(TEXTS[:2])
    encoder.cache_path(TEXTS[:2]).write_bytes(b"half a file")
    np.testing.assert_allclose(TextEncoder(device="cpu", cache_dir=tmp_path).encode(TEXTS[:2]), good, atol=1e-6)


def test_any_local_encoder_folder_plugs_in_with_its_own_cache_key(tmp_path):
    default = TextEncoder(device="cpu", cache_dir=tmp_path)
    explicit = TextEncoder(EncoderConfig(model_path=str(bundled_model_path())), device="cpu", cache_dir=tmp_path)
    assert default.cache_key(TEXTS) != explicit.cache_key(TEXTS)
    np.testing.assert_allclose(explicit.encode(TEXTS[:2]), default.encode(TEXTS[:2]), atol=1e-6)
