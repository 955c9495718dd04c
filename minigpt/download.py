"""Downloading a corpus (lesson 4): fetched once into a cache, every byte under one deadline and
one size cap, every redirect under the rules of the first URL.

`download(url, sha256)` refuses plain http without a checksum (anyone on the way could change
the text), also when an https URL redirects to it; a timer shuts the connection down when
DOWNLOAD_SECONDS have passed, so a server that trickles its headers, a chunk-size line or the
body cannot stretch the download; the file lands in `cache_dir()` atomically.
"""

import contextlib
import hashlib
import http.client
import os
import re
import socket
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from course.files import write_atomic

DOWNLOAD_SECONDS = 300.0  # a download that takes longer in total is abandoned
DOWNLOAD_MAX_BYTES = 200_000_000  # corpora are text: anything larger is refused


def cache_dir() -> Path:
    """Where downloaded corpora are kept: $MINIGPT_CACHE, else ~/.cache/minigpt."""
    return Path(os.environ.get("MINIGPT_CACHE") or Path.home() / ".cache" / "minigpt")


def check_url(url: str, sha256: str | None) -> None:
    """The rule every URL of a download obeys, the first and every redirect: http or https, and
    plain http only with a checksum (without TLS anyone on the way could change the text)."""
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"{url} is not an http(s) URL.\nhelp: download from an https URL.")
    if scheme == "http" and sha256 is None:
        raise ValueError(
            f"{url} uses plain http, which anyone on the network path can alter.\n"
            "help: use an https URL, or give the file's checksum with sha256= (--sha256)."
        )


class _Deadline:
    """One deadline for every byte of a download: when it passes, the connections' sockets are
    shut down, which ends at once a read that waits for headers, a chunk-size line or the body,
    however slowly a server trickles them."""

    def __init__(self, seconds: float):
        self.seconds, self.end = seconds, time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def left(self) -> float:
        return max(0.001, self.end - time.monotonic())

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
        if self.expired:
            self._expire()

    def _expire(self) -> None:
        self.expired = True
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):  # closed already
                    sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()


def _opener(deadline: _Deadline, sha256: str | None) -> urllib.request.OpenerDirector:
    """A urllib opener whose connections are under `deadline` and whose redirects obey
    `check_url` (an https URL that redirects to plain http needs the checksum too)."""

    class Http(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            deadline.watch(self.sock)

    class Https(http.client.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            deadline.watch(self.sock)

    class HttpHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(Http, req)

    class HttpsHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(Https, req, context=self._context)

    return urllib.request.build_opener(HttpHandler, HttpsHandler, RedirectRule(sha256))


class RedirectRule(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to a URL that `check_url` accepts with the same checksum."""

    def __init__(self, sha256: str | None):
        self.sha256 = sha256

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        try:
            check_url(newurl, self.sha256)
        except ValueError as error:
            raise ValueError(f"{req.full_url} redirects to {str(error)}") from None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _fetch(url: str, sha256: str | None = None) -> bytes:
    """The body of `url`, every byte (connecting, headers, chunk lines, body, redirects) within
    DOWNLOAD_SECONDS in total, and at most DOWNLOAD_MAX_BYTES; a body shorter than its
    Content-Length is an error."""
    with _Deadline(DOWNLOAD_SECONDS) as deadline:
        try:
            return _read_body(_opener(deadline, sha256), url, deadline)
        except (OSError, http.client.HTTPException):
            if deadline.expired:
                raise OSError(f"it took more than {DOWNLOAD_SECONDS:g} s") from None
            raise


def _read_body(opener: urllib.request.OpenerDirector, url: str, deadline: _Deadline) -> bytes:
    with opener.open(url, timeout=min(60.0, deadline.left())) as response:
        declared = response.headers.get("Content-Length")
        declared = int(declared) if declared and declared.isdigit() else None
        if declared is not None and declared > DOWNLOAD_MAX_BYTES:
            raise OSError(f"it is {declared:,} bytes, more than {DOWNLOAD_MAX_BYTES:,}")
        chunks, size = [], 0
        while chunk := response.read1(1 << 16):
            chunks.append(chunk)
            size += len(chunk)
            if size > DOWNLOAD_MAX_BYTES:
                raise OSError(f"it is larger than {DOWNLOAD_MAX_BYTES:,} bytes")
            if deadline.expired:
                raise OSError(f"it took more than {DOWNLOAD_SECONDS:g} s ({size:,} bytes so far)")
    if deadline.expired:
        raise OSError(f"it took more than {DOWNLOAD_SECONDS:g} s ({size:,} bytes so far)")
    if declared is not None and size != declared:
        raise OSError(f"the server sent {size:,} of {declared:,} bytes")
    return b"".join(chunks)


def _cache_path(url: str) -> Path:
    """A short, safe file name in `cache_dir()`: a hash of the URL plus the URL's file name."""
    folder = cache_dir()
    if folder.exists() and not folder.is_dir():
        raise ValueError(
            f"the download cache {folder} is a file, not a folder.\n"
            "help: point MINIGPT_CACHE at a folder (or unset it to use ~/.cache/minigpt)."
        )
    name = Path(urllib.parse.urlparse(url).path).name or "corpus.txt"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[-80:]  # file systems allow 255 bytes a name
    return folder / f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{name}"


def check_sha256(data: bytes, sha256: str | None, origin: str) -> None:
    """Raise naming `origin` when `sha256` is given and the data's checksum differs."""
    if sha256 is not None and (got := hashlib.sha256(data).hexdigest()) != sha256.lower():
        raise ValueError(
            f"{origin} has sha256 {got}, expected {sha256}.\n"
            "help: the file changed or the download was damaged; check the URL and the checksum "
            "(a damaged cached copy can simply be deleted)."
        )


def download(url: str, sha256: str | None = None) -> Path:
    """Download `url` once into `cache_dir()` (atomically) and return the cached file's path.

    Plain http needs `sha256`: without TLS anyone on the way could change the text unnoticed;
    the same holds for every URL a redirect leads to.
    """
    check_url(url, sha256)
    path = _cache_path(url)
    if path.is_file():
        check_sha256(path.read_bytes(), sha256, f"cached file {path}")
        return path
    try:
        data = _fetch(url, sha256)
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise ValueError(
            f"could not download {url}: {error}.\n"
            "help: check the URL and the network, or download the file yourself and pass its path."
        ) from None
    check_sha256(data, sha256, url)
    try:
        write_atomic(path, data)
    except OSError as error:
        raise ValueError(
            f"could not write the download cache {path} ({error.strerror}).\n"
            "help: point MINIGPT_CACHE at a writable folder."
        ) from None
    return path
