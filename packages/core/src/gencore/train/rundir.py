"""The run directory's two guards: one process at a time (an advisory lock), and no fresh start over a trained run
or over files that are not a run's.

The lock is ``RUN/.lock``, held with ``flock`` for as long as a :meth:`Trainer.fit` call runs (export included) and
released by the kernel when the process dies, however it dies: a stale lock file never blocks anyone. The file
holds the holder's PID, so a refused run can say whom it waits for, and is removed when the run ends (a lock
taken on a file that was removed meanwhile is dropped and taken again on the new one, so two processes never
both hold it).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from gencore.errors import ConfigError, RunLockedError
from gencore.fileio import is_run_config

try:  # POSIX; elsewhere runs are not locked (documented)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "run_lock", "lock_holder", "check_fresh_start"]

LOCK_FILE = ".lock"


def lock_holder(run_dir: str | Path) -> int | None:
    """The PID of the process holding ``run_dir``'s lock, or None when nobody holds it."""
    path = Path(run_dir) / LOCK_FILE
    if fcntl is None or not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _read_pid(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "0") or None
    return None


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold ``run_dir``'s exclusive lock for the block; RunLockedError (one line, the holder's PID) when another
    process has it. Re-entrant neither across processes nor within one: a run directory has one writer."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    path = run_dir / LOCK_FILE
    fd = _acquire(path, run_dir)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                path.unlink()  # while still holding it: whoever opened it meanwhile sees a removed file
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(path: Path, run_dir: Path) -> int:
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pid = _read_pid(fd)
            os.close(fd)
            who = f"process {pid}" if pid else "another process"
            raise RunLockedError(
                f"{run_dir} is in use by {who} (another training in the same --output-dir); wait for it to end "
                "or choose another --output-dir"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # locked a file its holder removed on release: take the new one
    raise RunLockedError(f"{run_dir}: could not take the run lock ({path} keeps being replaced)")


def check_fresh_start(run_dir: str | Path, checkpoints: list[Path]) -> None:
    """Refuse a fresh start (no ``--resume``) that would overwrite a run or the user's files.

    Refused: a run that has checkpoints (continue it), a run that has an exported ``model/`` (kept, e.g., by
    ``clean-run``), and a folder whose ``config.json`` or ``metrics.csv`` is not a run's (a fresh start rewrites
    both). Other files are left alone: the run writes beside them.
    """
    run_dir = Path(run_dir)
    if checkpoints:
        raise ConfigError(
            f"{run_dir} already holds checkpoints (newest: {checkpoints[-1].name}); continue it with "
            "--resume auto, or choose another --output-dir"
        )
    if not run_dir.is_dir():
        return
    model = run_dir / "model"
    if model.exists() and (not model.is_dir() or any(model.iterdir())):
        raise ConfigError(
            f"{run_dir} already holds a trained model ({model}); choose another --output-dir (a fresh run "
            "there would replace it)"
        )
    config, metrics = run_dir / "config.json", run_dir / "metrics.csv"
    if (config.exists() or metrics.exists()) and not is_run_config(config):
        shown = "config.json" if config.exists() else "metrics.csv"
        raise ConfigError(
            f"{run_dir} holds a {shown} that is not a training run's; a fresh run would replace it: choose "
            "another --output-dir"
        )
