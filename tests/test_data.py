"""Tokenizer, corpora (built-in, file, URL via file://), synthetic tasks, split and batches."""

import hashlib
import re

import numpy as np
import pytest

from minigpt import data
from minigpt.data import (
    STDLIB_MODULES,
    CharTokenizer,
    get_batch,
    load_corpus,
    split,
    synthetic_task,
)


@pytest.fixture(scope="module")
def stdlib():
    return load_corpus()


def test_tokenizer_round_trip(tmp_path):
    tok = CharTokenizer.from_text("hello, world")
    assert tok.chars == " ,dehlorw" and tok.vocab_size == 9
    ids = tok.encode("low hello")
    assert ids.dtype == np.int32 and tok.decode(ids) == "low hello"
    assert CharTokenizer.from_json(tok.to_json()).chars == tok.chars
    tok.save(tmp_path / "tok.json")
    assert CharTokenizer.load(tmp_path / "tok.json").chars == tok.chars


def test_tokenizer_errors():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match=r"character 'z' \(U\+007A\) at position 2"):
        tok.encode("abz")
    with pytest.raises(ValueError, match=r"id 3 is outside \[0, 3\)"):
        tok.decode([0, 3])
    with pytest.raises(ValueError, match='"type": "char"'):
        CharTokenizer.from_json('{"chars": "abc"}')


def test_default_corpus_is_the_sorted_stdlib_list(stdlib):
    assert list(STDLIB_MODULES) == sorted(STDLIB_MODULES)
    headers = re.findall(r"^# ---- \w+\.py ----$", stdlib, flags=re.MULTILINE)
    assert headers == [f"# ---- {name}.py ----" for name in STDLIB_MODULES]
    assert 900_000 < len(stdlib) < 1_300_000
    assert load_corpus("python-stdlib") == stdlib


def test_file_corpus_and_checksum(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("some text\n", encoding="utf-8")
    good = hashlib.sha256(b"some text\n").hexdigest()
    assert load_corpus(str(path), sha256=good) == "some text\n"
    with pytest.raises(ValueError, match="expected 0000"):
        load_corpus(str(path), sha256="0000")
    with pytest.raises(ValueError, match="is not a file, an http"):
        load_corpus(str(tmp_path / "missing.txt"))
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        load_corpus(str(tmp_path / "latin.txt"))


def test_url_corpus_is_downloaded_once(tmp_path, monkeypatch):
    source = tmp_path / "remote.txt"
    source.write_text("remote text", encoding="utf-8")
    monkeypatch.setenv("MINIGPT_CACHE", str(tmp_path / "cache"))
    fetched = []
    real_fetch = data._fetch
    monkeypatch.setattr(data, "_fetch", lambda url: fetched.append(url) or real_fetch(url))
    url = source.as_uri()  # file:// goes through the same download-and-cache path as https://
    assert load_corpus(url) == "remote text"
    assert load_corpus(url) == "remote text"
    assert fetched == [url]
    cached = list((tmp_path / "cache").iterdir())
    assert len(cached) == 1 and cached[0].name.endswith("-remote.txt")
    with pytest.raises(ValueError, match="has sha256"):
        load_corpus(url, sha256="ab" * 32)


def test_failed_download_names_the_url(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGPT_CACHE", str(tmp_path / "cache"))
    url = (tmp_path / "nowhere.txt").as_uri()
    with pytest.raises(ValueError, match="could not download file://"):
        load_corpus(url)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


@pytest.mark.parametrize("name", ["copy", "reverse"])
def test_copy_and_reverse_tasks(name):
    task = synthetic_task(name, n=5, length=4, vocab=6, rng=np.random.default_rng(0))
    assert task.x.shape == task.y.shape == (5, 8) and task.tokenizer.vocab_size == 7
    for x, y in zip(task.x, task.y, strict=True):
        question = x[:4]
        answer = question if name == "copy" else question[::-1]
        assert task.tokenizer.decode(x[4:5]) == "|"
        assert (y[:4] == -1).all()
        np.testing.assert_array_equal(y[4:], answer)  # y[t] is the token after x[t]
        np.testing.assert_array_equal(x[5:], answer[:-1])


def test_previous_token_task():
    task = synthetic_task("previous", n=3, length=5, vocab=4, rng=np.random.default_rng(0))
    assert (task.y[:, 0] == -1).all()
    np.testing.assert_array_equal(task.y[:, 1:], task.x[:, :-1])


@pytest.mark.parametrize(
    "args, match",
    [
        (("sort", 5, 4, 6), "unknown task 'sort'"),
        (("copy", 0, 4, 6), "n=0"),
        (("copy", 5, 4, 30), "vocab=30"),
    ],
)
def test_synthetic_task_errors(args, match):
    with pytest.raises(ValueError, match=match):
        synthetic_task(*args, rng=np.random.default_rng(0))


def test_split_and_get_batch():
    tokens = np.arange(100, dtype=np.int32)
    train, val = split(tokens, 0.9)
    assert len(train) == 90 and len(val) == 10 and val[0] == 90
    x, y = get_batch(train, batch_size=4, block_size=8, rng=np.random.default_rng(0))
    assert x.shape == y.shape == (4, 8) and x.dtype == np.int32
    np.testing.assert_array_equal(y, x + 1)  # targets are the inputs shifted by one
    assert x.min() >= 0 and y.max() <= 89
    again = get_batch(train, 4, 8, np.random.default_rng(0))
    np.testing.assert_array_equal(again[0], x)


def test_split_and_batch_errors():
    with pytest.raises(ValueError, match="fraction=1.0"):
        split(np.arange(10), 1.0)
    with pytest.raises(ValueError, match="leaves one part empty"):
        split(np.arange(3), 0.1)
    with pytest.raises(ValueError, match="cannot fill a window"):
        get_batch(np.arange(8), 2, 8, np.random.default_rng(0))
