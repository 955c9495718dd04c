"""Perception: shapes, metrics, training runs, checkpoints validate, and the shipped net beats
thresholding on accuracy and wall recall where the noise is high."""

import json

import numpy as np
import pytest

from neurosymbolic.checkpoint import save_checkpoint
from neurosymbolic.perception import (
    Perception,
    PerceptionConfig,
    PerceptionTraining,
    load_perception,
    save_perception,
    score_perception,
    threshold_walls,
    train_perception,
    wall_metrics,
)
from neurosymbolic.policy import Policy


@pytest.fixture(scope="module")
def shipped():
    return load_perception()


def test_any_map_size_and_batches(shipped):
    rng = np.random.default_rng(0)
    one = shipped.perceive(rng.standard_normal((9, 13)))
    many = shipped.perceive(rng.standard_normal((3, 9, 13)))
    assert one.shape == (9, 13) and many.shape == (3, 9, 13)
    assert many.min() >= 0.0 and many.max() <= 1.0
    with pytest.raises(ValueError, match="obs must be"):
        shipped.perceive(np.zeros(5))


@pytest.mark.parametrize("seed", [20_000, 40_000, 60_000])  # held out: training draws from seed 0
def test_shipped_net_beats_thresholding_at_high_noise(shipped, seed):
    for score in score_perception(shipped, noise_levels=(0.8, 1.0), n_maps=32, seed=seed):
        assert score.net_accuracy > score.threshold_accuracy + 0.04, score
        assert score.net_recall > score.threshold_recall + 0.03, score
    low = score_perception(shipped, noise_levels=(0.3,), n_maps=16, seed=seed)[0]
    assert low.net_accuracy > 0.9 and low.net_recall > 0.9  # still good where thresholding works


def test_metrics_against_numpy():
    rng = np.random.default_rng(3)
    walls = rng.random((4, 9, 11)) < 0.3
    obs = walls + 0.8 * rng.standard_normal(walls.shape)
    guess = threshold_walls(obs)
    np.testing.assert_array_equal(guess, obs > 0.5)
    assert not threshold_walls(np.array([0.5]))[0]  # strictly above the level
    accuracy, recall = wall_metrics(guess, walls)
    assert accuracy == pytest.approx(np.mean(guess == walls), abs=1e-12)
    assert recall == pytest.approx(np.sum(guess & walls) / np.sum(walls), abs=1e-12)
    assert wall_metrics(np.ones((2, 2), bool), np.zeros((2, 2), bool)) == (0.0, 1.0)
    with pytest.raises(ValueError, match="same shape"):
        wall_metrics(guess[0], walls)


def test_training_lowers_the_loss_and_checkpoints_roundtrip(tmp_path):
    training = PerceptionTraining(steps=30, batch=8, size=8, lr=1e-2, seed=1)
    model, result = train_perception(training, PerceptionConfig(channels=4, layers=2))
    assert len(result.losses) == 30
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5])
    save_perception(model, tmp_path / "p", training)
    assert json.loads((tmp_path / "p.json").read_text())["training"]["steps"] == 30
    loaded = load_perception(tmp_path / "p")
    obs = np.random.default_rng(2).standard_normal((6, 7)).astype(np.float32)
    np.testing.assert_allclose(loaded.perceive(obs), model.perceive(obs), atol=1e-6)


def test_loading_validates(tmp_path):
    save_checkpoint(
        Perception(PerceptionConfig(channels=4)), PerceptionConfig(channels=4), tmp_path / "p"
    )
    meta = json.loads((tmp_path / "p.json").read_text())
    meta["config"]["channels"] = 8
    (tmp_path / "p.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not fit the config"):
        load_perception(tmp_path / "p")
    with pytest.raises(ValueError, match="does not exist"):
        load_perception(tmp_path / "missing")
    from neurosymbolic.policy import PolicyConfig

    save_checkpoint(Policy(PolicyConfig(hidden=2)), PolicyConfig(hidden=2), tmp_path / "q")
    with pytest.raises(ValueError, match="holds a 'Policy'"):
        load_perception(tmp_path / "q")


def test_invalid_configs():
    with pytest.raises(ValueError, match="layers >= 2"):
        PerceptionConfig(layers=1)
    with pytest.raises(ValueError, match="size >= 3"):
        PerceptionTraining(size=2)
    with pytest.raises(ValueError, match="wall_weight must be > 0, got 0"):
        PerceptionTraining(wall_weight=0)
