"""heuristic_net: exact BFS targets, the asymmetric loss against numpy, the heuristic table's
floor, a net that trains and round-trips with its record, and shipped weights whose detours follow
the true ones on maps they never saw and that save A* expansions."""

import re

import numpy as np
import pytest
from tinygrad import Tensor

from neurosymbolic.guided_search import manhattan_table, random_problems
from neurosymbolic.heuristic_net import (
    HeuristicConfig,
    HeuristicNet,
    HeuristicTraining,
    asymmetric_loss,
    detour_examples,
    heuristic_table,
    load_heuristic,
    map_features,
    save_heuristic,
    score_heuristic,
    train_heuristic,
)
from neurosymbolic.world import distance_map


def test_features_channels():
    walls = np.zeros((5, 7), dtype=bool)
    walls[2, 3] = True
    x = map_features(walls, (4, 1))  # (5, H, W)
    assert x.shape == (5, 5, 7) and x.dtype == np.float32
    assert x[0, 2, 3] == 1 and x[0].sum() == 1
    assert x[1, 4, 1] == 1 and x[1].sum() == 1
    assert x[2, 0, 6] == pytest.approx((4 + 5) / 12) and x[2, 4, 1] == 0
    assert x[3, 0, 6] == pytest.approx(4 / 12) and x[4, 0, 6] == pytest.approx(-5 / 12)
    np.testing.assert_allclose(np.abs(x[3]) + np.abs(x[4]), x[2], atol=1e-6)


def test_targets_are_bfs_detours():
    feats, detours, masks = detour_examples(5, 12, (0.2, 0.35), np.random.default_rng(0))
    assert feats.shape == (5, 5, 12, 12) and detours.shape == masks.shape == (5, 1, 12, 12)
    for x, detour, mask in zip(feats, detours[:, 0], masks[:, 0], strict=True):
        goal = tuple(np.argwhere(x[1] == 1)[0])
        dist = distance_map(x[0] > 0.5, goal)  # an independent BFS
        reach = dist >= 0
        np.testing.assert_array_equal(mask > 0, reach)
        rebuilt = detour + x[2] * 24  # Manhattan back to steps, plus the detour
        np.testing.assert_allclose(rebuilt[reach], dist[reach], rtol=1e-5, atol=1e-4)
        assert (detour[reach] >= -1e-6).all()  # BFS is never shorter than Manhattan


def test_asymmetric_loss_against_numpy():
    rng = np.random.default_rng(0)
    predicted, target = rng.normal(2, 2, (2, 1, 4, 5)), rng.exponential(2, (2, 1, 4, 5))
    mask = (rng.random((2, 1, 4, 5)) < 0.7).astype(np.float64)
    error = predicted - target
    for over_weight in (1.0, 3.0):
        weight = np.where(error > 0, over_weight, 1.0)
        expected = (weight * error**2 * mask).sum() / mask.sum()
        got = asymmetric_loss(
            *(Tensor(a.astype(np.float32)) for a in (predicted, target, mask)), over_weight
        )
        assert got.item() == pytest.approx(expected, rel=1e-5)


def test_heuristic_table_floors_at_manhattan_rounds_to_even_and_is_zero_at_the_goal():
    manhattan = manhattan_table(np.zeros((3, 4), dtype=bool), (1, 2))
    detour = np.array([[0.9, -2.0, 1.1, 0.0], [3.2, 0.0, 2.5, -0.1], [4.9, 1.0, 0.2, 5.1]])
    table = heuristic_table(manhattan, detour, (1, 2))
    even = np.array([[0, 0, 2, 0], [4, 0, 2, 0], [4, 0, 0, 6]])  # rounded to an even step count
    expected = manhattan + even
    expected[1, 2] = 0.0  # the goal: 2.5 predicted there, and it costs nothing to stay
    np.testing.assert_array_equal(table, expected)
    assert table.dtype == np.float64


def test_tiny_training_runs_and_round_trips(tmp_path):
    import json

    config = HeuristicConfig(channels=2, levels=1)
    training = HeuristicTraining(steps=3, batch=2, size=8, pool=4, over_weight=2.0)
    net, result = train_heuristic(training, config)
    assert len(result.losses) == 3 and np.isfinite(result.losses).all()
    save_heuristic(net, tmp_path / "h", training, result)
    meta = json.loads((tmp_path / "h.json").read_text())
    assert meta["training"]["over_weight"] == 2.0
    assert meta["losses"] == [pytest.approx(np.mean(result.losses), abs=1e-4)]  # one 100-step block
    again = load_heuristic(tmp_path / "h")
    walls = np.zeros((9, 6), dtype=bool)  # any (H, W): padded with walls to even sides
    table = net.cost_to_go(walls, (2, 3))
    assert table.shape == (9, 6)
    np.testing.assert_allclose(again.cost_to_go(walls, (2, 3)), table, rtol=1e-6)
    assert (table >= manhattan_table(walls, (2, 3)) - 1e-5).all()  # detours are never negative
    assert table[2, 3] == 0.0


def test_shipped_net_knows_about_detours_on_unseen_maps():
    """Closer to the true cost-to-go than Manhattan, and its detours follow the true ones (a net
    whose output died would predict no detour at all and fail both)."""
    net = load_heuristic()
    errors_net, errors_manhattan, correlations = [], [], []
    for walls, _, goal in random_problems(4, size=24, seed=77):
        dist = distance_map(walls, goal)
        reach = dist >= 0
        table, manhattan = net.cost_to_go(walls, goal), manhattan_table(walls, goal)
        errors_net.append(np.abs(table - dist)[reach].mean())
        errors_manhattan.append(np.abs(manhattan - dist)[reach].mean())
        correlations.append(
            np.corrcoef((table - manhattan)[reach], (dist - manhattan)[reach])[0, 1]
        )
    assert np.mean(errors_net) < np.mean(errors_manhattan)
    assert np.mean(correlations) > 0.2


def test_shipped_net_keeps_paths_near_optimal():
    """The shipped net never drops below Manhattan distance and rarely overshoots: its paths stay
    within 5% of the optimum on six maps no training step saw (lesson 12 measures its expansions
    on sixty, beside plain A*)."""
    line = score_heuristic(load_heuristic(), n_maps=6)
    ((ratio, cost),) = re.findall(r"([\d.]+)x A\*'s expansions at ([\d.]+)x", line)
    ratio, cost = float(ratio), float(cost)
    assert 0.5 < ratio < 2.0 and 1.0 <= cost <= 1.05, line


def test_bad_input():
    with pytest.raises(ValueError, match="levels >= 1"):
        HeuristicConfig(levels=0)
    with pytest.raises(ValueError, match="pool >= batch"):
        HeuristicTraining(batch=8, pool=4)
    with pytest.raises(ValueError, match=r"\(H, W\) map"):
        HeuristicNet(HeuristicConfig(2, 1)).cost_to_go(np.zeros(4, dtype=bool), (0, 0))
    with pytest.raises(ValueError, match=r"(?s)multiple of 8, got 20.*size=24"):
        train_heuristic(HeuristicTraining(size=20), HeuristicConfig(levels=3))  # before any map
    with pytest.raises(ValueError, match="multiples of 4"):
        HeuristicNet(HeuristicConfig(2, 2))(Tensor.zeros(1, 5, 6, 8))
