"""Which device runs the course: a GPU when one works, else the CPU through clang.

tinygrad reads the device from the environment variable ``DEV`` (``DEV=CPU``, ``DEV=CUDA``, ...).
`pick_device` honours it when set; otherwise it tries the GPUs, then the CPU, and makes the first
that runs a tiny kernel correctly tinygrad's default for this process (``tinygrad.helpers.DEV``,
the setting the environment variable fills); the environment stays as it was. Lesson 0 shows how
to switch.
"""

import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path

from tinygrad import Device, Tensor
from tinygrad.helpers import DEV

GPU_ORDER = (
    "NV",
    "CUDA",
    "AMD",
    "METAL",
)  # NV: tinygrad's own NVIDIA driver, CUDA: libcuda + nvrtc
KNOWN_DEVICES = (*GPU_ORDER, "CPU", "CL", "WEBGPU", "QCOM", "DSP", "PYTHON")

CLANG_FIX = (
    "help: install clang (Debian/Ubuntu/Colab: `apt-get install -y clang`, "
    "macOS: `xcode-select --install`), point CC at a clang binary, "
    "or set DEV to a GPU backend (DEV=CUDA)."
)


class DeviceError(RuntimeError):
    """No tinygrad device works, or the one asked for through ``DEV`` does not."""


def clang_path() -> str | None:
    """The C compiler tinygrad's CPU device will call (``$CC``, default ``clang``), if it is clang."""
    found = shutil.which(os.environ.get("CC", "clang"))
    if found is None or "clang" not in os.path.basename(os.path.realpath(found)):
        return None
    return found


def _probe(device: str) -> str | None:
    """Run one tiny kernel on `device`; return None if it worked, else the first line of the error."""
    previous = DEV.value
    try:
        DEV.value = device  # the same switch as DEV=<device> in the environment
        result = (Tensor([1.0, 2.0, 3.0]) * 2 + 1).tolist()
        if result != [3.0, 5.0, 7.0]:
            raise RuntimeError(f"computed {result} instead of [3.0, 5.0, 7.0]")
        return None
    except Exception as error:  # any failure means "this device does not work here"
        DEV.value = previous
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0][:120] if str(error).strip() else ''}"


def _check_requested(requested: str) -> str:
    """Validate and open the device named by the user through ``DEV``."""
    name = requested.split(":")[0].split("+")[-1].upper()
    if name not in KNOWN_DEVICES:
        raise DeviceError(
            f"DEV={requested!r} is not a tinygrad device.\n"
            f"help: use one of {', '.join(KNOWN_DEVICES)} (for example DEV=CPU), or unset DEV "
            "to let the course choose."
        )
    if name == "CPU" and clang_path() is None:
        raise DeviceError(f"DEV={requested!r} needs clang, which was not found.\n{CLANG_FIX}")
    if (error := _probe(requested)) is not None:
        raise DeviceError(
            f"DEV={requested!r} does not work on this machine ({error}).\n"
            "help: unset DEV to let the course choose, or set DEV=CPU."
        )
    return requested


def pick_device(prefer: tuple[str, ...] = GPU_ORDER) -> str:
    """Choose tinygrad's default device and return its name, e.g. ``"CUDA"`` or ``"CPU"``.

    ``DEV`` in the environment wins; otherwise the first GPU backend in `prefer` that works,
    else the CPU (which compiles kernels with clang). Raises `DeviceError` with a fix when none works.
    """
    if requested := os.environ.get("DEV"):
        return _check_requested(requested)
    errors = {}
    for device in prefer:
        if (error := _probe(device)) is None:
            return device  # the probe left it as tinygrad's default
        errors[device] = error
    if clang_path() is None:
        raise DeviceError(
            f"no GPU backend worked and the CPU backend needs clang, but CC="
            f"{os.environ.get('CC', 'clang')!r} was not found or is not clang.\n{CLANG_FIX}\n"
            f"GPU probes: {errors}"
        )
    if (error := _probe("CPU")) is not None:
        raise DeviceError(f"the CPU backend failed although clang exists: {error}\n{CLANG_FIX}")
    return "CPU"


def backend_report(prefer: tuple[str, ...] = GPU_ORDER) -> list[tuple[str, str]]:
    """Why `pick_device` chooses what it does: each backend it would try, with "works" or its error.

    ``DEV`` in the environment is reported as the one backend tried. Probing opens each backend; call
    `pick_device` afterwards to make the choice tinygrad's default again.
    """
    if requested := os.environ.get("DEV"):
        try:
            _check_requested(requested)
            return [(f"DEV={requested}", "works")]
        except DeviceError as error:
            return [(f"DEV={requested}", str(error).splitlines()[0])]
    tried = [(device, _probe(device) or "works") for device in prefer]
    cpu = "works" if clang_path() and _probe("CPU") is None else "needs clang"
    return [*tried, ("CPU", cpu)]


def backend_details(device: str) -> str:
    """The renderer and compiler tinygrad uses for `device`, and its architecture."""
    opened = Device[device]
    renderer, arch = type(opened.renderer).__name__, opened.arch or "-"
    try:
        compiler = type(opened.compiler).__name__
    except RuntimeError:  # a backend may run kernels without compiling them
        compiler = "none"
    return f"renderer {renderer}, compiler {compiler}, arch {arch}"


def clang_version() -> str:
    """First line of ``clang --version``, shortened to e.g. ``clang 14.0.6``."""
    if (clang := clang_path()) is None:
        return "clang missing"
    first_line = subprocess.run([clang, "--version"], capture_output=True, text=True).stdout
    words = first_line.split("\n")[0].split()
    version = next((w for w in words if w[:1].isdigit()), "?")
    return f"clang {version}"


def describe_device() -> str:
    """One line for a notebook: the device in use, tinygrad's version, and clang's or the GPU's name."""
    device = Device.DEFAULT
    tinygrad_version = importlib.metadata.version("tinygrad")
    if device.split(":")[0] == "CPU":
        detail = clang_version()
    else:
        detail = getattr(Device[device], "arch", None) or device
    return f"device {device} ({detail}), tinygrad {tinygrad_version}"


def describe_cpu(cpuinfo: str | None = None) -> str:
    """The processor a CPU timing came from, e.g. ``AMD EPYC (family 25, model 1; AVX2), 2 cores``:
    its name, the family and model that tell its generation, its widest vector instructions
    (AVX-512 or not changes what clang can generate) and the cores this process may use.
    `cpuinfo` is the text of ``/proc/cpuinfo`` (read here when None; absent on macOS/Windows)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    vectors = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None
    details = []
    if "cpu family" in fields and "model" in fields:
        details.append(f"family {fields['cpu family']}, model {fields['model']}")
    if vectors:
        details.append(vectors)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    described = f"{name} ({'; '.join(details)})" if details else name
    return f"{described}, {cores} cores"
