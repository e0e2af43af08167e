"""Standard FID (gencore.inception): cross-checked against torchmetrics' FrechetInceptionDistance.

No ImageNet weights can be downloaded here, so both paths load the same randomly initialised Inception v3 from a
file. Its BatchNorm statistics are set from a few noise images, so that activations have the scale of a trained
network (with PyTorch's default initialisation the pool features come out near 1e-8).
"""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchvision import models as torchvision_models

from gencore.errors import CheckpointError, ConfigError, DataError
from gencore.inception import INCEPTION_V3_FILE, InceptionFeatures, fid, load_inception, to_uint8
from gencore.testing import random_inception_weights


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    """A seeded random Inception v3 state dict (gencore.testing.random_inception_weights)."""
    return random_inception_weights(tmp_path_factory.mktemp("inception") / "inception_random.pth")


class TorchvisionWay(nn.Module):
    """Features the way torchvision's ImageNet Inception v3 is documented to be fed, written independently of
    gencore: uint8 -> [0, 1], bilinear resize to 299, ImageNet mean/std, ``transform_input=True``, fc removed."""

    num_features = 2048

    def __init__(self, state: dict) -> None:
        super().__init__()
        self.net = torchvision_models.inception_v3(
            weights=None, aux_logits=True, init_weights=False, transform_input=True
        )
        self.net.load_state_dict(state)
        self.net.fc = nn.Identity()
        self.net.eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float() / 255, size=(299, 299), mode="bilinear", align_corners=False, antialias=True)
        return self.net((x - self.mean) / self.std)


def _image_sets(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(2)
    noise = torch.rand(n, 3, 32, 32, generator=gen)
    smooth = 0.7 * F.interpolate(torch.rand(n, 3, 4, 4, generator=gen), size=32, mode="bilinear") + 0.3 * noise.flip(0)
    return (noise * 255).round().to(torch.uint8), (smooth * 255).round().to(torch.uint8)


def test_fid_equals_torchmetrics_with_the_same_weights(inception_file):
    real, fake = _image_sets()
    ours = fid(load_inception(inception_file), real, fake)

    metric = FrechetInceptionDistance(feature=TorchvisionWay(torch.load(inception_file, weights_only=True)))
    metric.update(real, real=True)
    metric.update(fake, real=False)
    assert metric.real_features_sum.dtype == torch.float64  # its statistics are float64 too; only the result is cast
    theirs = float(metric.compute())
    # 8 images per set: rank-deficient covariances, where gencore takes the cross-Gram path and torchmetrics the
    # eigenvalues of the 2048x2048 product; both must give the same number
    assert ours > 1.0
    assert ours == pytest.approx(theirs, rel=1e-4)


def test_preprocessing_uint8_float_and_grey_images():
    gen = torch.Generator().manual_seed(3)
    as_uint8 = torch.randint(0, 256, (2, 3, 20, 24), generator=gen, dtype=torch.uint8)
    as_float = as_uint8.float() / 127.5 - 1
    x = InceptionFeatures.preprocess(as_uint8)
    assert x.shape == (2, 3, 299, 299) and x.dtype == torch.float32
    assert torch.allclose(x, InceptionFeatures.preprocess(as_float), atol=1e-6)
    assert torch.equal(to_uint8(as_float), as_uint8)
    assert -1 <= x.min() and x.max() <= 1
    grey = InceptionFeatures.preprocess(as_uint8[:, :1])
    assert torch.equal(grey[:, 0], grey[:, 2]) and torch.equal(grey[:, 1], grey[:, 2])
    with pytest.raises(DataError, match="need \\(N, 1 or 3, H, W\\) images, got shape \\(2, 4, 20, 24\\)"):
        InceptionFeatures.preprocess(torch.zeros(2, 4, 20, 24))


def test_weights_come_from_the_hub_cache_or_a_clear_error(inception_file, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(CheckpointError) as info:
        load_inception()
    message = str(info.value)
    assert "--inception-weights" in message and str(tmp_path / "checkpoints") in message
    assert INCEPTION_V3_FILE in message and "nothing is downloaded" in message and "\n" not in message
    with pytest.raises(CheckpointError, match="Inception v3 weights file not found: /no/such.pth"):
        load_inception("/no/such.pth")

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / INCEPTION_V3_FILE).symlink_to(inception_file)
    net = load_inception()
    assert net.source == tmp_path / "checkpoints" / INCEPTION_V3_FILE and not net.training
    assert not any(p.requires_grad for p in net.parameters())


def test_a_file_of_other_weights_is_refused_in_one_line(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(CheckpointError, match="does not hold torchvision's Inception v3 weights: .*missing key"):
        load_inception(path)


def test_without_torchvision_the_error_is_one_line(monkeypatch, inception_file):
    monkeypatch.setitem(sys.modules, "torchvision.models", None)  # what an environment without it raises
    with pytest.raises(ConfigError, match=r"^Inception features need torchvision: pip install torchvision"):
        load_inception(inception_file)
