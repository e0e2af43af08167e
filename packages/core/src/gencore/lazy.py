"""Lazy public names for a package ``__init__`` (PEP 562), so that importing a package (or its CLI) loads no torch.

A package lists what it exports and where each name lives; a name is imported from its module on first access and
then kept in the package. Type checkers and IDEs read the same names from an ``if TYPE_CHECKING:`` block::

    from typing import TYPE_CHECKING

    from gencore.lazy import lazy_exports

    if TYPE_CHECKING:
        from mypkg.model import Model

    __getattr__, __dir__ = lazy_exports(__name__, from_modules={"mypkg.model": ["Model"]})
    __all__ = ["Model"]
    __version__ = package_version("mypkg", __file__)  # the version of pyproject.toml, stated nowhere else

Standard library only.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports", "package_version"]


def package_version(distribution: str, init_file: str) -> str:
    """The version of installed ``distribution`` (``importlib.metadata``), so ``pyproject.toml`` is its one source.

    For a source tree that is not installed (``PYTHONPATH=packages/x/src``), the ``version`` of the
    ``pyproject.toml`` two folders above the package (``src/<name>/__init__.py`` -> ``pyproject.toml``), read
    only if its ``name`` is ``distribution``; else ``"0+unknown"``.
    """
    import importlib.metadata
    from pathlib import Path

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        pass
    pyproject = Path(init_file).resolve().parents[2] / "pyproject.toml"
    try:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - exercised on 3.10 only
            import tomli as tomllib
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, ValueError):
        return "0+unknown"
    if project.get("name") == distribution and isinstance(project.get("version"), str):
        return project["version"]
    return "0+unknown"


class _LazyPackage(types.ModuleType):
    """A package whose public function shares its name with the submodule defining it (``vqgan_negatives.clean``,
    the function, lives in ``vqgan_negatives/clean.py``). When the import system attaches that submodule to the
    package, the function is attached instead, as an eager ``from .clean import clean`` in ``__init__`` left it;
    the submodule itself stays importable by its full name."""

    _lazy_shadowed: frozenset[str] = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            name in self._lazy_shadowed
            and isinstance(value, types.ModuleType)
            and value.__name__ == f"{self.__name__}.{name}"
        ):
            value = getattr(value, name, value)
        super().__setattr__(name, value)


def lazy_exports(
    package: str, submodules: Iterable[str] = (), from_modules: Mapping[str, Iterable[str]] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for the package ``package`` (pass ``__name__``).

    ``submodules``: names of submodules exported as themselves (``gencore.train``). ``from_modules``: module ->
    the public names it defines, as the eager ``from <module> import <names>`` would read
    (``{"hvae_captcha.model": ["HVAE", "parameter_table"]}``).
    """
    module = sys.modules[package]
    submodules = frozenset(submodules)
    attributes = {name: where for where, names in (from_modules or {}).items() for name in names}
    shadowed = frozenset(name for name, where in attributes.items() if where == f"{package}.{name}")
    if shadowed:
        module.__class__ = _LazyPackage
        module._lazy_shadowed = shadowed  # type: ignore[attr-defined]

    def __getattr__(name: str) -> Any:
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        if name in attributes:
            value = getattr(importlib.import_module(attributes[name]), name)
            setattr(module, name, value)  # later lookups skip this function
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | submodules | set(attributes))

    return __getattr__, __dir__
