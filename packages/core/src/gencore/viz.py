"""PNG output: image grids, loss curves from metrics.csv, latent traversals."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gencore.errors import OutputError
from gencore.fileio import atomic_file, check_output_target

__all__ = [
    "make_grid", "save_image_grid", "check_image_outputs", "save_dir_files", "image_format", "plot_metrics",
    "latent_traversal",
]  # fmt: skip


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """Tile (B, C, H, W) images into one (C, H', W') image, ``nrow`` per row (default: about square)."""
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(images.shape)}")
    b, c, h, w = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(b)))
    rows = math.ceil(b / nrow)
    grid = torch.full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value)
    for i in range(b):
        r, col = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, y : y + h, x : x + w] = images[i]
    return grid


def save_image_grid(
    images: torch.Tensor,
    path: str | Path,
    nrow: int | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    min_tile: int = 64,
    padding: int = 2,
    inputs: tuple[str | Path, ...] = (),
) -> Path:
    """Write images (B, C, H, W) with values in ``value_range`` as one image grid, in the format ``path``'s suffix
    names (``.png``, ``.jpg``, ...); returns the path.

    Tiles smaller than ``min_tile`` pixels are enlarged by an integer factor (nearest neighbour) to stay legible.
    ``path`` is checked first (:func:`gencore.fileio.check_output_target`: an existing file is replaced only when it
    is an image, never when it is one of the command's ``inputs`` or a model's file), so a wrong ``-o`` is one
    line and nothing is lost.
    """
    fmt = image_format(path)
    check_output_target(path, "image", inputs)
    lo, hi = value_range
    images = images.detach().float().cpu()
    if images.ndim == 3:
        images = images.unsqueeze(1)
    images = ((images - lo) / (hi - lo)).clamp(0, 1)
    factor = math.ceil(min_tile / max(images.shape[-2:]))
    if factor > 1:
        images = images.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
    grid = make_grid(images, nrow=nrow, padding=padding)
    array = (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    if array.shape[2] == 1:
        array = array[:, :, 0]
    path = Path(path)
    try:
        with atomic_file(path) as tmp:
            Image.fromarray(array).save(tmp, format=fmt)
    except OSError as exc:  # named by the destination, not by the temporary file beside it
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def check_image_outputs(paths: Sequence[str | Path], inputs: tuple[str | Path, ...] = ()) -> None:
    """Check, before any work, every image file a command will write (its ``-o`` grid and each file of a
    ``--save-dir``) as :func:`save_image_grid` does: an image file name, and nothing it would destroy."""
    for path in paths:
        image_format(path)
        check_output_target(path, "image", inputs)


def save_dir_files(folder: str | Path, names: Sequence[str]) -> list[Path]:
    """The image files a ``--save-dir FOLDER`` will receive, ``FOLDER/NAME`` each, checked before any work as
    :func:`check_image_outputs` checks them; every one stays inside ``folder`` (:func:`gencore.paths.safe_join`: a
    class name read from a model cannot lead out), and an empty folder name, which would mean the current folder,
    is refused."""
    from gencore.paths import safe_join

    if not str(folder).strip():
        raise OutputError("--save-dir is empty; give a folder for the images")
    paths = [safe_join(folder, name, what="image name") for name in names]
    check_image_outputs(paths)
    return paths


def image_format(path: str | Path) -> str:
    """The PIL format that ``path``'s suffix names (``PNG`` for ``.png``); OutputError for a name that is not an
    image file's, so ``-o notes.txt`` is refused rather than filled with PNG bytes."""
    if not str(path).strip():
        raise OutputError("an output path is empty; give a file name such as grid.png")
    suffix = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None or fmt not in Image.SAVE or suffix in (".pdf", ".eps", ".ps"):
        raise OutputError(f"{path}: not an image file name; end it in .png (or .jpg, .webp, .bmp, .tif)")
    return fmt


def plot_metrics(csv_path: str | Path, png_path: str | Path, columns: Sequence[str] | None = None) -> Path | None:
    """Plot the numeric columns of a metrics.csv against ``step`` (one panel each); None if nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    csv_path = Path(csv_path)
    if not csv_path.is_file():
        return None
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:  # a byte-order mark is fine
        rows = list(csv.DictReader(fh))
    skip = {"step", "epoch", "steps_per_s"}
    names = list(columns) if columns else [k for k in (rows[0].keys() if rows else []) if k not in skip]
    series = {}
    for name in names:
        pts = [(float(r["step"]), float(r[name])) for r in rows if r.get(name) not in (None, "")]
        pts = [(s, v) for s, v in pts if math.isfinite(v)]
        if pts and len({v for _, v in pts}) > 1:  # constant columns (a fixed lr) say nothing in a plot
            series[name] = pts
    if not series:
        return None
    cols = min(3, len(series))
    nrows = math.ceil(len(series) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.5 * cols, 3.2 * nrows), squeeze=False)
    for ax, (name, pts) in zip(axes.flat, series.items()):
        xs, ys = zip(*pts)
        ax.plot(xs, ys, lw=1.2)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(series) :]:
        ax.axis("off")
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


def latent_traversal(
    decode: Callable[[torch.Tensor], torch.Tensor],
    z: torch.Tensor,
    dims: Sequence[int],
    span: float = 3.0,
    steps: int = 9,
) -> torch.Tensor:
    """Decode ``z`` (1, D) with each of ``dims`` swept over [-span, span]; returns (len(dims)*steps, C, H, W)."""
    values = torch.linspace(-span, span, steps)
    batch = z.repeat(len(dims) * steps, 1).clone()
    for i, d in enumerate(dims):
        batch[i * steps : (i + 1) * steps, d] = values
    with torch.no_grad():
        return decode(batch)
