"""Lessons 00, 04 and 11 in JupyterLab, in a real browser, as a learner runs them.

A JupyterLab server starts on a free localhost port with a token, serving copies of the lessons (Lab
autosaves, and the stored lessons must not change). Playwright drives Debian's Chromium: it opens
each lesson, chooses Run > Run All Cells (short run, COURSE_QUICK=1), waits for the kernel, and
checks what the page shows. Screenshots go to build/browser/ for a person to look at.
"""

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest
from playwright.sync_api import Page, sync_playwright

from course.lesson import REPO_URL

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "browser"
LESSONS = ["00_start_here", "04_minigpt", "11_hybrid_agent"]
RUN_TIMEOUT_S = 900  # a whole short lesson on a busy 2-core machine
WARNING = re.compile(r"\b\w*Warning\b|\bWARNING\b|Traceback")

# What the page's notebook holds, read from JupyterLab's own model (exposed as window.jupyterapp).
NOTEBOOK_STATE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.widgets.filter((cell) => cell.model.type === "code");
  return {
    kernel: panel.sessionContext.session?.kernel?.status ?? "none",
    executed: cells.filter((cell) => cell.model.executionCount !== null).length,
    running: cells.filter((cell) => cell.promptNode?.textContent.includes("*")).length,
    total: cells.length,
    outputs: panel.content.widgets.map((cell) =>
      cell.model.type === "code" ? cell.model.outputs.toJSON() : []),
  };
}"""

# For every code cell: how many PNG outputs its model has, and how many decoded images its DOM shows.
FIGURES = """async () => {
  const notebook = window.jupyterapp.shell.currentWidget.content;
  const found = [];
  for (const [index, cell] of notebook.widgets.entries()) {
    if (cell.model.type !== "code") continue;
    const pngs = cell.model.outputs.toJSON().filter((o) => o.data && o.data["image/png"]).length;
    if (pngs === 0) continue;
    await notebook.scrollToItem(index, "center");
    const images = [...cell.node.querySelectorAll(".jp-RenderedImage img")];
    await Promise.all(images.map((img) => img.decode().catch(() => null)));
    const drawn = images.filter((img) => img.complete && img.naturalWidth > 0).length;
    found.push({ index, pngs, images: images.length, drawn });
  }
  return found;
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(base: str, token: str, path: str, method: str = "GET") -> object:
    request = urllib.request.Request(
        f"{base}{path}", method=method, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a free port with a token; stopped by its process id afterwards."""
    served = tmp_path_factory.mktemp("lessons")
    for name in LESSONS:  # without stored outputs: everything the checks see comes from this run
        notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(notebook, served / f"{name}.ipynb")
    state = tmp_path_factory.mktemp("lab-state")  # no settings or open tabs from earlier runs
    news = (
        state
        / "settings"
        / "@jupyterlab"
        / "apputils-extension"
        / "notification.jupyterlab-settings"
    )
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')  # no toast over the page
    env = {
        **os.environ,
        "COURSE_QUICK": "1",
        "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
    }
    port, token = free_port(), secrets.token_hex(16)
    SHOTS.mkdir(parents=True, exist_ok=True)
    log = open(SHOTS / "jupyterlab.log", "w")  # noqa: SIM115 (closed when the server has stopped)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--expose-app-in-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={served}",
            "--ServerApp.allow_root=True",  # CI and containers run as root
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"JupyterLab exited; see {SHOTS / 'jupyterlab.log'}"
            try:
                api(base, token, "/api/status")
                break
            except OSError:
                assert time.monotonic() < deadline, "JupyterLab did not answer within 120 s"
                time.sleep(0.5)
        yield base, token
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGTERM)  # the server shuts its kernels down, then exits
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing. help: sudo apt-get install -y chromium chromium-driver"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        yield browser
        browser.close()


def wait_for_run(page: Page, timeout_s: float) -> dict:
    """Poll the notebook until every code cell ran and the kernel is idle, or a cell failed."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = page.evaluate(NOTEBOOK_STATE)
        errors = [o for cell in state["outputs"] for o in cell if o["output_type"] == "error"]
        done = state["executed"] == state["total"] and state["running"] == 0
        if errors or (done and state["kernel"] == "idle"):
            return state
        assert time.monotonic() < deadline, (
            f"after {timeout_s:.0f} s only {state['executed']} of {state['total']} cells ran"
        )
        time.sleep(1)


@pytest.fixture(scope="module")
def ran(lab, browser):
    """Each lesson opened in its own tab and run top to bottom: name -> (page, final state)."""
    base, token = lab
    done = {}

    def run(name: str):
        if name not in done:
            try:
                done[name] = open_and_run(name)
            except Exception as error:  # every test of this lesson reports it
                done[name] = error
        if isinstance(done[name], Exception):
            pytest.fail(f"{name} did not run in JupyterLab: {done[name]}")
        return done[name]

    def open_and_run(name: str):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        script_errors = []
        page.on("pageerror", lambda error: script_errors.append(str(error)))
        # A workspace of its own, so the tab shows this lesson alone.
        page.goto(f"{base}/lab/workspaces/{name}/tree/{name}.ipynb?reset&token={token}")
        page.wait_for_function(
            f"""() => {{
              const panel = window.jupyterapp?.shell.currentWidget;
              return panel?.context?.path === "{name}.ipynb"
                && panel.sessionContext?.session?.kernel?.status === "idle";
            }}""",
            timeout=120_000,
        )
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()  # Run All Cells
        state = wait_for_run(page, RUN_TIMEOUT_S)
        page.evaluate("() => window.jupyterapp.shell.currentWidget.content.scrollToItem(0)")
        page.screenshot(path=SHOTS / f"{name}.png")
        state["script_errors"] = script_errors  # the list goes on filling while the page is open
        return page, state

    yield run
    for result in done.values():
        if not isinstance(result, Exception):
            result[0].close()


@pytest.mark.parametrize("name", LESSONS)
def test_every_cell_runs_without_error_or_warning(ran, name):
    _, state = ran(name)
    problems = []
    for index, outputs in enumerate(state["outputs"]):
        for output in outputs:
            if output["output_type"] == "error":
                problems.append(f"cell {index}: {output['ename']}: {output['evalue']}")
            elif output.get("name") == "stderr" and WARNING.search(output["text"]):
                problems.append(f"cell {index}: {output['text'].strip()[:200]}")
    problems += [f"page script: {error}" for error in state["script_errors"]]
    assert not problems, "\n".join(problems)
    assert state["executed"] == state["total"]


@pytest.mark.parametrize("name", LESSONS)
def test_every_figure_is_drawn_as_an_image(ran, name):
    page, state = ran(name)
    figures = page.evaluate(FIGURES)
    if name != "00_start_here":  # lesson 00 draws nothing; the others teach with figures
        assert figures, f"{name} showed no figure"
    for figure in figures:
        assert figure["pngs"] == figure["images"] == figure["drawn"], f"cell {figure['index']}"
    if figures:
        cell = page.locator(".jp-Notebook .jp-Cell").nth(figures[0]["index"])
        cell.scroll_into_view_if_needed()
        cell.screenshot(path=SHOTS / f"{name}_figure.png")
    # A figure that failed to render shows only its text form, "<Figure size 640x480 with 1 Axes>".
    for index, outputs in enumerate(state["outputs"]):
        for output in outputs:
            data = output.get("data", {})
            assert "image/png" in data or "<Figure" not in data.get("text/plain", ""), index


def test_training_progress_is_one_updating_bar(ran):
    page, _ = ran("04_minigpt")
    bars = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    texts = [text for text in bars.all_inner_texts() if "train:" in text]
    assert texts, "lesson 04 showed no training progress bar"
    bar = bars.filter(has_text="train:").first
    bar.scroll_into_view_if_needed()
    bar.screenshot(path=SHOTS / "04_training_bar.png")
    for text in texts:
        lines = [line for line in text.splitlines() if line.strip()]
        assert len(lines) == 1, f"the bar shows as {len(lines)} lines: {lines[:3]}"
        assert "100%" in lines[0]


def test_animation_plays(ran):
    page, _ = ran("11_hybrid_agent")
    animation = page.locator(".jp-OutputArea-output .animation").first
    frame = animation.locator("img").first
    slider = animation.locator("input[type=range]").first
    # Select the cell first, as a learner does by clicking it: selecting scrolls the notebook to the
    # cell, and a click on Play that selects the cell lands wherever the button was before the scroll.
    cell = page.locator(".jp-Notebook .jp-Cell", has=animation).first
    cell.locator(".jp-InputPrompt").first.click()
    page.wait_for_timeout(500)
    animation.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    first_frame, first_position = frame.get_attribute("src"), int(slider.input_value())
    assert first_frame and first_frame.startswith("data:image/"), "the animation shows no frame"
    animation.screenshot(path=SHOTS / "11_animation_before.png")

    animation.locator("button[title='Play']").first.click()
    seen = {first_frame}
    deadline = time.monotonic() + 20
    while len(seen) < 3 and time.monotonic() < deadline:
        seen.add(frame.get_attribute("src"))
        time.sleep(0.1)
    animation.screenshot(path=SHOTS / "11_animation_playing.png")
    assert len(seen) >= 3, f"after pressing play the picture changed {len(seen) - 1} times"
    assert int(slider.input_value()) > first_position, "the slider did not move"


@pytest.mark.parametrize("name", LESSONS)
def test_colab_badge_opens_this_lesson(ran, name):
    page, _ = ran(name)
    links = page.locator(".jp-MarkdownOutput a[href*='colab.research.google.com']")
    assert links.count() == 1, f"{name} has {links.count()} Colab links"
    url = urlparse(links.first.get_attribute("href"))
    repo = REPO_URL.removeprefix("https://github.com/")
    assert (url.scheme, url.netloc) == ("https", "colab.research.google.com")
    assert url.path == f"/github/{repo}/blob/main/notebooks/{name}.ipynb"
    assert not (url.params or url.query or url.fragment)
    badge = links.first.locator("img")
    assert badge.get_attribute("src") == "https://colab.research.google.com/assets/colab-badge.svg"
    assert badge.get_attribute("alt") == "Open In Colab"
