"""The registry of packages: one list of what is installed, what each package trains and with which settings.

Every package (and gencore's own demo) describes itself once, in a :class:`PackageSpec` named ``SPEC`` in its
module ``<import_name>/package.py``, and announces it through the entry-point group ``gencore.packages`` of its
``pyproject.toml``::

    [project.entry-points."gencore.packages"]
    hvae-captcha = "hvae_captcha.package:SPEC"

:func:`packages` reads that group, so the cross-package tests, the fault jobs and the benchmarks iterate the
installed packages instead of hand-kept lists, and a new package is picked up by installing it.

A spec is plain data: the CLI, the config classes and presets kept elsewhere are ``"module:attr"`` strings that
are imported only when asked for (:meth:`TrainCommand.config_class`, :meth:`PackageSpec.load_cli`), so reading
the registry imports no torch. Presets are ``key=value`` overrides as ``--set`` takes them:

- ``tiny``: what the tests, the fault jobs, ``benchmarks/gpu_check.py --tiny`` and the 2-process tests train
  (every training command has one);
- ``bench``: the settings of a real ``benchmarks/gpu_check.py`` run where they differ from the defaults;
- a package's own named presets (``--preset``), e.g. ``original``, by reference to where the package keeps them.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass, is_dataclass
from types import MappingProxyType
from typing import Any, Literal

from gencore.errors import GencoreError

__all__ = ["GROUP", "FaultJob", "PackageSpec", "Ref", "RegistryError", "TrainCommand", "get", "packages", "resolve"]

#: The entry-point group that packages register their :class:`PackageSpec` in.
GROUP = "gencore.packages"


class RegistryError(GencoreError):
    """A package's registration is broken: an entry point that does not load, or a spec that does not resolve."""


def resolve(target: str) -> Any:
    """The object that ``"module:attr"`` (``attr`` may be dotted) names; a :class:`RegistryError` if it is not."""
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise RegistryError(f"{target!r} is not of the form 'module:attr'")
    try:
        obj = importlib.import_module(module)
    except ImportError as exc:
        raise RegistryError(f"{target}: cannot import {module}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise RegistryError(f"{target}: {module} has no attribute {attr}") from None
    return obj


@dataclass(frozen=True)
class Ref:
    """A value kept in another module, imported when used: ``Ref("hvae_captcha.config:PRESETS", "original")`` is
    ``PRESETS["original"]`` of ``hvae_captcha.config`` (so a package's own ``--preset`` table stays its one copy)."""

    target: str  # "module:attr"
    key: str | None = None  # an item of that object

    def load(self) -> Any:
        obj = resolve(self.target)
        if self.key is None:
            return obj
        try:
            return obj[self.key]
        except (KeyError, TypeError):
            raise RegistryError(f"{self.target} has no item {self.key!r}") from None


Overrides = tuple[str, ...]


def _overrides(value: Any, where: str) -> Overrides:
    if isinstance(value, str) or not all(isinstance(item, str) and "=" in item for item in value):
        raise RegistryError(f"{where}: a preset is a sequence of 'key=value' strings, got {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class TrainCommand:
    """One training command of a package's CLI (``train``, ``train-vqgan``, ``demo`` ...)."""

    name: str  # the click sub-command
    config: str  # "module:attr" of its config dataclass (with the shared TrainConfig under ``train``)
    module: str  # what ``python -m`` / ``accelerate launch -m`` runs for it
    presets: Mapping[str, Overrides | Ref]  # preset name -> ``key=value`` overrides (or a Ref to them); "tiny" required
    #: how a run is continued: ``--resume auto|PATH`` ("option"), or a START_EPOCH argument right after the command
    #: name ("start-epoch": ``auto`` continues from the newest checkpoint or starts fresh)
    resume: Literal["option", "start-epoch"] = "option"
    unit: str = "images"  # what one training sample is, for throughput figures
    label: str | None = None  # the name reports give its runs (default: see PackageSpec.label)
    #: (command, option): it trains on a finished run of another command of the package, named by this option
    trains_on: tuple[str, str] | None = None
    #: the preset its ``--preset auto`` (the CLI's default) picks where training runs on the CPU; None: no preset
    #: is picked by device (see :func:`gencore.cli.pick_preset`)
    cpu_preset: str | None = None

    def __post_init__(self) -> None:
        where = f"training command {self.name!r}"
        presets = {}
        for key, value in dict(self.presets).items():
            presets[key] = value if isinstance(value, Ref) else _overrides(value, f"{where}, preset {key!r}")
        if "tiny" not in presets:
            raise RegistryError(f"{where} has no 'tiny' preset")
        if self.cpu_preset is not None and self.cpu_preset not in presets:
            raise RegistryError(
                f"{where}: cpu_preset {self.cpu_preset!r} is not one of its presets ({sorted(presets)})"
            )
        if self.resume not in ("option", "start-epoch"):
            raise RegistryError(f"{where}: resume must be 'option' or 'start-epoch', got {self.resume!r}")
        object.__setattr__(self, "presets", MappingProxyType(presets))
        if self.trains_on is not None:
            object.__setattr__(self, "trains_on", tuple(self.trains_on))

    def preset(self, name: str = "tiny") -> Overrides:
        """The ``key=value`` overrides of preset ``name``."""
        if name not in self.presets:
            raise RegistryError(f"training command {self.name!r} has no preset {name!r} (has {sorted(self.presets)})")
        value = self.presets[name]
        return _overrides(value.load(), f"preset {name!r} ({value.target})") if isinstance(value, Ref) else value

    def config_class(self) -> type:
        """The config dataclass (imports its module)."""
        cls = resolve(self.config)
        if not (isinstance(cls, type) and is_dataclass(cls)):
            raise RegistryError(f"{self.config} is not a dataclass")
        return cls

    def build(self, preset: str = "tiny", *overrides: str) -> Any:
        """The config of preset ``preset`` with more ``key=value`` ``overrides`` (validated as the CLI does)."""
        from gencore.config import build_config

        return build_config(self.config_class(), overrides=[*self.preset(preset), *overrides])

    def head(self) -> tuple[str, ...]:
        """The start of a command line: the command name, and ``auto`` for a START_EPOCH command."""
        return (self.name, "auto") if self.resume == "start-epoch" else (self.name,)

    def resume_args(self) -> tuple[str, ...]:
        """Options that make a run continue where it stopped (nothing more for a START_EPOCH command)."""
        return ("--resume", "auto") if self.resume == "option" else ()


@dataclass(frozen=True)
class FaultJob:
    """The package's tiny job of the fault tests (tests/faults/fault_jobs.py, benchmarks/faults.py): its training
    command with the ``tiny`` preset and ``overrides``, resumed as the command resumes (:attr:`TrainCommand.resume`).
    A step-counted job checkpoints every update; an epoch-counted one keeps its preset's checkpoint cadence."""

    command: str  # a training command of the package
    steps: int  # updates of the whole run
    epochs: int | None = None  # None: the run's length is ``--max-steps steps``; else ``train.max_epochs=N``
    overrides: Overrides = ()  # on top of the tiny preset

    def __post_init__(self) -> None:
        if self.steps < 1 or (self.epochs is not None and self.epochs < 1):
            raise RegistryError(f"fault job of {self.command!r}: steps and epochs must be positive")
        object.__setattr__(self, "overrides", _overrides(self.overrides, f"fault job of {self.command!r}"))


@dataclass(frozen=True)
class PackageSpec:
    """What the monorepo's shared tooling needs to know about one package."""

    name: str  # distribution name, also its console script and the entry point's name
    import_name: str
    cli: str  # "module:attr" of its click group
    train_commands: tuple[TrainCommand, ...]
    fault_job: FaultJob
    # ``make demo`` (``gencore demo-all``): the package's CLI invocations, in order, each an argument list of its
    # console script; a run directory under ``runs/`` named after the package, resumed when run again
    demo: tuple[tuple[str, ...], ...] = ()
    demo_outputs: tuple[str, ...] = ()  # what a person opens afterwards (paths relative to the working directory)
    # ``make demo-full`` (``gencore demo-all --full``): the commands behind the headline figures of the package's
    # README, at the README's sizes, in order; their run directories are under ``runs/<package>-full/``
    demo_full: tuple[tuple[str, ...], ...] = ()
    demo_full_outputs: tuple[str, ...] = ()
    #: what ``demo_full`` takes, in minutes, by the README's own figures for its commands (an estimate: the
    #: README timed each command alone, mostly with one thread on a shared 2-core machine)
    demo_full_minutes: int = 0
    # "module:attr" of ``load(path, device="cpu")``: a trained run or model folder -> what the package infers with
    # (its pipeline's from_pretrained, or a load function)
    loader: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "train_commands", tuple(self.train_commands))
        for step in (*self.demo, *self.demo_full):  # checked before tuple(): a bare string would become its letters
            if not step or isinstance(step, str) or not all(isinstance(a, str) for a in step):
                raise RegistryError(f"package {self.name!r}: a demo step must be a non-empty list of strings")
        object.__setattr__(self, "demo", tuple(tuple(step) for step in self.demo))
        object.__setattr__(self, "demo_outputs", tuple(self.demo_outputs))
        object.__setattr__(self, "demo_full", tuple(tuple(step) for step in self.demo_full))
        object.__setattr__(self, "demo_full_outputs", tuple(self.demo_full_outputs))
        if self.demo_full and self.demo_full_minutes < 1:
            raise RegistryError(f"package {self.name!r}: a full demo needs its duration (demo_full_minutes)")
        names = [c.name for c in self.train_commands]
        if not names or len(set(names)) != len(names):
            raise RegistryError(f"package {self.name!r}: training commands must be given once each, got {names}")
        if self.fault_job.command not in names:
            raise RegistryError(f"package {self.name!r}: fault job command {self.fault_job.command!r} not in {names}")
        for command in self.train_commands:
            if command.trains_on is not None and command.trains_on[0] not in names:
                raise RegistryError(f"package {self.name!r}: {command.name} trains on unknown {command.trains_on[0]!r}")
        labels = [self.label(c) for c in self.train_commands]
        if len(set(labels)) != len(labels):
            raise RegistryError(f"package {self.name!r}: labels of the training commands repeat: {labels}")

    @property
    def command_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.train_commands)

    def command(self, name: str | None = None) -> TrainCommand:
        """The training command ``name`` (the first one by default)."""
        if name is None:
            return self.train_commands[0]
        for command in self.train_commands:
            if command.name == name:
                return command
        raise RegistryError(f"package {self.name!r} has no training command {name!r} (has {self.command_names})")

    def preset(self, preset: str = "tiny", command: str | None = None) -> Overrides:
        """Preset ``preset`` of training command ``command`` (the first by default) as ``key=value`` strings."""
        return self.command(command).preset(preset)

    def label(self, command: TrainCommand) -> str:
        """The name reports and benchmarks give runs of ``command``: its ``label``, else the package's name for the
        first command and ``<package>-<command>`` for the others."""
        if command.label:
            return command.label
        return self.name if command is self.train_commands[0] else f"{self.name}-{command.name}"

    def load_cli(self) -> Any:
        """The click group of the package's console script (imports its CLI module)."""
        return resolve(self.cli)

    def load(self, path: str, device: str = "cpu") -> Any:
        """What the package infers with (its pipeline or model), from a trained run or model folder ``path``."""
        if self.loader is None:
            raise RegistryError(f"package {self.name!r} names no loader")
        return resolve(self.loader)(path, device)


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=GROUP))


def load_entry_point(entry: importlib.metadata.EntryPoint) -> PackageSpec:
    """The spec an entry point names, checked; a one-line :class:`RegistryError` naming the entry point if not."""
    where = f"entry point {entry.name} = {entry.value!r} (group {GROUP})"
    try:
        spec = entry.load()
    except Exception as exc:  # noqa: BLE001 - any failure to import is reported as a broken registration
        raise RegistryError(f"{where} does not load: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
    if not isinstance(spec, PackageSpec):
        raise RegistryError(f"{where} is a {type(spec).__name__}, not a gencore.registry.PackageSpec")
    if spec.name != entry.name:
        raise RegistryError(f"{where} names package {spec.name!r}: the entry point must be named like the package")
    return spec


def packages() -> dict[str, PackageSpec]:
    """Every registered package, by name, sorted by name (each entry point loaded and checked here)."""
    found: dict[str, PackageSpec] = {}
    for entry in sorted(_entry_points(), key=lambda e: e.name):
        if entry.name not in found:  # the same distribution seen twice on sys.path: the first one wins
            found[entry.name] = load_entry_point(entry)
    return found


def get(name: str) -> PackageSpec:
    """The registered package ``name``."""
    found = packages()
    if name not in found:
        raise RegistryError(
            f"package {name!r} is not registered in {GROUP} (registered: {', '.join(found) or 'none'}); "
            f"is it installed with its current pyproject.toml? (pip install --no-deps -e packages/<dir>)"
        )
    return found[name]

