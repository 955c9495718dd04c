"""Which kernel choice is faster inside the training step: the second pass of `make tune`.

BEAM times each kernel alone, on buffers of its own. Inside the step the same kernel runs between
its neighbours, with their data in the caches, and for a few kernels BEAM's pick runs slower there
than another candidate. This pass compiles the baby GPT's training step once per candidate table,
replays the steps in turn (so that every candidate sees the same machine load), times every kernel
call by the wall clock, and keeps for each kernel the choice whose calls took least time.

With ``threads`` above 1 the steps replay on the thread pool of `minigpt.cpu_threads`, and one more
kind of candidate is worth timing: a table's own choices with the kernel's loop split into THREAD
pieces (`with_thread_split`). A split changes only which core computes which slice of the output,
so the numbers stay the same to the last bit; it pays on big kernels and costs on tiny ones.

    python -m minigpt.tuning_search --threads 2 --beam 2 --vocab 100 --keep-faster-in-step
"""

import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tinygrad import Context, Device, Tensor
from tinygrad.codegen import to_program, to_program_cache, to_program_key
from tinygrad.codegen.opt import KernelOptError, Opt, OptOps
from tinygrad.engine import realize
from tinygrad.runtime.ops_cpu import CPUProgram
from tinygrad.uop.ops import UOp

from minigpt import step_cache, tuning
from minigpt.compiled import CompiledStep, StepInputs, compile_step
from minigpt.cpu_threads import use_cpu_threads
from minigpt.model import GPTConfig, MiniGPT
from minigpt.train import TrainConfig, clip_grad_norm, cross_entropy, make_optimizer

BABY_GPT = GPTConfig(vocab_size=100, block_size=64, n_layer=4, n_head=4, n_embd=128)


def training_step(config: GPTConfig = BABY_GPT) -> CompiledStep:
    """A MiniGPT's compiled training step (forward, backward, clipping, AdamW), taking the batch
    ``x, y`` ``(B, S)`` int32 and the learning rate ``(1,)``: the step `train` compiles, as a
    function that can be replayed and timed on its own."""
    Tensor.manual_seed(0)
    model = MiniGPT(config)
    optimizer = make_optimizer(model, TrainConfig())

    @compile_step
    @Context(TRAINING=1)
    def step(x: Tensor, y: Tensor, lr: Tensor) -> Tensor:
        for opt in optimizer.optimizers:
            opt.lr = lr
        optimizer.zero_grad()
        loss = cross_entropy(model.forward(x), y).backward()
        clip_grad_norm(optimizer.params, 1.0)
        return loss.realize(*optimizer.schedule_step())

    return step


def step_batches(config: GPTConfig, batch: int, count: int, seed: int = 0) -> list[tuple]:
    """`count` random batches ``(x, y)`` of token ids ``(batch, S)`` int32 for `training_step`."""
    rng = np.random.default_rng(seed)
    S = config.block_size
    rows = rng.integers(0, config.vocab_size, (count, batch, S + 1)).astype(np.int32)
    return [(r[:, :-1], r[:, 1:]) for r in rows]


@dataclass
class Compiled:
    """A kernel as compiled in a step: its table key, and its graph with no choices applied."""

    key: str
    graph: UOp
    device: str


@contextmanager
def compiled_kernels() -> Iterator[dict[bytes, dict[str, Compiled]]]:
    """Inside the block, note every CPU kernel tinygrad compiles, by its compiled program (the
    key tinygrad's runtime cache knows it by; see `runtime_owners`). Kernels with different keys
    can compile to one program, so each program holds a dict: table key -> kernel."""
    seen: dict[bytes, dict[str, Compiled]] = defaultdict(dict)
    original = realize.lower_and_compile

    def note(linear: UOp) -> UOp:
        compiled = original(linear)
        for call in tuning.kernel_calls(linear):
            sink, device = call.src[0], tuning.call_device(call)
            program = to_program_cache.get(to_program_key(sink, Device[device].renderer))
            if program is not None:
                bare = sink.replace(arg=replace(sink.arg, beam=0, opts_to_apply=None))
                key = tuning.kernel_key(sink)
                seen[program.key][key] = Compiled(key, bare, device)
        return compiled

    realize.lower_and_compile = note
    try:
        yield seen
    finally:
        realize.lower_and_compile = original


def runtime_owners(seen: dict[bytes, dict[str, Compiled]]) -> dict[int, list[str]]:
    """id of each loaded CPU program -> the table keys of the kernels it runs, for the programs
    `compiled_kernels` saw (tinygrad loads a program once and keeps it by its key)."""
    return {
        id(runtime): list(seen[program_key])
        for (program_key, _), runtime in realize.runtime_cache.items()
        if program_key in seen
    }


@contextmanager
def kernel_clock() -> Iterator[dict[int, float]]:
    """Inside the block, add the wall time of every CPU kernel call (its pieces on the pool
    included) to the returned dict, by the id of the loaded program."""
    seconds: dict[int, float] = defaultdict(float)
    run = CPUProgram.__call__

    def timed(program, *args, **kwargs):
        start = time.perf_counter()
        result = run(program, *args, **kwargs)
        seconds[id(program)] += time.perf_counter() - start
        return result

    CPUProgram.__call__ = timed
    try:
        yield seconds
    finally:
        CPUProgram.__call__ = run


def captured_step(config: GPTConfig, batches: list[tuple], lr: np.ndarray) -> tuple:
    """A new `training_step`, compiled on the first batch and captured on the second: the step, its
    input buffers and the kernels tinygrad compiled for it (`compiled_kernels`)."""
    step, inputs = training_step(config), StepInputs()
    with step_cache.bypassed(), compiled_kernels() as seen:
        for x, y in batches[:2]:
            step(*inputs.load(x, y, lr)).item()
    return step, inputs, seen


def kernels_of_step(config: GPTConfig = BABY_GPT, batch: int = 12) -> dict[str, Compiled]:
    """The kernels of the training step (compiled here once with the table in use), by key."""
    lr = np.array([1e-3], dtype=np.float32)
    _, _, seen = captured_step(config, step_batches(config, batch, 2), lr)
    return {key: c for kernels in seen.values() for key, c in kernels.items()}


@dataclass
class StepTimes:
    """One candidate table's replays of the training step."""

    step: float  # median seconds a step
    kernels: dict[str, float]  # table key -> median seconds its calls took in a step


def time_in_step(
    tables: list[tuning.Table],
    threads: int = 1,
    replays: int = 10,
    config: GPTConfig = BABY_GPT,
    batch: int = 12,
) -> list[StepTimes]:
    """Compile the training step once per table, replay all of them in turn `replays` times on
    `threads` threads, and time the step and each kernel in it."""
    before = tuning.status()
    steps, owners = [], []
    batches = step_batches(config, batch, 3)
    lr = np.array([1e-3], dtype=np.float32)
    try:
        with tempfile.TemporaryDirectory() as folder:
            for i, table in enumerate(tables):
                path = Path(folder) / f"candidate{i}.json"
                tuning.save_table(table, path, {"candidate": i})
                tuning.use_stored_choices(True, path)
                step, inputs, seen = captured_step(config, batches, lr)
                steps.append((step, inputs))
                owners.append(runtime_owners(seen))
        use_cpu_threads(threads)
        totals = [[] for _ in tables]
        per_kernel = [defaultdict(list) for _ in tables]
        x, y = batches[2]
        for _ in range(replays):
            for i, (step, inputs) in enumerate(steps):
                args = inputs.load(x, y, lr)
                start = time.perf_counter()
                with kernel_clock() as seconds:
                    step(*args).item()
                totals[i].append(time.perf_counter() - start)
                by_key = defaultdict(float)
                for program, spent in seconds.items():
                    for key in owners[i].get(program, ()):  # a shared program: each its time
                        by_key[key] += spent
                for key, spent in by_key.items():
                    per_kernel[i][key].append(spent)
    finally:
        use_cpu_threads(1)
        tuning.use_stored_choices(before.enabled, before.path)
    return [
        StepTimes(
            statistics.median(totals[i]),
            {k: statistics.median(v) for k, v in per_kernel[i].items()},
        )
        for i in range(len(tables))
    ]


def with_thread_split(
    table: tuning.Table, kernels: dict[str, Compiled], threads: int = 2
) -> tuning.Table:
    """`table` with each of `kernels` that its choices do not split yet split into `threads`
    THREAD pieces, on the first loop that can be split (a kernel with no loop to split, or with
    no entry in `table`, keeps what it has)."""
    split = dict(table)
    for key, kernel in kernels.items():
        opts = table.get(key)
        if opts is None or any(o.op is OptOps.THREAD for o in opts):
            continue
        renderer = Device[kernel.device].renderer
        for axis in range(3):
            candidate = (*opts, Opt(OptOps.THREAD, axis, threads))
            try:
                to_program(
                    kernel.graph.replace(arg=replace(kernel.graph.arg, opts_to_apply=candidate)),
                    renderer,
                )
            except KernelOptError:
                continue
            split[key] = candidate
            break
    return split


def keep_faster(tables: list[tuning.Table], times: list[StepTimes]) -> tuple[tuning.Table, dict]:
    """The last table, with each kernel timed in every candidate's step given the choices (or
    the heuristics, where that candidate had no entry) of the candidate it ran fastest in; and
    how many kernels each candidate won."""
    best = dict(tables[-1])
    wins: dict[int, int] = defaultdict(int)
    timed = set.intersection(*(set(t.kernels) for t in times))
    for key in sorted(timed):
        winner = min(range(len(tables)), key=lambda i: times[i].kernels[key])
        wins[winner] += 1
        if key in tables[winner]:
            best[key] = tables[winner][key]
        else:
            best.pop(key, None)
    return best, dict(wins)


def faster_in_step(
    candidates: dict[str, tuning.Table],
    threads: int = 1,
    replays: int = 10,
    config: GPTConfig = BABY_GPT,
    batch: int = 12,
) -> tuple[tuning.Table, list[str]]:
    """Time the candidate tables (label -> table) in the step; the merge `keep_faster` makes of
    them (the last one's entries, each timed kernel from its fastest candidate), and one line per
    candidate saying its step time and how many kernels it won."""
    tables = list(candidates.values())
    times = time_in_step(tables, threads, replays, config, batch)
    best, wins = keep_faster(tables, times)
    lines = [
        f"{label}: {t.step * 1e3:.0f} ms a step on {threads} thread(s), fastest for "
        f"{wins.get(i, 0)} kernels"
        for i, (label, t) in enumerate(zip(candidates, times, strict=True))
    ]
    return best, lines
