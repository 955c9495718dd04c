"""Searching the tuned kernels: BEAM over MiniGPT's training and sampling kernels (`make tune`).

The runtime half, `minigpt.tuning`, only reads the table; this module fills it. It trains a model
for a few steps and samples from it under `Context(BEAM=...)`, records what the search picked for
every CPU kernel it compiled, and merges that into `tuned_kernels.json`. Costs minutes per shape.

    python -m minigpt.tuning_search                      # the baby GPT, vocabularies 100 and 65
    python -m minigpt.tuning_search --vocab 65 --beam 2  # a wider search
"""

import argparse
import os
import platform
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from tinygrad import Context, Device
from tinygrad.codegen import to_program_cache, to_program_key
from tinygrad.engine import realize
from tinygrad.uop.ops import UOp

from minigpt.compiled import generate
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
    **config: int,
) -> Table:
    """BEAM-search the kernels of training (3 steps) and sampling for the given shapes; save them.

    `config` holds GPTConfig fields (n_layer, n_head, n_embd, block_size); each vocabulary size
    gets its own model; `sampling=False` skips the kernels of `generate` (batch 1). With `merge`
    the entries already in the table at `path` are kept unless searched again.
    """
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
                generate(model, tokens[None, :1], S + 2, seed=0, use_cache=use_cache)
        table.update(found)
        save_table(table, path, about)  # after each shape: an interrupted search keeps its work
    return table


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
    main()
