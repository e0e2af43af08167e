"""What a model folder says about itself: ``model_info.json`` (machine-readable) and ``README.md`` (a model card).

Every folder written by :func:`gencore.checkpoint.save_pretrained` holds, beside ``config.json`` and
``model.safetensors``, the model's class (``module:QualName``), the distribution and version that wrote it, the
gencore version, its parameter count and dtype, and a card that says how to load it. No date and no host: the same
model written twice gives the same files (the determinism tests compare them). Loading by the info is
:func:`gencore.checkpoint.load_model`.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
from collections.abc import Mapping
from typing import Any

from torch import nn

from gencore.registry import packages

__all__ = ["INFO_FILE", "CARD_FILE", "INFO_FORMAT", "describe", "distribution_of"]

INFO_FILE = "model_info.json"
CARD_FILE = "README.md"
INFO_FORMAT = 1


def distribution_of(module: str) -> tuple[str, str]:
    """(distribution name, version) that provides ``module``: gencore, a registered package (its registry entry
    names the distribution, which an editable install does not list), else what ``importlib.metadata`` maps its
    top-level package to; the version of the installed metadata, else the package's ``__version__``; ("", "")
    when unknown."""
    top = module.split(".")[0]
    known = {"gencore": "gencore", **{spec.import_name: spec.name for spec in packages().values()}}
    name = known.get(top) or next(iter(importlib.metadata.packages_distributions().get(top, [])), "")
    if not name:
        return "", ""
    try:
        return name, importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        version = getattr(sys.modules.get(top), "__version__", "")
        return name, version if isinstance(version, str) else ""


def describe(model: nn.Module, config: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """``(model_info, card)`` of ``model`` saved with ``config``: the JSON record and the Markdown model card."""
    cls = type(model)
    target = f"{cls.__module__}:{cls.__qualname__}"
    package, version = distribution_of(cls.__module__)
    _, core_version = distribution_of("gencore")
    params = list(model.parameters())
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in params}) or ["none"]
    info = {
        "format": INFO_FORMAT, "class": target, "package": package, "version": version, "gencore": core_version,
        "parameters": sum(p.numel() for p in params), "dtype": ",".join(dtypes),
    }  # fmt: skip
    return info, _card(info, cls.__name__, config)


def _card(info: Mapping[str, Any], name: str, config: Mapping[str, Any]) -> str:
    module = info["class"].split(":")[0]
    written = f"`{info['package']}` {info['version']}" if info["package"] else f"`{module}` (not installed)"
    rows = "\n".join(f"| `{key}` | `{json.dumps(value)}` |" for key, value in _flat(config))
    return f"""# {name}

A model folder written by {written} with gencore {info['gencore'] or '(source tree)'}: {info['parameters']:,}
parameters ({info['dtype']}).

| file | holds |
|---|---|
| `config.json` | the architecture (the fields of the model's config) |
| `model.safetensors` | the weights (safetensors: no code runs when it is read) |
| `model_info.json` | the class, package and versions above |
| `manifest.json` | the size and SHA-256 of every file (`gencore verify <this folder>`) |

## Load it

```python
from {module} import {name}

model = {name}.from_pretrained("path/to/this/folder")  # map_location="cuda" places it on the GPU
# or, without naming the class:
from gencore.checkpoint import load_model
model = load_model("path/to/this/folder")
```

## Configuration

| key | value |
|---|---|
{rows}
"""


def _flat(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.extend(_flat(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", value))
    return out
