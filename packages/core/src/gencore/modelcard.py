"""What a model folder says about itself: ``model_info.json`` (machine-readable) and ``README.md`` (a model card).

Every folder written by :func:`gencore.checkpoint.save_pretrained` holds, beside ``config.json`` and
``model.safetensors``, the model's class (``module:QualName``), the distribution and version that wrote it, the
gencore version, its parameter count and dtype, and a card that says how to load it. A model exported by a training
run also records how it was made (:func:`training_record`): the data settings, the updates, how the run stopped, the
metrics of its last evaluation with the command that ran it. No date and no host: the same model written twice
gives the same files (the command line is the only part that names a path). Loading by the info is
:func:`gencore.checkpoint.load_model`.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from gencore.registry import packages

__all__ = ["INFO_FILE", "CARD_FILE", "INFO_FORMAT", "describe", "distribution_of", "invocation", "training_record"]

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


def invocation() -> str:
    """This process's command line as a user would type it again: ``python -m module ...`` for a module run with
    ``-m`` (also under ``accelerate launch -m``), else the program's name and its arguments."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", "") or ""
    prog = ["python", "-m", name.removesuffix(".__main__")] if name and name != "__main__" else [Path(sys.argv[0]).name]
    return shlex.join([*prog, *sys.argv[1:]])


def _last_evaluation(metrics_csv: Path, step: int) -> tuple[int, dict[str, float]] | None:
    """(its step, {metric: value}) of the last evaluation at or before ``step`` in a run's ``metrics.csv``."""
    from gencore.train.logger import read_metrics

    if not metrics_csv.is_file():
        return None
    _, rows, _ = read_metrics(metrics_csv)
    found = None
    for row in rows:
        try:
            at = int(row.get("step") or -1)
        except ValueError:
            continue
        values = {k.removeprefix("eval/"): v for k, v in row.items() if k.startswith("eval/") and v not in ("", None)}
        values.pop("bad_evals", None)
        if values and at <= step:
            found = (at, {k: _number(v) for k, v in values.items()})
    return found


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def training_record(
    run_dir: str | Path, run_config: Mapping[str, Any], *, updates: int, epochs: int, reason: str | None = None,
    weights_step: int | None = None, metrics: Mapping[str, float] | None = None, command: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """How a run's exported model was made, for its ``model_info.json`` and card: the run config's ``data`` section
    and seed, the updates and epochs trained, how the run stopped, the step the weights are from (a best-model
    export keeps an earlier one) and the metrics its last evaluation at or before that step wrote to
    ``RUN/metrics.csv`` (or ``metrics``, measured at ``weights_step``, when the row is not written yet), with the
    command line (:func:`invocation` by default)."""
    weights_step = updates if weights_step is None else weights_step
    train = run_config.get("train") if isinstance(run_config.get("train"), Mapping) else {}
    record: dict[str, Any] = {
        "command": command if command is not None else invocation(),
        "data": dict(run_config.get("data") or {}) if isinstance(run_config.get("data"), Mapping) else {},
        "seed": train.get("seed"), "updates": updates, "epochs": epochs, "stopped_by": reason,
        "weights_step": weights_step, "metrics_step": None, "metrics": {},
    }  # fmt: skip
    found = (weights_step, {k: float(v) for k, v in metrics.items()}) if metrics is not None else None
    found = found or _last_evaluation(Path(run_dir) / "metrics.csv", weights_step)
    if found is not None:
        record["metrics_step"], record["metrics"] = found
    return record


def describe(
    model: nn.Module, config: Mapping[str, Any], training: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], str]:
    """``(model_info, card)`` of ``model`` saved with ``config``: the JSON record and the Markdown model card;
    ``training`` (:func:`training_record`) adds how it was trained."""
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
    if training is not None:
        info["training"] = json.loads(json.dumps(training, default=str))
    return info, _card(info, cls.__name__, config)


def _card(info: Mapping[str, Any], name: str, config: Mapping[str, Any]) -> str:
    module = info["class"].split(":")[0]
    written = f"`{info['package']}` {info['version']}" if info["package"] else f"`{module}` (not installed)"
    rows = "\n".join(f"| `{key}` | {_cell(value)} |" for key, value in _flat(config))
    recorded = " and the training record below" if "training" in info else ""
    return f"""# {name}

A model folder written by {written} with gencore {info['gencore'] or '(source tree)'}: {info['parameters']:,}
parameters ({info['dtype']}).

| file | holds |
|---|---|
| `config.json` | the architecture (the fields of the model's config) |
| `model.safetensors` | the weights (safetensors: no code runs when it is read) |
| `model_info.json` | the class, package and versions above{recorded} |
| `manifest.json` | the size and SHA-256 of every file (`gencore verify <this folder>`) |
{_training_section(info.get("training"))}
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


def _training_section(training: Mapping[str, Any] | None) -> str:
    if not training:
        return ""
    stop = f", stopped by {training['stopped_by']}" if training.get("stopped_by") else ""
    at = training["weights_step"]
    weights = "the last update" if at == training["updates"] else f"update {at:,} (the best evaluation)"
    data = "\n".join(f"| `data.{key}` | {_cell(value)} |" for key, value in _flat(training.get("data") or {}))
    metrics = training.get("metrics") or {}
    if metrics:
        rows = "\n".join(f"| `{key}` | {value:.6g} |" for key, value in metrics.items())
        measured = (f"The run's own evaluation at update {training['metrics_step']:,} (its `metrics.csv`):\n\n"
                    f"| metric | value |\n|---|---|\n{rows}")  # fmt: skip
    else:
        measured = "No evaluation ran in this run."
    return f"""
## Training

Trained for {training['updates']:,} updates ({training['epochs']} epochs{stop}), seed {training.get('seed')}; the
weights are those of {weights}. Command:

```sh
{training['command']}
```

| data setting | value |
|---|---|
{data or '| (none recorded) | |'}

## Metrics

{measured}
"""


def _cell(value: Any) -> str:
    """A value as code in a Markdown table cell: JSON, with the cell's delimiters escaped."""
    return "`" + json.dumps(value, default=str).replace("|", "\\|").replace("`", "'") + "`"


def _flat(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.extend(_flat(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", value))
    return out
