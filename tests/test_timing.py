"""Call times, TinyJit against eager and BEAM against the heuristics, from minigpt.timing."""

import os
import subprocess
import sys

import numpy as np
import pytest
from tinygrad import Tensor

from minigpt.timing import beam_cache_path, beam_comparison, jit_comparison, time_calls

N = 64  # (N, N) inputs: small enough to run in milliseconds


@pytest.fixture(scope="module")
def ab() -> tuple[Tensor, Tensor]:
    Tensor.manual_seed(0)
    return Tensor.randn(N, N).realize(), Tensor.randn(N, N).realize()


def test_time_calls_and_jit_comparison(ab):
    a, b = ab
    times = time_calls(lambda: (a + b).realize(), n=3)
    assert len(times.seconds) == 3 and times.first_s == times.seconds[0] and times.median_s > 0

    comparison = jit_comparison(lambda x, y: (x @ y).relu().sum(), a, b, n=3)
    assert comparison.eager.kernels == comparison.jit.kernels >= 1
    assert len(comparison.jit_times.seconds) == 3
    assert "TinyJit" in comparison.table()


def test_beam_cache_path_follows_environment(tmp_path):
    code = "from minigpt.timing import beam_cache_path; print(beam_cache_path())"
    env = {k: v for k, v in os.environ.items() if k not in ("CACHEDB", "XDG_CACHE_HOME")}

    def path_with(**extra: str) -> str:
        run = subprocess.run(
            [sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    assert path_with(CACHEDB=str(tmp_path / "mine.db")) == str(tmp_path / "mine.db")
    assert path_with(XDG_CACHE_HOME=str(tmp_path)) == str(tmp_path / "tinygrad" / "cache.db")
    assert beam_cache_path().name.endswith(".db")


def test_beam_comparison_on_a_tiny_matmul():
    result = beam_comparison(size=16, beam=1, n=2, use_cache=False)
    assert result.max_abs_diff < 1e-4
    assert result.beam_kernel.name.startswith("r_") and result.default_kernel.name.startswith("r_")
    assert len(result.beam_times.seconds) == 4  # first call, capture, two replays
    assert "BEAM=1" in result.table()


def test_bad_inputs_give_clear_errors(ab):
    a, _ = ab
    with pytest.raises(ValueError, match="n must be at least 2"):
        time_calls(lambda: a.realize(), n=1)
    with pytest.raises(TypeError, match=r"args\[1\] must be a tinygrad Tensor"):
        jit_comparison(lambda x, y: x + y, a, np.ones((N, N)))
    with pytest.raises(ValueError, match="n must be at least 3"):
        jit_comparison(lambda x: x + 1, a, n=2)
    with pytest.raises(ValueError, match="size, beam and n must be positive"):
        beam_comparison(size=0)
