"""course.files: atomic writes leave the old file or the new one, never half of one; weights files
are checked before they are trusted."""

import errno
import json
import os
import stat
import struct

import numpy as np
import pytest
from tinygrad import Tensor, dtypes
from tinygrad.nn.state import safe_save

from course.files import check_finite, parse_json, read_safetensors, write_atomic


def test_write_atomic_writes_bytes_or_lets_a_writer_fill_the_file(tmp_path):
    target = write_atomic(tmp_path / "new" / "notes.txt", b"first")
    assert target.read_bytes() == b"first"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # readable like any data file
    seen = []

    def writer(name: str) -> None:
        seen.append(name)
        with open(name, "wb") as f:
            f.write(b"second")

    write_atomic(target, writer)
    assert target.read_bytes() == b"second"
    assert seen[0].endswith(".txt") and seen[0] != str(target)  # the real suffix, another name
    assert os.listdir(target.parent) == ["notes.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "table.json"
    write_atomic(target, b"old")

    def crash(name: str) -> None:
        with open(name, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, crash)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["table.json"]


def test_read_safetensors_gives_back_what_was_saved(tmp_path):
    weights = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array([7, 8], np.int32)}
    safe_save({k: Tensor(v) for k, v in weights.items()}, str(tmp_path / "m.safetensors"))
    loaded = read_safetensors(tmp_path / "m.safetensors")
    assert sorted(loaded) == ["n", "w"]
    for name, array in weights.items():
        np.testing.assert_array_equal(loaded[name].numpy(), array)
        assert loaded[name].numpy().dtype == array.dtype


def raw_file(header: dict, data: bytes) -> bytes:
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + data


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x01\x02", "fewer than the 8 of a header length"),
        (struct.pack("<Q", 1000) + b"{}", "the header claims 1000 bytes"),
        (
            raw_file({"w": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
            "no known dtype",
        ),
        (
            raw_file({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4),
            "outside the file",
        ),
        (
            raw_file({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
            "needs 12 bytes",
        ),
        (
            raw_file({"w": {"dtype": "F32", "shape": "x", "data_offsets": [0, 4]}}, b"\0" * 4),
            "has shape 'x'",
        ),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    ],
)
def test_a_damaged_file_is_named_with_what_is_wrong_and_the_fix(tmp_path, content, reason):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(
        ValueError, match=r"(?s)bad.safetensors is not a readable.*" + reason + ".*help:"
    ):
        read_safetensors(path)


def test_nan_weights_are_refused_as_the_trace_of_a_diverged_run(tmp_path):
    path = tmp_path / "nan.safetensors"
    safe_save({"w": Tensor([1.0, float("nan")])}, str(path))
    with pytest.raises(ValueError, match=r"(?s)tensor 'w' holds NaN.*diverged.*help:"):
        read_safetensors(path)
    with pytest.raises(ValueError, match="tensor 'b' holds NaN or infinite"):
        check_finite({"a": Tensor([1.0]), "b": Tensor([float("inf")])}, "here")
    check_finite({"ids": Tensor([1, 2], dtype=dtypes.int32), "a": Tensor([0.5])}, "here")


@pytest.fixture
def private_umask():
    """Run a test under umask 077 (files for the owner only), then restore the old umask."""
    old = os.umask(0o077)
    yield
    os.umask(old)


def test_the_atomic_writer_respects_a_private_umask(tmp_path, private_umask):
    target = write_atomic(tmp_path / "secret.txt", b"mine")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # never wider than the umask allows


def test_a_full_disk_names_the_file_and_the_size_and_leaves_nothing(tmp_path):
    target = tmp_path / "weights.bin"
    write_atomic(target, b"old")

    def full(name: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(ValueError, match=r"(?s)no space left.*weights.bin.*nothing was left"):
        write_atomic(target, full)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["weights.bin"]


@pytest.mark.parametrize("depth", [10, 1_000, 100_000, 1_000_000])
def test_json_nested_at_any_depth_is_read_or_refused_with_a_message(depth):
    text = "[" * depth + "]" * depth
    try:
        value = parse_json(text)
    except ValueError as error:
        assert "too deeply" in str(error)
    else:
        assert isinstance(value, list)


@pytest.mark.parametrize("depth", [200_000, 2_000_000])
def test_a_deeply_nested_safetensors_header_is_a_damaged_file(tmp_path, depth):
    header = b'{"__metadata__": ' + b"[" * depth + b"]" * depth + b"}"
    path = tmp_path / "deep.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(ValueError, match=r"(?s)deep.safetensors is not a readable.*too deeply"):
        read_safetensors(path)


def test_bfloat16_weights_are_read_exactly(tmp_path):
    values = np.array([1.0, -2.5, 0.15625, 2.0**127], np.float32)  # all exact in bfloat16
    bits = (values.view(np.uint32) >> 16).astype(np.uint16)
    header = json.dumps({"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}})
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + bits.tobytes())
    loaded = read_safetensors(path)["w"]
    assert loaded.dtype == dtypes.bfloat16
    np.testing.assert_array_equal(loaded.cast(dtypes.float32).numpy(), values.reshape(2, 2))
    bits[1] = 0x7FC0  # a NaN
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + bits.tobytes())
    with pytest.raises(ValueError, match="tensor 'w' holds NaN"):
        read_safetensors(path)


def test_the_atomic_writer_follows_a_symbolic_link(tmp_path):
    (tmp_path / "real.txt").write_bytes(b"old")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")
    write_atomic(tmp_path / "link.txt", b"new")
    assert (tmp_path / "link.txt").is_symlink()  # still a link, not a file in its place
    assert (tmp_path / "real.txt").read_bytes() == b"new"
