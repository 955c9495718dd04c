"""Compiled steps (lesson 7): the training step, the evaluation step and sampling, each compiled
once with TinyJit under the stored kernel choices, and what makes such a step fast to call.

`compile_step(fn)` is TinyJit around `fn`, whose kernels compile with the choices of
`minigpt.tuning`. A compiled step replays the kernels it captured on its second call; what it is
given must live in the same device buffers every time. A new input Tensor on every call is a small
graph that tinygrad must schedule before the step can run, which on a small model costs about as
much as the step itself; `StepInputs` instead copies each call's numpy arrays into the same device
buffers. `generate(model, ...)` is `MiniGPT.generate` with compiled decoding steps: the same
tokens, each one a replay.

Captured steps are kept in the step cache (`minigpt.step_cache`) by `StoredSteps`: a later process
with the same model shape, batch shape, optimizer and machine loads them instead of compiling, and
the model's (and optimizer's) current values are copied into the loaded steps' buffers, so the
steps compute exactly what freshly compiled ones would.
"""

import functools
import inspect
import io
import pickle
import weakref
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from tinygrad import Tensor, TinyJit, dtypes
from tinygrad.device import Buffer
from tinygrad.engine.jit import _TinyJit
from tinygrad.nn.state import get_state_dict
from tinygrad.uop.ops import Ops, UOp

from minigpt import step_cache, tuning
from minigpt.attention import DecodeStep
from minigpt.model import Decoder, Ids, MiniGPT
from minigpt.step_cache import environment


class CompiledStep:
    """`fn` as a TinyJit step whose first calls compile inside `tuning.stored_choices()`; its
    replays compile nothing and are unaffected. `CompiledStep(jit=...)` wraps a step that was
    captured in another process (loaded from the step cache): every call is a replay."""

    def __init__(self, fn: Callable | None = None, jit: _TinyJit | None = None):
        self.jit = jit if jit is not None else TinyJit(fn)
        if fn is not None:
            functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        with tuning.stored_choices():
            return self.jit(*args, **kwargs)

    @property
    def captured(self) -> bool:
        """Whether the step has been captured (its next call is a replay)."""
        return self.jit.captured is not None


def compile_step(fn: Callable) -> CompiledStep:
    """`fn` as a compiled step (a decorator): see `CompiledStep`."""
    return CompiledStep(fn)


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


def _foreign_code(obj: object, seen: set[int] | None = None) -> str | None:
    """The first piece of `obj` (a model) whose code is not this package's: a class defined
    elsewhere (a notebook, a learner's module) or a function set on an instance. Such code can
    change between processes without changing any key, so its steps are not cached."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, Tensor | str | int | float | bool | type(None)):
        return None
    seen.add(id(obj))
    if isinstance(obj, list | tuple):
        return next((f for o in obj if (f := _foreign_code(o, seen))), None)
    if isinstance(obj, dict):
        return next((f for o in obj.values() if (f := _foreign_code(o, seen))), None)
    module = type(obj).__module__
    if not (module.startswith("minigpt.") or module == "tinygrad.nn" or module == "builtins"):
        return f"{module}.{type(obj).__qualname__}"
    for name, value in vars(obj).items() if hasattr(obj, "__dict__") else ():
        if inspect.isroutine(value) or isinstance(value, functools.partial):
            return f"{type(obj).__qualname__}.{name}"
        if found := _foreign_code(value, seen):
            return found
    return None


def cacheable(model: MiniGPT) -> bool:
    """Whether `model`'s compiled steps may be cached: all of its code is this package's and it
    has no dropout (the random stream a dropout step reads lives outside the model)."""
    return model.config.dropout == 0 and _foreign_code(model) is None


class _FreshBuffers(pickle.Unpickler):
    """Unpickles a stored step with new identities for its device buffers.

    tinygrad knows a buffer by a number given out in order, and a new UOp equal to a live one is
    the live one; numbers from another process could name buffers of this one, so each stored
    buffer gets a fresh number here.
    """

    def __init__(self, payload: bytes):
        super().__init__(io.BytesIO(payload))
        self.slots: dict[int, int] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("tinygrad.uop.ops", "UOp"):
            return self._uop
        return super().find_class(module, name)

    def _uop(self, op, dtype=None, src=(), arg=None, tag=None, metadata=None, *buffer) -> UOp:
        if op is Ops.BUFFER:
            arg = replace(arg, slot=self.slots.setdefault(arg.slot, next(UOp.unique_num)))
        return UOp(op, dtype, src, arg, tag, metadata, *buffer)


def _unpickle_fresh(payload: bytes) -> object:
    return _FreshBuffers(payload).load()


# what a tensor not yet realized may consist of to be one constant everywhere
_FILL_OPS = {Ops.AFTER, Ops.BUFFER, Ops.CONST, Ops.EXPAND, Ops.RESHAPE, Ops.STACK, Ops.STORE}


def _constant_fill(tensor: Tensor) -> float | None:
    """The value of a tensor not realized yet that is one constant stored into its buffer (fresh
    optimizer state: zeros, ones), read from its graph so no kernel has to be compiled for it;
    None for anything else."""
    if tensor.uop.is_realized:
        return None
    graph = tensor.uop.toposort()
    values = [u.arg for u in graph if u.op is Ops.CONST and u.dtype != dtypes.weakint]
    buffers = [u for u in graph if u.op is Ops.BUFFER]
    if len(values) != 1 or len(buffers) != 1 or any(u.op not in _FILL_OPS for u in graph):
        return None
    return float(values[0])


class StoredSteps:
    """Compiled steps that read and update the tensors `state`, kept in the step cache.

    `load()` returns steps stored by an earlier process, after copying the current values of
    `state` into their buffers and pointing each tensor of `state` at its buffer: from then on
    the steps update the tensors in place, as freshly compiled ones would. `store(*steps)` saves
    steps once all of them are captured (and only once). `description` holds everything about
    the steps that changes their program (shapes, optimizer settings); None turns caching off.
    """

    def __init__(self, description: dict | None, state: list[Tensor]):
        self.state = state
        self.key = None
        self.loaded = self.stored = False
        if description is not None and step_cache.enabled():
            layout = [[list(t.shape), str(t.dtype)] for t in state]
            self.key = step_cache.step_key({**description, **environment(), "state": layout})

    def load(self) -> list[CompiledStep] | None:
        if self.key is None or (entry := step_cache.load(self.key, _unpickle_fresh)) is None:
            return None
        uops, jits = entry
        if len(uops) != len(self.state) or any(
            u.shape != t.shape or u.dtype != t.dtype for u, t in zip(uops, self.state, strict=True)
        ):
            return None  # cannot happen with an intact entry: the key covers the layout
        for uop, tensor in zip(uops, self.state, strict=True):
            stored, fill = Tensor(uop), _constant_fill(tensor)
            copy_into(stored, tensor.numpy() if fill is None else np.full(tensor.shape, fill))
            tensor.replace(stored)
        self.loaded = True
        return [CompiledStep(jit=jit) for jit in jits]

    def store(self, *steps: CompiledStep) -> None:
        if self.key is None or self.loaded or self.stored or not all(s.captured for s in steps):
            return
        self.stored = True
        step_cache.store(self.key, ([t.uop for t in self.state], [s.jit for s in steps]))


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
        caches = [t for cache in self.caches or [] for t in (cache.k, cache.v)]
        what = {"step": "decode", "model": model.config.to_dict(), "batch": batch_size}
        ours = cacheable(model) and decode_step is None  # a learner's decode step is never stored
        self.stored = StoredSteps(
            {**what, "kv_cache": use_cache} if ours else None,
            [*get_state_dict(model).values(), *caches],
        )
        loaded = self.stored.load()  # points the model's weights at the loaded steps' buffers
        self.weight_buffers = self._weight_buffers()
        self._full, self._step = loaded or (
            compile_step(self.forward_full),
            compile_step(self.forward_step),
        )
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
        ids = self.ids.load(padded)
        if self.stored.key is not None and not self._full.jit.captured:
            self._full(*ids)  # once more: captured now, so it can be stored with the first sample
        return self._full(*ids).numpy()[:, T - 1, :]

    def step(self, next_ids: np.ndarray, position: int) -> np.ndarray:
        (token,) = self.token.load(next_ids.astype(np.int32)[:, None])  # (B, 1)
        logits = self._step(token, self.position.bind(position)).numpy()
        self.stored.store(self._full, self._step)
        return logits


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
