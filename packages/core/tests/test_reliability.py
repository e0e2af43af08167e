"""The Trainer's guards for the user's files and runs: gradient and weight NaN guard, export inside fit, the
output-folder rule, umask, damaged metrics.csv, checkpoint state structure, run lock and fresh-start rules."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch
from torch import nn

from gencore.checkpoint import (
    atomic_dir,
    check_output_dir,
    list_checkpoints,
    output_owner,
    save_pretrained,
    verify_dir,
)
from gencore.errors import CheckpointError, ConfigError, NonFiniteLossError, OutputError, RunLockedError
from gencore.train import ExportHook, StepContext, TrainConfig, Trainer
from gencore.train.logger import MetricsLogger, read_metrics
from gencore.train.rundir import check_fresh_start, lock_holder, run_lock


class _Ones(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.ones(2)


def _trainer(run_dir, step, **cfg) -> Trainer:
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    options = {"max_steps": 4, "batch_size": 4, "tensorboard": False, "progress_bar": False, "checkpoint_every": 2}
    config = TrainConfig(output_dir=str(run_dir), **{**options, **cfg})
    return Trainer(config, {"m": model}, {"m": torch.optim.SGD(model.parameters(), 0.1)}, step, _Ones())


def test_a_finite_loss_with_a_nan_gradient_is_never_applied(tmp_path):
    """sqrt(0 * w) is 0, its gradient NaN: the loss check alone let such a step poison the weights."""

    def step(ctx: StepContext, x: torch.Tensor) -> dict:
        out = ctx.models["m"](x).mean()
        loss = out * 0 + (torch.sqrt(ctx.module("m").weight * 0).sum() if ctx.step >= 2 else 0)
        ctx.update("m", loss)
        return {"loss": loss}

    for clip in (None, 1.0):  # the norm comes from clipping when there is clipping, is measured otherwise
        trainer = _trainer(tmp_path / f"clip{clip}", step, grad_clip=clip)
        with pytest.raises(NonFiniteLossError, match="non-finite gradient for 'm' at step 3"):
            trainer.fit()
        assert all(torch.isfinite(p).all() for p in trainer.unwrap("m").parameters())
        assert [p.name for p in list_checkpoints(trainer.ckpt_dir)] == ["step_000002"]


def test_an_optimizer_that_skips_nonfinite_steps_itself_is_left_to_do_so(tmp_path):
    class Skipping(torch.optim.SGD):
        skips_nonfinite = True

        def step(self, closure=None):  # noqa: ANN001, ANN201
            grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
            if all(torch.isfinite(g).all() for g in grads):
                return super().step(closure)
            return None

    def step(ctx: StepContext, x: torch.Tensor) -> dict:
        loss = ctx.models["m"](x).mean() * 0 + torch.sqrt(ctx.module("m").weight * 0).sum()
        ctx.update("m", loss)
        return {"loss": loss}

    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    config = TrainConfig(output_dir=str(tmp_path), max_steps=2, batch_size=4, tensorboard=False, progress_bar=False)
    trainer = Trainer(config, {"m": model}, {"m": Skipping(model.parameters(), 0.1)}, step, _Ones())
    assert trainer.fit().reason == "max_steps"


def test_no_checkpoint_is_written_from_nonfinite_weights(tmp_path):
    def step(ctx: StepContext, x: torch.Tensor) -> dict:
        loss = ctx.models["m"](x).mean()
        ctx.update("m", loss)
        return {"loss": loss}

    trainer = _trainer(tmp_path, step)
    trainer.save_checkpoint()
    with torch.no_grad():
        trainer.unwrap("m").bias.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="'m' holds non-finite weights at step 0: no checkpoint written"):
        trainer.save_checkpoint()
    assert [p.name for p in list_checkpoints(trainer.ckpt_dir)] == ["step_000000"]


def test_export_runs_inside_fit_under_the_lock(tmp_path):
    seen = {}

    def step(ctx: StepContext, x: torch.Tensor) -> dict:
        loss = ctx.models["m"](x).mean()
        ctx.update("m", loss)
        return {"loss": loss}

    def export(trainer: Trainer, result) -> None:  # noqa: ANN001
        seen["holder"] = lock_holder(trainer.run_dir)
        seen["completed"] = result.completed
        save_pretrained(trainer.unwrap("m"), trainer.run_dir / "model", {"kind": "linear"})

    trainer = _trainer(tmp_path, step)
    trainer.hooks.append(ExportHook(export))
    trainer.fit()
    assert seen == {"holder": os.getpid(), "completed": True}
    verify_dir(tmp_path / "model")
    assert lock_holder(tmp_path) is None and not (tmp_path / ".lock").exists()


def test_output_rule_refuses_foreign_folders_and_replaces_own_ones_only_when_asked(tmp_path):
    dest = tmp_path / "out"
    with atomic_dir(dest, overwrite=False, producer="tool a") as tmp:
        (tmp / "x.txt").write_text("1")
    assert output_owner(dest) == "tool a"
    with pytest.raises(OutputError, match="pass --overwrite"), atomic_dir(dest, overwrite=False, producer="tool a"):
        pass
    with pytest.raises(OutputError, match="holds an output of 'tool a', not of 'tool b'"):
        check_output_dir(dest, "tool b", overwrite=True)
    with atomic_dir(dest, overwrite=True, producer="tool a") as tmp:
        (tmp / "y.txt").write_text("2")
    assert sorted(p.name for p in dest.iterdir()) == ["manifest.json", "y.txt"]
    (dest / "mine.txt").write_text("the user's")
    with pytest.raises(OutputError, match=r"did not write \(mine.txt\)"):
        check_output_dir(dest, "tool a", overwrite=True)
    user = tmp_path / "user"
    user.mkdir()
    (user / "NOTES.txt").write_text("keep")
    with pytest.raises(OutputError, match="NOTES.txt"), atomic_dir(user, producer="tool a"):
        raise AssertionError("the block must not run")
    assert [p.name for p in user.iterdir()] == ["NOTES.txt"]
    (tmp_path / "file").write_text("f")
    with pytest.raises(OutputError, match="is not a folder"):
        check_output_dir(tmp_path / "file", "tool a", overwrite=True)


def test_a_folder_filled_while_the_block_ran_is_not_replaced(tmp_path):
    dest = tmp_path / "out"
    with pytest.raises(OutputError), atomic_dir(dest, producer="p") as tmp:
        (tmp / "a").write_text("a")
        dest.mkdir()
        (dest / "theirs.txt").write_text("written meanwhile")
    assert (dest / "theirs.txt").read_text() == "written meanwhile"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        save_pretrained(nn.Linear(2, 2), tmp_path / "model", {"a": 1})
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [tmp_path / "model", *(tmp_path / "model").iterdir()]}
    assert modes == {"model": 0o750, "config.json": 0o640, "model.safetensors": 0o640, "manifest.json": 0o640,
                     "model_info.json": 0o640, "README.md": 0o640}  # fmt: skip


@pytest.mark.parametrize("manifest", ['{"files": null}', "[]", '{"files": {"a": 5}}', '{"files": {"/etc/x": '
                                      '{"bytes": 1, "sha256": "0"}}}', "[" * 5000 + "]" * 5000])  # fmt: skip
def test_manifests_of_the_wrong_structure_are_checkpoint_errors(tmp_path, manifest):
    save_pretrained(nn.Linear(2, 2), tmp_path / "m", {"a": 1})
    (tmp_path / "m" / "manifest.json").write_text(manifest)
    with pytest.raises(CheckpointError, match="manifest.json is corrupt"):
        verify_dir(tmp_path / "m")


def test_damaged_metrics_csv_is_repaired_and_the_original_kept(tmp_path):
    path = tmp_path / "metrics.csv"
    good = "step,loss\n1,0.5\n2,0.4\n"
    path.write_bytes(good.encode() + b"3,0.3\n\x00\x00\x00\n4,oops\n5,0.1,extra\n")
    warnings = []
    MetricsLogger(tmp_path, resume_step=10, warn=warnings.append)
    assert path.read_text() == good + "3,0.3\n"
    assert "3 unreadable line(s)" in warnings[0]
    assert (tmp_path / "metrics.csv.damaged").read_bytes().endswith(b"5,0.1,extra\n")
    assert read_metrics(path)[2] == 0


def test_state_of_the_wrong_structure_is_one_checkpoint_error_and_auto_skips_it(tmp_path):
    def step(ctx: StepContext, x: torch.Tensor) -> dict:
        loss = ctx.models["m"](x).mean()
        ctx.update("m", loss)
        return {"loss": loss}

    _trainer(tmp_path, step).fit()  # checkpoints at 2 and 4
    newest = tmp_path / "checkpoints" / "step_000004"
    tree = json.loads((newest / "state.json").read_text())
    tree["__dict__"] = [[k, "5" if k == "trainer" else v] for k, v in tree["__dict__"]]
    (newest / "state.json").write_text(json.dumps(tree))
    from gencore.checkpoint import _write_manifest

    (newest / "manifest.json").unlink()
    _write_manifest(newest)  # re-signed: the manifest check passes, the structure check must not
    with pytest.raises(CheckpointError, match="is not a training state"):
        _trainer(tmp_path, step).load_checkpoint(newest)
    resumed = _trainer(tmp_path, step, max_steps=6)
    result = resumed.fit(resume="auto")
    assert result.step == 6  # resumed from step_000002


def test_run_lock_is_exclusive_across_processes_and_reports_the_holder(tmp_path):
    import subprocess
    import sys

    code = "import sys; from gencore.train.rundir import run_lock\nwith run_lock(sys.argv[1]): print('ok')"
    with run_lock(tmp_path):
        assert lock_holder(tmp_path) == os.getpid()
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
        assert done.returncode != 0 and f"in use by process {os.getpid()}" in done.stderr
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok"
    assert not (tmp_path / ".lock").exists()
    with pytest.raises(RunLockedError):  # not re-entrant: one writer per run directory, even in one process
        with run_lock(tmp_path), run_lock(tmp_path):
            pass


def test_fresh_start_rules(tmp_path):
    check_fresh_start(tmp_path / "new", [])
    (tmp_path / "NOTES.txt").write_text("x")
    check_fresh_start(tmp_path, [])  # the user's other files are left beside the run
    (tmp_path / "config.json").write_text('{"train": {"seed": 0}}')
    (tmp_path / "metrics.csv").write_text("step\n1\n")
    check_fresh_start(tmp_path, [])  # a run that never checkpointed: started again
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        check_fresh_start(tmp_path, [tmp_path / "checkpoints" / "step_000002"])
    (tmp_path / "config.json").write_text('{"mine": 1}')
    with pytest.raises(ConfigError, match="not a training run's"):
        check_fresh_start(tmp_path, [])
    (tmp_path / "config.json").write_text('{"train": {}}')
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="already holds a trained model"):
        check_fresh_start(tmp_path, [])
