"""Build the Colab-like environment that `make test-colab` runs the lessons in.

A fresh virtual environment of the given Python 3.12 gets Colab's preinstalled versions
(requirements-colab.txt), then the course the way a lesson's set-up cell installs it: `pip install -q`
from a git URL (here this clone, at its HEAD commit), not editable. `pip freeze` is written before and
after the course install, so a test can show that the install replaced nothing, and a Jupyter kernel
of that environment is registered inside it for the lessons to run in.
"""

import argparse
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--python", required=True, help="a Python 3.12 interpreter")
    parser.add_argument("--env", type=Path, required=True, help="folder for the environment")
    args = parser.parse_args()

    version = run(args.python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])").strip()
    if version != "3.12":
        sys.exit(f"{args.python} is Python {version}; Colab runs 3.12. help: pass PY312=python3.12")
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
