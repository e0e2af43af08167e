"""Image data sets in the layouts users have, with loading that names the bad file instead of crashing.

* :class:`ImageFolderDataset`: ``root/<class>/<image>`` (class folders).
* :class:`IndexFileDataset`: a text file of ``path<TAB>class`` lines (tab, comma or last whitespace-separated field).
* :class:`FilenameLabelDataset`: the label is in the file name (``root/a7x2k.png`` -> ``"a7x2k"``).

Items are ``(image_tensor, label)``; images are float tensors in [-1, 1], (C, H, W). A file that cannot be read
raises :class:`~gencore.errors.DataError` naming it (``bad_files="raise"``), or is dropped when the data set is
built (``bad_files="skip"``, every file is decoded once up front and the count is reported).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from gencore.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "load_image",
    "image_to_tensor",
    "ImageFolderDataset",
    "IndexFileDataset",
    "FilenameLabelDataset",
    "TensorImageDataset",
    "split_indices",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
BadFiles = Literal["raise", "skip"]
Transform = Callable[[Image.Image], torch.Tensor]


def load_image(path: str | Path, mode: str = "RGB", size: tuple[int, int] | None = None) -> Image.Image:
    """Open and fully decode an image, converted to ``mode`` and optionally resized to ``size`` = (W, H).

    Missing, truncated, zero-byte and non-image files raise DataError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            img = img.convert(mode)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        reason = "empty file" if path.stat().st_size == 0 else str(exc).split("\n")[0]
        raise DataError(f"cannot read image {path}: {reason}") from None
    if size is not None and img.size != tuple(size):
        img = img.resize(tuple(size), Image.BICUBIC)
    return img


def image_to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image -> float tensor (C, H, W) in [-1, 1]."""
    array = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


class _LabelledImages(Dataset):
    """Shared machinery: a list of (path, label), a loader, the bad-file policy."""

    def __init__(
        self,
        items: list[tuple[Path, int | str]],
        mode: str,
        size: tuple[int, int] | None,
        transform: Callable[[Image.Image], torch.Tensor] | None,
        bad_files: BadFiles,
        source: str,
    ) -> None:
        if bad_files not in ("raise", "skip"):
            raise ValueError(f"bad_files must be 'raise' or 'skip', got {bad_files!r}")
        self.mode, self.size, self.transform = mode, size, transform
        if bad_files == "skip":
            good = []
            for path, label in items:
                try:
                    load_image(path, mode)
                    good.append((path, label))
                except DataError as exc:
                    warnings.warn(f"skipping {exc}", stacklevel=3)
            if len(good) < len(items):
                warnings.warn(f"{source}: skipped {len(items) - len(good)} unreadable file(s)", stacklevel=3)
            items = good
        if not items:
            raise DataError(f"no readable images in {source}")
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> torch.Tensor:
        """The image at ``index`` as a tensor."""
        img = load_image(self.items[index][0], self.mode, self.size)
        return self.transform(img) if self.transform is not None else image_to_tensor(img)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int | str]:
        return self.load(index), self.items[index][1]


class ImageFolderDataset(_LabelledImages):
    """``root/<class_name>/**/<image>``; labels are class indices in sorted class-name order (``self.classes``)."""

    def __init__(
        self,
        root: str | Path,
        mode: str = "RGB",
        size: tuple[int, int] | None = None,
        transform: Transform | None = None,
        classes: Sequence[str] | None = None,
        bad_files: BadFiles = "raise",
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"image folder not found: {root}")
        found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if classes is not None:
            unknown = sorted(set(classes) - set(found))
            if unknown:
                raise DataError(f"{root}: no folder for class(es) {', '.join(unknown)}")
            found = list(classes)
        if not found:
            raise DataError(f"{root} has no class folders (expected {root}/<class>/<image>)")
        self.classes = found
        self.class_to_index = {c: i for i, c in enumerate(found)}
        items = [(p, self.class_to_index[c]) for c in found for p in _list_images(root / c)]
        super().__init__(items, mode, size, transform, bad_files, str(root))


class IndexFileDataset(_LabelledImages):
    """Lines ``path<TAB>class`` (or ``path,class``, or ``path class``); relative paths are read from ``root``
    (default: the index file's folder). Blank lines and lines starting with ``#`` are ignored."""

    def __init__(
        self,
        index_file: str | Path,
        root: str | Path | None = None,
        mode: str = "RGB",
        size: tuple[int, int] | None = None,
        transform: Transform | None = None,
        classes: Sequence[str] | None = None,
        bad_files: BadFiles = "raise",
    ) -> None:
        index_file = Path(index_file)
        if not index_file.is_file():
            raise DataError(f"index file not found: {index_file}")
        root = Path(root) if root is not None else index_file.parent
        try:
            lines = index_file.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise DataError(f"{index_file} is not a UTF-8 text file") from None
        pairs = []
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            for sep in ("\t", ",", None):
                parts = text.rsplit(sep, 1) if sep else text.rsplit(maxsplit=1)
                if len(parts) == 2 and parts[0].strip() and parts[1].strip():
                    break
            else:
                raise DataError(f"{index_file}:{number}: expected 'PATH<TAB>CLASS', got {text!r}")
            path = Path(parts[0].strip())
            pairs.append((path if path.is_absolute() else root / path, parts[1].strip(), number))
        names = sorted({c for _, c, _ in pairs}) if classes is None else list(classes)
        self.classes = names
        self.class_to_index = {c: i for i, c in enumerate(names)}
        items = []
        for path, cls, number in pairs:
            if cls not in self.class_to_index:
                raise DataError(f"{index_file}:{number}: unknown class {cls!r}")
            if bad_files == "raise" and not path.is_file():
                raise DataError(f"{index_file}:{number}: image not found: {path}")
            items.append((path, self.class_to_index[cls]))
        super().__init__(items, mode, size, transform, bad_files, str(index_file))


class FilenameLabelDataset(_LabelledImages):
    """Images whose file name holds the label: the stem, or the first group of ``pattern`` matched on the stem
    (e.g. ``r"^([a-z0-9]+)"`` for ``ab12c_03.png``). Labels are strings."""

    def __init__(
        self,
        root: str | Path,
        pattern: str | None = None,
        mode: str = "RGB",
        size: tuple[int, int] | None = None,
        transform: Transform | None = None,
        bad_files: BadFiles = "raise",
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"image folder not found: {root}")
        regex = re.compile(pattern) if pattern else None
        items: list[tuple[Path, int | str]] = []
        for path in _list_images(root):
            if regex is None:
                items.append((path, path.stem))
                continue
            match = regex.search(path.stem)
            if match is None:
                raise DataError(f"{path}: file name does not match the label pattern {pattern!r}")
            items.append((path, match.group(1) if match.groups() else match.group(0)))
        super().__init__(items, mode, size, transform, bad_files, str(root))


class TensorImageDataset(Dataset):
    """In-memory images (N, C, H, W) with optional labels, e.g. an embedded default data set."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        if images.ndim != 4:
            raise DataError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
        if labels is not None and len(labels) != len(images):
            raise DataError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.labels is None:
            return self.images[index]
        return self.images[index], self.labels[index]


def split_indices(
    n: int, fractions: Sequence[float], seed: int = 0, labels: Sequence[int] | None = None
) -> list[list[int]]:
    """Deterministic split of ``range(n)`` into parts of the given fractions (the last absorbs rounding).

    With ``labels`` the split is stratified: each class is split in the same proportions.
    """
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be >= 0 and sum to 1, got {list(fractions)}")
    gen = torch.Generator().manual_seed(seed)
    groups = [list(range(n))] if labels is None else [
        [i for i in range(n) if labels[i] == c] for c in sorted(set(labels))
    ]  # fmt: skip
    parts: list[list[int]] = [[] for _ in fractions]
    for group in groups:
        order = [group[i] for i in torch.randperm(len(group), generator=gen).tolist()]
        start = 0
        for k, frac in enumerate(fractions):
            end = len(order) if k == len(fractions) - 1 else start + round(frac * len(order))
            parts[k] += order[start:end]
            start = end
    return [sorted(p) for p in parts]
