"""Run every lesson headlessly, in order, and print a table: lesson, seconds, status, key result.

Executed copies of the notebooks go to `--out` (default ``build/``); the sources are left untouched.
A lesson states its key result by printing a line that starts with ``Key result:``.

Outputs are stored as a learner would see them: a progress bar's many updates become its last line
(``coalesce_streams``), and the kernel talks to this script over encrypted sockets (CurveZMQ), so
it does not warn about plain-text TCP.
"""

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from traitlets.config import Config

NOTEBOOKS = Path(__file__).resolve().parent
KEY_PREFIX = "Key result:"


def key_result(notebook: nbformat.NotebookNode) -> str:
    """The last ``Key result:`` line a notebook printed, without the prefix ('' if none)."""
    found = ""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines():
                if line.startswith(KEY_PREFIX):
                    found = line[len(KEY_PREFIX) :].strip()
    return found


def run_lesson(
    path: Path, out_dir: Path, timeout: int, kernel: str = "", cwd: Path = NOTEBOOKS
) -> tuple[float, str, str]:
    """Execute one notebook into `out_dir` (in `cwd`, with `kernel` or the notebook's own);
    return (seconds, status, key result)."""
    notebook = nbformat.read(path, as_version=4)
    config = Config()
    config.KernelManager.transport_encryption = "auto"  # CurveZMQ where the kernel supports it
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=kernel,
        coalesce_streams=True,
        config=config,
        resources={"metadata": {"path": str(cwd)}},
    )
    start = time.perf_counter()
    try:
        client.execute()
        status = "ok"
    except CellExecutionError as error:
        status = f"FAILED: {str(error).strip().splitlines()[-1][:60]}"
    seconds = time.perf_counter() - start
    partial = out_dir / (path.name + ".part")
    nbformat.write(notebook, partial)
    partial.replace(out_dir / path.name)
    return seconds, status, key_result(notebook)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=Path("build"), help="folder for executed notebooks"
    )
    parser.add_argument("--only", default="", help="run only lessons whose file name contains this")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed for one cell")
    parser.add_argument("--kernel", default="", help="kernel to run them in (default: their own)")
    parser.add_argument(
        "--cwd",
        type=Path,
        default=NOTEBOOKS,
        help="folder the lessons run in (default: notebooks/)",
    )
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    lessons = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if args.only in p.name)
    rows = []
    for path in lessons:
        print(f"running {path.name} ...", flush=True)
        rows.append((path.stem, *run_lesson(path, args.out, args.timeout, args.kernel, args.cwd)))

    header = f"{'lesson':<32} {'seconds':>8}  {'status':<10} key result"
    lines = [header, "-" * len(header)]
    lines += [f"{name:<32} {sec:>8.1f}  {status:<10} {key}" for name, sec, status, key in rows]
    lines.append(f"{'total':<32} {sum(r[1] for r in rows):>8.1f}")
    table = "\n".join(lines)
    print(table)
    partial = args.out / "summary.txt.part"
    partial.write_text(table + "\n")
    partial.replace(args.out / "summary.txt")
    return 0 if all(r[2] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
