"""course.files: atomic writes leave the old file or the new one, never half of one; weights files
are checked before they are trusted."""

import json
import os
import stat
import struct

import numpy as np
import pytest
from tinygrad import Tensor, dtypes
from tinygrad.nn.state import safe_save

from course.files import check_finite, read_safetensors, write_atomic


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
