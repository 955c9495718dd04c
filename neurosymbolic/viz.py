"""Pictures for lessons 8-12: the world, perceived maps, plans against trajectories, A* expansions,
episode and belief animations, success rates with their intervals, and the heuristics' trade-off. Every function returns matplotlib objects and never shows them, so it works
headless (Agg) and in notebooks alike; the world and the agents never draw anything themselves.
"""

import io
import itertools
from pathlib import Path

import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.axes import Axes
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from course.files import write_atomic
from neurosymbolic.agent import BeliefFrame
from neurosymbolic.evaluate import EvalRow
from neurosymbolic.guided_search import MethodResult
from neurosymbolic.planner import Plan
from neurosymbolic.world import Episode, GridWorld


def _axes(ax: Axes | None, size: float = 4.0) -> Axes:
    if ax is not None:
        return ax
    return Figure(figsize=(size, size)).add_subplot()  # a Figure without pyplot: nothing global


def draw_world(world: GridWorld, ax: Axes | None = None, walls: np.ndarray | None = None) -> Axes:
    """Walls in black (or `walls` ``(H, W)``, e.g. a believed map, in grey levels), start, goal, objects.

    Cells are (row, col): row goes down the picture, col to the right, as in ``imshow``.
    """
    ax = _axes(ax)
    ax.imshow(world.walls if walls is None else walls, cmap="Greys", vmin=0, vmax=1)
    ax.plot(world.start[1], world.start[0], "o", color="tab:blue", markersize=10, label="start")
    ax.plot(world.goal[1], world.goal[0], "*", color="tab:green", markersize=14, label="goal")
    for name, (row, col) in world.objects.items():
        ax.text(
            col, row, name, ha="center", va="center", color="tab:red", fontsize=12, weight="bold"
        )
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def draw_perception(world: GridWorld, observation: np.ndarray, probs: np.ndarray) -> Figure:
    """Three panels: the true walls, the noisy look, the perceived wall probabilities."""
    fig = Figure(figsize=(10, 3.6))
    panels = [("true walls", world.walls), ("noisy observation", observation), ("perceived", probs)]
    for ax, (title, grid) in zip(fig.subplots(1, 3), panels, strict=True):
        draw_world(world, ax, walls=np.clip(grid, 0, 1))
        ax.set_title(title)
    fig.tight_layout()
    return fig


def draw_trajectory(
    world: GridWorld, episode: Episode, plan: Plan | None = None, ax: Axes | None = None
) -> Axes:
    """The executed trajectory over the world, with the first plan (or `plan`) dashed."""
    ax = draw_world(world, ax)
    planned = (
        plan.cells
        if plan is not None
        else (episode.planned_cells[0] if episode.planned_cells else [])
    )
    if planned:
        rows, cols = zip(*planned, strict=True)
        ax.plot(cols, rows, "--", color="tab:orange", linewidth=2, label="plan")
    rows, cols = zip(*episode.cells, strict=True)
    ax.plot(cols, rows, "-", color="tab:blue", linewidth=1.5, alpha=0.8, label="trajectory")
    outcome = "solved" if episode.success else "failed"
    ax.set_title(f"{outcome} in {episode.steps} steps, {episode.replans} replans")
    _legend_below(ax)
    return ax


def _legend_below(ax: Axes) -> None:
    """The legend under the map, where it cannot hide an object or a path."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=4, fontsize=7, frameon=False)


def draw_expansions(world: GridWorld, plan: Plan, ax: Axes | None = None) -> Axes:
    """When A* expanded each cell (a heat map of expansion order), with the plan on top."""
    if plan.expansions is None:
        raise ValueError(
            "the plan has no expansion order.\nhelp: plan with astar(..., record_expansions=True)."
        )
    order = np.full(world.shape, np.nan)  # (H, W), first expansion index of each cell
    for i, cell in enumerate(plan.expansions):
        if np.isnan(order[cell]):
            order[cell] = i
    ax = draw_world(world, ax)
    image = ax.imshow(np.ma.masked_invalid(order), cmap="viridis", alpha=0.75)
    ax.figure.colorbar(image, ax=ax, label="expansion order", shrink=0.8)
    rows, cols = zip(*plan.cells, strict=True)
    ax.plot(cols, rows, "-", color="white", linewidth=2)
    ax.set_title(f"{plan.expanded} expansions, cost {plan.cost:g}")
    return ax


def animate_episode(world: GridWorld, episode: Episode, interval_ms: int = 150) -> FuncAnimation:
    """One frame a step; ``anim.to_jshtml()`` for notebooks, `save_gif` for a file."""
    ax = draw_world(world)
    (trail,) = ax.plot([], [], "-", color="tab:blue", alpha=0.6)
    (agent,) = ax.plot([], [], "o", color="tab:purple", markersize=12)

    def frame(i: int):
        rows, cols = zip(*episode.cells[: i + 1], strict=True)
        trail.set_data(cols, rows)
        agent.set_data([cols[-1]], [rows[-1]])
        action = episode.actions[i - 1] if i > 0 else "start"
        ax.set_title(f"step {i}: {action}")
        return trail, agent

    return FuncAnimation(
        ax.figure, frame, frames=len(episode.cells), interval=interval_ms, blit=False
    )


# belief colours: sensed free, believed free (unsensed), believed wall (unsensed), sensed wall
BELIEF_COLOURS = {
    "sensed free": (1.0, 1.0, 1.0),
    "believed free": (0.82, 0.87, 0.95),
    "believed wall": (0.45, 0.47, 0.6),
    "sensed wall": (0.0, 0.0, 0.0),
}


def belief_image(frame: BeliefFrame) -> np.ndarray:
    """An ``(H, W, 3)`` picture of a belief: walls dark, sensed cells in full contrast."""
    colours = np.array(list(BELIEF_COLOURS.values()))  # (4, 3)
    kind = 2 * frame.believed.astype(int) + frame.seen.astype(int)  # 0..3 in the order below
    order = np.array([1, 0, 2, 3])  # (believed, seen) -> index into BELIEF_COLOURS
    return colours[order[kind]]  # (H, W, 3)


def animate_belief(
    world: GridWorld, frames: list[BeliefFrame], interval_ms: int = 200
) -> FuncAnimation:
    """What the hybrid agent believed, step by step (frames from ``HybridAgent.run_traced``).

    The map is its belief (sensed cells in full contrast), the orange line the plan still ahead,
    red crosses where it replanned, yellow triangles where a move slipped; objects vanish when
    picked up. ``anim.to_jshtml()`` for notebooks, `save_gif` for a file.
    """
    if not frames:
        raise ValueError("no frames to animate.\nhelp: use HybridAgent(...).run_traced(world).")
    ax = _axes(None, size=5.0)
    image = ax.imshow(belief_image(frames[0]))
    ax.plot(world.goal[1], world.goal[0], "*", color="tab:green", markersize=14, label="goal")
    labels = {
        name: ax.text(col, row, name, ha="center", va="center", color="tab:red", weight="bold")
        for name, (row, col) in world.objects.items()
    }
    (plan_line,) = ax.plot([], [], "-", color="tab:orange", linewidth=2, label="plan ahead")
    (trail,) = ax.plot([], [], "-", color="tab:blue", alpha=0.5, label="trajectory")
    (replans,) = ax.plot([], [], "x", color="tab:red", markersize=9, mew=2, label="replan")
    (slips,) = ax.plot([], [], "^", color="gold", markersize=8, mec="black", label="slip")
    (agent,) = ax.plot([], [], "o", color="tab:purple", markersize=11, label="agent")
    patches = [Patch(facecolor=c, edgecolor="grey", label=n) for n, c in BELIEF_COLOURS.items()]
    ax.legend(
        handles=[*patches, plan_line, replans, slips],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.01),
        ncol=4,
        fontsize=7,
        frameon=False,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    cells = [world.start] + [f.state.cell for f in frames]

    def marks(flags: list[bool]) -> tuple[list[int], list[int]]:
        chosen = [cells[i + 1] for i, flag in enumerate(flags) if flag]
        return [c for _, c in chosen], [r for r, _ in chosen]

    def frame(i: int):
        now = frames[i]
        image.set_data(belief_image(now))
        if now.ahead:
            rows, cols = zip(*now.ahead, strict=True)
            plan_line.set_data(cols, rows)
        else:
            plan_line.set_data([], [])
        rows, cols = zip(*cells[: i + 2], strict=True)
        trail.set_data(cols, rows)
        agent.set_data([cols[-1]], [rows[-1]])
        # a replan is made before the step's move, so it is marked where that move started
        made = [cells[k] for k in range(i + 1) if frames[k].event == "replan"]
        replans.set_data([c for _, c in made], [r for r, _ in made])
        slips.set_data(*marks([f.slipped for f in frames[: i + 1]]))
        for name, text in labels.items():
            text.set_visible(name != now.state.held and name not in now.state.delivered)
        held = f", holding {now.state.held}" if now.state.held else ""
        done = len(now.state.delivered)
        ax.set_title(f"step {i + 1}: {now.event}{held}, {done} delivered", fontsize=10)
        return image, plan_line, trail, agent, replans, slips

    frame(0)
    return FuncAnimation(ax.figure, frame, frames=len(frames), interval=interval_ms, blit=False)


def draw_success(rows: list[EvalRow], ax: Axes | None = None, title: str = "") -> Axes:
    """Each agent's success rate as a bar with its 95% Wilson interval."""
    ax = _axes(ax, size=5.0)
    rates = [r.success_rate for r in rows]
    errors = [[r.success_rate - r.ci_low for r in rows], [r.ci_high - r.success_rate for r in rows]]
    ax.barh(range(len(rows)), rates, xerr=errors, capsize=4, color="tab:blue", alpha=0.7)
    ax.set_yticks(range(len(rows)), [r.agent for r in rows])
    ax.invert_yaxis()  # the first row on top, as in the table
    ax.set_xlim(0, 1)
    episodes = rows[0].episodes if rows else 0
    ax.set_xlabel(f"success rate ({episodes} worlds, bars: 95% interval)")
    ax.set_title(title)
    return ax


def draw_success_sweep(
    sweep: dict[float, list[EvalRow]], xlabel: str, ax: Axes | None = None
) -> Axes:
    """Success rate against a setting (noise, slip), one line per agent, 95% intervals shaded."""
    ax = _axes(ax, size=5.0)
    levels = list(sweep)
    for k, first in enumerate(sweep[levels[0]]):
        rates = [sweep[v][k].success_rate for v in levels]
        (line,) = ax.plot(levels, rates, "o-", label=first.agent)
        low, high = [sweep[v][k].ci_low for v in levels], [sweep[v][k].ci_high for v in levels]
        ax.fill_between(levels, low, high, color=line.get_color(), alpha=0.15)
    ax.set_xlabel(xlabel)
    ax.set_xticks(levels)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("success rate")
    return ax


def draw_heuristic_tradeoff(results: dict[str, list[MethodResult]], ax: Axes | None = None) -> Axes:
    """Search effort against path cost: cells expanded (relative to A* with Manhattan) on the x
    axis, path cost over the optimum on the y axis; one colour per problem set, one marker a method,
    both named in the legend (labels beside the points would pile up near the optimum). Each point
    is a mean over problems; its bars span the 10th to 90th percentile of both."""
    ax = _axes(ax, size=5.5)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:purple"]
    methods = list(dict.fromkeys(r.method for rows in results.values() for r in rows))
    marker_of = dict(zip(methods, itertools.cycle("osD^v<>Pp*X"), strict=False))
    for colour, (problem_set, rows) in zip(colours, results.items(), strict=False):
        for r in rows:
            point = (r.expanded_ratio, r.cost_ratio)
            low, high = r.expanded_spread()
            costs = r.cost_ratios or (r.cost_ratio,)
            cost_low, cost_high = np.percentile(costs, 10), np.percentile(costs, 90)
            ax.errorbar(
                *point,
                xerr=[[point[0] - low], [high - point[0]]],
                yerr=[[max(point[1] - cost_low, 0.0)], [max(cost_high - point[1], 0.0)]],
                fmt=marker_of[r.method],
                color=colour,
                markersize=7,
                elinewidth=0.8,
                alpha=0.8,
            )
        ax.plot([], [], "s", color=colour, label=problem_set)
    for method, marker in marker_of.items():
        ax.plot([], [], marker, color="black", markerfacecolor="none", label=method)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    ax.axvline(1.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("cells expanded / A* with Manhattan (lower is faster)")
    ax.set_ylabel("path cost / optimal (lower is better)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return ax


def save_gif(anim: FuncAnimation, path: str | Path, fps: int = 6) -> Path:
    """Write the animation as a GIF (written to a temporary file, renamed when complete)."""
    return write_atomic(path, lambda tmp: anim.save(tmp, writer=PillowWriter(fps=fps)))


def check_figure_format(path: str | Path) -> str:
    """The picture format of `path` (its extension; none means PNG), proven by drawing a tiny
    figure with text in it: a format that needs what this machine lacks (.pgf needs LaTeX) is
    refused in milliseconds, before an episode runs, not after."""
    picture_format = Path(path).suffix[1:].lower() or "png"
    formats = FigureCanvasBase.get_supported_filetypes()
    if picture_format not in formats:
        raise ValueError(
            f"{path} does not end in a picture format ({Path(path).suffix}).\n"
            f"help: end it with .png, or one of {', '.join('.' + f for f in sorted(formats))}."
        )
    probe = Figure(figsize=(1, 1))
    probe.text(0.5, 0.5, "x")  # text is what needs LaTeX in some formats
    try:
        probe.savefig(io.BytesIO(), format=picture_format)
    except Exception as error:  # matplotlib's backends raise RuntimeError, OSError, ...
        raise ValueError(
            f"matplotlib cannot write .{picture_format} on this machine for {path} "
            f"({str(error).splitlines()[0] if str(error) else type(error).__name__}).\n"
            "help: use .png or .svg."
        ) from None
    return picture_format


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Save a figure (written to a temporary file, renamed when complete); no extension means PNG."""
    if Path(path).is_dir():
        raise ValueError(f"{path} is a folder.\nhelp: name the picture file, e.g. episode.png.")
    picture_format = check_figure_format(path)  # else savefig renames the temporary
    return write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=picture_format))
