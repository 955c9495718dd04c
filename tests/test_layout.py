"""The packages' layering: `minigpt` and `neurosymbolic` stand side by side on `course`."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("course", "minigpt", "neurosymbolic")


def imported_modules(path: Path) -> set[str]:
    """Every module a Python file imports, by its dotted name (relative imports resolved)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def package_imports(package: str) -> dict[str, set[str]]:
    return {
        str(path.relative_to(ROOT)): imported_modules(path)
        for path in sorted((ROOT / package).rglob("*.py"))
    }


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("course", ("minigpt", "neurosymbolic")),
        ("neurosymbolic", ("minigpt",)),
        ("minigpt", ("neurosymbolic",)),
    ],
)
def test_packages_import_only_what_lies_below_them(package, forbidden):
    wrong = {
        file: sorted(name for name in names if name.split(".")[0] in forbidden)
        for file, names in package_imports(package).items()
    }
    assert not {file: names for file, names in wrong.items() if names}


def test_the_model_file_teaches_only_the_model():
    """Lesson 4 reads model.py as GPT-2 and nothing else: compiled steps and kernel tuning
    (lesson 7) stay out of it."""
    imported = imported_modules(ROOT / "minigpt" / "model.py")
    later = ("minigpt.tuning", "minigpt.compiled")
    assert not {m for m in imported if m in later or m.startswith(tuple(f"{n}." for n in later))}
