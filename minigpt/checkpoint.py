"""Checkpoints: a model's weights, config and tokenizer in one directory, written atomically.

Layout: model.safetensors (weights), config.json (GPTConfig, step, training config and losses),
tokenizer.json, and optionally optimizer.safetensors (AdamW moments, for resuming). Everything is
written into a temporary directory that is then renamed into place, so a crash leaves either the
old checkpoint or the new one, never a mixture. Used by `train` and `python -m minigpt` (lesson 4).
"""

import json
import os
import shutil
import struct
import tempfile
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path

from tinygrad import Tensor
from tinygrad.nn.state import get_state_dict, safe_load, safe_save

from minigpt.data import CharTokenizer
from minigpt.model import GPTConfig, MiniGPT

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
OPTIMIZER_FILE = "optimizer.safetensors"
FORMAT_VERSION = 1


@dataclass
class CheckpointInfo:
    """What a checkpoint holds besides the model and tokenizer."""

    step: int  # optimizer steps taken when it was saved
    train_config: dict | None  # TrainConfig fields, if saved by train()
    history: dict | None  # losses so far (TrainResult fields), if saved by train()
    optimizer_state: dict[str, Tensor] | None  # tensors named by train.optimizer_state()


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

    The directory holds only the checkpoint: it is replaced as a whole.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".tmp"))
    try:
        safe_save(get_state_dict(model), str(tmp / MODEL_FILE))
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
        _swap_in(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _swap_in(new: Path, directory: Path) -> None:
    """Rename `new` to `directory`; an existing checkpoint is moved aside first, then deleted."""
    if not directory.exists():
        os.replace(new, directory)
        return
    if not directory.is_dir():
        raise ValueError(f"{directory} is a file.\nhelp: save the checkpoint to a directory path.")
    old = directory.with_name(f".{directory.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(directory, old)
    os.replace(new, directory)
    shutil.rmtree(old)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path} is not valid JSON ({error}).\n"
            "help: the checkpoint is damaged; save it again or restore the file from a copy."
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds {type(data).__name__}, expected a JSON object.")
    return data


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    """Load a safetensors file lazily after checking its header and that no data is cut off."""
    try:
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(header_len))
        end = max(
            (v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0
        )
        if 8 + header_len + end > path.stat().st_size:
            raise ValueError(f"file is {path.stat().st_size} bytes, its header needs more")
        return safe_load(str(path))
    except (ValueError, KeyError, TypeError, struct.error, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path} is not a readable safetensors file ({error}).\n"
            "help: the checkpoint is damaged (perhaps cut off while copying); save it again or "
            "restore the file from a copy."
        ) from None


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


def load_checkpoint(directory: str | Path) -> tuple[MiniGPT, CharTokenizer | None, CheckpointInfo]:
    """Read a checkpoint written by `save_checkpoint`: (model, tokenizer or None, info)."""
    directory = Path(directory)
    if not directory.is_dir():
        hint = "check the path (it is the --out directory of the training run)."
        if directory.with_name(f".{directory.name}.old").is_dir():
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
    tokenizer = None
    if (tok_path := directory / TOKENIZER_FILE).is_file():
        try:
            tokenizer = CharTokenizer.from_json(tok_path.read_text(encoding="utf-8"))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{tok_path} is not a valid tokenizer ({error}).") from None
        if tokenizer.vocab_size != config.vocab_size:
            raise ValueError(
                f"{tok_path} has {tokenizer.vocab_size} characters but the model expects "
                f"vocab_size={config.vocab_size}.\nhelp: the files come from different runs."
            )
    model = MiniGPT(config)
    weights_path = directory / MODEL_FILE
    hint = f"{CONFIG_FILE} and {MODEL_FILE} disagree; restore both from the same training run."
    load_weights(model, _read_safetensors(weights_path), str(weights_path), hint)
    optimizer_state = None
    if (opt_path := directory / OPTIMIZER_FILE).is_file():
        optimizer_state = _read_safetensors(opt_path)
    info = CheckpointInfo(
        step=int(meta.get("step", 0)),
        train_config=meta.get("train"),
        history=meta.get("history"),
        optimizer_state=optimizer_state,
    )
    return model, tokenizer, info
