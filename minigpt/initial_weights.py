"""A seeded model's initial weights, kept on disk so that a new process does not draw them again
(lesson 7).

Drawing a MiniGPT's weights is a handful of random-number kernels that tinygrad must generate and
compile in every new process, seconds on a small CPU, and yet a model built right after
`Tensor.manual_seed(seed)` gets the same numbers every time. So such a model's weights are kept
in the compiled-step cache (`minigpt.step_cache`; an `.npz` payload, read without pickle) under a
key of its config, the seed and everything `step_cache.environment()` covers; a later process copies
them in and sets tinygrad's random counter to where drawing them would have left it, so the
weights and every random number drawn afterwards (dropout, sampling) are the same as without
the cache. A model built before any `manual_seed` (a seed taken from the clock) is drawn as usual.
"""

import io

import numpy as np
from tinygrad import Device, Tensor, dtypes

from minigpt import step_cache

# tinygrad seeds itself from the clock when it is imported: a model drawn under that seed is never
# drawn again, so it is not kept
_CLOCK_SEED = Tensor._seed
_COUNTER = "__random_counter__"  # the npz entry holding tinygrad's counter after the drawing


def _to_npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _from_npz(payload: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


class KeptWeights:
    """Create it before a model's layers draw their weights; then `restore(params)` puts kept
    weights in place (True), or the model draws them and `keep(params)` stores them."""

    def __init__(self, description: dict):
        self.device, self.key = Device.DEFAULT, None
        fresh = self.device not in Tensor._device_seeds  # nothing drawn here since manual_seed
        if step_cache.enabled() and fresh and Tensor._seed != _CLOCK_SEED:
            seeds = {"seed": Tensor._seed, "seeded_devices": len(Tensor._device_seeds)}
            self.key = step_cache.step_key(
                {"initial_weights": description, **seeds, **step_cache.environment()}
            )

    def restore(self, params: dict[str, Tensor]) -> bool:
        """Replace `params` (name -> Tensor, drawn lazily) with the kept weights; False when
        nothing is kept under this key."""
        if self.key is None or (arrays := step_cache.load(self.key, _from_npz)) is None:
            return False
        counter = arrays.pop(_COUNTER, None)
        if counter is None or set(arrays) != set(params):
            return False  # cannot happen with an intact entry: the key covers the model
        for name, tensor in params.items():
            tensor.replace(Tensor(arrays[name], device=self.device))
        counter = Tensor(counter, device=self.device, dtype=dtypes.uint32)
        Tensor._device_rng_counters[self.device] = counter
        Tensor.realize(*params.values(), counter)
        return True

    def keep(self, params: dict[str, Tensor]) -> None:
        """Store the drawn `params` and tinygrad's random counter after drawing them."""
        if self.key is None:
            return
        arrays = {name: tensor.numpy() for name, tensor in params.items()}
        arrays[_COUNTER] = Tensor._device_rng_counters[self.device].numpy()
        step_cache.store(self.key, arrays, _to_npz)
