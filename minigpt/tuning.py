"""Tuned kernels: BEAM search's choices, found once and shipped, applied with no search (lesson 7).

tinygrad turns every kernel's loops into C with a few optimisation choices (which axes to unroll,
upcast into vectors, ...). By default hand-written heuristics pick them at once; BEAM search
(`BEAM=1`) times many candidates instead and is ~3x faster on the MiniGPT step, but searching costs
minutes. The choices do not depend on the data, only on the kernel, so they were searched once for
the course's model shapes and stored in `tuned_kernels.json`: {kernel key: [[op, axis, arg], ...]},
where the key is the hash of the kernel's graph (no data, no machine details).

`enable()` installs a hook in tinygrad's compile step: a CPU kernel whose key is in the table gets
the stored choices, every other kernel keeps the default heuristics, and nothing is ever searched.
Building a MiniGPT enables it unless `disable()` was called. The keys do not depend on the
machine, and the choices apply on any CPU (a choice needing more threads than this machine has is
skipped); they were timed on a 2-core x86-64 CPU, so another CPU may prefer others. The shipped
table (~180 kernels, ~20 KB) took ~20 minutes of `BEAM=1` search on that machine, under load.
`python -m minigpt.tuning` (or `make tune`) searches again for other shapes or another machine
and merges the results into the table; nothing else ever searches.
"""

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from tinygrad.codegen import to_program_cache, to_program_key
from tinygrad.codegen.opt import Opt, OptOps
from tinygrad.device import Device
from tinygrad.engine import realize
from tinygrad.helpers import NOOPT
from tinygrad.uop.ops import Ops, UOp

TABLE_PATH = Path(__file__).with_name("tuned_kernels.json")
Table = dict[str, tuple[Opt, ...]]  # kernel key (hex) -> choices to apply, in order


@dataclass
class TuningStatus:
    """What the hook is doing: where its table came from and how often it was used."""

    enabled: bool  # the hook is installed
    path: str | None  # the table in use
    kernels: int  # kernels in the table
    hits: int  # kernels compiled with stored choices since enable()
    misses: int  # CPU kernels compiled with the default heuristics (not in the table)


class _State:
    table: Table = {}
    path: Path | None = None
    hits = misses = 0
    user_disabled = False  # disable() was called: building a model does not turn it back on
    original: Callable[[UOp], UOp] | None = None  # tinygrad's lower_and_compile while hooked


def kernel_key(sink: UOp) -> str:
    """The table key of a kernel: the hash of its graph as the default path schedules it."""
    return sink.replace(arg=replace(sink.arg, beam=0, opts_to_apply=None)).key.hex()


def load_table(path: str | Path = TABLE_PATH) -> Table:
    """Read a table of tuned kernels; a ValueError names the file and what is wrong with it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        kernels = data["kernels"]
        return {
            key: tuple(Opt(OptOps[op], axis, _arg(arg)) for op, axis, arg in opts)
            for key, opts in kernels.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(
            f"cannot read the tuned-kernel table {path}: {type(error).__name__}: {error}.\n"
            "help: regenerate it with `make tune` (python -m minigpt.tuning), or call "
            "minigpt.tuning.disable() to use tinygrad's default heuristics."
        ) from None


def _arg(arg: object) -> int | tuple | None:
    return tuple(arg) if isinstance(arg, list) else arg


def save_table(table: Table, path: str | Path, about: dict) -> None:
    """Write `table` as JSON (atomically: a temporary file, then a rename)."""
    path = Path(path)
    kernels = {k: [[o.op.name, o.axis, o.arg] for o in opts] for k, opts in sorted(table.items())}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"about": about, "kernels": kernels}, indent=0) + "\n")
    os.replace(tmp, path)


def _is_cpu_kernel(call: UOp) -> bool:
    device = call.device if isinstance(call.device, str) else call.device[0]
    return call.src[0].op is Ops.SINK and device.split(":")[0] == "CPU"


def _kernel_calls(linear: UOp) -> Iterator[UOp]:
    return (u for u in linear.toposort() if u.op is Ops.CALL and _is_cpu_kernel(u))


def _fits(opts: tuple[Opt, ...], call: UOp) -> bool:
    """Whether this machine can apply the choices: the only machine-dependent one is how many
    threads split a loop (THREAD), which must not exceed the threads tinygrad may use here."""
    device = call.device if isinstance(call.device, str) else call.device[0]
    renderer = Device[device].renderer
    most = renderer.global_max[0] if renderer.has_threads and renderer.global_max else 0
    return all(o.op is not OptOps.THREAD or o.arg <= most for o in opts)


def _with_stored_opts(linear: UOp) -> UOp:
    """The hook: give each CPU kernel found in the table its stored choices, then compile."""
    if NOOPT:  # optimisations switched off on purpose (a lesson's baseline): respect that
        return _State.original(linear)
    swaps = {}
    for call in _kernel_calls(linear):
        sink = call.src[0]
        if sink.arg.beam or sink.arg.opts_to_apply is not None:
            continue  # BEAM asked for explicitly, or choices already set: leave it alone
        opts = _State.table.get(kernel_key(sink))
        if opts is None or not _fits(opts, call):
            _State.misses += 1
            continue
        _State.hits += 1
        stored = sink.replace(arg=replace(sink.arg, opts_to_apply=opts))
        swaps[call] = call.replace(src=(stored, *call.src[1:]))
    if swaps:
        linear = linear.substitute(swaps, name="tuned kernel choices")
    return _State.original(linear)


def _install(hook: Callable[[UOp], UOp]) -> None:
    if _State.original is None:
        _State.original = realize.lower_and_compile
    realize.lower_and_compile = hook


def _uninstall() -> None:
    if _State.original is not None:
        realize.lower_and_compile = _State.original
        _State.original = None


def enable(path: str | Path | None = None) -> TuningStatus:
    """Apply the stored choices from now on (from `path`, default the shipped table)."""
    table_path = Path(path) if path is not None else TABLE_PATH
    _State.table, _State.path = load_table(table_path), table_path
    _State.hits = _State.misses = 0
    _State.user_disabled = False
    _install(_with_stored_opts)
    return status()


def disable() -> TuningStatus:
    """Back to tinygrad's default heuristics for kernels compiled from now on (stays off)."""
    _uninstall()
    _State.user_disabled = True
    return status()


def enable_by_default() -> None:
    """What building a MiniGPT calls: enable once, unless the user turned tuning off (or the
    package ships no table)."""
    if _State.original is None and not _State.user_disabled and TABLE_PATH.is_file():
        enable()


def status() -> TuningStatus:
    """Whether the hook is on, its table, and how many compiled kernels it has served."""
    on = _State.original is not None and realize.lower_and_compile is _with_stored_opts
    return TuningStatus(
        enabled=on,
        path=str(_State.path) if on else None,
        kernels=len(_State.table) if on else 0,
        hits=_State.hits,
        misses=_State.misses,
    )


@contextmanager
def recording() -> Iterator[Table]:
    """Collect the choices tinygrad makes for every CPU kernel compiled inside the block.

    Run a computation under `Context(BEAM=1)` inside it to record what the search picked (kernels
    compiled without a search are skipped); the table it yields fills as kernels compile.
    """
    found: Table = {}
    was_enabled = status().enabled
    _uninstall()
    original = realize.lower_and_compile

    def record(linear: UOp) -> UOp:
        compiled = original(linear)
        for call in _kernel_calls(linear):
            if not (sink := call.src[0]).arg.beam:
                continue  # compiled with the heuristics (not searched): nothing to store
            device = call.device if isinstance(call.device, str) else call.device[0]
            program = to_program_cache.get(to_program_key(sink, Device[device].renderer))
            if program is not None:
                found[kernel_key(sink)] = tuple(program.src[0].arg.applied_opts)
        return compiled

    realize.lower_and_compile = record
    try:
        yield found
    finally:
        realize.lower_and_compile = original
        if was_enabled:
            _install(_with_stored_opts)


def search(
    vocab_sizes: tuple[int, ...] = (100, 65),
    batch_size: int = 12,
    beam: int = 1,
    path: str | Path = TABLE_PATH,
    merge: bool = True,
    sampling: bool = True,
    **config: int,
) -> Table:
    """BEAM-search the kernels of training (3 steps) and sampling for the given shapes; save them.

    `config` holds GPTConfig fields (n_layer, n_head, n_embd, block_size); each vocabulary size
    gets its own model; `sampling=False` skips the kernels of `generate` (batch 1). Costs
    minutes per shape (the search times candidates on this machine); with `merge` the entries
    already in the table at `path` are kept unless searched again.
    """
    import platform

    import numpy as np
    from tinygrad import Context

    from minigpt.model import GPTConfig, MiniGPT
    from minigpt.train import TrainConfig, train

    table = load_table(path) if merge and Path(path).is_file() else {}
    about = {
        "tinygrad": "0.14.0",
        "device": "CPU (clang)",
        "beam": beam,
        "machine": f"{platform.machine()}, {platform.processor() or 'unknown CPU'}",
        "shapes": {"vocab_sizes": list(vocab_sizes), "batch_size": batch_size, **config},
    }
    for vocab_size in vocab_sizes:
        model = MiniGPT(GPTConfig(vocab_size=vocab_size, **config))
        S = model.config.block_size
        tokens = np.random.default_rng(0).integers(0, vocab_size, 20 * S * batch_size)
        steps = TrainConfig(steps=3, warmup=0, batch_size=batch_size, eval_batches=1)
        with recording() as found, Context(BEAM=beam):
            train(model, tokens, tokens, steps, progress=False)
            for use_cache in (True, False) if sampling else ():
                model.generate(tokens[None, :1], S + 2, seed=0, use_cache=use_cache)
        table.update(found)
        save_table(table, path, about)  # after each shape: an interrupted search keeps its work
    return table


def main(argv: list[str] | None = None) -> None:
    """`python -m minigpt.tuning`: search for the given shapes and merge into the table."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m minigpt.tuning",
        description="Search kernel choices (BEAM) for MiniGPT shapes and store them for reuse.",
    )
    parser.add_argument("--vocab", type=int, nargs="+", default=[100, 65], help="vocabulary sizes")
    parser.add_argument("--batch-size", type=int, default=12, help="training batch size")
    parser.add_argument("--block-size", type=int, default=64, help="context length")
    parser.add_argument("--n-layer", type=int, default=4, help="transformer blocks")
    parser.add_argument("--n-head", type=int, default=4, help="attention heads")
    parser.add_argument("--n-embd", type=int, default=128, help="channels")
    parser.add_argument("--beam", type=int, default=1, help="beam width (2 is slower to search)")
    parser.add_argument("--out", default=str(TABLE_PATH), help="table to write (merged into)")
    parser.add_argument("--fresh", action="store_true", help="replace the table, do not merge")
    parser.add_argument("--no-sampling", action="store_true", help="tune training kernels only")
    args = parser.parse_args(argv)
    # search only what the compiled steps replay, not the one-off kernels of their first call
    os.environ.setdefault("IGNORE_JIT_FIRST_BEAM", "1")
    found = search(
        tuple(args.vocab),
        args.batch_size,
        args.beam,
        args.out,
        merge=not args.fresh,
        sampling=not args.no_sampling,
        block_size=args.block_size,
        n_layer=args.n_layer,
        n_head=args.n_head,
        n_embd=args.n_embd,
    )
    print(f"{len(found)} kernels in {args.out}")


if __name__ == "__main__":
    # run the package's copy of this module: the hook's state must be the one MiniGPT uses
    from minigpt.tuning import main as package_main

    package_main()
