"""One training loop on ``accelerate.Accelerator`` for every package.

A package hands the :class:`Trainer` its models, optimizers, a data set and a *step function*::

    def step(ctx: StepContext, batch) -> dict[str, Tensor | float]:
        real = batch
        fake = ctx.models["G"](torch.randn(len(real), 64, device=ctx.device))
        d_loss = ...(ctx.models["D"](real), ctx.models["D"](fake.detach()))
        ctx.update("D", d_loss)                       # backward into D only, clip, step, schedule
        g_loss = ...(ctx.module("D")(fake))           # other models through ctx.module(): no DDP hooks
        ctx.update("G", g_loss)
        return {"d_loss": d_loss, "g_loss": g_loss}   # logged (mean over micro-batches, steps and ranks)

The Trainer owns everything else: device placement, mixed precision, gradient accumulation, clipping, EMA,
schedulers, seeding, the data order, logging, samples, evaluation, early stopping, the NaN guard, checkpoints,
exact resume and saving on SIGTERM/SIGUSR1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import send_to_device
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from gencore.checkpoint import (
    atomic_dir,
    atomic_write_text,
    latest_checkpoint,
    list_checkpoints,
    load_tree,
    prune_checkpoints,
    save_tree,
    verify_dir,
)
from gencore.config import config_changes, fill_added_keys, migrate_keys, to_dict
from gencore.distributed import broadcast_buffers, replica_digest
from gencore.errors import CheckpointError, ConfigError, NonFiniteLossError, RunLockedError
from gencore.progress import progress_enabled
from gencore.train.config import TrainConfig
from gencore.train.ema import EMA
from gencore.train.hooks import ExportHook, TrainerHook
from gencore.train.logger import MetricsLogger, format_line
from gencore.train.rundir import check_fresh_start, run_lock
from gencore.train.sampler import ShardedBatchSampler
from gencore.train.trackers import end_trackers, log_image, make_trackers, start_trackers

__all__ = ["Trainer", "StepContext", "FitResult", "PREEMPTED_EXIT_CODE", "INTERRUPTED_EXIT_CODE", "seed_everything"]

#: Exit code after a pre-emption signal was handled and a checkpoint saved (EX_TEMPFAIL: "try again").
PREEMPTED_EXIT_CODE = 75
#: Exit code after Ctrl-C (SIGINT) was handled and a checkpoint saved (128 + SIGINT, what shells report).
INTERRUPTED_EXIT_CODE = 130

StepFn = Callable[["StepContext", Any], Mapping[str, Any]]

#: The producer recorded in a training checkpoint's manifest (see gencore.checkpoint.check_output_dir).
CHECKPOINT_PRODUCER = "gencore checkpoint"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices); call before building models so every rank builds the same."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class FitResult:
    """How a :meth:`Trainer.fit` call ended."""

    step: int
    epoch: int
    reason: str  # "max_steps", "max_epochs", "early_stop", "preempted" (SIGTERM/SIGUSR1), "interrupted" (SIGINT)
    checkpoint: Path | None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        """True when training is over (not stopped by a signal): the time to export the model."""
        return self.reason not in ("preempted", "interrupted")

    @property
    def exit_code(self) -> int:
        """0 when training is over; :data:`PREEMPTED_EXIT_CODE` after a pre-emption signal (resume it); 130 after
        Ctrl-C (SIGINT), as a shell reports an interrupted command."""
        return {"preempted": PREEMPTED_EXIT_CODE, "interrupted": INTERRUPTED_EXIT_CODE}.get(self.reason, 0)


class StepContext:
    """What a step function sees: models, device, and :meth:`update` to apply a loss to one model."""

    def __init__(self, trainer: Trainer) -> None:
        self._t = trainer
        self.sync = True  # True on the micro-batch that completes an update

    @property
    def models(self) -> dict[str, nn.Module]:
        """The prepared models (DDP-wrapped under several processes): call the one being trained through here."""
        return self._t.models

    def module(self, name: str) -> nn.Module:
        """The bare model ``name``: use it for models that the current :meth:`update` does not train."""
        return self._t.unwrap(name)

    @property
    def device(self) -> torch.device:
        return self._t.accelerator.device

    @property
    def step(self) -> int:
        """Updates completed so far."""
        return self._t.step

    @property
    def epoch(self) -> int:
        return self._t.epoch

    @property
    def accelerator(self) -> Accelerator:
        return self._t.accelerator

    def update(self, name: str, loss: torch.Tensor, retain_graph: bool = False) -> None:
        """Backpropagate ``loss`` into model ``name`` only; on the last micro-batch clip, step, schedule, EMA.

        A NaN/inf loss raises :class:`NonFiniteLossError` before any gradient is applied.
        """
        t = self._t
        if t.config.check_finite:
            finite = torch.isfinite(loss.detach()).all()
            if t.accelerator.num_processes > 1:
                finite = t.accelerator.reduce(finite.float().reshape(1), "sum").item() == t.accelerator.num_processes
            if not bool(finite):
                raise NonFiniteLossError(
                    f"non-finite loss for {name!r} at step {t.step + 1} ({loss.detach().float().mean().item()}); "
                    f"parameters were not updated; last good checkpoint: {t.last_checkpoint or 'none yet'}"
                )
        params = t._params[name]
        scaled = loss / t.config.grad_accum_steps if t.config.grad_accum_steps > 1 else loss
        # With several models, restrict the backward pass to this model's parameters, so that a generator
        # loss leaves the discriminator's accumulated gradients alone; a lone model skips that (it costs ~3%).
        restrict = {"inputs": params} if len(t._params) > 1 else {}
        t.accelerator.backward(scaled, retain_graph=retain_graph, **restrict)
        if not self.sync:
            return
        opt = t.optimizers[name]
        bare = getattr(opt, "optimizer", opt)  # under Accelerate's wrapper
        norm = None
        # An optimizer that declares ``clips_grad_norm`` clips to train.grad_clip itself (hvae's skipping needs
        # the norm before clipping); clipping here too would clip twice.
        if t.config.grad_clip is not None and not getattr(bare, "clips_grad_norm", False):
            norm = t.accelerator.clip_grad_norm_(params, t.config.grad_clip)
        # Under fp16 the loss scaler skips non-finite steps itself, and an optimizer that declares
        # ``skips_nonfinite`` (hvae's VDVAE-style skipping) decides for itself; otherwise a NaN/inf gradient,
        # e.g. from a NaN learning-rate warm-up factor or an overflow in backward, is never applied.
        if t.config.check_finite and t.accelerator.scaler is None and not getattr(bare, "skips_nonfinite", False):
            self._check_gradients(name, params, norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if name in t.schedulers and not t.accelerator.optimizer_step_was_skipped:
            t.schedulers[name].step()
        if name in t.ema:
            t.ema[name].update(t.unwrap(name))


    def _check_gradients(self, name: str, params: list[torch.Tensor], norm: torch.Tensor | None) -> None:
        t = self._t
        if norm is None:
            grads = [p.grad for p in params if p.grad is not None]
            if not grads:
                return
            finite = torch.stack([torch.isfinite(g).all() for g in grads]).all()
        else:
            finite = torch.isfinite(torch.as_tensor(norm))
        if t.accelerator.num_processes > 1:  # gradients are all-reduced already; agree anyway, cheaply
            finite = t.accelerator.reduce(finite.float().reshape(1).to(t.accelerator.device), "sum").item() == (
                t.accelerator.num_processes
            )
        if not bool(finite):
            t.optimizers[name].zero_grad(set_to_none=True)
            raise NonFiniteLossError(
                f"non-finite gradient for {name!r} at step {t.step + 1}; parameters were not updated; last good "
                f"checkpoint: {t.last_checkpoint or 'none yet'}"
            )


class Trainer:
    """Trains ``models`` with ``optimizers`` by calling ``step_fn(ctx, batch)`` on batches of ``train_data``.

    Args:
        config: the shared training options.
        models: named models; optimizers and EMA refer to them by name.
        optimizers: one optimizer per trained model, same names as in ``models``.
        step_fn: computes losses for one micro-batch and calls ``ctx.update(name, loss)``; returns values to log.
        train_data: a map-style data set; the Trainer batches, shuffles and shards it.
        schedulers: LR schedulers by model name, stepped after each update of that model.
        ema: model name -> EMA decay; the averaged copy is ``trainer.ema[name].shadow``.
        sample_fn: ``sample_fn(trainer) -> images`` in [0, 1] (B, C, H, W) or a dict of them; main process only.
        eval_fn: ``eval_fn(trainer) -> {metric: value}``, run on every process after rank 0's buffers were
            broadcast; split its work with :func:`gencore.distributed.sharded_map`, and return the same values on
            every process (early stopping reads them everywhere).
        run_config: the package's full config (its dataclass, or a dict of it), saved as ``config.json`` in the
            run and in every checkpoint. Given as the dataclass, a checkpoint's config of an earlier layout is
            compared on resume with its renamed keys read under their new names.
        collate_fn: optional DataLoader collate function.
        console_columns: the logged names shown in the console line (all of them by default); ``metrics.csv``
            and the trackers of ``train.report_to`` always get every value. Evaluation values are named
            ``eval/<metric>``.
        export_fn: ``export_fn(trainer, result)`` at the end of every :meth:`fit`, on the main process, still under
            the run lock and the signal handlers: write ``model/`` there (check ``result.completed``). The same as
            an :class:`~gencore.train.hooks.ExportHook` after ``hooks``.
        hooks: :class:`~gencore.train.hooks.TrainerHook` s: on each evaluation (with its metrics), after each
            checkpoint, at the end of fit; their state is saved in checkpoints.
    """

    def __init__(
        self,
        config: TrainConfig,
        models: Mapping[str, nn.Module],
        optimizers: Mapping[str, torch.optim.Optimizer],
        step_fn: StepFn,
        train_data: Dataset,
        *,
        schedulers: Mapping[str, Any] | None = None,
        ema: Mapping[str, float] | None = None,
        sample_fn: Callable[[Trainer], Any] | None = None,
        eval_fn: Callable[[Trainer], Mapping[str, float]] | None = None,
        run_config: Any = None,
        collate_fn: Callable | None = None,
        console_columns: Sequence[str] | None = None,
        export_fn: Callable[[Trainer, FitResult], None] | None = None,
        hooks: Sequence[TrainerHook] = (),
    ) -> None:
        unknown = set(optimizers) - set(models)
        if unknown:
            raise ValueError(f"optimizers for unknown models: {sorted(unknown)}")
        self.config = config
        self.run_dir = Path(config.output_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.step_fn, self.sample_fn, self.eval_fn = step_fn, sample_fn, eval_fn
        self.hooks: list[TrainerHook] = [*hooks, *([ExportHook(export_fn)] if export_fn is not None else [])]
        self.console_columns = list(console_columns) if console_columns is not None else None
        self._config_class = type(run_config) if dataclasses.is_dataclass(run_config) else None
        if self._config_class is not None:
            self.run_config = to_dict(run_config)
        else:
            self.run_config = dict(run_config or {"train": config.__dict__})
        # the package that owns the run config names the W&B project / MLflow experiment ("dcgan-tutorial")
        owner = self._config_class.__module__.split(".")[0] if self._config_class is not None else "gencore"
        self.project = owner.replace("_", "-")
        self.accelerator = _make_accelerator(config, make_trackers(config.report_to, self.run_dir, self.project))
        acc = self.accelerator

        names = list(models)
        if config.channels_last:  # before prepare: DDP checks that all ranks' parameters have the same layout
            models = {n: m.to(memory_format=torch.channels_last) for n, m in models.items()}
        prepared = acc.prepare(*[models[n] for n in names], *[optimizers[n] for n in optimizers])
        prepared = prepared if isinstance(prepared, (list, tuple)) else (prepared,)
        self.models: dict[str, nn.Module] = dict(zip(names, prepared[: len(names)]))
        self.optimizers = dict(zip(optimizers, prepared[len(names) :]))
        self.schedulers = dict(schedulers or {})
        self._params = {n: [p for p in self.unwrap(n).parameters() if p.requires_grad] for n in names}
        self.ema = {n: EMA(self.unwrap(n), d) for n, d in (ema or {}).items()}

        self.sampler = ShardedBatchSampler(
            len(train_data), config.batch_size, acc.process_index, acc.num_processes,
            seed=config.seed, shuffle=config.shuffle, drop_last=config.drop_last,
        )  # fmt: skip
        # The loader gets its own generator so that creating an iterator never draws from the global RNG.
        self.loader = DataLoader(
            train_data, batch_sampler=self.sampler, num_workers=config.num_workers, collate_fn=collate_fn,
            generator=torch.Generator().manual_seed(config.seed), persistent_workers=False,
        )  # fmt: skip
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best: float | None = None
        self.bad_evals = 0
        self.elapsed = 0.0  # training wall time in seconds, summed over resumed segments
        self._t_fit = time.perf_counter()
        self.last_checkpoint: Path | None = None
        self.last_metrics: dict[str, float] = {}
        self._signal: int | None = None
        self._saving = False  # a checkpoint is being written: a forced Ctrl-C waits for it
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0
        self._t_log, self._last_log_step = time.perf_counter(), 0
        self.logger: MetricsLogger | None = None
        self._evaluated_at = self._sampled_at = -1  # the step of the latest evaluation / sample grid

    # --- small helpers ---------------------------------------------------------------------------------------

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def unwrap(self, name: str) -> nn.Module:
        """The bare module of model ``name`` (no DDP or torch.compile wrapper: its state dict has the plain keys)."""
        return self.accelerator.unwrap_model(self.models[name], keep_torch_compile=False)

    @property
    def steps_per_epoch(self) -> int:
        """Updates in one pass over the data on each process (micro-batches / accumulation)."""
        return len(self.sampler) // self.config.grad_accum_steps

    @property
    def total_steps(self) -> int:
        """Updates the run will make: ``max_steps``, or fewer when ``max_epochs`` ends it first."""
        if self.config.max_epochs is None:
            return self.config.max_steps
        return min(self.config.max_steps, self.config.max_epochs * max(self.steps_per_epoch, 1))

    def training_record(
        self, result: FitResult | None = None, weights_step: int | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """How the model exported now was trained, for ``save_pretrained(..., training=...)``: data settings,
        seed, updates, how the run stopped (``result``), the step its weights are from (``weights_step``: now by
        default) and that step's last evaluation, or ``metrics`` (:func:`gencore.modelcard.training_record`)."""
        from gencore.modelcard import training_record

        return training_record(self.run_dir, self.run_config, updates=self.step, epochs=self.epoch,
                               reason=result.reason if result is not None else None, weights_step=weights_step,
                               metrics=metrics)  # fmt: skip

    def elapsed_s(self) -> float:
        """Seconds of training so far, including the segments before a resume."""
        return self.elapsed + time.perf_counter() - self._t_fit

    def print(self, message: str) -> None:
        """Print once (main process), without breaking the progress bar."""
        if self.is_main:
            tqdm.write(message)

    def _stateful_modules(self) -> list[nn.Module]:
        """The bare models and EMA copies: everything whose buffers must agree across processes."""
        return [self.unwrap(n) for n in self.models] + [e.shadow for e in self.ema.values()]

    def _any(self, flag: bool) -> bool:
        if self.accelerator.num_processes == 1:
            return flag
        t = torch.tensor([float(flag)], device=self.accelerator.device)
        return bool(self.accelerator.reduce(t, "sum").item() > 0)

    # --- state -------------------------------------------------------------------------------------------------

    def _rng_state(self) -> dict[str, Any]:
        state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
        if torch.cuda.is_available() and self.accelerator.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.accelerator.device)
        return state

    def _set_rng_state(self, state: dict[str, Any]) -> None:
        random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])
        if "cuda" in state and self.accelerator.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"], self.accelerator.device)

    @contextlib.contextmanager
    def _rng_isolated(self) -> Iterator[None]:
        """Sampling and evaluation draw from the RNGs but must not shift training's random streams: the streams
        are restored afterwards, so a run with and without them (or resumed between them) trains the same."""
        state = self._rng_state()
        try:
            yield
        finally:
            self._set_rng_state(state)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (RNG state of this process only)."""
        scaler = self.accelerator.scaler
        return {
            "models": {n: self.unwrap(n).state_dict() for n in self.models},
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "ema": {n: e.state_dict() for n, e in self.ema.items()},
            "hooks": {_hook_key(i, h): h.state_dict() for i, h in enumerate(self.hooks)},
            "scaler": scaler.state_dict() if scaler is not None else None,
            "trainer": {
                "step": self.step,
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch,
                "best": self.best,
                "bad_evals": self.bad_evals,
                "elapsed": self.elapsed_s(),
                "world_size": self.accelerator.num_processes,
            },  # fmt: skip
        }

    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/step_N`` atomically (main process), prune old ones; collective over processes."""
        acc = self.accelerator
        rngs, digests, state = [self._rng_state()], None, None
        if acc.num_processes > 1:
            from accelerate.utils import gather_object

            # Rank 0's buffers are the ones saved; giving them to every rank keeps a resumed run and an unbroken
            # one alike, and lets the fingerprints below compare whole states.
            broadcast_buffers(acc, self._stateful_modules())
            state = self.state_dict()
            gathered = gather_object([(self._rng_state(), replica_digest(state))])
            rngs, digests = [rng for rng, _ in gathered], [digest for _, digest in gathered]
            if len(set(digests)) > 1:
                self.print(f"warning: at step {self.step} the processes hold different weights or optimizer state")
        path = self.ckpt_dir / f"step_{self.step:06d}"
        poisoned = self._nonfinite_weights()
        if self._any(poisoned is not None):
            raise NonFiniteLossError(
                f"{poisoned or 'a model on another process'} holds non-finite weights at step {self.step}: no "
                f"checkpoint written; last good checkpoint: {self.last_checkpoint or 'none yet'}"
            )
        error: BaseException | None = None
        if self.is_main:
            self._saving = True
            try:
                tree = state if state is not None else self.state_dict()
                tree["rng"] = rngs
                if digests is not None:  # one fingerprint per rank (gencore.distributed.replica_digest)
                    tree["rank_digests"] = digests
                with atomic_dir(path, producer=CHECKPOINT_PRODUCER) as tmp:
                    save_tree(tree, tmp)
                    (tmp / "config.json").write_text(json.dumps(self.run_config, indent=2, default=str) + "\n")
                prune_checkpoints(self.ckpt_dir, self.config.keep_checkpoints)
            except BaseException as exc:  # noqa: BLE001 - re-raised below on every process
                error = exc
            finally:
                self._saving = False
        if self._any(error is not None):
            if error is not None:
                raise CheckpointError(f"could not save checkpoint {path}: {error}") from error
            raise CheckpointError(f"could not save checkpoint {path} (the main process failed)")
        self.last_checkpoint = path
        for hook in self.hooks:
            hook.on_checkpoint(self, path)
        return path

    def _nonfinite_weights(self) -> str | None:
        """The name of a model (or EMA copy) holding a NaN/inf parameter or buffer, or None: a checkpoint is never
        written from poisoned weights, so "last good checkpoint" stays true."""
        named = [(n, self.unwrap(n)) for n in self.models] + [(f"EMA of {n}", e.shadow) for n, e in self.ema.items()]
        for name, module in named:
            tensors = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
            if tensors and not bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
                return repr(name) if not name.startswith("EMA") else name
        return None

    def _config_changes(self, checkpoint: Path) -> list[str]:
        """The config keys that differ from the ones the checkpoint was trained with (``key: old -> new``)."""
        saved = checkpoint / "config.json"
        if not saved.is_file():
            return []
        try:
            old = json.loads(saved.read_text())
        except (OSError, ValueError):
            return []  # verified already; an unreadable copy of the config is no reason to stop a resume
        if self._config_class is not None and isinstance(old, dict):
            try:
                old = fill_added_keys(self._config_class, migrate_keys(self._config_class, old, note=None))
            except ConfigError:
                pass  # compared as saved: the differences shown then include the old names
        return config_changes(old, json.loads(json.dumps(self.run_config, default=str)))

    def _report_config_changes(self, checkpoint: Path) -> None:
        """Say which config keys differ: extending a run (more steps) is what resuming is for, but a key left off
        the command line would otherwise change silently."""
        changes = self._config_changes(checkpoint)
        if changes:
            self.print(f"note: this run's config differs from {checkpoint.name}'s: " + "; ".join(changes))

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore the full state saved by :meth:`save_checkpoint` (verified first)."""
        path = Path(path)
        verify_dir(path)
        tree = load_tree(path)
        if not isinstance(tree, dict) or not all(
            isinstance(tree.get(k), dict) for k in ("models", "optimizers", "schedulers", "ema", "trainer")
        ) or not isinstance(tree.get("rng"), list):
            raise _BadState(f"{path}/state.json is not a training state (tables missing or of the wrong type)")
        try:
            _check_progress(tree["trainer"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _BadState(f"{path}/state.json is not a training state of this version ({exc!r})") from None
        try:
            for n, sd in tree["models"].items():
                self.unwrap(n).load_state_dict(sd)
            for n, sd in tree["optimizers"].items():
                self.optimizers[n].load_state_dict(sd)
            for n, sd in tree["schedulers"].items():
                self.schedulers[n].load_state_dict(sd)
            for n, sd in tree["ema"].items():
                self.ema[n].load_state_dict(sd)
            if tree["scaler"] is not None and self.accelerator.scaler is not None:
                self.accelerator.scaler.load_state_dict(tree["scaler"])
            saved_hooks = tree.get("hooks") or {}  # absent in checkpoints of earlier versions
            for i, hook in enumerate(self.hooks):
                if _hook_key(i, hook) in saved_hooks:
                    hook.load_state_dict(saved_hooks[_hook_key(i, hook)])
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as exc:
            lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [repr(exc)]
            detail = " ".join(lines[:2]) if lines[0].endswith(":") else lines[0]  # torch: "Error(s) in ...:" first
            if len(detail) > 300:
                detail = detail[:297] + "..."
            # a state that does not fit is nearly always a changed architecture key: name it
            changes = self._config_changes(path)
            hint = f" (the config differs from the checkpoint's: {'; '.join(changes)})" if changes else ""
            raise CheckpointError(f"{path} does not fit this run's models/optimizers{hint}: {detail}") from None
        try:
            self._restore_progress(tree, path)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise CheckpointError(f"{path}/state.json is not a training state of this version ({exc!r})") from None

    def _restore_progress(self, tree: dict[str, Any], path: Path) -> None:
        state = tree["trainer"]
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.best, self.bad_evals = state["best"], state["bad_evals"]
        self.elapsed, self._t_fit = float(state.get("elapsed", 0.0)), time.perf_counter()
        rngs = tree["rng"]
        if len(rngs) == self.accelerator.num_processes:
            self._set_rng_state(rngs[self.accelerator.process_index])
        else:
            self.print(
                f"warning: {path} was saved by {len(rngs)} process(es), this run has "
                f"{self.accelerator.num_processes}: random streams are re-seeded, resume is not bitwise exact"
            )
            seed_everything(self.config.seed + 7919 * self.step + self.accelerator.process_index)
        self.last_checkpoint = path

    def resolve_resume(self, resume: str | Path | None) -> Path | None:
        """``None`` -> fresh start; ``"auto"`` -> newest intact checkpoint of this run, if any; else a path."""
        if resume is None or str(resume) == "":
            return None
        if str(resume) == "auto":
            return latest_checkpoint(self.ckpt_dir, warn=self.print)
        path = Path(resume)
        if not path.exists():
            raise CheckpointError(f"checkpoint not found: {path}")
        return path

    # --- the loop ----------------------------------------------------------------------------------------------

    def fit(self, resume: str | Path | None = None) -> FitResult:
        """Train until ``max_steps``/``max_epochs``, early stop or a signal; returns how it ended.

        For the whole call the run directory is locked (one training per directory) and SIGTERM/SIGUSR1/SIGINT
        only set a flag: the loop saves a checkpoint at the next step boundary and stops, and a signal that
        arrives while a checkpoint, the final evaluation or the export is being written lets it finish. The
        ``export_fn`` given to the Trainer runs at the end, on the main process, inside that protection.
        """
        with self._locked(), _signal_flag(self):
            try:
                result = self._fit(resume)
                if self.is_main:
                    for hook in self.hooks:
                        hook.on_fit_end(self, result)
            except BaseException:
                end_trackers(self.accelerator, "failed")
                raise
            end_trackers(self.accelerator, "completed" if result.completed else "stopped")
            self.accelerator.wait_for_everyone()
        return result

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The run directory's lock on the main process; a refusal stops every process (no rank left waiting)."""
        error: BaseException | None = None
        with contextlib.ExitStack() as stack:
            if self.is_main:
                try:
                    stack.enter_context(run_lock(self.run_dir))
                except RunLockedError as exc:
                    error = exc
            if self._any(error is not None):
                raise error if error is not None else RunLockedError(f"{self.run_dir} is in use by another process")
            yield

    def _fit(self, resume: str | Path | None) -> FitResult:
        cfg, acc = self.config, self.accelerator
        start = self.resolve_resume(resume)
        if start is None:  # with --resume auto and no intact checkpoint: a fresh start, over damaged ones only
            check_fresh_start(self.run_dir, list_checkpoints(self.ckpt_dir) if resume is None else [])
        if start is None:
            seed_everything(cfg.seed + acc.process_index)
            self.elapsed, self._t_fit = 0.0, time.perf_counter()
        else:
            start = self._load_resume(start, auto=str(resume) == "auto")
            self.print(f"resumed from {start} at step {self.step}")
            self._report_config_changes(Path(start))
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.run_dir / "config.json", json.dumps(self.run_config, indent=2, default=str) + "\n")
            self.logger = MetricsLogger(self.run_dir, resume_step=self.step if start else None, warn=self.print)
            start_trackers(acc, self.run_dir, self.project, self.run_config, self.step if start else None)
        reason = "max_steps" if self.step >= cfg.max_steps else None
        if reason is None and cfg.patience and self.bad_evals >= cfg.patience:
            reason = "early_stop"  # resuming a run that already stopped early does not train it further
        # the bar only on a terminal: in a Slurm log or a pipe its carriage returns are noise (the console lines
        # every log_every updates stay)
        shown = self.is_main and cfg.progress_bar and progress_enabled()
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not shown,
                   dynamic_ncols=True, desc="train")  # fmt: skip
        ctx = StepContext(self)
        try:
            reason = self._loop(ctx, bar, reason)
        except BaseException:
            if self.logger is not None:
                self.logger.close()
            raise
        finally:
            bar.close()
        return self._finish(reason)

    def _load_resume(self, start: Path, auto: bool) -> Path:
        """Load ``start``; with ``--resume auto`` a checkpoint that passes its manifest but whose state has the
        wrong structure is skipped for the next older one, as a damaged one is (a state that does not fit this
        run's models is no damage: that error stands)."""
        try:
            self.load_checkpoint(start)
            return start
        except _BadState as exc:
            if not auto:
                raise
            first = exc
        self.print(f"skipping damaged checkpoint: {first}")
        for path in reversed([p for p in list_checkpoints(self.ckpt_dir) if p.name < start.name]):
            try:
                verify_dir(path)
                self.load_checkpoint(path)
                return path
            except CheckpointError as exc:
                self.print(f"skipping damaged checkpoint: {exc}")
        raise first

    def _loop(self, ctx: StepContext, bar: tqdm, reason: str | None) -> str:
        cfg, acc = self.config, self.accelerator
        micro = 0
        self._t_log, self._last_log_step = time.perf_counter(), self.step
        while reason is None:
            if cfg.max_epochs is not None and self.epoch >= cfg.max_epochs:
                return "max_epochs"
            self.sampler.set_epoch(self.epoch, self.batch_in_epoch)
            for batch in self.loader:
                self.batch_in_epoch += 1
                micro += 1
                ctx.sync = micro % cfg.grad_accum_steps == 0
                batch = send_to_device(batch, acc.device)
                with contextlib.ExitStack() as stack:
                    if not ctx.sync:
                        for m in self.models.values():
                            stack.enter_context(acc.no_sync(m))
                    values = self.step_fn(ctx, batch)
                self._accumulate(values)
                if not ctx.sync:
                    continue
                self.step += 1
                bar.update(1)
                reason = self._after_step(bar)
                if reason is not None:
                    return reason
            self.epoch += 1
            self.batch_in_epoch = 0
        return reason

    def _accumulate(self, values: Mapping[str, Any]) -> None:
        device = self.accelerator.device
        for key, value in values.items():
            # every sum on the device: the log stacks them, and a CPU tensor (from a Python float such as a
            # warm-up factor) among GPU ones would make that stack fail at the first log step on a GPU
            if isinstance(value, torch.Tensor):
                v = value.detach().float().mean().to(device)
            else:
                v = torch.tensor(float(value), device=device)
            self._sums[key] = self._sums.get(key, 0.0) + v
        self._count += 1

    def _due(self, every_steps: int, every_epochs: int) -> bool:
        """Whether a cadence falls on the current step: every N updates, or at the last update of every N-th
        epoch (the epoch cadences run there, before the epoch counter ticks; a state saved after the tick, at
        batch 0 of the next epoch, counts as that end too)."""
        if every_steps and self.step % every_steps == 0:
            return True
        if not every_epochs:
            return False
        if self.batch_in_epoch + self.config.grad_accum_steps > len(self.sampler):
            return (self.epoch + 1) % every_epochs == 0
        return self.batch_in_epoch == 0 and self.step > 0 and self.epoch % every_epochs == 0

    def _after_step(self, bar: tqdm) -> str | None:
        cfg = self.config
        epoch_end = self.batch_in_epoch + cfg.grad_accum_steps > len(self.sampler)
        due = self._due

        # Evaluation first, so that a step that both logs and evaluates gives one console line and one CSV row.
        eval_values, stop_early = None, False
        if due(cfg.eval_every, cfg.eval_every_epochs):
            eval_values, stop_early = self._evaluate()
        if self.step % cfg.log_every == 0:
            self._log_train(bar, eval_values)
        elif eval_values is not None:
            self._log_values(eval_values)
        if due(cfg.sample_every, cfg.sample_every_epochs):
            self.write_samples()
        if due(cfg.checkpoint_every, cfg.checkpoint_every_epochs):
            self.save_checkpoint()
        # a run that has reached its end finishes (final evaluation, export) even when a signal came meanwhile
        if stop_early:
            return "early_stop"
        if self.step >= cfg.max_steps:
            return "max_steps"
        last_epoch = cfg.max_epochs is not None and epoch_end and self.epoch + 1 >= cfg.max_epochs
        if not last_epoch and self._any(self._signal is not None):
            return "interrupted" if self._signal == signal.SIGINT else "preempted"
        return None

    def _log_train(self, bar: tqdm | _NullBar, extra: Mapping[str, float] | None = None) -> None:
        keys = sorted(self._sums)
        if keys:
            means = torch.stack([torch.as_tensor(self._sums[k]).float() for k in keys]) / max(self._count, 1)
            means = self.accelerator.reduce(means.to(self.accelerator.device), "mean").cpu()
            values = {k: float(v) for k, v in zip(keys, means)}
        else:
            values = {}
        self._sums, self._count = {}, 0
        for name, opt in self.optimizers.items():
            values[f"lr_{name}"] = float(opt.param_groups[0]["lr"])
        now = time.perf_counter()
        values["steps_per_s"] = (self.step - self._last_log_step) / max(now - self._t_log, 1e-9)
        self._t_log, self._last_log_step = now, self.step
        values["epoch"] = self.epoch
        values["elapsed_s"] = round(self.elapsed_s(), 2)
        if self.accelerator.device.type == "cuda":  # peak of this process since it started
            values["gpu_mem_gib"] = torch.cuda.max_memory_allocated(self.accelerator.device) / 2**30
        values.update(extra or {})
        if self.is_main:
            bar.set_postfix({k: f"{v:.3g}" for k, v in values.items() if not k.startswith("lr_")}, refresh=False)
        self._log_values(values)

    def _log_values(self, values: Mapping[str, float]) -> None:
        if not self.is_main:
            return
        shown = values if self.console_columns is None else {k: values[k] for k in self.console_columns if k in values}
        self.print(format_line(self.step, self.total_steps, dict(shown)))
        self.logger.log(self.step, dict(values))
        self.accelerator.log(dict(values), step=self.step)

    def write_samples(self) -> Path | None:
        """Call ``sample_fn`` and write ``samples/step_N.png`` (main process)."""
        if self.sample_fn is None or not self.is_main:
            return None
        from gencore.viz import save_image_grid

        self._sampled_at = self.step
        with torch.no_grad(), self._rng_isolated():
            images = self.sample_fn(self)
        items = images.items() if isinstance(images, Mapping) else [("", images)]
        path = None
        for name, imgs in items:
            stem = f"{name}_step_{self.step:06d}" if name else f"step_{self.step:06d}"
            path = save_image_grid(imgs, self.run_dir / "samples" / f"{stem}.png")
            log_image(self.accelerator, f"samples/{name}" if name else "samples", path, self.step)
        return path

    def evaluate(self) -> bool:
        """Run ``eval_fn``, log its metrics, update early stopping; returns True when patience ran out.

        Collective when there are several processes (buffers are broadcast first): call it on every process.
        """
        values, stop = self._evaluate()
        if values is not None:
            self._log_values(values)
        return stop

    def _evaluate(self) -> tuple[dict[str, float] | None, bool]:
        if self.eval_fn is None:
            return None, False
        self._evaluated_at = self.step
        # DDP syncs buffers only when a forward pass starts: until then each rank has its own BatchNorm statistics,
        # and an evaluation split over ranks must see rank 0's everywhere (the ones a checkpoint keeps).
        broadcast_buffers(self.accelerator, self._stateful_modules())
        with torch.no_grad(), self._rng_isolated():
            metrics = {k: float(v) for k, v in self.eval_fn(self).items()}
        self.last_metrics = metrics
        values = {f"eval/{k}": v for k, v in metrics.items()}
        key = self.config.early_stop_metric
        if not key:
            for hook in self.hooks:
                hook.on_evaluate(self, metrics, None)
            return values, False
        if key not in metrics:
            raise ConfigError(f"early_stop_metric {key!r} is not among the evaluation metrics {sorted(metrics)}")
        value = metrics[key]
        sign = 1.0 if self.config.early_stop_mode == "min" else -1.0
        improved = math.isfinite(value) and (self.best is None or sign * value < sign * self.best)
        if improved:
            self.best, self.bad_evals = value, 0
        else:
            self.bad_evals += 1
        values["eval/bad_evals"] = self.bad_evals
        for hook in self.hooks:
            hook.on_evaluate(self, metrics, improved)
        return values, bool(self.config.patience) and self.bad_evals >= self.config.patience

    def _finish(self, reason: str) -> FitResult:
        cfg = self.config
        stopped = reason in ("preempted", "interrupted")
        if not stopped:
            if self.step % cfg.log_every and self._count:
                self._log_train(_NullBar())
            # what a cadence did at this step is done, also when it was done before a resume
            if self._evaluated_at != self.step and not self._due(cfg.eval_every, cfg.eval_every_epochs):
                self.evaluate()
            if self._sampled_at != self.step and not self._due(cfg.sample_every, cfg.sample_every_epochs):
                self.write_samples()
        if self.last_checkpoint is None or self.last_checkpoint.name != f"step_{self.step:06d}":
            self.save_checkpoint()
        if stopped:
            # on a rank that was not signalled itself, the stop came from another rank through the shared flag
            why = f"signal {self._signal}" if self._signal is not None else "a signal to another process"
            self.print(f"stopped by {why}: saved {self.last_checkpoint}; resume with --resume auto")
        if self.logger is not None:
            self.logger.close()
            if self.is_main:
                from gencore.viz import plot_metrics

                plot_metrics(self.run_dir / "metrics.csv", self.run_dir / "losses.png")
        return FitResult(self.step, self.epoch, reason, self.last_checkpoint, dict(self.last_metrics))


def _hook_key(index: int, hook: TrainerHook) -> str:
    """Where a hook's state sits in a checkpoint: its position and class, so a reordered list is noticed."""
    return f"{index}:{type(hook).__name__}"


class _BadState(CheckpointError):
    """A verified checkpoint whose state is not a training state (wrong structure): skipped by resume auto."""


def _check_progress(state: dict[str, Any]) -> None:
    """Raise ValueError/KeyError unless the ``trainer`` table of a checkpoint has counters of the right types."""
    for key in ("step", "epoch", "batch_in_epoch", "bad_evals"):
        if not isinstance(state[key], int) or isinstance(state[key], bool) or state[key] < 0:
            raise ValueError(f"trainer.{key} = {state[key]!r}")
    if state["best"] is not None and (not isinstance(state["best"], (int, float)) or isinstance(state["best"], bool)):
        raise ValueError(f"trainer.best = {state['best']!r}")


class _NullBar:
    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass


#: Ctrl-C presses that abort at once instead of waiting for the checkpoint (never while one is being written).
_FORCE_AFTER_SIGINTS = 3


@contextlib.contextmanager
def _signal_flag(trainer: Trainer):
    """While a fit runs, SIGTERM/SIGUSR1/SIGINT only set a flag; the loop saves and stops at the next step boundary.

    A repeated signal changes nothing, so a second SIGTERM cannot cut the checkpoint it asked for. Ctrl-C pressed
    three times aborts without saving (KeyboardInterrupt), except while a checkpoint is being written.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = ("SIGTERM", "SIGUSR1", "SIGINT")
    sigs = [getattr(signal, n) for n in names if getattr(signal, n, None) is not None]
    presses = [0]

    def handler(signum: int, frame: Any) -> None:
        if signum == signal.SIGINT:
            presses[0] += 1
            if presses[0] >= _FORCE_AFTER_SIGINTS and not trainer._saving:
                raise KeyboardInterrupt
            if presses[0] == 1:
                trainer.print("interrupted: saving a checkpoint after this step (Ctrl-C twice more to quit without)")
        if trainer._signal is None:
            trainer._signal = signum

    old = {s: signal.signal(s, handler) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _make_accelerator(config: TrainConfig, trackers: Sequence[Any] = ()) -> Accelerator:
    """A fresh Accelerator logging to ``trackers`` (unstarted); the singleton state of an earlier Trainer in this
    process is reset first."""
    from accelerate.state import AcceleratorState, GradientState

    # Accelerate keeps process-wide singletons and refuses a second Accelerator with other settings (a second
    # Trainer in one process: tests, notebooks, a study). It has no public reset; its own test utilities call this
    # one. Checked by name so that a release without it degrades to that refusal instead of an AttributeError.
    for state in (AcceleratorState, GradientState):
        reset = getattr(state, "_reset_state", None)
        if reset is not None:
            reset()
    # The config decides precision and compilation, also under `accelerate launch --mixed_precision/--dynamo_backend`.
    try:
        acc = Accelerator(cpu=config.cpu, mixed_precision=config.precision, step_scheduler_with_optimizer=False,
                          dynamo_backend=config.compile.upper(), log_with=list(trackers) or None)  # fmt: skip
    except ValueError as exc:
        from gencore.errors import ConfigError

        raise ConfigError(
            f"cannot set up training with precision={config.precision!r}, compile={config.compile!r}: {_one_line(exc)}"
        ) from None
    overridden = _overridden_launch_flags(config)
    if overridden and acc.is_main_process:
        warnings.warn(
            f"accelerate launch {overridden} is overridden by the run's train.precision={config.precision!r} and "
            f"train.compile={config.compile!r}: give --precision / --compile to the training command instead",
            stacklevel=3,
        )
    return acc


def _overridden_launch_flags(config: TrainConfig) -> str:
    """The `accelerate launch` precision and compile flags (seen in the environment it sets) that the config
    overrides; the launcher's defaults ("no") are not counted."""
    launched = {"mixed_precision": os.environ.get("ACCELERATE_MIXED_PRECISION", "no"),
                "dynamo_backend": os.environ.get("ACCELERATE_DYNAMO_BACKEND", "no")}  # fmt: skip
    ours = {"mixed_precision": config.precision, "dynamo_backend": config.compile}
    return " ".join(f"--{k} {v}" for k, v in launched.items() if v.lower() not in ("no", ours[k].lower()))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
