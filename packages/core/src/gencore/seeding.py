"""Seeded randomness for a small training loop that runs beside the Trainer (a feature network, a text reader, a
study's classifier), without touching the caller's random state.

:func:`local_rng` gives the loop a ``torch.Generator`` of its own for what it draws itself (batch indices,
augmentation) and seeds the global CPU generator only for the ``with`` block, where what the loop cannot hand a
generator draws from it (a module's initial weights when the module is built on the CPU); on exit the global CPU
state is put back. So the loop's result depends on its seed alone, and the code around it draws the same numbers
whether the loop ran or not (a cached network loaded instead of trained leaves the same stream behind).

A loop that trains on an accelerator names it (``device``): dropout and anything else drawn there come from that
device's own default generator, not the CPU's, so it is seeded for the block and restored after it in the same
way. Without that, a CUDA run's dropout masks would differ from run to run. (Bitwise-equal CUDA runs also need
deterministic kernels: ``torch.use_deterministic_algorithms``.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["local_rng", "torch_seed"]

_HOSTLESS = ("cpu", "meta")

#: ``torch.Generator.manual_seed`` takes an unsigned 64-bit value: a seed derived from a large one (``seed *
#: 1_000_003 + epoch``) is folded into that range.
_TORCH_SEEDS = 2**64


def torch_seed(value: int) -> int:
    """``value`` (a seed, or a stream number derived from one) as ``manual_seed`` takes it: unchanged below 2**64,
    so the streams of every seed that worked before stay the same, folded modulo 2**64 above."""
    return int(value) % _TORCH_SEEDS  # device types whose tensors draw from the CPU generator or draw nothing


def _accelerator(device: str | torch.device | None) -> tuple[str, int] | None:
    """(type, index) of the accelerator ``device`` names (its current device when no index is given); ``None`` for
    the CPU, the meta device and ``None``."""
    if device is None:
        return None
    device = torch.device(device)
    if device.type in _HOSTLESS:
        return None
    if device.index is not None:
        return device.type, device.index
    current = getattr(torch.get_device_module(device.type), "current_device", None)  # MPS has one device, no such call
    return device.type, current() if current else 0


def _seed_device(device_type: str, index: int, seed: int) -> None:
    module = torch.get_device_module(device_type)
    generators = getattr(module, "default_generators", None)
    if generators:  # CUDA, XPU: one default generator per device; seed only the one the loop runs on
        generators[index].manual_seed(seed)
    else:  # a type with one device (MPS)
        module.manual_seed(seed)


@contextlib.contextmanager
def local_rng(seed: int, device: str | torch.device | None = None) -> Iterator[torch.Generator]:
    """``with local_rng(seed, device) as gen:`` the block's own CPU generator ``gen`` (seeded with ``seed``), the
    global CPU generator seeded with ``seed`` too and, when ``device`` is an accelerator (``cuda``, ``cuda:1``,
    ``xpu``, ``mps``), that device's default generator as well; all of them are restored on exit, also after an
    exception::

        with local_rng(seed, device) as gen:
            model = Classifier(config).to(device)  # initial weights from the global CPU generator, seeded here
            for _ in range(steps):
                idx = torch.randint(len(images), (batch_size,), generator=gen)
                loss = loss_fn(model(images[idx].to(device)))  # dropout on ``device``, seeded here
                ...
    """
    accelerator = _accelerator(device)
    devices, device_type = ([accelerator[1]], accelerator[0]) if accelerator else ([], None)
    with torch.random.fork_rng(devices=devices, device_type=device_type):
        torch.default_generator.manual_seed(seed)
        if accelerator:
            _seed_device(*accelerator, seed)
        yield torch.Generator().manual_seed(seed)
