"""Every lesson opens the same way (a Colab badge, a set-up cell that installs the pinned release),
and what a learner sees on opening a lesson is clean: no build-machine paths, warnings or progress-bar
chunks in the stored outputs."""

import re
from pathlib import Path

import nbformat
import pytest

from course.lesson import RELEASE, REPO_URL

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# An absolute file path (two or more parts) standing on its own: "/root/.cache/x", "'/work/a/b.json'".
# URLs do not match ("https://host/a": the slashes follow ':' or '/'), nor do ratios like "tokens/s".
ABSOLUTE_PATH = re.compile(r"""(?:^|[\s'"(=\[,])(/[\w.~-]+/[\w.~/-]*|[A-Za-z]:\\[\w.-]+)""")
# A warning class in Python's warning format ("TqdmWarning: ...") or a logger's "WARNING".
WARNING = re.compile(r"\b\w*Warning\b|\bWARNING\b")
# Inline images in HTML outputs (animations) are base64, where '/' is an ordinary character.
DATA_URI = re.compile(r"""data:[^"')]*""")


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
    assert f'%pip install -q "git+{REPO_URL}@{RELEASE}"' in setup.source
    assert f"release {RELEASE}" in setup.source, (
        "the set-up cell should say which release it installs"
    )
    assert "print(setup())" in setup.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_states_a_key_result(path):
    notebook = nbformat.read(path, as_version=4)
    assert any("Key result:" in cell.source for cell in notebook.cells if cell.cell_type == "code")


def output_texts(output: nbformat.NotebookNode) -> list[str]:
    """The text a learner reads in one stored output (images and inline image data left out)."""
    if output.output_type == "stream":
        return [output.text]
    if output.output_type == "error":
        return [output.ename, output.evalue, *output.traceback]
    data = output.get("data", {})
    return [DATA_URI.sub("", text) for mime, text in data.items() if mime.startswith("text/")]


def output_problems(notebook: nbformat.NotebookNode) -> list[str]:
    """One line for each path, warning or unmerged progress bar found in the stored outputs."""
    problems = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            for text in output_texts(output):
                problems += [f"cell {index}: path {m[1]!r}" for m in ABSOLUTE_PATH.finditer(text)]
                problems += [f"cell {index}: warning {m[0]!r}" for m in WARNING.finditer(text)]
                if output.output_type == "stream" and "\r" in text:
                    problems.append(
                        f"cell {index}: progress bar stored as {text.count(chr(13))} updates"
                    )
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_are_clean(path):
    problems = output_problems(nbformat.read(path, as_version=4))
    assert not problems, (
        f"{path.name} stores outputs a learner should not see:\n  "
        + "\n  ".join(problems[:10])
        + f"\nhelp: re-run it with `python notebooks/run_course.py --out notebooks --only {path.stem[:3]}`"
        " after removing the cause (print paths relative to the project or home, not absolute)"
    )


def stream(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("stream", name="stderr", text=text)


@pytest.mark.parametrize(
    "output, found",
    [
        (
            stream(
                "/home/ada/.venv/lib/python3.12/site-packages/tqdm/auto.py:21: TqdmWarning: x\n"
            ),
            2,
        ),
        (stream("TuningStatus(path='/work/main/minigpt/tuned_kernels.json')\n"), 1),
        (stream("\rtrain:  50%|#####     | 1/2\rtrain: 100%|##########| 2/2\n"), 1),
        (nbformat.v4.new_output("display_data", data={"text/plain": "C:\\Users\\ada"}), 1),
        (stream("train: 100%|##########| 400/400 [00:41<00:00, 9.7it/s, loss=1.9]\n"), 0),
        (
            stream("see https://github.com/tinygrad/tinygrad/blob/master/x.py at 3,025 tokens/s\n"),
            0,
        ),
        (
            nbformat.v4.new_output(
                "execute_result",
                data={"text/html": '<img src="data:image/png;base64,\n/9j/4A/Q==">'},
            ),
            0,
        ),
    ],
)
def test_output_scan_finds_paths_warnings_and_bar_chunks(output, found):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[output])])
    assert len(output_problems(notebook)) == found


# Prose = outputs. A number in a lesson's text that reads as a measurement (two or more decimals, a
# thousands separator or a percentage) must be printed by a code cell above it. A markdown cell can
# bring more numbers under the rule with <!-- quotes: 3.5; 81,920 --> (the same check), and names
# a number that is a setting or a derivation, not an output, with <!-- not an output: 0.29 -->.
MEASURED = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+\.\d{2,}|\d+(?:\.\d+)?%)(?![\w.]\d)")
DECLARED = re.compile(r"<!--\s*(quotes|not an output):(.*?)-->", re.S)
OUTPUT_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
CONVENTIONS = {"95%"}  # the usual confidence of an interval: a convention, not a result


def _prose(markdown: str) -> str:
    """The text a reader reads as numbers: code, links, URLs and HTML comments taken out."""
    for pattern in (r"```.*?```", r"`[^`]*`", r"\]\([^)]*\)", r"https?://\S+", r"<!--.*?-->"):
        markdown = re.sub(pattern, " ", markdown, flags=re.S)
    return markdown


def _printed(token: str, printed: list[float]) -> bool:
    """Whether `token` ("0.793", "32,772", "43%") is a printed value at the token's precision."""
    value = float(token.rstrip("%").replace(",", ""))
    decimals = len(token.rstrip("%").partition(".")[2])
    scales = (1, 100) if token.endswith("%") else (1,)
    return any(round(v * scale, decimals) == value for v in printed for scale in scales)


def prose_mismatches(cells: list[dict]) -> list[str]:
    """Every number of the prose not printed by a code cell above it, as 'cell N: number'."""
    printed: list[float] = []
    found = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            for output in cell.get("outputs", []):
                text = output.get("text", "") + output.get("data", {}).get("text/plain", "")
                printed += [float(t.replace(",", "")) for t in OUTPUT_NUMBER.findall(text)]
            continue
        declared = {"quotes": [], "not an output": []}
        for kind, numbers in DECLARED.findall(cell["source"]):
            declared[kind] += [n.strip() for n in numbers.split(";") if n.strip()]
        prose = _prose(cell["source"])
        for token in declared["quotes"]:
            if token not in prose:
                found.append(f"cell {index}: {token} is declared as quoted but not in the text")
        wanted = set(MEASURED.findall(prose)) - set(declared["not an output"]) - CONVENTIONS
        for token in sorted(wanted | set(declared["quotes"])):
            if not _printed(token, printed):
                found.append(f"cell {index}: {token}")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_numbers_in_the_prose_are_printed_above_them(path):
    """A sentence that quotes a result quotes the stored output above it, so that a re-run that
    changes the number breaks this test instead of leaving the text wrong."""
    notebook = nbformat.read(path, as_version=4)
    mismatches = prose_mismatches(notebook.cells)
    assert not mismatches, (
        f"numbers in the text of {path.name} that no output above prints: {mismatches}; print them "
        "in the cell above, or mark a setting <!-- not an output: N -->"
    )


def test_prose_check_finds_a_number_no_output_printed():
    def cells(text: str) -> list[dict]:
        code = {"cell_type": "code", "source": "", "outputs": [{"text": "accuracy 0.793\n"}]}
        return [code, {"cell_type": "markdown", "source": text}]

    assert prose_mismatches(cells("about a fifth wrong (accuracy 0.793)")) == []
    assert prose_mismatches(cells("accuracy 0.79 (rounded)")) == []
    assert prose_mismatches(cells("accuracy 0.812")) == ["cell 1: 0.812"]
    assert prose_mismatches(cells("3.5 times <!-- quotes: 3.5 -->")) == ["cell 1: 3.5"]
    assert prose_mismatches(cells("a rate of 0.29 <!-- not an output: 0.29 -->")) == []
    assert prose_mismatches(cells("79%, `0.555` in code")) == []
