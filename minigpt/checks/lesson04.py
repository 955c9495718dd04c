"""Checkers for lesson 04 · MiniGPT: the loss and the three parts of a training step.

The training-step checkers compare the learner's numpy code with the package's own training
components (`minigpt.train`: `learning_rate`, `clip_grad_norm`, `make_optimizer`) on a linear layer and a layer norm.
"""

import math
from collections.abc import Callable

import numpy as np
from tinygrad import Context, Tensor, nn
from tinygrad.nn.state import get_state_dict

from course.checks import (
    Case,
    ExerciseFailed,
    cached_copies,
    checker,
    compare,
    name_mistake,
    run_learner,
    to_numpy,
)
from minigpt.train import TrainConfig, clip_grad_norm, learning_rate, make_optimizer
from minigpt.transformer import LayerNorm

ADAM_EPS = 1e-8  # the eps of minigpt.train's AdamW


def _number(exercise: str, case: str, value, hint: str) -> float:
    """Read the learner's scalar answer, with a plain message for None or a non-number."""
    if isinstance(value, Tensor):
        value = value.numpy()
    array = np.asarray(value) if not isinstance(value, str | None) else None
    if array is None or array.size != 1 or array.dtype.kind not in "iuf":
        raise ExerciseFailed(
            f"{exercise}: for {case}, expected one number, got {value!r} "
            f"({type(value).__name__}).\nhint: {hint}"
        )
    return float(array.reshape(()))


def reference_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Exercise 1: mean of -log softmax(logits)[target] over the positions whose target is not -1."""
    logits = np.asarray(logits, dtype=np.float64)  # (B, T, V)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    scored = targets != -1  # (B, T)
    picked = np.take_along_axis(log_probs, np.where(scored, targets, 0)[..., None], -1)[..., 0]
    return float(-picked[scored].mean())


def _per_position_loss(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probs, np.where(targets != -1, targets, 0)[..., None], -1)[
        ..., 0
    ]


def _cross_entropy_cases() -> list[Case]:
    """Rows that score different numbers of positions (6, 2 and 4 of 6), so that a mean of
    per-row means differs from the mean over all scored positions; logits in the thousands;
    another shape whose targets include the first and the last class."""
    rng = np.random.default_rng(41)
    logits = rng.standard_normal((3, 6, 5)) * 3  # (B, T, V)
    targets = rng.integers(0, 5, (3, 6))
    uneven = targets.copy()
    uneven[1, :4] = -1  # row 1 scores 2 positions, row 2 scores 4, row 0 all 6
    uneven[2, :2] = -1
    large = logits * 300  # logits in the hundreds: exp overflows without the max shift
    other = rng.permutation(np.array([0, 6, -1, 3, 6, 0, 2, -1]))  # both end classes, 2 unscored
    return [
        Case(name, {"logits": lg, "targets": tg})
        for name, lg, tg in [
            ("logits (3, 6, 5), all targets scored", logits, targets),
            ("logits (3, 6, 5), rows scoring 6, 2 and 4 positions (the rest -1)", logits, uneven),
            ("logits of size up to ~3000, rows scoring 6, 2 and 4 positions", large, uneven),
            (
                "logits (2, 4, 7), targets of classes 0 and 6 among others, two of them -1",
                rng.standard_normal((2, 4, 7)) * 2,
                other.reshape(2, 4),
            ),
        ]
    ]


@checker("Exercise 1", cases=_cross_entropy_cases)
def check_cross_entropy(fn: Callable) -> str:
    """`fn(logits, targets)`: mean cross-entropy over the targets that are not -1 (numpy in);
    rtol 1e-6."""
    for item in _cross_entropy_cases():
        case, lg, tg = item.name, item["logits"], item["targets"]
        got = run_learner("Exercise 1", fn, lg, tg)
        hint = "return one number: the mean of -log p(target) over the positions with target != -1."
        shape = got.shape if isinstance(got, Tensor) else np.shape(got)
        if isinstance(got, np.ndarray | Tensor | list | tuple) and math.prod(shape) != 1:
            raise ExerciseFailed(
                f"Exercise 1: for {case}, expected one number, got an array of shape "
                f"{tuple(shape)}.\nhint: {hint}"
            )
        expected = reference_cross_entropy(lg, tg)
        with np.errstate(all="ignore"):
            got = _number("Exercise 1", case, got, hint)
        scored = tg != -1
        losses = np.where(scored, _per_position_loss(lg, tg), 0.0)  # (B, T)
        mistakes = {
            f"the loss is averaged over all {tg.size} positions; only the {scored.sum()} scored "
            "ones count: divide the sum by (targets != -1).sum().": losses.sum() / tg.size,
            "this is the mean of each row's mean; rows score different numbers of positions, "
            "so average over all scored positions at once: sum the losses of the scored "
            "positions, divide by their count.": (losses.sum(1) / scored.sum(1)).mean(),
        }
        compare("Exercise 1", case, expected, got, mistakes, rtol=1e-6)
    return "matches numpy, with unevenly masked rows and with very large logits."


def reference_learning_rate(step: int, config: TrainConfig) -> float:
    """Exercise 2: linear warmup to lr over `warmup` steps, then a cosine from lr to min_lr."""
    if step < config.warmup:
        return config.lr * (step + 1) / (config.warmup + 1)
    progress = min(1.0, (step - config.warmup) / (config.steps - config.warmup))
    return config.min_lr + (config.lr - config.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def _schedule_variants(step: int, c: TrainConfig) -> dict[str, float]:
    progress = min(1.0, (step - c.warmup) / (c.steps - c.warmup))
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    if step < c.warmup:
        return {
            "the warmup starts at 0: step 0 must already train, so use lr * (step + 1) / "
            "(warmup + 1).": c.lr * step / c.warmup,
            "the warmup is missing: the rate rises linearly from lr / (warmup + 1) to lr over "
            "the first `warmup` steps.": reference_learning_rate(c.warmup, c),
        }
    return {
        "the cosine ends at 0; it ends at min_lr: min_lr + (lr - min_lr) * 0.5 * (1 + cos(pi p)).": (
            c.lr * cosine
        ),
        "the cosine runs over all `steps`; it starts after the warmup: p = (step - warmup) / "
        "(steps - warmup).": c.min_lr
        + (c.lr - c.min_lr) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / c.steps))),
        "the cosine is upside down: it starts at lr and falls, 0.5 * (1 + cos(pi p)).": (
            c.min_lr + (c.lr - c.min_lr) * 0.5 * (1 - math.cos(math.pi * progress))
        ),
    }


def _schedule_cases() -> list[Case]:
    """Configurations that differ in every value the schedule reads (min_lr is not lr / 10 in
    all of them), at steps in the warmup, at its end, in the cosine and past the end."""
    configs = [
        TrainConfig(steps=100, warmup=10, lr=1e-3, min_lr=1e-4),
        TrainConfig(steps=40, warmup=0, lr=3e-3, min_lr=7e-4),
        TrainConfig(steps=64, warmup=5, lr=2e-3, min_lr=5e-5),
    ]
    cases = []
    for c in configs:
        steps = (0, 4, c.warmup - 1, c.warmup, c.warmup + 7, 55, 99, 100, c.steps + 9)
        for step in sorted({s for s in steps if 0 <= s <= c.steps + 9}):
            name = (
                f"step {step} of TrainConfig(steps={c.steps}, warmup={c.warmup}, lr={c.lr}, "
                f"min_lr={c.min_lr})"
            )
            read = {f"config.{k}": getattr(c, k) for k in ("steps", "warmup", "lr", "min_lr")}
            cases.append(Case(name, {"step": step, "config": c} | read))
    return cases


@checker("Exercise 2", cases=_schedule_cases)
def check_learning_rate(fn: Callable) -> str:
    """`fn(step, config)` = minigpt.train.learning_rate(step, config) at chosen steps; rtol 1e-6
    (a float32 computation passes)."""
    cases = _schedule_cases()
    for case in cases:
        step, config = case["step"], case["config"]
        hint = "return the rate as a Python float."
        got = run_learner("Exercise 2", fn, step, config)
        got = _number("Exercise 2", case.name, got, hint)
        expected = learning_rate(step, config)
        mistakes = {  # in units of lr: name_mistake's tolerance is absolute
            k: v / config.lr
            for k, v in _schedule_variants(step, config).items()
            if not math.isclose(v, expected, rel_tol=1e-6)
        }
        name_mistake("Exercise 2", case.name, got / config.lr, expected / config.lr, mistakes)
        compare("Exercise 2", case.name, expected, got, rtol=1e-6, atol=0)
    return (
        f"your schedule equals minigpt.train.learning_rate at {len(cases)} steps of three configs."
    )


def reference_clip_scale(grads: list[np.ndarray], max_norm: float) -> float:
    """Exercise 3: the factor every gradient is multiplied by so that their global L2 norm (all
    tensors together) is at most max_norm: min(1, max_norm / (norm + 1e-6))."""
    norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
    return min(1.0, max_norm / (norm + 1e-6))


def _clip_cases() -> list[Case]:
    """Global norms above and below max_norm, two lists of gradient shapes, and a max_norm so
    small that the 1e-6 beside the norm changes the scale."""
    rng = np.random.default_rng(43)
    cases = []
    for shapes, size, max_norm in [
        ([(3, 4), (4,), (2, 2, 2)], 2.0, 1.0),
        ([(3, 4), (4,), (2, 2, 2)], 0.05, 1.0),
        ([(5,), (2, 3)], 1.0, 0.5),
        ([(5,), (2, 3)], 2e-6, 1e-6),
    ]:
        grads = [(rng.standard_normal(s) * size).astype(np.float32) for s in shapes]
        name = f"gradients of shapes {shapes} (entries about {size}), max_norm={max_norm}"
        cases.append(Case(name, {"grads": grads, "max_norm": max_norm}))
    return cases


@checker("Exercise 3", cases=_clip_cases)
def check_clip_scale(fn: Callable) -> str:
    """`fn(grads, max_norm)` = the scale minigpt.train.clip_grad_norm applies; rtol 1e-5."""
    for case in _clip_cases():
        grads, max_norm = case["grads"], case["max_norm"]
        params = [Tensor.zeros(*g.shape).contiguous() for g in grads]
        for p, g in zip(params, grads, strict=True):
            p.grad = Tensor(g)
        norm = float(clip_grad_norm(params, max_norm).item())
        expected = float(params[0].grad.numpy().ravel()[0] / grads[0].ravel()[0])
        hint = "return one number, the factor: min(1, max_norm / (norm + 1e-6))."
        got = _number("Exercise 3", case.name, run_learner("Exercise 3", fn, grads, max_norm), hint)
        norms = [float(np.linalg.norm(g)) for g in grads]
        mistakes = {
            "the norm is the sum of the tensors' norms; the global norm is sqrt of the sum of "
            "ALL squared entries.": min(1.0, max_norm / (sum(norms) + 1e-6)),
            "the scale grows gradients whose norm is below max_norm: clipping only shrinks, "
            "so take min(1, ...).": max_norm / (norm + 1e-6),
            "the norm is missing its square root.": min(1.0, max_norm / (norm**2 + 1e-6)),
            "this clips by the largest tensor's norm, not the global norm of all tensors "
            "together.": min(1.0, max_norm / (max(norms) + 1e-6)),
        }
        compare("Exercise 3", case.name, expected, got, mistakes, rtol=1e-5, atol=0)
    return "your scale equals clip_grad_norm's, for norms above and below max_norm."


def reference_adamw_update(param, grad, m, v, t: int, lr: float, config: TrainConfig):
    """Exercise 4: one AdamW update of one tensor at step t (1, 2, ...); returns (param, m, v).

    Decoupled weight decay (lr * weight_decay * param) on tensors with 2 or more dims only.
    Paper: https://arxiv.org/abs/1711.05101
    """
    param, grad = np.asarray(param, dtype=np.float64), np.asarray(grad, dtype=np.float64)
    b1, b2 = config.betas
    m = b1 * np.asarray(m) + (1 - b1) * grad  # first moment: a running mean of the gradient
    v = b2 * np.asarray(v) + (1 - b2) * grad**2  # second moment: of its square
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)  # bias correction: both start at 0
    decay = config.weight_decay if param.ndim >= 2 else 0.0
    return param - lr * (m_hat / (np.sqrt(v_hat) + ADAM_EPS) + decay * param), m, v


def _adamw_variant(param, grad, m, v, t, lr, config, mistake: str):
    b1, b2 = config.betas
    wd = config.weight_decay
    if mistake == "coupled":  # L2 regularisation: the decay goes through the moments
        grad = grad + (wd * param if param.ndim >= 2 else 0.0)
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad**2
    m_hat, v_hat = (m, v) if mistake == "no-correction" else (m / (1 - b1**t), v / (1 - b2**t))
    decay = wd if (param.ndim >= 2 or mistake == "decay-all") and mistake != "coupled" else 0.0
    step = m_hat / (
        np.sqrt(v_hat + ADAM_EPS) if mistake == "eps-inside" else np.sqrt(v_hat) + ADAM_EPS
    )
    if mistake == "decay-without-lr":
        return param - lr * step - decay * param, m, v
    return param - lr * (step + decay * param), m, v


_ADAMW_MISTAKES = {
    "decay-all": "weight decay is applied to every tensor; biases and LayerNorm weights (fewer "
    "than 2 dims) are not decayed.",
    "no-correction": "the bias correction is missing: divide m by (1 - beta1^t) and v by "
    "(1 - beta2^t); both moments start at 0 and are too small in the first steps.",
    "coupled": "the decay is added to the gradient (L2 regularisation, Adam); AdamW decouples "
    "it: param - lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * param).",
    "decay-without-lr": "the weight decay is not multiplied by the learning rate.",
    "eps-inside": "eps is inside the square root: sqrt(v_hat) + eps.",
}


class _LinearAndNorm:
    """A linear layer and a layer norm: a matrix that AdamW decays and three vectors it does not."""

    def __init__(self):
        self.linear = nn.Linear(5, 3)
        self.norm = LayerNorm(3)


# Two optimizer settings that differ in every number the update reads (betas, weight decay, and
# through the schedule the learning rates); grad_clip only shapes the gradients handed over.
ADAMW_CONFIGS = (
    TrainConfig(steps=10, warmup=2, lr=2e-2, min_lr=2e-3, weight_decay=0.1, grad_clip=0.5),
    TrainConfig(
        steps=12, warmup=1, lr=1e-2, min_lr=3e-3, betas=(0.8, 0.95), weight_decay=0.3, grad_clip=1.0
    ),
)


@cached_copies
def _reference_run(which: int) -> tuple:
    """Step a linear layer's and a layer norm's parameters with minigpt.train's optimizer, clipping
    and schedule, under ``ADAMW_CONFIGS[which]``.

    The gradients are random (seeded), set directly: the update rule does not care where they
    came from, and skipping the forward and backward passes keeps the check fast.
    """
    Tensor.manual_seed(44 + which)
    model = _LinearAndNorm()  # make_optimizer only reads the state dict
    config = ADAMW_CONFIGS[which]
    state = get_state_dict(model)
    names = list(state)
    optimizer = make_optimizer(model, config)
    rng = np.random.default_rng(44 + which)
    start = {n: t.numpy().astype(np.float64) for n, t in state.items()}
    grads, rates, after = [], [], []
    with Context(TRAINING=1):
        for step in range(3):  # three steps: the bias correction changes every step
            for name, t in state.items():  # wide-ranging gradients: sizes 0.01 to 1 by tensor,
                # and 1e-8 on the last, where Adam's eps (1e-8 beside sqrt(v_hat)) shows
                size = 1e-8 if name == names[-1] else 10 ** rng.uniform(-2, 0)
                t.grad = Tensor((rng.standard_normal(t.shape) * size).astype(np.float32))
            clip_grad_norm(optimizer.params, config.grad_clip)
            grads.append({n: state[n].grad.numpy().astype(np.float64) for n in names})
            rates.append(learning_rate(step, config))
            for opt in optimizer.optimizers:
                opt.lr = Tensor([rates[-1]])
            optimizer.step()
            after.append({n: t.numpy().astype(np.float64) for n, t in state.items()})
    return config, names, start, grads, rates, after


def _adamw_cases() -> list[Case]:
    """Every step of both settings, with the parameters, gradients and moments of every tensor
    that a right update carries into it (the moments from the float64 update rule)."""
    cases = []
    for which in range(len(ADAMW_CONFIGS)):
        config, names, start, grads, rates, after = _reference_run(which)
        params = start
        m = {n: np.zeros_like(start[n]) for n in names}
        v = {n: np.zeros_like(start[n]) for n in names}
        for step, (g, lr) in enumerate(zip(grads, rates, strict=True)):
            name = (
                f"step {step + 1} of AdamW with betas={config.betas}, weight_decay="
                f"{config.weight_decay}, lr={lr:.4g}"
            )
            values = {
                "param": params,
                "grad": g,
                "m": m,
                "v": v,
                "t": step + 1,
                "lr": lr,
                "config": config,
                "config.betas": config.betas,
                "config.weight_decay": config.weight_decay,
            }
            cases.append(Case(name, values | {"expected": after[step]}))
            updated = {n: reference_adamw_update(params[n], g[n], m[n], v[n], step + 1, lr, config)
                       for n in names}  # fmt: skip
            m, v = ({n: updated[n][i] for n in names} for i in (1, 2))
            params = after[step]
    return cases


@checker("Exercise 4", cases=_adamw_cases)
def check_adamw_update(fn: Callable) -> str:
    """`fn(param, grad, m, v, t, lr, config)` -> (param, m, v), run on every tensor of a linear
    layer and a layer norm for 3 steps of two optimizer settings, with the clipped gradients and
    rates of minigpt.train: the parameters must follow minigpt.train's AdamW; rtol 1e-4 plus 1e-4
    of the tensor's largest entry."""
    for case in _adamw_cases():
        g, t, lr, config, expected = (case[k] for k in ("grad", "t", "lr", "config", "expected"))
        if t == 1:  # a new setting: the learner's own parameters and moments are carried from here
            params, m, v = case["param"], case["m"], case["v"]
            variants = {k: (dict(params), dict(m), dict(v)) for k in _ADAMW_MISTAKES}
        for name in case["param"]:
            where = f"{name} (shape {params[name].shape}) at {case.name}"
            got = run_learner(
                "Exercise 4", fn, params[name], g[name], m[name], v[name], t, lr, config
            )
            if not (isinstance(got, tuple | list) and len(got) == 3):
                raise ExerciseFailed(
                    f"Exercise 4: for {where}, expected a triple (param, m, v), got "
                    f"{type(got).__name__}.\nhint: return new_param, new_m, new_v"
                )
            for k, (vp, vm, vv) in variants.items():
                vp[name], vm[name], vv[name] = _adamw_variant(
                    vp[name], g[name], vm[name], vv[name], t, lr, config, k
                )
            mistakes = {_ADAMW_MISTAKES[k]: vp[name] for k, (vp, _, _) in variants.items()}
            scale = float(np.abs(expected[name]).max())
            compare(
                "Exercise 4", where, expected[name], got[0], mistakes, rtol=1e-4, atol=1e-4 * scale
            )
            params[name], m[name], v[name] = (to_numpy(a) for a in got)
    return (
        f"all tensors follow minigpt.train's AdamW for 3 steps of {len(ADAMW_CONFIGS)} settings "
        "(betas, weight decay and learning rates differ)."
    )
