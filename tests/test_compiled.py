"""Compiled steps' inputs: numpy arrays copied into fixed device tensors."""

import numpy as np
import pytest
from tinygrad import Tensor, dtypes

from minigpt.compiled import StepInputs, copy_into


def test_step_inputs_copy_each_call_into_the_same_tensors():
    inputs = StepInputs()
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
