"""Projections and inspection of synthetic data on tiny data with stand-in text embeddings."""

import numpy as np
import pytest

from foster_core.methods.expert import DistillContext

from foster_core.methods.registry import distill
from foster_core.core.model import ModelConfig
from foster_core.analysis.projection import (MapConfig, cosine_neighbours, coverage_summary, map_frame, nearest_real_sequences, popularity_profile,
                                    position_table, project_2d, synthetic_embeddings, real_embeddings)
from foster_core.core.synthetic import SyntheticData
from foster_core.core.training import TrainConfig

from conftest import random_text_embeddings


@pytest.fixture
def context(cyclic_dataset, tmp_path):
    return DistillContext(cyclic_dataset, random_text_embeddings(cyclic_dataset.num_items),
                          ModelConfig(hidden=16, blocks=1, heads=1, dropout=0.0, max_len=10),
                          TrainConfig(epochs=3, lr=1e-2, batch_size=8), cache_dir=tmp_path)


def test_a_real_sequence_as_synthetic_data_lands_on_itself_in_both_spaces(context):
    synthetic = SyntheticData.from_sequences([context.train[3]], context.model_cfg.max_len - 1)
    for space in ("text", "hidden"):
        real = real_embeddings(context, np.array([3]), space)
        syn = synthetic_embeddings(context, synthetic, space)
        np.testing.assert_allclose(real, syn, atol=1e-5)


def test_map_frame_has_every_point_with_hover_texts_and_is_cached(context, tmp_path):
    synthetic = distill(context, "random", 4)
    config = MapConfig(max_real=30, method="pca")
    frame, real, syn = map_frame(context, synthetic, "text", config, cache_dir=tmp_path)
    assert (frame.source == "real").sum() == 30 and (frame.source == "synthetic").sum() == 4
    assert frame.hover.str.contains("item number").all() and np.isfinite(frame[["x", "y"]].to_numpy()).all()
    assert real.shape == (30, context.text_embeddings.shape[1]) and syn.shape[0] == 4
    assert len(list((tmp_path / "projections").glob("*.npy"))) == 1
    frame_again, _, _ = map_frame(context, synthetic, "text", config, cache_dir=tmp_path)
    np.testing.assert_array_equal(frame.x, frame_again.x)


def test_umap_projects_to_two_finite_dimensions(tmp_path):
    points = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    coords = project_2d(points, MapConfig(n_neighbors=5), cache_dir=tmp_path)
    assert coords.shape == (40, 2) and np.isfinite(coords).all()
    # Points that are neighbours stay nearer each other on the map than the average pair does.
    nearest, _ = cosine_neighbours(points, 2)
    near = np.linalg.norm(coords - coords[nearest[:, 1]], axis=1).mean()
    spread = np.linalg.norm(coords[:, None] - coords[None], axis=2).mean()
    assert near < 0.5 * spread


def test_the_map_s_neighbours_are_the_exact_cosine_neighbours_each_point_first():
    # Directions 0, 10, 80 and 90 degrees; the fifth point repeats the first.
    angles = np.radians([0.0, 10.0, 80.0, 90.0, 0.0])
    points = np.stack([np.cos(angles), np.sin(angles)], axis=1) * np.array([[1.0], [2.0], [1.0], [3.0], [5.0]])
    indices, distances = cosine_neighbours(points, 3, chunk=2)
    assert indices.tolist() == [[0, 4, 1], [1, 0, 4], [2, 3, 1], [3, 2, 1], [4, 0, 1]]
    assert distances[:, 0].tolist() == [0.0] * 5
    assert distances[0, 2] == pytest.approx(1 - np.cos(np.radians(10.0)), abs=1e-6)
    assert distances[2, 2] == pytest.approx(1 - np.cos(np.radians(70.0)), abs=1e-6)


def test_position_table_names_item_texts_probabilities_and_nearest_texts(context):
    synthetic = distill(context, "random", 3)
    table = position_table(context, synthetic, 1)
    assert table["position"].unique().tolist() == list(range(int(synthetic.mask[1].sum())))
    first = table[table["position"] == 0]
    assert first["input item"].iloc[0].startswith("item number") and first["input p"].iloc[0] == 1.0
    # A one-hot position: its item alone, then its three nearest real items, the item itself not among them.
    assert first["input item"].tolist()[1:] == ["", ""] and first["input p"].iloc[1:].isna().all()
    assert first["input item"].iloc[0] not in set(first["nearest real item (not itself)"])
    assert first["similarity"].is_monotonic_decreasing and (first["similarity"] < 1.0 - 1e-6).all()


def test_nearest_real_sequences_find_the_copied_sequence_first(context):
    synthetic = SyntheticData.from_sequences([context.train[5]], context.model_cfg.max_len - 1)
    indices = np.arange(len(context.train))
    real = real_embeddings(context, indices, "text")
    nearest = nearest_real_sequences(context, real, indices, synthetic_embeddings(context, synthetic, "text")[0])
    assert nearest.iloc[0]["similarity"] == pytest.approx(1.0, abs=1e-3)
    assert np.array_equal(context.train[nearest.iloc[0]["real sequence"]], context.train[5])


def test_popularity_profile_shares_sum_to_one_and_coverage_is_a_share(context):
    synthetic = distill(context, "random", 4)
    profile = popularity_profile(context, synthetic)
    for source in ("real", "synthetic"):
        assert profile[profile.source == source].share.sum() == pytest.approx(1.0)
    summary = coverage_summary(context, synthetic)
    assert 0 < summary["synthetic catalogue coverage (p ≥ 0.01)"] <= summary["real catalogue coverage"] <= 1
