"""Every lesson opens the same way: a Colab badge and a set-up cell that use the one repository URL."""

from pathlib import Path

import nbformat
import pytest

from minigpt.lesson import REPO_URL

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_lessons_exist():
    assert NOTEBOOKS, "no lessons found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_opens_with_badge_and_setup(path):
    notebook = nbformat.read(path, as_version=4)
    first, setup = notebook.cells[0], notebook.cells[1]
    repo = REPO_URL.removeprefix("https://github.com/")
    assert first.cell_type == "markdown"
    assert (
        f"colab.research.google.com/github/{repo}/blob/main/notebooks/{path.name}" in first.source
    )
    assert setup.cell_type == "code"
    assert f'git+{REPO_URL}"' in setup.source
    assert "print(setup())" in setup.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_states_a_key_result(path):
    notebook = nbformat.read(path, as_version=4)
    assert any("Key result:" in cell.source for cell in notebook.cells if cell.cell_type == "code")
