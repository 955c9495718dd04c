"""Checkpoints: a model's weights, config and tokenizer in one directory, written atomically.

Layout: model.safetensors (weights), config.json (GPTConfig, step, training config and losses),
tokenizer.json, and optionally optimizer.safetensors (AdamW moments, for resuming). Everything is
written into a temporary directory that is then renamed into place, so a crash leaves either the
old checkpoint or the new one, never a mixture. Used by `train` and `python -m minigpt` (lesson 4).

Replacing a directory takes two renames: the old checkpoint goes to ``.NAME.old``, the new one
takes its place, then the old one is deleted. A crash between the renames leaves only
``.NAME.old``; the next save (or `recover_interrupted_save`) renames it back first.

We delete or replace only what we can prove we wrote: a checkpoint carries the marker file
``.minigpt-checkpoint`` (older ones: a config.json in our format), a temporary directory has
the exact name ``.NAME.<pid>.<random>.tmp`` and the marker inside, and a folder that merely
looks like one of ours (a user's config.json, a ``.NAME.old`` of their own) is left alone.
"""

import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

from tinygrad import Tensor
from tinygrad.nn.state import get_state_dict, safe_save

from course.files import (
    check_finite,
    disk_full,
    file_mode,
    folder_mode,
    parse_json,
    read_safetensors,
)
from minigpt.data import CharTokenizer
from minigpt.model import GPTConfig, MiniGPT
from minigpt.sizes import count_params

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
OPTIMIZER_FILE = "optimizer.safetensors"
MARKER_FILE = ".minigpt-checkpoint"  # inside every checkpoint and temporary: proof we wrote it
MARKER = b"minigpt checkpoint\n"
CHECKPOINT_FILES = frozenset({MODEL_FILE, CONFIG_FILE, TOKENIZER_FILE, OPTIMIZER_FILE, MARKER_FILE})
FORMAT_VERSION = 1
DAMAGED = "help: the checkpoint is damaged; save it again or restore the file from a copy."


@dataclass
class CheckpointInfo:
    """What a checkpoint holds besides the model and tokenizer."""

    step: int  # optimizer steps taken when it was saved
    train_config: dict | None  # TrainConfig fields, if saved by train()
    history: dict | None  # losses so far (TrainResult fields), if saved by train()
    optimizer_state: dict[str, Tensor] | None  # tensors named by train.optimizer_state()


def _has_marker(directory: Path) -> bool:
    try:
        return (directory / MARKER_FILE).read_bytes() == MARKER
    except OSError:
        return False


def is_checkpoint(directory: str | Path) -> bool:
    """True when `directory` is a checkpoint we wrote: it carries our marker file, or (saved
    before the marker existed) a config.json in our format. Its weights may still be damaged."""
    directory = Path(directory)
    if not directory.is_dir() or directory.is_symlink():
        return False
    if _has_marker(directory):
        return True
    try:
        meta = parse_json((directory / CONFIG_FILE).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT_VERSION and "model" in meta


def foreign_entries(directory: Path) -> list[str]:
    """Names in `directory` that no checkpoint writes (a user's own files)."""
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if p.name not in CHECKPOINT_FILES)


def _old_name(directory: Path) -> Path:
    return directory.with_name(f".{directory.name}.old")


def _ours(directory: Path) -> bool:
    """A checkpoint we wrote, holding nothing but a checkpoint's files: safe to delete."""
    return is_checkpoint(directory) and not foreign_entries(directory)


def _remove_ours(directory: Path) -> None:
    """Delete a checkpoint or temporary we wrote, the marker last: a deletion cut short by a
    kill leaves a folder that still proves it is ours (or an empty one)."""
    for path in directory.iterdir():
        if path.name != MARKER_FILE:
            path.unlink()
    (directory / MARKER_FILE).unlink(missing_ok=True)
    directory.rmdir()


def recover_interrupted_save(directory: str | Path) -> bool:
    """If a save stopped between its two renames, rename ``.NAME.old`` back; True if it did.
    A ``.NAME.old`` that is not a checkpoint we wrote is left alone."""
    directory = Path(directory)
    old = _old_name(directory)
    if not directory.exists() and not directory.is_symlink() and _ours(old):
        os.replace(old, directory)
        return True
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _remove_stale_temporaries(directory: Path) -> None:
    """Delete the temporaries of this directory's writers that were killed mid-save: exactly
    ``.NAME.<pid>.<random>.tmp`` (not a neighbour's ``.NAME.x.<pid>...``), its process gone, and
    holding our marker (or nothing at all)."""
    pattern = re.compile(rf"\.{re.escape(directory.name)}\.(\d+)\.[a-z0-9_]+\.tmp")
    for tmp in directory.parent.iterdir():
        match = pattern.fullmatch(tmp.name)
        if not match or tmp.is_symlink() or not tmp.is_dir():
            continue
        pid = int(match.group(1))
        if _pid_alive(pid) and pid != os.getpid():
            continue  # a live writer's
        try:
            if _has_marker(tmp) and not [
                p for p in tmp.iterdir() if p.name not in CHECKPOINT_FILES
            ]:
                _remove_ours(tmp)
            else:
                tmp.rmdir()  # only succeeds when empty: a writer killed before its marker
        except OSError:
            pass  # not ours to delete, or gone already


def save_checkpoint(
    directory: str | Path,
    model: MiniGPT,
    tokenizer: CharTokenizer | None = None,
    step: int = 0,
    optimizer_state: dict[str, Tensor] | None = None,
    train_config: object | None = None,
    history: dict | None = None,
) -> Path:
    """Write a checkpoint into `directory` (replacing an older one there) and return its path.

    The directory holds only the checkpoint: it is replaced as a whole, so a directory holding
    other files, or files we cannot prove we wrote, is refused, and so is a symbolic link.
    Weights with NaN or infinity are refused too (a diverged run).
    """
    directory = Path(directory)
    check_replaceable(directory)
    weights = get_state_dict(model)
    check_finite(weights, f"not saving {directory}")
    directory.parent.mkdir(parents=True, exist_ok=True)
    recover_interrupted_save(directory)
    _remove_stale_temporaries(directory)
    tmp = Path(
        tempfile.mkdtemp(
            dir=directory.parent, prefix=f".{directory.name}.{os.getpid()}.", suffix=".tmp"
        )
    )
    try:
        (tmp / MARKER_FILE).write_bytes(MARKER)
        safe_save(weights, str(tmp / MODEL_FILE))
        if optimizer_state:
            safe_save(optimizer_state, str(tmp / OPTIMIZER_FILE))
        if is_dataclass(train_config):
            train_config = asdict(train_config)
        meta = {
            "format": FORMAT_VERSION,
            "model": model.config.to_dict(),
            "step": step,
            "train": train_config,
            "history": history,
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if tokenizer is not None:
            (tmp / TOKENIZER_FILE).write_text(tokenizer.to_json(), encoding="utf-8")
        for path in tmp.iterdir():
            path.chmod(file_mode())  # the modes the umask allows, like files other tools write
        tmp.chmod(folder_mode())  # mkdtemp makes the directory private
        _swap_in(tmp, directory)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            tensors = [*weights.values(), *(optimizer_state or {}).values()]
            raise disk_full(directory, sum(t.nbytes() for t in tensors), error) from None
        raise
    return directory


def check_replaceable(directory: Path) -> None:
    """Refuse a save target that is not ours to replace: a file, a symbolic link, or a folder
    holding anything but a checkpoint we wrote (an empty folder is fine)."""
    if directory.is_symlink():
        raise ValueError(
            f"{directory} is a symbolic link (to {os.readlink(directory)}); saving replaces the "
            "folder as a whole, which would replace the link.\n"
            f"help: name the real folder, {directory.resolve()}."
        )
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{directory} is a file.\nhelp: save the checkpoint to a directory path.")
    if other := foreign_entries(directory):
        raise ValueError(
            f"{directory} holds files that are not part of a checkpoint ({', '.join(other[:5])}), "
            "and saving replaces the directory as a whole.\n"
            "help: save into a new or empty directory, or move those files out first."
        )
    if directory.is_dir() and any(directory.iterdir()) and not is_checkpoint(directory):
        raise ValueError(
            f"{directory} holds files named like a checkpoint's, but not a checkpoint written "
            "here (no marker, no config.json in our format), and saving would replace them.\n"
            "help: save into a new or empty directory, or move those files out first."
        )


def _swap_in(new: Path, directory: Path) -> None:
    """Rename `new` to `directory`; an existing checkpoint is moved aside first, then deleted."""
    if not directory.exists():
        os.replace(new, directory)
        return
    old = _old_name(directory)
    if old.exists() or old.is_symlink():  # left by a save killed after its second rename
        if not _ours(old) and not (old.is_dir() and not any(old.iterdir())):
            raise ValueError(
                f"{old} is in the way of replacing {directory}, and it is not a checkpoint "
                "written here.\nhelp: move or rename it, then save again."
            )
        _remove_ours(old)
    os.replace(directory, old)
    os.replace(new, directory)
    _remove_ours(old)


class CheckpointLock:
    """``with CheckpointLock(directory):`` one writer at a time for a checkpoint directory.

    The lock is a file ``.NAME.lock`` beside the directory (not inside it: saving replaces the
    directory) that the writer holds with `flock` and that names its process id. The kernel lets
    go of an flock the moment its process ends, even by kill -9, so a lock left by a dead run is
    simply taken: there is no "stale" lock to remove, hence no race between several takers.
    """

    def __init__(self, directory: str | Path):
        directory = Path(directory)
        self.path = directory.with_name(f".{directory.name}.lock")
        self.directory = directory
        self._fd: int | None = None

    def __enter__(self) -> "CheckpointLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:  # never through a symbolic link: the lock file is ours, by its exact name
                fd = os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, file_mode())
            except OSError as error:
                raise ValueError(
                    f"cannot create the lock file {self.path} ({error.strerror}).\n"
                    "help: if it is a symbolic link or a folder, move it away; otherwise choose "
                    "an output directory in a folder you can write to."
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                owner = self._owner()
                raise ValueError(
                    f"another run (process {owner}) is writing to {self.directory} "
                    f"(lock file {self.path}).\nhelp: wait for it to finish, or choose another "
                    f"output directory; `ps -p {owner}` shows what it is, and the lock frees "
                    "itself when that process ends, so there is nothing to delete."
                ) from None
            try:  # the holder before us may have deleted the file we locked: lock the new one
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        if not os.pread(fd, 64, 0).strip().isdigit() and os.fstat(fd).st_size:
            os.close(fd)  # not a process id: someone's own file of that name
            raise ValueError(
                f"{self.path} exists and is not a lock file written here (it holds no process "
                "id).\nhelp: move or rename it, then run again."
            )
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def _owner(self) -> str:
        try:
            text = self.path.read_text().strip()
        except OSError:
            return "unknown"
        return text if text.isdigit() else "unknown"

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)  # still held: nobody can lock it in between
            os.close(self._fd)
            self._fd = None


def _read_json(path: Path) -> dict:
    try:
        data = parse_json(path.read_text(encoding="utf-8"))
    except ValueError as error:  # malformed, too deeply nested, or not UTF-8
        raise ValueError(f"{path} is not valid JSON ({error}).\n{DAMAGED}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds {type(data).__name__}, expected a JSON object.\n{DAMAGED}")
    return data


def load_weights(
    model: MiniGPT,
    weights: dict[str, Tensor],
    origin: str = "weights",
    hint: str = "build the model from the checkpoint's own config (load_checkpoint does).",
) -> None:
    """Copy `weights` into the model's own tensors (same buffers, so compiled steps stay valid),
    after checking that names and shapes match exactly; the error lists every difference."""
    expected = get_state_dict(model)
    missing = sorted(expected.keys() - weights.keys())
    unexpected = sorted(weights.keys() - expected.keys())
    wrong = [
        f"{name}: file {tuple(weights[name].shape)}, model {tuple(t.shape)}"
        for name, t in expected.items()
        if name in weights and tuple(weights[name].shape) != tuple(t.shape)
    ]
    if missing or unexpected or wrong:
        problems = [f"missing: {', '.join(missing)}"] if missing else []
        problems += [f"unexpected: {', '.join(unexpected)}"] if unexpected else []
        problems += [f"shape {w}" for w in wrong]
        raise ValueError(
            f"{origin} does not fit this model ({model.config}):\n  "
            + "\n  ".join(problems)
            + f"\nhelp: {hint}"
        )
    for name, t in expected.items():
        t.assign(weights[name].to(t.device).cast(t.dtype)).realize()


def _check_meta(meta: dict, path: Path) -> None:
    """The non-weight fields of config.json: a step count and optional dicts."""
    step = meta.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"{path}: step is {step!r}, expected an int >= 0.\n{DAMAGED}")
    for key in ("train", "history"):
        if not isinstance(meta.get(key), dict | None):
            raise ValueError(
                f"{path}: {key!r} is a {type(meta[key]).__name__}, expected an object or null.\n"
                f"{DAMAGED}"
            )
    for name, values in (meta.get("history") or {}).items():
        if not isinstance(values, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            raise ValueError(f"{path}: history {name!r} is not a list of numbers.\n{DAMAGED}")


def load_checkpoint(
    directory: str | Path, with_optimizer: bool = True
) -> tuple[MiniGPT, CharTokenizer | None, CheckpointInfo]:
    """Read a checkpoint written by `save_checkpoint`: (model, tokenizer or None, info).

    `with_optimizer=False` skips optimizer.safetensors (sampling does not need it).
    """
    directory = Path(directory)
    if not directory.is_dir():
        hint = "check the path (it is the --out directory of the training run)."
        if _old_name(directory).is_dir():
            hint = f"a save was interrupted; rename .{directory.name}.old back to {directory.name}."
        raise ValueError(f"no checkpoint directory at {directory}.\nhelp: {hint}")
    for name in (CONFIG_FILE, MODEL_FILE):
        if not (directory / name).is_file():
            raise ValueError(
                f"{directory / name} is missing, so {directory} is not a complete checkpoint.\n"
                "help: point at a directory written by save_checkpoint or `python -m minigpt train`."
            )
    meta = _read_json(directory / CONFIG_FILE)
    try:
        config = GPTConfig(**meta["model"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{directory / CONFIG_FILE} has no valid model config ({error}).\n"
            "help: the file was edited or damaged; restore it from a copy."
        ) from None
    _check_meta(meta, directory / CONFIG_FILE)
    weights_path = directory / MODEL_FILE
    weights = read_safetensors(weights_path)  # its size is bounded by the file's
    held = sum(t.numel() for t in weights.values())
    if (params := count_params(config)) > held:  # refused before building (and allocating) it
        raise ValueError(
            f"{directory / CONFIG_FILE} describes a model of {params:,} parameters, but "
            f"{weights_path} holds only {held:,} numbers.\n"
            f"help: {CONFIG_FILE} and {MODEL_FILE} disagree; restore both from the same run."
        )
    tokenizer = None
    if (tok_path := directory / TOKENIZER_FILE).is_file():
        tokenizer = CharTokenizer.load(tok_path)
        if tokenizer.vocab_size != config.vocab_size:
            raise ValueError(
                f"{tok_path} has {tokenizer.vocab_size} characters but the model expects "
                f"vocab_size={config.vocab_size}.\nhelp: the files come from different runs."
            )
    model = MiniGPT(config)
    hint = f"{CONFIG_FILE} and {MODEL_FILE} disagree; restore both from the same training run."
    load_weights(model, weights, str(weights_path), hint)
    optimizer_state = None
    if with_optimizer and (opt_path := directory / OPTIMIZER_FILE).is_file():
        optimizer_state = read_safetensors(opt_path)
    info = CheckpointInfo(
        step=meta.get("step", 0),
        train_config=meta.get("train"),
        history=meta.get("history"),
        optimizer_state=optimizer_state,
    )
    return model, tokenizer, info
