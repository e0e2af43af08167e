"""Hyperspectral cubes from .mat (v5 and v7.3), .h5 and .npy files, as sets of pixels, and their splits.

A file holds a cube H×W×B (bands last, as in the public Indian Pines / Pavia / Salinas files) and optionally a
ground truth H×W of class ids (0 = background/unlabeled). The variables are found automatically (the one 3-D
array, and the 2-D integer array of the same H×W) or named with ``cube_key``/``gt_key``. Several files are
concatenated as one set of pixels; their bands must agree.

Before any array is read, what it declares (shape x dtype) is checked against the memory this process may still
allocate (:mod:`gencore.memory`), so a small file declaring a huge array is refused in one line instead of
filling the machine; an HDF5 dataset must also store the data it declares, in the file itself or in files beside
it: external storage (raw files) and virtual datasets that point outside the input file's folder are refused
(they would make training read, e.g., ``/etc/passwd``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gencore.errors import DataError
from gencore.memory import format_bytes, require_memory

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


# --- what a file declares, checked before it is read ----------------------------------------------------------


def _require_arrays_memory(path: Path, declared: list[tuple[str, tuple[int, ...], np.dtype]], transpose: bool) -> None:
    """Refuse a file whose numeric arrays cannot be loaded: their declared bytes, plus the float32 copy made of the
    largest one (the cube) and, for MATLAB v7.3, its transposed copy."""
    if not declared:
        return
    raw = sum(math.prod(shape) * dtype.itemsize for _, shape, dtype in declared)
    name, shape, dtype = max(declared, key=lambda item: math.prod(item[1]) * item[2].itemsize)
    extra = math.prod(shape) * (4 + (dtype.itemsize if transpose else 0))
    others = f" and {len(declared) - 1} more array(s)" if len(declared) > 1 else ""
    require_memory(raw + extra, f"{path}: loading {name!r} {shape} {dtype}{others}", DataError)


def _npy_array(path: Path) -> np.ndarray:
    """The array of a .npy file, its header checked first: real numbers, as many bytes stored as it declares,
    and room for them in memory."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:  # format 3.0 is written only for structured dtypes with non-latin-1 field names
            raise DataError(f"{path}: holds a structured array (.npy format {version[0]}.{version[1]}); "
                            "expected real numbers (integer or float)")  # fmt: skip
        offset = fh.tell()
    if dtype.hasobject:
        return np.load(path, allow_pickle=False)  # refused by NumPy itself, before reading any data
    if dtype.kind not in "biuf":  # strings and complex numbers would be cast (or fail) later
        raise DataError(f"{path}: holds {dtype} values; expected real numbers (integer or float)")
    declared = math.prod(shape) * dtype.itemsize
    stored = path.stat().st_size - offset
    if stored < declared:
        raise DataError(
            f"{path}: cannot read it as npy (its header declares {tuple(shape)} {dtype}, {format_bytes(declared)}, "
            f"but the file holds {format_bytes(max(stored, 0))} of data: truncated?)"
        )
    _require_arrays_memory(path, [(path.stem, tuple(shape), dtype)], transpose=False)
    return np.load(path, allow_pickle=False)


_MAT_DTYPES = {
    "double": "f8", "single": "f4", "int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2", "int32": "i4",
    "uint32": "u4", "int64": "i8", "uint64": "u8", "logical": "u1",
}  # fmt: skip


def _mat5_arrays(path: Path) -> dict[str, np.ndarray]:
    """The numeric arrays of a MATLAB v4/v5 file; their declared sizes (``whosmat``) are checked before reading."""
    import scipy.io

    declared = [(name, tuple(shape), np.dtype(_MAT_DTYPES[kind]))
                for name, shape, kind in scipy.io.whosmat(path) if kind in _MAT_DTYPES]  # fmt: skip
    _require_arrays_memory(path, declared, transpose=False)
    raw = scipy.io.loadmat(path)
    return {k: v for k, v in raw.items() if not k.startswith("__") and isinstance(v, np.ndarray)
            and v.dtype.kind in "biuf"}  # fmt: skip


def _prefixed(name: str, env: str, folder: Path) -> Path:
    """Where HDF5 looks for the file ``name`` of external storage / a virtual source: relative names under
    ``$env`` when set (``${ORIGIN}`` = the file's folder), else under the file's folder (the prefix we set)."""
    prefix = os.environ.get(env)
    base = Path(prefix.replace("${ORIGIN}", str(folder))) if prefix else folder
    return Path(name) if os.path.isabs(name) else base / name


def _confined(path: Path, target: Path, folder: Path, what: str) -> Path:
    """``target`` resolved (links followed); refused when it lies outside ``folder`` or is no file."""
    resolved = target.resolve()
    if not resolved.is_relative_to(folder):
        raise DataError(f"{path}: {what} reads {target}, outside {folder}: refused (only files beside it are read)")
    if not resolved.is_file():
        raise DataError(f"{path}: {what} reads {target}, which does not exist")
    return resolved


def _check_storage(path: Path, fh: Any, name: str, folder: Path, depth: int = 0) -> None:
    """Refuse an HDF5 dataset that does not store the data it declares inside ``path`` or files beside it.

    External storage (raw files) and virtual-dataset sources must lie in ``path``'s folder (links resolved) and
    hold what they map; a contiguous dataset must have its bytes in the file and a chunked one all its chunks
    (otherwise HDF5 returns the fill value: a 3 KB file could declare gigabytes of zeros).
    """
    import h5py

    ds = fh[name]
    label = f"dataset {name!r}" if depth == 0 else f"the source {name!r} of {Path(fh.filename).name}"
    declared = math.prod(ds.shape) * ds.dtype.itemsize
    if declared == 0:
        return
    if ds.external:
        usable = 0
        for file_name, offset, size in ds.external:
            raw_name = os.fsdecode(file_name)
            target = _confined(path, _prefixed(raw_name, "HDF5_EXTFILE_PREFIX", folder), folder,
                               f"{label} (external storage)")  # fmt: skip
            room = max(target.stat().st_size - offset, 0)
            usable += room if size == h5py.h5f.UNLIMITED else min(size, room)
        if usable < declared:
            raise DataError(f"{path}: {label} declares {format_bytes(declared)} but its external files hold "
                            f"{format_bytes(usable)}")  # fmt: skip
        return
    if ds.is_virtual:
        if depth >= 4:
            raise DataError(f"{path}: {label} is a virtual dataset nested more than 4 deep: refused")
        for source in ds.virtual_sources():
            if "%" in source.file_name or "%" in source.dset_name:
                raise DataError(f"{path}: {label} maps sources by a name pattern ({source.file_name}): refused")
            if source.file_name == ".":
                if source.dset_name not in fh:
                    raise DataError(f"{path}: {label} maps {source.dset_name!r}, which does not exist")
                _check_storage(path, fh, source.dset_name, folder, depth + 1)
                continue
            target = _confined(path, _prefixed(source.file_name, "HDF5_VDS_PREFIX", folder), folder,
                               f"{label} (virtual dataset)")  # fmt: skip
            with h5py.File(target, "r") as src:
                if source.dset_name not in src:
                    raise DataError(f"{path}: {label} maps {source.dset_name!r} of {target}, which does not exist")
                _check_storage(path, src, source.dset_name, folder, depth + 1)
        return
    if ds.chunks is not None:
        expected = math.prod(math.ceil(n / c) for n, c in zip(ds.shape, ds.chunks))
        stored = ds.id.get_num_chunks()
        if stored < expected:
            raise DataError(f"{path}: {label} declares {tuple(ds.shape)} {ds.dtype} ({format_bytes(declared)}) but "
                            f"the file stores only {stored} of its {expected} chunks")  # fmt: skip
    elif ds.id.get_storage_size() < declared:
        raise DataError(f"{path}: {label} declares {tuple(ds.shape)} {ds.dtype} ({format_bytes(declared)}) but the "
                        f"file stores only {format_bytes(ds.id.get_storage_size())} of it")  # fmt: skip


def _h5_arrays(path: Path, matlab: bool) -> dict[str, np.ndarray]:
    import h5py

    folder = path.resolve().parent
    with h5py.File(path, "r") as fh:
        names: list[str] = []

        def visit(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "biuf" and obj.ndim >= 1:
                names.append(name)

        fh.visititems(visit)  # hard links only: external links to other files are not followed
        for name in names:
            _check_storage(path, fh, name, folder)
        _require_arrays_memory(path, [(n, tuple(fh[n].shape), fh[n].dtype) for n in names], transpose=matlab)
        # relative names of external files and virtual sources are looked up beside the file (as checked above),
        # not in the current directory
        access = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
        access.set_efile_prefix(os.fsencode(folder))
        access.set_virtual_prefix(os.fsencode(folder))
        out: dict[str, np.ndarray] = {}
        for name in names:
            array = h5py.Dataset(h5py.h5d.open(fh.id, name.encode(), dapl=access))[()]
            # MATLAB stores arrays column-major: an H×W×B variable reads back as B×W×H.
            out[name] = np.ascontiguousarray(array.transpose()) if matlab else array
    return out


def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every numeric array in ``path`` by variable/dataset name (MATLAB v7.3 arrays in MATLAB's axis order).

    What the file declares is checked before anything is read (a :class:`DataError` names the figure): the
    memory its arrays need, and for HDF5 that each dataset stores its data in the file or in files beside it.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    kind = _file_kind(path)
    try:
        if kind == "npy":
            return {path.stem: _npy_array(path)}
        if kind == "mat5":
            return _mat5_arrays(path)
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
    if not fits:  # a 2-D "gt" variable that does not fit (shape, NaN, fractions) is an error, not "no labels"
        fits = [k for k, v in arrays.items() if v.ndim == 2 and "gt" in k.lower()]
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
