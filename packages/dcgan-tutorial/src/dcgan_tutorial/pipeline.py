"""Python entry point for inference: a trained generator that gives PIL images (what ``dcgan-tutorial sample`` runs).

    from dcgan_tutorial import DCGANPipeline

    pipe = DCGANPipeline.from_pretrained("runs/dcgan-tutorial", device="cpu")
    images = pipe(num_images=16, seed=0)  # a list of PIL images
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from dcgan_tutorial.model import DCGANGenerator, FCGenerator
from dcgan_tutorial.train import generate
from gencore.errors import CheckpointError
from gencore.results import read_json

__all__ = ["DCGANPipeline", "load_generator", "to_pil"]


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The generator of a run: ``path`` is the run directory, its ``model/`` or its ``model/generator/``; the
    model is placed on ``device`` (the EMA weights when the run used ``--ema``, as ``train`` saved them)."""
    directory = Path(path)
    for candidate in (directory / "model" / "generator", directory / "generator"):
        if candidate.is_dir():
            directory = candidate
            break
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"no generator in {path} (expected RUN_DIR or RUN_DIR/model/generator)")
    kind = read_json(config_file).get("kind", "dcgan")
    return (FCGenerator if kind == "fc" else DCGANGenerator).from_pretrained(directory, str(device)).eval()


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """Images (N, C, H, W) in [-1, 1] -> PIL images (mode L for one channel, RGB for three)."""
    array = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    array = array.permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else np.ascontiguousarray(a)) for a in array]


class DCGANPipeline:
    """A trained GAN generator (DCGAN or the lesson's fully connected one) that draws images from seeded noise."""

    def __init__(self, generator: nn.Module) -> None:
        self.generator = generator

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> DCGANPipeline:
        """Load the generator of ``path`` (a run directory, its ``model/`` or ``model/generator/``) onto ``device``."""
        return cls(load_generator(path, device))

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def __call__(
        self, num_images: int = 16, seed: int = 0, batch_size: int = 64, output_type: str = "pil"
    ) -> list[Image.Image] | torch.Tensor:
        """``num_images`` images from the noise of ``seed`` (the same as ``dcgan-tutorial sample RUN --seed SEED``;
        they do not depend on ``batch_size``): a list of PIL images, or with ``output_type="pt"`` a tensor
        (N, C, H, W) in [-1, 1] on the pipeline's device."""
        if output_type not in ("pil", "pt"):
            raise ValueError(f"output_type must be 'pil' or 'pt', got {output_type!r}")
        images = generate(self.generator, num_images, seed, self.device, batch_size)
        return to_pil(images) if output_type == "pil" else images
