"""Mutation testing of the exercise checkers: small wrong versions of every reference must be refused.

Each reference solution (`reference_X` beside `check_X`) is parsed with `ast`, changed in one place
(an operator swapped, a constant changed, a term dropped, two arguments swapped, a comparison
flipped, another axis) and handed to its checker as if a learner had written it. A mutant the
checker accepts is a gap in the checker, unless it computes the same thing (an equivalent mutant,
listed with its reason in tests/mutation_equivalent.txt).

    python tests/mutation.py                       # every mutant of every checker (make mutation)
    python tests/mutation.py --only check_sgd_step # one checker
"""

import argparse
import ast
import copy
import inspect
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import minigpt.checks
import neurosymbolic.checks
from course.checks import ExerciseFailed

EQUIVALENT_FILE = Path(__file__).with_name("mutation_equivalent.txt")
MUTANT_SECONDS = 120  # a mutant that makes its checker run longer than this is counted as killed

_SWAPS = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.MatMult: ast.Mult,
}
_FLIPS = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_AXIS_NAMES = {"axis", "dim"}


def checkers() -> dict[str, tuple[Callable, Callable]]:
    """Every checker of both packages with its reference, found by name (`check_X`, `reference_X`)."""
    found = {}
    for package in (minigpt.checks, neurosymbolic.checks):
        for name in dir(package):
            check = getattr(package, name)
            reference = getattr(package, "reference_" + name.removeprefix("check_"), None)
            if name.startswith("check_") and hasattr(check, "needs_tensor") and reference:
                found[name] = (check, reference)
    return found


@dataclass(frozen=True)
class Mutant:
    """One changed copy of a reference: `key` names the change, line relative to the def."""

    key: str
    tree: ast.Module


def _changes(node: ast.AST) -> Iterator[tuple[str, Callable[[ast.AST], None]]]:
    """The one-place changes that apply to `node`: (description, function that applies it)."""
    if isinstance(node, ast.BinOp) and type(node.op) in _SWAPS:
        new = _SWAPS[type(node.op)]
        yield f"{type(node.op).__name__} -> {new.__name__}", lambda n: setattr(n, "op", new())
    if isinstance(node, ast.AugAssign) and type(node.op) in _SWAPS:
        new = _SWAPS[type(node.op)]
        yield f"{type(node.op).__name__}= -> {new.__name__}=", lambda n: setattr(n, "op", new())
    if isinstance(node, ast.Compare) and type(node.ops[0]) in _FLIPS:
        new = _FLIPS[type(node.ops[0])]
        yield (
            f"{type(node.ops[0]).__name__} -> {new.__name__}",
            lambda n: n.ops.__setitem__(0, new()),
        )
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        value = node.value
        for new in sorted({value + 1, value - 1} if isinstance(value, int) else {value * 2 or 1.0}):
            yield f"{value!r} -> {new!r}", lambda n, v=new: setattr(n, "value", v)
    axis = isinstance(node, ast.keyword) and node.arg in _AXIS_NAMES
    if axis and isinstance(node.value, ast.Constant) and isinstance(node.value.value, int):
        other = 0 if node.value.value != 0 else 1
        yield (
            f"{node.arg}={node.value.value} -> {other}",
            lambda n, v=other: setattr(n, "value", ast.Constant(v)),
        )
    if isinstance(node, ast.Call) and len(node.args) >= 2:
        yield (
            "first two arguments swapped",
            lambda n: n.args.__setitem__(slice(0, 2), [n.args[1], n.args[0]]),
        )
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Not):
        yield f"{type(node.op).__name__} dropped", lambda n: _become(n, n.operand)
    if isinstance(node, ast.BoolOp):
        new = ast.Or if isinstance(node.op, ast.And) else ast.And
        yield f"{type(node.op).__name__} -> {new.__name__}", lambda n: setattr(n, "op", new())


def _become(node: ast.AST, other: ast.AST) -> None:
    """Make `node` a copy of `other` in place (the tree keeps its parent links)."""
    node.__class__ = other.__class__
    node.__dict__.update(copy.deepcopy(other).__dict__)


def _term_drops(node: ast.AST) -> Iterator[tuple[str, Callable[[ast.AST], None]]]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
        yield "right term dropped", lambda n: _become(n, n.left)
        if isinstance(node.op, ast.Add | ast.Mult):
            yield "left term dropped", lambda n: _become(n, n.right)


def mutants(reference: Callable) -> list[Mutant]:
    """Every one-place mutant of `reference`'s body, in source order."""
    source = textwrap.dedent(inspect.getsource(reference))
    tree = ast.parse(source)
    tree.body[0].decorator_list = []
    found = []
    nodes = [n for n in ast.walk(tree.body[0]) if not isinstance(n, ast.arguments)]
    docstring = ast.get_docstring(tree.body[0], clean=False)
    first = tree.body[0].lineno
    for index, node in enumerate(nodes):
        if isinstance(node, ast.Constant) and node.value == docstring:
            continue
        line = getattr(node, "lineno", first) - first
        for description, apply in [*_changes(node), *_term_drops(node)]:
            changed = copy.deepcopy(tree)
            target = [n for n in ast.walk(changed.body[0]) if not isinstance(n, ast.arguments)][
                index
            ]
            apply(target)
            ast.fix_missing_locations(changed)
            found.append(Mutant(f"L{line} {description} @{index}", changed))
    return found


def compile_mutant(reference: Callable, mutant: Mutant) -> Callable:
    """The mutant as a function in the reference's module, so it sees the same names."""
    scope = dict(reference.__globals__)
    exec(compile(mutant.tree, f"<mutant of {reference.__name__}>", "exec"), scope)
    return scope[reference.__name__]


class MutantTimeout(BaseException):
    """Raised by the alarm: a BaseException so that no checker turns it into a message."""


def _alarm(signum, frame):
    raise MutantTimeout


def verdict(check: Callable, function: Callable, seconds: int = MUTANT_SECONDS) -> str:
    """'killed' when the checker refuses the mutant (or it runs too long), 'survived' when accepted."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        result = check(function)
    except ExerciseFailed:
        return "killed"
    except MutantTimeout:
        return "killed (too slow)"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return "survived" if result.passed else "killed"


def equivalent_mutants() -> dict[tuple[str, str], str]:
    """(checker, mutant key) -> why the mutant computes the same thing, from EQUIVALENT_FILE."""
    listed = {}
    for line in EQUIVALENT_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, key, reason = (part.strip() for part in line.split("|", 2))
            listed[name, key] = reason
    return listed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="checker names, e.g. check_sgd_step")
    args = parser.parse_args(argv)
    equivalent = equivalent_mutants()
    rows, survivors = [], []
    for name, (check, reference) in checkers().items():
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        counts = {"killed": 0, "equivalent": 0, "survived": 0}
        found = mutants(reference)
        for mutant in found:
            if (name, mutant.key) in equivalent:
                counts["equivalent"] += 1
                continue
            outcome = verdict(check, compile_mutant(reference, mutant))
            counts["survived" if outcome == "survived" else "killed"] += 1
            if outcome == "survived":
                survivors.append(f"{name} | {mutant.key}")
        seconds = time.perf_counter() - start
        rows.append((name, len(found), counts["killed"], counts["equivalent"], counts["survived"]))
        print(f"{name}: {len(found)} mutants, {counts['survived']} survived ({seconds:.0f} s)")
        sys.stdout.flush()
    print(f"\n{'checker':34} {'mutants':>8} {'killed':>7} {'equivalent':>11} {'survived':>9}")
    for name, total, killed, same, survived in rows:
        print(f"{name:34} {total:8} {killed:7} {same:11} {survived:9}")
    totals = [sum(column) for column in zip(*(row[1:] for row in rows), strict=True)]
    if totals:
        print(f"{'total':34} {totals[0]:8} {totals[1]:7} {totals[2]:11} {totals[3]:9}")
    if survivors:
        print("\nsurviving mutants (a gap in the checker, or equivalent: list it with a reason in")
        print(f"{EQUIVALENT_FILE.name}):")
        print("\n".join("  " + s for s in survivors))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
