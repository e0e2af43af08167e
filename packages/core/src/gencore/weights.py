"""Weight files from elsewhere (torchvision's VGG, LPIPS heads ...) loaded into a module, or one clear error.

:func:`load_weights` compares the state dict read from a file with what the module expects and refuses any
mismatch with one :class:`~gencore.errors.CheckpointError` that names the file, what it should have held and the
mismatch (missing and unexpected keys, the first shapes that differ), instead of torch's multi-line RuntimeError
or a KeyError. Every package that loads such files uses it, so the message is the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gencore.errors import CheckpointError

__all__ = ["load_weights", "weights_mismatch"]


def _some(keys: Sequence[str], limit: int = 3) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def weights_mismatch(expected: Mapping[str, torch.Tensor], got: Mapping[str, Any], prefix: str = "") -> str | None:
    """Why ``got`` cannot be loaded where ``expected`` (a module's state dict) is wanted, or None when it can.

    Keys in the message carry ``prefix`` (as they are written in the file).
    """
    missing = [prefix + k for k in expected if k not in got]
    unexpected = [prefix + k for k in got if k not in expected]
    not_tensor = [prefix + k for k in expected if k in got and not isinstance(got[k], torch.Tensor)]
    shapes = [
        f"{prefix}{k} is {tuple(got[k].shape)} in the file, {tuple(v.shape)} expected"
        for k, v in expected.items()
        if isinstance(got.get(k), torch.Tensor) and got[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_some(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_some(unexpected)}")
    if not_tensor:
        problems.append(f"not tensors: {_some(not_tensor)}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es): {_some(shapes, 2)}")
    return "; ".join(problems) or None


def load_weights(module: nn.Module, state: Any, path: str | Path, what: str, prefix: str = "") -> nn.Module:
    """Load ``state`` (read from ``path``) into ``module`` strictly; returns ``module``.

    Only the keys of ``state`` that start with ``prefix`` are used, without it (``prefix="features."`` loads a
    full VGG file into its convolutional part). Anything but an exact match of keys and shapes raises
    CheckpointError: ``<path> does not hold <what>: 2 missing key(s): ...; 1 shape mismatch(es): ...``.
    """
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path} does not hold {what}: it holds a {type(state).__name__}, not a state dict")
    got = {k[len(prefix) :]: v for k, v in state.items() if isinstance(k, str) and k.startswith(prefix)}
    if not got:
        keys = [str(k) for k in state]
        why = f"no key starts with {prefix!r} (it has {_some(keys)})" if keys and prefix else "it holds no tensors"
        raise CheckpointError(f"{path} does not hold {what}: {why}")
    problem = weights_mismatch(module.state_dict(), got, prefix)
    if problem is not None:
        raise CheckpointError(f"{path} does not hold {what}: {problem}")
    module.load_state_dict(got, strict=True)
    return module
