"""Searching the tuned kernels: BEAM over MiniGPT's training and sampling kernels (`make tune`).

The runtime half, `minigpt.tuning`, only reads the table; this module fills it. It trains a model
for a few steps and samples from it under `Context(BEAM=...)`, records what the search picked for
every CPU kernel it compiled, and merges that into `tuned_kernels.json`. Costs minutes per shape.

    python -m minigpt.tuning_search                      # the baby GPT, vocabularies 100 and 65
    python -m minigpt.tuning_search --vocab 65 --beam 2  # a wider search
    python -m minigpt.tuning_search --threads 2          # THREAD pieces timed on two cores

With ``threads`` above 1 every candidate is timed with the thread pool of `minigpt.cpu_threads`
on, so a choice that splits a kernel into THREAD pieces is timed running them at the same time
(tinygrad's own CPU runtime runs them one after another, so BEAM would see no gain in a split).
"""

import argparse
import json
import os
import platform
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from tinygrad import Context, Device
from tinygrad.codegen import to_program_cache, to_program_key
from tinygrad.engine import realize
from tinygrad.uop.ops import UOp

from course.device import describe_cpu
from minigpt import step_cache
from minigpt import tuning_in_step as in_step
from minigpt.compiled import generate
from minigpt.cpu_threads import use_cpu_threads
from minigpt.model import GPTConfig, MiniGPT
from minigpt.train import TrainConfig, train
from minigpt.tuning import (
    TABLE_PATH,
    Table,
    call_device,
    kernel_calls,
    kernel_key,
    load_table,
    save_table,
    status,
    use_stored_choices,
)


@contextmanager
def recording() -> Iterator[Table]:
    """Collect the choices tinygrad makes for every CPU kernel compiled inside the block.

    Run a computation under `Context(BEAM=1)` inside it to record what the search picked (kernels
    compiled without a search are skipped); the table it yields fills as kernels compile. The
    stored choices are off inside the block, so every kernel is searched afresh.
    """
    found: Table = {}
    before = status()
    use_stored_choices(False)
    original = realize.lower_and_compile
    realize.lower_and_compile = _recorder(original, found)
    try:
        yield found
    finally:
        realize.lower_and_compile = original
        use_stored_choices(before.enabled, before.path)


def _recorder(original: Callable[[UOp], UOp], found: Table) -> Callable[[UOp], UOp]:
    """tinygrad's compile step, storing each searched kernel's choices in `found`."""

    def record(linear: UOp) -> UOp:
        compiled = original(linear)
        for call in kernel_calls(linear):
            if not (sink := call.src[0]).arg.beam:
                continue  # compiled with the heuristics (not searched): nothing to store
            renderer = Device[call_device(call)].renderer
            program = to_program_cache.get(to_program_key(sink, renderer))
            if program is not None:
                found[kernel_key(sink)] = tuple(program.src[0].arg.applied_opts)
        return compiled

    return record


def search(
    vocab_sizes: tuple[int, ...] = (100, 65),
    batch_size: int = 12,
    beam: int = 1,
    path: str | Path = TABLE_PATH,
    merge: bool = True,
    sampling: bool = True,
    threads: int = 1,
    command: str | None = None,
    **config: int,
) -> Table:
    """BEAM-search the kernels of training (3 steps) and sampling for the given shapes; save them.

    `config` holds GPTConfig fields (n_layer, n_head, n_embd, block_size); each vocabulary size
    gets its own model; `sampling=False` skips the kernels of `generate` (batch 1). With `merge`
    the entries already in the table at `path` are kept unless searched again. `threads` is the
    size of the thread pool the candidates run on while they are timed (1: no pool). The table
    says how it was made: the machine, the shapes, `command`, and what the table merged into said.
    """
    merging = merge and Path(path).is_file()
    table = load_table(path) if merging else {}
    about = {
        "tinygrad": "0.14.0",
        "device": "CPU (clang)",
        "beam": beam,
        "threads": threads,
        "machine": f"{platform.machine()}, {describe_cpu()}",
        "shapes": {"vocab_sizes": list(vocab_sizes), "batch_size": batch_size, **config},
    }
    if command:
        about["command"] = command
    if merging:
        earlier = json.loads(Path(path).read_text(encoding="utf-8")).get("about", {})
        about["merged_into"] = {k: v for k, v in earlier.items() if k != "merged_into"}
    for vocab_size in vocab_sizes:
        model = MiniGPT(GPTConfig(vocab_size=vocab_size, **config))
        S = model.config.block_size
        tokens = np.random.default_rng(0).integers(0, vocab_size, 20 * S * batch_size)
        steps = TrainConfig(steps=3, warmup=0, batch_size=batch_size, eval_batches=1)
        with searching(threads) as found, Context(BEAM=beam):
            train(model, tokens, tokens, steps, progress=False)
            for use_cache in (True, False) if sampling else ():
                generate(model, tokens[None, :1], S + 2, seed=0, use_cache=use_cache)
        table.update(found)
        save_table(table, path, about)  # after each shape: an interrupted search keeps its work
    return table


@contextmanager
def searching(threads: int) -> Iterator[Table]:
    """`recording()`, with every step compiled afresh and every candidate timed on `threads`
    threads: no stored step, and no search result remembered by tinygrad (its BEAM cache, in
    CACHELEVEL's disk cache, would hand back a choice timed without the pool)."""
    use_cpu_threads(threads)
    try:
        with step_cache.bypassed(), recording() as found, Context(CACHELEVEL=0):
            yield found
    finally:
        use_cpu_threads(1)


def main(argv: list[str] | None = None) -> None:
    """`python -m minigpt.tuning_search`: search for the given shapes and merge into the table."""
    parser = argparse.ArgumentParser(
        prog="python -m minigpt.tuning_search",
        description="Search kernel choices (BEAM) for MiniGPT shapes and store them for reuse.",
    )
    parser.add_argument("--vocab", type=int, nargs="+", default=[100, 65], help="vocabulary sizes")
    parser.add_argument("--batch-size", type=int, default=12, help="training batch size")
    parser.add_argument("--block-size", type=int, default=64, help="context length")
    parser.add_argument("--n-layer", type=int, default=4, help="transformer blocks")
    parser.add_argument("--n-head", type=int, default=4, help="attention heads")
    parser.add_argument("--n-embd", type=int, default=128, help="channels")
    parser.add_argument("--beam", type=int, default=1, help="beam width (2 is slower to search)")
    parser.add_argument(
        "--threads", type=int, default=1, help="time the candidates on this many threads"
    )
    parser.add_argument("--out", default=str(TABLE_PATH), help="table to write (merged into)")
    parser.add_argument("--fresh", action="store_true", help="replace the table, do not merge")
    parser.add_argument("--no-sampling", action="store_true", help="tune training kernels only")
    parser.add_argument(
        "--keep-faster-in-step",
        action="store_true",
        help="then time the table before, the search's and (with --threads) both split into "
        "THREAD pieces inside the baby GPT's step, and keep each kernel's fastest",
    )
    parser.add_argument("--replays", type=int, default=10, help="steps timed per candidate")
    args = parser.parse_args(argv)
    # search only what the compiled steps replay, not the one-off kernels of their first call
    os.environ.setdefault("IGNORE_JIT_FIRST_BEAM", "1")
    before = load_table(args.out) if Path(args.out).is_file() and not args.fresh else {}
    found = search(
        tuple(args.vocab),
        batch_size=args.batch_size,
        beam=args.beam,
        path=args.out,
        merge=not args.fresh,
        sampling=not args.no_sampling,
        threads=args.threads,
        command=" ".join(["python -m minigpt.tuning_search", *(argv or sys.argv[1:])]),
        block_size=args.block_size,
        n_layer=args.n_layer,
        n_head=args.n_head,
        n_embd=args.n_embd,
    )
    if args.keep_faster_in_step:
        shapes = dict(n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd)
        model = GPTConfig(vocab_size=args.vocab[0], block_size=args.block_size, **shapes)
        found = keep_faster_in_step(
            before, found, args.out, args.threads, args.replays, model, args.batch_size
        )
    print(f"{len(found)} kernels in {args.out}")


def keep_faster_in_step(
    before: Table,
    searched: Table,
    path: str | Path,
    threads: int,
    replays: int,
    model: GPTConfig = in_step.BABY_GPT,
    batch_size: int = 12,
) -> Table:
    """The second pass (`minigpt.tuning_in_step`): of the table before the search, the search's
    and, with `threads` > 1, each of them split into THREAD pieces, keep for every kernel of
    `model`'s training step the choice that ran fastest inside it; save the result to `path`."""
    candidates = {"table before": before}
    if threads > 1:
        kernels = in_step.kernels_of_step(model, batch_size)
        candidates["table before, split"] = in_step.with_thread_split(before, kernels, threads)
        candidates["search, split"] = in_step.with_thread_split(searched, kernels, threads)
    candidates["search"] = searched  # last: the entries of kernels not timed come from it
    best, lines = in_step.faster_in_step(candidates, threads, replays, model, batch_size)
    print("\n".join(lines))
    about = json.loads(Path(path).read_text(encoding="utf-8"))["about"]
    about["in_step"] = {"threads": threads, "replays": replays, "candidates": lines}
    save_table(best, path, about)
    return best


if __name__ == "__main__":
    main()
