"""Trainer hooks and epoch cadences: what packages used to do by subclassing the Trainer or setting attributes."""

from __future__ import annotations

import torch
from torch import nn

from gencore.checkpoint import list_checkpoints, load_tree
from gencore.train import StepContext, TrainConfig, Trainer, TrainerHook


class _Data(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 12

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.full((2,), float(i))


def _step(ctx: StepContext, x: torch.Tensor) -> dict:
    loss = ctx.models["m"](x).pow(2).mean()
    ctx.update("m", loss)
    return {"loss": loss}


class Recorder(TrainerHook):
    """Counts what it saw; its count is its state (saved in checkpoints)."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.evaluations = 0

    def on_evaluate(self, trainer, metrics, improved):  # noqa: ANN001, ANN201
        self.evaluations += 1
        self.events.append(("eval", trainer.step, trainer.epoch, improved))

    def on_checkpoint(self, trainer, path):  # noqa: ANN001, ANN201
        self.events.append(("ckpt", trainer.step, path.name))

    def on_fit_end(self, trainer, result):  # noqa: ANN001, ANN201
        self.events.append(("end", result.reason))

    def state_dict(self) -> dict:
        return {"evaluations": self.evaluations}

    def load_state_dict(self, state) -> None:  # noqa: ANN001
        self.evaluations = state["evaluations"]


def _trainer(run_dir, hook: TrainerHook, **cfg) -> Trainer:
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    options = {"max_steps": 10**9, "max_epochs": 4, "batch_size": 4, "tensorboard": False, "progress_bar": False,
               "checkpoint_every": 0, "eval_every_epochs": 2, "checkpoint_every_epochs": 1, "sample_every_epochs": 2,
               "early_stop_metric": "value", "early_stop_mode": "min"}  # fmt: skip
    values = iter([3.0, 1.0, 2.0, 0.5, 0.4, 0.3])
    return Trainer(TrainConfig(output_dir=str(run_dir), **{**options, **cfg}), {"m": model},
                   {"m": torch.optim.SGD(model.parameters(), 0.01)}, _step, _Data(),
                   eval_fn=lambda t: {"value": next(values)}, sample_fn=lambda t: torch.zeros(1, 1, 4, 4),
                   hooks=[hook])  # fmt: skip


def test_epoch_cadences_and_hook_calls(tmp_path):
    hook = Recorder()
    trainer = _trainer(tmp_path, hook)
    assert trainer.steps_per_epoch == 3 and trainer.total_steps == 12
    result = trainer.fit()
    assert result.reason == "max_epochs" and result.step == 12
    # evaluations at the ends of epochs 2 and 4 (steps 6 and 12), none repeated at the end of fit
    assert [e for e in hook.events if e[0] == "eval"] == [("eval", 6, 1, True), ("eval", 12, 3, True)]
    assert [e[2] for e in hook.events if e[0] == "ckpt"] == [f"step_{s:06d}" for s in (3, 6, 9, 12)]
    assert hook.events[-1] == ("end", "max_epochs")
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step_000006.png", "step_000012.png"]
    # the hook's state is saved in every checkpoint under its position and class
    tree = load_tree(list_checkpoints(tmp_path / "checkpoints")[-1])
    assert tree["hooks"] == {"0:Recorder": {"evaluations": 2}}


def test_hook_state_is_restored_on_resume(tmp_path):
    _trainer(tmp_path, Recorder(), max_epochs=2).fit()
    resumed = Recorder()
    _trainer(tmp_path, resumed).fit(resume="auto")
    assert resumed.evaluations == 2  # 1 restored + 1 more at epoch 4
    assert [e[1] for e in resumed.events if e[0] == "eval"] == [12]


def test_improved_is_none_without_a_watched_metric(tmp_path):
    hook = Recorder()
    _trainer(tmp_path, hook, early_stop_metric=None, max_epochs=2).fit()
    assert [e[3] for e in hook.events if e[0] == "eval"] == [None]


def test_a_finished_run_resumed_does_not_repeat_what_its_cadences_did(tmp_path):
    """Resuming a run that ended on an epoch-cadence step: its evaluation and grid at that step are not redone."""
    _trainer(tmp_path, Recorder()).fit()
    again = Recorder()
    result = _trainer(tmp_path, again).fit(resume="auto")
    assert result.step == 12 and [e for e in again.events if e[0] == "eval"] == []
