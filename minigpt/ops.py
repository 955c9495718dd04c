"""Custom operations and how to trust their gradients: finite differences against autograd.

Activations are built from tinygrad primitives (exp, tanh, erf, max, sum), so tinygrad derives
their backward pass; `elementwise_kernel` goes one level lower and writes the forward and the
backward loops itself as UOp kernels (``Tensor.custom_kernel``, an alpha API in tinygrad 0.14),
with the backward attached through ``grad_fxn``. Either way `gradcheck` compares the gradient
tinygrad computes with central differences in float64. Taught in the lesson "Custom operations
and gradient checking".
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tinygrad import Tensor, dtypes
from tinygrad.uop.ops import KernelInfo, UOp

ScalarFn = Callable[[UOp], UOp]  # one element in, one element out, written with UOp arithmetic


def _check_float_tensor(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{name} must be a tinygrad Tensor, got {type(x).__name__}.\nhelp: wrap it: Tensor({name})"
        )
    if not dtypes.is_float(x.dtype):
        raise TypeError(
            f"{name} must have a floating-point dtype, got {x.dtype}.\n"
            f"help: convert it first: {name}.float() (or .cast(dtypes.float64))"
        )
    if x.device is None:  # Tensor(2.0): a constant with no buffer, never given a gradient
        raise TypeError(
            f"{name} is a constant made from a Python number (no device), got {x!r}.\n"
            f"help: make it a one-element tensor instead: Tensor([2.0])"
        )
    return x


# 1) activations from primitives: tinygrad differentiates them for us


def swish(x: Tensor) -> Tensor:
    """Swish / SiLU: x * sigmoid(x) (https://arxiv.org/abs/1710.05941)."""
    return x * (1 / (1 + (-x).exp()))


def gelu_tanh(x: Tensor) -> Tensor:
    """GELU, the tanh approximation used by GPT-2 (https://arxiv.org/abs/1606.08415)."""
    return 0.5 * x * (1 + (math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)).tanh())


def gelu_erf(x: Tensor) -> Tensor:
    """GELU from its definition, x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).

    tinygrad's ``Tensor.erf`` is the Abramowitz-Stegun 7.1.26 polynomial, accurate to 1.5e-7, so
    this matches the exact GELU to about 1e-7 (float32 resolution), not to float64 precision.
    """
    return 0.5 * x * (1 + (x / math.sqrt(2)).erf())


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)) along `axis`, stable for large inputs.

    Subtracting the maximum first keeps exp() from overflowing; the shift cancels in the result,
    so it is detached (its gradient would be zero anyway).
    """
    shifted = x - x.max(axis=axis, keepdim=True).detach()
    return shifted - shifted.exp().sum(axis=axis, keepdim=True).log()


# 2) a hand-written kernel with a hand-written backward


def _sigmoid(v: UOp) -> UOp:
    return 1 / (1 + (-v).exp())


def swish_uop(v: UOp) -> UOp:
    """Swish of one element, for use inside a kernel."""
    return v * _sigmoid(v)


def swish_grad_uop(v: UOp) -> UOp:
    """d swish / dv = s (1 + v (1 - s)) with s = sigmoid(v)."""
    s = _sigmoid(v)
    return s * (1 + v * (1 - s))


def _map_kernel(f: Callable[..., UOp], name: str) -> Callable[..., UOp]:
    """A kernel that loops over every element: out[i] = f(in_0[i], in_1[i], ...)."""

    def kernel(out: UOp, *inputs: UOp) -> UOp:
        i = UOp.range(out.numel(), 0)  # the loop the C source shows as `for (`
        value = f(*(x.flatten()[i] for x in inputs))
        return out.flatten()[i].store(value).end(i).sink(arg=KernelInfo(name=name))

    return kernel


def elementwise_kernel(x: Tensor, f: ScalarFn, df: ScalarFn, name: str = "custom") -> Tensor:
    """Apply ``f`` to every element of `x` in one hand-written kernel; the backward is ``g * df(x)``.

    `f` and `df` receive one element as a UOp and use UOp arithmetic (``+ * /``, ``.exp()``,
    ``.log()``, ``.sqrt()``). tinygrad cannot look inside a custom kernel, so the backward is a
    second custom kernel, attached with ``grad_fxn``; `gradcheck` tells whether `df` is right.
    """
    x = _check_float_tensor(x, "x")
    if not (callable(f) and callable(df)):
        raise TypeError(
            f"f and df must be callables taking a UOp, got {type(f).__name__} and "
            f"{type(df).__name__}.\nhelp: pass e.g. f=swish_uop, df=swish_grad_uop"
        )

    def backward(grad_out: UOp, call: UOp) -> tuple[UOp | None, UOp]:
        _, x_in = call.src[1:]  # the call's sources: (output buffer, x)
        grad_x = Tensor.empty(*x_in.shape, dtype=x_in.dtype, device=x_in.device).uop
        kernel = _map_kernel(lambda g, v: g * df(v), f"{name}_backward")
        return None, grad_x.custom_kernel(grad_out, x_in, fxn=kernel)[0]

    out = Tensor.empty(*x.shape, dtype=x.dtype, device=x.device)
    return out.custom_kernel(x, fxn=_map_kernel(f, name), grad_fxn=backward)[0]


def swish_kernel(x: Tensor) -> Tensor:
    """Swish as one hand-written forward kernel and one hand-written backward kernel."""
    return elementwise_kernel(x, swish_uop, swish_grad_uop, name="swish")


# 3) checking gradients


@dataclass(frozen=True)
class GradCheck:
    """Largest disagreement between tinygrad's gradient and central differences, and where."""

    max_rel_error: float  # |analytic - numeric| / max(|analytic|, |numeric|, floor)
    input_index: int  # which input holds the worst element
    index: tuple[int, ...]  # its position in that input
    analytic: float  # tinygrad's gradient there
    numeric: float  # the finite-difference estimate there (float64)
    checked: int  # how many elements were perturbed

    def __str__(self) -> str:
        return (
            f"max relative error {self.max_rel_error:.2e} at input {self.input_index}{list(self.index)}: "
            f"autograd {self.analytic:.8g} vs finite differences {self.numeric:.8g} "
            f"({self.checked} elements checked)"
        )


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    *,
    eps: float = 1e-5,
    floor: float = 1e-2,
    seed: int = 0,
    max_elements: int = 2048,
) -> GradCheck:
    """Compare tinygrad's gradient of `fn` at `inputs` with central finite differences.

    The output is reduced to a scalar with fixed random weights, L = sum(w * fn(*inputs)), so every
    output element's gradient takes part. Autograd runs in the inputs' own dtype; the finite
    differences (L(x + eps) - L(x - eps)) / 2 eps run in float64, one element at a time, so `fn`
    must also accept float64 tensors (all ops here do). Gradients smaller than `floor` are compared
    as if they were `floor`, so a tiny gradient does not turn rounding into a huge ratio.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}.\nhelp: pass e.g. fn=swish")
    if isinstance(inputs, Tensor) or not isinstance(inputs, Sequence) or not inputs:
        raise TypeError(
            f"inputs must be a non-empty list of Tensors, got {type(inputs).__name__}.\n"
            "help: pass a list even for one input: gradcheck(swish, [x])"
        )
    for i, x in enumerate(inputs):
        _check_float_tensor(x, f"inputs[{i}]")
    if eps <= 0 or floor <= 0:
        raise ValueError(
            f"eps and floor must be positive, got eps={eps}, floor={floor}.\nhelp: eps=1e-5"
        )
    if (total := sum(x.numel() for x in inputs)) > max_elements:
        raise ValueError(
            f"inputs have {total} elements; each needs two evaluations of fn (max_elements="
            f"{max_elements}).\nhelp: check on small inputs, e.g. shape (4, 5)"
        )

    out = fn(*inputs)
    if not isinstance(out, Tensor) or not dtypes.is_float(out.dtype):
        raise TypeError(
            f"fn must return a floating-point Tensor, got {out!r}.\nhelp: return fn's result"
        )
    # float32-representable weights, so both sides reduce with exactly the same numbers
    weights = np.random.default_rng(seed).standard_normal(out.shape).astype(np.float32)
    loss = (out * Tensor(weights).cast(out.dtype)).sum()
    analytic = [g.numpy().astype(np.float64) for g in loss.gradient(*inputs)]

    points = [x.numpy().astype(np.float64) for x in inputs]
    weights64 = Tensor(weights.astype(np.float64))

    def loss64() -> float:
        return (fn(*[Tensor(p, dtype=dtypes.float64) for p in points]) * weights64).sum().item()

    worst = GradCheck(0.0, 0, (), 0.0, 0.0, total)
    for k, point in enumerate(points):
        for index in np.ndindex(point.shape):
            original = point[index]
            point[index] = original + eps
            above = loss64()
            point[index] = original - eps
            below = loss64()
            point[index] = original
            numeric, auto = (above - below) / (2 * eps), float(analytic[k][index])
            error = abs(auto - numeric) / max(abs(auto), abs(numeric), floor)
            if not np.isfinite(error):  # a NaN or inf gradient is the worst possible answer
                error = float("inf")
            if error >= worst.max_rel_error:
                worst = GradCheck(error, k, tuple(int(j) for j in index), auto, numeric, total)
    return worst
