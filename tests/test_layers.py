"""The package's layers, read from the sources: ops and data below, then training and evaluation
side by side, the study above both, the command line on top; nothing imports what sits above it."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "smoot_ext"
# Each wing and the wings it may import (besides the modules below all of them).
ABOVE = {"training": {"study", "cli", "evaluation"}, "evaluation": {"study", "cli"},
         "study": {"cli"}, "integrations": {"study", "cli", "evaluation"}}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(absolute smoot_ext module, inside a function) of every import in ``path``."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    nested = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
              for n in ast.walk(f) if n is not f}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names = [f"{module}.{a.name}" for a in node.names] if not node.module or node.level else [module]
            out += [(n, id(node) in nested) for n in names]
        elif isinstance(node, ast.Import):
            out += [(a.name, id(node) in nested) for a in node.names]
    return [(m, lazy) for m, lazy in out if m.startswith("smoot_ext")]


def _wing(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_wing_above_its_own(path):
    wing = _wing(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
    if wing == "cli":
        return
    for module, lazy in _imports(path):
        target = _wing(module)
        assert target != "cli", f"{path.name} imports {module}: only the command line may"
        assert target not in ABOVE.get(wing, set()), f"{path.name} ({wing}) imports {module}, above it"
        if wing == "evaluation" and target == "training":  # the one exception: the model loader, lazily
            assert lazy and module == "smoot_ext.training.checkpoint.load_model", f"{path.name} imports {module}"


def test_the_study_sits_above_training_and_evaluation():
    wings = {_wing(m) for p in (PACKAGE / "study").glob("*.py") for m, _ in _imports(p)}
    assert {"training", "evaluation"} <= wings


@pytest.mark.parametrize("path", sorted((PACKAGE / "training").glob("*.py")), ids=lambda p: p.name)
def test_training_functions_read_at_once(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= 80, f"{path.name}: {node.name} has {length} lines"
