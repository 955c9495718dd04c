"""Your solutions, kept between lessons for the capstones (lessons 13 and 14).

When a checker passes on a function written in a notebook, the function's source is saved to
`my_solutions/` (beside the notebook), with the imports and helper functions it uses. A capstone
loads each piece it needs from there, or takes the one written in its own notebook, re-checks it
with its checker, and falls back to the package's version, naming why, when a piece is missing,
unsolved or failing: a broken piece is never used silently.
"""

import ast
import importlib.util
import inspect
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from course.files import write_atomic

SOLUTIONS = Path("my_solutions")  # relative to where the notebook runs
_MODULES = ("math", "heapq", "numpy", "tinygrad", "minigpt", "neurosymbolic", "course")


def solution_path(check: Callable, folder: Path = SOLUTIONS) -> Path:
    """Where the solution a checker passed is kept: `folder/<lesson module>_<checker>.py`."""
    check = getattr(check, "__wrapped__", check)
    lesson = check.__module__.rsplit(".", 1)[-1]
    return Path(folder) / f"{lesson}_{check.__name__}.py"


def _names_used(code: types.CodeType) -> set[str]:
    """Global names a function's code reads, its nested code (comprehensions, lambdas) included."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names_used(const)
    return names


def _import_line(name: str, value) -> str | None:
    """An import that gives `name` this value in a fresh module, or None if none is found."""
    if isinstance(value, types.ModuleType):
        module = value.__name__
        return f"import {module}" if module == name else f"import {module} as {name}"
    owner = getattr(value, "__module__", None)
    candidates = ([owner] if owner else []) + list(_MODULES)
    for module in candidates:
        found = sys.modules.get(module)
        for attr in (getattr(value, "__name__", None), name):
            if attr and found is not None and getattr(found, attr, None) is value:
                return f"from {module} import {attr}" + (f" as {name}" if attr != name else "")
    return None


def source_of(fn: Callable) -> str:
    """A module's text that defines `fn` as `solution`: imports, helpers from the same notebook
    and the function itself. Raises ValueError naming a global it cannot rebuild."""
    imports, helpers, done, todo = [], [], set(), [fn]
    while todo:
        item = todo.pop()
        if item.__name__ in done:
            continue
        done.add(item.__name__)
        helpers.insert(0, inspect.getsource(item))
        code = getattr(item, "__code__", None)
        for name in sorted(_names_used(code) if code else set()):
            if name not in item.__globals__ or name in done:
                continue  # a builtin, an attribute name, or defined already
            value = item.__globals__[name]
            if getattr(value, "__module__", None) == "__main__" and inspect.isfunction(value):
                todo.append(value)
            elif (line := _import_line(name, value)) is not None:
                imports.append(line)
            else:
                try:
                    ast.literal_eval(repr(value))
                except (ValueError, SyntaxError):
                    raise ValueError(
                        f"{fn.__name__} reads the global {name!r} ({type(value).__name__}), "
                        "which cannot be written to a file.\nhelp: pass it as an argument or "
                        "define it inside the function."
                    ) from None
                imports.append(f"{name} = {value!r}")
    header = (
        f'"""{fn.__name__}, saved when its checker passed; edit the notebook, not this file."""'
    )
    lines = [header, "", "from __future__ import annotations", "", *sorted(set(imports)), "", ""]
    body = "\n\n\n".join(h.rstrip() for h in helpers)
    return "\n".join(lines) + f"{body}\n\n\nsolution = {fn.__name__}\n"


def remember(check: Callable, fn, folder: Path = SOLUTIONS) -> Path | None:
    """Save `fn`, which passed `check`, if it was written in a notebook or script (`__main__`);
    returns the file, or None (a package function, or source that cannot be read or rebuilt)."""
    if not inspect.isfunction(fn) or fn.__module__ != "__main__":
        return None
    try:
        text = source_of(fn)
    except (OSError, TypeError, ValueError):
        return None  # the checker's verdict stands; only the copy for the capstones is skipped
    path = solution_path(check, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode())
    return path


def load_saved(path: Path) -> Callable:
    """The `solution` defined by a saved file (ImportError or any error of its code if broken)."""
    name = f"my_solutions_{Path(path).stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "solution", None)):
        raise ImportError(f"{path} defines no function `solution`.")
    return module.solution


@dataclass
class Piece:
    """One of the learner's functions a capstone can use in place of the package's."""

    name: str  # what it does in the capstone, e.g. "attention"
    lesson: str  # where it was written, e.g. "02 · Exercise 1"
    saved_by: Callable  # the lesson's checker, whose passing saved the function
    check: Callable  # re-checks the function for the capstone (may differ: a tinygrad form)
    default: Callable | None  # the package's version (None: the package's built-in path)


@dataclass
class Choice:
    """What a capstone uses for a piece: `fn` (the package's default when `yours` is False)."""

    piece: Piece
    fn: Callable | None
    yours: bool
    origin: str  # where the learner's function came from, or why the package's is used


def choose(
    piece: Piece,
    mine: Callable | None = None,
    folder: Path = SOLUTIONS,
    where: str = "this notebook",
) -> Choice:
    """The learner's function for `piece` if one passes `piece.check`: `mine` (found `where`,
    e.g. written in the capstone notebook) first, then the saved one; otherwise the package's,
    with the reasons."""
    reasons = []
    candidates = [(where, lambda: mine)] if mine is not None else []
    path = solution_path(piece.saved_by, folder)
    if path.exists():
        candidates.append((str(path), lambda: load_saved(path)))
    else:
        reasons.append(f"no {path}")
    for origin, get in candidates:
        try:
            fn = get()
            result = piece.check(fn)
        except Exception as error:  # a broken file or a failing check: named, never used
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            reasons.append(f"{origin}: {type(error).__name__}: {first[:90]}")
            continue
        if getattr(result, "passed", False):
            return Choice(piece, fn, True, origin)
        reasons.append(f"{origin}: not solved yet")
    return Choice(piece, piece.default, False, "; ".join(reasons))


def table(choices: list[Choice]) -> str:
    """The pieces as an aligned text table: whose function each is, and from where or why not."""
    lines = [f"{'piece':<12} {'lesson':<16} {'uses':<8} from / why the package's"]
    for c in choices:
        whose = "yours" if c.yours else "package"
        lines.append(f"{c.piece.name:<12} {c.piece.lesson:<16} {whose:<8} {c.origin}")
    return "\n".join(lines)
