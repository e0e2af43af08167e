"""Import hygiene of the CLIs and of the module graph.

1. Importing a CLI module (``gencore.cli``, ``<pkg>.cli``) loads no torch: ``--help`` stays fast, the heavy
   libraries are imported by a command's body when it runs. Checked in a fresh interpreter per CLI.
2. No import cycle among the modules of gencore and the five packages at module level: each module's top-level
   imports are read with ``ast`` (imports inside functions and under ``if TYPE_CHECKING:`` are ignored; those in
   ``if __name__ == "__main__":`` trampolines, ``try`` blocks and class bodies count, since they run at import or
   launch time) and the resulting graph must be acyclic.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["dcgan_tutorial", "hvae_captcha", "m1_hyperspectral", "vqgan_negatives", "ganwriting_music"]
CLI_MODULES = ["gencore.cli", *[f"{name}.cli" for name in PACKAGES]]
HEAVY = ["torch", "accelerate", "safetensors"]


def source_roots() -> dict[str, Path]:
    """Import name -> its package directory (``packages/*/src/<name>``)."""
    roots = {}
    for init in sorted(ROOT.glob("packages/*/src/*/__init__.py")):
        roots[init.parent.name] = init.parent
    return roots


# --- the import graph ----------------------------------------------------------------------------------------


def module_names(roots: Mapping[str, Path]) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under the given package directories."""
    modules = {}
    for name, directory in roots.items():
        for path in sorted(directory.rglob("*.py")):
            parts = [name, *path.relative_to(directory).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def top_level_imports(tree: ast.Module) -> Iterable[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported or launched: the module body and the blocks nested
    in it (if/try/with/class bodies), not function bodies and not ``if TYPE_CHECKING:`` blocks."""
    stack: list[ast.stmt] = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        elif isinstance(node, ast.If):
            blocks = [node.orelse] if _is_type_checking(node.test) else [node.body, node.orelse]
            for block in blocks:
                stack.extend(reversed(block))
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            for block in (node.body, *[h.body for h in node.handlers], node.orelse, node.finalbody):
                stack.extend(reversed(block))
        elif isinstance(node, (ast.With, ast.AsyncWith, ast.ClassDef, ast.For, ast.While)):
            stack.extend(reversed(node.body))
            stack.extend(reversed(getattr(node, "orelse", [])))


def import_targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The known modules an import statement in ``module`` loads explicitly (parent packages that Python imports
    on the way are not edges: ``pkg/__init__.py`` re-exporting its submodules is not a cycle)."""
    targets: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            targets.add(alias.name)
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, base] if base else package)
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            targets.add(sub if sub in known else base)
    return {t for t in targets if t in known}


def import_graph(roots: Mapping[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules it imports at module level, restricted to the modules under ``roots``."""
    modules = module_names(roots)
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: set[str] = set()
        for node in top_level_imports(tree):
            edges |= import_targets(node, name, path.name == "__init__.py", known)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component that has one (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        item = stack.pop()
                        on_stack.discard(item)
                        component.append(item)
                        if item == node:
                            break
                    if len(component) > 1 or node in graph.get(node, ()):
                        components.append(sorted(component))
    return [_cycle_in(graph, set(component)) for component in components]


def _cycle_in(graph: Mapping[str, Iterable[str]], component: set[str]) -> list[str]:
    """A concrete cycle through the first module of a strongly connected component (breadth-first, shortest)."""
    start = min(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph.get(node, ())):
                if child not in component:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle in component {sorted(component)}")  # pragma: no cover


# --- the detector checks itself --------------------------------------------------------------------------------


def test_find_cycles_on_synthetic_graphs() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) == []
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"x": {"x"}}) == [["x", "x"]]
    two = find_cycles({"p": {"q"}, "q": {"p", "r"}, "r": {"s"}, "s": {"r"}})
    assert sorted(two) == [["p", "q", "p"], ["r", "s", "r"]]


def _write_package(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return {"pkg": root / "pkg"}


def test_detector_finds_a_cli_train_cycle_at_module_level(tmp_path: Path) -> None:
    """Today's design with one change: a CLI importing train at the top, while train's ``__main__`` trampoline
    imports the CLI. That is a cycle and must be reported."""
    roots = _write_package(tmp_path, {
        "__init__.py": "",
        "cli.py": "import click\nfrom pkg.train import run_training\n",
        "train.py": "import torch\n\ndef run_training():\n    pass\n\n"
                    "if __name__ == '__main__':\n    from pkg.cli import main\n    main()\n",
    })  # fmt: skip
    assert find_cycles(import_graph(roots)) == [["pkg.cli", "pkg.train", "pkg.cli"]]


def test_detector_ignores_function_level_and_type_checking_imports(tmp_path: Path) -> None:
    roots = _write_package(tmp_path, {
        "__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.model import Model\n",
        "cli.py": "import click\n\ndef train():\n    from pkg.train import run_training\n",
        "train.py": "from pkg import model\nif __name__ == '__main__':\n    from pkg.cli import main\n",
        "model.py": "from . import layers\nimport pkg\n",
        "layers.py": "class Block:\n    def build(self):\n        from pkg.model import Model\n",
    })  # fmt: skip
    graph = import_graph(roots)
    assert graph == {
        "pkg": set(),
        "pkg.cli": set(),
        "pkg.train": {"pkg.model", "pkg.cli"},
        "pkg.model": {"pkg.layers", "pkg"},
        "pkg.layers": set(),
    }
    assert find_cycles(graph) == []
    # the same relative import made at the top of layers closes a loop
    (tmp_path / "pkg" / "layers.py").write_text("from .model import Model\n")
    assert find_cycles(import_graph(roots)) == [["pkg.layers", "pkg.model", "pkg.layers"]]


# --- the real tree ---------------------------------------------------------------------------------------------


def test_roots_cover_core_and_packages() -> None:
    assert {"gencore", *PACKAGES} <= set(source_roots())


@pytest.mark.parametrize("name", ["gencore", *PACKAGES])
def test_no_module_level_import_cycles(name: str) -> None:
    """Modules of ``name`` (and of gencore, which it builds on) import each other without a cycle."""
    roots = {key: path for key, path in source_roots().items() if key in {"gencore", name}}
    cycles = find_cycles(import_graph(roots))
    assert not cycles, "module-level import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_level_import_cycles_across_all_packages() -> None:
    cycles = find_cycles(import_graph(source_roots()))
    assert not cycles, "module-level import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


# --- light CLIs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", CLI_MODULES)
def test_cli_import_loads_no_torch(module: str) -> None:
    """A fresh interpreter that imports the CLI module (as ``--help`` does) has not loaded torch or its kin."""
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"importing {module} loaded {done.stdout.strip()}"


@pytest.mark.parametrize("name", ["gencore", *PACKAGES])
def test_lazy_public_api_resolves(name: str) -> None:
    """Every name of a package's ``__all__`` is reachable (imported on first access) and listed by ``dir()``."""
    package = importlib.import_module(name)
    for public in package.__all__:
        assert getattr(package, public) is not None, public
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError):
        package.no_such_name  # noqa: B018


def _type_checking_imports(init: Path) -> dict[str, str]:
    """Name -> module of the ``from <module> import <name>`` lines under ``if TYPE_CHECKING:`` in ``init``."""
    names = {}
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    for alias in stmt.names:
                        names[alias.asname or alias.name] = f"{stmt.module}.{alias.name}"
    return names


@pytest.mark.parametrize("name", ["gencore", *PACKAGES])
def test_type_checkers_see_what_runs(name: str) -> None:
    """The ``TYPE_CHECKING`` imports of a lazy ``__init__`` name every public name, bound to the same object the
    lazy lookup returns (a submodule, or the attribute of the module it is imported from)."""
    package = importlib.import_module(name)
    declared = _type_checking_imports(source_roots()[name] / "__init__.py")
    eager = {key for key, value in vars(package).items() if not key.startswith("_")}
    assert set(package.__all__) <= set(declared) | eager
    for public, dotted in declared.items():
        where, attr = dotted.rsplit(".", 1)
        if where == name and attr == public:  # `from gencore import train`: the submodule
            expected = importlib.import_module(dotted)
        else:
            expected = getattr(importlib.import_module(where), attr)
        assert getattr(package, public) is expected, public


def test_function_named_like_its_module_stays_the_function() -> None:
    """``vqgan_negatives.clean`` is the function (as the eager ``__init__`` made it) even when the submodule
    ``vqgan_negatives.clean`` was imported first, which attaches the submodule to the package."""
    code = (
        "import inspect, vqgan_negatives.clean as by_path, vqgan_negatives\n"
        "from vqgan_negatives import clean\n"
        "import sys\n"
        "assert inspect.isfunction(vqgan_negatives.clean) and clean is vqgan_negatives.clean\n"
        "assert clean is sys.modules['vqgan_negatives.clean'].clean\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
