"""What the first cell of every lesson calls: set up Colab, pick the device, say how long to wait.

In Google Colab the first cell installs release `RELEASE` of this package from `REPO_URL`, then
`setup()` installs clang when it is missing (tinygrad's CPU device compiles kernels with it).
Elsewhere nothing is installed: `setup()` only picks the device and reports it.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Callable

from course.device import describe_device, pick_device

# The one place that names the repository; notebooks' Colab badges and install lines use the same URL.
REPO_URL = "https://github.com/neural-internals/tinygrad-course"
# The release (a git tag of REPO_URL, "v" + the version in pyproject.toml) that set-up cells install,
# so a lesson opened in Colab gets the package it was written for, not whatever main holds today.
RELEASE = "v0.2.0"

# Set to 1 for a short run of every lesson (CI does): fewer training steps, every cell still runs.
QUICK_ENV = "COURSE_QUICK"

Runner = Callable[[list[str]], None]


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def in_colab() -> bool:
    """True inside a Google Colab runtime (it imports the ``google.colab`` module at start-up)."""
    return "google.colab" in sys.modules


def quick() -> bool:
    """True when lessons should make their long loops short (``COURSE_QUICK=1``)."""
    return os.environ.get(QUICK_ENV, "0") not in ("", "0")


def pick(full, short):
    """`full` for a normal run, `short` when `quick()`: e.g. ``steps = pick(2000, 50)``."""
    return short if quick() else full


def install_clang(run: Runner = _run) -> bool:
    """Install clang with apt-get when it is missing and we are root; return True if it was installed."""
    if shutil.which("clang") is not None:
        return False
    if os.geteuid() != 0:
        raise RuntimeError(
            "clang is missing. help: run `sudo apt-get install -y clang`, then retry."
        )
    run(["apt-get", "update", "-qq"])
    run(["apt-get", "install", "-y", "-qq", "clang"])
    return True


def setup(run: Runner = _run) -> str:
    """Prepare a lesson: in Colab install clang if needed; everywhere pick the device.

    Returns one line naming the device, for the lesson to print, so the learner sees where kernels run.
    """
    if in_colab():
        install_clang(run)
    pick_device()
    line = describe_device()
    if quick():
        line += f"  [short run: {QUICK_ENV}=1]"
    return line
