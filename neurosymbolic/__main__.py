"""Command line: ``python -m neurosymbolic run | evaluate | heuristics | train``.

python -m neurosymbolic run --seed 0 --out episode.png   # one hybrid episode, figure saved
python -m neurosymbolic evaluate --n-worlds 100           # the four agents, as a table
python -m neurosymbolic evaluate --regime hard --ablation # what each part adds to success
python -m neurosymbolic heuristics --n-maps 100           # learned heuristic against A*
python -m neurosymbolic train --out runs/nets            # train the three networks afresh
python -m neurosymbolic train --out neurosymbolic/weights --force  # replace the shipped ones
python -m neurosymbolic train --nets heuristic --out neurosymbolic/weights --force  # one of them

`run` and `evaluate` play under a `Regime` of `REGIMES` (--regime); a flag you set, such as
--noise, replaces that one value of the regime, and a flag you leave out keeps the regime's value.
Bad input (flags, output paths, the device) ends with one `error:` line and exit 2 before any work,
and a refused run leaves nothing behind. `train` replaces networks it saved before only with
--force, and never a file it cannot prove it wrote.
"""

import argparse
import math
import sys
from dataclasses import fields, replace
from pathlib import Path

from course.device import DeviceError, pick_device
from course.files import check_writable
from neurosymbolic.evaluate import REGIMES, Regime, evaluate, format_table
from neurosymbolic.heuristic_net import HeuristicTraining

# `run` plays one episode that replans at every surprise: a 64x64 world already takes tens of
# seconds, larger ones minutes.
MAX_RUN_SIZE = 64
# `evaluate` plays the four agents on each world (measured on a busy 2-core CPU: about 2.5 s a
# world in the default regime, 8 s in the hard one) and `heuristics` searches each generated map
# and each room-map problem five ways (about 0.55 s for both): more than this many would take
# many hours, and the worlds are all built first.
MAX_WORLDS = 10_000
NETS = ("perception", "policy", "heuristic")  # what `train` can train, in this order
SECONDS_PER_WORLD = {"--n-worlds": 2.5, "--n-maps": 0.55}  # for the estimate in the refusal


def finite_float(text: str) -> float:
    """An argparse type: a float that is neither NaN nor infinite."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def chosen_regime(args: argparse.Namespace) -> Regime:
    """The regime named by --regime with each regime flag the user set in place of its value.

    Regime flags default to None, so a flag left out keeps the regime's value and a flag set is
    never replaced. `Regime` checks the result.
    """
    chosen = {f.name: getattr(args, f.name, None) for f in fields(Regime)}
    return replace(REGIMES[args.regime], **{k: v for k, v in chosen.items() if v is not None})


def check_counts(number: int, flag: str, seed: int) -> None:
    """The number of worlds or maps must be in 1..MAX_WORLDS and the first seed >= 0, before
    any work; the refusal says how long the run would have taken."""
    if number < 1:
        raise ValueError(f"{flag} must be >= 1, got {number}.\nhelp: e.g. {flag} 100.")
    if number > MAX_WORLDS:
        hours = number * SECONDS_PER_WORLD[flag] / 3600
        raise ValueError(
            f"{flag} {number:,} would take about {hours:,.0f} hours on a 2-core CPU (about "
            f"{SECONDS_PER_WORLD[flag]:g} s each), more than the limit of {MAX_WORLDS:,}.\nhelp: use at most {MAX_WORLDS:,}; a few hundred "
            "already give tight intervals."
        )
    check_seed(seed)


def check_seed(seed: int) -> None:
    """Seeds are ints >= 0 (numpy refuses negative ones, without naming the flag)."""
    if seed < 0:
        raise ValueError(f"--seed must be >= 0, got {seed}.\nhelp: e.g. --seed 0.")


def check_figure_path(out: str) -> Path:
    """A figure path must be in a picture format matplotlib can write here (tried on a tiny
    figure) and lie in a writable folder."""
    from neurosymbolic.viz import check_figure_format

    path = Path(out)
    if path.is_dir():
        raise ValueError(
            f"--out {out} is a folder.\nhelp: name the picture file, e.g. {path / 'episode.png'}."
        )
    if not path.suffix:
        raise ValueError(
            f"--out {out} does not end in a picture format (no extension).\n"
            f"help: end it with .png, e.g. {out}.png."
        )
    check_figure_format(path)
    check_writable(
        path.parent, f"into {path.parent} for --out", "choose a folder you can write to."
    )
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

    regime = chosen_regime(args)
    check_seed(args.seed)
    check_run_size(regime.size, regime.objects)
    check_figure_path(args.out)
    world = GridWorld.random(regime.size, regime.wall_density, regime.objects, args.seed)
    episode = HybridAgent(load_perception(), load_policy()).run(
        world, args.seed, regime.noise, regime.slip, regime.max_steps
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
    from neurosymbolic.evaluate import ablation_agents, standard_agents

    regime = chosen_regime(args)
    check_counts(args.n_worlds, "--n-worlds", args.seed)
    agents = ablation_agents() if args.ablation else standard_agents()
    rows = evaluate(regime, n_worlds=args.n_worlds, seed=args.seed, agents=agents)
    limit = f", budget {regime.budget}x optimal" if regime.budget else ""
    print(
        f"{args.regime} regime: {args.n_worlds} worlds {regime.size}x{regime.size}, "
        f"noise {regime.noise}, slip {regime.slip}{limit}, seed {args.seed}"
    )
    print(format_table(rows))


def _heuristics(args: argparse.Namespace) -> None:
    from neurosymbolic.guided_search import (
        compare_heuristics,
        format_results,
        heuristic_methods,
        random_problems,
        room_problems,
    )
    from neurosymbolic.heuristic_net import load_heuristic

    check_counts(args.n_maps, "--n-maps", args.seed)
    methods = heuristic_methods(load_heuristic())
    problems = random_problems(args.n_maps, size=32, seed=args.seed)
    print(f"{args.n_maps} generated 32x32 maps, seed {args.seed}")
    print(format_results(compare_heuristics(problems, methods)))
    rooms = room_problems(args.n_maps, size=64, seed=args.seed)
    print(
        f"\n{args.n_maps} problems on a 64x64 room map (unlike the training maps), seed {args.seed}"
    )
    print(format_results(compare_heuristics(rooms, methods)))


def _train(args: argparse.Namespace) -> None:
    from neurosymbolic.checkpoint import is_checkpoint
    from neurosymbolic.heuristic_net import (
        save_heuristic,
        score_heuristic,
        train_heuristic,
    )
    from neurosymbolic.perception import (
        PerceptionTraining,
        save_perception,
        score_perception,
        train_perception,
    )
    from neurosymbolic.policy import PolicyTraining, save_policy, score_policy, train_policy

    out = Path(args.out)
    for flag, steps in (
        ("--perception-steps", args.perception_steps),
        ("--policy-steps", args.policy_steps),
        ("--heuristic-steps", args.heuristic_steps),
    ):
        if steps < 1:
            raise ValueError(f"{flag} must be >= 1, got {steps}.\nhelp: e.g. {flag} 1500.")
    perception_training = PerceptionTraining(steps=args.perception_steps, lr=5e-3)
    policy_training = PolicyTraining(steps=args.policy_steps)  # all checked before any work
    heuristic_training = HeuristicTraining(steps=args.heuristic_steps)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder.\nhelp: name a folder.")
    check_writable(out, f"into {out} for --out", "choose a folder you can write to.")
    for stem in (out / name for name in args.nets):
        pair = (stem.with_suffix(".json"), stem.with_suffix(".safetensors"))
        there = [p.name for p in pair if p.exists() or p.is_symlink()]
        if there and not is_checkpoint(stem):
            raise ValueError(
                f"--out {out} holds {', '.join(there)}, which is not a network saved by this "
                "command, and training would overwrite it.\nhelp: choose another --out, or move "
                "the file away (nothing was changed)."
            )
        if there and not args.force:
            raise ValueError(
                f"--out {out} already holds a trained {stem.name} network ({', '.join(there)}).\n"
                "help: add --force to replace it, or choose another --out."
            )
    if "perception" in args.nets:
        perception, _ = train_perception(perception_training, progress=True)
        save_perception(perception, out / "perception")
        for score in score_perception(perception):
            print(score)
    if "policy" in args.nets:
        policy, _ = train_policy(policy_training, progress=True)
        save_policy(policy, out / "policy")
        print(score_policy(policy))
    if "heuristic" in args.nets:
        heuristic, result = train_heuristic(heuristic_training, progress=True)
        save_heuristic(heuristic, out / "heuristic", heuristic_training, result)
        print(score_heuristic(heuristic))


def _left_out(field: str) -> str:
    """What a regime flag left out means, e.g. "if left out, the regime's: 12 in default, 20 in hard"."""
    values = ", ".join(f"{getattr(r, field)} in {name}" for name, r in REGIMES.items())
    return f"if left out, the regime's: {values.replace('None', 'none')}"


def add_regime_flags(parser: argparse.ArgumentParser, names: list[str]) -> None:
    """--regime and the flags that replace one of its values (default None: keep the regime's)."""
    parser.add_argument(
        "--regime",
        choices=sorted(REGIMES),
        default="default",
        help="the conditions: default (12x12 worlds, no step budget) or hard (20x20, noise 0.6, "
        "a budget of 1.25x the optimal plan); a flag you set replaces the regime's value",
    )
    helps = {
        "size": ("the world is size x size", int),
        "wall_density": ("fraction of wall cells", finite_float),
        "objects": ("objects to deliver", int),
        "noise": ("observation noise std", finite_float),
        "slip": ("probability that a move slips", finite_float),
        "budget": ("solved only within this multiple of the optimal plan length", finite_float),
    }
    for name in names:
        text, kind = helps[name]
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=kind,
            default=None,
            help=f"{text} ({_left_out(name)})",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m neurosymbolic",
        description="A hybrid grid agent.",
        epilog="run and evaluate play under a regime (--regime); a flag you set, such as "
        "--noise, replaces that value of the regime, one you leave out keeps it.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run one hybrid-agent episode and save its figure")
    run.add_argument("--seed", type=int, default=0, help="world, noise and slip seed (default 0)")
    run.add_argument(
        "--out", default="episode.png", help="figure file to write (default episode.png)"
    )
    add_regime_flags(run, ["size", "wall_density", "objects", "noise", "slip"])
    run.set_defaults(handler=_run)

    ev = commands.add_parser("evaluate", help="compare the four agents on many worlds")
    ev.add_argument("--n-worlds", type=int, default=100, help="episodes per agent (default 100)")
    add_regime_flags(ev, ["noise", "slip", "budget"])
    ev.add_argument(
        "--ablation",
        action="store_true",
        help="compare the hybrid agent with its ablations instead of the four agents",
    )
    ev.add_argument("--seed", type=int, default=0, help="first world seed (default 0)")
    ev.set_defaults(handler=_evaluate)

    heuristics = commands.add_parser(
        "heuristics", help="compare A* with the learned heuristic, Manhattan and weighted A*"
    )
    heuristics.add_argument(
        "--n-maps",
        type=int,
        default=100,
        help="generated 32x32 maps, and as many problems on a 64x64 room map (default 100)",
    )
    heuristics.add_argument("--seed", type=int, default=0, help="first map seed (default 0)")
    heuristics.set_defaults(handler=_heuristics)

    train = commands.add_parser(
        "train", help="train the perception, policy and heuristic networks and save them"
    )
    train.add_argument("--out", default="neurosymbolic/weights", help="folder for the checkpoints")
    train.add_argument(
        "--nets",
        nargs="+",
        choices=NETS,
        default=list(NETS),
        help="the networks to train (default all three; the heuristic takes about 15 minutes "
        "on 2 cores)",
    )
    train.add_argument("--perception-steps", type=int, default=1500, help="perception train steps")
    train.add_argument("--policy-steps", type=int, default=1500, help="policy train steps")
    train.add_argument(
        "--heuristic-steps",
        type=int,
        default=HeuristicTraining().steps,
        help=f"heuristic train steps (default {HeuristicTraining().steps}, the shipped net's)",
    )
    train.add_argument(
        "--force", action="store_true", help="replace networks an earlier train saved in --out"
    )
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
