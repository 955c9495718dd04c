"""The CPU thread pool: a kernel's THREAD pieces run at the same time, with the same result."""

import numpy as np
import pytest
from tinygrad import Device, Tensor, TinyJit

from minigpt import cpu_threads


@pytest.fixture
def pool():
    yield cpu_threads.use_cpu_threads(2)
    cpu_threads.use_cpu_threads(1)


def test_pieces_run_on_the_pool_with_bit_equal_results(pool):
    if Device["CPU"].renderer.global_max[0] < 2:
        pytest.skip("tinygrad splits kernels only on a machine with two or more cores")
    rng = np.random.default_rng(0)
    a, b = (Tensor(rng.standard_normal((96, 80), np.float32)).realize() for _ in range(2))
    step = TinyJit(lambda: (a @ b.T).softmax(-1).realize())
    cpu_threads.use_cpu_threads(1)
    alone = [step().numpy() for _ in range(3)][-1]  # compiled, captured, replayed on one core
    cpu_threads.use_cpu_threads(2)
    before = cpu_threads.status().pooled_calls
    pooled = step().numpy()
    assert cpu_threads.status().pooled_calls > before  # the split kernels went to the pool
    np.testing.assert_array_equal(pooled, alone)
    np.testing.assert_array_equal(alone, (a @ b.T).softmax(-1).numpy())


def test_the_switch_names_a_bad_thread_count():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="expected a positive int"):
            cpu_threads.use_cpu_threads(bad)
    assert cpu_threads.use_cpu_threads(1).threads == 1
