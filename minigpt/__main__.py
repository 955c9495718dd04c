"""Command line: `python -m minigpt train ...` and `python -m minigpt sample ...` (lesson 4).

python -m minigpt train --corpus python-stdlib --out runs/stdlib --steps 2000
python -m minigpt sample --ckpt runs/stdlib --prompt "def " --tokens 300 --temperature 0.8
"""

import argparse
import sys

from tinygrad import Tensor

from minigpt.checkpoint import load_checkpoint
from minigpt.data import DEFAULT_CORPUS, CharTokenizer, load_corpus, split
from minigpt.device import describe_device
from minigpt.model import GPTConfig, MiniGPT
from minigpt.train import TrainConfig, train

MODEL_FLAGS = ("n_layer", "n_head", "n_embd", "block_size", "dropout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m minigpt", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    model_defaults, train_defaults = GPTConfig(), TrainConfig()

    t = commands.add_parser("train", help="train a character-level MiniGPT on a corpus")
    t.add_argument("--corpus", default=DEFAULT_CORPUS, help="python-stdlib, a text file or a URL")
    t.add_argument("--sha256", help="expected sha256 of the corpus file or download")
    t.add_argument("--out", required=True, help="checkpoint directory (replaced as a whole)")
    t.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
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
                type=type(default),
                default=default,
                help=f"{text} (default {default}{note})",
            )

    s = commands.add_parser("sample", help="generate text from a trained checkpoint")
    s.add_argument("--ckpt", required=True, help="checkpoint directory written by train")
    s.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    s.add_argument("--tokens", type=int, default=300, help="number of characters to generate")
    s.add_argument("--temperature", type=float, default=0.8, help="0 = greedy, 1 = as trained")
    s.add_argument("--top-k", type=int, default=None, help="sample only the k likeliest tokens")
    s.add_argument("--seed", type=int, default=None, help="seed for reproducible samples")
    s.add_argument("--no-cache", action="store_true", help="recompute the prefix for every token")
    return parser


def run_train(args: argparse.Namespace) -> None:
    text = load_corpus(args.corpus, args.sha256)
    if args.resume:
        model, tokenizer, _ = load_checkpoint(args.out)
        config = model.config
    else:
        tokenizer = CharTokenizer.from_text(text)
        sizes = {name: getattr(args, name) for name in MODEL_FLAGS}
        config = GPTConfig(vocab_size=tokenizer.vocab_size, **sizes)
    Tensor.manual_seed(args.seed)
    model = MiniGPT(config)
    train_tokens, val_tokens = split(tokenizer.encode(text), 0.9)
    train_config = TrainConfig(
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
        out_dir=args.out,
    )
    print(describe_device())
    print(f"corpus {args.corpus}: {len(text):,} characters, vocabulary {tokenizer.vocab_size}")
    print(f"model: {model.num_params():,} parameters, {config}")
    result = train(
        model, train_tokens, val_tokens, train_config, tokenizer,
        progress=not args.no_progress, resume=args.resume,
    )  # fmt: skip
    print(
        f"step {result.steps_done}: train loss {result.train_losses[-1]:.4f}, "
        f"val loss {result.val_losses[-1]:.4f} | {result.ms_per_step:.0f} ms/step, "
        f"{result.tokens_per_second:,.0f} tokens/s, {result.wall_time:.0f} s in all"
    )
    print(f"checkpoint: {args.out}")


def run_sample(args: argparse.Namespace) -> None:
    model, tokenizer, _ = load_checkpoint(args.ckpt)
    if tokenizer is None:
        raise ValueError(
            f"{args.ckpt} has no tokenizer.json, so text cannot be encoded.\n"
            "help: save checkpoints with a tokenizer (train(..., tokenizer=...))."
        )
    if not args.prompt:
        raise ValueError(
            "--prompt is empty.\nhelp: give at least one character, e.g. --prompt 'def '."
        )
    ids = tokenizer.encode(args.prompt)[None]  # (1, T)
    out = model.generate(
        ids, args.tokens, temperature=args.temperature, top_k=args.top_k, seed=args.seed,
        use_cache=not args.no_cache,
    )  # fmt: skip
    print(tokenizer.decode(out[0]))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            run_train(args)
        else:
            run_sample(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
