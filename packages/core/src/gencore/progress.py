"""One progress bar for the commands that run after training (evaluations, feature extraction, studies).

``progress(iterable, total, desc)`` wraps ``iterable`` in a tqdm bar on standard error when a person can see it:
on the main process only (``RANK``/``LOCAL_RANK`` unset or 0), when standard error is a terminal, and not when the
caller passes ``disable=True``, the running click command was given ``--quiet`` (every gencore command has it:
:class:`gencore.cli.Command`) or the environment sets ``GENCORE_PROGRESS=0``.
Otherwise the iterable comes back unchanged, so tests, pipes and log files see no bar. Standard library only at
import time (tqdm is imported when a bar is shown).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["Counter", "QUIET_KEY", "batches", "progress", "progress_enabled"]

T = TypeVar("T")
#: Where a command's ``--quiet`` is kept: the click context's ``meta``, shared by the contexts of one invocation.
QUIET_KEY = "gencore.quiet"


def _quiet_command() -> bool:
    click = sys.modules.get("click")  # never imported here: only a running click command can have --quiet
    ctx = click.get_current_context(silent=True) if click is not None else None
    return bool(ctx is not None and ctx.meta.get(QUIET_KEY))


def progress_enabled(disable: bool = False) -> bool:
    """Whether :func:`progress` shows a bar here: main process, stderr a terminal, not disabled (``disable``,
    ``--quiet``, ``GENCORE_PROGRESS=0``)."""
    if disable or os.environ.get("GENCORE_PROGRESS", "1") == "0" or _quiet_command():
        return False
    for name in ("RANK", "LOCAL_RANK"):
        if os.environ.get(name, "0") not in ("", "0"):
            return False
    stream = sys.stderr
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def progress(
    iterable: Iterable[T], total: int | None = None, desc: str | None = None, disable: bool = False, unit: str = "it"
) -> Iterable[T]:
    """``iterable`` with a tqdm bar on stderr when :func:`progress_enabled`, else ``iterable`` itself."""
    if not progress_enabled(disable):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True, file=sys.stderr)


def batches(n: int, batch_size: int, desc: str | None = None, disable: bool = False) -> Iterator[int]:
    """The start of each batch of ``batch_size`` in ``range(n)``, with a bar counting batches."""
    starts = range(0, n, batch_size)
    yield from progress(starts, total=len(starts), desc=desc, disable=disable, unit="batch")


class Counter:
    """A bar counted by hand (``update(n)``) for work that is not one loop, e.g. kept images over rounds of
    generation; a no-op when :func:`progress_enabled` is False. Use as a context manager (closes the bar)."""

    def __init__(self, total: int | None, desc: str | None = None, disable: bool = False, unit: str = "it") -> None:
        self._bar = None
        if progress_enabled(disable):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True, file=sys.stderr)

    def update(self, n: int = 1) -> None:
        """Advance the bar by ``n``."""
        if self._bar is not None and n:
            self._bar.update(n)

    def close(self) -> None:
        """Remove the bar (it is not left on the terminal)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Counter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
