"""Pictures written during training: sampled vs real spectra, and a scene decoded by the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gencore.nn import evaluating
from m1_hyperspectral.data import Scene

MAX_SCENE_SIDE = 160  # the decoded scene image is cropped to this many pixels per side


def _figure_to_tensor(fig) -> torch.Tensor:  # noqa: ANN001 - a matplotlib Figure
    import matplotlib.pyplot as plt

    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    plt.close(fig)
    return torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1).float() / 255.0


def spectra_figure(
    real: torch.Tensor, fake: torch.Tensor, wavelengths: np.ndarray | None = None, title: str = ""
) -> torch.Tensor:
    """An RGB image (3, H, W) in [0, 1]: real spectra (left) and spectra sampled from the model (right)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    x = wavelengths if wavelengths is not None else np.arange(real.shape[1])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True, dpi=80)
    for ax, data, name in zip(axes, (real, fake), ("real pixels", "sampled from p(x|z), z ~ N(0, I)")):
        for row in data.numpy():
            ax.plot(x, row, lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("wavelength (nm)" if wavelengths is not None else "band")
    axes[0].set_ylabel("value")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _figure_to_tensor(fig)


def false_colour(cube: np.ndarray, wavelengths: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) in [0, 1] from three bands (near 650/550/450 nm when wavelengths are known), 2-98% stretched."""
    bands = cube.shape[2]
    if wavelengths is not None:
        idx = [int(np.abs(wavelengths - w).argmin()) for w in (650, 550, 450)]
    else:
        idx = [int(bands * f) for f in (0.75, 0.5, 0.25)]
    rgb = cube[..., idx].astype(np.float64)
    lo, hi = np.percentile(rgb, 2, axis=(0, 1)), np.percentile(rgb, 98, axis=(0, 1))
    return np.clip((rgb - lo) / np.maximum(hi - lo, 1e-12), 0, 1)


@torch.no_grad()
def reconstruct_cube(model, cube: np.ndarray, batch: int = 8192) -> np.ndarray:  # noqa: ANN001 - an M1
    """Each pixel encoded (posterior mean) and decoded (mean of p(x|z)), in raw units; shape of ``cube``."""
    device = next(model.parameters()).device
    flat = torch.from_numpy(cube.reshape(-1, cube.shape[2]))
    out = []
    for chunk in flat.split(batch):
        mean, _ = model.encode(model.normalize(chunk.to(device)))
        out.append(model.denormalize(model.mean_x(model.decode(mean))).cpu())
    return torch.cat(out).numpy().reshape(cube.shape)


def scene_figure(model, scene: Scene) -> torch.Tensor:  # noqa: ANN001 - an M1
    """(3, H, 2W + 4): the scene in false colour and the same scene decoded by the model, side by side."""
    cube = scene.cube[:MAX_SCENE_SIDE, :MAX_SCENE_SIDE]
    with evaluating(model):
        decoded = reconstruct_cube(model, cube)
    # The same stretch for both halves, so colours compare.
    both = false_colour(np.concatenate([cube, decoded], axis=1), scene.wavelengths)
    h, w = cube.shape[:2]
    image = np.ones((h, 2 * w + 4, 3))
    image[:, :w], image[:, w + 4 :] = both[:, :w], both[:, w:]
    return torch.from_numpy(image).permute(2, 0, 1).float()


def save_tensor_image(image: torch.Tensor, path: str | Path) -> Path:
    """Write one (3, H, W) image in [0, 1] as PNG (atomically)."""
    from gencore.viz import save_image_grid

    return save_image_grid(image[None], path, padding=0)


def label_colours(gt: np.ndarray) -> np.ndarray:
    """(H, W, 3) colours of class ids; background 0 is black."""
    import matplotlib

    palette = matplotlib.colormaps["tab20"](np.linspace(0, 1, 20))[:, :3]
    image = palette[(gt - 1) % 20]
    image[gt == 0] = 0.0
    return image


def preview_scene(cube: np.ndarray, gt: np.ndarray | None, wavelengths: np.ndarray | None, path: str | Path) -> Path:
    """PNG of the scene in false colour, beside its ground truth when there is one."""
    rgb = false_colour(cube, wavelengths)
    if gt is not None:
        h, w = gt.shape
        both = np.ones((h, 2 * w + 4, 3))
        both[:, :w], both[:, w + 4 :] = rgb, label_colours(gt)
        rgb = both
    return save_tensor_image(torch.from_numpy(rgb).permute(2, 0, 1).float(), path)
