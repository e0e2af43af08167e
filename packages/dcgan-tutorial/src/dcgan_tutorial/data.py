"""Training data that works offline.

Built-in sets are made from images that scikit-image ships inside its wheel:

* ``textures``: random crops of the ``brick``, ``grass`` and ``gravel`` photographs (grey); the class of a crop is
  the photograph it came from, which gives the evaluation classifier and the mode-coverage count their labels.
* ``faces``: the 100 face images of ``lfw_subset`` (25×25 grey), resized, plus their mirror images.
* ``photos``: random crops of the colour photographs ``astronaut``, ``coffee``, ``chelsea``, ``rocket`` and
  ``hubble_deep_field``; class = photograph.

Other sources: an image folder (flat, or one sub-folder per class; loose images beside sub-folders of images are
refused as ambiguous) and torchvision's MNIST, FashionMNIST, CIFAR-10 and CelebA when their files are already on
disk (``mnist:ROOT`` …; nothing is downloaded; a damaged or foreign file is a one-line DataError naming it).

Images are float tensors in [-1, 1], shape (C, H, W); every item is ``(image, class_index)``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from gencore.data import (
    IMAGE_EXTENSIONS,
    ImageFolderDataset,
    announce,
    count_summary,
    folder_layout,
    image_to_tensor,
    load_image,
    refuse_mixed,
    split_indices,
)
from gencore.errors import DataError

BUILTIN = {
    "textures": ("brick", "grass", "gravel"),
    "faces": ("lfw_subset",),
    "photos": ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field"),
}
TORCHVISION = {"mnist": "MNIST", "fashionmnist": "FashionMNIST", "cifar10": "CIFAR10", "celeba": "CelebA"}


@dataclass
class ImageSet:
    """Images (N, C, H, W) in [-1, 1] with integer labels and class names."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def subset(self, index: list[int]) -> ImageSet:
        """The images at ``index``."""
        return ImageSet(self.images[index], self.labels[index], self.classes)


class TensorPairs(Dataset):
    """(image, label) pairs of an :class:`ImageSet`, optionally mirrored at random (data augmentation)."""

    def __init__(self, data: ImageSet, flip: bool = False) -> None:
        self.data, self.flip = data, flip

    def __len__(self) -> int:
        return len(self.data.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.data.images[i]
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x, self.data.labels[i]


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(-1, 1)


def _to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    if images.shape[1] == channels:
        return images
    if channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (images * weights).sum(1, keepdim=True)
    return images.expand(-1, 3, -1, -1).contiguous()


def _skimage(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)()


def _crops(photos: list[np.ndarray], n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random square crops (side 2×``size``, then downsampled), spread evenly over the photographs."""
    rng = np.random.default_rng(seed)
    crop = 2 * size
    images, labels = [], []
    for i in range(n):
        k = i % len(photos)
        photo = photos[k]
        y = rng.integers(0, photo.shape[0] - crop + 1)
        x = rng.integers(0, photo.shape[1] - crop + 1)
        images.append(photo[y : y + crop, x : x + crop])
        labels.append(k)
    array = np.stack(images).astype(np.float32) / 127.5 - 1.0
    tensor = torch.from_numpy(array.transpose(0, 3, 1, 2).copy())
    return _resize(tensor, size), torch.tensor(labels)


def builtin_set(name: str, size: int, channels: int, num_images: int, seed: int = 0) -> ImageSet:
    """One of the built-in sets (see the module docstring), at ``size``×``size`` with ``channels`` channels."""
    if name == "faces":
        faces = torch.from_numpy(_skimage("lfw_subset")[:100].astype(np.float32))[:, None] * 2 - 1
        faces = torch.cat([faces, faces.flip(-1)])
        images = _to_channels(_resize(faces, size), channels)
        return ImageSet(images, torch.zeros(len(images), dtype=torch.long), ["face"])
    photos = []
    for source in BUILTIN[name]:
        array = _skimage(source)
        if array.ndim == 2:
            array = array[:, :, None]
        photos.append(array[:, :, :3])
    images, labels = _crops(photos, num_images, size, seed)
    return ImageSet(_to_channels(images, channels), labels, list(BUILTIN[name]))


def folder_set(root: Path, size: int, channels: int) -> ImageSet:
    """A flat folder of images, or one sub-folder per class (all images decoded once, errors name the file).

    Loose images beside sub-folders of images are ambiguous and refused (gencore.data.refuse_mixed); sub-folders
    without images are ignored. How many images of which classes were read is printed.
    """
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    mode = "L" if channels == 1 else "RGB"
    loose, class_folders = folder_layout(root)
    refuse_mixed(root, loose, class_folders)
    if class_folders:
        ds = ImageFolderDataset(root, mode=mode, size=(size, size), classes=list(class_folders))
        paths, labels, classes = [p for p, _ in ds.items], [y for _, y in ds.items], ds.classes
    else:
        paths, labels, classes = loose, [0] * len(loose), [root.name]
        if paths:
            announce(f"read {len(paths)} images of 1 class from {root} (a flat folder): {root.name} {len(paths)}")
    if not paths:
        raise DataError(f"no images in {root} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    images = torch.stack([image_to_tensor(load_image(p, mode, (size, size))) for p in paths])
    return ImageSet(images, torch.tensor(labels), list(classes))


def torchvision_set(spec: str, size: int, channels: int, limit: int) -> ImageSet:
    """``mnist:ROOT`` etc.: the first ``limit`` images of a torchvision set whose files are in ROOT (no download)."""
    name, _, root = spec.partition(":")
    import torchvision

    cls = getattr(torchvision.datasets, TORCHVISION[name])
    kwargs = {"split": "train"} if name == "celeba" else {"train": True}
    mode = "L" if channels == 1 else "RGB"
    images, labels = [], []
    try:
        ds = cls(root, download=False, **kwargs)
        data, targets = getattr(ds, "data", None), getattr(ds, "targets", None)
        if data is not None and targets is not None and len(data) != len(targets):
            raise DataError(f"{TORCHVISION[name]} under {root!r}: {len(data)} images but {len(targets)} labels")
        for i in range(min(limit, len(ds))):
            img, target = ds[i]
            images.append(image_to_tensor(img.convert(mode).resize((size, size))))
            labels.append(int(target) if not torch.is_tensor(target) else 0)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a damaged or foreign file raises is that file's problem
        raise _torchvision_error(name, root, exc) from None
    if not images:
        raise DataError(f"{TORCHVISION[name]} under {root!r} holds no images")
    classes = [str(c) for c in getattr(ds, "classes", ["all"])]
    counts = Counter(labels)
    per_class = {classes[k] if k < len(classes) else str(k): counts[k] for k in sorted(counts)}
    announce(f"read {len(images)} images of {len(counts)} class(es) from {TORCHVISION[name]} in {root}: "
             f"{count_summary(per_class)}")  # fmt: skip
    return ImageSet(torch.stack(images), torch.tensor(labels), classes)


def _torchvision_error(name: str, root: str, exc: Exception) -> DataError:
    """One line for a torchvision data set that failed to load: missing files, or the file that is broken."""
    title = TORCHVISION[name]
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, FileNotFoundError) or (isinstance(exc, RuntimeError) and "not found" in text.lower()):
        return DataError(f"{title} files not found under {root!r} ({text}); nothing is downloaded here")
    found = _mnist_culprit(title, root) if name in ("mnist", "fashionmnist") else None
    if found is not None:
        return DataError(f"cannot read {title} under {root!r}: {found[0]}: {found[1]}")
    return DataError(f"cannot read {title} under {root!r}: {text[:300]}")


def _mnist_culprit(title: str, root: str) -> tuple[Path, str] | None:
    """The MNIST-format file that torchvision could not read, and why (None when each reads on its own).

    torchvision reads ``<root>/<title>/processed/training.pt`` (with PyTorch's weights-only unpickler: a file
    whose pickle would run code is refused before anything in it runs) when it and ``test.pt`` exist, else the
    idx files in ``raw/``.
    """
    from torchvision.datasets.mnist import read_image_file, read_label_file

    folder = Path(root) / title
    legacy = [folder / "processed" / f for f in ("training.pt", "test.pt")]
    if all(p.is_file() for p in legacy):
        try:
            content = torch.load(legacy[0], map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001
            found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))  # the object the pickle wanted to call
            why = f"it would call {found.group(1)}" if found else " ".join(str(exc).split())[:200]
            return legacy[0], f"refused by PyTorch's weights-only unpickler, nothing in it ran ({why})"
        kind = type(content).__name__
        return legacy[0], f"holds a {kind}, not the (images, labels) tensors of torchvision's old MNIST format"
    raw = folder / "raw"
    for path, reader, what in ((raw / "train-images-idx3-ubyte", read_image_file, "idx image file (N×28×28)"),
                               (raw / "train-labels-idx1-ubyte", read_label_file, "idx label file")):  # fmt: skip
        try:
            reader(str(path))
        except Exception as exc:  # noqa: BLE001
            if path.is_file() and path.stat().st_size == 0:
                return path, f"empty file, not an {what}"
            if isinstance(exc, AssertionError) or not str(exc).strip():
                return path, f"not an {what} (bad header)"
            return path, f"not an {what} ({' '.join(str(exc).split())[:200]})"
    return None


def load_source(source: str, size: int, channels: int, num_images: int, seed: int = 0) -> ImageSet:
    """Resolve ``source`` (built-in name, ``name:ROOT`` torchvision set, or a folder path) to images."""
    if source in BUILTIN:
        return builtin_set(source, size, channels, num_images, seed)
    name = source.split(":", 1)[0].lower()
    if ":" in source and name in TORCHVISION:
        return torchvision_set(f"{name}:{source.split(':', 1)[1]}", size, channels, num_images)
    path = Path(source)
    if not path.exists():
        known = ", ".join([*BUILTIN, *(f"{k}:ROOT" for k in TORCHVISION)])
        raise DataError(f"data source {source!r} is neither a folder nor one of: {known}")
    return folder_set(path, size, channels)


def train_holdout(data: ImageSet, holdout_fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """A deterministic, class-stratified split into training images and held-out images."""
    if not 0 < holdout_fraction < 1:
        raise DataError(f"holdout_fraction must be between 0 and 1, got {holdout_fraction}")
    train_idx, hold_idx = split_indices(
        len(data.images), [1 - holdout_fraction, holdout_fraction], seed, labels=data.labels.tolist()
    )
    if not hold_idx or not train_idx:
        raise DataError(f"too few images ({len(data.images)}) to hold out {holdout_fraction:.0%} for evaluation")
    return data.subset(train_idx), data.subset(hold_idx)
