"""Standard FID: the Fréchet distance on the 2048-d pool features of torchvision's Inception v3.

The weights are never downloaded: they come from a file the user names, or from torchvision's own file
(:data:`INCEPTION_V3_FILE`) already in the torch hub cache (``torch.hub.get_dir()/checkpoints/``). Without
either, :func:`find_inception_weights` stops with one line naming both places.

Preprocessing: the whole image resized to 299×299 (bilinear, no crop, as FID tools do), then normalised as
torchvision's ImageNet Inception v3 expects: ImageNet mean and std, mapped back by the model's ``transform_input``.
Those two steps together are exactly ``2 * p - 1`` for pixel values ``p`` in [0, 1], which is what is fed here to
a model built with ``transform_input=False`` (one affine map instead of two). Float images must therefore be in
[-1, 1] (gencore's range), uint8 ones in [0, 255]. Features come out in float32; the statistics and the distance
are taken in float64 by :func:`gencore.metrics.frechet_distance`.

Values are comparable with any tool that uses the same weight file and the same resizing (e.g. torchmetrics'
``FrechetInceptionDistance`` given this module as ``feature``); published FIDs use the TensorFlow Inception
graph's weights (pytorch-fid's ``pt_inception-2015-12-05`` file) and a slightly different network, so figures
from torchvision's file are not numerically equal to those.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gencore.errors import CheckpointError, ConfigError, DataError
from gencore.metrics import extract_features, frechet_distance

__all__ = [
    "INCEPTION_V3_FILE",
    "InceptionFeatures",
    "find_inception_weights",
    "load_inception",
    "inception_features",
    "fid",
    "to_uint8",
]

# torchvision's Inception_V3_Weights.IMAGENET1K_V1 file name (the name torch.hub stores it under)
INCEPTION_V3_FILE = "inception_v3_google-0cc3c7bd.pth"
INPUT_SIZE = 299


def _torchvision_inception():  # noqa: ANN202 - torchvision.models.inception_v3, imported on use
    try:
        from torchvision.models import inception_v3
    except ImportError:
        message = "Inception features need torchvision: pip install torchvision (or gencore[inception])"
        raise ConfigError(message) from None
    return inception_v3


def find_inception_weights(path: str | Path | None = None) -> Path:
    """The Inception v3 weight file: ``path`` when given, else torchvision's file in the torch hub cache.

    Never downloads; raises CheckpointError naming both places when neither holds the file.
    """
    if path is not None:
        if not Path(path).is_file():
            raise CheckpointError(f"Inception v3 weights file not found: {path}")
        return Path(path)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_V3_FILE
    if cached.is_file():
        return cached
    raise CheckpointError(
        f"no Inception v3 weights: pass --inception-weights PATH or put torchvision's {INCEPTION_V3_FILE} in "
        f"{cached.parent} (nothing is downloaded)"
    )


class InceptionFeatures(nn.Module):
    """torchvision's Inception v3 up to its 2048-d global average pool (the standard FID features), frozen.

    Input: (B, C, H, W) images with C = 3, or C = 1 (repeated to three channels), either uint8 in [0, 255] or
    float in [-1, 1] (gencore's image range). Output: (B, 2048) float32.
    """

    num_features = 2048  # read by torchmetrics when this module is its `feature`

    def __init__(self, net: nn.Module, source: Path | None = None) -> None:
        super().__init__()
        self.source = source  # the weight file, for reports
        net.fc = nn.Identity()  # forward then ends at the pool (dropout is off in eval mode)
        self.net = net.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> InceptionFeatures:
        """Always in eval mode: BatchNorm uses its stored statistics, dropout and the aux head are off."""
        return super().train(False)

    @staticmethod
    def preprocess(images: torch.Tensor) -> torch.Tensor:
        """Images -> (B, 3, 299, 299) float32 in [-1, 1], as the network sees them."""
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise DataError(f"Inception features need (N, 1 or 3, H, W) images, got shape {tuple(images.shape)}")
        x = images.float() / 127.5 - 1 if images.dtype == torch.uint8 else images.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        # antialias only acts when shrinking (images above 299 px): it averages like PIL instead of skipping pixels
        return F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=True)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(self.preprocess(images))


def load_inception(path: str | Path | None = None, device: str | torch.device = "cpu") -> InceptionFeatures:
    """:class:`InceptionFeatures` with the weights of :func:`find_inception_weights` (``path`` or the hub cache).

    The file is read with PyTorch's weights-only unpickler and loaded strictly; it may hold the auxiliary head
    (torchvision's file does) or not.
    """
    from gencore.checkpoint import load_torch_file
    from gencore.weights import load_weights

    inception_v3 = _torchvision_inception()
    found = find_inception_weights(path)
    state = load_torch_file(found, weights_only=True)
    has_aux = isinstance(state, dict) and any(str(k).startswith("AuxLogits.") for k in state)
    net = inception_v3(weights=None, aux_logits=has_aux, init_weights=False)
    load_weights(net, state, found, "torchvision's Inception v3 weights")
    return InceptionFeatures(net, found).to(device)


@torch.no_grad()
def inception_features(
    net: nn.Module, images: torch.Tensor | Iterable[torch.Tensor], batch_size: int = 50
) -> torch.Tensor:
    """(N, 2048) float64 features on the CPU of ``images`` (a tensor, split into batches, or batches).

    Batches are moved to the network's device; the features do not depend on ``batch_size`` beyond float
    round-off, since the network is in eval mode.
    """
    device = next(net.parameters()).device
    batches = images.split(batch_size) if isinstance(images, torch.Tensor) else images
    return extract_features(net, batches, device)


def fid(net: nn.Module, images_a: torch.Tensor, images_b: torch.Tensor, batch_size: int = 50) -> float:
    """Fréchet Inception distance between two image sets (float64, :func:`gencore.metrics.frechet_distance`)."""
    feats_a, feats_b = inception_features(net, images_a, batch_size), inception_features(net, images_b, batch_size)
    return frechet_distance(feats_a, feats_b)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> uint8, rounded as when they are written to PNG.

    Features of these equal the features of the saved files (``sample --save-dir``), so a FID on them is the
    figure an external tool computes from those files with the same weights.
    """
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
