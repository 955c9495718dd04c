"""Compiled steps (lesson 7): the training step, the evaluation step and sampling, each compiled
once with TinyJit under the stored kernel choices, and what makes such a step fast to call.

`compile_step(fn)` is TinyJit around `fn`, whose kernels compile with the choices of
`minigpt.tuning`. A compiled step replays the kernels it captured on its second call; what it is
given must live in the same device buffers every time. A new input Tensor on every call is a small
graph that tinygrad must schedule before the step can run, which on a small model costs about as
much as the step itself; `StepInputs` instead copies each call's numpy arrays into the same device
buffers. `generate(model, ...)` is `MiniGPT.generate` with compiled decoding steps: the same
tokens, each one a replay.
"""

import functools
import weakref
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from tinygrad import Tensor, TinyJit
from tinygrad.device import Buffer
from tinygrad.nn.state import get_state_dict

from minigpt import tuning
from minigpt.attention import DecodeStep
from minigpt.model import Decoder, Ids, MiniGPT

F = TypeVar("F", bound=Callable)


def compile_step(fn: F) -> F:
    """`fn` as a TinyJit step whose first calls compile inside `tuning.stored_choices()`; its
    replays compile nothing and are unaffected."""
    jitted = TinyJit(fn)

    @functools.wraps(fn)
    def step(*args, **kwargs):
        with tuning.stored_choices():
            return jitted(*args, **kwargs)

    return step  # type: ignore[return-value]


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


class CompiledDecoder(Decoder):
    """A `Decoder` whose two passes are compiled steps: token ids are copied into fixed input
    buffers and the position is a Variable bound on each call, so a warm call schedules nothing.

    Decoders are kept per model, batch size and mode, and reused by later `generate` calls (the
    first two calls of a TinyJit cost far more than a replay) while the model's weights still live
    in the buffers the compiled steps read (training updates them in place; replacing them, e.g.
    with tinygrad's load_state_dict, makes a new decoder).
    """

    _kept: "weakref.WeakKeyDictionary[MiniGPT, dict[tuple, CompiledDecoder]]" = (
        weakref.WeakKeyDictionary()
    )

    @classmethod
    def for_model(
        cls,
        model: MiniGPT,
        batch_size: int,
        use_cache: bool,
        decode_step: DecodeStep | None = None,
    ) -> "CompiledDecoder":
        decoders = cls._kept.setdefault(model, {})
        key = (batch_size, use_cache, decode_step)
        decoder = decoders.get(key)
        if decoder is None or not decoder.weights_unchanged():
            decoder = decoders[key] = cls(model, batch_size, use_cache, decode_step)
        return decoder

    def __init__(
        self,
        model: MiniGPT,
        batch_size: int,
        use_cache: bool,
        decode_step: DecodeStep | None = None,
    ):
        # a weak reference: the table above maps the model to this decoder and must not keep it alive
        super().__init__(weakref.proxy(model), batch_size, use_cache, decode_step)
        self.weight_buffers = self._weight_buffers()
        self._full = compile_step(self.forward_full)
        self._step = compile_step(self.forward_step)
        self.ids, self.token = StepInputs(), StepInputs()

    def _weight_buffers(self) -> list:
        """The device buffer behind each weight (None for a weight not realized yet)."""
        return [t.uop.base.realized for t in get_state_dict(self.model).values()]

    def weights_unchanged(self) -> bool:
        now = self._weight_buffers()
        return len(now) == len(self.weight_buffers) and all(
            a is not None and a is b for a, b in zip(now, self.weight_buffers, strict=True)
        )

    def full(self, tokens: np.ndarray) -> np.ndarray:
        padded, T = self.window(tokens)  # (B, S)
        return self._full(*self.ids.load(padded)).numpy()[:, T - 1, :]

    def step(self, next_ids: np.ndarray, position: int) -> np.ndarray:
        (token,) = self.token.load(next_ids.astype(np.int32)[:, None])  # (B, 1)
        return self._step(token, self.position.bind(position)).numpy()


def generate(
    model: MiniGPT,
    idx: Ids,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
    use_cache: bool = True,
    decode_step: DecodeStep | None = None,
) -> np.ndarray:
    """`model.generate(...)` with compiled decoding steps, kept for the next call: the same
    tokens for the same seed, each one a TinyJit replay. `decode_step` (lesson 7's exercise,
    in tinygrad) runs inside the compiled one-token step."""
    tokens = np.asarray(idx.numpy() if isinstance(idx, Tensor) else idx)
    if decode_step is not None and not use_cache:  # model.generate names the problem
        return model.generate(tokens, max_new_tokens, use_cache=False, decode_step=decode_step)
    # ids that are not (B, T) get no decoder: model.generate names the problem
    decoder = None
    if tokens.ndim == 2:
        decoder = CompiledDecoder.for_model(model, len(tokens), use_cache, decode_step)
    return model.generate(tokens, max_new_tokens, temperature, top_k, seed, use_cache, decoder)
