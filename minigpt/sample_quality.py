"""How much a sample reads as Python (lessons 4 and 13): the share of its lines that Python's
own parser accepts, one line at a time, and the share of its words that the training text uses.

A line is judged alone, so a block header gets a body (``def f(x):`` is tried as
``def f(x): pass``), and ``else``, ``elif``, ``except`` and ``finally`` get the statement they
continue. Lines inside a docstring are prose and fail, so even real code scores below 1: compare a
sample with the same measure on the real text (`python_line_share(val_text)`).
"""

import ast
import re
import warnings

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a name or keyword, as Python spells them

# the statement a continuation line needs before it: `else:` alone is no Python
_OPENERS = {"else": "if 1: pass\n", "elif": "if 1: pass\n", "except": "try: pass\n"}
_OPENERS["finally"] = _OPENERS["except"]


def parses(line: str) -> bool:
    """Whether one line, stripped of its indentation, is Python on its own (see the module)."""
    code = line.strip()
    if code.endswith(":"):
        code += " pass"
    if code.startswith("@"):
        code += "\ndef f(): pass"  # a decorator needs something to decorate
    code = _OPENERS.get(code.split(" ")[0].rstrip(":"), "") + code
    try:
        with warnings.catch_warnings():  # e.g. SyntaxWarning for "\d" in a sampled string
            warnings.simplefilter("ignore")
            ast.parse(code)
    except (SyntaxError, ValueError):  # ValueError: a null byte
        return False
    return True


def _complete_lines(samples: str | list[str]) -> list[str]:
    """The lines of each sample but its last, which sampling cut in the middle."""
    samples = [samples] if isinstance(samples, str) else samples
    return [line for text in samples for line in text.split("\n")[:-1]]


def python_line_share(samples: str | list[str]) -> float:
    """The share of the lines of one sample or several that parse on their own, blank and
    comment-only lines left out (any text after a # parses), and so is each sample's last line.
    0.0 when no line is left."""
    lines = [line for line in _complete_lines(samples) if line.strip() and line.strip()[0] != "#"]
    return sum(parses(line) for line in lines) / len(lines) if lines else 0.0


def known_word_share(samples: str | list[str], corpus: str) -> float:
    """The share of the words (names and keywords) of one sample or several that also occur in
    `corpus`: a model that spells `self`, `return` and `value` scores high, one that invents
    `vontines` low. Each sample's last line is left out. 0.0 for text without words."""
    words = WORD.findall("\n".join(_complete_lines(samples)))
    vocabulary = set(WORD.findall(corpus))
    return sum(word in vocabulary for word in words) / len(words) if words else 0.0
