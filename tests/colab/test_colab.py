"""The course where Colab learners run it: Python 3.12 with Colab's preinstalled packages.

`make test-colab` builds the environment (tests/colab/make_env.py); these tests check that installing
the course replaced none of Colab's packages, that the installed course is a normal (not editable)
install, and that every lesson runs top to bottom there (short run) without errors or warnings.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = Path(os.environ.get("COURSE_COLAB_ENV", "build/colab")).resolve()
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
KERNEL = "colab-py312"
WARNING = re.compile(r"\b\w*Warning\b|\bWARNING\b")


def packages(freeze: str) -> dict[str, str]:
    """`pip freeze` text -> {normalised name: version or direct URL}."""
    found = {}
    for line in freeze.splitlines():
        name, sep, version = line.partition("==")
        if not sep:
            name, sep, version = line.partition(" @ ")
        if sep:
            found[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return found


@pytest.fixture(scope="module")
def env():
    assert (ENV / "ready").exists(), f"no Colab environment in {ENV}. help: run `make test-colab`"
    return ENV


def test_install_replaces_no_colab_package(env):
    before = packages((env / "freeze-before.txt").read_text())
    after = packages((env / "freeze-after.txt").read_text())
    pins = packages((ROOT / "requirements-colab.txt").read_text())
    assert pins, "requirements-colab.txt pins nothing"
    for name, version in pins.items():
        assert after.get(name) == version, (
            f"{name}: Colab has {version}, after install {after.get(name)}"
        )
    changed = {name: (version, after.get(name)) for name, version in before.items()}
    changed = {name: pair for name, pair in changed.items() if pair[0] != pair[1]}
    assert not changed, f"installing the course replaced {changed}"


def test_course_is_installed_from_git_not_editable(env, tmp_path):
    after = packages((env / "freeze-after.txt").read_text())
    assert after.get("neural-internals", "").startswith("git+file://"), after.get(
        "neural-internals"
    )
    where = subprocess.run(
        [
            str(env / "bin" / "python"),
            "-c",
            "import minigpt, neurosymbolic; print(minigpt.__file__)",
        ],
        cwd=tmp_path,
        check=True,
        text=True,
        capture_output=True,
    ).stdout.strip()
    installed = Path(where).parent
    assert env / "lib" in installed.parents and "site-packages" in installed.parts, where
    assert (installed / "tuned_kernels.json").exists(), "the tuned kernels were not installed"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_lesson_runs_in_colab_versions(env, path, tmp_path):
    out = env / "executed"
    out.mkdir(exist_ok=True)
    jupyter_path = os.pathsep.join(
        filter(None, [str(env / "share" / "jupyter"), os.environ.get("JUPYTER_PATH")])
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "notebooks" / "run_course.py"), "--out", str(out)]
        + [
            "--only",
            path.name,
            "--kernel",
            KERNEL,
            "--cwd",
            str(tmp_path),
        ],  # like Colab's /content
        env={**os.environ, "COURSE_QUICK": "1", "JUPYTER_PATH": jupyter_path},
        text=True,
        capture_output=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    notebook = nbformat.read(out / path.name, as_version=4)
    problems = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                problems.append(f"cell {index}: {output.ename}: {output.evalue}")
            elif output.output_type == "stream" and WARNING.search(output.text):
                problems.append(f"cell {index}: {output.text.strip()[:300]}")
    assert not problems, "\n".join(problems)


def test_lesson_04_reads_the_corpus_its_stored_outputs_were_made_from(env, tmp_path):
    """Lesson 04's stored outputs were made with Python 3.11; the course installed in Colab's 3.12
    loads the same shipped corpus bytes, so the same text, vocabulary, batches and losses."""
    script = (
        "import hashlib; from minigpt.data import CharTokenizer, STDLIB_CORPUS_SHA256, load_corpus; "
        "text = load_corpus(); assert hashlib.sha256(text.encode()).hexdigest() == "
        "STDLIB_CORPUS_SHA256; vocab = CharTokenizer.from_text(text).vocab_size; "
        "print(f'{len(text):,} characters, vocabulary of {vocab}')"
    )
    line = subprocess.run(
        [str(env / "bin" / "python"), "-c", script],
        cwd=tmp_path,
        check=True,
        text=True,
        capture_output=True,
    ).stdout.strip()
    stored = nbformat.read(ROOT / "notebooks" / "04_minigpt.ipynb", as_version=4)
    texts = [o.get("text", "") for cell in stored.cells for o in cell.get("outputs", [])]
    assert any(line in text for text in texts), f"3.12 read {line!r}; lesson 04 stored another"
