"""Atomic file writing: a file is written beside its destination, fsynced and renamed into place.

Standard library only, so that light modules (``gencore.config``, the CLIs) can write files safely without
loading torch. ``gencore.checkpoint`` builds its atomic directories on these helpers and re-exports
``atomic_file``, ``atomic_write_text`` and ``current_umask`` under their old names.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = [
    "atomic_file", "atomic_write_text", "cache_dir", "check_output_target", "current_umask", "follow_umask",
    "fsync_dir", "is_run_config",
]  # fmt: skip

#: Environment variable naming the folder of gencore's reusable artefacts (see :func:`cache_dir`).
CACHE_ENV = "GENCORE_CACHE"


def cache_dir(*parts: str) -> Path:
    """The user's folder for artefacts worth keeping between runs (e.g. a feature network trained once per data
    set): ``$GENCORE_CACHE``, else ``$XDG_CACHE_HOME/gencore``, else ``~/.cache/gencore``; ``parts`` joined to it.
    Nothing is created here; what is stored must be verifiable (a manifest) and cheap to rebuild."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "gencore"
    )
    return Path(root, *parts)


def is_run_config(path: Path) -> bool:
    """``config.json`` written by a training run (a table with a ``train`` table), not some other file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and isinstance(data.get("train"), dict)


def _is_kind(path: Path, kind: str) -> bool:
    """Whether the existing file ``path`` holds what a command writing ``kind`` writes: an image PIL can open, a
    JSON document, a NumPy ``.npy`` array."""
    try:
        if kind == "npy":
            with open(path, "rb") as fh:
                return fh.read(6) == b"\x93NUMPY"
        if kind == "json":
            if path.stat().st_size > 64 * 2**20:  # results files are small; a large one is someone's data
                return False
            json.loads(path.read_text(encoding="utf-8-sig"))
            return True
        if kind == "image":
            from PIL import Image

            with Image.open(path):
                return True
    except (OSError, ValueError, RecursionError, SyntaxError):  # PIL raises SyntaxError for some broken headers
        return False
    raise ValueError(f"unknown output kind {kind!r} (image, json or npy)")


def _listed_by_a_manifest(path: Path) -> Path | None:
    """The folder whose ``manifest.json`` lists ``path`` (or is ``path``): a model, a checkpoint or another
    verified output, none of whose files may be replaced one by one."""
    for folder in path.parents:
        manifest = folder / "manifest.json"
        if not manifest.is_file():
            continue
        if manifest == path:
            return folder
        record = None
        with contextlib.suppress(OSError, ValueError, RecursionError):
            record = json.loads(manifest.read_text(encoding="utf-8"))
        files = record.get("files") if isinstance(record, dict) else None
        if isinstance(files, dict) and path.relative_to(folder).as_posix() in files:
            return folder
    return None


def check_output_target(
    path: str | Path, kind: str, inputs: tuple[str | Path, ...] = (), same: Callable[[Path], bool] | None = None
) -> Path:
    """Refuse, before anything is written, an output file path that would destroy something; returns it.

    The rule for every command option that names one output file (``-o grid.png``, ``--npy``, ``-o results.json``)
    and for each file of a ``--save-dir``: an empty path, a folder, a path under a file, one of the command's
    ``inputs``, a file listed in a manifest (a model's or a checkpoint's: ``model/model.safetensors``), and a run
    directory's ``config.json`` or ``metrics.csv`` are refused; an existing file is replaced only when it holds the
    same ``kind`` (``"image"``, ``"json"`` or ``"npy"``) as the command writes, an earlier output or the like,
    never a text file, weights or another format; ``same`` (given an existing file: is it an earlier output of
    this command?) decides instead of ``kind`` where a command can tell, ``kind`` then only names it in the error.
    OutputError (one line, exit code 2), nothing touched.
    """
    from gencore.errors import OutputError

    if not str(path).strip():
        raise OutputError("an output path is empty; give a file name")
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give a file name (nothing changed)")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise OutputError(f"{parent} is a file, not a folder; choose another output path (nothing changed)")
    for item in inputs:
        with contextlib.suppress(OSError):
            if path.exists() and Path(item).exists() and os.path.samefile(path, item):
                raise OutputError(f"{path} is an input of this command; choose another output path")
    owner = _listed_by_a_manifest(path.absolute())
    if owner is not None:
        raise OutputError(f"{path} belongs to {owner} (listed in its manifest.json); choose another output path")
    if path.name in ("config.json", "metrics.csv") and is_run_config(path.parent / "config.json"):
        raise OutputError(f"{path} is a training run's own file; choose another output path")
    if (path.exists() or path.is_symlink()) and not (same(path) if same is not None else _is_kind(path, kind)):
        what = {"image": "an image", "json": "a JSON file", "npy": "a .npy array"}.get(kind, kind)
        raise OutputError(f"{path} exists and is not {what}; choose another output path (nothing changed)")
    return path


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename into it) to disk, where the OS allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def current_umask() -> int:
    """The process's umask, read without changing it where the OS tells it (Linux), else by setting it back."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: Path, directory: bool) -> None:
    """mkstemp/mkdtemp create 0600 files and 0700 folders; what we publish gets the mode a plain open()/mkdir()
    would give, so a cluster group that can read the user's other files can read a model too."""
    with contextlib.suppress(OSError):
        os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto ``path``.

    Writers (h5py, numpy, PIL, json...) write to the yielded path. If the body raises, the temporary file is
    removed and an existing ``path`` is left untouched, so readers never see half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        follow_umask(tmp, directory=False)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
