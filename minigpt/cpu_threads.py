"""Both cores for one kernel: a thread pool for the pieces of a CPU kernel (lesson 7).

tinygrad may split a CPU kernel's outermost loop into THREAD pieces: the kernel gets a `core_id`
argument and each piece computes its own slice of the output. tinygrad 0.14's CPU runtime then
calls the pieces one after another on one core. `use_cpu_threads(2)` runs them on a pool
instead: the calling thread runs piece 0, pool threads run the others at the same time (a
compiled kernel is a C function, and ctypes lets go of Python's lock while it runs), and the
call returns when every piece is done. The pieces write disjoint slices, so the results are the
same to the last bit; only the time changes.

Off by default: lessons and tests run on one core per process (test workers use the others).
tinygrad's heuristics split big kernels in as many pieces as the machine has cores (144 of the
baby GPT step's 484 kernel calls). The shipped table of tuned kernels was searched with the pool
on, and keeps a split only where it ran faster inside the step (93 calls; `minigpt.tuning_in_step`).
"""

import ctypes
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tinygrad.runtime.ops_cpu import CPUProgram

_sequential_call = CPUProgram.__call__  # tinygrad's own: one piece after the other


class _State:
    pool: ThreadPoolExecutor | None = None
    threads = 1
    pooled = 0  # kernel calls whose pieces ran on the pool


@dataclass
class ThreadsStatus:
    """How CPU kernels run now."""

    threads: int  # threads that run the pieces of one kernel (1: tinygrad's own loop)
    pooled_calls: int  # kernel calls run on the pool so far


def _pooled_call(self: CPUProgram, *bufs, global_size=(1, 1, 1), vals=(), wait=False, **kwargs):
    """CPUProgram.__call__ with the THREAD pieces run at the same time."""
    pieces, slot = global_size[0], self.runtimevars.get("core_id")
    if _State.pool is None or pieces <= 1 or slot is None or self.lvp:
        return _sequential_call(
            self, *bufs, global_size=global_size, vals=vals, wait=wait, **kwargs
        )
    start = time.perf_counter()
    args = [*(b.va_addr for b in bufs), *vals]

    def run(piece: int) -> None:
        call_args = list(args)
        call_args[slot] = piece
        self.fxn(*(ctypes.c_uint64(a) for a in call_args))

    others = [_State.pool.submit(run, piece) for piece in range(1, pieces)]
    run(0)
    for done in others:
        done.result()  # waits, and raises what a piece raised
    _State.pooled += 1
    return time.perf_counter() - start if wait else None


def use_cpu_threads(threads: int) -> ThreadsStatus:
    """The switch: run each CPU kernel's THREAD pieces on `threads` threads (1 = tinygrad's own
    one-after-another loop). It takes effect for the next kernel call, compiled or cached."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(
            f"threads={threads!r}; expected a positive int.\n"
            "help: use_cpu_threads(2) for two cores, use_cpu_threads(1) to turn the pool off."
        )
    if _State.pool is not None:
        _State.pool.shutdown()
        _State.pool = None
    if threads > 1:
        _State.pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="cpu-kernel")
    CPUProgram.__call__ = _pooled_call if threads > 1 else _sequential_call
    _State.threads = threads
    return status()


def status() -> ThreadsStatus:
    return ThreadsStatus(threads=_State.threads, pooled_calls=_State.pooled)
