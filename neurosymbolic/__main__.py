"""Command line: ``python -m neurosymbolic run | evaluate | train``.

python -m neurosymbolic run --seed 0 --out episode.png   # one hybrid episode, figure saved
python -m neurosymbolic evaluate --n-worlds 100           # the four agents, as a table
python -m neurosymbolic evaluate --regime hard --ablation # what each part adds to success
python -m neurosymbolic evaluate --heuristics             # learned heuristic against A*
python -m neurosymbolic train --out neurosymbolic/weights # retrain the shipped networks

Bad input (flags, output paths, the device) ends with one `error:` line and exit 2 before any work.
"""

import argparse
import math
import sys
import tempfile
from pathlib import Path

from course.device import DeviceError, pick_device
from neurosymbolic.evaluate import DEFAULT_NOISE, DEFAULT_SLIP, REGIMES, evaluate, format_table

# `run` plays one episode that replans at every surprise: a 64x64 world already takes tens of
# seconds, larger ones minutes.
MAX_RUN_SIZE = 64


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


def check_run_size(size: int, objects: int) -> None:
    """`run` refuses worlds too large to play in a reasonable time, before any work."""
    from neurosymbolic.planner import MAX_SEARCH_STATES, search_states

    if not 2 <= size <= MAX_RUN_SIZE:
        raise ValueError(
            f"--size {size} is outside 2..{MAX_RUN_SIZE}: an episode replans on every surprise, "
            f"so worlds past {MAX_RUN_SIZE}x{MAX_RUN_SIZE} take minutes.\nhelp: try --size 12 "
            "(the default) or --size 32."
        )
    if not 0 <= objects <= 26:
        raise ValueError(
            f"--objects must be in 0..26, got {objects}.\nhelp: objects are named a-z."
        )
    states = search_states((size, size), objects)
    if states > MAX_SEARCH_STATES:
        raise ValueError(
            f"--objects {objects} on a {size}x{size} world gives {states:,} planner states, over "
            f"the limit of {MAX_SEARCH_STATES:,}.\nhelp: use fewer --objects or a smaller --size."
        )


def _run(args: argparse.Namespace) -> None:
    from matplotlib.figure import Figure

    from neurosymbolic.agent import HybridAgent
    from neurosymbolic.perception import load_perception
    from neurosymbolic.planner import astar
    from neurosymbolic.policy import load_policy
    from neurosymbolic.viz import draw_trajectory, save_figure
    from neurosymbolic.world import GridWorld

    regime = REGIMES[args.regime]
    if args.regime != "default":  # a named regime sets the conditions
        args.size, args.noise, args.slip = regime.size, regime.noise, regime.slip
    check_run_size(args.size, args.objects)
    check_figure_path(args.out)
    world = GridWorld.random(args.size, args.wall_density, args.objects, args.seed)
    episode = HybridAgent(load_perception(), load_policy()).run(
        world, args.seed, args.noise, args.slip, regime.max_steps
    )
    if regime.budget is not None:
        budget = math.ceil(regime.budget * astar(world).cost - 1e-9)
        verdict = "within" if episode.success and episode.steps <= budget else "over"
        print(f"step budget {budget} ({regime.budget}x the optimal plan): {verdict} it")
    fig = Figure(figsize=(5, 5))
    draw_trajectory(world, episode, ax=fig.add_subplot())
    save_figure(fig, args.out)
    outcome = "solved" if episode.success else "failed"
    print(f"{outcome} in {episode.steps} steps with {episode.replans} replans; figure: {args.out}")


def _evaluate(args: argparse.Namespace) -> None:
    if args.heuristics:
        _compare_heuristics(args)
        return
    from neurosymbolic.evaluate import ablation_agents, standard_agents

    regime = REGIMES[args.regime]
    noise = regime.noise if args.noise is None else args.noise
    slip = regime.slip if args.slip is None else args.slip
    budget = regime.budget if args.budget is None else args.budget
    agents = ablation_agents() if args.ablation else standard_agents()
    rows = evaluate(
        args.n_worlds, noise, slip, args.seed, agents, regime.size, 0.3, 2, regime.max_steps, budget
    )
    limit = f", budget {budget}x optimal" if budget else ""
    print(
        f"{args.regime} regime: {args.n_worlds} worlds {regime.size}x{regime.size}, "
        f"noise {noise}, slip {slip}{limit}, seed {args.seed}"
    )
    print(format_table(rows))


def _compare_heuristics(args: argparse.Namespace) -> None:
    from neurosymbolic.guided_search import (
        compare_heuristics,
        format_results,
        heuristic_methods,
        random_problems,
    )
    from neurosymbolic.heuristic_net import load_heuristic

    problems = random_problems(args.n_worlds, size=32, seed=args.seed)
    print(f"{args.n_worlds} generated 32x32 maps, seed {args.seed}")
    print(format_results(compare_heuristics(problems, heuristic_methods(load_heuristic()))))


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
    run.add_argument(
        "--regime",
        choices=["default", "hard"],
        default="default",
        help="hard: a 20x20 world at noise 0.6 with a step budget (replaces --size, --noise, "
        "--slip)",
    )
    run.set_defaults(handler=_run)

    ev = commands.add_parser("evaluate", help="compare the four agents on many worlds")
    ev.add_argument("--n-worlds", type=int, default=100, help="episodes per agent (default 100)")
    ev.add_argument(
        "--noise", type=finite_float, default=None, help=f"observation noise std ({DEFAULT_NOISE})"
    )
    ev.add_argument(
        "--slip",
        type=finite_float,
        default=None,
        help=f"probability that a move slips ({DEFAULT_SLIP})",
    )
    ev.add_argument(
        "--regime",
        choices=["default", "hard"],
        default="default",
        help="default: 12x12 worlds, no step budget; hard: 20x20, noise 0.6, a budget of 1.25x "
        "the optimal plan (--noise, --slip and --budget override it)",
    )
    ev.add_argument(
        "--budget",
        type=finite_float,
        default=None,
        help="solved only within this multiple of the optimal plan length (e.g. 1.25)",
    )
    ev.add_argument(
        "--ablation",
        action="store_true",
        help="compare the hybrid agent with its ablations instead of the four agents",
    )
    ev.add_argument(
        "--heuristics",
        action="store_true",
        help="compare A* with the learned heuristic, Manhattan and weighted A* instead",
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
