"""Laziness and kernel fusion, made visible: which kernels a computation runs, and what they cost.

Building tinygrad tensors only records a graph; realizing it cuts the graph into kernels, fusing
elementwise work into its neighbours. This module counts, names and shows those kernels, compares a
computation realized once with the same computation realized after every operation (what TinyJit
and BEAM change is measured in `minigpt.timing`). Taught in the lesson "Lazy tensors and kernel fusion".

How the kernels are seen: tinygrad's ``run_linear`` (``tinygrad.engine.realize``) hands every call
it executes to ``track_stats``, the function that feeds ``GlobalCounters`` and the ``DEBUG=2`` lines.
`kernel_report` wraps it for the duration of one function call, so eager kernels and kernels
replayed by a TinyJit are seen the same way, without parsing printed output.
"""

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from tinygrad import Device, GlobalCounters, Tensor, TinyJit
from tinygrad.engine import realize
from tinygrad.helpers import to_tuple
from tinygrad.uop.ops import Ops, UOp

Step = Callable[[Tensor], Tensor]  # the callback `compare_fused_unfused` hands to `build`


def check_callable(fn: object, name: str) -> None:
    if not callable(fn):
        raise TypeError(
            f"{name} must be callable, got {type(fn).__name__} {fn!r}.\n"
            f"help: pass a function, e.g. {name}=lambda: (a @ b).realize()"
        )


def _executed(call: UOp) -> Iterator[UOp]:
    """The single calls inside one executed call: a GPU graph (a batch of kernels) is opened up."""
    ast = call.src[0]
    if ast.op is Ops.CUSTOM_FUNCTION and ast.arg == "graph":
        for inner in ast.src[0].src:
            yield from _executed(inner)
    else:
        yield call


@contextlib.contextmanager
def _recording() -> Iterator[list[UOp]]:
    """Collect every call tinygrad executes (with statistics on) while the block runs."""
    calls: list[UOp] = []
    original = realize.track_stats

    def track_and_record(ctx, call, start, times):
        if ctx.update_stats:
            calls.extend(_executed(call))
        return original(ctx, call, start, times)

    realize.track_stats = track_and_record
    try:
        yield calls
    finally:
        realize.track_stats = original


def _synchronize(calls: list[UOp]) -> None:
    """Wait for the devices that ran `calls`: GPU kernels are launched asynchronously."""
    devices = {d for c in calls if c.src[1:] for d in to_tuple(c.src[1].device)}
    for device in devices or {Device.DEFAULT}:
        Device[device].synchronize()


def _kernel_name(call: UOp) -> str:
    ast = call.src[0]
    return ast.arg.function_name if ast.op is Ops.PROGRAM else str(ast.arg or ast.op.name)


@dataclass(frozen=True)
class KernelReport:
    """What one call of a function ran: compute kernels (copies counted apart), work and time."""

    kernels: int  # compute kernels executed, buffer copies not included
    names: list[str]  # kernel names in run order: r_ = has a reduction, E_ = elementwise
    flops: int  # floating-point operations, as tinygrad estimates them (GlobalCounters.global_ops)
    bytes: int  # bytes read and written by all calls (GlobalCounters.global_mem)
    seconds: float  # wall time of the call, devices synchronized
    copies: int = 0  # buffer copies, e.g. numpy or Python lists -> device

    def __str__(self) -> str:
        return (
            f"{self.kernels} kernel(s) + {self.copies} copies, {self.flops:,} FLOPs, "
            f"{self.bytes:,} bytes, {self.seconds * 1e3:.2f} ms: {', '.join(self.names)}"
        )


def kernel_report(fn: Callable[[], object]) -> KernelReport:
    """Run ``fn()`` once and report the kernels it executed.

    `fn` must realize what it computes (``.realize()``, ``.numpy()``, an optimizer step, a TinyJit
    call). Inputs that are still lazy are computed inside `fn` and their kernels count too, so
    realize them first. Works for TinyJit functions: after two warm-up calls the report lists the
    replayed kernels.
    """
    check_callable(fn, "fn")
    ops_before, mem_before = GlobalCounters.global_ops, GlobalCounters.global_mem
    with _recording() as calls:
        start = time.perf_counter()
        fn()
        _synchronize(calls)
        seconds = time.perf_counter() - start
    kernels = [c for c in calls if c.src[0].op is not Ops.COPY]
    return KernelReport(
        kernels=len(kernels),
        names=[_kernel_name(c) for c in kernels],
        flops=int(GlobalCounters.global_ops - ops_before),
        bytes=int(GlobalCounters.global_mem - mem_before),
        seconds=seconds,
        copies=len(calls) - len(kernels),
    )


@dataclass(frozen=True)
class KernelSource:
    """One generated kernel: C for the CPU (clang), CUDA C or PTX on NVIDIA, Metal on Apple."""

    name: str  # function name inside the source
    device: str  # device it ran on, e.g. "CPU"
    opts: str  # optimizations applied to the loops (upcast, unroll, ...), chosen by heuristics or BEAM
    source: str  # the text handed to the device's compiler


def kernel_sources(fn: Callable[[], object]) -> list[KernelSource]:
    """Run ``fn()`` and return the generated source of each distinct kernel it executed, in order."""
    check_callable(fn, "fn")
    with _recording() as calls:
        fn()
    programs: dict[bytes, KernelSource] = {}
    for call in calls:
        if (program := call.src[0]).op is not Ops.PROGRAM or program.key in programs:
            continue
        source = next(u.arg for u in program.src if u.op is Ops.SOURCE)
        opts = ", ".join(
            f"{o.op.name}(axis={o.axis}, {o.arg})" for o in program.src[0].arg.applied_opts
        )
        device = to_tuple(call.src[1].device)[0]
        programs[program.key] = KernelSource(program.arg.function_name, device, opts, source)
    return list(programs.values())


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


@dataclass(frozen=True)
class FusionComparison:
    """One computation realized once at the end (fused) vs after every operation (unfused)."""

    fused: KernelReport
    unfused: KernelReport
    max_abs_diff: float  # largest |fused - unfused| over the result's elements
    results_match: bool  # whether the two results agree within the tolerances asked for

    @property
    def kernels_saved(self) -> int:
        return self.unfused.kernels - self.fused.kernels

    @property
    def bytes_saved(self) -> int:
        return self.unfused.bytes - self.fused.bytes

    def table(self) -> str:
        """A small text table for a lesson: both variants and the unfused/fused ratios."""
        rows = [("fused", self.fused), ("unfused", self.unfused)]
        lines = [f"{'':16}{'kernels':>9}{'bytes':>12}{'FLOPs':>13}{'replay ms':>10}"]
        for label, r in rows:
            lines.append(
                f"{label:16}{r.kernels:>9}{r.bytes:>12,}{r.flops:>13,}{r.seconds * 1e3:>10.3f}"
            )
        f, u = self.fused, self.unfused
        ratios = [_ratio(u.kernels, f.kernels), _ratio(u.bytes, f.bytes)]
        ratios += [_ratio(u.flops, f.flops), _ratio(u.seconds, f.seconds)]
        lines.append(
            f"{'unfused / fused':16}"
            + "".join(f"{r:>{w}}" for r, w in zip(ratios, (9, 12, 13, 10), strict=True))
        )
        lines.append(
            f"results match: {self.results_match} (max |difference| {self.max_abs_diff:.3g})"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return (
            f"fusion saves {self.kernels_saved} of {self.unfused.kernels} kernels and "
            f"{self.bytes_saved:,} of {self.unfused.bytes:,} bytes moved"
        )


def compare_fused_unfused(
    build: Callable[[Step], Tensor], *, repeats: int = 3, rtol: float = 1e-5, atol: float = 1e-5
) -> FusionComparison:
    """Realize ``build(step)`` fused and unfused, and compare kernels, bytes, time and results.

    `build` writes the computation once, wrapping each operation's result in ``step(...)``:
    ``lambda step: step(step(step(a @ b.T) + a).sum())``. The fused run passes a ``step`` that does
    nothing, so one graph is realized at the end; the unfused run passes ``Tensor.realize``, so every
    operation becomes its own kernel with its result written to memory. Kernels, bytes and FLOPs
    come from one eager call. Times are the median of `repeats` TinyJit replays (after the compile
    and capture calls), so they measure the kernels and their launches, not Python building and
    scheduling the graph, which would cost more than such small kernels on every eager call.
    """
    check_callable(build, "build")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}.\nhelp: use repeats=3")

    def measure(step: Step) -> tuple[KernelReport, np.ndarray]:
        def run_once() -> Tensor:
            if not isinstance(out := build(step), Tensor):
                raise TypeError(
                    f"build must return a Tensor, got {type(out).__name__}.\n"
                    "help: return the final tensor, e.g. lambda step: step(step(a @ b) + a)"
                )
            return out.realize()

        results: list[Tensor] = []
        eager = kernel_report(lambda: results.append(run_once()))  # compiles; counts the work
        jitted = TinyJit(run_once)
        replays = [kernel_report(jitted) for _ in range(repeats + 2)][2:]  # compile, capture
        seconds = statistics.median(r.seconds for r in replays)
        report = KernelReport(
            eager.kernels, eager.names, eager.flops, eager.bytes, seconds, eager.copies
        )
        return report, results[0].numpy()

    fused, fused_value = measure(lambda t: t)
    unfused, unfused_value = measure(lambda t: t.realize())
    diff = float(np.max(np.abs(fused_value.astype(np.float64) - unfused_value), initial=0.0))
    match = bool(np.allclose(fused_value, unfused_value, rtol=rtol, atol=atol))
    return FusionComparison(fused, unfused, diff, match)
