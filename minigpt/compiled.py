"""Compiled steps (lesson 7): what makes a TinyJit step fast to call.

A compiled step replays the kernels it captured on its second call; what it is given must live in
the same device buffers every time. A new input Tensor on every call is a small graph that tinygrad
must schedule before the step can run, which on a small model costs about as much as the step
itself; `StepInputs` instead copies each call's numpy arrays into the same device buffers.
"""

import numpy as np
from tinygrad import Tensor
from tinygrad.device import Buffer


def copy_into(tensor: Tensor, array: np.ndarray | list) -> None:
    """Copy `array` into the device buffer of the realized `tensor`, which must have its shape:
    one plain copy, nothing for tinygrad to schedule. Values are cast to the tensor's dtype."""
    if tensor.dtype.fmt is None:
        raise ValueError(
            f"copy_into cannot write {tensor.dtype}: numpy has no matching type.\n"
            "help: keep the input tensor float32 or int32 and cast it inside the compiled step."
        )
    data = np.ascontiguousarray(array, dtype=np.dtype(tensor.dtype.fmt))
    if data.shape != tensor.shape:
        raise ValueError(
            f"cannot copy an array of shape {data.shape} into a tensor of shape {tensor.shape}.\n"
            "help: a compiled step keeps its input shapes; pad or crop the batch to that shape."
        )
    if not tensor.uop.is_realized:
        raise ValueError("copy_into needs a realized tensor.\nhelp: call .realize() on it first.")
    source = Buffer("PYTHON", data.size, tensor.dtype, opaque=memoryview(data).cast("B"))
    tensor.uop.buffer.copy_from(source)


class StepInputs:
    """The inputs of a compiled step as fixed device buffers: `load(*arrays)` makes one tensor per
    array on the first call and copies later calls' arrays into the same tensors (`copy_into`)."""

    def __init__(self) -> None:
        self.tensors: list[Tensor] = []

    def load(self, *arrays: np.ndarray) -> list[Tensor]:
        if not self.tensors:
            self.tensors = [Tensor(np.ascontiguousarray(a)).realize() for a in arrays]
        else:
            for tensor, array in zip(self.tensors, arrays, strict=True):
                copy_into(tensor, array)
        return self.tensors
