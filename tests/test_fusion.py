"""Kernel counts, bytes and generated sources from minigpt.fusion, checked against hand counts."""

import shutil
import subprocess

import numpy as np
import pytest
from tinygrad import Device, Tensor, TinyJit

from minigpt.fusion import (
    compare_fused_unfused,
    kernel_report,
    kernel_sources,
)

N = 64  # (N, N) inputs: small enough to run in milliseconds, big enough to give real loops
ON_CPU = Device.DEFAULT.split(":")[0] == "CPU"


@pytest.fixture(scope="module")
def ab() -> tuple[Tensor, Tensor]:
    Tensor.manual_seed(0)
    return Tensor.randn(N, N).realize(), Tensor.randn(N, N).realize()


def expected(a: Tensor, b: Tensor) -> float:
    a64, b64 = a.numpy().astype(np.float64), b.numpy().astype(np.float64)
    return float((a64 @ b64.T + a64).sum())


def test_fused_expression_is_one_kernel_moving_only_inputs_and_output(ab):
    a, b = ab
    report = kernel_report(lambda: (a @ b.T + a).sum().realize())
    assert report.kernels == 1 and report.copies == 0
    assert report.names[0].startswith("r_") and "\x1b" not in report.names[0]
    assert report.bytes == 2 * N * N * 4 + 4  # reads a and b once, writes one float32
    assert report.flops >= 2 * N**3  # the matmul's multiply-adds at least
    assert report.seconds > 0


def test_copies_are_counted_apart():
    report = kernel_report(lambda: (Tensor(np.ones(8, dtype=np.float32)) + 1).realize())
    assert (report.kernels, report.copies) == (1, 1)


def test_fused_runs_fewer_kernels_and_moves_fewer_bytes(ab):
    a, b = ab
    result = compare_fused_unfused(lambda step: step(step(step(a @ b.T) + a).sum()), repeats=1)
    assert result.fused.kernels == 1 and result.unfused.kernels == 3
    assert result.fused.kernels < result.unfused.kernels
    assert result.fused.bytes < result.unfused.bytes
    # unfused: matmul reads a, b and writes s1; add reads s1, a and writes s2; sum reads s2
    assert result.unfused.bytes == 7 * N * N * 4 + 4
    assert result.bytes_saved == 5 * N * N * 4
    assert result.kernels_saved == 2
    assert result.results_match and result.max_abs_diff < 1e-3
    assert "unfused / fused" in result.table() and "saves 2 of 3 kernels" in str(result)


def test_values_match_numpy(ab):
    a, b = ab
    value = (a @ b.T + a).sum().item()
    assert value == pytest.approx(expected(a, b), rel=1e-5, abs=1e-3)


def test_jit_replay_is_reported(ab):
    a, b = ab

    @TinyJit
    def f(x: Tensor, y: Tensor) -> Tensor:
        return (x @ y.T + x).sum()

    reports = [
        kernel_report(lambda: f(a, b)) for _ in range(4)
    ]  # call 1 eager, 2 capture, 3+ replay
    assert [r.kernels for r in reports] == [1, 1, 1, 1]
    assert reports[-1].bytes == 2 * N * N * 4 + 4
    assert f(a, b).item() == pytest.approx(expected(a, b), rel=1e-5, abs=1e-3)


@pytest.mark.skipif(not ON_CPU or shutil.which("clang") is None, reason="CPU source needs clang")
def test_kernel_source_compiles_and_contains_the_fused_loop(ab, tmp_path):
    a, b = ab
    sources = kernel_sources(lambda: (a @ b.T + a).sum().realize())
    assert len(sources) == 1
    kernel = sources[0]
    assert kernel.device.startswith("CPU") and f"void {kernel.name}(" in kernel.source
    assert "for (" in kernel.source
    c_file = tmp_path / "kernel.c"
    c_file.write_text(kernel.source)
    compiled = subprocess.run(
        [
            "clang",
            "-c",
            "-O2",
            "-ffreestanding",
            "-march=native",
            str(c_file),
            "-o",
            str(tmp_path / "k.o"),
        ],
        capture_output=True,
        text=True,
    )
    assert compiled.returncode == 0, compiled.stderr


def test_bad_inputs_give_clear_errors(ab):
    a, b = ab
    with pytest.raises(TypeError, match="fn must be callable"):
        kernel_report(42)
    with pytest.raises(TypeError, match="fn must be callable"):
        kernel_sources("a @ b")
    with pytest.raises(TypeError, match="build must return a Tensor"):
        compare_fused_unfused(lambda step: 3.0)
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        compare_fused_unfused(lambda step: step(a + b), repeats=0)
