"""Command line: ``python -m neurosymbolic run | evaluate | train``.

python -m neurosymbolic run --seed 0 --out episode.png   # one hybrid episode, figure saved
python -m neurosymbolic evaluate --n-worlds 100           # the four agents, as a table
python -m neurosymbolic train --out neurosymbolic/weights # retrain the shipped networks

Bad input (flags, output paths, the device) ends with one `error:` line and exit 2 before any work.
"""

import argparse
import math
import sys
import tempfile
from pathlib import Path

from minigpt.device import DeviceError, pick_device
from neurosymbolic.evaluate import DEFAULT_NOISE, DEFAULT_SLIP, evaluate, format_table


def finite_float(text: str) -> float:
    """An argparse type: a float that is neither NaN nor infinite."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _check_writable_folder(folder: Path, flag: str) -> None:
    """Create `folder` if needed and prove a file can be written there, before any work."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{flag} {folder} is a file, not a folder.\nhelp: name a folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(
            f"cannot write into {folder} for {flag} ({error.strerror or error}).\n"
            "help: choose a folder you can write to."
        ) from None


def check_figure_path(out: str) -> Path:
    """A figure path must end in a picture format matplotlib knows and lie in a writable folder."""
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(out)
    if path.is_dir():
        raise ValueError(
            f"--out {out} is a folder.\nhelp: name the picture file, e.g. {path / 'episode.png'}."
        )
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        raise ValueError(
            f"--out {out} does not end in a picture format ({path.suffix or 'no extension'}).\n"
            f"help: end it with .png, or one of {', '.join('.' + f for f in sorted(formats))}."
        )
    _check_writable_folder(path.parent, "--out")
    return path


def _run(args: argparse.Namespace) -> None:
    from matplotlib.figure import Figure

    from neurosymbolic.agent import HybridAgent
    from neurosymbolic.perception import load_perception
    from neurosymbolic.policy import load_policy
    from neurosymbolic.viz import draw_trajectory, save_figure
    from neurosymbolic.world import GridWorld

    check_figure_path(args.out)
    world = GridWorld.random(args.size, args.wall_density, args.objects, args.seed)
    episode = HybridAgent(load_perception(), load_policy()).run(
        world, args.seed, args.noise, args.slip
    )
    fig = Figure(figsize=(5, 5))
    draw_trajectory(world, episode, ax=fig.add_subplot())
    save_figure(fig, args.out)
    outcome = "solved" if episode.success else "failed"
    print(f"{outcome} in {episode.steps} steps with {episode.replans} replans; figure: {args.out}")


def _evaluate(args: argparse.Namespace) -> None:
    rows = evaluate(args.n_worlds, args.noise, args.slip, args.seed)
    print(f"{args.n_worlds} worlds, noise {args.noise}, slip {args.slip}, seed {args.seed}")
    print(format_table(rows))


def _train(args: argparse.Namespace) -> None:
    from neurosymbolic.perception import (
        PerceptionTraining,
        save_perception,
        score_perception,
        train_perception,
    )
    from neurosymbolic.policy import PolicyTraining, save_policy, score_policy, train_policy

    _check_writable_folder(Path(args.out), "--out")
    perception, _ = train_perception(
        PerceptionTraining(steps=args.perception_steps, lr=5e-3), progress=True
    )
    save_perception(perception, Path(args.out) / "perception")
    for score in score_perception(perception):
        print(score)
    policy, _ = train_policy(PolicyTraining(steps=args.policy_steps), progress=True)
    save_policy(policy, Path(args.out) / "policy")
    print(score_policy(policy))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m neurosymbolic", description="A hybrid grid agent."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run one hybrid-agent episode and save its figure")
    run.add_argument("--seed", type=int, default=0, help="world, noise and slip seed (default 0)")
    run.add_argument(
        "--out", default="episode.png", help="figure file to write (default episode.png)"
    )
    run.add_argument("--size", type=int, default=12, help="the world is size x size (default 12)")
    run.add_argument(
        "--wall-density",
        type=finite_float,
        default=0.3,
        help="fraction of wall cells (default 0.3)",
    )
    run.add_argument("--objects", type=int, default=2, help="objects to deliver (default 2)")
    run.add_argument(
        "--noise", type=finite_float, default=DEFAULT_NOISE, help="observation noise std"
    )
    run.add_argument(
        "--slip", type=finite_float, default=DEFAULT_SLIP, help="probability that a move slips"
    )
    run.set_defaults(handler=_run)

    ev = commands.add_parser("evaluate", help="compare the four agents on many worlds")
    ev.add_argument("--n-worlds", type=int, default=100, help="episodes per agent (default 100)")
    ev.add_argument(
        "--noise", type=finite_float, default=DEFAULT_NOISE, help="observation noise std"
    )
    ev.add_argument(
        "--slip", type=finite_float, default=DEFAULT_SLIP, help="probability that a move slips"
    )
    ev.add_argument("--seed", type=int, default=0, help="first world seed (default 0)")
    ev.set_defaults(handler=_evaluate)

    train = commands.add_parser(
        "train", help="train the perception and policy networks and save them"
    )
    train.add_argument("--out", default="neurosymbolic/weights", help="folder for the checkpoints")
    train.add_argument("--perception-steps", type=int, default=1500, help="perception train steps")
    train.add_argument("--policy-steps", type=int, default=1500, help="policy train steps")
    train.set_defaults(handler=_train)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        pick_device()
        args.handler(args)
    except (
        ValueError,
        DeviceError,
    ) as error:  # bad input: say what and how to fix it, without a traceback
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
