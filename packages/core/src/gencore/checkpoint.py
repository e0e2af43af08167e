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
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as _st_load
from safetensors.torch import save_file as _st_save

from gencore.errors import CheckpointError

__all__ = [
    "atomic_dir",
    "atomic_file",
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


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto ``path``.

    Writers (h5py, numpy, PIL, json...) write to the yielded path. If the body raises, the temporary file is
    removed and an existing ``path`` is left untouched, so readers never see half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_manifest(directory: Path) -> None:
    files = {}
    for item in sorted(directory.rglob("*")):
        if item.is_file() and item.name != MANIFEST:
            with open(item, "rb") as fh:
                os.fsync(fh.fileno())
            files[item.relative_to(directory).as_posix()] = {"bytes": item.stat().st_size, "sha256": _sha256(item)}
    (directory / MANIFEST).write_text(json.dumps({"format": 1, "files": files}, indent=1) + "\n")


def verify_dir(directory: str | Path) -> None:
    """Raise CheckpointError unless every file listed in ``directory/manifest.json`` is present and intact."""
    directory = Path(directory)
    manifest = directory / MANIFEST
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {directory}")
    if not manifest.is_file():
        raise CheckpointError(f"{directory} is incomplete: no {MANIFEST} (interrupted write?)")
    try:
        entries = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{manifest} is corrupt") from None
    for name, meta in entries.items():
        path = directory / name
        if not path.is_file():
            raise CheckpointError(f"{directory} is incomplete: {name} is missing")
        size = path.stat().st_size
        if size != meta["bytes"]:
            raise CheckpointError(f"{path} is truncated or altered ({size} bytes, expected {meta['bytes']})")
        if _sha256(path) != meta["sha256"]:
            raise CheckpointError(f"{path} is corrupt (SHA-256 does not match the manifest)")


@contextlib.contextmanager
def atomic_dir(destination: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``destination`` (with a manifest) only if the block succeeds.

    An existing ``destination`` is replaced only after the new one is complete; on any error the temporary
    directory is removed and ``destination`` is left as it was.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.exists() and not overwrite:
        raise CheckpointError(f"{destination} already exists")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{destination.name}-", dir=destination.parent))
    try:
        yield tmp
        _write_manifest(tmp)
        _fsync_dir(tmp)
        old = None
        if destination.exists():
            old = destination.with_name(f".old-{destination.name}-{os.getpid()}")
            os.replace(destination, old)
        os.replace(tmp, destination)
        _fsync_dir(destination.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"{json_path} is corrupt ({exc})") from None


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


def save_pretrained(model: torch.nn.Module, directory: str | Path, config: dict[str, Any]) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (+ manifest) atomically; returns the directory."""
    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
        _st_save(state, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return directory


def load_pretrained(
    directory: str | Path, build: Callable[[dict[str, Any]], torch.nn.Module], map_location: str = "cpu"
) -> torch.nn.Module:
    """Verify ``directory``, build a model from its ``config.json`` with ``build`` and load its weights strictly."""
    directory = Path(directory)
    verify_dir(directory)
    try:
        config = json.loads((directory / "config.json").read_text())
    except ValueError as exc:
        raise CheckpointError(f"{directory / 'config.json'} is corrupt ({exc})") from None
    model = build(config)
    try:
        state = _st_load(str(directory / "model.safetensors"), device=map_location)
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{directory / 'model.safetensors'} is unreadable ({exc})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{directory} does not match the model built from its config: {first}") from None
    return model


class PretrainedMixin:
    """Adds ``save_pretrained``/``from_pretrained`` to an ``nn.Module`` built as ``cls(config)`` from a dataclass.

    The subclass sets ``config_class`` and keeps its config in ``self.config``.
    """

    config_class: type

    def save_pretrained(self, directory: str | Path) -> Path:
        """Save weights and config to ``directory`` (atomic)."""
        from gencore.config import to_dict

        return save_pretrained(self, directory, to_dict(self.config))  # type: ignore[arg-type]

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str = "cpu") -> Any:
        """Build the model from ``directory/config.json`` and load ``model.safetensors`` (verified)."""
        from gencore.config import from_dict
        from gencore.errors import ConfigError

        def build(raw: dict[str, Any]) -> torch.nn.Module:
            try:
                return cls(from_dict(cls.config_class, raw))  # type: ignore[call-arg]
            except ConfigError as exc:
                raise CheckpointError(f"{directory}/config.json: {exc}") from None

        return load_pretrained(directory, build, map_location)


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
