"""Command line: `python -m minigpt train ...` and `python -m minigpt sample ...` (lesson 4).

python -m minigpt train --corpus python-stdlib --out runs/stdlib --steps 2000
python -m minigpt sample --ckpt runs/stdlib --prompt "def " --tokens 300 --temperature 0.8
python -m minigpt cache            (the compiled-step cache: folder, entries, size; --clear empties it)

Bad input ends with one `error:` line (exit 2) before any work starts, and a refused run leaves
nothing behind (not even the folders above --out it would have made); Ctrl-C ends with exit 130
and leaves the last complete checkpoint in place. Sizes whose memory estimate exceeds the machine
are refused up front (--max-memory-gb sets another limit).
"""

import argparse
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tinygrad import Tensor

from course.device import DeviceError, describe_device, pick_device
from course.files import check_writable
from course.limits import check_memory
from minigpt import step_cache
from minigpt.checkpoint import (
    CheckpointLock,
    foreign_entries,
    is_checkpoint,
    load_checkpoint,
    recover_interrupted_save,
)
from minigpt.compiled import generate
from minigpt.data import DEFAULT_CORPUS, CharTokenizer, load_corpus, split
from minigpt.model import GPTConfig, MiniGPT
from minigpt.sizes import sampling_bytes, training_bytes
from minigpt.train import TrainConfig, train

MODEL_FLAGS = ("n_layer", "n_head", "n_embd", "block_size", "dropout")
MAY_BE_ZERO = ("warmup", "seed", "dropout", "weight_decay", "grad_clip")  # the rest must be > 0
# Sampling appends one token at a time (about 5 ms each for the baby GPT on a 2-core CPU): a
# million tokens would take hours, so more is refused.
MAX_SAMPLE_TOKENS = 1_000_000
MEMORY_HELP = (
    "refuse a run whose memory estimate exceeds this many GiB (default 80%% of the machine)"
)


def _number(kind: type, allow_zero: bool):
    """An argparse type: a finite int or float, > 0 (or >= 0 with `allow_zero`)."""

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind.__name__}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(
                f"{text} must be {'>= 0' if allow_zero else 'positive'}"
            )
        return value

    convert.__name__ = kind.__name__  # argparse names the type in its messages
    return convert


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m minigpt", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    model_defaults, train_defaults = GPTConfig(), TrainConfig()

    t = commands.add_parser("train", help="train a character-level MiniGPT on a corpus")
    t.add_argument("--corpus", default=DEFAULT_CORPUS, help="python-stdlib, a text file or a URL")
    t.add_argument("--sha256", help="expected sha256 of the corpus file or download")
    t.add_argument("--out", required=True, help="checkpoint directory (new, empty or a checkpoint)")
    t.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    t.add_argument(
        "--force", action="store_true", help="replace the checkpoint in --out instead of resuming"
    )
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    t.add_argument("--max-memory-gb", type=_number(float, False), default=None, help=MEMORY_HELP)
    train_help = {
        "steps": "optimizer steps in total",
        "batch_size": "sequences per step",
        "lr": "peak learning rate",
        "min_lr": "learning rate at the end of the cosine decay",
        "warmup": "steps of linear warmup",
        "weight_decay": "AdamW decoupled weight decay on matrices",
        "grad_clip": "largest global gradient norm (0 = no clipping)",
        "eval_interval": "steps between validation measurements",
        "eval_batches": "batches per validation measurement",
        "checkpoint_interval": "steps between checkpoints",
        "seed": "random seed for initialisation and batches",
    }
    model_help = {name: f"model size: {name}" for name in MODEL_FLAGS}
    for defaults, helps, note in (
        (model_defaults, model_help, "; ignored with --resume"),
        (train_defaults, train_help, ""),
    ):
        for name, text in helps.items():
            default = getattr(defaults, name)
            t.add_argument(
                f"--{name.replace('_', '-')}",
                type=_number(type(default), name in MAY_BE_ZERO),
                default=default,
                help=f"{text} (default {default}{note})",
            )

    s = commands.add_parser("sample", help="generate text from a trained checkpoint")
    s.add_argument("--ckpt", required=True, help="checkpoint directory written by train")
    s.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    s.add_argument(
        "--tokens", type=_number(int, True), default=300, help="number of characters to generate"
    )
    s.add_argument(
        "--temperature",
        type=_number(float, True),
        default=0.8,
        help="0 = greedy (as is anything below 0.001), 1 = as trained",
    )
    s.add_argument(
        "--top-k", type=_number(int, False), default=None, help="sample only the k likeliest tokens"
    )
    s.add_argument(
        "--seed", type=_number(int, True), default=None, help="seed for reproducible samples"
    )
    s.add_argument("--no-cache", action="store_true", help="recompute the prefix for every token")
    s.add_argument("--max-memory-gb", type=_number(float, False), default=None, help=MEMORY_HELP)

    c = commands.add_parser("cache", help="show or empty the cache of compiled steps")
    c.add_argument("--clear", action="store_true", help="delete every compiled step in the cache")
    return parser


def run_cache(args: argparse.Namespace) -> None:
    if args.clear:
        removed = step_cache.clear()
        print(f"removed {removed} file{'s' * (removed != 1)} from {step_cache.folder()}")
    info = step_cache.info()
    print(
        f"compiled-step cache {info.folder}: {info.entries} entries, {info.bytes / 2**20:.1f} MiB "
        f"(cap {info.max_bytes / 2**20:.0f} MiB; set MINIGPT_CACHE to move it)"
    )


def check_out_path(out: Path) -> None:
    """--out must be a folder that is not the current one (saving replaces --out as a whole) and
    not a symbolic link, under a folder where its lock file and checkpoints can be written.
    Nothing is created here: a refused run leaves nothing behind."""
    here = Path.cwd().resolve()
    if out.resolve() == here or out.resolve() in here.parents:
        raise ValueError(
            f"--out {out} is the current folder or one above it; training replaces --out as a "
            "whole.\nhelp: name a new folder, e.g. --out runs/first."
        )
    if out.is_symlink():
        raise ValueError(
            f"--out {out} is a symbolic link; training replaces --out as a whole, which would "
            f"replace the link.\nhelp: name the real folder, --out {out.resolve()}."
        )
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file.\nhelp: name a folder, e.g. --out runs/first.")
    check_writable(
        out.parent, f"next to --out {out}", "choose an --out inside a folder you can write to."
    )


@contextmanager
def removing_made_folders(out: Path) -> Iterator[None]:
    """Remove the folders above `out` that the block created (the empty ones) when it fails, so
    that a refused or interrupted run leaves nothing behind."""
    missing = [p for p in out.parents if not p.exists()]  # deepest first
    try:
        yield
    except BaseException:
        for folder in missing:
            try:
                folder.rmdir()  # only an empty folder: never anything the run saved
            except OSError:
                break
        raise


def check_out_dir(out: Path, resume: bool, force: bool) -> None:
    """Refuse, before any work, an --out that training would damage or could not write."""
    if out.exists() and not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out} is not writable.\nhelp: choose a folder you can write to.")
    if recover_interrupted_save(out):
        print(f"restored {out} from .{out.name}.old, left by an interrupted save")
    if other := foreign_entries(out):
        raise ValueError(
            f"--out {out} holds files that are not part of a checkpoint "
            f"({', '.join(other[:5])}); training replaces the folder as a whole.\n"
            "help: choose a new or empty folder for --out, or move those files out "
            "(nothing was changed)."
        )
    if resume:
        if not is_checkpoint(out):
            raise ValueError(
                f"--resume but {out} holds no checkpoint.\n"
                "help: point --out at an earlier run, or start without --resume."
            )
        return
    if out.is_dir() and any(out.iterdir()) and not is_checkpoint(out):
        raise ValueError(
            f"--out {out} holds files named like a checkpoint's, but no checkpoint that "
            "`python -m minigpt train` wrote (no marker, no config.json in its format); training "
            "would replace them.\nhelp: choose a new or empty folder for --out (nothing was "
            "changed)."
        )
    if is_checkpoint(out) and not force:
        raise ValueError(
            f"--out {out} already holds a checkpoint.\n"
            "help: add --resume to continue it, --force to replace it, or choose another --out."
        )


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The training flags as a checked TrainConfig (before any work)."""
    return TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        min_lr=args.min_lr,
        warmup=args.warmup,
        weight_decay=args.weight_decay,
        grad_clip=args.grad_clip,
        eval_interval=args.eval_interval,
        eval_batches=args.eval_batches,
        checkpoint_interval=args.checkpoint_interval,
        seed=args.seed,
    )


def check_training_memory(config: GPTConfig, args: argparse.Namespace) -> None:
    """Refuse a model and batch whose training would not fit in memory, before building it."""
    check_memory(
        training_bytes(config, args.batch_size),
        f"training {config} with --batch-size {args.batch_size}",
        "use a smaller --n-embd, --n-layer, --block-size or --batch-size, or raise the limit "
        "with --max-memory-gb if the machine has the memory.",
        args.max_memory_gb,
    )


def run_train(args: argparse.Namespace) -> None:
    out = Path(os.path.abspath(args.out))  # "runs/x/.." becomes "runs": a name to lock
    if args.resume and args.force:
        raise ValueError("--resume and --force contradict each other.\nhelp: pick one.")
    check_out_path(out)
    config = train_config(args)
    sizes = {name: getattr(args, name) for name in MODEL_FLAGS}
    if not args.resume:  # a lower bound (one character) before the corpus is read
        check_training_memory(GPTConfig(vocab_size=1, **sizes), args)
    with removing_made_folders(out), CheckpointLock(out):  # one run at a time writes to --out
        check_out_dir(out, args.resume, args.force)
        _train(args, out, config, sizes)


def _train(args: argparse.Namespace, out: Path, train_config: TrainConfig, sizes: dict) -> None:
    checkpoint = None
    if args.resume:  # the model, its tokenizer and the run so far, read once, before the corpus
        model, tokenizer, checkpoint = load_checkpoint(out)
        if tokenizer is None:
            raise ValueError(
                f"--resume but {out} has no tokenizer.json, so the corpus cannot be encoded as "
                "the model was trained.\nhelp: restore tokenizer.json from a copy of the run, or "
                "start a new run into another --out."
            )
        check_training_memory(model.config, args)
    text = load_corpus(args.corpus, args.sha256)
    Tensor.manual_seed(args.seed)  # the initial weights of a new run, and dropout
    if not args.resume:
        tokenizer = CharTokenizer.from_text(text)
        config = GPTConfig(vocab_size=tokenizer.vocab_size, **sizes)
        check_training_memory(config, args)
        model = MiniGPT(config)
    config = model.config
    train_tokens, val_tokens = split(tokenizer.encode(text), 0.9)
    for part, tokens in (("training", train_tokens), ("validation", val_tokens)):
        if len(tokens) <= config.block_size:
            raise ValueError(
                f"corpus {args.corpus}: its {part} part has {len(tokens)} characters, too few "
                f"for one window of block_size + 1 = {config.block_size + 1}.\n"
                f"help: use a corpus of at least {10 * (config.block_size + 2):,} characters "
                "(a tenth is kept for validation) or a smaller --block-size."
            )
    print(describe_device())
    print(f"corpus {args.corpus}: {len(text):,} characters, vocabulary {tokenizer.vocab_size}")
    print(f"model: {model.num_params():,} parameters, {config}")
    result = train(
        model, train_tokens, val_tokens, train_config, tokenizer,
        progress=not args.no_progress, out_dir=out, resume=checkpoint,
    )  # fmt: skip
    print(
        f"step {result.steps_done}: train loss {result.train_losses[-1]:.4f}, "
        f"val loss {result.val_losses[-1]:.4f} | {result.ms_per_step:.0f} ms/step, "
        f"{result.tokens_per_second:,.0f} tokens/s, {result.wall_time:.0f} s in all"
    )
    print(f"checkpoint: {out}")


def run_sample(args: argparse.Namespace) -> None:
    if args.tokens > MAX_SAMPLE_TOKENS:
        raise ValueError(
            f"--tokens {args.tokens:,} would take hours (about 5 ms a token for the baby GPT on "
            f"a laptop CPU), more than the limit of {MAX_SAMPLE_TOKENS:,}.\nhelp: sample at most "
            f"{MAX_SAMPLE_TOKENS:,} tokens a run."
        )
    model, tokenizer, _ = load_checkpoint(args.ckpt, with_optimizer=False)
    check_memory(
        sampling_bytes(model.config),
        f"sampling from {model.config}",
        "sample on a machine with more memory, or raise the limit with --max-memory-gb.",
        args.max_memory_gb,
    )
    if tokenizer is None:
        raise ValueError(
            f"{args.ckpt} has no tokenizer.json, so text cannot be encoded.\n"
            "help: save checkpoints with a tokenizer (train(..., tokenizer=...))."
        )
    if not args.prompt:
        raise ValueError(
            "--prompt is empty.\nhelp: give at least one character, e.g. --prompt 'def '."
        )
    if args.top_k is not None and args.top_k > tokenizer.vocab_size:
        raise ValueError(
            f"--top-k {args.top_k} is more than the vocabulary of {tokenizer.vocab_size} "
            f"characters.\nhelp: use 1..{tokenizer.vocab_size}, or leave --top-k out."
        )
    ids = tokenizer.encode(args.prompt)[None]  # (1, T)
    out = generate(
        model, ids, args.tokens, temperature=args.temperature, top_k=args.top_k, seed=args.seed,
        use_cache=not args.no_cache,
    )  # fmt: skip
    print(tokenizer.decode(out[0]))


def _in_finalizer(frame) -> bool:
    """True while Python runs a finalizer (`__del__`), where a raised exception is only printed."""
    while frame is not None:
        name = frame.f_code.co_qualname
        if name.endswith("__del__") or name.startswith("suppress_finalizing"):
            return True
        frame = frame.f_back
    return False


def interrupt_outside_finalizers(signum: int, frame) -> None:
    """SIGINT handler: raise KeyboardInterrupt, but never inside a finalizer.

    tinygrad frees tensors and buffers in `__del__` methods all the time; Python prints and drops
    an exception raised there ("Exception ignored in ... __del__"), so a Ctrl-C that lands in one
    would be lost and the run would go on. Such a Ctrl-C is delivered again 50 ms later instead.
    """
    if _in_finalizer(frame):
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
        return
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = (
        signal.signal(signal.SIGINT, interrupt_outside_finalizers) if in_main_thread else None
    )
    try:
        if args.command == "cache":  # needs no device
            run_cache(args)
            return 0
        pick_device()
        if args.command == "train":
            run_train(args)
        else:
            run_sample(args)
    except (ValueError, DeviceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        saved = args.command == "train" and is_checkpoint(args.out)
        print(
            f"interrupted{f'; {args.out} holds the last checkpoint' if saved else ''}",
            file=sys.stderr,
        )
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
