"""Files the course writes and reads: nothing half-written, nothing trusted unchecked.

`write_atomic` is the one way the course writes a file: into a temporary file beside it, renamed
into place when complete, so a crash never leaves half a file under the real name.
`read_safetensors` checks a weights file's header before it reads a byte of data, and
`check_finite` refuses tensors that hold NaN or infinity (the trace of a run that diverged).
"""

import json
import math
import os
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tinygrad import Tensor, dtypes
from tinygrad.nn.state import safe_dtypes, safe_load


def write_atomic(path: str | Path, content: bytes | Callable[[str], None]) -> Path:
    """Write `content` (bytes, or a function that writes the file named by its argument) to a
    temporary file beside `path`, then rename it into place: the real name never holds a
    half-written or empty file, and the temporary is removed when writing fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # hidden, and ending in the real suffix: writers such as Pillow choose the format by it
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, bytes):
                f.write(content)
        if callable(content):
            content(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; these are shared data
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _not_finite(origin: str, name: str) -> ValueError:
    return ValueError(
        f"{origin}: tensor {name!r} holds NaN or infinite values, so the run that made it "
        "diverged.\nhelp: use an earlier checkpoint, and train with a lower --lr or with "
        "--grad-clip."
    )


def check_finite(tensors: dict[str, Tensor], origin: str) -> None:
    """Raise naming the first float tensor that holds NaN or infinity (a diverged run)."""
    for name, t in tensors.items():
        if dtypes.is_float(t.dtype):
            values = t.numpy() if t.dtype.fmt else t.cast(dtypes.float32).numpy()
            if not np.isfinite(values).all():
                raise _not_finite(origin, name)


def _check_header(header: object, data_size: int) -> None:
    """Every tensor entry names a known dtype, a shape, and offsets that fit shape and file."""
    if not isinstance(header, dict):
        raise ValueError(f"the header is a {type(header).__name__}, not a JSON object")
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or entry.get("dtype") not in safe_dtypes:
            raise ValueError(f"tensor {name!r} has no known dtype")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise ValueError(f"tensor {name!r} has shape {shape!r}")
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(n, int) for n in offsets)
            and 0 <= offsets[0] <= offsets[1] <= data_size
        ):
            raise ValueError(f"tensor {name!r} has data offsets {offsets!r} outside the file")
        nbytes = math.prod(shape) * safe_dtypes[entry["dtype"]].itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise ValueError(f"tensor {name!r} of shape {shape} needs {nbytes} bytes")


def read_safetensors(path: str | Path) -> dict[str, Tensor]:
    """Load a safetensors file after checking its header, that no data is cut off, and that no
    float tensor holds NaN or infinity (read with numpy; tinygrad only for dtypes numpy lacks)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if len(raw) < 8:
            raise ValueError(f"the file has {len(raw)} bytes, fewer than the 8 of a header length")
        (header_len,) = struct.unpack("<Q", raw[:8])
        if header_len > len(raw) - 8:
            raise ValueError(f"the header claims {header_len} bytes of a {len(raw)}-byte file")
        header = json.loads(raw[8 : 8 + header_len])
        _check_header(header, len(raw) - 8 - header_len)
    except (ValueError, UnicodeDecodeError) as error:  # JSON errors are ValueErrors
        raise ValueError(
            f"{path} is not a readable safetensors file ({error}).\n"
            "help: the file is damaged (perhaps cut off while copying); save it again or "
            "restore it from a copy."
        ) from None
    tensors, lazy = {}, None
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = safe_dtypes[entry["dtype"]]
        if dtype.fmt is None:  # bfloat16 and fp8: numpy cannot hold them
            lazy = lazy or safe_load(str(path))
            tensors[name] = lazy[name]
            check_finite({name: lazy[name]}, str(path))
            continue
        start, end = entry["data_offsets"]
        array = np.frombuffer(raw, np.dtype(dtype.fmt), offset=8 + header_len + start)
        array = array[: (end - start) // dtype.itemsize].reshape(entry["shape"])
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise _not_finite(str(path), name)
        tensors[name] = Tensor(array.copy())
    return tensors
