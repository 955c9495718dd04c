"""Device selection: DEV is honoured, unknown names and a missing clang give errors that name the fix."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tinygrad import Device

from course.device import (
    DeviceError,
    backend_details,
    backend_report,
    clang_path,
    describe_cpu,
    describe_device,
    pick_device,
)


@pytest.fixture
def no_dev(monkeypatch):
    monkeypatch.delenv("DEV", raising=False)
    monkeypatch.delenv("CC", raising=False)


def test_dev_cpu_is_honoured(monkeypatch):
    monkeypatch.setenv("DEV", "CPU")
    assert pick_device() == "CPU"


def test_unknown_dev_names_the_choices(monkeypatch):
    monkeypatch.setenv("DEV", "TPU")
    with pytest.raises(DeviceError, match=r"DEV='TPU' is not a tinygrad device[\s\S]*DEV=CPU"):
        pick_device()


def test_without_gpu_the_cpu_is_chosen(no_dev):
    assert pick_device(prefer=()) == "CPU"
    assert Device.DEFAULT == "CPU"
    assert "DEV" not in os.environ  # tinygrad's default changed, the environment did not


def test_missing_clang_names_clang_and_the_fix(no_dev, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no clang anywhere
    assert clang_path() is None
    with pytest.raises(DeviceError, match=r"needs clang[\s\S]*apt-get install -y clang"):
        pick_device(prefer=())


def test_cc_that_is_not_clang_is_rejected(no_dev, monkeypatch):
    monkeypatch.setenv("CC", sys.executable)
    with pytest.raises(DeviceError, match="is not clang"):
        pick_device(prefer=())


def test_dev_cpu_without_clang(monkeypatch, tmp_path):
    monkeypatch.setenv("DEV", "CPU")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CC", raising=False)
    with pytest.raises(DeviceError, match=r"DEV='CPU' needs clang[\s\S]*xcode-select --install"):
        pick_device()


def test_missing_clang_in_a_fresh_process(tmp_path):
    """End to end, GPU probes included: a Python whose PATH has no clang fails with the fix."""
    (tmp_path / "python").symlink_to(sys.executable)
    env = {k: v for k, v in os.environ.items() if k not in ("DEV", "CC")}
    env["PATH"] = str(tmp_path)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    result = subprocess.run(
        [sys.executable, "-c", "from course.device import pick_device; pick_device()"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "DeviceError" in result.stderr
    assert "apt-get install -y clang" in result.stderr


def test_describe_device_names_device_version_and_compiler(monkeypatch):
    monkeypatch.setenv("DEV", "CPU")
    pick_device()
    line = describe_device()
    assert line.startswith("device CPU (clang ")
    assert "tinygrad 0.14.0" in line


def test_backend_report_names_the_requested_device(monkeypatch):
    monkeypatch.setenv("DEV", "CPU")
    assert backend_report() == [("DEV=CPU", "works")]
    monkeypatch.setenv("DEV", "TPU")
    [(name, result)] = backend_report()
    assert name == "DEV=TPU" and "not a tinygrad device" in result


def test_backend_report_says_why_each_gpu_was_passed_over(monkeypatch):
    monkeypatch.delenv("DEV", raising=False)
    report = dict(backend_report(prefer=("NOSUCHGPU",)))
    assert report["CPU"] == "works"
    assert report["NOSUCHGPU"] != "works"  # the probe's error, e.g. an unknown device
    assert pick_device(prefer=()) == "CPU"


def test_backend_details_names_renderer_and_compiler():
    assert backend_details("CPU").startswith("renderer ClangRenderer, compiler ClangCompiler")


XEON = "processor : 0\nmodel name : Intel(R) Xeon(R) CPU @ 2.20GHz\ncpu family : 6\nmodel : 85\n"


def test_describe_cpu_names_the_generation_vectors_and_cores():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with_512 = describe_cpu(XEON + "flags : fpu avx2 avx512f\n")
    assert (
        with_512 == f"Intel(R) Xeon(R) CPU @ 2.20GHz (family 6, model 85; AVX-512), {cores} cores"
    )
    assert "; AVX2)" in describe_cpu(XEON + "flags : fpu avx2\n")
    assert describe_cpu("").endswith(f", {cores} cores")  # no /proc/cpuinfo (macOS, Windows)
    assert describe_cpu().endswith(f"{cores} cores")
