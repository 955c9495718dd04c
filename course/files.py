"""Files the course writes and reads: nothing half-written, nothing trusted unchecked.

`write_atomic` is the one way the course writes a file: into a temporary file beside it, renamed
into place when complete, so a crash never leaves half a file under the real name.
`read_safetensors` checks a weights file's header before it reads a byte of data, and
`check_finite` refuses tensors that hold NaN or infinity (the trace of a run that diverged).
`parse_json` reads JSON from a file the user hands us, so nesting too deep for the parser is a
message rather than a RecursionError. Files and folders get the modes the user's umask allows.
"""

import errno
import json
import math
import os
import re
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tinygrad import Tensor, dtypes
from tinygrad.nn.state import safe_dtypes, safe_load


def umask() -> int:
    """The process's umask (the permission bits every new file and folder must leave out)."""
    try:  # Linux shows it without changing it
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"^Umask:\s*([0-7]+)", status, re.M).group(1), 8)
    except (OSError, AttributeError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def file_mode() -> int:
    """The mode `open()` gives a new file under the current umask (0o644 under umask 022)."""
    return 0o666 & ~umask()


def folder_mode() -> int:
    """The mode `mkdir` gives a new folder under the current umask (0o755 under umask 022)."""
    return 0o777 & ~umask()


def disk_full(path: str | Path, needed: int | None, error: OSError) -> ValueError:
    """The message for a write that ran out of space (errno 28, or a disk quota), naming the file
    and the size."""
    size = f"{needed:,} bytes" if needed is not None else "its size"
    return ValueError(
        f"no space left on the disk to write {path} ({size} needed); nothing was left "
        f"half-written ({error.strerror or error}).\nhelp: free some space or write elsewhere, "
        "then run again."
    )


def check_writable(folder: Path, what: str, fix: str) -> None:
    """Prove a file can be written in `folder` (or, when it does not exist yet, in the nearest
    folder above it that does), before any work and without creating anything; a ValueError says
    "cannot write `what`" and the `fix`."""
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p.is_symlink())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is a file, not a folder")
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        reason = getattr(error, "strerror", None) or error
        raise ValueError(f"cannot write {what} ({reason}).\nhelp: {fix}") from None


def write_atomic(path: str | Path, content: bytes | Callable[[str], None]) -> Path:
    """Write `content` (bytes, or a function that writes the file named by its argument) to a
    temporary file beside `path`, then rename it into place: the real name never holds a
    half-written or empty file, and the temporary is removed when writing fails.

    The file gets the mode the umask allows (never wider); a full disk raises a ValueError that
    names the file and the bytes needed. A symbolic link is followed, as `open` would: its
    target is replaced and the link stays a link.
    """
    path = Path(os.path.realpath(path)) if Path(path).is_symlink() else Path(path)
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
        os.chmod(tmp, file_mode())  # mkstemp makes files private; give the umask's mode
        os.replace(tmp, path)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise disk_full(path, len(content) if isinstance(content, bytes) else None, error) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def parse_json(text: str | bytes) -> object:
    """`json.loads`, with nesting too deep for the parser raised as a ValueError like any other
    malformed JSON (a file can nest arrays a million deep; Python's parser recurses)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("it nests arrays or objects too deeply to be read") from None


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
        header = parse_json(raw[8 : 8 + header_len])
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
        start, end = entry["data_offsets"]
        if dtype == dtypes.bfloat16:  # numpy lacks bfloat16: its bits are a float32's top half
            bits = np.frombuffer(raw, np.uint16, (end - start) // 2, 8 + header_len + start)
            array = (bits.astype(np.uint32) << 16).view(np.float32).reshape(entry["shape"])
            if not np.isfinite(array).all():
                raise _not_finite(str(path), name)
            tensors[name] = Tensor(array).cast(dtypes.bfloat16)
            continue
        if dtype.fmt is None:  # fp8: numpy cannot hold it
            lazy = lazy or safe_load(str(path))
            tensors[name] = lazy[name]
            check_finite({name: lazy[name]}, str(path))
            continue
        array = np.frombuffer(raw, np.dtype(dtype.fmt), offset=8 + header_len + start)
        array = array[: (end - start) // dtype.itemsize].reshape(entry["shape"])
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise _not_finite(str(path), name)
        tensors[name] = Tensor(array.copy())
    return tensors
