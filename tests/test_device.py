"""Device selection: DEV is honoured, unknown names and a missing clang give errors that name the fix;
input buffers: numpy arrays copied into fixed device tensors."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tinygrad import Tensor, dtypes

from minigpt.device import (
    DeviceError,
    InputBuffers,
    clang_path,
    copy_into,
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
    assert os.environ["DEV"] == "CPU"


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
        [sys.executable, "-c", "from minigpt import pick_device; pick_device()"],
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


def test_input_buffers_copy_each_call_into_the_same_tensors():
    inputs = InputBuffers()
    first = inputs.load(np.array([[1, 2, 3]], np.int32), np.array([0.5], np.float32))
    again = inputs.load(np.array([[7, 8, 9]]), [2.25])  # int64 and a list: cast to the buffers
    assert all(a is b for a, b in zip(first, again, strict=True))
    np.testing.assert_array_equal(again[0].numpy(), [[7, 8, 9]])
    assert again[0].dtype == dtypes.int32 and again[1].numpy().tolist() == [2.25]


def test_copy_into_names_a_wrong_shape_an_unrealized_tensor_and_a_dtype_numpy_lacks():
    target = Tensor.zeros(2, 3, dtype=dtypes.int32).contiguous().realize()
    with pytest.raises(ValueError, match=r"shape \(3, 2\) into a tensor of shape \(2, 3\)"):
        copy_into(target, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="needs a realized tensor"):
        copy_into(Tensor.zeros(2, 3, dtype=dtypes.int32) + 1, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="cannot write dtypes.bfloat16"):
        copy_into(Tensor.empty(2, dtype=dtypes.bfloat16).realize(), [1.0, 2.0])
    copy_into(target, np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(target.numpy(), [[0, 1, 2], [3, 4, 5]])
