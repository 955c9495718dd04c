"""Tests for minigpt.tuning: stored kernel choices are applied, unknown kernels fall back, errors."""

import json

import numpy as np
import pytest
from tinygrad import Tensor
from tinygrad.codegen.opt import Opt, OptOps
from tinygrad.engine import realize
from tinygrad.engine.realize import run_linear
from tinygrad.uop.ops import Ops

from minigpt import tuning
from minigpt.fusion import kernel_sources

# a choice the default heuristics do not make for this matmul (they upcast and unroll more)
STORED = (Opt(OptOps.UPCAST, 0, 2),)


@pytest.fixture(autouse=True)
def restore_hook():
    """Leave the hook as the test found it (other tests build models, which enable it)."""
    before, sticky = tuning.status(), tuning._State.user_disabled
    yield
    if before.enabled:
        tuning.enable(before.path)
    else:
        tuning.disable()
    tuning._State.user_disabled = sticky


def matmul_inputs(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((24, 40), np.float32), rng.standard_normal((40, 56), np.float32)


def matmul_kernel(a: np.ndarray, b: np.ndarray):
    """The matmul's kernel sources and result; inputs are realized first so only it compiles."""
    ta, tb = Tensor(a).realize(), Tensor(b).realize()
    out = {}
    sources = kernel_sources(lambda: out.setdefault("c", (ta @ tb).numpy()))
    (source,) = sources
    return source, out["c"]


@pytest.fixture(scope="module")
def table_file(tmp_path_factory) -> str:
    """A table holding STORED for the 24x40 @ 40x56 matmul, keyed as the default path sees it."""
    a, b = matmul_inputs(0)
    linear = Tensor.schedule_linear(Tensor(a).realize() @ Tensor(b).realize())
    keys = [tuning.kernel_key(c.src[0]) for c in linear.src if c.src[0].op is Ops.SINK]
    run_linear(linear)
    assert len(keys) == 1, keys
    path = tmp_path_factory.mktemp("tuned") / "table.json"
    tuning.save_table({keys[0]: STORED}, path, about={"test": True})
    return str(path)


def test_stored_choices_are_applied_and_results_match(table_file):
    a, b = matmul_inputs(1)
    tuning.disable()
    default_source, default_result = matmul_kernel(a, b)
    state = tuning.enable(table_file)
    assert state.enabled and state.kernels == 1
    tuned_source, tuned_result = matmul_kernel(a, b)
    assert tuned_source.opts == "UPCAST(axis=0, 2)"
    assert default_source.opts != tuned_source.opts
    assert tuning.status().hits == 1
    reference = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(tuned_result, reference, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(tuned_result, default_result, rtol=1e-5, atol=1e-5)


def test_unknown_kernels_fall_back_to_heuristics(table_file):
    tuning.enable(table_file)
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((24, 40), np.float32), rng.standard_normal((40, 72), np.float32)
    c = (Tensor(a).realize() @ Tensor(b).realize()).numpy()  # another shape: not in the table
    state = tuning.status()
    assert state.hits == 0 and state.misses >= 1
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


def test_disable_restores_default_compile_step(table_file):
    tuning.enable(table_file)
    assert realize.lower_and_compile is not tuning._State.original
    original = tuning._State.original
    state = tuning.disable()
    assert not state.enabled and state.path is None
    assert realize.lower_and_compile is original
    tuning.enable_by_default()  # building a model after disable() keeps it off
    assert not tuning.status().enabled
    a, b = matmul_inputs(1)
    source, _ = matmul_kernel(a, b)
    assert source.opts != "UPCAST(axis=0, 2)"


@pytest.mark.parametrize(
    "text", ["{not json", json.dumps({"kernels": {"ab": [["NOT_AN_OP", 0, 2]]}}), "[]"]
)
def test_corrupt_table_gives_clear_error(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="cannot read the tuned-kernel table .*bad.json"):
        tuning.enable(path)
    with pytest.raises(ValueError, match="help: regenerate it with `make tune`"):
        tuning.load_table(path)


def test_shipped_table_loads():
    table = tuning.load_table()
    assert len(table) > 50
    assert all(isinstance(o, Opt) for opts in table.values() for o in opts)


def test_choices_this_machine_cannot_apply_fall_back(table_file, tmp_path):
    """More threads than this machine allows: the kernel keeps the heuristics instead of failing."""
    (key,) = tuning.load_table(table_file)
    path = tmp_path / "threads.json"
    tuning.save_table({key: (Opt(OptOps.THREAD, 0, 10**6),)}, path, about={})
    tuning.enable(path)
    a, b = matmul_inputs(3)
    source, c = matmul_kernel(a, b)
    assert tuning.status().hits == 0 and "THREAD" not in source.opts
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)
