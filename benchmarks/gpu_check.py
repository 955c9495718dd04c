"""The course on a GPU in one command: the device, the unit tests, six lessons and the benchmark.

    python benchmarks/gpu_check.py --out build/gpu-check      # or: make gpu-check

Run on a machine with an NVIDIA GPU, it
1. reports what `course.device.pick_device` chooses and why (each backend tried, the driver, the
   renderer and compiler tinygrad uses);
2. measures `make bench`'s MiniGPT rows on that device beside PyTorch eager on CUDA (first, while
   the GPU is quiet);
3. runs the device-sensitive unit tests with that device as tinygrad's default;
4. runs lessons 02, 04, 05, 07, 09 and 11 in quick mode (COURSE_QUICK=1) on it, side by side;
and writes everything into the folder given by `--out`: `log.txt` (all output), `unit.xml`,
`lessons/` (the executed notebooks) and `gpu_check.md` (one Markdown report with the tables).

Each part has a time limit, so that the check fits in about seven minutes on a GPU machine; a part
that runs out of time is reported as such and the next one starts. `DEV=CPU` runs the same check on
the CPU: a dry run where only the device differs. Exits with 1 if a test or lesson failed.
"""

import argparse
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

# the tests whose results depend on the device: tensors, kernels, training and the agent's networks
UNIT_TESTS = (
    "test_attention.py",
    "test_transformer.py",
    "test_model.py",
    "test_compiled.py",
    "test_train.py",
    "test_checkpoint.py",
    "test_fusion.py",
    "test_ops.py",
    "test_perception.py",
    "test_policy.py",
    "test_heuristic_net.py",
    "test_agent.py",
)
LESSONS = ("02_", "04_", "05_", "07_", "09_", "11_")


class Log:
    """Print to the terminal and append to `log.txt`, flushed at once (a killed run keeps its log)."""

    def __init__(self, path: Path):
        self.file = path.open("w", encoding="utf-8")

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.file.write(text + "\n")
        self.file.flush()


def check_out_folder(out: Path) -> Path:
    """The output folder, new or empty, so that a report is never mixed with an older one."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SystemExit(
            f"error: --out {out} exists and is not an empty folder.\n"
            "help: name a new folder, or remove this one first."
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def report_device(log: Log) -> tuple[str, list[str]]:
    """Which device the course picks and why, as Markdown lines; returns (device, lines)."""
    from course.device import backend_details, backend_report, describe_device, pick_device

    tried = backend_report()
    device = pick_device()
    lines = ["## Device", "", "| backend | probe |", "|---|---|"]
    lines += [f"| {name} | {result} |" for name, result in tried]
    lines += ["", f"- chosen: **{device}**: {describe_device()}", f"- {backend_details(device)}"]
    smi = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
        capture_output=True,
        text=True,
    ) if _has("nvidia-smi") else None  # fmt: skip
    lines.append(f"- nvidia-smi: {smi.stdout.strip() if smi else 'not found (no NVIDIA driver)'}")
    for line in lines:
        log(line)
    return device, lines


def _has(program: str) -> bool:
    return any((Path(folder) / program).exists() for folder in os.environ["PATH"].split(os.pathsep))


def _env(device: str) -> dict[str, str]:
    """The environment of every child: the chosen device, quick lessons, this clone importable."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, DEV=device, COURSE_QUICK="1", PYTHONPATH=path, PYTHONUNBUFFERED="1")


def run_bench(device: str, timeout: float, log: Log) -> list[str]:
    """MiniGPT's training step and sampling on `device`, beside PyTorch eager on CUDA."""
    import tempfile

    from bench_minigpt import BATCH, SHAPES, _have_torch, run_worker

    os.environ["DEV"] = device  # the workers inherit it
    cache_dir = tempfile.mkdtemp(prefix="gpu-check-")
    deadline = time.monotonic() + timeout

    def row(kind: str, **flags) -> dict | None:
        left = deadline - time.monotonic()
        if left <= 5:
            log(f"  {kind} {flags}: skipped, the benchmark's {timeout:.0f} s are spent")
            return None
        log(f"  {kind} {flags} ...")
        return run_worker(kind, cache_dir, timeout=left, **flags)

    cuda = _have_torch() and _torch_cuda()
    log(f"PyTorch on CUDA: {'yes' if cuda else 'no (rows skipped)'}")
    train = {f"minigpt on {device}": row("minigpt-train", steps=10, tuned=1)}
    sample = {f"minigpt on {device}": row("minigpt-sample", tokens=200, cache=1, tuned=1)}
    if cuda:
        train["PyTorch eager, CUDA"] = row("torch-train", steps=10, threads=1, cuda=1)
        sample["PyTorch eager, CUDA"] = row("torch-sample", tokens=200, cache=1, threads=1, cuda=1)
    tokens_per_step = BATCH * SHAPES["block_size"]
    gflop = next((r["gflop"] for r in train.values() if r and "gflop" in r), None)
    torch_s = (train.get("PyTorch eager, CUDA") or {}).get("median")
    lines = [
        "## Benchmark",
        "",
        f"MiniGPT baby config {SHAPES}, batch {BATCH}; median of 10 replayed training steps, and "
        "200 sampled tokens with the KV cache (median of two calls after the first).",
        "",
        "| row | ms/step | GFLOPS | tokens/s | first step s | x PyTorch | sampling tokens/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, result in train.items():
        sampled = sample.get(name)
        if result is None:
            lines.append(f"| {name} | failed or out of time | | | | | |")
            continue
        seconds = result["median"]
        gflops = f"{gflop / seconds:.0f}" if gflop else "-"
        ratio = f"{seconds / torch_s:.1f}x" if torch_s else "-"
        sampling = f"{200 / sampled['median']:,.0f}" if sampled else "-"
        lines.append(
            f"| {name} | {seconds * 1e3:.1f} | {gflops} | {tokens_per_step / seconds:,.0f} | "
            f"{result['first']:.1f} | {ratio} | {sampling} |"
        )
    for line in lines:
        log(line)
    return lines


def _torch_cuda() -> bool:
    probe = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def run_unit_tests(device: str, out: Path, timeout: float, log: Log) -> tuple[bool, list[str]]:
    """The device-sensitive unit tests on `device`, in parallel; (all passed, Markdown lines)."""
    workers = str(max(1, min(8, (os.cpu_count() or 2) // 2)))
    xml = out / "unit.xml"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", workers]
    argv += ["--junitxml", str(xml), *(str(ROOT / "tests" / name) for name in UNIT_TESTS)]
    start = time.monotonic()
    status = _run_logged(argv, _env(device), timeout, log)
    seconds = time.monotonic() - start
    lines = ["## Unit tests", ""]
    if not xml.exists():
        lines.append(f"No results: pytest {status} after {seconds:.0f} s (see log.txt).")
        for line in lines:
            log(line)
        return False, lines
    suites = ElementTree.parse(xml).getroot()
    counts = {key: 0 for key in ("tests", "failures", "errors", "skipped")}
    failed = []
    for suite in suites.iter("testsuite"):
        for key in counts:
            counts[key] += int(suite.get(key, 0))
        for case in suite.iter("testcase"):
            for problem in (*case.findall("failure"), *case.findall("error")):
                message = (problem.get("message") or "").strip().splitlines()
                first = message[0][:120] if message else ""
                failed.append(f"| {case.get('classname')}.{case.get('name')} | {first} |")
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    lines.append(
        f"{len(UNIT_TESTS)} files, {counts['tests']} tests in {seconds:.0f} s: {passed} passed, "
        f"{counts['failures']} failed, {counts['errors']} errors, {counts['skipped']} skipped "
        f"(pytest {status})."
    )
    if failed:
        lines += ["", "| test | first line |", "|---|---|", *failed]
    for line in lines:
        log(line)
    return status == "ok" and not failed, lines


def run_lessons(device: str, out: Path, timeout: float, log: Log) -> tuple[bool, list[str]]:
    """Lessons in quick mode on `device`, a few at a time, each in its own kernel."""
    folder = out / "lessons"
    folder.mkdir()
    runner = ROOT / "notebooks" / "run_course.py"

    def one(prefix: str) -> tuple[str, float, str, str]:
        target = folder / prefix.rstrip("_")
        argv = [sys.executable, str(runner), "--out", str(target), "--only", prefix]
        start = time.monotonic()
        status = _run_logged(argv, _env(device), timeout, log, quiet=True)
        seconds = time.monotonic() - start
        summary = target / "summary.txt"
        if not summary.exists():
            return prefix, seconds, status, ""
        return prefix, seconds, *lesson_status(summary.read_text(encoding="utf-8"))

    parallel = max(1, min(len(LESSONS), (os.cpu_count() or 2) // 2))
    with ThreadPoolExecutor(parallel) as pool:
        results = list(pool.map(one, LESSONS))
    names = {p.name[:3]: p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    lines = ["## Lessons (quick mode)", "", "| lesson | seconds | status | key result |"]
    lines.append("|---|---|---|---|")
    lines += [
        f"| {names.get(p, p)} | {s:.0f} | {status} | {key} |" for p, s, status, key in results
    ]
    for line in lines:
        log(line)
    return all(status == "ok" for _, _, status, _ in results), lines


def lesson_status(summary: str) -> tuple[str, str]:
    """(status, key result) of the one lesson in run_course's summary.txt: "ok" or "FAILED: ..."."""
    rows = summary.splitlines()[2:-1]  # a header and a rule above, the total below
    if not rows:
        return "no result", ""
    rest = rows[0].split(None, 2)[2].strip()  # after the name and the seconds
    return ("ok", rest[2:].strip()) if rest.startswith("ok ") or rest == "ok" else (rest, "")


def _run_logged(
    argv: list[str], env: dict[str, str], timeout: float, log: Log, quiet: bool = False
) -> str:
    """Run a child with a time limit, its output into the log; "ok", "failed (rc N)" or "timed out"."""
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as stopped:
        log(_text(stopped.stdout)[-4000:] + _text(stopped.stderr)[-4000:])
        return f"timed out after {timeout:.0f} s"
    if not quiet or done.returncode != 0:
        log(done.stdout[-8000:] + done.stderr[-4000:])
    return "ok" if done.returncode == 0 else f"failed (rc {done.returncode})"


def _text(output: bytes | str | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, required=True, help="new or empty folder for the report"
    )
    parser.add_argument("--bench-s", type=float, default=150, help="time limit of the benchmark")
    parser.add_argument("--tests-s", type=float, default=150, help="time limit of the unit tests")
    parser.add_argument("--lessons-s", type=float, default=150, help="time limit of each lesson")
    args = parser.parse_args()
    out = check_out_folder(args.out)
    log = Log(out / "log.txt")
    start = time.monotonic()
    log(f"# Course check on {os.uname().nodename}, Python {sys.version.split()[0]}")
    log()
    device, report = report_device(log)
    report = ["# Course check", "", *report, ""]
    report += [*run_bench(device, args.bench_s, log), ""]
    tests_ok, lines = run_unit_tests(device, out, args.tests_s, log)
    report += [*lines, ""]
    lessons_ok, lines = run_lessons(device, out, args.lessons_s, log)
    report += [*lines, "", f"Whole check: {time.monotonic() - start:.0f} s."]
    partial = out / "gpu_check.md.part"
    partial.write_text("\n".join(report) + "\n", encoding="utf-8")
    partial.replace(out / "gpu_check.md")
    log(f"\nreport: {out / 'gpu_check.md'} ({time.monotonic() - start:.0f} s in all)")
    return 0 if tests_ok and lessons_ok else 1


if __name__ == "__main__":
    sys.exit(main())
