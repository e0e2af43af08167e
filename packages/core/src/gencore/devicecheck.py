"""A device-placement dry run without a GPU: build a package's Trainer on PyTorch's ``meta`` device and run one
update, the sample function, the evaluation, a short ``fit()`` with checkpoints and a resume.

The bug this finds is the commonest one on a GPU: a tensor made on the CPU (``torch.randn(n)``, ``torch.arange``,
a buffer that is not registered, a CPU random generator) meeting one on the accelerator. On one CPU process every
tensor is on the CPU, so such code passes every CPU test and fails on the first GPU step. Here Accelerate's device
is ``meta`` (tensors with a shape and a dtype but no data), so the models, the batches and everything made with
``device=ctx.device`` are meta tensors, and an operation that mixes them with a CPU tensor raises, as CUDA does.
A CPU tensor of zero dimensions may meet a meta one, as it may meet a CUDA one.

Meta tensors hold no values, so reading one into Python or host memory (``.item()``, ``bool()``, ``.cpu()``,
``.numpy()``, ``.tolist()``) gives ones of its shape and dtype: branches on data take one arbitrary side and the
figures are meaningless; only the placement of every tensor is checked. Not covered: CUDA-only kernels and their
dtype rules (autocast, bf16). Where an output's shape depends on the data, the placeholder is the ones again:
a boolean mask or ``nonzero`` selects every element, ``bincount`` has length ``minlength``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import torch
from accelerate import Accelerator
from accelerate.utils import send_to_device
from torch.overrides import TorchFunctionMode

from gencore import cli as gencore_cli
from gencore.train import StepContext, Trainer

__all__ = ["meta_device", "check_device_placement", "check_command"]

META = torch.device("meta")
_SCALAR_READS = {"item", "__bool__", "__float__", "__int__", "__index__"}
_HOST_READS = {"cpu", "numpy", "tolist", "__array__"}


def _is_meta(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.device.type == "meta"


class _MetaReads(TorchFunctionMode):
    """Host reads of meta tensors give ones; a CPU generator drawing for a meta tensor is refused (as on CUDA)."""

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        first = args[0] if args else None
        if _is_meta(first):
            if name in _SCALAR_READS or name in _HOST_READS:
                return func(torch.ones(first.shape, dtype=first.dtype), *args[1:], **kwargs)
            if name == "bincount":  # its length depends on the values; with minlength=k it is k for indices < k
                weights = args[1] if len(args) > 1 else kwargs.get("weights")
                dtype = weights.dtype if weights is not None else torch.int64
                return torch.ones(max(kwargs.get("minlength", args[2] if len(args) > 2 else 0), 1), dtype=dtype,
                                  device=META)  # fmt: skip
            if name == "to":
                to_kwargs = {k: v for k, v in kwargs.items() if k != "copy"}  # _parse_to knows no copy=
                device, dtype, *_ = torch._C._nn._parse_to(*args[1:], **to_kwargs)
                if device is not None and device.type != "meta":
                    return torch.ones(first.shape, dtype=dtype or first.dtype, device=device)
        generator = kwargs.get("generator")
        if isinstance(generator, torch.Generator) and generator.device.type == "cpu":
            device = kwargs.get("device")
            if (device is not None and torch.device(device).type == "meta") or any(map(_is_meta, args)):
                raise RuntimeError(
                    f"{name}: a CPU random generator draws for a tensor on the accelerator (CUDA refuses this): "
                    "use a generator of that device, or draw on the CPU and move the result"
                )
        return func(*args, **kwargs)


@contextlib.contextmanager
def meta_device() -> Iterator[torch.device]:
    """Within the block every ``Accelerator`` places models and batches on the ``meta`` device (see the module
    docstring), and so does every command run with ``--device auto`` (the default): :func:`gencore.cli.resolve_device`
    gives ``meta`` for ``auto``, so a command's CLI run checks its inference path as on a GPU; yields that device."""
    from torch.fx.experimental import _config as fx_config

    # boolean masks and nonzero take every element as selected: ones again, so the shapes are the largest
    flag = "meta_nonzero_assume_all_nonzero"  # a PyTorch option of recent versions; without it nonzero raises
    masks = fx_config.patch(**{flag: True}) if hasattr(fx_config, flag) else contextlib.nullcontext()
    # `--device auto` of the inference commands (gencore.cli.resolve_device) means the meta device too
    with masks, _MetaReads(), warnings.catch_warnings(), \
            mock.patch.object(Accelerator, "device", property(lambda self: META)), \
            mock.patch.object(gencore_cli, "_auto_device", lambda: META):  # fmt: skip
        # loading a checkpoint (placeholder values) into meta parameters is a no-op, which is all a resume can be here
        warnings.filterwarnings("ignore", message=".*non-meta parameter in the checkpoint to a meta parameter")
        yield META


def check_device_placement(build: Callable[[], Trainer], steps: int = 2) -> dict[str, Any]:
    """Build a Trainer with ``build()`` on the meta device and run what training runs on a GPU.

    First one micro-batch through its step function with the real :class:`~gencore.train.StepContext` (backward
    pass, optimizer step, EMA), then ``sample_fn`` and ``eval_fn`` if it has them; then ``fit()`` for ``steps``
    updates logging, sampling and checkpointing at every update and evaluating at the last, and a second Trainer
    from ``build()`` resuming that run for one more update. ``build`` must give a Trainer whose run directory
    holds no checkpoints. The run directory then holds placeholder checkpoints and images (all ones).

    Returns what was run: ``{"models": {name: device type}, "updated": [...], "samples": [...], "eval": [...],
    "fit": reason, "resumed_at": step}``. A tensor on the CPU meeting one on the device raises its RuntimeError
    from the place it happened.
    """
    with meta_device() as device:
        trainer = build()
        before = set(trainer.run_dir.iterdir()) if trainer.run_dir.is_dir() else set()
        report: dict[str, Any] = {"models": {n: str(_device_of(trainer.unwrap(n))) for n in trainer.models}}
        misplaced = {n: d for n, d in report["models"].items() if d != "meta"}
        if misplaced:
            raise RuntimeError(f"models not on the accelerator after prepare: {misplaced}")
        updated: list[str] = []
        ctx = _RecordingContext(trainer, updated)
        batch = send_to_device(next(iter(trainer.loader)), device)
        trainer.step_fn(ctx, batch)
        report["updated"] = updated
        if trainer.sample_fn is not None:
            with torch.no_grad():
                images = trainer.sample_fn(trainer)
            report["samples"] = sorted(images) if isinstance(images, dict) else [""]
        if trainer.eval_fn is not None:
            report["eval"] = sorted(trainer.eval_fn(trainer))
        # what these calls outside fit() wrote into the run directory (m1 keeps its best model there) is
        # placeholder data of this check: cleared, so that the fit below is the fresh start it is meant to be
        for item in (set(trainer.run_dir.iterdir()) if trainer.run_dir.is_dir() else set()) - before:
            shutil.rmtree(item) if item.is_dir() else item.unlink()
        # the Trainer's own loop: logging, sample grids, checkpoints, evaluation, then a resume from them
        every = {"log_every": 1, "sample_every": 1, "checkpoint_every": 1, "eval_every": steps, "max_epochs": None}
        report["fit"] = _short_run(build(), steps, every).reason
        report["resumed_at"] = _short_run(build(), steps + 1, every, resume="auto").step
    return report


def check_command(cli: Any, args: list[str]) -> str:
    """Run a click command (``cli`` with ``args``, ``--device auto`` by default) on the meta device in this process
    and return its output; a CPU tensor meeting a device tensor (or any other failure) is re-raised from where it
    happened, with the command's output in a note. What the command writes holds placeholder values (ones)."""
    from click.testing import CliRunner

    with meta_device():
        result = CliRunner().invoke(cli, [*args, "--debug"], catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        result.exception.add_note(f"output of {' '.join(args)}:\n{result.output}")
        raise result.exception
    if result.exit_code != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {result.exit_code}: {result.output}")
    return result.output


def _short_run(trainer: Trainer, steps: int, every: dict[str, Any], resume: str | None = None) -> Any:
    trainer.config = dataclasses.replace(trainer.config, max_steps=steps, **every)
    return trainer.fit(resume=resume)


def _device_of(module: torch.nn.Module) -> torch.device:
    tensor = next(iter(module.parameters()), None)
    return tensor.device if tensor is not None else META


class _RecordingContext(StepContext):
    """The Trainer's own context, noting which models each update reached."""

    def __init__(self, trainer: Trainer, updated: list[str]) -> None:
        super().__init__(trainer)
        self._updated = updated

    def update(self, name: str, loss: torch.Tensor, retain_graph: bool = False) -> None:
        if loss.device.type != "meta":
            raise RuntimeError(f"the loss of {name} is on {loss.device}, not on the accelerator")
        super().update(name, loss, retain_graph)
        self._updated.append(name)
