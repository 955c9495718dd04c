"""Pictures for lessons 8-11: the world, perceived maps, plans against trajectories, A* expansions,
and episode animations. Every function returns matplotlib objects and never shows them, so it works
headless (Agg) and in notebooks alike; the world and the agents never draw anything themselves.
"""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.axes import Axes
from matplotlib.figure import Figure

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
    ax.legend(loc="upper right", fontsize=7)
    return ax


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


def _write_atomically(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it into place: a crash
    never leaves half a file under the real name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def save_gif(anim: FuncAnimation, path: str | Path, fps: int = 6) -> Path:
    """Write the animation as a GIF (written to a temporary file, renamed when complete)."""
    return _write_atomically(path, lambda tmp: anim.save(tmp, writer=PillowWriter(fps=fps)))


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Save a figure (written to a temporary file, renamed when complete); no extension means PNG."""
    if Path(path).is_dir():
        raise ValueError(f"{path} is a folder.\nhelp: name the picture file, e.g. episode.png.")
    picture_format = Path(path).suffix[1:].lower() or "png"  # else savefig renames the temporary
    return _write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=picture_format))
