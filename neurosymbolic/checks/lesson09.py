"""Checkers for lesson 09 · Neural perception."""

from collections.abc import Callable

import numpy as np
from tinygrad import Tensor

from minigpt.checks.core import ExerciseFailed, checker, compare, run_learner
from neurosymbolic.perception import noisy_maps, threshold_walls, wall_metrics


def reference_threshold(obs: np.ndarray) -> np.ndarray:
    """Exercise 1: a wall wherever the observation is above 0.5 (halfway between free and wall)."""
    return threshold_walls(obs)


def reference_metrics(guess: np.ndarray, walls: np.ndarray) -> tuple[float, float]:
    """Exercise 2: (accuracy, wall recall) of a guessed wall map, as `wall_metrics`."""
    return wall_metrics(guess, walls)


def reference_mean_filter(obs: Tensor) -> Tensor:
    """Exercise 3: each cell replaced by the mean of its 3x3 neighbourhood, zeros outside the map."""
    return obs.conv2d(Tensor.ones(1, 1, 3, 3) / 9, padding=1)  # (B, 1, H, W) -> (B, 1, H, W)


def _numpy_mean_filter(obs: np.ndarray) -> np.ndarray:
    """The 3x3 mean as a sum of nine shifted copies of the zero-padded map, in float64."""
    H, W = obs.shape[-2:]
    padded = np.pad(obs.astype(np.float64), [(0, 0)] * (obs.ndim - 2) + [(1, 1), (1, 1)])
    return sum(padded[..., r : r + H, c : c + W] for r in range(3) for c in range(3)) / 9


@checker("Exercise 1")
def check_threshold(fn: Callable[[np.ndarray], np.ndarray]) -> str:
    """`fn(obs)` is a bool wall map of the same shape: True where obs > 0.5."""
    rng = np.random.default_rng(0)
    _, noisy = noisy_maps(3, 8, 0.8, (0.2, 0.4), rng)  # (3, 8, 8)
    cases = {
        "one noisy 8x8 map (noise 0.8)": noisy[0],
        "a batch of 3 noisy 8x8 maps": noisy,
        "obs = [[0.5, 0.4999, 0.5001], [-2.0, 1.0, 0.0]]": np.array(
            [[0.5, 0.4999, 0.5001], [-2.0, 1.0, 0.0]], dtype=np.float32
        ),
    }
    for case, obs in cases.items():
        got = np.asarray(run_learner("Exercise 1", fn, obs))
        if got.dtype != np.bool_:
            raise ExerciseFailed(
                f"Exercise 1: for {case}, you returned dtype {got.dtype}, expected bool.\n"
                "hint: a comparison such as `obs > 0.5` gives a bool array, which the planner needs."
            )
        compare(
            "Exercise 1",
            case,
            reference_threshold(obs),
            got,
            "a cell is a wall when obs > 0.5: strictly above, so exactly 0.5 counts as free.",
            rtol=0.0,
            atol=0.0,
        )
    return "walls where obs > 0.5, for single maps and batches."


@checker("Exercise 2")
def check_metrics(fn: Callable[[np.ndarray, np.ndarray], tuple[float, float]]) -> str:
    """`fn(guess, walls)` = (fraction of cells right, fraction of true walls guessed as walls)."""
    rng = np.random.default_rng(1)
    walls, noisy = noisy_maps(4, 10, 0.8, (0.2, 0.4), rng)  # (4, 10, 10)
    walls = walls.astype(bool)
    tiny_walls = np.array([[True, True], [False, False]])
    cases = [
        ("thresholded noisy 10x10 maps, batch of 4", noisy > 0.5, walls),
        ("one 10x10 map, every cell guessed a wall", np.ones((10, 10), bool), walls[0]),
        ("guess [[1, 0], [1, 0]] for walls [[1, 1], [0, 0]]", tiny_walls.T, tiny_walls),
        ("a map without walls (recall counts as 1.0)", noisy[0] > 0.5, np.zeros((10, 10), bool)),
    ]
    hint = (
        "accuracy = mean(guess == walls) over every cell; recall = (guess & walls).sum() / "
        "walls.sum(), the share of true walls that were found (1.0 when there are none)."
    )
    for case, guess, truth in cases:
        got = run_learner("Exercise 2", fn, guess, truth)
        if not (isinstance(got, tuple | list) and len(got) == 2):
            raise ExerciseFailed(
                f"Exercise 2: for {case}, expected a pair (accuracy, recall), got {got!r}.\n"
                f"hint: {hint}"
            )
        compare("Exercise 2", case, reference_metrics(guess, truth), got, hint, rtol=1e-9)
    return "accuracy and recall agree with numpy on 4 cases, including a map without walls."


@checker("Exercise 3")
def check_mean_filter(fn: Callable[[Tensor], Tensor]) -> str:
    """`fn(obs)` averages every 3x3 neighbourhood of ``(B, 1, H, W)`` obs (zeros outside)."""
    hint = (
        "conv2d with a (1, 1, 3, 3) weight of 1/9 and padding=1 keeps (H, W); or add the nine "
        "shifted copies of the zero-padded map and divide by 9."
    )
    rng = np.random.default_rng(2)
    cases = {
        "obs = ones of shape (1, 1, 4, 5): edges see zeros": np.ones((1, 1, 4, 5), np.float32),
        "obs of shape (2, 1, 6, 7), normal": rng.standard_normal((2, 1, 6, 7)).astype(np.float32),
    }
    for case, obs in cases.items():
        got = run_learner("Exercise 3", fn, Tensor(obs))
        if not isinstance(got, Tensor):
            raise ExerciseFailed(
                f"Exercise 3: for {case}, you returned {type(got).__name__}, expected a Tensor.\n"
                f"hint: stay in tinygrad: {hint}"
            )
        compare("Exercise 3", case, _numpy_mean_filter(obs), got, hint)
    walls, noisy = noisy_maps(32, 16, 0.8, (0.15, 0.4), np.random.default_rng(3))
    smoothed = run_learner("Exercise 3", fn, Tensor(noisy[:, None])).numpy()[:, 0]  # (32, 16, 16)
    raw_acc, _ = wall_metrics(threshold_walls(noisy), walls)
    smooth_acc, _ = wall_metrics(threshold_walls(smoothed), walls)
    return (
        f"at noise 0.8, thresholding the smoothed map is right on {smooth_acc:.1%} of cells "
        f"against {raw_acc:.1%} for the raw observation."
    )
