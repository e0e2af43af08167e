"""Neural style transfer (Gatys et al. 2016): optimise an image so that its features keep the content image's
layout and take on the style image's feature correlations (Gram matrices), with a total-variation smoothness term.

Features come from torchvision's VGG19 (or VGG16) with ImageNet weights when the weight file is given
(``--vgg-weights``) or already in the torch hub cache, read with PyTorch's weights-only unpickler. Nothing can be
downloaded here, so without that file the features are those of a fixed random multi-scale convolutional network:
random filters at several scales are known to capture texture statistics well (Ustyuzhaninov et al. 2017, "What
does it take to generate natural textures?"), though they keep content less faithfully than VGG. The command
says which features it used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gencore.data import image_to_tensor, load_image
from gencore.errors import CheckpointError, ConfigError
from gencore.losses import content_loss, style_loss, total_variation
from gencore.viz import save_image_grid

# torchvision's published file names (hash suffixes) for the ImageNet weights
VGG_FILES = {"vgg19": "vgg19-dcbb9e9d.pth", "vgg16": "vgg16-397923af.pth"}
# indices in vgg.features of the ReLU after conv1_1, conv2_1, conv3_1, conv4_1, conv5_1 (style) and conv4_2 (content)
VGG_LAYERS = {"vgg19": ([1, 6, 11, 20, 29], 22), "vgg16": ([1, 6, 11, 18, 25], 20)}
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


class VGGFeatures(nn.Module):
    """Style and content activations of a pretrained VGG; input RGB in [0, 1]."""

    kind = "vgg"

    def __init__(self, arch: str, state: dict[str, torch.Tensor], source: str | Path = "the VGG weights") -> None:
        super().__init__()
        import torchvision

        from gencore.weights import load_weights

        vgg = getattr(torchvision.models, arch)(weights=None)
        style_idx, content_idx = VGG_LAYERS[arch]
        depth = max(*style_idx, content_idx) + 1
        self.features = vgg.features[:depth].eval().requires_grad_(False)
        # the convolutional part, strictly: a wrong file is one line naming it and the mismatch
        load_weights(nn.Sequential(*vgg.features), state, source, f"{arch} ImageNet weights", prefix="features.")
        self.style_idx, self.content_idx = set(style_idx), content_idx
        self.name = arch

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        x = (x - IMAGENET_MEAN.to(x)) / IMAGENET_STD.to(x)
        styles, content = [], None
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.style_idx:
                styles.append(x)
            if i == self.content_idx:
                content = x
        return styles, content


class RandomMultiScaleFeatures(nn.Module):
    """Fixed random conv filters (seeded) at 4 scales; input RGB in [0, 1]. Needs no download."""

    kind = "random"

    def __init__(self, channels: int = 128, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.convs = nn.ModuleList()
        for kernel in (3, 5, 7, 11):
            conv = nn.Conv2d(3, channels, kernel, padding=kernel // 2)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2.0 / (3 * kernel * kernel)) ** 0.5)
                conv.bias.zero_()
            self.convs.append(conv)
        self.requires_grad_(False)
        self.name = "random multi-scale convolutions (no pretrained weights found)"

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        x = x * 2 - 1
        styles = []
        for scale, conv in enumerate(self.convs):
            inp = F.avg_pool2d(x, 2**scale) if scale else x
            styles.append(F.relu(conv(inp)))
        return styles, styles[1]


def find_vgg_weights(explicit: Path | None) -> tuple[str, Path] | None:
    """(arch, path) of VGG weights: the explicit file, else torchvision's file in the torch hub cache, else None."""
    if explicit is not None:
        if not explicit.is_file():
            raise CheckpointError(f"VGG weights file not found: {explicit}")
        arch = "vgg16" if "vgg16" in explicit.name else "vgg19"
        return arch, explicit
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    for arch, name in VGG_FILES.items():
        if (cache / name).is_file():
            return arch, cache / name
    return None


def feature_extractor(vgg_weights: Path | None, seed: int = 0) -> nn.Module:
    """VGG features when weights are available (see :func:`find_vgg_weights`), else random multi-scale ones."""
    from gencore.checkpoint import load_torch_file

    found = find_vgg_weights(vgg_weights)
    if found is None:
        return RandomMultiScaleFeatures(seed=seed)
    arch, path = found
    state = load_torch_file(path, weights_only=True)
    return VGGFeatures(arch, state, path)


def _load_rgb(path: Path, longer_side: int) -> torch.Tensor:
    img = load_image(path, "RGB")
    scale = longer_side / max(img.size)
    size = (max(8, round(img.size[0] * scale)), max(8, round(img.size[1] * scale)))
    return (image_to_tensor(img.resize(size)) * 0.5 + 0.5).unsqueeze(0)


# Default loss weights per feature kind, chosen so that the three terms start at comparable magnitudes.
DEFAULT_WEIGHTS = {"vgg": {"style": 1e6, "tv": 1.0}, "random": {"style": 1e6, "tv": 1.0}}


def stylize(
    content: Path,
    style: Path,
    output: Path,
    size: int = 256,
    steps: int = 300,
    style_weight: float | None = None,
    content_weight: float = 1.0,
    tv_weight: float | None = None,
    vgg_weights: str | Path | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
    init: str = "content",
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Run style transfer and write ``output``; returns the feature kind and first/last values of each loss.

    ``init``: the image the optimisation starts from, ``content`` (a copy of the content image, the usual fast
    start) or ``noise`` (uniform noise drawn from ``seed``, as in Gatys et al. and the lesson). The feature network
    and the image being optimised live on ``device``; the noise is drawn on the CPU, so it is the same everywhere.
    """
    if init not in ("content", "noise"):
        raise ConfigError(f"init must be 'content' or 'noise', got {init!r}")
    net = feature_extractor(Path(vgg_weights) if vgg_weights else None, seed).to(device)
    log(f"features: {net.name}")
    weights = DEFAULT_WEIGHTS[net.kind]
    w_style = weights["style"] if style_weight is None else style_weight
    w_tv = weights["tv"] if tv_weight is None else tv_weight
    content_img = _load_rgb(content, size).to(device)
    style_img = _load_rgb(style, size).to(device)
    with torch.no_grad():
        _, target_content = net(content_img)
        target_styles, _ = net(style_img)
    if init == "noise":
        start = torch.rand(content_img.shape, generator=torch.Generator().manual_seed(seed)).to(device)
    else:
        start = content_img.clone()
    image = start.requires_grad_(True)
    opt = torch.optim.Adam([image], lr=0.02)
    history: list[dict[str, float]] = []
    for i in range(steps):
        styles, feats = net(image.clamp(0, 1))
        terms = {
            "content": content_weight * content_loss(feats, target_content),
            "style": w_style * style_loss(styles, target_styles),
            "tv": w_tv * total_variation(image),
        }
        loss = sum(terms.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append({k: float(v.detach()) for k, v in terms.items()} | {"total": float(loss.detach())})
        if i % max(steps // 5, 1) == 0 or i == steps - 1:
            log(f"step {i + 1:>4}/{steps} | " + " | ".join(f"{k} {v:.4g}" for k, v in history[-1].items()))
    save_image_grid(image.detach().clamp(0, 1).cpu(), output, nrow=1, min_tile=1, padding=0)
    return {"features": net.kind, "init": init, "first": history[0], "last": history[-1]}
