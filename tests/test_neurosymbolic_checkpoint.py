"""Saved perception and policy networks: exact round trip, and a plain error naming the file for
every kind of damage (cut off, edited config, NaN weights, random bytes), never a traceback."""

import json

import numpy as np
import pytest
from tinygrad import Tensor
from tinygrad.nn.state import get_state_dict, safe_save

from neurosymbolic.checkpoint import load_checkpoint, save_checkpoint
from neurosymbolic.policy import Policy, PolicyConfig


@pytest.fixture
def stem(tmp_path):
    Tensor.manual_seed(0)
    model = Policy(PolicyConfig(window=3, hidden=8))
    save_checkpoint(model, model.config, tmp_path / "policy")
    return tmp_path / "policy"


def load(stem):
    return load_checkpoint(Policy, PolicyConfig, stem)


def test_round_trip_and_permissions(stem):
    model = load(stem)
    assert model.config == PolicyConfig(window=3, hidden=8)
    for suffix in (".json", ".safetensors"):
        assert stem.with_suffix(suffix).stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in stem.parent.iterdir()) == ["policy.json", "policy.safetensors"]


def test_truncated_weights(stem):
    path = stem.with_suffix(".safetensors")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"policy.safetensors is not a readable safetensors file"):
        load(stem)


def test_edited_config(stem):
    path = stem.with_suffix(".json")
    meta = json.loads(path.read_text())
    meta["config"]["colour"] = "red"
    path.write_text(json.dumps(meta))
    with pytest.raises(
        ValueError, match=r"policy.json has a config that does not fit PolicyConfig"
    ):
        load(stem)
    path.write_text("{ not json")
    with pytest.raises(ValueError, match=r"policy.json is not valid JSON"):
        load(stem)
    path.write_text("[]")
    with pytest.raises(ValueError, match=r"policy.json holds no JSON object with a 'config'"):
        load(stem)


def test_nan_weights_are_refused(stem):
    weights = {k: v.numpy().copy() for k, v in get_state_dict(load(stem)).items()}
    name = sorted(weights)[0]
    weights[name].flat[0] = np.nan
    safe_save({k: Tensor(v) for k, v in weights.items()}, str(stem.with_suffix(".safetensors")))
    with pytest.raises(ValueError, match=f"policy.safetensors: tensor '{name}' holds NaN"):
        load(stem)


def test_a_folder_is_not_a_stem(stem):
    model = load(stem)
    with pytest.raises(ValueError, match="is a folder, but a checkpoint stem names two files"):
        save_checkpoint(model, model.config, stem.parent)


def test_fuzz_random_bytes_and_truncations(stem):
    rng = np.random.default_rng(1)
    originals = {s: stem.with_suffix(s).read_bytes() for s in (".json", ".safetensors")}
    for trial in range(30):
        suffix = (".json", ".safetensors")[trial % 2]
        data = originals[suffix]
        if trial % 3 == 0:
            damaged = data[: int(rng.integers(0, len(data)))]
        elif trial % 3 == 1:
            damaged = rng.integers(0, 256, int(rng.integers(1, 200)), dtype=np.uint8).tobytes()
        else:
            damaged = bytearray(data)
            for i in rng.integers(0, min(len(data), 200), 3):
                damaged[i] = int(rng.integers(0, 256))
            damaged = bytes(damaged)
        stem.with_suffix(suffix).write_bytes(damaged)
        try:
            load(stem)
        except ValueError as error:
            assert f"policy{suffix}" in str(error), str(error)
        stem.with_suffix(suffix).write_bytes(data)


def test_saving_never_overwrites_a_file_it_did_not_write(tmp_path):
    model = Policy(PolicyConfig(window=3, hidden=8))
    (tmp_path / "policy.json").write_text('{"my": "settings"}')
    with pytest.raises(ValueError, match=r"(?s)policy.json exists and is not a checkpoint.*help:"):
        save_checkpoint(model, model.config, tmp_path / "policy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.json"]
    (tmp_path / "policy.json").unlink()
    (tmp_path / "policy.safetensors").write_bytes(b"my weights")  # with no JSON of ours beside it
    with pytest.raises(ValueError, match="policy.safetensors exists and is not a checkpoint"):
        save_checkpoint(model, model.config, tmp_path / "policy")
    assert (tmp_path / "policy.safetensors").read_bytes() == b"my weights"


def test_saving_again_over_its_own_checkpoint_is_allowed(stem):
    model = Policy(PolicyConfig(window=3, hidden=8))
    save_checkpoint(model, model.config, stem)
    assert load(stem).config == PolicyConfig(window=3, hidden=8)


@pytest.mark.parametrize("depth", [100_000, 1_000_000])
def test_a_deeply_nested_config_is_named_as_damaged(stem, depth):
    stem.with_suffix(".json").write_text("[" * depth + "]" * depth)
    with pytest.raises(ValueError, match=r"(?s)policy.json is not valid JSON.*too deeply"):
        load(stem)
