"""Memory guard: estimate what a model, a batch or a file needs *before* allocating it, and refuse what cannot fit.

Without it a size typed by a user (``--size 100000x100000``, ``--latent 1000000000000``, a ``config.json`` asking
for ``hidden=[1e7, 1e7]``, a small file declaring an 8 GB array) ends in the allocator: a ``RuntimeError``
traceback at best, the kernel's OOM killer taking the whole machine at worst. With it the command stops at once
with one line naming the figure::

    error: M1 model with hidden=[10000000, 10000000], latent=50, bands=100 (200,004,540,000,300 parameters;
    weights, gradients, 2 optimizer states) needs 2.8 PiB of memory, 21.3 GiB of RAM available

The pieces:

- :func:`available_memory`: what this process may still allocate, the smallest of the RAM the kernel reports
  available (``/proc/meminfo`` ``MemAvailable``), what is left under the address-space and data-segment limits
  (``ulimit -v`` / ``ulimit -d``: ``RLIMIT_AS`` / ``RLIMIT_DATA`` minus what the process already maps), and what is
  left under a cgroup memory limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``; reclaimable page cache
  counted as free). Elsewhere (no ``/proc``) the machine's physical memory, else ``None`` (unknown: no check).
- :func:`require_memory`: raise a :class:`~gencore.errors.GencoreError` (one line, exit code 2) when an estimate
  exceeds that.
- :func:`model_size` counts the parameters and buffers of a model built on PyTorch's ``meta`` device (shapes, no
  storage: nothing allocated, however large), :func:`require_model_memory` checks a build with it, counting for
  training the weights, their gradients and the optimizer's state (Adam: 2 more copies), i.e. about 4x the
  parameters.
- :func:`require_batch_memory`: one input batch of a user-given image size (``batch x C x H x W x 4`` bytes).

Estimates are lower bounds (activations other than the input batch are not counted), so a refusal is certain to
be right; a run that passes can still run out of memory later, only not at an absurd size typed by mistake.
``GENCORE_MEMORY_GUARD=0`` turns every check off (e.g. to lean on swap, which ``MemAvailable`` leaves out).
The checks read a few small files under ``/proc`` and ``/sys``: well under a millisecond.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gencore.errors import ConfigError, GencoreError

if TYPE_CHECKING:
    import torch

__all__ = [
    "MemoryBudget",
    "ModelSize",
    "available_memory",
    "format_bytes",
    "guard_enabled",
    "model_size",
    "require_batch_memory",
    "require_memory",
    "require_model_memory",
    "tensor_bytes",
]

#: Environment variable that turns the guard off when set to ``0`` (or ``false``/``no``/``off``).
GUARD_ENV = "GENCORE_MEMORY_GUARD"
#: Adam/AdamW keep two moment estimates per parameter.
ADAM_STATES = 2
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
_UNLIMITED = 1 << 60  # cgroup v1 writes 2^63 rounded down to a page for "no limit"


@dataclass(frozen=True)
class MemoryBudget:
    """What this process may still allocate: ``nbytes`` and which limit says so (``source``)."""

    nbytes: int
    source: str  # "ram", "rlimit_as", "rlimit_data", "cgroup" or "physical"

    def describe(self) -> str:
        """``'21.3 GiB of RAM available'`` and the like, naming the limit."""
        amount = format_bytes(self.nbytes)
        return {
            "ram": f"{amount} of RAM available",
            "rlimit_as": f"{amount} left under the address-space limit (ulimit -v)",
            "rlimit_data": f"{amount} left under the data-segment limit (ulimit -d)",
            "cgroup": f"{amount} left under the cgroup memory limit",
            "physical": f"{amount} of RAM in this machine",
        }.get(self.source, f"{amount} available ({self.source})")


def format_bytes(nbytes: float) -> str:
    """``805306368`` -> ``'768.0 MiB'``: binary units with one decimal (bytes as an integer)."""
    value = float(nbytes)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def guard_enabled() -> bool:
    """False when ``GENCORE_MEMORY_GUARD`` is ``0``/``false``/``no``/``off`` (every check passes then)."""
    return os.environ.get(GUARD_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


# --- what is available ---------------------------------------------------------------------------------------


def _read_kib(path: str, field: str) -> int | None:
    """The ``field:  N kB`` line of a /proc file, in bytes (None when absent or unreadable)."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _stat_field(path: Path, names: Sequence[str]) -> int:
    """A ``name value`` line of a cgroup ``memory.stat`` (the first of ``names`` present; 0 if none)."""
    try:
        fields = dict(line.split()[:2] for line in path.read_text().splitlines() if len(line.split()) >= 2)
    except (OSError, ValueError):
        return 0
    for name in names:
        if name in fields and fields[name].isdigit():
            return int(fields[name])
    return 0


def _rlimit_left(which: str, used_field: str) -> int | None:
    """Soft ``RLIMIT_<which>`` minus the ``/proc/self/status`` figure it is charged against (None: no limit)."""
    try:
        import resource
    except ImportError:  # not a Unix
        return None
    try:
        soft, _ = resource.getrlimit(getattr(resource, f"RLIMIT_{which}"))
    except (AttributeError, OSError, ValueError):
        return None
    if soft in (resource.RLIM_INFINITY, -1) or soft < 0:
        return None
    used = _read_kib("/proc/self/status", used_field) or 0
    return max(soft - used, 0)


def _cgroup_dirs() -> Iterator[tuple[Path, int]]:
    """(directory, version) of this process's memory cgroup and of each ancestor that is mounted here."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, rel = parts
        if hierarchy == "0" and controllers == "":
            root, version = Path("/sys/fs/cgroup"), 2
        elif "memory" in controllers.split(","):
            root, version = Path("/sys/fs/cgroup/memory"), 1
        else:
            continue
        rel_path = Path(rel.lstrip("/"))
        for candidate in (rel_path, *rel_path.parents):
            directory = root / candidate
            if directory.is_dir():
                yield directory, version


def _cgroup_left() -> int | None:
    """The least memory left under any cgroup limit of this process (None when no limit is set)."""
    best: int | None = None
    seen: set[Path] = set()
    for directory, version in _cgroup_dirs():
        if directory in seen:
            continue
        seen.add(directory)
        if version == 2:
            limit = _read_int(directory / "memory.max")
            usage = _read_int(directory / "memory.current")
            cache = _stat_field(directory / "memory.stat", ("inactive_file",))
        else:
            limit = _read_int(directory / "memory.limit_in_bytes")
            usage = _read_int(directory / "memory.usage_in_bytes")
            cache = _stat_field(directory / "memory.stat", ("total_inactive_file", "inactive_file"))
        if limit is None or limit >= _UNLIMITED or usage is None:
            continue
        left = max(limit - usage + cache, 0)
        best = left if best is None else min(best, left)
    return best


def _physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def available_memory() -> MemoryBudget | None:
    """What this process may still allocate: the smallest of free RAM, the ``ulimit -v``/``-d`` headroom and the
    cgroup headroom; on a system without ``/proc``, its physical memory; ``None`` when nothing is known."""
    candidates: list[MemoryBudget] = []
    ram = _read_kib("/proc/meminfo", "MemAvailable")
    if ram is not None:
        candidates.append(MemoryBudget(ram, "ram"))
    for which, used_field, source in (("AS", "VmSize", "rlimit_as"), ("DATA", "VmData", "rlimit_data")):
        left = _rlimit_left(which, used_field)
        if left is not None:
            candidates.append(MemoryBudget(left, source))
    cgroup = _cgroup_left()
    if cgroup is not None:
        candidates.append(MemoryBudget(cgroup, "cgroup"))
    if ram is None:
        physical = _physical_memory()
        if physical is not None:
            candidates.append(MemoryBudget(physical, "physical"))
    return min(candidates, key=lambda b: b.nbytes) if candidates else None


def require_memory(nbytes: float, what: str, error: type[GencoreError] = ConfigError) -> None:
    """Raise ``error("<what> needs <X> of memory, <Y> available")`` when ``nbytes`` cannot fit.

    ``what`` names the thing and the figure that made it big (``"one batch of 32 images of 1x100000x100000"``).
    Passes when the guard is off or nothing is known about the available memory.
    """
    if nbytes <= 0 or not guard_enabled():
        return
    budget = available_memory()
    if budget is None or nbytes <= budget.nbytes:
        return
    raise error(f"{what} needs {format_bytes(nbytes)} of memory, {budget.describe()}")


# --- tensors and batches -------------------------------------------------------------------------------------


def tensor_bytes(shape: Iterable[int], itemsize: int = 4) -> int:
    """Bytes of a dense tensor of ``shape`` with ``itemsize`` bytes per element (Python integers: no overflow)."""
    return math.prod(int(s) for s in shape) * int(itemsize)


def require_batch_memory(
    batch: int,
    item_shape: Sequence[int],
    what: str = "images",
    setting: str = "",
    itemsize: int = 4,
    error: type[GencoreError] = ConfigError,
) -> None:
    """Refuse a size at which one input batch alone cannot fit (``batch x prod(item_shape) x itemsize`` bytes).

    ``what`` names the items, ``setting`` the option that sized them: ``require_batch_memory(32, (1, H, W),
    setting="--size")`` reads ``one batch of 32 images of 1x100000x100000 (--size) needs 1.2 TiB of memory, ...``.
    """
    dims = "x".join(str(int(s)) for s in item_shape)
    where = f" ({setting})" if setting else ""
    require_memory(tensor_bytes([batch, *item_shape], itemsize), f"one batch of {batch} {what} of {dims}{where}", error)


# --- models --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSize:
    """Parameters and buffers of a model: ``parameters`` (count), ``parameter_bytes``, ``buffer_bytes``."""

    parameters: int
    parameter_bytes: int
    buffer_bytes: int

    @property
    def inference_bytes(self) -> int:
        """Weights and buffers: what holding the model takes."""
        return self.parameter_bytes + self.buffer_bytes

    def training_bytes(self, optimizer_states: int = ADAM_STATES, extra_copies: int = 0) -> int:
        """Weights, gradients, ``optimizer_states`` copies (Adam: 2) and ``extra_copies`` (an EMA: 1), and buffers."""
        return self.parameter_bytes * (2 + optimizer_states + extra_copies) + self.buffer_bytes


def _modules(built: Any) -> list[Any]:
    from torch import nn

    if isinstance(built, nn.Module):
        return [built]
    if isinstance(built, Mapping):
        return [m for v in built.values() for m in _modules(v)]
    if isinstance(built, (list, tuple)):
        return [m for v in built for m in _modules(v)]
    return []


def _count(modules: Iterable[torch.nn.Module]) -> ModelSize:
    params: dict[int, torch.Tensor] = {}
    buffers: dict[int, torch.Tensor] = {}
    for module in modules:
        params.update((id(p), p) for p in module.parameters())
        buffers.update((id(b), b) for b in module.buffers())
    return ModelSize(
        parameters=sum(p.numel() for p in params.values()),
        parameter_bytes=sum(p.numel() * p.element_size() for p in params.values()),
        buffer_bytes=sum(b.numel() * b.element_size() for b in buffers.values()),
    )


@contextlib.contextmanager
def _rng_untouched() -> Iterator[None]:
    """Leave torch's, NumPy's and Python's global random states as they were (a build may draw from them)."""
    import numpy as np
    import torch

    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def model_size(build: Callable[[], Any]) -> ModelSize:
    """Count what ``build()`` would allocate, building it on the ``meta`` device (no storage, any size).

    ``build`` returns an ``nn.Module`` or a tuple/list/dict of them (shared parameters are counted once); it is
    the very call that builds the real model, so the count is exact for parameters and buffers that the
    constructor makes with PyTorch's factory functions (``nn.Linear``, ``torch.zeros`` ...). A tensor made from
    NumPy data is a CPU tensor even here and is counted at its real size. The global random states are left as
    they were, so a guarded build gives the same weights as an unguarded one.
    """
    import torch

    with _rng_untouched(), torch.device("meta"):
        built = build()
    return _count(_modules(built))


def require_model_memory(
    build: Callable[[], Any],
    what: str,
    *,
    training: bool = True,
    optimizer_states: int = ADAM_STATES,
    extra_copies: int = 0,
    device: str | torch.device | None = None,
    error: type[GencoreError] = ConfigError,
) -> ModelSize | None:
    """Refuse a model that cannot fit before building it: ``build`` is counted on the meta device.

    ``what`` describes the model by the settings that size it (``"M1 model with hidden=[...], latent=50"``).
    With ``training`` the estimate is weights + gradients + ``optimizer_states`` (Adam: 2) + ``extra_copies``
    (EMA weights) + buffers, otherwise weights + buffers. The host must hold the model while it is built; when
    it trains on a CUDA device (``device``, default: CUDA when available) the training state lives there and is
    checked against that device's total memory. Returns the count (``None`` when the model cannot be built on the
    meta device: then nothing is checked and the real build goes ahead, or when the guard is off).
    """
    if not guard_enabled():
        return None
    import torch

    try:
        size = model_size(build)
    except GencoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - a constructor that needs real data: leave it to the real build
        if "overflow" in str(exc).lower():  # a tensor of more than 2^63 elements: no machine holds it
            require_memory(2**63 * 4, f"{what} (a tensor of more than 2^63 elements)", error)
            raise error(f"{what} is too large to build: its tensor sizes overflow 64-bit integers") from None
        return None
    need = size.training_bytes(optimizer_states, extra_copies) if training else size.inference_bytes
    dev = torch.device(device) if device is not None else None
    on_cuda = training and (dev.type == "cuda" if dev is not None else torch.cuda.is_available())
    count = f"{size.parameters:,} parameters"
    trained = f"{what} ({count}; weights, gradients, {optimizer_states} optimizer states" + (
        f", {extra_copies} EMA cop{'y' if extra_copies == 1 else 'ies'})" if extra_copies else ")"
    )
    if on_cuda:  # built on the host, then moved: the host holds the weights once, the device the training state
        require_memory(size.inference_bytes, f"{what} ({count}, built on the host)", error)
        _require_cuda(need, trained, dev, error)
    else:
        require_memory(need, trained if training else f"{what} ({count})", error)
    return size


def _require_cuda(need: int, what: str, device: torch.device | None, error: type[GencoreError]) -> None:
    """Refuse training state larger than the CUDA device's total memory."""
    import torch

    try:
        index = device.index if device is not None and device.index is not None else None
        index = int(os.environ.get("LOCAL_RANK", 0)) if index is None else index
        total = torch.cuda.get_device_properties(index).total_memory
    except Exception:  # noqa: BLE001 - no usable device after all: the host check stands alone
        return
    if need > total:
        raise error(f"{what} needs {format_bytes(need)} of GPU memory, cuda:{index} has {format_bytes(total)}")
