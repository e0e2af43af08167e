"""Atomic file writing: a file is written beside its destination, fsynced and renamed into place.

Standard library only, so that light modules (``gencore.config``, the CLIs) can write files safely without
loading torch. ``gencore.checkpoint`` builds its atomic directories on these helpers and re-exports
``atomic_file``, ``atomic_write_text`` and ``current_umask`` under their old names.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_file", "atomic_write_text", "cache_dir", "current_umask", "follow_umask", "fsync_dir"]

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
