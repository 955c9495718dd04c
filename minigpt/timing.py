"""What a call costs: the first call against later ones, eager against TinyJit, tinygrad's
heuristics against a BEAM search (lessons 5 and 7).

A first call schedules, writes and compiles its kernels; later calls find them in caches. TinyJit
captures the kernels of a step once and replays them without the Python that built them; BEAM
searches for faster kernel variants and remembers them on disk. Every measurement here goes through
`minigpt.fusion.kernel_report`, so it counts the kernels it times.
"""

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tinygrad import Context, Tensor, TinyJit
from tinygrad.helpers import CACHEDB

from minigpt.fusion import KernelReport, KernelSource, check_callable, kernel_report, kernel_sources


@dataclass(frozen=True)
class CallTimes:
    """Wall times of repeated calls: the first pays for scheduling and compiling, later ones less."""

    first_s: float  # call 1
    median_s: float  # median of calls 2..n
    seconds: list[float]  # every call, in order


def time_calls(fn: Callable[[], object], n: int = 5) -> CallTimes:
    """Call ``fn()`` `n` times (devices synchronized after each) and time every call."""
    check_callable(fn, "fn")
    if n < 2:
        raise ValueError(
            f"n must be at least 2 (a first call and a later one), got {n}.\nhelp: n=5"
        )
    seconds = [kernel_report(fn).seconds for _ in range(n)]
    return CallTimes(seconds[0], statistics.median(seconds[1:]), seconds)


@dataclass(frozen=True)
class JitComparison:
    """The same step run eagerly (scheduled on every call) and under TinyJit (replayed)."""

    eager: KernelReport  # the last eager call
    jit: KernelReport  # the last jitted call: a replay of the captured kernels
    eager_times: CallTimes
    jit_times: CallTimes  # call 1 runs Python and compiles, call 2 captures, calls 3.. replay

    def table(self) -> str:
        e, j, et, jt = self.eager, self.jit, self.eager_times, self.jit_times
        return "\n".join(
            [
                f"{'':8}{'kernels/step':>13}{'first call s':>14}{'2nd call s':>12}{'step ms':>10}",
                f"{'eager':8}{e.kernels:>13}{et.first_s:>14.3f}{et.seconds[1]:>12.3f}"
                f"{et.median_s * 1e3:>10.2f}",
                f"{'TinyJit':8}{j.kernels:>13}{jt.first_s:>14.3f}{jt.seconds[1]:>12.3f}"
                f"{statistics.median(jt.seconds[2:]) * 1e3:>10.2f}",
            ]
        )


def _check_tensors(args: tuple, name: str) -> None:
    for i, arg in enumerate(args):
        if not isinstance(arg, Tensor):
            raise TypeError(
                f"{name}[{i}] must be a tinygrad Tensor, got {type(arg).__name__}.\n"
                f"help: wrap arrays with Tensor(array)"
            )


def jit_comparison(step: Callable[..., object], *args: Tensor, n: int = 5) -> JitComparison:
    """Run ``step(*args)`` `n` times as it is, then `n` times wrapped in a fresh ``TinyJit``.

    Without the JIT every call rebuilds the graph, schedules and looks up its kernels in Python;
    TinyJit runs the Python once more to capture the kernel list, then replays only the kernels
    (same count, less overhead). The eager calls run first and compile every kernel, so the JIT's
    first call shows its capture overhead, not compilation; `time_calls` on a fresh process shows
    the compile cost. `step` must return the Tensor(s) it computes and must not be a
    TinyJit itself; its side effects (an optimizer step) happen on every eager call.
    """
    check_callable(step, "step")
    _check_tensors(args, "args")
    if n < 3:
        raise ValueError(f"n must be at least 3 (TinyJit replays from call 3), got {n}.\nhelp: n=5")
    if args:
        Tensor.realize(*args)  # inputs computed once, outside both measurements

    def eager_step() -> None:
        out = step(*args)
        outs = [out] if isinstance(out, Tensor) else [t for t in out if isinstance(t, Tensor)]
        Tensor.realize(*outs)

    jitted = TinyJit(step)
    eager = [kernel_report(eager_step) for _ in range(n)]
    jit = [kernel_report(lambda: jitted(*args)) for _ in range(n)]

    def times(reports: list[KernelReport]) -> CallTimes:
        seconds = [r.seconds for r in reports]
        return CallTimes(seconds[0], statistics.median(seconds[1:]), seconds)

    return JitComparison(eager[-1], jit[-1], times(eager), times(jit))


def beam_cache_path() -> Path:
    """The sqlite file where tinygrad keeps BEAM search results and compiled kernels.

    ``$CACHEDB`` when set, else ``$XDG_CACHE_HOME/tinygrad/cache.db``, else
    ``~/.cache/tinygrad/cache.db`` (``~/Library/Caches`` on macOS). Every tinygrad process of the
    user shares it, so a search paid once is a cache hit for later runs with the same kernel
    shapes on this machine. Delete the file to start over; don't copy it to other machines.
    """
    return Path(CACHEDB)


@dataclass(frozen=True)
class BeamComparison:
    """A single matmul compiled with tinygrad's heuristics and with a BEAM search."""

    size: int  # the matmul is (size, size) @ (size, size)
    beam: int  # search width
    default_times: CallTimes  # call 1, then the median over TinyJit replays (calls 3..n+2)
    beam_times: CallTimes  # first call includes the search unless the cache already had it
    default_kernel: KernelSource
    beam_kernel: KernelSource
    max_abs_diff: float  # largest |BEAM result - numpy float64 result|

    def table(self) -> str:
        rows = [
            ("heuristics", self.default_times, self.default_kernel),
            (f"BEAM={self.beam}", self.beam_times, self.beam_kernel),
        ]
        lines = [f"{'':11}{'first call s':>13}{'replay ms':>11}  kernel (optimizations)"]
        for label, t, k in rows:
            lines.append(
                f"{label:11}{t.first_s:>13.3f}{t.median_s * 1e3:>11.3f}  {k.name} ({k.opts})"
            )
        return "\n".join(lines)


def beam_comparison(
    size: int = 64, beam: int = 1, n: int = 5, *, use_cache: bool = True
) -> BeamComparison:
    """Time a (size, size) matmul with the default heuristics and with ``Context(BEAM=beam)``.

    BEAM replaces the hand-written optimization heuristics with a search: for every new kernel it
    compiles and times candidate loop transformations (upcasts, unrolls, local sizes), `beam` best
    kept per round. That costs seconds per kernel (minutes for a whole model) on the first call and
    nothing afterwards: the choice is stored in `beam_cache_path` and in memory for this process.
    ``use_cache=False`` (``CACHELEVEL=0``) neither reads nor writes the disk cache, so a new process
    always pays the search. Each variant runs under a TinyJit: call 1 compiles (and searches),
    call 2 captures, then `n` replays are timed, so replay times compare the kernels themselves.
    """
    if size < 1 or beam < 1 or n < 1:
        raise ValueError(
            f"size, beam and n must be positive, got size={size}, beam={beam}, n={n}.\n"
            "help: keep BEAM demos small, e.g. size=64, beam=1"
        )
    a, b = Tensor.rand(size, size).realize(), Tensor.rand(size, size).realize()  # (size, size)

    def measure(**context: int) -> tuple[CallTimes, KernelSource, np.ndarray]:
        # a TinyJit replay costs little more than the kernel itself, so the step times compare kernels
        with Context(**context):
            jitted = TinyJit(lambda: a @ b)
            first = kernel_report(jitted).seconds  # schedules, compiles and, with BEAM, searches
            capture = kernel_report(jitted).seconds
            replays = [kernel_report(jitted).seconds for _ in range(n)]
            kernel = kernel_sources(jitted)[0]
            value = jitted().numpy()
        times = CallTimes(first, statistics.median(replays), [first, capture, *replays])
        return times, kernel, value

    default_times, default_kernel, _ = measure(BEAM=0)
    beam_context = {"BEAM": beam} if use_cache else {"BEAM": beam, "CACHELEVEL": 0}
    beam_times, beam_kernel, value = measure(**beam_context)
    expected = a.numpy().astype(np.float64) @ b.numpy().astype(np.float64)
    diff = float(np.max(np.abs(value - expected)))
    return BeamComparison(size, beam, default_times, beam_times, default_kernel, beam_kernel, diff)
