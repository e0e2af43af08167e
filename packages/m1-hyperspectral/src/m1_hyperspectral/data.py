"""Hyperspectral cubes from .mat (v5 and v7.3), .h5 and .npy files, as sets of pixels, and their splits.

A file holds a cube H×W×B (bands last, as in the public Indian Pines / Pavia / Salinas files) and optionally a
ground truth H×W of class ids (0 = background/unlabeled). The variables are found automatically (the one 3-D
array, and the 2-D integer array of the same H×W) or named with ``cube_key``/``gt_key``. Several files are
concatenated as one set of pixels; their bands must agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gencore.errors import DataError

NPY_MAGIC = b"\x93NUMPY"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass
class Scene:
    """One cube: ``cube`` (H, W, B) float32, ``gt`` (H, W) int64 or None, optional band centres in nm."""

    name: str
    cube: np.ndarray
    gt: np.ndarray | None = None
    wavelengths: np.ndarray | None = None


@dataclass
class Pixels:
    """Pixels of one or more scenes: spectra (N, B), labels (N,) with 0 = unlabeled, coords (N, 3) = file/row/col."""

    spectra: np.ndarray
    labels: np.ndarray
    coords: np.ndarray
    files: list[str] = field(default_factory=list)
    wavelengths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.spectra)

    @property
    def bands(self) -> int:
        return self.spectra.shape[1]

    def subset(self, index: np.ndarray) -> Pixels:
        """The pixels at ``index`` (same files and wavelengths)."""
        return Pixels(self.spectra[index], self.labels[index], self.coords[index], self.files, self.wavelengths)


def _file_kind(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(1024)
    if head.startswith(NPY_MAGIC):
        return "npy"
    if head.startswith(b"MATLAB 7.3"):
        return "mat73"
    if head.startswith(b"MATLAB"):
        return "mat5"
    if head.startswith(HDF5_MAGIC) or head[512:520] == HDF5_MAGIC:
        return "h5"
    if path.suffix.lower() == ".mat":
        return "mat5"  # v4 files have no text header; let scipy decide
    raise DataError(f"{path}: not a .mat, .h5 or .npy file (unrecognised content)")


def _h5_arrays(path: Path, matlab: bool) -> dict[str, np.ndarray]:
    import h5py

    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as fh:

        def visit(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "biuf" and obj.ndim >= 1:
                array = obj[()]
                # MATLAB stores arrays column-major: an H×W×B variable reads back as B×W×H.
                out[name] = np.ascontiguousarray(array.transpose()) if matlab else array

        fh.visititems(visit)
    return out


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every numeric array in ``path`` by variable/dataset name (MATLAB v7.3 arrays in MATLAB's axis order)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    kind = _file_kind(path)
    try:
        if kind == "npy":
            array = np.load(path, allow_pickle=False)
            if array.dtype.kind not in "biuf":  # strings and complex numbers would be cast (or fail) later
                raise DataError(f"{path}: holds {array.dtype} values; expected real numbers (integer or float)")
            return {path.stem: array}
        if kind == "mat5":
            import scipy.io

            raw = scipy.io.loadmat(path)
            return {k: v for k, v in raw.items() if not k.startswith("__") and isinstance(v, np.ndarray)
                    and v.dtype.kind in "biuf"}  # fmt: skip
        return _h5_arrays(path, matlab=kind == "mat73")
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - every reader failure becomes one clear line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read it as {kind} ({reason})") from None


def _describe(arrays: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items()) or "none"


def _pick_cube(path: Path, arrays: dict[str, np.ndarray], key: str | None) -> str:
    if key is not None:
        if key not in arrays:
            raise DataError(f"{path}: no variable {key!r} (numeric variables: {_describe(arrays)})")
        return key
    cubes = [k for k, v in arrays.items() if v.ndim == 3]
    if len(cubes) > 1:
        cubes = [k for k in cubes if "gt" not in k.lower() and "abundance" not in k.lower()] or cubes
    if len(cubes) != 1:
        what = "no" if not cubes else f"{len(cubes)} candidate"
        raise DataError(
            f"{path}: {what} H×W×B cube found (numeric variables: {_describe(arrays)}); name it with --cube-key"
        )
    return cubes[0]


def _pick_gt(path: Path, arrays: dict[str, np.ndarray], key: str | None, hw: tuple[int, int]) -> str | None:
    if key is not None:
        if key not in arrays:
            raise DataError(f"{path}: no ground-truth variable {key!r} (numeric variables: {_describe(arrays)})")
        return key
    fits = [k for k, v in arrays.items() if v.shape == hw and np.array_equal(v, np.round(v))]
    if len(fits) > 1:
        fits = [k for k in fits if "gt" in k.lower()] or fits
    return fits[0] if len(fits) == 1 else None


def _ground_truth(path: Path, arrays: dict[str, np.ndarray], key: str | None, hw: tuple[int, int]) -> np.ndarray | None:
    gkey = _pick_gt(path, arrays, key, hw)
    if gkey is None:
        return None
    gt = arrays[gkey]
    if gt.shape != hw:
        raise DataError(f"{path}: ground truth {gkey!r} is {tuple(gt.shape)} but the cube is {hw}")
    if not np.all(np.isfinite(gt)) or not np.array_equal(gt, np.round(gt)) or gt.min() < 0:
        raise DataError(f"{path}: ground truth {gkey!r} must hold non-negative integer class ids")
    return gt.astype(np.int64)


def _read_with_sibling(path: Path) -> dict[str, np.ndarray]:
    arrays = read_arrays(path)
    if path.suffix.lower() == ".npy":
        sibling = path.with_name(f"{path.stem}_gt.npy")  # the .npy convention: scene.npy + scene_gt.npy
        if sibling.is_file():
            arrays.update({sibling.stem: read_arrays(sibling)[sibling.stem]})
    return arrays


def _scene(path: Path, arrays: dict[str, np.ndarray], cube_key: str | None, gt_key: str | None) -> Scene:
    ckey = _pick_cube(path, arrays, cube_key)
    cube = arrays[ckey]
    if cube.ndim != 3:
        raise DataError(f"{path}: {ckey!r} has shape {tuple(cube.shape)}; expected a cube H×W×B (3 dimensions)")
    if min(cube.shape) < 1 or cube.shape[2] < 2:
        raise DataError(f"{path}: {ckey!r} has shape {tuple(cube.shape)}; expected at least 2 bands and 1 pixel")
    cube = cube.astype(np.float32)
    bad = int(np.size(cube) - np.isfinite(cube).sum())
    if bad:
        raise DataError(f"{path}: {ckey!r} holds {bad} NaN/inf values; fill or mask them before training")
    gt = _ground_truth(path, arrays, gt_key, cube.shape[:2])
    wavelengths = arrays.get("wavelengths")
    if wavelengths is not None and wavelengths.shape != (cube.shape[2],):
        wavelengths = None
    return Scene(path.name, cube, gt, wavelengths)


def load_scene(path: str | Path, cube_key: str | None = None, gt_key: str | None = None) -> Scene:
    """Load and validate one cube (and its ground truth when the file holds one) from ``path``."""
    path = Path(path)
    return _scene(path, _read_with_sibling(path), cube_key, gt_key)


def pixels_from_scenes(scenes: Sequence[Scene]) -> Pixels:
    """All pixels of ``scenes`` as one set (bands must agree); labels are 0 where a scene has no ground truth."""
    if not scenes:
        raise DataError("no data files given")
    bands = scenes[0].cube.shape[2]
    for scene in scenes[1:]:
        if scene.cube.shape[2] != bands:
            raise DataError(
                f"{scene.name} has {scene.cube.shape[2]} bands but {scenes[0].name} has {bands}: "
                "all files must have the same bands"
            )
    spectra, labels, coords = [], [], []
    for i, scene in enumerate(scenes):
        h, w, b = scene.cube.shape
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        spectra.append(scene.cube.reshape(-1, b))
        labels.append(scene.gt.reshape(-1) if scene.gt is not None else np.zeros(h * w, np.int64))
        coords.append(np.stack([np.full(h * w, i), rows.reshape(-1), cols.reshape(-1)], 1))
    return Pixels(
        np.concatenate(spectra), np.concatenate(labels), np.concatenate(coords).astype(np.int64),
        [s.name for s in scenes], scenes[0].wavelengths,
    )  # fmt: skip


def load_scenes(paths: Sequence[str | Path], cube_key: str | None = None, gt_key: str | None = None) -> list[Scene]:
    """Load every path; a file without a cube is the ground truth of the cube file before it.

    So the public two-file layout (``Indian_pines_corrected.mat Indian_pines_gt.mat``) works as given. With a
    separate ground-truth file, ``gt_key`` names the variable in that file.
    """
    paths = [Path(p) for p in paths]
    contents = [_read_with_sibling(p) for p in paths]

    def has_cube(arrays: dict[str, np.ndarray]) -> bool:
        return cube_key in arrays if cube_key else any(v.ndim == 3 for v in arrays.values())

    scenes: list[Scene] = []
    for i, (path, arrays) in enumerate(zip(paths, contents)):
        if not has_cube(arrays) and scenes and scenes[-1].gt is None:
            gt = _ground_truth(path, arrays, gt_key, scenes[-1].cube.shape[:2])
            if gt is None:
                raise DataError(
                    f"{path}: no cube and no H×W ground truth matching {scenes[-1].name} "
                    f"{scenes[-1].cube.shape[:2]} (numeric variables: {_describe(arrays)})"
                )
            scenes[-1].gt = gt
            continue
        separate_gt = i + 1 < len(paths) and not has_cube(contents[i + 1])
        scenes.append(_scene(path, arrays, cube_key, None if separate_gt else gt_key))
    return scenes


def synthetic_scenes(config: object) -> list[Scene]:
    """The embedded default: one synthetic scene made from a :class:`~m1_hyperspectral.config.SynthConfig`."""
    from m1_hyperspectral.synth import make_scene

    s = make_scene(config)  # type: ignore[arg-type]
    return [Scene("synthetic", s.cube, s.gt, s.wavelengths)]


def split_pixels(n: int, valid_fraction: float, test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """Seeded random train/validation/test indices of ``n`` pixels (labeled or not)."""
    order = np.random.default_rng(seed).permutation(n)
    n_valid, n_test = max(1, round(valid_fraction * n)), round(test_fraction * n)
    if n - n_valid - n_test < 1:
        raise DataError(f"{n} pixels are too few for the validation/test fractions")
    return np.sort(order[n_valid + n_test :]), np.sort(order[:n_valid]), np.sort(order[n_valid : n_valid + n_test])


def labeled_split(labels: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced labeled set: ``per_class`` random pixels of every class > 0; the rest of the labeled pixels
    form the evaluation set. Background (0) is never used. A class with too few pixels keeps at least one pixel
    for evaluation (it then gets fewer labels; the caller can see it in the returned counts).
    """
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    classes = np.unique(labels[labels > 0])
    if len(classes) < 2:
        raise DataError(f"classification needs at least 2 labeled classes, found {len(classes)}")
    for c in classes:
        members = rng.permutation(np.flatnonzero(labels == c))
        k = min(per_class, len(members) - 1)
        train.append(members[:k])
        test.append(members[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
