"""Helpers for the packages' own tests: compare training states, check that resume is exact."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from gencore.train import Trainer

__all__ = ["trainer_tensors", "assert_same_tensors", "assert_resume_exact"]


def trainer_tensors(trainer: Trainer) -> dict[str, torch.Tensor]:
    """Every model weight, EMA weight and optimizer state tensor of ``trainer``, by name (copies)."""
    out = {f"{n}.{k}": v.detach().clone() for n in trainer.models for k, v in trainer.unwrap(n).state_dict().items()}
    for n, ema in trainer.ema.items():
        out.update({f"ema.{n}.{k}": v.detach().clone() for k, v in ema.state_dict().items()})
    for n, opt in trainer.optimizers.items():
        for i, st in opt.state_dict()["state"].items():
            out.update({f"opt.{n}.{i}.{k}": torch.as_tensor(v).clone() for k, v in st.items()})
    return out


def assert_same_tensors(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Raise AssertionError naming the first tensor that differs (bitwise)."""
    assert got.keys() == expected.keys(), sorted(set(got) ^ set(expected))
    for key, value in expected.items():
        assert torch.equal(got[key], value), f"{key} differs after resume"


def assert_resume_exact(make_trainer: Callable[..., Trainer], root: Path, stop_at: int, total: int) -> None:
    """Train ``total`` steps in one go and, separately, ``stop_at`` steps then resume to ``total``; compare.

    ``make_trainer(output_dir, max_steps)`` must build a fresh, identically seeded Trainer each call.
    """
    full = make_trainer(Path(root) / "unbroken", total)
    full.fit()
    make_trainer(Path(root) / "stopped", stop_at).fit()
    resumed = make_trainer(Path(root) / "stopped", total)
    result = resumed.fit(resume="auto")
    assert result.step == total, result
    assert_same_tensors(trainer_tensors(resumed), trainer_tensors(full))
