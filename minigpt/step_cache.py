"""The compiled-step cache: compiled steps kept on disk so that a second process starts at once
(lesson 7).

Compiling a MiniGPT step costs tinygrad many seconds of scheduling and code generation; replaying
it costs milliseconds. A captured TinyJit can be pickled (kernels, buffers and how to call them),
so `minigpt.compiled` stores each captured step here and a later process loads it instead of
compiling. An entry is a pickle, and unpickling runs code named in the file, so this cache only
ever reads its own folder:

- the folder is `cache_dir()/steps` (`~/.cache/minigpt/steps`, or `$MINIGPT_CACHE/steps`),
  created private (0700); a folder that is not a real folder owned by this user is not used;
- an entry is read only if it is a regular file owned by this user; it starts with a header
  (format, key, payload length and sha256) and is unpickled only when all of them match, so a
  truncated, damaged or foreign file is deleted and compiled again, with one line saying so;
- entries are written to a private temporary file and renamed into place: two processes filling
  one entry each write a complete file, and the last rename wins;
- the key is a hash of everything that changes the compiled program (`step_key`), and the
  folder is kept under `max_bytes` by deleting the entries used longest ago.
Nothing else (checkpoints, URLs, paths given as data) is ever unpickled.
"""

import hashlib
import json
import os
import pickle
import platform
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tinygrad import Device
from tinygrad.helpers import ContextVar, getenv

from minigpt import tuning
from minigpt.download import cache_dir

FORMAT = 1  # bump when the entry layout changes: older entries are then rebuilt
MAGIC = b"minigpt compiled step\n"
SUFFIX = ".step"
DEFAULT_MAX_BYTES = 2 << 30  # 2 GiB: about 30 lesson-sized training steps


# tinygrad settings that change the compiled program (the rest change what is printed, or how
# compiling is spread over processes): part of every step's cache key
_PROGRAM_SETTINGS = (
    "DEV", "BEAM", "NOOPT", "IMAGE", "FLOAT16", "JIT", "JIT_BATCH_SIZE", "WINO", "TC",
    "TC_SELECT", "TC_OPT", "TRANSCENDENTAL", "NOLOCALS", "SPLIT_REDUCEOP", "NO_MEMORY_PLANNER",
    "FUSE_OPTIM", "EMULATED_DTYPES", "DEFAULT_FLOAT", "DEFAULT_INT", "NUM_CPU_THREADS",
    "CHECK_OOB", "PCONTIG", "USE_ATOMICS", "DISABLE_FAST_IDIV", "TUPLE_ORDER", "ALLOW_TF32",
    "MAX_KERNEL_BUFFERS", "MAX_BUFFER_SIZE", "SPEC",
)  # fmt: skip
# and those tinygrad reads with getenv rather than as a setting
_PROGRAM_ENV = ("JITBEAM", "CONST_LR", "HCQ2", "IGNORE_JIT_FIRST_BEAM", "GRAPH_ONE_KERNEL")


def _cpu_signature() -> str:
    """The processor: kernels are compiled for this CPU's instruction set ("native")."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        wanted = [line for line in lines if line.startswith(("model name", "flags"))][:2]
    except OSError:
        wanted = [platform.processor()]
    return hashlib.sha256("\n".join([platform.machine(), *wanted]).encode()).hexdigest()[:16]


def _package_version() -> str:
    try:
        return version("neural-internals")
    except PackageNotFoundError:
        return "unknown"


def _source_hash() -> str:
    """A hash of the package's own code: a changed model or training step is a different key."""
    files = sorted(Path(__file__).parent.glob("*.py"))
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]


# taken once, when the package is imported: a file edited later (while a notebook's kernel keeps
# running the code it imported) must not give the old code the new code's key
_SOURCE_HASH = _source_hash()


def environment() -> dict:
    """Everything outside the model that changes a compiled step: device, renderer and CPU,
    tinygrad's version and settings, this package's version and code, the tuned-kernel table."""
    renderer = Device[Device.DEFAULT].renderer
    tuned = tuning.status()
    table = hashlib.sha256(Path(tuned.path).read_bytes()).hexdigest() if tuned.enabled else None
    known = ContextVar._cache
    settings = {k: known[k].value if k in known else None for k in _PROGRAM_SETTINGS}
    return {
        "device": Device.DEFAULT,
        "renderer": [type(renderer).__name__, str(getattr(renderer, "target", ""))],
        "threads": list(renderer.global_max or ()),
        "cpu": _cpu_signature(),
        "python": list(sys.version_info[:2]),
        "tinygrad": version("tinygrad"),
        "package": [_package_version(), _SOURCE_HASH],
        "tuned_table": table,
        "settings": settings,
        "env": {k: getenv(k, "") for k in _PROGRAM_ENV},
    }


class _Settings:
    on = True  # the switch: use_step_cache(False) compiles every step in every process
    max_bytes = DEFAULT_MAX_BYTES


@dataclass
class CacheInfo:
    """What the cache folder holds right now."""

    folder: str  # where entries live
    enabled: bool  # the switch (use_step_cache)
    entries: int  # complete entries
    bytes: int  # their total size
    max_bytes: int  # the cap; the entries used longest ago are deleted beyond it


def use_step_cache(on: bool, max_bytes: int | None = None) -> CacheInfo:
    """The switch: whether compiled steps are stored and loaded (on at import), and the size cap
    of the folder in bytes."""
    if max_bytes is not None:
        if not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ValueError(f"max_bytes={max_bytes!r}; expected a positive number of bytes.")
        _Settings.max_bytes = max_bytes
    _Settings.on = bool(on)
    return info()


def enabled() -> bool:
    return _Settings.on


@contextmanager
def bypassed() -> Iterator[None]:
    """Inside the block every step is compiled, none stored or loaded (a search or a timing that
    must see its own compile); the switch is put back as it was on leaving."""
    was_on = _Settings.on
    _Settings.on = False
    try:
        yield
    finally:
        _Settings.on = was_on


def folder() -> Path:
    """The cache folder: `steps` inside the user's minigpt cache folder."""
    return cache_dir() / "steps"


def step_key(description: dict) -> str:
    """The entry name for a step: the sha256 of `description` as canonical JSON (every value
    that changes the compiled program must be in it)."""
    text = json.dumps(description, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _say(message: str) -> None:
    """The cache's one line: what happened to an entry and what is done about it."""
    print(f"minigpt step cache: {message}", file=sys.stderr)


def _private_folder(create: bool) -> Path | None:
    """The cache folder if it is a real folder owned by this user and private (made so if we
    own it); None, with one line saying why, if it cannot be trusted."""
    path = folder()
    try:
        if create:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.lstat()
    except FileNotFoundError:
        return None
    except OSError as error:
        _say(f"cannot use {path} ({error.strerror or error}); compiling without the cache")
        return None
    if not stat.S_ISDIR(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
        _say(f"{path} is not a folder owned by this user; compiling without the cache")
        return None
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)  # ours, but readable by others (made by hand): make it private
    return path


def _entry_path(where: Path, key: str) -> Path:
    if not (len(key) == 64 and all(c in "0123456789abcdef" for c in key)):
        raise ValueError(f"step cache key {key!r:.70} is not a 64-digit hex hash")
    return where / f"{key}{SUFFIX}"


def _read_entry(path: Path, key: str) -> bytes:
    """The payload of the entry at `path`, checked; a ValueError says what is wrong."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
            raise ValueError("it is not a regular file owned by this user")
        if f.read(len(MAGIC)) != MAGIC:
            raise ValueError("it does not start with the cache's header")
        try:
            header = json.loads(f.readline(4096))
        except (ValueError, UnicodeDecodeError):
            raise ValueError("its header is damaged") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"it has format {header.get('format')!r}, this version reads {FORMAT}")
        if header.get("key") != key:
            raise ValueError("its header names another key")
        payload = f.read()
    if len(payload) != header.get("bytes") or hashlib.sha256(payload).hexdigest() != header.get(
        "sha256"
    ):
        raise ValueError(f"it is truncated or damaged ({len(payload):,} bytes of payload)")
    return payload


def load(key: str, loads: Callable[[bytes], object] = pickle.loads) -> object | None:
    """The object stored under `key` (unpickled by `loads`), or None: not stored, the cache off,
    or a bad entry, which is deleted with one line saying so."""
    if not _Settings.on or (where := _private_folder(create=False)) is None:
        return None
    path = _entry_path(where, key)
    try:
        payload = _read_entry(path, key)
        obj = loads(payload)
    except FileNotFoundError:
        return None
    except Exception as error:  # noqa: BLE001 (any failure to read or unpickle means: rebuild)
        reason = str(error).split("\n")[0] or type(error).__name__
        _say(f"entry {path.name[:12]}... is unusable ({reason}); building it again")
        path.unlink(missing_ok=True)
        return None
    os.utime(path)  # recently used: evicted last
    return obj


def _pickle(obj: object) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def store(key: str, obj: object, dumps: Callable[[object], bytes] = _pickle) -> Path | None:
    """Store `obj` under `key`, turned into bytes by `dumps` (a private temporary file, then a
    rename), and trim the folder to the size cap; returns the entry's path, or None when the
    cache is off or cannot be used."""
    if not _Settings.on or (where := _private_folder(create=True)) is None:
        return None
    payload = dumps(obj)
    header = {"format": FORMAT, "key": key, "bytes": len(payload)}
    header["sha256"] = hashlib.sha256(payload).hexdigest()
    path = _entry_path(where, key)
    fd, tmp = tempfile.mkstemp(dir=where, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + json.dumps(header).encode() + b"\n")
            f.write(payload)
        os.replace(tmp, path)
    except OSError as error:
        _say(f"cannot write {path} ({error.strerror or error}); it stays uncached")
        return None
    finally:
        Path(tmp).unlink(missing_ok=True)
    _trim(where, keep=path)
    return path


def _entries(where: Path) -> list[tuple[float, int, Path]]:
    """(last use, size, path) of every entry, oldest first."""
    found = []
    for path in where.glob(f"*{SUFFIX}"):
        try:
            st = path.lstat()
        except FileNotFoundError:  # deleted by another process meanwhile
            continue
        if stat.S_ISREG(st.st_mode):
            found.append((st.st_mtime, st.st_size, path))
    return sorted(found)


def _trim(where: Path, keep: Path) -> None:
    """Delete the entries used longest ago until the folder fits in max_bytes (never `keep`)."""
    entries = _entries(where)
    total = sum(size for _, size, _ in entries)
    for _, size, path in entries:
        if total <= _Settings.max_bytes:
            break
        if path != keep:
            path.unlink(missing_ok=True)
            total -= size


def info() -> CacheInfo:
    """The folder, how many entries it holds and their size."""
    where = folder()
    entries = _entries(where) if where.is_dir() and not where.is_symlink() else []
    return CacheInfo(
        folder=str(where),
        enabled=_Settings.on,
        entries=len(entries),
        bytes=sum(size for _, size, _ in entries),
        max_bytes=_Settings.max_bytes,
    )


def clear() -> int:
    """Delete every entry (and temporary file left by a killed writer); returns how many files
    were deleted. Other files in the folder are left alone."""
    where = _private_folder(create=False)
    if where is None:
        return 0
    removed = 0
    for path in [*where.glob(f"*{SUFFIX}"), *where.glob(f".*{SUFFIX}.*.tmp")]:
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed += 1
    return removed
