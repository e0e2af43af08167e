"""Cleaning generated look-alikes: each filter is cheap, explainable and reported per image.

Filters, applied in this order (an image is rejected by the first that fires; the reason goes to the manifest):

1. ``empty`` / ``saturated``: the ink fraction (pixels darker than mid-grey) is below ``min_ink`` (a blank page
   teaches a classifier nothing) or above ``max_ink`` (a black blob is not a drawing).
2. ``noisy``: too many isolated ink pixels (ink with at most one inked 8-neighbour) among all ink pixels: speckle
   rather than strokes. Line drawings have almost none.
3. ``memorised``: the nearest training image, compared on 16x16 area-averaged thumbnails (which ignore the
   first stage's small reconstruction errors), is closer than ``min_train_distance`` (RMS in [-1, 1] units):
   the generator copied a real molecule, which would be a false "negative".
4. ``molecule``: an optional molecule classifier scores the image above ``max_molecule_score``.
5. ``duplicate``: the 256-bit average hash (16x16 thumbnail vs. its mean) is within ``max_hash_distance`` bits of
   an image already kept; the first of a group of near-duplicates stays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["CleanConfig", "ink_fraction", "isolated_fraction", "average_hash", "nearest_distance", "clean"]


@dataclass
class CleanConfig:
    """Thresholds of the cleaning filters (see the module docstring)."""

    min_ink: float = 0.01
    max_ink: float = 0.45
    max_isolated: float = 0.25
    min_train_distance: float = 0.08
    max_molecule_score: float = 0.5
    max_hash_distance: int = 24


def _grey(images: torch.Tensor) -> torch.Tensor:
    return images.float().mean(1, keepdim=True)


def ink_fraction(images: torch.Tensor) -> torch.Tensor:
    """(N,) fraction of pixels darker than mid-grey; images in [-1, 1] with white background."""
    return (_grey(images) < 0).float().flatten(1).mean(1)


def isolated_fraction(images: torch.Tensor) -> torch.Tensor:
    """(N,) fraction of ink pixels with at most one inked 8-neighbour (0 when there is no ink)."""
    ink = (_grey(images) < 0).float()
    kernel = torch.ones(1, 1, 3, 3)
    kernel[0, 0, 1, 1] = 0
    neighbours = F.conv2d(ink, kernel.to(ink), padding=1)
    isolated = (ink * (neighbours <= 1).float()).flatten(1).sum(1)
    return isolated / ink.flatten(1).sum(1).clamp(min=1)


def thumbnails(images: torch.Tensor, side: int = 16) -> torch.Tensor:
    """(N, side*side) area-averaged grey thumbnails."""
    return F.adaptive_avg_pool2d(_grey(images), side).flatten(1)


def average_hash(images: torch.Tensor) -> torch.Tensor:
    """(N, 256) boolean average hash: 16x16 thumbnail pixels brighter than the thumbnail's mean."""
    t = thumbnails(images)
    return t > t.mean(1, keepdim=True)


def nearest_distance(images: torch.Tensor, reference: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """(N,) RMS distance of each image's thumbnail to its nearest ``reference`` thumbnail."""
    ref = thumbnails(reference)
    out = [torch.cdist(thumbnails(chunk), ref).min(1).values for chunk in images.split(batch_size)]
    return torch.cat(out) / ref.shape[1] ** 0.5


def clean(
    images: torch.Tensor,
    config: CleanConfig,
    training_images: torch.Tensor | None = None,
    molecule_score: Callable[[torch.Tensor], torch.Tensor] | None = None,
    kept_hashes: torch.Tensor | None = None,
) -> list[str]:
    """One verdict per image: ``"kept"`` or the name of the filter that rejected it (see the module docstring).

    ``kept_hashes`` (M, 256) are hashes of images kept earlier (batches cleaned one after another).
    """
    ink, iso = ink_fraction(images), isolated_fraction(images)
    near = nearest_distance(images, training_images) if training_images is not None else None
    scores = molecule_score(images) if molecule_score is not None else None
    hashes = average_hash(images)
    kept = [h for h in (kept_hashes if kept_hashes is not None else [])]
    verdicts = []
    for i in range(len(images)):
        if ink[i] < config.min_ink:
            verdict = "empty"
        elif ink[i] > config.max_ink:
            verdict = "saturated"
        elif iso[i] > config.max_isolated:
            verdict = "noisy"
        elif near is not None and near[i] < config.min_train_distance:
            verdict = "memorised"
        elif scores is not None and scores[i] > config.max_molecule_score:
            verdict = "molecule"
        elif kept and min(int((hashes[i] ^ h).sum()) for h in kept) <= config.max_hash_distance:
            verdict = "duplicate"
        else:
            verdict = "kept"
            kept.append(hashes[i])
        verdicts.append(verdict)
    return verdicts
