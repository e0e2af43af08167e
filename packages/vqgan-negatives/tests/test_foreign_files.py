"""Files from elsewhere that do not fit: a first stage from another run beside a prior, LPIPS weight files with
other keys or shapes. Each is one CheckpointError naming the file and the mismatch, never an IndexError or a
RuntimeError from deep inside torch."""

from __future__ import annotations

import pytest
import torch

from gencore.errors import CheckpointError
from vqgan_negatives.config import GPTConfig, QuantizerConfig, VQModelConfig
from vqgan_negatives.model import VQModel
from vqgan_negatives.perceptual import LPIPS
from vqgan_negatives.sample import check_pair
from vqgan_negatives.transformer import CondGPT

WIDTHS = (64, 128, 256, 512, 512)


def _vq(codes: int, resolution: int = 32) -> VQModel:
    quantizer = QuantizerConfig(codebook_size=codes, codebook_dim=4)
    return VQModel(VQModelConfig(resolution=resolution, ch=8, ch_mult=(1, 2, 2), attn_resolutions=(8,), z_channels=8,
                                 quantizer=quantizer))  # fmt: skip


def _gpt(codes: int, side: int) -> CondGPT:
    return CondGPT(GPTConfig(vocab_size=2 * codes, block_size=2 * side * side, n_layer=1, n_head=2, n_embd=16))


def test_a_first_stage_from_another_run_is_refused():
    check_pair(_vq(32), _gpt(32, 8), "model/vqgan", "model/gpt")  # the pair a run saves
    message = r"^model/vqgan does not belong to the transformer in model/gpt: the transformer reads 32 codes in 64 "
    with pytest.raises(CheckpointError, match=message + r"positions, the VQGAN has 16 codes in a 8×8 grid"):
        check_pair(_vq(16), _gpt(32, 8), "model/vqgan", "model/gpt")
    with pytest.raises(CheckpointError, match=r"the VQGAN has 32 codes in a 16×16 grid \(256 positions\)"):
        check_pair(_vq(32, resolution=64), _gpt(32, 8), "model/vqgan", "model/gpt")


def _vgg_state() -> dict[str, torch.Tensor]:
    from torchvision.models.vgg import cfgs, make_layers

    return {f"features.{k}": v for k, v in make_layers(cfgs["D"]).state_dict().items()}


def _heads() -> dict[str, torch.Tensor]:
    return {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(WIDTHS)}


@pytest.mark.parametrize(
    ("which", "change", "message"),
    [
        (
            "heads",
            lambda s: s.pop("lin4.model.1.weight"),
            r"heads.pth does not hold the LPIPS-VGG linear heads "
            r"\(vgg.pth\): 1 missing key\(s\): lin4.model.1.weight",
        ),
        (
            "heads",
            lambda s: s.update({"lin0.model.1.weight": torch.rand(1, 3, 1, 1)}),
            r"1 shape mismatch\(es\): lin0.model.1.weight is \(1, 3, 1, 1\) in the file, \(1, 64, 1, 1\) expected",
        ),
        ("heads", lambda s: s.update({"lin5.model.1.weight": torch.rand(1)}), r"1 unexpected key\(s\): lin5"),
        (
            "vgg",
            lambda s: s.pop("features.28.bias"),
            r"vgg16.pth does not hold torchvision's VGG16 ImageNet "
            r"weights: 1 missing key\(s\): features.28.bias",
        ),
    ],
    ids=["heads-missing", "heads-shape", "heads-extra", "vgg-missing"],
)
def test_lpips_files_that_do_not_fit_are_one_line(which, change, message):
    vgg, heads = _vgg_state(), _heads()
    change(heads if which == "heads" else vgg)
    with pytest.raises(CheckpointError, match=message) as err:
        LPIPS(vgg, heads, ("w/vgg16.pth", "w/heads.pth"))
    assert "\n" not in str(err.value) and str(err.value).startswith("w/")
