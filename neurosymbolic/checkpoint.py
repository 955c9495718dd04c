"""Saving and loading the small networks of lessons 9-10: safetensors weights plus a JSON config.

A checkpoint is two files that share a stem: ``perception.safetensors`` and ``perception.json``.
Both are written to a temporary name and renamed, so a crash never leaves half a checkpoint, and
only files we can prove we wrote are replaced (the JSON names the network's kind and config); loading
checks the file's header, every weight's shape against the network the config builds, and that no
weight is NaN or infinite, before the network is used.
"""

import dataclasses
import json
from pathlib import Path

from tinygrad.nn.state import get_state_dict, load_state_dict, safe_save

from course.files import check_finite, parse_json, read_safetensors, write_atomic

SHIPPED = Path(__file__).parent / "weights"  # trained weights that come with the package
DAMAGED = "help: the file is damaged; train and save again, or restore it from a copy."


def save_checkpoint(model, config, stem: str | Path, extra: dict | None = None) -> Path:
    """Write `model`'s weights and its dataclass `config` (plus `extra` notes) next to `stem`."""
    stem = Path(stem)
    if stem.is_dir():
        raise ValueError(
            f"{stem} is a folder, but a checkpoint stem names two files ({stem.name}.json, "
            f"{stem.name}.safetensors).\nhelp: pass e.g. {stem / 'perception'}."
        )
    check_replaceable(stem)
    weights = get_state_dict(model)
    check_finite(weights, f"not saving {stem}")
    stem.parent.mkdir(parents=True, exist_ok=True)
    meta = {"kind": type(model).__name__, "config": dataclasses.asdict(config), **(extra or {})}
    write_atomic(stem.with_suffix(".safetensors"), lambda tmp: safe_save(weights, tmp))
    write_atomic(stem.with_suffix(".json"), (json.dumps(meta, indent=2) + "\n").encode())
    return stem.with_suffix(".safetensors")


def is_checkpoint(stem: str | Path) -> bool:
    """True when `stem`'s JSON is one `save_checkpoint` wrote: an object with a network's "kind"
    and its "config" (the proof that replacing the pair destroys nothing of a user's)."""
    try:
        meta = parse_json(Path(stem).with_suffix(".json").read_bytes())
    except (OSError, ValueError):
        return False
    return (
        isinstance(meta, dict)
        and isinstance(meta.get("kind"), str)
        and isinstance(meta.get("config"), dict)
    )


def check_replaceable(stem: str | Path) -> None:
    """Refuse to save over a ``.json`` or ``.safetensors`` beside `stem` that we did not write."""
    stem = Path(stem)
    there = [p for p in (stem.with_suffix(".json"), stem.with_suffix(".safetensors")) if p.exists()]
    if there and not is_checkpoint(stem):
        raise ValueError(
            f"{there[0]} exists and is not a checkpoint saved here (no network kind and config "
            "in its JSON), so saving would overwrite someone's file.\nhelp: save under another "
            "name or folder, or move the file away."
        )


def _read_meta(path: Path) -> dict:
    try:
        meta = parse_json(path.read_text(encoding="utf-8"))
    except ValueError as error:  # malformed, too deeply nested, or not UTF-8
        raise ValueError(f"{path} is not valid JSON ({error}).\n{DAMAGED}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise ValueError(f"{path} holds no JSON object with a 'config' object.\n{DAMAGED}")
    return meta


def load_checkpoint(model_class, config_class, stem: str | Path):
    """Build ``model_class(config_class(**saved config))`` and load the saved weights into it."""
    stem = Path(stem)
    weights, meta_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    for path in (weights, meta_path):
        if not path.is_file():
            raise ValueError(
                f"checkpoint file {path} does not exist.\n"
                f"help: train one first, or pass the stem of a saved {model_class.__name__}."
            )
    meta = _read_meta(meta_path)
    if meta.get("kind") != model_class.__name__:
        raise ValueError(
            f"{meta_path} holds a {meta.get('kind')!r}, not a {model_class.__name__!r}.\n"
            "help: load it with the matching class."
        )
    try:
        model = model_class(config_class(**meta["config"]))
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{meta_path} has a config that does not fit {config_class.__name__} "
            f"({str(error).splitlines()[0]}).\n{DAMAGED}"
        ) from None
    expected = {k: v.shape for k, v in get_state_dict(model).items()}
    saved = read_safetensors(weights)
    found = {k: v.shape for k, v in saved.items()}
    if expected != found:
        raise ValueError(
            f"{weights} does not fit the config in {meta_path}: expected {expected}, found {found}.\n"
            "help: save the weights and the config together with save_checkpoint."
        )
    load_state_dict(model, saved, verbose=False)
    return model
