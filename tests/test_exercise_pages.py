"""No lesson gives an exercise away: nothing above an exercise shows most of its reference's lines.

A cell above an exercise may show a piece the answer reuses (lesson 02's single-head attention
inside multi-head attention), but a printed package source or a worked cell that holds most of the
reference would let a learner copy the answer instead of writing it.
"""

import inspect
import json
import re
from pathlib import Path

import pytest
from mutation import checkers

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHECKERS = checkers()
MOST = 0.5  # a cell above an exercise may hold at most this share of the reference's lines


def distinctive_lines(reference) -> list[str]:
    """The reference's code lines long enough to be its own (30 characters and more), comments cut."""
    source = inspect.getsource(reference)
    lines = [line.split("  #")[0].strip() for line in source.splitlines()[1:]]
    doc = reference.__doc__ or ""
    return [line for line in lines if len(line) >= 30 and line not in doc]


def _text(cell: dict) -> str:
    """A cell's source and the text of its outputs."""
    parts = ["".join(cell["source"])]
    for output in cell.get("outputs", []):
        parts.append("".join(output.get("text", "")))
        parts.append("".join(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def exercises(cells: list[dict]) -> list[tuple[str, int]]:
    """(checker name, index of the exercise's first cell): the cell with the stub, or the call."""
    found = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        for name in re.findall(r"\b(check_\w+)\(", "".join(cell["source"])):
            if name in CHECKERS:
                start = index
                while start > 0 and "NotImplementedError" not in "".join(cells[start]["source"]):
                    start -= 1
                found.append((name, start if index - start <= 2 else index))
    return found


def test_the_scan_finds_the_exercises_and_a_cell_that_gives_one_away():
    nb = json.loads(NOTEBOOKS[1].read_text())  # lesson 01
    assert exercises(nb["cells"]), "no exercise found in lesson 01"
    _, reference = CHECKERS["check_sgd_step"]
    leak = {"source": [inspect.getsource(reference)], "cell_type": "code"}
    lines = distinctive_lines(reference)
    assert lines and all(line in _text(leak) for line in lines)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_cell_above_an_exercise_holds_most_of_its_answer(path):
    cells = json.loads(path.read_text())["cells"]
    for name, start in exercises(cells):
        stub = _text(cells[start])  # what the exercise itself hands out is not a leak
        lines = [line for line in distinctive_lines(CHECKERS[name][1]) if line not in stub]
        for index in range(start):
            shown = [line for line in lines if line in _text(cells[index])]
            assert len(shown) <= MOST * len(lines), (
                f"{path.name}: cell {index} above {name}'s exercise shows {len(shown)} of the "
                f"{len(lines)} lines of its reference, e.g. {shown[0]!r}; move it after the "
                "exercise or show a part that is not the answer"
            )
