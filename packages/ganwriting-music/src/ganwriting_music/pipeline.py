"""Python entry point for inference: trained networks that draw music symbols of the requested classes in the
style of a few reference images of one writer, as PIL images (what ``ganwriting-music generate`` runs).

    from ganwriting_music import GanwritingPipeline

    pipe = GanwritingPipeline.from_pretrained("runs/ganwriting-music", device="cpu")
    images = pipe("gClef", style="font:Petaluma", num_images=8, seed=0)  # a list of PIL images
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganwriting_music.config import GanwritingConfig
from ganwriting_music.data import canonical_class
from ganwriting_music.evaluate import generate_from_style, run_config, style_references
from ganwriting_music.model import Networks
from ganwriting_music.train import load_networks
from gencore.errors import ConfigError

__all__ = ["GanwritingPipeline", "class_labels", "references", "to_pil"]


def references(config: GanwritingConfig, style: str | Path | None, seed: int = 0) -> torch.Tensor:
    """Reference images (N, 1, S, S) in [-1, 1] of one writer, as ``--style-from`` takes them: a folder of that
    writer's images, ``font:NAME`` for an embedded font, or None for the run's first training writer."""
    if style is None:
        if config.data.source != "fonts":
            raise ConfigError("--style-from is required for runs trained on your own data")
        style = f"font:{config.data.fonts[0]}"
    return style_references(str(style), config, seed)


def class_labels(classes: Sequence[str], names: str | Sequence[str], n: int) -> torch.Tensor:
    """``n`` class indices cycling through ``names`` (``"all"``, ``"gClef"``, ``"gClef,stem"`` or a list of names,
    matched case-insensitively)."""
    if isinstance(names, str) and names == "all":
        chosen = list(range(len(classes)))
    else:
        items = names.split(",") if isinstance(names, str) else list(names)
        chosen = [classes.index(canonical_class(c, classes)) for c in items if c.strip()]
    if not chosen:
        raise ConfigError("no symbol class given")
    return torch.tensor([chosen[i % len(chosen)] for i in range(n)])


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """Images (N, 1, H, W) in [-1, 1] -> grey PIL images (ink dark on white)."""
    array = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    return [Image.fromarray(np.ascontiguousarray(a[0])) for a in array]


class GanwritingPipeline:
    """The trained generator (with D and R, as ``train`` saved them) and the run's config (its data settings)."""

    def __init__(self, nets: Networks, config: GanwritingConfig | None = None) -> None:
        self.nets = nets
        self.config = config

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> GanwritingPipeline:
        """Load the networks of ``path`` (a run directory or its ``model/``) onto ``device``; a run directory also
        gives the run's config (needed for the default style, the run's first training writer)."""
        path = Path(path)
        nets = load_networks(path, device)
        config = run_config(path) if (path / "model").is_dir() and (path / "config.json").is_file() else None
        return cls(nets, config)

    @property
    def device(self) -> torch.device:
        return next(self.nets.parameters()).device

    @property
    def classes(self) -> list[str]:
        """The symbol classes the model draws (SMuFL names)."""
        return list(self.nets.config.classes)

    def references(self, style: str | Path | None = None, seed: int = 0) -> torch.Tensor:
        """Reference images of one writer (see :func:`references`); without the run's config, folders and fonts
        are read at the model's size with the default data settings."""
        config = self.config
        if config is None:
            if style is None:
                raise ConfigError("give style= (a folder of one writer's images or font:NAME) for a model directory")
            base = GanwritingConfig()
            data = replace(base.data, image_size=self.nets.config.image_size, classes=self.classes)
            config = replace(base, data=data)
        return references(config, style, seed)

    @torch.no_grad()
    def __call__(
        self, symbol: str | Sequence[str] = "all", style: str | Path | torch.Tensor | None = None,
        num_images: int = 16, seed: int = 0, output_type: str = "pil",
    ) -> list[Image.Image] | torch.Tensor:  # fmt: skip
        """``num_images`` symbols cycling through ``symbol`` (a class name, ``"a,b"``, a list, or ``"all"``) in the
        style of ``style``: a folder of one writer's images (any classes), ``font:NAME``, a tensor of reference
        images (N, 1, S, S) in [-1, 1], or None for the run's first training writer. The same images as
        ``ganwriting-music generate RUN --class SYMBOL --style-from STYLE -n NUM --seed SEED`` on the CPU. A list
        of PIL images, or with ``output_type="pt"`` a tensor (N, 1, S, S) in [-1, 1]."""
        if output_type not in ("pil", "pt"):
            raise ValueError(f"output_type must be 'pil' or 'pt', got {output_type!r}")
        refs = style if isinstance(style, torch.Tensor) else self.references(style, seed)
        labels = class_labels(self.classes, symbol, num_images)
        device = self.device
        images = generate_from_style(self.nets, refs.to(device), labels.to(device), self.nets.config.model.k_refs, seed)
        return to_pil(images) if output_type == "pil" else images
