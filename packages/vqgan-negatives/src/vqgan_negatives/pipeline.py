"""Python entry point for inference: a trained prior with its first stage that turns conditioning images (Perlin
noise by default) into molecule look-alikes, as PIL images (what ``vqgan-negatives sample`` runs).

    from vqgan_negatives import NegativesPipeline

    pipe = NegativesPipeline.from_pretrained("runs/vqgan-negatives/transformer", device="cpu")
    images = pipe(num_images=16, seed=0)  # a list of PIL images
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vqgan_negatives.data import PerlinParams
from vqgan_negatives.negatives import parse_condition
from vqgan_negatives.sample import Pipeline, conditioning_images, generate, load_pipeline

__all__ = ["NegativesPipeline", "to_pil"]


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """Images (N, C, H, W) in [-1, 1] -> PIL images (mode L for one channel, RGB for three)."""
    array = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    array = array.permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else np.ascontiguousarray(a)) for a in array]


@dataclass
class NegativesPipeline(Pipeline):
    """:class:`~vqgan_negatives.sample.Pipeline` (``vq``, ``gpt``, ``name``; what ``load_pipeline`` returns and
    ``run_experiment``/``make_negatives`` take) with device placement and a call that returns images."""

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> NegativesPipeline:
        """Load a transformer run (its directory, its ``model/`` or one of its ``checkpoints/step_N``) with its
        first stage, frozen, onto ``device``."""
        pipe = load_pipeline(path)
        return cls(pipe.vq.to(device), pipe.gpt.to(device), pipe.name, pipe.first_stage)

    @property
    def device(self) -> torch.device:
        return next(self.gpt.parameters()).device

    def conditioning(
        self, condition: str = "perlin", num_images: int = 16, perlin: PerlinParams | None = None
    ) -> torch.Tensor:
        """``num_images`` conditioning images (N, C, H, W) in [-1, 1] at the model's size: ``condition`` as
        ``--condition`` takes it (``perlin``, ``perlin:scale=8,octaves=5``, ``gaussian``, ``image:PATH``);
        ``perlin`` sets the Perlin parameters of plain ``perlin`` (as the ``--perlin-*`` options do)."""
        kind, spec_params = parse_condition(condition)
        if kind == "perlin" and spec_params is not None and condition != "perlin":
            perlin = spec_params  # perlin:key=value,... wins over the defaults
        res, ch = self.vq.config.resolution, self.vq.config.in_channels
        return conditioning_images(kind, num_images, res, ch, perlin or PerlinParams(), seed=0)

    def generate(
        self, cond: torch.Tensor, seed: int = 0, temperature: float = 1.0, top_k: int | None = 100,
        batch_size: int = 64,
    ) -> torch.Tensor:  # fmt: skip
        """One image (N, C, H, W) in [-1, 1] per conditioning image; deterministic given ``seed``."""
        return generate(self.vq, self.gpt, cond, temperature, top_k, seed, batch_size)

    def __call__(
        self, num_images: int = 16, condition: str | torch.Tensor = "perlin", seed: int = 0,
        temperature: float = 1.0, top_k: int | None = 100, batch_size: int = 64,
        perlin: PerlinParams | None = None, output_type: str = "pil",
    ) -> list[Image.Image] | torch.Tensor:  # fmt: skip
        """Generate from ``num_images`` conditioning images (see :meth:`conditioning`; or a tensor (N, C, H, W)
        in [-1, 1] of your own, then ``num_images`` is ignored); the same images as ``vqgan-negatives sample RUN
        --seed SEED``. A list of PIL images, or with ``output_type="pt"`` a tensor in [-1, 1]."""
        if output_type not in ("pil", "pt"):
            raise ValueError(f"output_type must be 'pil' or 'pt', got {output_type!r}")
        cond = condition if isinstance(condition, torch.Tensor) else self.conditioning(condition, num_images, perlin)
        images = self.generate(cond, seed, temperature, top_k, batch_size)
        return to_pil(images) if output_type == "pil" else images
