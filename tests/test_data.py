"""Tokenizer, corpora (built-in, file, file:// URL, and http through minigpt.download from a local
server), synthetic tasks, split and batches. No test reaches outside this machine."""

import hashlib
import http.server
import re
import threading
import time
import urllib.request

import numpy as np
import pytest

from minigpt import data, download
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


def test_default_corpus_is_the_shipped_snapshot(stdlib, monkeypatch, tmp_path):
    raw = data.STDLIB_CORPUS.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == data.STDLIB_CORPUS_SHA256
    assert stdlib.encode("utf-8") == raw  # the same bytes whatever Python runs this
    assert (data.STDLIB_CORPUS.parent / "LICENSE-PSF.txt").read_text().count("PSF") > 5
    changed = tmp_path / "python_stdlib.txt"
    changed.write_bytes(raw.replace(b"def ", b"def  ", 1))
    monkeypatch.setattr(data, "STDLIB_CORPUS", changed)
    with pytest.raises(ValueError, match="the shipped corpus was changed"):
        load_corpus()


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


def test_a_file_url_is_read_afresh_not_cached(tmp_path, monkeypatch):
    source = tmp_path / "remote.txt"
    source.write_text("remote text", encoding="utf-8")
    monkeypatch.setenv("MINIGPT_CACHE", str(tmp_path / "cache"))
    url = source.as_uri()
    assert load_corpus(url) == "remote text"
    source.write_text("edited text", encoding="utf-8")
    assert load_corpus(url) == "edited text"  # the file, not a copy of it
    assert not (tmp_path / "cache").exists()
    with pytest.raises(ValueError, match="has sha256"):
        load_corpus(url, sha256="ab" * 32)


def test_failed_download_names_the_url(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGPT_CACHE", str(tmp_path / "cache"))
    url = (tmp_path / "nowhere.txt").as_uri()
    with pytest.raises(ValueError, match="corpus 'file://.*nowhere.txt' is not a file"):
        load_corpus(url)
    assert not (tmp_path / "cache").exists()


def test_a_local_corpus_over_the_size_limit_is_refused_before_reading(tmp_path, monkeypatch):
    (tmp_path / "big.txt").write_text("x" * 100)
    monkeypatch.setattr(data, "MAX_CORPUS_BYTES", 99)
    for source in (str(tmp_path / "big.txt"), (tmp_path / "big.txt").as_uri()):
        with pytest.raises(ValueError, match=r"(?s)is 100 bytes, more than the limit of 99.*help"):
            load_corpus(source)


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


class _Corpora(http.server.BaseHTTPRequestHandler):
    """A local server with the ways a download goes wrong; every response ends by itself."""

    BODY = b"served text\n"

    def do_GET(self):
        if self.path == "/trickle.txt":  # one byte every 0.05 s, 10 s at most
            self.send_response(200)
            self.send_header("Content-Length", "200")
            self.end_headers()
            for _ in range(200):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:  # the client gave up
                    return
                time.sleep(0.05)
        elif self.path == "/slow-headers.txt":  # a header line one byte every 0.05 s, 5 s
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            self._trickle(b"a")
        elif self.path == "/slow-chunks.txt":  # a chunk-size line of zeros, one every 0.05 s
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._trickle(b"0")
        elif self.path == "/to-file":  # a redirect out of the network
            self.send_response(302)
            self.send_header("Location", "file:///etc/hostname")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/short.txt":  # promises 100 bytes, sends 10
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
        elif self.path == "/big.txt":  # declares more than the size cap
            self.send_response(200)
            self.send_header("Content-Length", str(10**12))
            self.end_headers()
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.BODY)))
            self.end_headers()
            self.wfile.write(self.BODY)

    def _trickle(self, byte: bytes) -> None:
        for _ in range(100):
            try:
                self.wfile.write(byte)
                self.wfile.flush()
            except OSError:  # the client gave up
                return
            time.sleep(0.05)

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Corpora)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGPT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_plain_http_needs_a_checksum(server, cache):
    url = f"{server}/ok.txt"
    with pytest.raises(ValueError, match=r"uses plain http[\s\S]*https URL, or give"):
        load_corpus(url)
    good = hashlib.sha256(_Corpora.BODY).hexdigest()
    assert load_corpus(url, sha256=good) == "served text\n"
    (cached,) = cache.iterdir()
    assert cached.stat().st_mode & 0o777 == 0o644
    cached.write_text("changed on disk\n")
    with pytest.raises(ValueError, match="cached file .* has sha256"):
        load_corpus(url, sha256=good)


def test_download_has_a_total_deadline(server, cache, monkeypatch):
    monkeypatch.setattr(download, "DOWNLOAD_SECONDS", 0.5)
    with pytest.raises(ValueError, match=r"could not download .*took more than 0.5 s"):
        load_corpus(f"{server}/trickle.txt", sha256="ab" * 32)
    assert not cache.exists() or not list(cache.iterdir())


def test_a_url_is_downloaded_once(server, cache, monkeypatch):
    fetched = []
    real_fetch = download._fetch
    monkeypatch.setattr(download, "_fetch", lambda *a: fetched.append(a[0]) or real_fetch(*a))
    good = hashlib.sha256(_Corpora.BODY).hexdigest()
    url = f"{server}/remote.txt"
    assert load_corpus(url, good) == load_corpus(url, good) == "served text\n"
    assert fetched == [url]
    (cached,) = cache.iterdir()
    assert cached.name.endswith("-remote.txt")


@pytest.mark.parametrize("path", ["/slow-headers.txt", "/slow-chunks.txt"])
def test_the_deadline_covers_headers_and_chunk_lines(server, cache, monkeypatch, path):
    monkeypatch.setattr(download, "DOWNLOAD_SECONDS", 0.5)
    started = time.monotonic()
    with pytest.raises(ValueError, match=r"could not download .*took more than 0.5 s"):
        load_corpus(server + path, sha256="ab" * 32)
    assert time.monotonic() - started < 2.5  # the server would go on for 5 s
    assert not cache.exists() or not list(cache.iterdir())


def test_redirects_obey_the_rules_of_the_first_url(server, cache):
    rule = download.RedirectRule(sha256=None)
    request = urllib.request.Request("https://example.org/corpus.txt")
    with pytest.raises(ValueError, match=r"(?s)redirects to http://example.org/c.txt uses plain"):
        rule.redirect_request(request, None, 302, "Found", {}, "http://example.org/c.txt")
    checked = download.RedirectRule(sha256="ab" * 32)
    redirected = checked.redirect_request(request, None, 302, "Found", {}, "http://e.org/c.txt")
    assert redirected.full_url == "http://e.org/c.txt"  # a checksum covers plain http
    with pytest.raises(ValueError, match=r"could not download .*file:///etc/hostname"):
        load_corpus(f"{server}/to-file", sha256="ab" * 32)


def test_short_and_oversized_bodies(server, cache, monkeypatch):
    with pytest.raises(ValueError, match="the server sent 10 of 100 bytes"):
        load_corpus(f"{server}/short.txt", sha256="ab" * 32)
    with pytest.raises(ValueError, match="more than 200,000,000"):
        load_corpus(f"{server}/big.txt", sha256="ab" * 32)
    monkeypatch.setattr(download, "DOWNLOAD_MAX_BYTES", 5)
    with pytest.raises(ValueError, match="it is 12 bytes, more than 5"):
        load_corpus(f"{server}/ok.txt", sha256="ab" * 32)
    assert not cache.exists() or not list(cache.iterdir())


def test_long_url_names_and_a_cache_that_is_a_file(server, cache, tmp_path, monkeypatch):
    good = hashlib.sha256(_Corpora.BODY).hexdigest()
    assert load_corpus(f"{server}/{'n' * 250}.txt", sha256=good) == "served text\n"
    (cached,) = cache.iterdir()
    assert len(cached.name) <= 100
    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.setenv("MINIGPT_CACHE", str(tmp_path / "a_file"))
    with pytest.raises(ValueError, match="cache .*a_file is a file, not a folder"):
        load_corpus(f"{server}/ok.txt", sha256=good)
    assert (tmp_path / "a_file").read_text() == "not a folder"


def test_empty_corpus_and_empty_text(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="corpus '.*empty.txt' is empty"):
        load_corpus(str(tmp_path / "empty.txt"))
    with pytest.raises(ValueError, match="needs a non-empty string"):
        CharTokenizer.from_text("")


def test_damaged_tokenizer_file_is_named(tmp_path):
    path = tmp_path / "tok.json"
    for damaged in (b"\xff\xfe", b'{"type": "char"}', b'{"type": "char", "chars": [1]}', b"[1"):
        path.write_bytes(damaged)
        with pytest.raises(ValueError, match=r"tok.json is not a readable tokenizer"):
            CharTokenizer.load(path)


def test_batch_of_zero_rows_is_refused():
    with pytest.raises(ValueError, match="batch_size=0; expected an int >= 1"):
        get_batch(np.arange(100), 0, 8, np.random.default_rng(0))


def test_shipped_checkpoint_is_trained_on_the_shipped_corpus(stdlib):
    from minigpt.checkpoint import load_checkpoint

    model, tokenizer, info = load_checkpoint(data.STDLIB_CHECKPOINT, with_optimizer=False)
    assert tokenizer.chars == CharTokenizer.from_text(stdlib).chars
    c = model.config
    assert (c.n_layer, c.n_head, c.n_embd, c.block_size) == (3, 4, 96, 64)
    assert info.step == 2500 and info.history["val_losses"][-1] < 1.4  # lesson 04 ends at 2.02
    readme = (data.STDLIB_CHECKPOINT.parent / "README.md").read_text()
    assert data.STDLIB_CORPUS_SHA256 in readme and "--steps 2500" in readme
    assert f"{info.history['val_losses'][-1]:.3f}" in readme
