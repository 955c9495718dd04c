"""viz: every picture is returned (never shown) under the Agg backend, GIFs land atomically, the
belief animation shows what the agent knew, and legends stay off the map."""

import matplotlib

matplotlib.use("Agg")

import os

import numpy as np
import pytest
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from neurosymbolic.agent import HybridAgent
from neurosymbolic.evaluate import summarize
from neurosymbolic.guided_search import MethodResult
from neurosymbolic.planner import astar
from neurosymbolic.viz import (
    BELIEF_COLOURS,
    animate_belief,
    animate_episode,
    belief_image,
    draw_expansions,
    draw_heuristic_tradeoff,
    draw_perception,
    draw_success,
    draw_success_sweep,
    draw_trajectory,
    draw_world,
    save_figure,
    save_gif,
)
from neurosymbolic.world import GridWorld


@pytest.fixture(scope="module")
def world():
    return GridWorld.random(8, 0.3, 2, seed=5)


@pytest.fixture(scope="module")
def episode(world):
    return HybridAgent(None, None).run(world, seed=0, noise=0.3, slip=0.1)


def test_static_pictures(world, episode):
    assert isinstance(draw_world(world), Axes)
    obs = world.observe(0.5, np.random.default_rng(0))
    assert isinstance(draw_perception(world, obs, np.clip(obs, 0, 1)), Figure)
    assert isinstance(draw_trajectory(world, episode), Axes)
    plan = astar(world, record_expansions=True)
    ax = draw_expansions(world, plan)
    assert isinstance(ax, Axes) and "expansions" in ax.get_title()
    with pytest.raises(ValueError, match="record_expansions=True"):
        draw_expansions(world, astar(world))


def test_animation_and_atomic_files(tmp_path, world, episode):
    anim = animate_episode(world, episode)
    assert isinstance(anim, FuncAnimation)
    assert "<script" in anim.to_jshtml()
    path = save_gif(anim, tmp_path / "ep.gif", fps=10)
    assert path.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    save_figure(draw_world(world).figure, tmp_path / "w.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep.gif", "w.png"]  # no temp files left


def test_pictures_are_readable_by_others(tmp_path, world, episode):
    """0644 files and 0755 folders like other tools, not the private 0600 of a temporary file."""
    old_umask = os.umask(0o022)
    try:
        gif = save_gif(animate_episode(world, episode), tmp_path / "new" / "ep.gif", fps=10)
        png = save_figure(draw_world(world).figure, tmp_path / "new" / "w.png")
    finally:
        os.umask(old_umask)
    assert [oct(p.stat().st_mode & 0o777) for p in (gif, png)] == ["0o644", "0o644"]
    assert oct(gif.parent.stat().st_mode & 0o777) == "0o755"


def test_failed_gif_leaves_nothing(tmp_path, world, episode):
    anim = animate_episode(world, episode)
    with pytest.raises(Exception):  # noqa: B017 - any writer failure must clean up
        save_gif(anim, tmp_path / "ep.gif", fps=0)
    assert list(tmp_path.iterdir()) == []


def test_trajectory_legend_sits_below_the_map(world, episode):
    ax = draw_trajectory(world, episode)
    fig = ax.figure
    fig.canvas.draw()
    legend_box = ax.get_legend().get_window_extent()
    assert legend_box.y1 <= ax.get_window_extent().y0 + 1  # nothing on the map is covered


@pytest.fixture(scope="module")
def traced(world):
    return HybridAgent(None, None).run_traced(world, seed=0, noise=0.8, slip=0.2)


def test_traced_run_is_the_plain_run(world, traced):
    episode, frames = traced
    plain = HybridAgent(None, None).run(world, seed=0, noise=0.8, slip=0.2)
    assert episode.cells == plain.cells and episode.actions == plain.actions
    assert len(frames) == episode.steps
    assert [f.state.cell for f in frames] == episode.cells[1:]
    assert frames[0].event == "plan"
    assert sum(f.event == "replan" for f in frames) == episode.replans
    for f in frames:  # sensed cells hold the truth
        assert np.array_equal(f.believed[f.seen], world.walls[f.seen])


def test_belief_image_colours(traced):
    frame = traced[1][-1]
    image = belief_image(frame)  # (H, W, 3)
    colours = dict(BELIEF_COLOURS)
    for (row, col), wall in np.ndenumerate(frame.believed):
        name = ("sensed " if frame.seen[row, col] else "believed ") + ("wall" if wall else "free")
        assert tuple(image[row, col]) == colours[name]


def test_belief_animation_hides_picked_up_objects(world, traced):
    episode, frames = traced
    anim = animate_belief(world, frames)
    assert isinstance(anim, FuncAnimation)
    texts = {t.get_text(): t for t in anim._fig.axes[0].texts}
    anim._func(len(frames) - 1)  # the last frame: everything delivered
    assert episode.success and not any(texts[n].get_visible() for n in world.objects)
    anim._func(0)
    assert all(texts[n].get_visible() for n in world.objects)
    assert "<script" in anim.to_jshtml()
    with pytest.raises(ValueError, match="no frames"):
        animate_belief(world, [])


def test_success_and_tradeoff_plots(world, episode):
    row = summarize("hybrid", [episode, episode], [10.0, 10.0])
    ax = draw_success([row])
    assert isinstance(ax, Axes) and "95%" in ax.get_xlabel()
    sweep = {0.4: [row], 0.8: [row]}
    assert isinstance(draw_success_sweep(sweep, "noise"), Axes)
    plain = MethodResult("A*", 10.0, 1.0, 1.0, 1.0, 1.0)
    learned = MethodResult("learned", 8.0, 0.8, 1.02, 1.1, 0.5, (0.6, 1.0), (1.0, 1.04))
    ax = draw_heuristic_tradeoff({"random maps": [plain, learned], "rooms": [learned, plain]})
    assert ax.get_xlabel().startswith("cells expanded")
    legend = {
        t.get_text(): h
        for t, h in zip(ax.get_legend().texts, ax.get_legend().legend_handles, strict=True)
    }
    assert list(legend) == ["random maps", "rooms", "A*", "learned"]  # each name once, no labels
    assert legend["A*"].get_marker() != legend["learned"].get_marker()
    assert not ax.texts  # no label beside a point: the legend names them
    markers = [line.get_marker() for line in ax.lines if len(line.get_xdata())]  # the points
    assert markers[0] == markers[3] and markers[1] == markers[2]  # a method keeps its marker
