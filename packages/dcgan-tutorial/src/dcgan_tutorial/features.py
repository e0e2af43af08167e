"""A small feature network trained here, because no Inception weights can be downloaded.

With two or more classes it learns to tell the classes apart; with one class (faces, a flat folder) it learns to
tell the four rotations of an image apart (RotNet, Gidaris et al. 2018), which needs no labels. Its 64-d penultimate
layer gives the features for the Fréchet distance, KID and the diversity diagnostic, and its class predictions
give the mode-coverage count. Values are comparable only between runs that use the same feature network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gencore.checkpoint import PretrainedMixin
from gencore.progress import progress
from gencore.seeding import local_rng


@dataclass
class FeatureNetConfig:
    """Architecture of the feature network."""

    channels: int = 1
    image_size: int = 32
    num_outputs: int = 4
    rotation_task: bool = True  # True: outputs are the 4 rotations; False: outputs are the data's classes
    width: int = 32
    feature_dim: int = 64


class FeatureNet(PretrainedMixin, nn.Module):
    """Conv(3×3)-BN-ReLU ×2 per scale, three scales, global average pool, a 64-d feature layer, a linear head."""

    config_class = FeatureNetConfig

    def __init__(self, config: FeatureNetConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        layers: list[nn.Module] = []
        c_in = config.channels
        for c_out in (w, 2 * w, 4 * w):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(True)]
            layers += [nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(True), nn.MaxPool2d(2)]
            c_in = c_out
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, config.feature_dim))
        self.head = nn.Linear(config.feature_dim, config.num_outputs)
        # standardisation of the features by the training images' statistics, so distances are scale-free
        self.register_buffer("feat_mean", torch.zeros(config.feature_dim))
        self.register_buffer("feat_std", torch.ones(config.feature_dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] -> (B, feature_dim)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.features(x)))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """(standardised features, predicted class) for images in batches, in eval mode; the images are moved to
        the network's device batch by batch, and the results are on that device."""
        self.eval()
        device = self.feat_mean.device
        feats, preds = [], []
        for chunk in x.split(batch_size):
            f = self.features(chunk.to(device))
            feats.append((f - self.feat_mean) / self.feat_std)
            preds.append(self.head(F.relu(f)).argmax(1))
        return torch.cat(feats), torch.cat(preds)


def _rotations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    turns = torch.arange(4, device=x.device).repeat_interleave(len(x))
    rotated = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    return rotated, turns


def train_feature_net(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    steps: int = 300,
    seed: int = 0,
    device: str | torch.device = "cpu",
    measure_accuracy: bool = True,
) -> tuple[FeatureNet, float]:
    """Train on (images, labels), or on rotations when there is one class; returns (net, training accuracy on up
    to 1,024 images; NaN without ``measure_accuracy``, which saves those forward passes and gives the same net).

    The network is built and the batches drawn on the CPU (the same for every ``device``), then trained on
    ``device``; the data stays where it is and each batch is moved there. The net is returned on ``device``."""
    with local_rng(seed, device) as gen:
        rotation = num_classes < 2
        config = FeatureNetConfig(
            channels=images.shape[1], image_size=images.shape[-1], num_outputs=4 if rotation else num_classes,
            rotation_task=rotation,
        )  # fmt: skip
        net = FeatureNet(config).to(device)
        opt = torch.optim.Adam(net.parameters(), 2e-3)
        net.train()
        for _ in progress(range(steps), total=steps, desc="feature network"):
            idx = torch.randint(0, len(images), (64,), generator=gen)
            x, y = images[idx].to(device), labels[idx].to(device)
            if rotation:
                x, y = _rotations(x)
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        accuracy = float("nan")
        if measure_accuracy:  # the statistics below draw nothing from gen: skipping this changes no weight
            idx = torch.randperm(len(images), generator=gen)[:1024]
            x, y = images[idx].to(device), labels[idx].to(device)
            if rotation:
                x, y = _rotations(x)
            accuracy = (net.predict(x)[1] == y).float().mean().item()
        with torch.no_grad():
            raw = torch.cat([net.features(chunk.to(device)) for chunk in images[:4096].split(256)])
        net.feat_mean.copy_(raw.mean(0))
        net.feat_std.copy_(raw.std(0).clamp(min=1e-6))
    return net.eval(), accuracy
