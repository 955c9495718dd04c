"""Perception: shapes, training runs, checkpoints validate, and the shipped net beats thresholding."""

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
    train_perception,
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


def test_shipped_net_beats_thresholding_at_high_noise(shipped):
    scores = score_perception(shipped, noise_levels=(0.8, 1.0), n_maps=32, seed=20_000)
    for score in scores:
        assert score.net_accuracy > score.threshold_accuracy + 0.05
    low = score_perception(shipped, noise_levels=(0.3,), n_maps=16, seed=20_000)[0]
    assert low.net_accuracy > 0.9  # still good where thresholding already works


def test_training_lowers_the_loss_and_checkpoints_roundtrip(tmp_path):
    training = PerceptionTraining(steps=30, batch=8, size=8, lr=1e-2, seed=1)
    model, result = train_perception(training, PerceptionConfig(channels=4, layers=2))
    assert len(result.losses) == 30
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5])
    save_perception(model, tmp_path / "p")
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
