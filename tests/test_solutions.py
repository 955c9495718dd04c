"""Solutions kept for the capstones: a passing notebook function is saved with what it needs, and
a capstone uses it only after its checker passes again; a broken piece is named and replaced."""

import importlib.util
import sys

import pytest

from course.solutions import Choice, Piece, choose, load_saved, remember, solution_path, table
from minigpt.checks import check_causal_mask
from neurosymbolic.agent import HybridAgent, needs_replan, sense
from neurosymbolic.checks import check_sense, reference_astar, reference_recovery_move
from neurosymbolic.evaluate import Regime, evaluate
from neurosymbolic.perception import load_perception
from neurosymbolic.pieces import PIECES, agent_from
from neurosymbolic.policy import load_policy
from neurosymbolic.world import GridWorld

NOTEBOOK = """
import numpy as np
from tinygrad import Tensor, dtypes

OFFSET = 0


def diagonal(Tq, Tk):
    return Tk - Tq + OFFSET


def causal_mask(Tq, Tk):
    return Tensor(np.tril(np.ones((Tq, Tk)), diagonal(Tq, Tk))).cast(dtypes.bool)


def wrong_mask(Tq, Tk):
    return Tensor(np.tril(np.ones((Tq, Tk)))).cast(dtypes.bool)


def unsolved(Tq, Tk):
    raise NotImplementedError("Exercise 2")
"""


@pytest.fixture()
def notebook(tmp_path):
    """The functions of a 'notebook' cell: defined in a file, as __main__ code (ipykernel's)."""
    path = tmp_path / "cell.py"
    path.write_text(NOTEBOOK)
    spec = importlib.util.spec_from_file_location("cell", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for fn in (module.diagonal, module.causal_mask, module.wrong_mask, module.unsolved):
        fn.__module__ = "__main__"
    return module


def test_a_passing_notebook_function_is_saved_with_its_imports_and_helpers(notebook, tmp_path):
    folder = tmp_path / "my_solutions"
    path = remember(check_causal_mask, notebook.causal_mask, folder)
    assert (
        path == solution_path(check_causal_mask, folder) == folder / "lesson02_check_causal_mask.py"
    )
    text = path.read_text()
    assert "def diagonal" in text and "OFFSET = 0" in text and "import numpy as np" in text
    sys.modules.pop("my_solutions_lesson02_check_causal_mask", None)
    assert check_causal_mask(load_saved(path)).passed  # it runs alone, in a fresh module


def test_package_functions_are_not_saved(tmp_path):
    assert remember(check_sense, sense, tmp_path) is None
    assert not list(tmp_path.iterdir())


def test_the_checker_saves_on_success_only(notebook, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = check_causal_mask(notebook.causal_mask)
    assert result.passed and "Saved for the capstones: my_solutions" in repr(result)
    assert (tmp_path / "my_solutions" / "lesson02_check_causal_mask.py").exists()
    with pytest.raises(AssertionError):
        check_causal_mask(notebook.wrong_mask)
    assert not check_causal_mask(notebook.unsolved).passed
    assert len(list((tmp_path / "my_solutions").iterdir())) == 1


PIECE = Piece("mask", "02 · Exercise 2", check_causal_mask, check_causal_mask, "package")


def test_choose_prefers_a_passing_notebook_function(notebook, tmp_path):
    choice = choose(PIECE, notebook.causal_mask, tmp_path)
    assert choice.yours and choice.fn is notebook.causal_mask and choice.origin == "this notebook"


def test_a_broken_piece_is_named_and_replaced(notebook, tmp_path):
    path = solution_path(check_causal_mask, tmp_path)
    path.write_text("def solution(Tq, Tk):\n    return None\n")
    choice = choose(PIECE, notebook.wrong_mask, tmp_path)
    assert not choice.yours and choice.fn == "package"
    assert "this notebook: ExerciseFailed" in choice.origin
    assert f"{path}: ExerciseFailed" in choice.origin
    path.write_text("import not_a_module\nsolution = 1\n")
    choice = choose(PIECE, notebook.unsolved, tmp_path)
    assert (
        "this notebook: not solved yet" in choice.origin and "ModuleNotFoundError" in choice.origin
    )
    assert "mask" in table([choice]) and "package" in table([choice])


def test_a_saved_piece_is_used_when_the_notebook_has_none(notebook, tmp_path):
    remember(check_causal_mask, notebook.causal_mask, tmp_path)
    choice = choose(PIECE, None, tmp_path)
    assert choice.yours and choice.origin == str(solution_path(check_causal_mask, tmp_path))
    assert "no " in choose(PIECE, None, tmp_path / "empty").origin


def test_reference_pieces_drive_the_agent_like_the_package():
    perception, policy = load_perception(), load_policy()
    pieces = {p.name: p for p in PIECES}
    mine = [
        Choice(pieces["planner"], reference_astar, True, "test"),
        Choice(pieces["sense"], lambda b, w, c, r: sense(b, w, c, r), True, "test"),
        Choice(pieces["monitor"], lambda c, a, b: needs_replan(c, a, b), True, "test"),
    ]
    regime = Regime(size=8, objects=1, noise=0.6, slip=0.1)
    package = agent_from([], perception, policy)
    yours = agent_from(mine, perception, policy)
    rows = evaluate(regime, n_worlds=6, seed=3, agents=[package, yours])
    assert yours.name == "hybrid (yours)" and rows[0].replans > 0
    for field in ("success_rate", "mean_steps", "optimality", "replans"):
        assert getattr(rows[0], field) == getattr(rows[1], field)
    seeds = [3, 4, 5]
    worlds = [GridWorld.random(8, 0.3, 1, s) for s in seeds]
    episodes = [a.run_many(worlds, seeds, 0.6, 0.1, 200) for a in (package, yours)]
    assert [e.actions for e in episodes[0]] == [e.actions for e in episodes[1]]


def test_a_recovery_rule_replaces_the_policy():
    world = GridWorld.random(8, 0.3, 1, seed=4)
    rule = HybridAgent(None, None, recover=reference_recovery_move)
    episode = rule.run(world, seed=1, noise=0.0, slip=0.3)
    assert episode.success and episode.policy_steps > 0  # steps back without any policy


def test_a_wrong_search_is_refused_by_its_check():
    def greedy(start, successors, heuristic, is_goal):  # an inadmissible heuristic
        return reference_astar(start, successors, lambda s: 10 * heuristic(s), is_goal)

    astar_piece = {p.name: p for p in PIECES}["planner"]
    with pytest.raises(AssertionError):
        astar_piece.check(greedy)
