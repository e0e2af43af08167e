from __future__ import annotations

import torch
from torch import nn

from gencore.sampling import sampling_model
from gencore.testing import Points, make_gan_trainer
from gencore.train import TrainConfig, Trainer


def test_sampling_model_is_the_ema_copy_when_there_is_one(tmp_path):
    trainer = make_gan_trainer(tmp_path / "run")  # ema={"G": 0.9}
    assert sampling_model(trainer, "G") is trainer.ema["G"].shadow
    assert sampling_model(trainer, "D") is trainer.unwrap("D")


def test_sampling_model_is_the_bare_model_without_ema(tmp_path):
    g = nn.Linear(2, 2)
    cfg = TrainConfig(output_dir=str(tmp_path / "run"), max_steps=1, batch_size=4, tensorboard=False,
                      progress_bar=False)  # fmt: skip
    trainer = Trainer(cfg, {"G": g}, {"G": torch.optim.SGD(g.parameters(), 0.1)}, lambda ctx, x: {}, Points())
    assert sampling_model(trainer, "G") is trainer.unwrap("G") is g
