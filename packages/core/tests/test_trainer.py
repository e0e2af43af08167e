from __future__ import annotations

import csv
import math
import warnings

import pytest
import torch
from torch import nn

from gencore.checkpoint import list_checkpoints, load_tree, verify_dir
from gencore.errors import CheckpointError, ConfigError, NonFiniteLossError
from gencore.testing import assert_same_tensors, trainer_tensors
from gencore.train import StepContext, TrainConfig, Trainer


def test_resume_is_bitwise_equal_to_an_unbroken_run(tmp_path, make_gan):
    full = make_gan(tmp_path / "full")
    assert full.fit().step == 12
    reference = trainer_tensors(full)

    part = make_gan(tmp_path / "part", max_steps=7)  # stops mid-epoch with checkpoints at 5 and 7
    assert part.fit().step == 7
    resumed = make_gan(tmp_path / "part")
    result = resumed.fit(resume="auto")
    assert result.step == 12 and result.reason == "max_steps"
    assert_same_tensors(trainer_tensors(resumed), reference)
    assert resumed.schedulers["G"].get_last_lr() == full.schedulers["G"].get_last_lr()


def test_resume_from_explicit_older_checkpoint_matches_too(tmp_path, make_gan):
    full = make_gan(tmp_path / "full")
    full.fit()
    part = make_gan(tmp_path / "part", max_steps=7)
    part.fit()
    resumed = make_gan(tmp_path / "part")
    resumed.fit(resume=tmp_path / "part" / "checkpoints" / "step_000005")
    assert_same_tensors(trainer_tensors(resumed), trainer_tensors(full))


def test_metrics_csv_is_truncated_to_the_resumed_step(tmp_path, make_gan):
    make_gan(tmp_path, max_steps=7).fit()
    # a later row that the resumed run must drop (written after the step-5 checkpoint it resumes from)
    make_gan(tmp_path).fit(resume=tmp_path / "checkpoints" / "step_000005")
    with open(tmp_path / "metrics.csv") as fh:
        steps = [int(r["step"]) for r in csv.DictReader(fh)]
    assert steps == sorted(steps) and steps == [2, 4, 6, 8, 10, 12]


def test_gan_losses_are_logged_and_checkpoints_pruned(tmp_path, make_gan):
    result = make_gan(tmp_path, max_steps=20, keep_checkpoints=2).fit()
    assert result.checkpoint.name == "step_000020"
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step_000015", "step_000020"]
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert {"loss_d", "loss_g", "lr_G", "lr_D"} <= set(rows[0])
    assert all(math.isfinite(float(r["loss_d"])) for r in rows)
    assert (tmp_path / "config.json").is_file()
    assert not list(tmp_path.glob("checkpoints/.tmp-*"))


def test_nan_loss_stops_with_the_last_good_checkpoint_intact(tmp_path, make_gan):
    trainer = make_gan(tmp_path, nan_at=8, grad_accum_steps=1)
    before_nan = None
    with pytest.raises(NonFiniteLossError, match="non-finite loss for 'G' at step 8.*step_000005"):
        trainer.fit()
    before_nan = trainer.unwrap("G").state_dict()
    assert all(torch.isfinite(v).all() for v in before_nan.values()), "the NaN loss was applied"
    ckpts = list_checkpoints(tmp_path / "checkpoints")
    assert [p.name for p in ckpts] == ["step_000005"]
    verify_dir(ckpts[0])
    state = load_tree(ckpts[0])
    assert all(torch.isfinite(v).all() for v in state["models"]["G"].values())


def test_overfitting_a_fixed_batch_drives_the_loss_down(tmp_path, points):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 1))
    data = points(16)
    target = data.x[:, :1] * data.x[:, 1:]

    class Pairs(torch.utils.data.Dataset):
        def __len__(self):
            return 16

        def __getitem__(self, i):
            return data.x[i], target[i]

    losses = []

    def step(ctx: StepContext, batch):
        x, y = batch
        loss = ((ctx.models["m"](x) - y) ** 2).mean()
        ctx.update("m", loss)
        losses.append(loss.item())
        return {"mse": loss}

    cfg = TrainConfig(
        output_dir=str(tmp_path),
        max_steps=300,
        batch_size=16,
        log_every=100,
        checkpoint_every=0,
        tensorboard=False,
        progress_bar=False,
    )
    Trainer(cfg, {"m": model}, {"m": torch.optim.Adam(model.parameters(), 1e-2)}, step, Pairs()).fit()
    assert losses[-1] < 0.05 * losses[0]


def test_early_stopping_counts_evaluations_without_improvement(tmp_path, make_gan):
    values = iter([1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    trainer = make_gan(tmp_path, max_steps=100, eval_every=2, early_stop_metric="val", patience=3, checkpoint_every=0)
    trainer.eval_fn = lambda t: {"val": next(values)}
    result = trainer.fit()
    assert result.reason == "early_stop" and result.step == 10  # best at step 4, then 3 worse evaluations
    assert trainer.best == 0.5


def test_resuming_an_early_stopped_run_does_not_train_further(tmp_path, make_gan):
    trainer = make_gan(tmp_path, max_steps=100, eval_every=2, early_stop_metric="val", patience=2)
    trainer.eval_fn = lambda t: {"val": 1.0}
    assert trainer.fit().step == 6  # best at step 2, then 2 evaluations without improvement
    again = make_gan(tmp_path, max_steps=100, eval_every=2, early_stop_metric="val", patience=2)
    again.eval_fn = lambda t: {"val": 1.0}
    result = again.fit(resume="auto")
    assert (result.reason, result.step) == ("early_stop", 6)


def test_samples_are_written_as_png(tmp_path, make_gan):
    trainer = make_gan(tmp_path, sample_every=6)
    trainer.sample_fn = lambda t: torch.rand(4, 3, 8, 8)
    trainer.fit()
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step_000006.png", "step_000012.png"]
    assert (tmp_path / "losses.png").is_file()


def test_bf16_autocast_trains_on_cpu(tmp_path, make_gan):
    result = make_gan(tmp_path, precision="bf16", max_steps=4).fit()
    assert result.step == 4
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert all(math.isfinite(float(r["loss_g"])) for r in rows)


def test_explicit_damaged_checkpoint_is_refused_and_auto_falls_back(tmp_path, make_gan):
    make_gan(tmp_path, max_steps=10).fit()
    latest = tmp_path / "checkpoints" / "step_000010" / "state.safetensors"
    latest.write_bytes(latest.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated"):
        make_gan(tmp_path).fit(resume=latest.parent)
    resumed = make_gan(tmp_path, max_steps=10)
    resumed.fit(resume="auto")
    assert resumed.last_checkpoint.name == "step_000010"  # re-made from step 5


def test_checkpoint_of_another_model_is_a_clear_error(tmp_path, make_gan):
    make_gan(tmp_path / "a", max_steps=5).fit()
    other = make_gan(tmp_path / "b")
    other.models["G"] = other.models["G"]  # same names, but load into a model of a different width:
    wide = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 2))
    other.models["G"] = wide
    with pytest.raises(CheckpointError, match="does not fit"):
        other.load_checkpoint(tmp_path / "a" / "checkpoints" / "step_000005")


def test_missing_resume_path_is_a_clear_error(tmp_path, make_gan):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        make_gan(tmp_path).fit(resume=tmp_path / "nope")


def test_fresh_start_refuses_a_directory_with_checkpoints(tmp_path, make_gan):
    make_gan(tmp_path, max_steps=5).fit()
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    with pytest.raises(ConfigError, match="already holds checkpoints .*--resume auto"):
        make_gan(tmp_path, max_steps=5).fit()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before
    assert make_gan(tmp_path, max_steps=6).fit(resume="auto").step == 6


def test_a_step_that_logs_and_evaluates_gives_one_line_with_the_patience_count(tmp_path, make_gan, capsys):
    values = iter([3.0, 2.0, 2.5, 2.6, 2.7])
    trainer = make_gan(tmp_path, max_steps=20, eval_every=2, early_stop_metric="val", patience=3, checkpoint_every=0)
    trainer.eval_fn = lambda t: {"val": next(values)}
    trainer.console_columns = ["elapsed_s", "loss_d", "eval/val", "eval/bad_evals"]
    result = trainer.fit()
    assert result.reason == "early_stop" and result.step == 10
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step")]
    assert len(lines) == 5  # log_every == eval_every == 2: one line per step, not two
    assert [part.split()[0] for part in lines[-1].split(" | ")] == ["step", "elapsed_s", "loss_d", "eval/val",
                                                                    "eval/bad_evals"]  # fmt: skip
    assert lines[-1].endswith("eval/bad_evals 3")
    with open(tmp_path / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == ["2", "4", "6", "8", "10"]
    assert [r["eval/bad_evals"] for r in rows] == ["0", "0", "1", "2", "3"]
    elapsed = [float(r["elapsed_s"]) for r in rows]
    assert elapsed == sorted(elapsed) and "steps_per_s" in rows[0]  # the CSV keeps every column


def test_elapsed_time_continues_across_a_resume(tmp_path, make_gan):
    make_gan(tmp_path, max_steps=6).fit()
    saved = load_tree(tmp_path / "checkpoints" / "step_000006")["trainer"]["elapsed"]
    assert saved > 0
    resumed = make_gan(tmp_path, max_steps=8)
    resumed.fit(resume="auto")
    with open(tmp_path / "metrics.csv") as fh:
        last = list(csv.DictReader(fh))[-1]
    assert float(last["elapsed_s"]) >= saved


def test_sampling_and_evaluation_do_not_shift_the_training_random_streams(tmp_path, make_gan):
    plain = make_gan(tmp_path / "plain", max_steps=8)
    plain.fit()
    busy = make_gan(tmp_path / "busy", max_steps=8, sample_every=2, eval_every=3)
    busy.sample_fn = lambda t: torch.rand(2, 1, 4, 4)  # draw from the global RNG on purpose
    busy.eval_fn = lambda t: {"noise": float(torch.randn(()))}
    busy.fit()
    assert_same_tensors(trainer_tensors(busy), trainer_tensors(plain))


def test_resume_names_the_config_keys_that_changed(tmp_path, make_gan, capsys):
    make_gan(tmp_path, max_steps=7).fit()
    capsys.readouterr()
    make_gan(tmp_path, max_steps=7).fit(resume="auto")  # same config: nothing to say
    assert "differs" not in capsys.readouterr().out
    make_gan(tmp_path, max_steps=9, log_every=3).fit(resume="auto")
    out = capsys.readouterr().out
    assert "note: this run's config differs from step_000007's: train.log_every: 2 -> 3; train.max_steps: 7 -> 9" in out


class _Images(torch.utils.data.Dataset):
    def __init__(self) -> None:
        self.x = torch.rand(32, 3, 8, 8, generator=torch.Generator().manual_seed(1))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def _conv_trainer(run_dir, **overrides) -> Trainer:
    """A small convolutional autoencoder: the layout and compile options act on 4-D weights and forward passes."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    options = dict(max_steps=8, batch_size=8, checkpoint_every=4, log_every=2, tensorboard=False, progress_bar=False)
    cfg = TrainConfig(output_dir=str(run_dir), **{**options, **overrides})

    def step(ctx: StepContext, x: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = nn.functional.mse_loss(ctx.models["ae"](x), x)
        ctx.update("ae", loss)
        return {"loss": loss}

    return Trainer(cfg, {"ae": net}, {"ae": opt}, step, _Images())


def test_channels_last_trains_to_the_same_weights_and_resumes_exactly(tmp_path):
    plain = _conv_trainer(tmp_path / "plain")
    plain.fit()
    nhwc = _conv_trainer(tmp_path / "nhwc", channels_last=True)
    assert nhwc.unwrap("ae")[0].weight.is_contiguous(memory_format=torch.channels_last)
    nhwc.fit()
    got, ref = trainer_tensors(nhwc), trainer_tensors(plain)
    assert got.keys() == ref.keys()
    assert all(torch.allclose(got[k], ref[k], atol=1e-5) for k in ref)  # a layout, not another model

    _conv_trainer(tmp_path / "part", channels_last=True, max_steps=4).fit()
    resumed = _conv_trainer(tmp_path / "part", channels_last=True)
    resumed.fit(resume="auto")
    assert resumed.unwrap("ae")[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert_same_tensors(trainer_tensors(resumed), got)


def test_compiled_models_save_plain_keys_and_resume_exactly(tmp_path, make_gan):
    # aot_eager traces and compiles the graph without a C++ compiler; GPUs use "inductor"
    full = make_gan(tmp_path / "full", compile="aot_eager")
    assert type(full.models["G"]).__name__ == "OptimizedModule"
    full.fit()
    saved = load_tree(tmp_path / "full" / "checkpoints" / "step_000012")
    assert not [k for k in saved["models"]["G"] if "_orig_mod" in k]
    eager = make_gan(tmp_path / "eager")
    eager.fit()
    assert_same_tensors(trainer_tensors(full), trainer_tensors(eager))

    make_gan(tmp_path / "part", compile="aot_eager", max_steps=7).fit()
    resumed = make_gan(tmp_path / "part", compile="aot_eager")
    resumed.fit(resume="auto")
    assert_same_tensors(trainer_tensors(resumed), trainer_tensors(full))

    make_gan(tmp_path / "switched", max_steps=7).fit()  # an eager checkpoint, resumed compiled
    switched = make_gan(tmp_path / "switched", compile="aot_eager")
    switched.fit(resume="auto")
    assert_same_tensors(trainer_tensors(switched), trainer_tensors(full))


def test_launcher_precision_that_the_config_overrides_is_named(tmp_path, make_gan, monkeypatch):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")  # what `accelerate launch --mixed_precision bf16` sets
    monkeypatch.setenv("ACCELERATE_DYNAMO_BACKEND", "NO")
    with pytest.warns(UserWarning, match=r"accelerate launch --mixed_precision bf16 is overridden .*'no'"):
        trainer = make_gan(tmp_path / "a")
    assert trainer.accelerator.mixed_precision == "no"
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")  # the launcher's default, or the same as the config: quiet
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_gan(tmp_path / "b")
        make_gan(tmp_path / "c", precision="bf16")


def test_unknown_compile_backend_is_a_config_error(tmp_path, make_gan):
    with pytest.raises(ConfigError, match="compile='turbo'.*not a valid DynamoBackend"):
        make_gan(tmp_path, compile="turbo")
