"""Saving and loading the small networks of lessons 9-10: safetensors weights plus a JSON config.

A checkpoint is two files that share a stem: ``perception.safetensors`` and ``perception.json``.
Both are written to a temporary name and renamed, so a crash never leaves half a checkpoint; loading
checks every weight's shape against the network the config builds before copying anything.
"""

import dataclasses
import json
import os
import tempfile
from pathlib import Path

from tinygrad.nn.state import get_state_dict, load_state_dict, safe_load, safe_save

SHIPPED = Path(__file__).parent / "weights"  # trained weights that come with the package


def save_checkpoint(model, config, stem: str | Path, extra: dict | None = None) -> Path:
    """Write `model`'s weights and its dataclass `config` (plus `extra` notes) next to `stem`."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    meta = {"kind": type(model).__name__, "config": dataclasses.asdict(config), **(extra or {})}
    for suffix, write in (
        (".safetensors", lambda tmp: safe_save(get_state_dict(model), tmp)),
        (".json", lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2) + "\n")),
    ):
        fd, tmp = tempfile.mkstemp(dir=stem.parent, prefix=stem.name, suffix=".tmp")
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; checkpoints are shared data
        os.replace(tmp, stem.with_suffix(suffix))
    return stem.with_suffix(".safetensors")


def load_checkpoint(model_class, config_class, stem: str | Path):
    """Build ``model_class(config_class(**saved config))`` and load the saved weights into it."""
    stem = Path(stem)
    weights, meta_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    for path in (weights, meta_path):
        if not path.exists():
            raise ValueError(
                f"checkpoint file {path} does not exist.\n"
                f"help: train one first, or pass the stem of a saved {model_class.__name__}."
            )
    meta = json.loads(meta_path.read_text())
    if meta.get("kind") != model_class.__name__:
        raise ValueError(
            f"{meta_path} holds a {meta.get('kind')!r}, not a {model_class.__name__!r}.\n"
            "help: load it with the matching class."
        )
    model = model_class(config_class(**meta["config"]))
    expected = {k: v.shape for k, v in get_state_dict(model).items()}
    saved = safe_load(str(weights))
    found = {k: v.shape for k, v in saved.items()}
    if expected != found:
        raise ValueError(
            f"{weights} does not fit the config in {meta_path}: expected {expected}, found {found}.\n"
            "help: save the weights and the config together with save_checkpoint."
        )
    load_state_dict(model, saved, verbose=False)
    return model
