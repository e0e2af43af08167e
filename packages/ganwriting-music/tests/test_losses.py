"""The losses and options added against the original's collapse to one picture per class (see README "Results"):
mode seeking on the noise, style reconstruction, the writer term's weight for G, how many decoder blocks read the
class template, each font's fixed writing habits, and the classifier study's several random-style copies."""

from __future__ import annotations

import csv

import pytest
import torch

from ganwriting_music.config import DataConfig, ModelConfig
from ganwriting_music.data import font_symbols, writer_pen
from ganwriting_music.model import Generator
from ganwriting_music.train import diversity_loss, run_training, style_reconstruction_loss
from gencore.errors import ConfigError


def _gen(**overrides) -> Generator:
    torch.manual_seed(0)
    config = ModelConfig(k_refs=2, gen_channels=4, style_channels=4, style_dim=8, class_dim=4, noise_dim=4,
                         **overrides)  # fmt: skip
    return Generator(config, 16, 3)


def test_diversity_loss_rewards_noise_that_changes_the_image_up_to_its_bound():
    a, z1, z2 = torch.zeros(4, 1, 8, 8), torch.zeros(4, 3), torch.ones(4, 3)
    assert diversity_loss(a, a, z1, z2, tau=1.0) == 0  # the noise did nothing: no reward
    assert diversity_loss(a, a + 0.5, z1, z2, tau=1.0) == pytest.approx(-0.5)  # |dG| / |dz| = 0.5
    assert diversity_loss(a, a + 2.0, z1, z2, tau=1.0) == pytest.approx(-1.0)  # bounded at tau
    checker = (torch.arange(8)[:, None] + torch.arange(8)).remainder(2).float().expand(4, 1, 8, 8) - 0.5
    assert diversity_loss(a, checker, z1, z2, tau=1.0) == pytest.approx(-0.5)  # pixel speckle counts...
    assert diversity_loss(a, checker, z1, z2, tau=1.0, pool=2) == pytest.approx(0.0)  # ...unless pooled away
    # wired to the generator: one step on it makes two noises give more different images
    gen = _gen()
    refs, labels = torch.rand(6, 2, 1, 16, 16) * 2 - 1, torch.tensor([0, 1, 2, 0, 1, 2])
    za, zb = gen.noise(6, "cpu"), gen.noise(6, "cpu")
    spread = lambda: float((gen(refs, labels, za) - gen(refs, labels, zb)).abs().mean().detach())  # noqa: E731
    before = spread()
    opt = torch.optim.SGD(gen.parameters(), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        diversity_loss(gen(refs, labels, za), gen(refs, labels, zb), za, zb, tau=10.0).backward()
        opt.step()
    assert spread() > 1.5 * before


def test_style_reconstruction_trains_the_decoder_never_the_encoder():
    gen = _gen()
    refs, labels = torch.rand(4, 2, 1, 16, 16) * 2 - 1, torch.tensor([0, 1, 2, 0])
    fake = gen(refs, labels).detach().requires_grad_(True)  # the generated image as a leaf
    loss = style_reconstruction_loss(gen, fake, refs)
    assert loss > 0
    loss.backward()
    # re-reading the image sends gradients to the image (so to the decoder that drew it), none into the encoder
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in gen.style.parameters())
    # a generated image that *is* its reference (K = 1) has exactly the reference's style: nothing to fix
    one = refs[:, :1]
    assert style_reconstruction_loss(gen, one[:, 0], one) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("skips", [0, 1, 2, 3, 4])
def test_template_skips(skips):
    gen = _gen(template_skips=skips)
    refs, labels, z = torch.rand(3, 2, 1, 16, 16) * 2 - 1, torch.tensor([0, 1, 2]), torch.randn(3, 4)
    out = gen(refs, labels, z)
    assert out.shape == (3, 1, 16, 16)
    gen.templates.mul_(-1)  # another template picture: changes the output exactly when a block reads it
    assert torch.equal(gen(refs, labels, z), out) == (skips == 0)
    with pytest.raises(ConfigError, match="template_skips"):
        ModelConfig(template_skips=5)


def test_writer_pen_is_a_fixed_habit_per_font():
    assert writer_pen("Bravura", 0.0).slant == 0 and writer_pen("Bravura", 0.0).stroke == 0
    pen = writer_pen("Bravura", 1.0)
    assert pen == writer_pen("Bravura", 1.0) != writer_pen("Leipzig", 1.0)  # same every call, differs by font
    config = DataConfig(image_size=32, samples_per_class=2, classes=["gClef", "stem"])
    plain = font_symbols(config, ["Bravura"], seed=3)
    habit = font_symbols(DataConfig(image_size=32, samples_per_class=2, classes=["gClef", "stem"], writer_pen=1.0),
                         ["Bravura"], seed=3)  # fmt: skip
    assert plain.images.shape == habit.images.shape and not torch.equal(plain.images, habit.images)


def test_new_losses_are_logged_by_a_training_run(tmp_path, tiny_config):
    config = tiny_config(tmp_path, "loss.w_ms=1.0", "loss.w_style=1.0", "loss.w_writer_gen=2.0", "train.max_epochs=1",
                         "data.writer_pen=1.0", "model.template_skips=2")  # fmt: skip
    run_training(config, 0)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert float(rows[-1]["diversity"]) >= 0 and float(rows[-1]["style_rec"]) > 0


def test_ema_generator_is_what_the_run_saves(tmp_path, tiny_config):
    from ganwriting_music.train import load_networks
    from gencore.checkpoint import load_tree

    run_training(tiny_config(tmp_path, "optim.ema_decay=0.5", "train.max_epochs=1"), 0)
    tree = load_tree(tmp_path / "checkpoints" / "step_000003")
    saved = load_networks(tmp_path).gen.state_dict()
    shadow, live = tree["ema"]["G"], tree["models"]["G"]
    assert all(torch.equal(saved[k], shadow[k]) for k in shadow)  # model/ holds the averaged generator
    assert any(not torch.equal(shadow[k], live[k]) for k in shadow)  # which is not the last weights
    with pytest.raises(ConfigError, match="ema_decay"):
        tiny_config(tmp_path, "optim.ema_decay=1.0")


def test_style_writer_head_trains_the_style_encoder_to_name_the_writer(tmp_path, tiny_config):
    gen = _gen(style_writer_head=True)
    assert _gen().style_writer is None  # off by default: the original's generator has no such head
    refs, labels = torch.rand(2, 2, 1, 16, 16) * 2 - 1, torch.tensor([0, 1])
    images, logits = gen(refs, labels, writer_logits=True)
    assert images.shape == (2, 1, 16, 16) and logits.shape == (2, 1)
    config = tiny_config(tmp_path, "model.style_writer_head=true", "loss.w_ms=1.0", "train.max_epochs=1")
    run_training(config, 0)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert 0 <= float(rows[-1]["style_writer_acc"]) <= 1


def test_diff_augment_is_what_d_and_r_see_of_real_and_generated_images(tmp_path, tiny_config, monkeypatch):
    import ganwriting_music.train as train_module

    calls, original = [], train_module.diff_augment

    def counting(images, policy, translation, cutout, fill):
        calls.append((tuple(images.shape), policy, fill, images.requires_grad))
        return original(images, policy, translation, cutout, fill)

    monkeypatch.setattr(train_module, "diff_augment", counting)
    run_training(tiny_config(tmp_path, "loss.diff_augment='translation,cutout'", "train.max_epochs=1"), 0)
    steps = 3
    # per update: D on real and on detached fakes, R on real, then D and R on the fakes G is trained through
    assert len(calls) == 5 * steps
    assert all(policy == "translation,cutout" and fill == 1.0 for _, policy, fill, _ in calls)  # background fill
    assert sum(grad for *_, grad in calls) == 2 * steps  # the two views G's gradient passes through
    with pytest.raises(ConfigError, match="unknown augmentation"):
        tiny_config(tmp_path, "loss.diff_augment='flip'")
    with pytest.raises(ConfigError, match=r"loss.augment_cutout is a fraction .* got 1.5"):
        tiny_config(tmp_path, "loss.augment_cutout=1.5")
