"""Lifecycle hooks of the :class:`~gencore.train.Trainer`: what a package adds to training without subclassing the
Trainer or setting attributes on it.

A hook overrides the methods it needs; the Trainer calls them in the order the hooks were given::

    class KeepBest(TrainerHook):
        def on_evaluate(self, trainer, metrics, improved):
            if improved and trainer.is_main:
                trainer.unwrap("M1").save_pretrained(trainer.run_dir / "model")

    Trainer(..., hooks=[KeepBest()], export_fn=export)   # export_fn is an on_fit_end hook

A hook with state of its own returns it from :meth:`state_dict` (plain values and tensors): it is saved in every
checkpoint and given back to :meth:`load_state_dict` on resume, so a resumed run and an unbroken one agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from gencore.train.trainer import FitResult, Trainer

__all__ = ["TrainerHook", "ExportHook"]


class TrainerHook:
    """Base class of Trainer hooks; every method does nothing until overridden."""

    def on_evaluate(self, trainer: Trainer, metrics: Mapping[str, float], improved: bool | None) -> None:
        """After each evaluation, on every process (evaluation is collective). ``improved``: whether the watched
        ``early_stop_metric`` reached a new best with it (None when no metric is watched)."""

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        """After a checkpoint was written, on every process (write files on ``trainer.is_main`` only)."""

    def on_fit_end(self, trainer: Trainer, result: FitResult) -> None:
        """At the end of :meth:`Trainer.fit`, on the main process, still under the run lock and the signal handlers:
        the place to export ``model/`` (check ``result.completed``)."""

    def state_dict(self) -> dict[str, Any]:
        """The hook's own state, saved in every checkpoint (empty: nothing saved)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` gave, on resume."""


class ExportHook(TrainerHook):
    """The Trainer's ``export_fn(trainer, result)`` as an ``on_fit_end`` hook."""

    def __init__(self, fn: Callable[[Trainer, FitResult], None]) -> None:
        self.fn = fn

    def on_fit_end(self, trainer: Trainer, result: FitResult) -> None:
        """Call the export function."""
        self.fn(trainer, result)
