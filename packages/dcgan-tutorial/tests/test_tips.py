"""Each training tip changes behaviour as the README says."""

from __future__ import annotations

import math

import pytest
import torch

from dcgan_tutorial.train import build_trainer, generator_for_sampling, instance_noise_std


def fit_recording(config):
    """Train ``config`` and return (trainer, the step function's outputs per step)."""
    trainer = build_trainer(config)
    outputs = []
    step_fn = trainer.step_fn

    def recording(ctx, batch):
        out = step_fn(ctx, batch)
        outputs.append({k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in out.items()})
        return out

    trainer.step_fn = recording
    trainer.fit()
    return trainer, outputs


def weights(module):
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


def test_separate_learning_rates(tmp_path, tiny_config):
    trainer = build_trainer(tiny_config(tmp_path, "optim.lr_g=1e-4", "optim.lr_d=4e-4"))
    assert trainer.optimizers["G"].param_groups[0]["lr"] == 1e-4
    assert trainer.optimizers["D"].param_groups[0]["lr"] == 4e-4


def test_d_skip_freezes_the_discriminator_but_not_the_generator(tmp_path, tiny_config):
    trainer = build_trainer(tiny_config(tmp_path / "skip", "tips.d_skip_below=1e9"))
    d0, g0 = weights(trainer.unwrap("D")), weights(trainer.unwrap("G"))
    trainer, outputs = fit_recording(tiny_config(tmp_path / "skip2", "tips.d_skip_below=1e9"))
    assert all(o["d_skipped"] == 1.0 for o in outputs)
    assert torch.equal(weights(trainer.unwrap("D")), d0)
    assert not torch.equal(weights(trainer.unwrap("G")), g0)
    _, normal = fit_recording(tiny_config(tmp_path / "plain"))
    assert all(o["d_skipped"] == 0.0 for o in normal)


def test_one_sided_label_smoothing_targets_real_images_only(tmp_path, tiny_config):
    def first_step(run_dir, *overrides):
        trainer = build_trainer(tiny_config(run_dir, "train.max_steps=1", *overrides))
        logits = []
        trainer.unwrap("D").register_forward_hook(lambda m, args, out: logits.append(out.detach().clone()))
        outputs = []
        step_fn = trainer.step_fn
        trainer.step_fn = lambda ctx, batch: outputs.append(step_fn(ctx, batch)) or outputs[-1]
        trainer.fit()
        return float(outputs[0]["loss_d"].detach()), logits[0]

    plain, real_logits = first_step(tmp_path / "a")
    smooth, same_logits = first_step(tmp_path / "b", "tips.real_label=0.7")
    assert torch.equal(real_logits, same_logits)  # same seed: same weights and batch, only the target differs
    # BCE(x, t) = softplus(x) - t*x, so lowering the real target from 1 to 0.7 adds 0.3 * mean(real logits)
    assert smooth - plain == pytest.approx(0.3 * real_logits.mean().item(), rel=1e-4, abs=1e-6)


def test_instance_noise_reaches_d_and_decays(tmp_path, tiny_config):
    config = tiny_config(tmp_path, "tips.instance_noise=0.5", "tips.instance_noise_steps=4")
    assert [instance_noise_std(config, s) for s in (0, 2, 4, 8)] == [0.5, 0.25, 0.0, 0.0]
    trainer = build_trainer(config)
    seen = []
    trainer.unwrap("D").register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    trainer.fit()
    assert max(float(x.abs().max()) for x in seen[:3]) > 1.0  # data lie in [-1, 1]; noise pushes beyond


@pytest.mark.parametrize("loss", ["nonsaturating", "hinge", "lsgan", "wgan-gp"])
def test_every_loss_trains(tmp_path, tiny_config, loss):
    _, outputs = fit_recording(tiny_config(tmp_path, f"tips.loss={loss!r}"))
    assert all(math.isfinite(o["loss_d"]) and math.isfinite(o["loss_g"]) for o in outputs)
    assert all((o["gp"] > 0) == (loss == "wgan-gp") for o in outputs)


def test_ema_generator_is_used_for_samples_and_lags_behind(tmp_path, tiny_config):
    trainer, _ = fit_recording(tiny_config(tmp_path, "optim.ema_decay=0.9"))
    ema = generator_for_sampling(trainer)
    assert ema is trainer.ema["G"].shadow
    assert not torch.equal(weights(ema), weights(trainer.unwrap("G")))
    plain, _ = fit_recording(tiny_config(tmp_path / "plain"))
    assert generator_for_sampling(plain) is plain.unwrap("G")
