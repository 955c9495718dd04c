"""Tuned kernels: BEAM search's choices, found once and shipped, applied with no search (lesson 7).

tinygrad turns every kernel's loops into C with a few optimisation choices (which axes to unroll,
upcast into vectors, ...). By default hand-written heuristics pick them at once; BEAM search
(`BEAM=1`) times many candidates instead and is faster on the MiniGPT step, but searching costs
minutes. The choices do not depend on the data, only on the kernel, so they were searched once for
the course's model shapes and stored in `tuned_kernels.json`: {kernel key: [[op, axis, arg], ...]},
where the key is the hash of the kernel's graph (no data, no machine details).

The choices are applied in a scope: inside `with stored_choices():` a hook in tinygrad's compile
step gives every CPU kernel found in the table its stored choices; every other kernel keeps the
heuristics, nothing is searched, and leaving the block puts tinygrad back as it was. The compiled
steps (`minigpt.compiled`: training, evaluation, sampling) compile inside that scope, so building a
model changes nothing in tinygrad. `use_stored_choices(False)` is the switch that makes every scope
keep the heuristics, `use_stored_choices(True, path)` turns it back on (with another table). A
choice needing more threads than this machine has is skipped, and a kernel whose stored choices
do not fit it (a table edited, or made for another tinygrad) falls back to the heuristics with
one warning. `python -m minigpt.tuning_search`
(or `make tune`) searches again for other shapes or another machine and merges the results into
the table.
"""

import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from tinygrad.codegen import to_program
from tinygrad.codegen.opt import KernelOptError, Opt, OptOps
from tinygrad.device import Device
from tinygrad.engine import realize
from tinygrad.helpers import NOOPT
from tinygrad.uop.ops import Ops, UOp

from course.files import write_atomic

TABLE_PATH = Path(__file__).with_name("tuned_kernels.json")
Table = dict[str, tuple[Opt, ...]]  # kernel key (hex) -> choices to apply, in order


@dataclass
class TuningStatus:
    """What the stored choices are doing: on or off, their table, how often they were used."""

    enabled: bool  # the scopes apply the stored choices (the switch, use_stored_choices)
    path: str | None  # the table in use
    kernels: int  # kernels in the table
    hits: int  # kernels compiled with stored choices so far
    misses: int  # CPU kernels compiled inside a scope with the heuristics (not in the table)
    hooked: bool  # the hook sits in tinygrad's compile step right now (inside a scope)


class _State:
    on = True  # the switch: the scopes apply the table
    table: Table | None = None  # loaded on first use
    path: Path = TABLE_PATH
    hits = misses = 0
    original: Callable[[UOp], UOp] | None = None  # tinygrad's compile step, which the hook calls
    unfit: set[str] = set()  # kernel keys whose stored choices failed to apply: heuristics


def kernel_key(sink: UOp) -> str:
    """The table key of a kernel: the hash of its graph as the default path schedules it."""
    return sink.replace(arg=replace(sink.arg, beam=0, opts_to_apply=None)).key.hex()


def load_table(path: str | Path = TABLE_PATH) -> Table:
    """Read a table of tuned kernels; a ValueError names the file and what is wrong with it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        kernels = data["kernels"]
        if not isinstance(kernels, dict):
            raise TypeError(f"'kernels' must map kernel keys to choices, got {kernels!r:.60}")
        return {
            _key(key): tuple(_opt(key, choice) for choice in opts) for key, opts in kernels.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
        raise ValueError(
            f"cannot read the tuned-kernel table {path}: {type(error).__name__}: {error}.\n"
            "help: regenerate it with `make tune` (python -m minigpt.tuning_search), or call "
            "minigpt.tuning.use_stored_choices(False) to use tinygrad's default heuristics."
        ) from None


def _key(key: str) -> str:
    if not (len(key) == 64 and all(c in "0123456789abcdef" for c in key)):
        raise ValueError(f"kernel key {key!r:.70} is not a 64-digit hex hash")
    return key


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _opt(key: str, choice: object) -> Opt:
    """One stored choice ``[op, axis, arg]``: an OptOps name, an int (or null) axis, an int, a list
    of ints or null argument; anything else is refused here rather than inside the compiler."""
    if not (isinstance(choice, list) and len(choice) == 3):
        raise ValueError(f"choice {choice!r:.60} of kernel {key[:12]}... is not [op, axis, arg]")
    op, axis, arg = choice
    ints = isinstance(arg, list) and all(_is_int(v) for v in arg)
    if (
        op not in OptOps.__members__
        or not (axis is None or _is_int(axis))
        or not (arg is None or _is_int(arg) or ints)
        or (op == "THREAD" and not _is_int(arg))
    ):
        raise ValueError(f"choice {choice!r:.60} of kernel {key[:12]}... is not a valid choice")
    return Opt(OptOps[op], axis, tuple(arg) if ints else arg)


def save_table(table: Table, path: str | Path, about: dict) -> None:
    """Write `table` as JSON (atomically: a temporary file, then a rename)."""
    path = Path(path)
    kernels = {k: [[o.op.name, o.axis, o.arg] for o in opts] for k, opts in sorted(table.items())}
    write_atomic(path, (json.dumps({"about": about, "kernels": kernels}, indent=0) + "\n").encode())


def call_device(call: UOp) -> str:
    """The (first) device a kernel call runs on, e.g. "CPU"."""
    return call.device if isinstance(call.device, str) else call.device[0]


def kernel_calls(linear: UOp) -> Iterator[UOp]:
    """The CPU kernels (not copies) of a schedule, as tinygrad hands it to its compile step."""
    for u in linear.toposort():
        if u.op is Ops.CALL and u.src[0].op is Ops.SINK and call_device(u).split(":")[0] == "CPU":
            yield u


def _fits(opts: tuple[Opt, ...], call: UOp) -> bool:
    """Whether this machine can apply the choices: the only machine-dependent one is how many
    threads split a loop (THREAD), which must not exceed the threads tinygrad may use here."""
    renderer = Device[call_device(call)].renderer
    most = renderer.global_max[0] if renderer.has_threads and renderer.global_max else 0
    return all(o.op is not OptOps.THREAD or o.arg <= most for o in opts)


def _with_stored_opts(linear: UOp) -> UOp:
    """The hook: give each CPU kernel found in the table its stored choices, then compile."""
    if NOOPT or not _State.on:  # optimisations off on purpose (a baseline), or the switch is off
        return _State.original(linear)
    swaps = {}
    for call in kernel_calls(linear):
        sink = call.src[0]
        if sink.arg.beam or sink.arg.opts_to_apply is not None:
            continue  # BEAM asked for explicitly, or choices already set: leave it alone
        key = kernel_key(sink)
        opts = _State.table.get(key)
        if opts is None or key in _State.unfit or not _fits(opts, call):
            _State.misses += 1
            continue
        _State.hits += 1
        stored = sink.replace(arg=replace(sink.arg, opts_to_apply=opts))
        swaps[call] = call.replace(src=(stored, *call.src[1:]))
    if not swaps:
        return _State.original(linear)
    try:
        return _State.original(linear.substitute(swaps, name="tuned kernel choices"))
    except KernelOptError:  # some stored choices fit no kernel here: find them, compile again
        pass
    for call, swapped in list(swaps.items()):
        try:
            to_program(swapped.src[0], Device[call_device(call)].renderer)
        except KernelOptError as error:
            key = kernel_key(call.src[0])
            _State.unfit.add(key)
            _State.hits, _State.misses = _State.hits - 1, _State.misses + 1
            del swaps[call]
            warnings.warn(
                f"the tuned-kernel table {_State.path} holds choices for kernel {key[:12]}... "
                f"that do not fit it ({error}); that kernel uses tinygrad's heuristics instead. "
                "Regenerate the table with `make tune` to tune it again.",
                stacklevel=2,
            )
    return _State.original(linear.substitute(swaps, name="tuned kernel choices"))


def _hooked() -> bool:
    return realize.lower_and_compile is _with_stored_opts


def _use_table(path: str | Path | None) -> None:
    path = Path(path) if path is not None else TABLE_PATH
    if _State.table is None or path != _State.path:
        _State.table, _State.path = load_table(path), path


def _wanted() -> bool:
    """The switch is on and there is a table to read (the shipped one, or the one chosen)."""
    return _State.on and (_State.table is not None or _State.path.is_file())


@contextmanager
def stored_choices() -> Iterator[TuningStatus]:
    """Compile the kernels of the block with the stored choices; on leaving, tinygrad's compile
    step is exactly what it was before. The block does nothing when the switch is off
    (`use_stored_choices(False)`) or the hook is already on (an outer block)."""
    if _hooked() or not _wanted():
        yield status()
        return
    _use_table(_State.path)
    _State.original = before = realize.lower_and_compile
    realize.lower_and_compile = _with_stored_opts
    try:
        yield status()
    finally:
        realize.lower_and_compile = before


def use_stored_choices(on: bool, path: str | Path | None = None) -> TuningStatus:
    """The switch: whether `stored_choices()` blocks apply a table (on at import, with the shipped
    table), and which one (`path`, default the shipped table). Turning it on reads the table now
    and counts hits and misses from zero; it affects the kernels compiled from now on."""
    if on:
        _State.table = None
        _State.unfit = set()
        _use_table(path)
        _State.hits = _State.misses = 0
    _State.on = on
    return status()


def status() -> TuningStatus:
    """Whether the stored choices are on, their table, and how many compiled kernels they served."""
    on = _wanted()
    if on and _State.table is None:
        _use_table(_State.path)
    return TuningStatus(
        enabled=on,
        path=str(_State.path) if on else None,
        kernels=len(_State.table or {}) if on else 0,
        hits=_State.hits,
        misses=_State.misses,
        hooked=_hooked(),
    )
