"""Checkpoints without pickle: safetensors for tensors, JSON for everything else, atomic and verified.

Layout of a directory written here::

    <dir>/state.safetensors   every tensor of the saved tree, under a flat key
    <dir>/state.json          the tree's structure, with tensors replaced by {"__tensor__": key}
    <dir>/manifest.json       size and SHA-256 of every other file; written last

A directory is first written under a temporary name beside its destination and renamed into place only when
complete, so a crash never leaves a half-written directory under the final name. On load the manifest is checked,
so a truncated or altered file is reported instead of being used. Pickle files (``.pt``, ``.ckpt``...) are
refused unless the caller passes ``allow_pickle=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as _st_load
from safetensors.torch import save_file as _safetensors_save

from gencore.config import check_depth, from_dict, to_dict
from gencore.errors import CheckpointError, ConfigError, OutputError
from gencore.fileio import atomic_file, atomic_write_text, current_umask
from gencore.fileio import follow_umask as _follow_umask
from gencore.fileio import fsync_dir as _fsync_dir
from gencore.memory import require_model_memory
from gencore.modelcard import CARD_FILE, INFO_FILE, INFO_FORMAT, describe, distribution_of
from gencore.registry import packages

__all__ = [
    "load_model",
    "atomic_dir",
    "atomic_cache_dir",
    "writing_model_folder",
    "atomic_file",
    "check_output_dir",
    "check_output_file",
    "output_owner",
    "current_umask",
    "atomic_write_text",
    "save_tree",
    "load_tree",
    "verify_dir",
    "save_pretrained",
    "load_pretrained",
    "load_torch_file",
    "list_checkpoints",
    "latest_checkpoint",
    "prune_checkpoints",
    "PretrainedMixin",
]

MANIFEST = "manifest.json"
STEP_DIR = re.compile(r"^step_(\d+)$")
STALE_DIR = re.compile(r"^\.(tmp|old|trash)-step_\d+-")  # debris of writes and deletions cut short


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_manifest(directory: Path, producer: str | None = None) -> None:
    files = {}
    for item in sorted(directory.rglob("*")):
        if item.is_file() and item != directory / MANIFEST:  # nested model folders' manifests are listed too
            with open(item, "rb") as fh:
                os.fsync(fh.fileno())
            files[item.relative_to(directory).as_posix()] = {"bytes": item.stat().st_size, "sha256": _sha256(item)}
        _follow_umask(item, directory=item.is_dir())
    record: dict[str, Any] = {"format": 1, "files": files}
    if producer:
        record["producer"] = producer
    (directory / MANIFEST).write_text(json.dumps(record, indent=1) + "\n")
    _follow_umask(directory / MANIFEST, directory=False)


def _manifest_entries(directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest record, its ``files`` table), checked for shape; CheckpointError when it is not a manifest."""
    manifest = directory / MANIFEST
    try:
        record = json.loads(manifest.read_text(encoding="utf-8"))
    except RecursionError:
        raise CheckpointError(f"{manifest} is corrupt (nested too deeply)") from None
    except (OSError, ValueError):
        raise CheckpointError(f"{manifest} is corrupt") from None
    entries = record.get("files") if isinstance(record, dict) else None
    if not isinstance(entries, dict):
        raise CheckpointError(f"{manifest} is corrupt (no table of files)")
    for name, meta in entries.items():
        if (
            not isinstance(meta, dict)
            or not isinstance(meta.get("bytes"), int)
            or not isinstance(meta.get("sha256"), str)
            or not _inside(directory, name)
        ):
            raise CheckpointError(f"{manifest} is corrupt (bad entry {name!r})")
    return record, entries


def _inside(directory: Path, name: str) -> bool:
    """A manifest entry names a file inside its directory (no absolute path, no ``..``)."""
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts and "\0" not in name


def verify_dir(directory: str | Path) -> None:
    """Raise CheckpointError unless every file listed in ``directory/manifest.json`` is present and intact."""
    directory = Path(directory)
    manifest = directory / MANIFEST
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {directory}")
    if not manifest.is_file():
        inside = _model_folders_inside(directory)
        if inside:  # e.g. another package's run directory given to a command of this one
            raise CheckpointError(f"{directory} is not a model folder (no {MANIFEST}); it holds {inside}")
        raise CheckpointError(f"{directory} is incomplete: no {MANIFEST} (interrupted write?)")
    _, entries = _manifest_entries(directory)
    for name, meta in entries.items():
        path = directory / name
        if not path.is_file():
            raise CheckpointError(f"{directory} is incomplete: {name} is missing")
        size = path.stat().st_size
        if size != meta["bytes"]:
            raise CheckpointError(f"{path} is truncated or altered ({size} bytes, expected {meta['bytes']})")
        if _sha256(path) != meta["sha256"]:
            raise CheckpointError(f"{path} is corrupt (SHA-256 does not match the manifest)")


def _model_folders_inside(directory: Path) -> str:
    """The self-described model folders up to two levels below ``directory``, as ``path (package's Class)``."""
    found = []
    for info_file in sorted([*directory.glob(f"*/{INFO_FILE}"), *directory.glob(f"*/*/{INFO_FILE}")])[:4]:
        try:
            info = json.loads(info_file.read_text(encoding="utf-8"))
            found.append(f"{info_file.parent} ({info.get('package') or '?'}'s {str(info['class']).rpartition(':')[2]})")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return ", ".join(found)


def output_owner(directory: str | Path) -> str | None:
    """What wrote ``directory``: its manifest's producer (``""`` for a manifest of an older version that named
    none), or None when the folder holds anything its manifest does not list (or has no manifest)."""
    directory = Path(directory)
    if not (directory / MANIFEST).is_file():
        return None
    try:
        record, entries = _manifest_entries(directory)
    except CheckpointError:
        return None
    if _present(directory) != set(entries):
        return None
    producer = record.get("producer", "")
    return producer if isinstance(producer, str) else None


def _unlisted(directory: Path) -> list[str]:
    """What in ``directory`` its manifest does not list (every entry when there is no readable manifest)."""
    try:
        _, entries = _manifest_entries(directory)
    except CheckpointError:
        return sorted(p.name for p in directory.iterdir())
    present = _present(directory)
    return sorted(present - set(entries)) or sorted(set(entries) - present)


def _present(directory: Path) -> set[str]:
    """The files under ``directory`` that its manifest must list: all but the manifest itself; a nested folder's
    own manifest only when listed (outputs of earlier versions left nested manifests out of the list)."""
    _, entries = _manifest_entries(directory)
    present = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if not p.is_dir()}
    return {name for name in present - {MANIFEST} if Path(name).name != MANIFEST or name in entries}


def check_output_dir(destination: str | Path, producer: str | None, overwrite: bool, flag: str = "--overwrite") -> bool:
    """May ``destination`` receive a new output of ``producer``? True when it exists and will be replaced.

    The rule for every command that writes a folder: a missing or empty folder is written; a folder holding an
    earlier output of the same producer (its manifest lists exactly the files present) is replaced only with
    ``overwrite``; anything else (a file, a folder with files the command did not write) raises OutputError and
    nothing is touched. A manifest that names no producer (an older version's) counts as any producer's.
    """
    destination = Path(destination)
    if not destination.exists() and not destination.is_symlink():
        return False
    if not destination.is_dir() or destination.is_symlink():
        raise OutputError(f"{destination} exists and is not a folder; choose another output path (nothing changed)")
    if not any(destination.iterdir()):
        return True
    owner = output_owner(destination)
    if owner is None:
        shown = _unlisted(destination)
        listed = ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")
        raise OutputError(
            f"{destination} already holds files this command did not write ({listed}); choose a new or empty "
            "folder (nothing changed)"
        )
    if owner and producer and owner != producer:
        raise OutputError(f"{destination} holds an output of {owner!r}, not of {producer!r}; choose another folder")
    if not overwrite:
        raise OutputError(f"{destination} holds an earlier output; pass {flag} to replace it (nothing changed)")
    return True


def check_output_file(
    path: str | Path, overwrite: bool, inputs: tuple[str | Path, ...] = (), flag: str = "--overwrite"
) -> None:
    """The file counterpart of :func:`check_output_dir`: an existing ``path`` is replaced only with
    ``overwrite``, and never when it is one of the command's ``inputs`` (OutputError, nothing touched)."""
    path = Path(path)
    for item in inputs:
        with contextlib.suppress(OSError):
            if path.exists() and Path(item).exists() and os.path.samefile(path, item):
                raise OutputError(f"{path} is an input of this command; choose another output path")
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give a file name, or another --format")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists; pass {flag} to replace it (nothing changed)")


@contextlib.contextmanager
def atomic_dir(destination: str | Path, overwrite: bool = True, producer: str | None = None) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``destination`` (with a manifest) only if the block succeeds.

    ``destination`` may exist only as an empty folder or as an earlier output of ``producer`` (see
    :func:`check_output_dir`, which raises OutputError before anything is written); an earlier output is
    replaced with ``overwrite`` only, and only after the new one is complete. On any error the temporary
    directory is removed and ``destination`` is left as it was.
    """
    destination = Path(destination)
    check_output_dir(destination, producer, overwrite)
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{destination.name}-", dir=destination.parent))
    try:
        yield tmp
        _write_manifest(tmp, producer)
        _follow_umask(tmp, directory=True)
        _fsync_dir(tmp)
        old = None
        # checked again: the block may have run for minutes, and the folder may have been filled meanwhile
        if check_output_dir(destination, producer, overwrite):
            old = destination.with_name(f".old-{destination.name}-{os.getpid()}")
            os.replace(destination, old)
        os.replace(tmp, destination)
        _fsync_dir(destination.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_cache_dir(entry: str | Path, producer: str, tree: str) -> Iterator[Path]:
    """:func:`atomic_dir` for an entry of the user's cache (``gencore.fileio.cache_dir()``, named by a hash of what
    it holds) that receives one :func:`save_tree` named ``tree``: an earlier entry is replaced, and so is a damaged
    one (a manifest that is unreadable or does not list what is there), which the plain rule refuses for ever, so
    that every later run rendered again. Only an entry made of nothing but the files such an entry holds
    (``manifest.json``, ``TREE.safetensors``, ``TREE.json``) is removed: anything else there is refused with
    OutputError, untouched."""
    entry = Path(entry)
    ours = {MANIFEST, f"{tree}.safetensors", f"{tree}.json"}
    if (
        entry.is_dir() and not entry.is_symlink() and any(entry.iterdir()) and output_owner(entry) is None
        and all(p.is_file() and not p.is_symlink() and p.name in ours for p in entry.iterdir())
    ):  # fmt: skip
        trash = entry.with_name(f".trash-{entry.name}-{os.getpid()}")
        with contextlib.suppress(OSError):  # another process may have replaced it meanwhile: atomic_dir decides
            os.replace(entry, trash)
            shutil.rmtree(trash, ignore_errors=True)
    with atomic_dir(entry, overwrite=True, producer=producer) as tmp:
        yield tmp


# --- nested state <-> (tensors, JSON skeleton) -------------------------------------------------------------


def _flatten(obj: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    if isinstance(obj, torch.Tensor):
        key = prefix or "_"
        tensors[key] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if not all(isinstance(k, (str, int)) for k in obj):
            raise TypeError(f"cannot save dict keys of types {[type(k).__name__ for k in obj]} at {prefix!r}")
        return {"__dict__": [[k, _flatten(v, tensors, f"{prefix}.{k}" if prefix else str(k))] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_flatten(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):  # small arrays only (e.g. NumPy's RNG state)
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot save a value of type {type(obj).__name__} at {prefix!r} without pickle")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            tensor = tensors[obj["__tensor__"]]
            return tensor.numpy() if obj.get("numpy") else tensor
        if "__ndarray__" in obj:
            return np.asarray(obj["__ndarray__"], dtype=obj["dtype"])
        if "__tuple__" in obj:
            return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
    return obj


def _st_save(tensors: dict[str, torch.Tensor], path: str) -> None:
    """safetensors' ``save_file``, with its I/O failures (a full disk, a read-only folder: a ``SafetensorError``
    that names "os error N") raised as the OSError they are, so every caller's disk handling (one line, exit code 2;
    a cache that only gets a note) applies."""
    try:
        _safetensors_save(tensors, path)
    except SafetensorError as exc:
        found = re.search(r"os error (\d+)", str(exc))
        if found is None:
            raise
        code = int(found.group(1))
        raise OSError(code, os.strerror(code), path) from None


def save_tree(tree: Any, directory: str | Path, name: str = "state") -> None:
    """Save a nested structure of dicts/lists/tuples/tensors/scalars as ``name.safetensors`` + ``name.json``."""
    directory = Path(directory)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(tree, tensors, "")
    _st_save(tensors, str(directory / f"{name}.safetensors"))
    (directory / f"{name}.json").write_text(json.dumps(skeleton))


def load_tree(directory: str | Path, name: str = "state", map_location: str | torch.device = "cpu") -> Any:
    """Inverse of :func:`save_tree`; a damaged file raises CheckpointError naming it."""
    directory = Path(directory)
    st_path, json_path = directory / f"{name}.safetensors", directory / f"{name}.json"
    for path in (st_path, json_path):
        if not path.is_file():
            raise CheckpointError(f"{path} is missing")
    try:
        tensors = _st_load(str(st_path), device=str(map_location))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{st_path} is not a readable safetensors file ({exc})") from None
    try:
        skeleton = json.loads(json_path.read_text())
        return _unflatten(skeleton, tensors)
    except RecursionError:
        raise CheckpointError(f"{json_path} is corrupt (nested too deeply)") from None
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise CheckpointError(f"{json_path} is corrupt ({exc!r})") from None


# --- training checkpoints ----------------------------------------------------------------------------------


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete-looking ``step_N`` directories under ``root``, oldest first (temporary ones are ignored)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(root: str | Path, warn: Callable[[str], None] | None = None) -> Path | None:
    """The newest checkpoint under ``root`` that passes :func:`verify_dir`; damaged ones are skipped with a warning."""
    for path in reversed(list_checkpoints(root)):
        try:
            verify_dir(path)
            return path
        except CheckpointError as exc:
            if warn is not None:
                warn(f"skipping damaged checkpoint: {exc}")
    return None


def prune_checkpoints(root: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints (keep <= 0 keeps all); returns what was removed.

    Each one is renamed away before it is deleted, so a process killed half-way never leaves a half-deleted
    ``step_N`` behind; leftovers of earlier interrupted writes and deletions are removed too.
    """
    root = Path(root)
    found = list_checkpoints(root)
    doomed = found[:-keep] if keep > 0 else []
    for path in doomed:
        trash = path.with_name(f".trash-{path.name}-{os.getpid()}")
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
    if root.is_dir():  # one writer per run directory: nothing else is writing these now
        for stale in root.iterdir():
            if stale.is_dir() and STALE_DIR.match(stale.name):
                shutil.rmtree(stale, ignore_errors=True)
    return doomed


# --- pretrained models ---------------------------------------------------------------------------------------


#: The producer recorded in a model folder's manifest (see :func:`check_output_dir`).
MODEL_PRODUCER = "gencore model"


def save_pretrained(
    model: torch.nn.Module, directory: str | Path, config: dict[str, Any], overwrite: bool = True,
    training: Mapping[str, Any] | None = None,
) -> Path:  # fmt: skip
    """Write ``config.json`` + ``model.safetensors`` + ``model_info.json`` and the model card ``README.md``
    (:mod:`gencore.modelcard`; ``training``, a :func:`gencore.modelcard.training_record`, says how the model was
    trained), with a manifest, atomically; returns the directory.

    An earlier model folder there is replaced (``overwrite``); a folder holding anything else is refused with
    OutputError, untouched.
    """
    with writing_model_folder(model, directory, config, overwrite=overwrite, training=training):
        pass
    return Path(directory)


@contextlib.contextmanager
def writing_model_folder(
    model: torch.nn.Module, directory: str | Path, config: dict[str, Any], overwrite: bool = True,
    training: Mapping[str, Any] | None = None,
) -> Iterator[Path]:  # fmt: skip
    """:func:`save_pretrained` for a package whose model folder holds more (a text prior, the run's config): yields
    the folder being written, with the model's files already in it, for the caller to add its own; all of it lands
    at once, under one manifest, when the block ends (nothing on an error)."""
    directory = Path(directory)
    info, card = describe(model, config, training)
    with atomic_dir(directory, overwrite=overwrite, producer=MODEL_PRODUCER) as tmp:
        state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
        _st_save(state, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
        (tmp / CARD_FILE).write_text(card, encoding="utf-8")
        yield tmp


def load_model(directory: str | Path, map_location: str = "cpu") -> torch.nn.Module:
    """The model of a model folder, built by the class its ``model_info.json`` names (verified first).

    Only a :class:`PretrainedMixin` class of gencore or of a registered package (:mod:`gencore.registry`) is
    imported; a folder of an earlier version (no ``model_info.json``) is loaded with its package's class instead.
    """
    directory = Path(directory)
    verify_dir(directory)
    path = directory / INFO_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{directory} has no {INFO_FILE} (written before model folders described themselves): load it with its "
            "package's class, e.g. Model.from_pretrained(dir)"
        )
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        module_name, _, qualname = str(info["class"]).partition(":")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CheckpointError(f"{path} is not a model description") from None
    allowed = {"gencore", *(spec.import_name for spec in packages().values())}
    if module_name.split(".")[0] not in allowed or not qualname:
        raise CheckpointError(f"{path} names {info['class']!r}, not a class of gencore or of a registered package")
    try:
        cls: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError) as exc:
        raise CheckpointError(f"{path}: cannot import {info['class']} ({exc})") from None
    if not (isinstance(cls, type) and issubclass(cls, PretrainedMixin)):
        raise CheckpointError(f"{path} names {info['class']!r}, which is not a model class (PretrainedMixin)")
    return cls.from_pretrained(directory, map_location=map_location)


def check_model_info(directory: str | Path, expected: type) -> None:
    """Refuse, by name and before anything is built, a model folder whose ``model_info.json`` describes another
    model than ``expected``: another package's, another class of the same package, or a newer folder format. A
    folder of an earlier version (no ``model_info.json``) passes: its config and weights are checked as before."""
    path = Path(directory) / INFO_FILE
    if not path.is_file():
        return
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        module_name, _, qualname = str(info["class"]).partition(":")
        fmt = int(info.get("format", INFO_FORMAT))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CheckpointError(f"{path} is not a model description") from None
    written = f"{info.get('package') or module_name.split('.')[0]} {info.get('version') or ''}".strip()
    if fmt > INFO_FORMAT:
        raise CheckpointError(
            f"{directory} is a model folder of format {fmt} (written by {written}); this gencore reads format "
            f"{INFO_FORMAT} and older: upgrade the package"
        )
    same_package = module_name.split(".")[0] == expected.__module__.split(".")[0]
    if not same_package or qualname.rpartition(".")[2] != expected.__qualname__.rpartition(".")[2]:
        want = f"{distribution_of(expected.__module__)[0] or expected.__module__}'s {expected.__qualname__}"
        raise CheckpointError(f"{directory} holds {written}'s {qualname or info['class']}, not {want}")


def load_pretrained(
    directory: str | Path, build: Callable[[dict[str, Any]], torch.nn.Module], map_location: str = "cpu",
    expected: type | None = None,
) -> torch.nn.Module:  # fmt: skip
    """Verify ``directory``, build a model from its ``config.json`` with ``build`` and load its weights strictly;
    with ``expected``, a folder describing another model is refused first (:func:`check_model_info`)."""
    directory = Path(directory)
    verify_dir(directory)
    if expected is not None:
        check_model_info(directory, expected)
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8-sig"))
        check_depth(config, f"{directory / 'config.json'}")
    except RecursionError:
        raise CheckpointError(f"{directory / 'config.json'} is corrupt (nested too deeply)") from None
    except (ValueError, ConfigError) as exc:
        raise CheckpointError(f"{directory / 'config.json'} is corrupt ({exc})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{directory / 'config.json'} must hold a JSON object")
    model = build(config)
    try:
        state = _st_load(str(directory / "model.safetensors"), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{directory / 'model.safetensors'} is unreadable ({exc})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{directory} does not match the model built from its config: {first}") from None
    # the weights were copied into the parameters the model was built with (on the CPU): place the model itself,
    # so that map_location="cuda" gives a model on the GPU, not CPU parameters holding GPU-loaded tensors' copies
    return model.to(map_location) if str(map_location) != "cpu" else model


class PretrainedMixin:
    """Adds ``save_pretrained``/``from_pretrained`` to an ``nn.Module`` built as ``cls(config)`` from a dataclass.

    The subclass sets ``config_class`` and keeps its config in ``self.config``.
    """

    config_class: type

    def save_pretrained(self, directory: str | Path, training: Mapping[str, Any] | None = None) -> Path:
        """Save weights and config to ``directory`` (atomic); ``training`` (``Trainer.training_record()``) goes
        into its ``model_info.json`` and model card."""
        return save_pretrained(self, directory, to_dict(self.config), training=training)  # type: ignore[arg-type]

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str = "cpu") -> Any:
        """Build the model from ``directory/config.json`` and load ``model.safetensors`` (verified)."""

        def build(raw: dict[str, Any]) -> torch.nn.Module:
            try:
                config = from_dict(cls.config_class, raw)
            except ConfigError as exc:
                raise CheckpointError(f"{directory}/config.json: {exc}") from None
            # a config.json asking for an absurd size is refused before the allocator fails on it
            require_model_memory(lambda: cls(config), f"{directory}/config.json: {cls.__name__}",  # type: ignore[call-arg]
                                 training=False, error=CheckpointError)  # fmt: skip
            return cls(config)  # type: ignore[call-arg]

        return load_pretrained(directory, build, map_location, expected=cls)


# --- foreign files --------------------------------------------------------------------------------------------


def load_torch_file(
    path: str | Path, allow_pickle: bool = False, map_location: str = "cpu", weights_only: bool = False
) -> Any:
    """Load tensors from ``path``: safetensors always; pickle-based files only when the caller opts in.

    Two opt-ins, both explicit: ``weights_only=True`` reads a pickle with PyTorch's restricted weights-only
    unpickler, which rebuilds tensors and plain containers and refuses any other object (so no code from the file
    runs), e.g. for torchvision's published weight files; ``allow_pickle=True`` runs the full unpickler, which
    executes whatever code the file's author put in it, for files the user trusts. Without either, refused.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"file not found: {path}")
    with open(path, "rb") as fh:
        head = fh.read(4)
    # torch.save writes a zip archive ("PK") or a bare pickle (protocol byte 0x80); anything else is read
    # as safetensors, whose parser only ever reads a JSON header and raw bytes.
    if not (head.startswith(b"PK") or head.startswith(b"\x80")):
        try:
            return _st_load(str(path), device=map_location)
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None
    if not (allow_pickle or weights_only):
        raise CheckpointError(
            f"refusing to unpickle {path}: pickle files can run arbitrary code; convert it to safetensors, or "
            "load it in Python with load_torch_file(..., allow_pickle=True) only if you trust it"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=not allow_pickle)
    except Exception as exc:  # noqa: BLE001 - any failure of a foreign file is the file's problem
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot load {path}: {first}") from None
