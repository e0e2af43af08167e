from __future__ import annotations

import torch
from torch import nn

from gencore import nn as gnn


def test_block_shapes():
    x = torch.randn(2, 16, 8, 8)
    assert gnn.ConvBlock(16, 32, stride=2)(x).shape == (2, 32, 4, 4)
    up = gnn.ConvBlock(16, 8, kernel=4, stride=2, transpose=True, norm="instance", act="lrelu")
    assert up(x).shape == (2, 8, 16, 16)
    assert gnn.Upsample(16)(x).shape == (2, 16, 16, 16)
    assert gnn.Downsample(16, conv=False)(x).shape == (2, 16, 4, 4)
    assert gnn.SelfAttention2d(16)(x).shape == x.shape
    assert gnn.Normalize(48).num_groups == 16


def test_resblock_and_adain_start_as_identity_like():
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(gnn.ResBlock(16)(x), x)
    ada = gnn.AdaIN(16, style_dim=4)
    assert torch.allclose(ada(x, torch.randn(2, 4)), nn.InstanceNorm2d(16)(x), atol=1e-5)


def test_spectral_norm_and_init():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Sequential(nn.Linear(8, 4)))
    gnn.add_spectral_norm(model)
    assert nn.utils.parametrize.is_parametrized(model[0]) and nn.utils.parametrize.is_parametrized(model[1][0])
    plain = nn.Sequential(nn.Conv2d(3, 64, 3), nn.BatchNorm2d(64))
    gnn.init_normal(plain)
    assert abs(plain[0].weight.std().item() - 0.02) < 0.005 and plain[0].bias.abs().sum() == 0
