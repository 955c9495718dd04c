"""Build the Colab-like environment that `make test-colab` runs the lessons in.

A fresh virtual environment of the given Python 3.12 gets Colab's preinstalled versions
(requirements-colab.txt), then the course the way a lesson's set-up cell installs it: `pip install -q`
from a git URL (here this clone, at its HEAD commit), not editable. `pip freeze` is written before and
after the course install, so a test can show that the install replaced nothing, and a Jupyter kernel
of that environment is registered inside it for the lessons to run in.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PINS = ROOT / "requirements-colab.txt"
KERNEL = "colab-py312"


def run(*command: str, **kwargs) -> str:
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, check=True, text=True, stdout=subprocess.PIPE, **kwargs).stdout


def find_python312() -> str:
    """The first interpreter that really runs Python 3.12: $PY312, python3.12, pyenv's, or ''."""
    chosen = os.environ.get("PY312", "")
    candidates = [chosen] if chosen else [shutil.which("python3.12") or ""]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))
    for candidate in filter(None, candidates):
        try:  # a pyenv shim for a version that is not selected exits with an error here
            probe = subprocess.run(
                [candidate, "-c", "import sys, venv; print(sys.version_info[:2] == (3, 12))"],
                capture_output=True,
                text=True,
            )
        except OSError:
            probe = None
        if probe and probe.stdout.strip() == "True":
            return candidate
        if candidate == chosen:
            sys.exit(f"PY312={chosen} is not a working Python 3.12. help: point PY312 at one")
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--find", action="store_true", help="print a Python 3.12 to use, or ''")
    parser.add_argument("--python", help="the Python 3.12 interpreter to build from")
    parser.add_argument("--env", type=Path, default=ROOT / "build" / "colab", help="its folder")
    args = parser.parse_args()
    if args.find:
        print(find_python312())
        return 0
    if not args.python:
        parser.error("--python is required (find one with --find)")
    head = run("git", "-C", str(ROOT), "rev-parse", "HEAD").strip()
    if run("git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no").strip():
        print(
            f"note: the course is installed as committed at {head[:12]}; uncommitted edits are not in it"
        )

    env = args.env.resolve()
    shutil.rmtree(env, ignore_errors=True)  # always fresh: nothing left from an earlier run
    run(args.python, "-m", "venv", str(env))
    python = str(env / "bin" / "python")
    pip = (python, "-m", "pip", "--disable-pip-version-check")
    run(*pip, "install", "-q", "-r", str(PINS))
    (env / "freeze-before.txt").write_text(run(*pip, "freeze"))
    # What the set-up cell runs in Colab, with this clone in place of REPO_URL and HEAD for RELEASE.
    run(*pip, "install", "-q", f"git+file://{ROOT}@{head}")
    (env / "freeze-after.txt").write_text(run(*pip, "freeze"))
    run(python, "-m", "ipykernel", "install", "--prefix", str(env), "--name", KERNEL)
    (env / "ready").write_text(head + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
