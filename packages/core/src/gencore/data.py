"""Image data sets in the layouts users have, with loading that names the bad file instead of crashing.

* :class:`ImageFolderDataset`: ``root/<class>/<image>`` (class folders).
* :class:`TensorImageDataset`: images (and labels) already in memory, e.g. an embedded default data set.

The formats with a single user live in that package: ganwriting-music reads index files
(``path<TAB>class[<TAB>writer]``, :func:`ganwriting_music.data.read_index`), hvae-captcha folders whose file names
are the labels (:func:`hvae_captcha.data.read_folder`).

A folder holds either loose images or sub-folders of images, never both (:func:`refuse_mixed`: which one was
meant cannot be told, and taking either silently drops the other); every package that reads image folders applies
that rule, and each data set says how many images of which classes it read (:func:`announce`). An index file may
be saved with a byte-order mark and CRLF line ends (read it with :func:`gencore.paths.read_text_lines`); its paths
are relative to its folder, absolute ones taken as they are (:func:`gencore.paths.listed_path`).

Items are ``(image_tensor, label)``; images are float tensors in [-1, 1], (C, H, W). A file that cannot be read
raises :class:`~gencore.errors.DataError` naming it (``bad_files="raise"``), or is dropped when the data set is
built (``bad_files="skip"``, every file is decoded once up front and the count is reported).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from gencore.distributed import is_launch_main
from gencore.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "load_image",
    "image_to_tensor",
    "ImageFolderDataset",
    "TensorImageDataset",
    "split_indices",
    "folder_layout",
    "refuse_mixed",
    "count_summary",
    "announce",
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


def _is_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def folder_layout(root: str | Path) -> tuple[list[Path], dict[str, list[Path]]]:
    """What an image folder holds: its loose images (files directly in ``root``) and, for every sub-folder that
    holds images (searched recursively), those images by the sub-folder's name. Hidden entries are skipped."""
    root = Path(root)
    entries = sorted(root.iterdir())
    loose = [p for p in entries if _is_image(p)]
    folders = {}
    for sub in entries:
        if sub.is_dir() and not sub.name.startswith("."):
            images = _list_images(sub)
            if images:
                folders[sub.name] = images
    return loose, folders


def count_summary(counts: dict[str, int], limit: int = 8) -> str:
    """``"a 100, b 24"``: names and counts, the first ``limit`` of them and how many more."""
    items = [f"{name} {n}" for name, n in counts.items()]
    more = f", ... (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def refuse_mixed(root: str | Path, loose: Sequence[Path], folders: dict[str, list[Path]]) -> None:
    """The rule of every image-folder reader: a folder holds loose images (one flat set) or sub-folders of images
    (classes, writers), never both. Both at once raises DataError naming the loose count and the sub-folders."""
    if loose and folders:
        subs = count_summary({f"{name}/": len(images) for name, images in folders.items()})
        raise DataError(
            f"{root} is ambiguous: it holds {len(loose)} loose image(s) and sub-folder(s) with images ({subs}); "
            "use either loose images only (one set) or sub-folders only (one per class), e.g. move the loose "
            "images into a folder of their own"
        )


def announce(message: str) -> None:
    """Print what a data set read (how many images of which classes), once: on rank 0 of a launched job."""
    if is_launch_main():
        print(message, flush=True)


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

    def _announce(self, source: str | Path) -> None:
        counts = Counter(label for _, label in self.items)
        names = getattr(self, "classes", None)
        per_class = {names[k] if names else str(k): counts[k] for k in sorted(counts)}
        announce(f"read {len(self)} images of {len(per_class)} class(es) from {source}: {count_summary(per_class)}")


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
        loose, with_images = folder_layout(root)
        refuse_mixed(root, loose, with_images)
        found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if classes is not None:
            unknown = sorted(set(classes) - set(found))
            if unknown:
                raise DataError(f"{root}: no folder for class(es) {', '.join(unknown)}")
            found = list(classes)
        if not found:
            holds = f", only {len(loose)} loose image(s)" if loose else ""
            raise DataError(f"{root} has no class folders (expected {root}/<class>/<image>){holds}")
        self.classes = found
        self.class_to_index = {c: i for i, c in enumerate(found)}
        items = [(p, self.class_to_index[c]) for c in found for p in _list_images(root / c)]
        super().__init__(items, mode, size, transform, bad_files, str(root))
        self._announce(root)


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
