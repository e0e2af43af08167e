from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan_tutorial.config import GANConfig, ModelConfig
from dcgan_tutorial.data import load_source, train_holdout
from dcgan_tutorial.model import DCGANDiscriminator, build_models, init_normal
from gencore.config import build_config
from gencore.errors import ConfigError, DataError


@pytest.mark.parametrize("size", [16, 32, 64, 128, 256])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_any_power_of_two(size, channels):
    g, d = build_models(ModelConfig(image_size=size, channels=channels, ngf=4, ndf=4))
    x = g(torch.randn(2, 100))
    assert x.shape == (2, channels, size, size) and x.abs().max() <= 1
    assert d(x).shape == (2,)


def test_reference_size_has_the_reference_parameter_count():
    g, d = build_models(ModelConfig(image_size=64, channels=3, ngf=64, ndf=64))
    # pytorch/examples dcgan at 64 px, nz 100, ngf = ndf = 64, nc 3: 3,576,704 and 2,765,568 parameters
    assert sum(p.numel() for p in g.parameters()) == 3_576_704
    assert sum(p.numel() for p in d.parameters()) == 2_765_568


def test_init_normal_is_the_dcgan_initialisation():
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.BatchNorm2d(64))
    init_normal(plain)
    assert abs(plain[0].weight.std().item() - 0.02) < 0.005 and plain[0].bias.abs().sum() == 0
    assert abs(plain[1].weight.mean().item() - 1.0) < 0.01 and plain[1].bias.abs().sum() == 0


def test_fc_gan_is_the_lessons_architecture():
    g, d = build_models(ModelConfig(kind="fc", image_size=28))
    widths = [m.out_features for m in g.net if isinstance(m, torch.nn.Linear)]
    assert widths == [256, 512, 1024, 784]
    assert d(g(torch.randn(3, 100))).shape == (3,)


def test_wgan_gp_discriminator_has_no_batch_norm():
    _, d = build_models(ModelConfig(), wgan_gp=True)
    assert isinstance(d, DCGANDiscriminator)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())


@pytest.mark.parametrize("size", [8, 48, 512])
def test_bad_image_size_is_a_config_error(size):
    with pytest.raises(ConfigError, match="power of two from 16 to 256"):
        build_config(GANConfig, overrides=[f"model.image_size={size}"])


@pytest.mark.parametrize(("name", "channels", "classes"), [("textures", 1, 3), ("photos", 3, 5), ("faces", 1, 1)])
def test_builtin_sets(name, channels, classes):
    data = load_source(name, 16, channels, 60)
    assert data.images.shape[1:] == (channels, 16, 16) and len(data.classes) == classes
    assert -1 <= data.images.min() and data.images.max() <= 1 and data.images.std() > 0.1
    train, hold = train_holdout(data, 0.2, seed=0)
    assert len(train.images) + len(hold.images) == len(data.images)
    if classes > 1:
        assert set(hold.labels.tolist()) == set(range(classes))  # stratified


def _png(path, size=(20, 12)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def test_folder_flat_and_with_classes(tmp_path):
    _png(tmp_path / "flat" / "a.png")
    _png(tmp_path / "flat" / "b.jpg")
    data = load_source(str(tmp_path / "flat"), 16, 3, 0)
    assert data.images.shape == (2, 3, 16, 16) and data.classes == ["flat"]
    _png(tmp_path / "cls" / "x" / "a.png")
    _png(tmp_path / "cls" / "y" / "b.png")
    assert load_source(str(tmp_path / "cls"), 16, 1, 0).classes == ["x", "y"]


def test_bad_sources_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="neither a folder nor one of: textures"):
        load_source(str(tmp_path / "nowhere"), 16, 1, 10)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images in"):
        load_source(str(tmp_path / "empty"), 16, 1, 10)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_text("not an image")
    with pytest.raises(DataError, match=r"cannot read image .*x\.png"):
        load_source(str(tmp_path / "bad"), 16, 1, 10)
    with pytest.raises(DataError, match="MNIST files not found .*nothing is downloaded"):
        load_source(f"mnist:{tmp_path}", 16, 1, 10)
