"""Data: molecule depictions rendered with RDKit, image folders, and conditioning images (Perlin, Gaussian, files).

Images are float tensors (N, C, H, W) in [-1, 1] with white background = 1 and ink = -1, as drawn by RDKit.

The rendered training molecules are kept in the user's cache (``gencore.fileio.cache_dir()``, folder
``vqgan-negatives-molecules``) under a hash of what they depend on (:func:`molecule_key`): the prior, trained after
its first stage with the same data settings, and any later run read the very same images instead of drawing them
again (verified against the entry's manifest; a damaged entry is rendered again and replaced).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gencore.checkpoint import atomic_cache_dir, load_tree, save_tree, verify_dir
from gencore.data import IMAGE_EXTENSIONS, announce, count_summary, image_to_tensor, load_image
from gencore.distributed import is_launch_main
from gencore.errors import CheckpointError, ConfigError, DataError, OutputError
from gencore.fileio import cache_dir
from gencore.memory import require_memory, tensor_bytes
from gencore.noise import perlin_grid
from gencore.paths import read_text_lines
from vqgan_negatives.config import ConditionConfig, DataConfig, RenderConfig

__all__ = [
    "smiles_list",
    "render_molecule",
    "render_molecules",
    "write_molecule_folder",
    "load_image_folder",
    "load_training_images",
    "cached_molecule_images",
    "PerlinParams",
    "perlin_image",
    "perlin_images",
    "gaussian_images",
    "condition_from_target",
    "gaussian_blur",
]


def smiles_list(path: str | Path | None = None) -> list[str]:
    """SMILES strings of RDKit's shipped NCI set (``rdkit/Data/NCI/first_5K.smi``), or of a given .smi file."""
    if path is None:
        from rdkit import RDConfig

        path = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"
    path = Path(path)
    if not path.is_file():
        raise DataError(f"SMILES file not found: {path}")
    lines = read_text_lines(path, "SMILES file")  # a byte-order mark and CRLF line ends are fine
    out = [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]
    if not out:
        raise DataError(f"{path} holds no SMILES")
    return out


#: Largest side of a Cairo image surface (RDKit's MolDraw2DCairo); a larger one is not created and RDKit returns
#: no PNG at all.
CAIRO_MAX_SIDE = 32767


def canvas_side(options: RenderConfig) -> int:
    """Side of RDKit's drawing canvas (``size x supersample``); a canvas Cairo cannot make raises ConfigError."""
    canvas = options.size * options.supersample
    if canvas > CAIRO_MAX_SIDE:
        raise ConfigError(
            f"molecules are drawn on a canvas of data.render.size x supersample = {options.size} x "
            f"{options.supersample} = {canvas} px; Cairo allows at most {CAIRO_MAX_SIDE} (lower --image-size or "
            "data.render.supersample)"
        )
    return canvas


def render_molecule(smiles: str, options: RenderConfig, rotation: float = 0.0) -> Image.Image | None:
    """One depiction as a grey (or RGB when ``options.colour``) PIL image; None when RDKit cannot parse it."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem.Draw import rdMolDraw2D

    canvas = canvas_side(options)
    RDLogger.DisableLog("rdApp.*")  # a few NCI entries fail sanitisation; they are skipped, not shouted about
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    drawer = rdMolDraw2D.MolDraw2DCairo(canvas, canvas)
    opts = drawer.drawOptions()
    opts.bondLineWidth = max(1, round(options.line_width * options.supersample))
    opts.rotate = float(rotation)
    opts.noAtomLabels = not options.atom_labels
    if not options.colour:
        opts.useBWAtomPalette()
    drawer.DrawMolecule(mol)
    drawer.FinishDrawing()
    img = Image.open(io.BytesIO(drawer.GetDrawingText())).convert("RGB" if options.colour else "L")
    return img.resize((options.size, options.size), Image.LANCZOS)


@dataclass
class RenderedSet:
    """Rendered molecules: images (N, C, H, W) in [-1, 1] and, per image, its SMILES and rotation."""

    images: torch.Tensor
    smiles: list[str]
    rotations: list[float]


def render_molecules(n: int, options: RenderConfig, seed: int = 0, smiles: list[str] | None = None) -> RenderedSet:
    """``n`` depictions of molecules drawn (without replacement, then cycling) in a seeded order."""
    canvas = canvas_side(options)
    channels = 3 if options.colour else 1
    # the result (float32) plus one canvas at a time (Cairo's 4 bytes a pixel, then its PNG and PIL copies)
    require_memory(tensor_bytes([n, channels, options.size, options.size]) + 3 * tensor_bytes([canvas, canvas]),
                   f"{n} molecule depictions of {channels}x{options.size}x{options.size} drawn on "
                   f"{canvas}x{canvas} canvases (data.num_images, --image-size)")  # fmt: skip
    pool = smiles if smiles is not None else smiles_list()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pool))
    images, names, rotations = [], [], []
    i = 0
    while len(images) < n:
        if i >= 2 * len(pool) + n:  # only unparsable SMILES left
            raise DataError(f"could render only {len(images)} of {n} molecules")
        smi = pool[order[i % len(pool)]]
        angle = float(rng.uniform(-options.max_rotation, options.max_rotation))
        i += 1
        img = render_molecule(smi, options, angle)
        if img is None:
            continue
        images.append(image_to_tensor(img))
        names.append(smi)
        rotations.append(angle)
    return RenderedSet(torch.stack(images) if images else torch.empty(0), names, rotations)


def write_molecule_folder(out_dir: str | Path, n: int, options: RenderConfig, seed: int = 0) -> Path:
    """Render ``n`` molecules to ``out_dir/mol_00000.png ...`` plus ``index.csv`` (file, smiles, rotation)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rendered = render_molecules(n, options, seed)
    rows = []
    for k, (img, smi, rot) in enumerate(zip(rendered.images, rendered.smiles, rendered.rotations)):
        name = f"mol_{k:05d}.png"
        save_tensor_image(img, out / name)
        rows.append({"file": name, "smiles": smi, "rotation": f"{rot:.2f}"})
    with open(out / "index.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, ["file", "smiles", "rotation"])
        writer.writeheader()
        writer.writerows(rows)
    return out


def save_tensor_image(image: torch.Tensor, path: str | Path) -> Path:
    """Write one (C, H, W) image in [-1, 1] as an 8-bit PNG."""
    array = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).numpy()
    array = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)
    Image.fromarray(array).save(path)
    return Path(path)


def load_image_folder(root: str | Path, size: int, channels: int = 1, limit: int | None = None) -> torch.Tensor:
    """Every image under ``root`` (recursive, sorted), resized to ``size`` x ``size``: (N, C, H, W) in [-1, 1].

    The images have no classes, so a folder of loose images beside sub-folders is not ambiguous here: every image
    is taken, and how many came from where is printed. An unreadable file raises :class:`DataError` naming it; an
    empty folder too.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"{root} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    files = files[:limit] if limit else files
    where = Counter(p.relative_to(root).parts[0] + "/" if len(p.relative_to(root).parts) > 1 else "loose"
                    for p in files)  # fmt: skip
    announce(f"read {len(files)} images from {root}: {count_summary(dict(sorted(where.items())))}")
    mode = "L" if channels == 1 else "RGB"
    return torch.stack([image_to_tensor(load_image(p, mode, (size, size))) for p in files])


#: Part of the cache key of rendered molecules: raise it when rendering changes what given settings and seed give.
MOLECULE_CACHE_VERSION = 1
MOLECULE_CACHE = "vqgan-negatives-molecules"  # the folder under gencore.fileio.cache_dir()
_CACHE_PRODUCER = "vqgan-negatives molecule cache"


def molecule_key(n: int, options: RenderConfig, seed: int) -> str:
    """The hash that names :func:`render_molecules`' images of the shipped SMILES list in the cache: the count, the
    render settings, the seed and the versions of RDKit (drawing and the list), Pillow and NumPy (the order)."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "?"

    record = {"version": MOLECULE_CACHE_VERSION, "n": n, "seed": seed, "render": dataclasses.asdict(options),
              "rdkit": installed("rdkit"), "pillow": installed("pillow"), "numpy": np.__version__}  # fmt: skip
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:32]


def cached_molecule_images(n: int, options: RenderConfig, seed: int = 0) -> torch.Tensor:
    """:func:`render_molecules`' images: from the user's cache when the same settings drew them before
    (:func:`molecule_key`), else rendered (and cached by the launch's main process; a read-only or full cache only
    gets a note). The images are the same either way."""
    entry = cache_dir(MOLECULE_CACHE, molecule_key(n, options, seed))
    shape = (n, 3 if options.colour else 1, options.size, options.size)
    if (entry / "manifest.json").is_file():
        try:
            verify_dir(entry)
            images = load_tree(entry, "molecules")["images"]
            if tuple(images.shape) != shape or images.dtype != torch.float32:
                raise CheckpointError(f"{entry} holds {tuple(images.shape)} images, not {shape}")
            return images
        except (CheckpointError, KeyError, TypeError) as exc:
            announce(f"note: cached molecules not used ({exc}); rendering them again")
    images = render_molecules(n, options, seed).images
    if is_launch_main():
        try:
            with atomic_cache_dir(entry, _CACHE_PRODUCER, "molecules") as tmp:
                save_tree({"images": images}, tmp, "molecules")
        except (OSError, OutputError) as exc:
            announce(f"note: rendered molecules not cached ({getattr(exc, 'strerror', None) or exc}: {entry})")
    return images


def load_training_images(data: DataConfig, size: int, seed: int = 0) -> torch.Tensor:
    """The configured training images at ``size``: rendered molecules (:func:`cached_molecule_images`) or a folder
    (``data.source``)."""
    if data.source == "molecules":
        render = RenderConfig(**{**data.render.__dict__, "size": size, "colour": data.channels == 3})
        return cached_molecule_images(data.num_images, render, seed)
    return load_image_folder(data.source, size, data.channels, limit=data.num_images or None)


# --- conditioning images -----------------------------------------------------------------------------------------


@dataclass
class PerlinParams:
    """Perlin conditioning image: fractal noise, then contrast and an optional threshold (binary blobs)."""

    scale: float = 16.0  # pixels per lattice cell of the first octave (larger = bigger blobs)
    octaves: int = 3
    persistence: float = 0.5
    lacunarity: float = 2.0
    seed: int = 0
    contrast: float = 2.0  # the noise.pnoise2 field (within about ±0.7) is multiplied by this, then clipped
    threshold: float | None = None  # if set, ink where the contrasted field is below it (binary image)


def _perlin_fields(size: int, params: PerlinParams, seeds: list[int]) -> torch.Tensor:
    """(len(seeds), 1, size, size) images in [-1, 1]: ``noise.pnoise2`` values (:mod:`gencore.noise`), contrast,
    optional threshold."""
    field_ = perlin_grid((size, size), params.scale, params.octaves, params.persistence, params.lacunarity, seeds)
    field_ = field_ * np.float32(params.contrast)
    if params.threshold is not None:
        field_ = np.where(field_ < params.threshold, np.float32(-1), np.float32(1))
    return torch.from_numpy(np.clip(field_, -1.0, 1.0)).float()[:, None]


def perlin_image(size: int, params: PerlinParams) -> torch.Tensor:
    """A (1, size, size) conditioning image in [-1, 1] (seed ``params.seed``)."""
    return _perlin_fields(size, params, [params.seed])[0]


def perlin_images(n: int, size: int, params: PerlinParams, channels: int = 1) -> torch.Tensor:
    """``n`` Perlin images with seeds ``params.seed``, ``params.seed + 1``, ... : (n, channels, size, size)."""
    images = _perlin_fields(size, params, [params.seed + i for i in range(n)])
    return images.expand(-1, channels, -1, -1).contiguous()


def gaussian_images(n: int, size: int, seed: int = 0, blur_sigma: float = 1.0, channels: int = 1) -> torch.Tensor:
    """White Gaussian noise, optionally blurred, standardised and clipped to [-1, 1]: (n, channels, size, size)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, size, size, generator=gen)
    if blur_sigma > 0:
        x = gaussian_blur(x, blur_sigma)
    x = (x - x.mean(dim=(2, 3), keepdim=True)) / x.std(dim=(2, 3), keepdim=True).clamp(min=1e-6)
    return x.clamp(-1, 1).expand(-1, channels, -1, -1).contiguous()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) with reflect padding."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def condition_from_target(target: torch.Tensor, config: ConditionConfig, seed: int) -> torch.Tensor:
    """The training conditioning image of each target: its blurred ink map, stretched, with Perlin noise mixed in.

    Deterministic given ``seed`` (one Perlin field per image, seeds ``seed``, ``seed + 1``, ...).
    """
    ink = (1.0 - target.mean(1, keepdim=True)) / 2  # 0 = background, 1 = ink
    blurred = gaussian_blur(ink, config.blur_sigma) if config.blur_sigma > 0 else ink
    peak = blurred.amax(dim=(2, 3), keepdim=True).clamp(min=1e-6)
    cond = 1.0 - 2.0 * (blurred / peak)  # ink-dense regions dark, like the dark blobs of a Perlin image
    if config.noise_mix > 0:
        params = PerlinParams(scale=config.perlin_scale, octaves=config.perlin_octaves, seed=seed)
        noise = perlin_images(len(target), target.shape[-1], params).to(target)
        cond = (1 - config.noise_mix) * cond + config.noise_mix * noise
    return cond.clamp(-1, 1).expand(-1, target.shape[1], -1, -1).contiguous()
