"""Checkers for lesson 09 · Neural perception.

Exercise 1 is the weighted binary cross-entropy the perception net learns from, compared with a
float64 numpy version (relative tolerance 1e-4, fits float32) on logits as wide as +-40 and on
batches with no walls or only walls. Exercise 2 is a training loop: the checker trains a fresh
`Perception` with it and asks for a falling loss and a net that beats thresholding on accuracy and
wall recall on maps it never saw. Exercise 3 is a fixed 3x3 mean filter in tinygrad.
"""

from collections.abc import Callable

import numpy as np
from tinygrad import Context, Tensor, TinyJit, nn
from tinygrad.nn.state import get_parameters

from course.checks import Case, ExerciseFailed, InPlace, checker, compare, run_learner
from neurosymbolic.perception import Perception, noisy_maps, threshold_walls, wall_metrics


def reference_perception_loss(logits: Tensor, walls: Tensor, wall_weight: float) -> Tensor:
    """Exercise 1: the mean over cells of -(w y log s(z) + (1 - y) log(1 - s(z))), s the sigmoid."""
    return logits.binary_crossentropy_logits(walls, pos_weight=Tensor(wall_weight))


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)  # stable for any z, float64


def _loss_terms(z: np.ndarray, y: np.ndarray, on_walls: float, on_free: float) -> np.ndarray:
    return -(on_walls * y * _log_sigmoid(z) + on_free * (1 - y) * _log_sigmoid(-z))


def _loss_cases() -> list[Case]:
    """Ordinary logits, logits as wide as +-40, and a map of walls only beside one without walls,
    under two wall weights."""
    rng = np.random.default_rng(9)
    walls = (rng.random((2, 1, 5, 6)) < 0.3).astype(np.float32)  # (B, 1, H, W)
    uneven = np.zeros((2, 1, 4, 7), np.float32)
    uneven[0] = 1.0  # the first map is all walls, the second has none
    cases = [
        ("logits (2, 1, 5, 6) ~ N(0, 1), 30% walls, wall_weight 2.5",
         rng.standard_normal((2, 1, 5, 6)), walls, 2.5),
        ("logits (2, 1, 5, 6) from -40 to 40, wall_weight 2.5",
         np.linspace(-40, 40, 60).reshape(2, 1, 5, 6), walls, 2.5),
        ("a map of walls only and a map without walls (2, 1, 4, 7), wall_weight 4.0",
         rng.standard_normal((2, 1, 4, 7)) * 3, uneven, 4.0),
    ]  # fmt: skip
    return [
        Case(name, {"logits": z.astype(np.float32), "walls": y, "wall_weight": w})
        for name, z, y, w in cases
    ]


@checker("Exercise 1", cases=_loss_cases)
def check_perception_loss(fn: Callable[[Tensor, Tensor, float], Tensor]) -> str:
    """`fn(logits, walls, wall_weight)` is the wall-weighted binary cross-entropy, averaged over
    every cell (relative tolerance 1e-4)."""
    for case in _loss_cases():
        z, y, weight = case["logits"], case["walls"], case["wall_weight"]
        z64, y64 = z.astype(np.float64), y.astype(np.float64)
        terms = _loss_terms(z64, y64, weight, 1.0)
        expected = terms.mean()
        got = run_learner("Exercise 1", fn, Tensor(z), Tensor(y), weight)
        weights = np.where(y64 == 1, weight, 1.0)
        mistakes = {
            "the wall weight multiplies the free cells; it belongs to the wall terms "
            "(walls == 1), the rarer class.": _loss_terms(z64, y64, 1.0, weight).mean(),
            "the wall weight is missing: multiply the wall terms by wall_weight.": _loss_terms(
                z64, y64, 1.0, 1.0
            ).mean(),
            "that is the sum over the cells; the loss is their mean.": terms.sum(),
            "you divided by the total weight; divide by the number of cells (a plain mean).": (
                terms.sum() / weights.sum()
            ),
            "walls and free cells are swapped: a wall (walls == 1) scores log sigmoid(logit).": (
                _loss_terms(z64, 1 - y64, weight, 1.0).mean()
            ),
            "the lesson's wall_weight=2.5 is written in; use the wall_weight argument.": (
                _loss_terms(z64, y64, 2.5, 1.0).mean()
            ),
        }
        compare("Exercise 1", case.name, expected, got, mistakes, rtol=1e-4, atol=1e-6)
    return "the weighted cross-entropy matches float64 numpy, at +-40 and on one-class maps."


def reference_training(model: Perception, steps: int, seed: int) -> list[float]:
    """Exercise 2: `steps` Adam steps (lr 1e-2) on fresh batches of 32 noisy 16x16 maps, with the
    wall-weighted loss; the step is jitted, so after two calls it replays compiled kernels."""
    opt = nn.optim.Adam(get_parameters(model), lr=1e-2)
    rng = np.random.default_rng(seed)

    @TinyJit
    @Context(TRAINING=1)
    def step(obs: Tensor, walls: Tensor) -> Tensor:
        opt.zero_grad()
        loss = reference_perception_loss(model(obs), walls, 2.5).backward()
        return loss.realize(*opt.schedule_step())

    losses = []
    for _ in range(steps):
        walls, obs = noisy_maps(32, 16, (0.3, 1.2), (0.15, 0.4), rng)  # (32, 16, 16) each
        losses.append(step(Tensor(obs[:, None]), Tensor(walls[:, None].astype(np.float32))).item())
    return losses


def _losses(got, steps: int, case: str) -> list[float]:
    try:
        losses = [float(v.item() if isinstance(v, Tensor) else v) for v in got]
    except (TypeError, ValueError):
        raise ExerciseFailed(
            f"Exercise 2: for {case}, expected a list of {steps} losses (floats), got "
            f"{type(got).__name__}.\nhint: append loss.item() after every step and return the list."
        ) from None
    if len(losses) != steps or not np.all(np.isfinite(losses)):
        raise ExerciseFailed(
            f"Exercise 2: for {case}, expected {steps} finite losses, one a step, got "
            f"{len(losses)}: {losses[:3]}..."
        )
    return losses


def _training_cases() -> list[Case]:
    """A short run that only has to take its steps, then the run whose net is judged; they differ
    in the network's initial weights, the number of steps and the seed of the batches."""
    cases = []
    for init, steps, seed in [(1, 6, 1), (0, 60, 0)]:
        Tensor.manual_seed(init)
        model = Perception()
        Tensor.realize(*get_parameters(model))
        name = f"a fresh Perception (weights from seed {init}), steps={steps}, seed={seed}"
        cases.append(Case(name, {"model": model, "steps": steps, "seed": seed}))
    return cases


def _train(fn: Callable, case: Case) -> list[float]:
    """Run the learner's loop on the case's model; its losses, after checking the weights moved."""
    model, steps = case["model"], case["steps"]
    before = [p.numpy().copy() for p in get_parameters(model)]
    got = run_learner("Exercise 2", fn, InPlace(model), steps, case["seed"])
    losses = _losses(got, steps, case.name)
    after = get_parameters(model)
    if all(np.array_equal(a, p.numpy()) for a, p in zip(before, after, strict=True)):
        raise ExerciseFailed(
            f"Exercise 2: for {case.name}, the model's weights did not change.\nhint: build the "
            "optimizer on get_parameters(model), and call opt.step() after loss.backward(), inside "
            "Context(TRAINING=1)."
        )
    return losses


@checker("Exercise 2", cases=_training_cases)
def check_training(fn: Callable[[Perception, int, int], list[float]]) -> str:
    """`fn(model, steps, seed)` trains `model` in place and returns one loss a step. A short run
    must take its steps; the long one passes when the loss falls (the last 10 steps average under
    85% of the first 10) and the trained net beats `obs > 0.5` on accuracy and on wall recall on
    32 unseen 16x16 maps at noise 0.8."""
    short, judged = _training_cases()
    _train(fn, short)
    losses = _train(fn, judged)
    model, steps = judged["model"], judged["steps"]
    first, last = float(np.mean(losses[:10])), float(np.mean(losses[-10:]))
    if not last < 0.85 * first:
        raise ExerciseFailed(
            f"Exercise 2: for {judged.name}, the loss went from {first:.3f} (first 10 steps) to "
            f"{last:.3f} (last 10), not below 85% of where it started."
        )
    walls, obs = noisy_maps(32, 16, 0.8, (0.15, 0.4), np.random.default_rng(10_000))
    net_acc, net_rec = wall_metrics(model.perceive(obs) > 0.5, walls)
    thr_acc, thr_rec = wall_metrics(threshold_walls(obs), walls)
    if net_acc <= thr_acc or net_rec <= thr_rec:
        raise ExerciseFailed(
            f"Exercise 2: for {judged.name}, your net reads unseen maps at noise 0.8 with "
            f"accuracy {net_acc:.3f} and wall recall {net_rec:.3f}; thresholding gets "
            f"{thr_acc:.3f} and {thr_rec:.3f}, and the net has to beat both."
        )
    return (
        f"loss {first:.3f} -> {last:.3f} in {steps} steps; at noise 0.8 the net reads walls with "
        f"accuracy {net_acc:.3f} and recall {net_rec:.3f} (thresholding {thr_acc:.3f}, "
        f"{thr_rec:.3f})."
    )


def reference_mean_filter(obs: Tensor) -> Tensor:
    """Exercise 3: each cell replaced by the mean of its 3x3 neighbourhood, zeros outside the map."""
    return obs.conv2d(Tensor.ones(1, 1, 3, 3) / 9, padding=1)  # (B, 1, H, W) -> (B, 1, H, W)


def _numpy_mean_filter(obs: np.ndarray) -> np.ndarray:
    """The 3x3 mean as a sum of nine shifted copies of the zero-padded map, in float64."""
    H, W = obs.shape[-2:]
    padded = np.pad(obs.astype(np.float64), [(0, 0)] * (obs.ndim - 2) + [(1, 1), (1, 1)])
    return sum(padded[..., r : r + H, c : c + W] for r in range(3) for c in range(3)) / 9


def _filter_cases() -> list[Case]:
    rng = np.random.default_rng(2)
    return [
        Case("obs = ones of shape (1, 1, 4, 5): edges see zeros", {"obs": np.ones((1, 1, 4, 5))}),
        Case("obs of shape (2, 1, 6, 7), normal", {"obs": rng.standard_normal((2, 1, 6, 7))}),
    ]


@checker("Exercise 3", needs_tensor=True, cases=_filter_cases)
def check_mean_filter(fn: Callable[[Tensor], Tensor]) -> str:
    """`fn(obs)` averages every 3x3 neighbourhood of ``(B, 1, H, W)`` obs (zeros outside)."""
    for case in _filter_cases():
        obs = case["obs"].astype(np.float32)
        got = run_learner("Exercise 3", fn, Tensor(obs))
        if not isinstance(got, Tensor):
            raise ExerciseFailed(
                f"Exercise 3: for {case.name}, you returned {type(got).__name__}, expected a "
                "Tensor.\nhint: stay in tinygrad: conv2d with a (1, 1, 3, 3) weight of 1/9 and "
                "padding=1, or the nine shifted copies of the zero-padded map divided by 9."
            )
        compare("Exercise 3", case.name, _numpy_mean_filter(obs), got)
    walls, noisy = noisy_maps(32, 16, 0.8, (0.15, 0.4), np.random.default_rng(3))
    smoothed = run_learner("Exercise 3", fn, Tensor(noisy[:, None])).numpy()[:, 0]  # (32, 16, 16)
    raw_acc, _ = wall_metrics(threshold_walls(noisy), walls)
    smooth_acc, _ = wall_metrics(threshold_walls(smoothed), walls)
    return (
        f"at noise 0.8, thresholding the smoothed map is right on {smooth_acc:.1%} of cells "
        f"against {raw_acc:.1%} for the raw observation."
    )
