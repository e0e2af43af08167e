"""Python entry point for inference: a trained HVAE that gives CAPTCHA images (what ``hvae-captcha sample`` runs).

    from hvae_captcha import HVAEPipeline

    pipe = HVAEPipeline.from_pretrained("runs/hvae-captcha", device="cpu")
    images = pipe(num_images=8, seed=0)             # a list of PIL images (texts drawn from the run's text prior)
    images = pipe(num_images=4, text="b5n3x")       # a text-aware model draws the text it is given
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gencore.errors import ConfigError
from hvae_captcha import runs
from hvae_captcha.data import case_rule
from hvae_captcha.model import HVAE

__all__ = ["HVAEPipeline", "to_pil"]


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """Images (N, C, H, W) in [0, 1] -> PIL images (mode L for one channel, RGB for three)."""
    array = (images.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else np.ascontiguousarray(a)) for a in array]


class HVAEPipeline:
    """A trained hierarchical VAE with what sampling needs: the run (or self-contained model folder) it came from,
    for the text prior of a text-aware model."""

    def __init__(self, model: HVAE, source: str | Path) -> None:
        self.model, self.source = model, Path(source)
        self.texts: list[str] | None = None  # the texts of the latest call (drawn or given), for a text-aware model

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> HVAEPipeline:
        """Load ``path`` (a run directory, its ``model/``, or a model folder copied alone) onto ``device``."""
        return cls(runs.load_model(path, device), path)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def sample(
        self,
        num_images: int = 16,
        text: str | None = None,
        temperature: float = 1.0,
        seed: int = 0,
        batch_size: int | None = None,
    ) -> tuple[torch.Tensor, list[str] | None]:
        """``(images, texts)``: decoder means (N, C, H, W) in [0, 1] on the CPU, and the texts they show (a
        text-aware model: ``text`` for every image, else texts and layouts drawn from the run's text prior; None
        for an unconditioned model). The same as ``hvae-captcha sample`` with these options; the images depend on
        ``batch_size`` (all at once by default)."""
        model = self.model
        if text is not None and not model.config.conditioned:
            raise ConfigError("--text needs a model trained with --conditioned")
        if text is not None:  # lower-cased for a model trained on lower-cased texts, as the folder texts were
            text = case_rule(text, model.config.vocabulary)
        try:
            if text is None and model.config.conditioned:  # a text and a layout per sample from the run's prior
                texts, layouts = runs.text_prior(self.source, model).sample(num_images, seed)
            else:
                texts = [text] * num_images if text is not None else None
                layouts = runs.sampling_layouts(self.source, model, texts, seed)
            torch.manual_seed(seed)
            step = batch_size or num_images
            images = torch.cat([
                model.sample(min(step, num_images - i), texts[i : i + step] if texts else None, temperature,
                             layouts=layouts[i : i + step] if layouts else None)[0].cpu()
                for i in range(0, num_images, step)
            ])  # fmt: skip
        except ValueError as exc:  # a character outside the vocabulary, a text too long
            raise ConfigError(str(exc)) from None
        self.texts = texts
        return images, texts

    def __call__(
        self,
        num_images: int = 16,
        text: str | None = None,
        temperature: float = 1.0,
        seed: int = 0,
        batch_size: int | None = None,
        output_type: str = "pil",
    ) -> list[Image.Image] | torch.Tensor:
        """``num_images`` samples (see :meth:`sample`): a list of PIL images, or with ``output_type="pt"`` a tensor
        (N, C, H, W) in [0, 1]; the texts they show are in ``pipe.texts``."""
        if output_type not in ("pil", "pt"):
            raise ValueError(f"output_type must be 'pil' or 'pt', got {output_type!r}")
        images, _ = self.sample(num_images, text, temperature, seed, batch_size)
        return to_pil(images) if output_type == "pil" else images
