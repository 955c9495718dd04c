"""Text in, token ids out: a character tokenizer, corpora, synthetic tasks and batches (lesson 4).

The default corpus needs no network: a fixed list of pure-Python standard-library modules
(`STDLIB_MODULES`, about 1.1 MB) as CPython 3.11.7 ships them, stored in the package
(`minigpt/corpus/`, with the Python Software Foundation licence beside it) and checked against
its sha256 on every load, so every machine and every Python version trains on the same bytes.
"""

import hashlib
import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course.files import parse_json, write_atomic
from minigpt.download import DOWNLOAD_MAX_BYTES, check_sha256, download

DEFAULT_CORPUS = "python-stdlib"
STDLIB_CORPUS = Path(__file__).resolve().parent / "corpus" / "python_stdlib.txt"
STDLIB_CORPUS_SHA256 = "b6577583bc8e98684165e6a13699f0fe540ac377370e43dcf2c723cb272b7db7"
# lesson 4's model trained longer on that corpus; its README gives the command, losses and samples
STDLIB_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "stdlib-gpt"
# Sorted: the modules of the shipped corpus, in its order (readable, general-purpose code).
STDLIB_MODULES = (
    "argparse", "bisect", "calendar", "configparser", "contextlib", "copy", "csv", "dataclasses",
    "difflib", "enum", "fractions", "functools", "heapq", "inspect", "pprint", "queue", "random",
    "shutil", "statistics", "string", "textwrap", "threading", "tokenize", "typing",
)  # fmt: skip
SYNTHETIC_TASKS = ("copy", "reverse", "previous")
MAX_CORPUS_BYTES = DOWNLOAD_MAX_BYTES  # a local corpus may be no larger than a download
SEPARATOR = "|"  # between question and answer in the synthetic tasks


class CharTokenizer:
    """One token per distinct character; ids follow the sorted order of the characters."""

    def __init__(self, chars: str):
        if not isinstance(chars, str) or not chars or len(set(chars)) != len(chars):
            raise ValueError(
                f"CharTokenizer needs distinct characters, got {chars[:40]!r}.\n"
                "help: build one from text with CharTokenizer.from_text(text)."
            )
        self.chars = chars
        self.stoi = {ch: i for i, ch in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        """The vocabulary of `text`: every character that occurs in it, sorted."""
        if not isinstance(text, str) or not text:
            raise ValueError(
                f"cannot build a tokenizer from {text!r}: it needs a non-empty string.\n"
                "help: pass the training text, e.g. CharTokenizer.from_text(load_corpus())."
            )
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Text -> int32 ids (len(text),). Raises naming the first character not in the vocabulary."""
        try:
            return np.array([self.stoi[ch] for ch in text], dtype=np.int32)
        except KeyError as error:
            ch = error.args[0]
            raise ValueError(
                f"character {ch!r} (U+{ord(ch):04X}) at position {text.index(ch)} is not in the "
                f"tokenizer's vocabulary of {self.vocab_size} characters.\n"
                "help: use only characters from the training text, or build the tokenizer from "
                "text that contains it."
            ) from None

    def decode(self, ids) -> str:
        """Ids (any int sequence or array) -> text."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(
                f"id {ids.min() if ids.min() < 0 else ids.max()} is outside "
                f"[0, {self.vocab_size}).\nhelp: decode ids made with this tokenizer."
            )
        return "".join(self.chars[i] for i in ids)

    def to_json(self) -> str:
        return json.dumps({"type": "char", "chars": self.chars}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "CharTokenizer":
        data = parse_json(text)
        if not isinstance(data, dict) or data.get("type") != "char" or "chars" not in data:
            raise ValueError(
                f'expected a JSON object with "type": "char", got {text[:60]!r}.\n'
                "help: pass what CharTokenizer.to_json() wrote."
            )
        return cls(data["chars"])

    def save(self, path: str | Path) -> None:
        write_atomic(Path(path), self.to_json().encode())

    @classmethod
    def load(cls, path: str | Path) -> "CharTokenizer":
        """Read a tokenizer written by `save`; a damaged file gives an error that names it."""
        try:
            return cls.from_json(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError) as error:  # JSON and decoding errors included
            first_line = str(error).split("\n")[0]
            raise ValueError(
                f"{path} is not a readable tokenizer ({first_line}).\n"
                "help: the file is damaged; save it again or restore it from a copy."
            ) from None


def stdlib_text() -> str:
    """The default corpus: `STDLIB_MODULES` of CPython 3.11.7, each under a header line, read from
    the copy shipped in the package and checked against `STDLIB_CORPUS_SHA256`."""
    data = STDLIB_CORPUS.read_bytes()
    if hashlib.sha256(data).hexdigest() != STDLIB_CORPUS_SHA256:
        raise ValueError(
            f"{STDLIB_CORPUS} does not have the sha256 {STDLIB_CORPUS_SHA256}: the shipped corpus "
            "was changed.\nhelp: reinstall the package (or restore the file with git checkout)."
        )
    return data.decode("utf-8")


def load_corpus(source: str = DEFAULT_CORPUS, sha256: str | None = None) -> str:
    """Text of a corpus: "python-stdlib", a local text file or file:// URL (read afresh each
    time), or an http(s) URL (downloaded once, cached).

    `sha256`, when given, must match the file's bytes (checked for files and URLs). A file
    larger than MAX_CORPUS_BYTES is refused before it is read.
    """
    if source == DEFAULT_CORPUS:
        return stdlib_text()
    url = urllib.parse.urlparse(source)
    if url.scheme in ("http", "https"):
        path = download(source, sha256)
    else:
        path = Path(urllib.request.url2pathname(url.path) if url.scheme == "file" else source)
        if not path.is_file() or (url.scheme == "file" and url.netloc not in ("", "localhost")):
            raise ValueError(
                f"corpus {source!r} is not a file, an http(s)/file URL, or {DEFAULT_CORPUS!r}.\n"
                "help: check the path, or use the built-in corpus: load_corpus()."
            )
        if (size := path.stat().st_size) > MAX_CORPUS_BYTES:
            raise ValueError(
                f"corpus {source!r} is {size:,} bytes, more than the limit of "
                f"{MAX_CORPUS_BYTES:,} (encoding it would take several times that in memory)."
                "\nhelp: train on a part of it, e.g. `head -c 100000000 big.txt > part.txt`."
            )
        check_sha256(path.read_bytes(), sha256, str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"corpus {source!r} is not UTF-8 text ({error.reason} at byte {error.start}).\n"
            "help: convert it, e.g. `iconv -f latin1 -t utf-8 in.txt > out.txt`."
        ) from None
    if not text:
        raise ValueError(f"corpus {source!r} is empty.\nhelp: train on a file that holds text.")
    return text


@dataclass
class SyntheticTask:
    """A small dataset for next-token training: inputs x and targets y, both (n, T) int32.

    Targets equal to -1 are ignored by the loss (only the answer part is scored).
    """

    x: np.ndarray  # (n, T) int32 token ids
    y: np.ndarray  # (n, T) int32 next-token targets, -1 = not scored
    tokenizer: CharTokenizer  # letters a, b, ... and the separator "|"


def synthetic_task(
    name: str, n: int, length: int, vocab: int, rng: np.random.Generator
) -> SyntheticTask:
    """`n` random sequences of `length` letters from the first `vocab` letters of the alphabet.

    copy: "abc|abc", reverse: "abc|cba": x is the sequence without its last token, y the next
    tokens with the question part masked (-1), so the loss scores only the answer.
    previous: x = "abcd", y = "-abc": at each position predict the token just before it.
    """
    if name not in SYNTHETIC_TASKS:
        raise ValueError(f"unknown task {name!r}.\nhelp: choose one of {SYNTHETIC_TASKS}.")
    if n <= 0 or length <= 0 or not 2 <= vocab <= 26:
        raise ValueError(
            f"n={n}, length={length}, vocab={vocab}; expected n, length >= 1, 2 <= vocab <= 26.\n"
            "help: for example synthetic_task('copy', 1000, 4, 6, rng)."
        )
    tokenizer = CharTokenizer.from_text("abcdefghijklmnopqrstuvwxyz"[:vocab] + SEPARATOR)
    seqs = rng.integers(0, vocab, (n, length)).astype(np.int32)  # (n, L)
    if name == "previous":
        y = np.concatenate([np.full((n, 1), -1, np.int32), seqs[:, :-1]], axis=1)
        return SyntheticTask(seqs, y, tokenizer)
    answer = seqs if name == "copy" else seqs[:, ::-1]
    sep = np.full((n, 1), tokenizer.stoi[SEPARATOR], np.int32)
    full = np.concatenate([seqs, sep, answer], axis=1)  # (n, 2L+1)
    x, y = full[:, :-1], full[:, 1:].copy()  # (n, 2L)
    y[:, :length] = -1  # predicting the question is impossible; score only the answer
    return SyntheticTask(np.ascontiguousarray(x), y, tokenizer)


def split(tokens: np.ndarray, fraction: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """First `fraction` of the tokens for training, the rest for validation (no shuffling:
    neighbouring characters are not independent, so a random split would leak)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction={fraction}; expected 0 < fraction < 1 (e.g. 0.9).")
    cut = int(len(tokens) * fraction)
    if cut == 0 or cut == len(tokens):
        raise ValueError(
            f"splitting {len(tokens)} tokens at {fraction} leaves one part empty.\n"
            "help: use a longer text."
        )
    return tokens[:cut], tokens[cut:]


def get_batch(
    tokens: np.ndarray, batch_size: int, block_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`batch_size` random windows: x (B, T) and targets y (B, T) = x shifted left by one token."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}; expected an int >= 1 (rows in a batch).")
    if len(tokens) <= block_size:
        raise ValueError(
            f"{len(tokens)} tokens cannot fill a window of block_size + 1 = {block_size + 1}.\n"
            "help: use more text or a smaller block_size."
        )
    windows = np.lib.stride_tricks.sliding_window_view(tokens, block_size + 1)  # (N-T, T+1)
    chosen = windows[rng.integers(0, len(windows), batch_size)]  # (B, T+1)
    return chosen[:, :-1].astype(np.int32), chosen[:, 1:].astype(np.int32)
