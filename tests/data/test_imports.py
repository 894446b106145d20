"""The data layer imports one way: no import cycle inside `intentfusion.data`, no `intentfusion.models` module
importing `intentfusion.data`, one definition of the shared constants and one root for the data errors.

The import graph is read from the source files with `ast` (module-level and function-level imports alike, so a
lazy import inside a function that closes a cycle counts), without importing anything.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections.abc import Mapping
from pathlib import Path

import intentfusion
import intentfusion.data
from intentfusion import errors

PACKAGE_ROOT = Path(intentfusion.__file__).resolve().parent  # src/intentfusion
DATA = ["intentfusion", "data"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(module: str, source: str, is_package: bool = False) -> set[str]:
    """Every module name an import statement anywhere in ``source`` (the code of ``module``) may load.

    ``from a.b import c`` yields ``a.b`` and ``a.b.c`` (``c`` may be a submodule); relative imports are resolved.
    """
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return names


def _graph(sources: Mapping[str, str], packages: frozenset[str] = frozenset()) -> dict[str, set[str]]:
    """``{module: modules of ``sources`` it imports}`` for ``{module name: its code}``."""
    return {m: (_imported(m, code, m in packages) & set(sources)) - {m} for m, code in sources.items()}


def _cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle (``[a, b, ..., a]``) of ``graph``, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _sources(package_dir: Path) -> tuple[dict[str, str], frozenset[str]]:
    files = sorted(package_dir.rglob("*.py"))
    assert files, f"no Python files under {package_dir}"
    code = {_module_name(f): f.read_text(encoding="utf-8") for f in files}
    return code, frozenset(_module_name(f) for f in files if f.name == "__init__.py")


# ------------------------------------------------------------------------------------------ the checker itself
def test_the_checker_sees_a_cycle_closed_by_a_lazy_import() -> None:
    lazy = {
        "pkg.a": "from pkg.b import helper\n",
        "pkg.b": "def helper():\n    from pkg.a import thing  # lazy\n    return thing\n",
        "pkg.c": "from . import a\n",
    }
    graph = _graph(lazy)
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.c": {"pkg.a"}}
    assert _cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]
    assert _cycle(_graph({**lazy, "pkg.b": "def helper():\n    return 1\n"})) is None


# ------------------------------------------------------------------------------------------ the real package
def test_no_import_cycle_inside_the_data_layer() -> None:
    code, packages = _sources(PACKAGE_ROOT / "data")
    graph = _graph(code, packages)
    assert "intentfusion.data.transforms" in graph and "intentfusion.data.sources" in graph
    assert _cycle(graph) is None, f"import cycle in intentfusion.data: {' -> '.join(_cycle(graph) or [])}"
    assert "intentfusion.data.sources" not in graph["intentfusion.data.transforms"]


def test_no_models_module_imports_the_data_layer() -> None:
    code, packages = _sources(PACKAGE_ROOT / "models")
    offenders: dict[str, list[str]] = {}
    for module, text in code.items():
        names = sorted(n for n in _imported(module, text, module in packages) if n.split(".")[:2] == DATA)
        if names:
            offenders[module] = names
    assert len(code) > 1 and "intentfusion.models.backbone" in code
    assert not offenders, f"intentfusion.models must not import intentfusion.data: {offenders}"


def test_shared_constants_are_defined_once_in_types() -> None:
    code, _ = _sources(PACKAGE_ROOT / "data")
    for module, text in code.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets = [node.target]
            else:
                continue
            defined = {t.id for t in targets if isinstance(t, ast.Name)}
            assert not defined & {"IGNORE_INDEX", "Records", "Record"}, f"{module}:{node.lineno} redefines {defined}"


# ------------------------------------------------------------------------------------------ one error root
def _data_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.iter_modules(intentfusion.data.__path__, "intentfusion.data."):
        module = importlib.import_module(info.name)
        for attr, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and not issubclass(value, Warning)
                and value.__module__.startswith("intentfusion")
            ):
                found[f"{info.name}.{attr}"] = value
    return found


def test_every_data_error_is_a_data_error_and_a_user_error() -> None:
    found = _data_exceptions()
    assert {errors.DataError, errors.DataSourceError, errors.DataNotFoundError} <= set(found.values())
    for name, cls in found.items():
        assert issubclass(cls, errors.DataError), f"{name} is not an intentfusion.errors.DataError"
        assert issubclass(cls, errors.UserError), f"{name} is not an intentfusion.errors.UserError"
    assert issubclass(errors.DataNotFoundError, FileNotFoundError)


def test_the_old_import_places_give_the_same_classes() -> None:
    from intentfusion.data import datamodule, sources, sources_files, transforms
    from intentfusion.models import backbone
    from intentfusion.types import IGNORE_INDEX, Records

    assert sources.DataSourceError is errors.DataSourceError and sources.DataNotFoundError is errors.DataNotFoundError
    assert sources_files.DataSourceError is transforms.DataSourceError is errors.DataSourceError
    assert datamodule.DataError is errors.DataError
    assert datamodule.IGNORE_INDEX == IGNORE_INDEX and datamodule.Records is Records
    assert backbone.BackboneUnavailableError is errors.BackboneUnavailableError


# ------------------------------------------------------------------------------------------ the whole package
def test_no_import_cycle_anywhere_in_the_package() -> None:
    code, packages = _sources(PACKAGE_ROOT)
    graph = _graph(code, packages)
    graph = {m: {n for n in deps if n != "intentfusion"} for m, deps in graph.items() if m != "intentfusion"}
    assert "intentfusion.tasks.token" in graph and "intentfusion.models.net" in graph
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph) or [])}"


def test_evaluation_imports_no_network_task_or_serving_code() -> None:
    """Metrics are a library the task types, the suite and the jobs use: it never imports them back."""
    code, packages = _sources(PACKAGE_ROOT / "evaluation")
    above = ("intentfusion.models", "intentfusion.tasks", "intentfusion.inference", "intentfusion.objectives")
    offenders = {m: sorted(n for n in _imported(m, text, m in packages) if n.startswith(above))
                 for m, text in code.items()}
    assert not {m: names for m, names in offenders.items() if names}, offenders


def _external(module: str, text: str, is_package: bool) -> set[str]:
    """Top-level names of the packages outside intentfusion that ``module``'s code imports (lazy imports too)."""
    return {name.split(".")[0] for name in _imported(module, text, is_package)} - {"intentfusion"}


def test_serving_code_needs_no_hydra_or_lightning() -> None:
    """`inference/` (Predictor, export, serving) and every intentfusion module it reaches, lazily or not, import
    neither Hydra nor Lightning: the export job that rebuilds training data lives in `intentfusion.export`."""
    code, packages = _sources(PACKAGE_ROOT)
    graph = _graph(code, packages)
    reached = {m for m in code if m.startswith("intentfusion.inference")}
    todo = list(reached)
    while todo:
        for dep in graph[todo.pop()] - reached:
            reached.add(dep)
            todo.append(dep)
    assert "intentfusion.models.net" in reached and "intentfusion.tasks.token" in reached
    offenders = {m: sorted(_external(m, code[m], m in packages) & {"hydra", "lightning", "pytorch_lightning"})
                 for m in sorted(reached)}
    assert not {m: names for m, names in offenders.items() if names}, offenders


def test_only_the_support_source_imports_the_support_corpus() -> None:
    code, packages = _sources(PACKAGE_ROOT)
    support = "intentfusion.data.support"
    importers = sorted(m for m, text in code.items() if m.split(".")[:3] != support.split(".")
                       and not m.startswith(f"{support}_") and support in _imported(m, text, m in packages))
    assert importers == [], f"only {support} imports the embedded corpus; also: {importers}"
