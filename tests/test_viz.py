"""viz: every picture is returned (never shown) under the Agg backend, and GIFs land atomically."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from neurosymbolic.agent import HybridAgent
from neurosymbolic.planner import astar
from neurosymbolic.viz import (
    animate_episode,
    draw_expansions,
    draw_perception,
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


def test_failed_gif_leaves_nothing(tmp_path, world, episode):
    anim = animate_episode(world, episode)
    with pytest.raises(Exception):  # noqa: B017 - any writer failure must clean up
        save_gif(anim, tmp_path / "ep.gif", fps=0)
    assert list(tmp_path.iterdir()) == []
