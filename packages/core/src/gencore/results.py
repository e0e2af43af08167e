"""JSON files of runs and commands: results written whole or not at all, run files read with one-line errors.

:func:`write_json` serialises first, then writes through a temporary file beside the destination that is fsynced
and renamed into place (:func:`gencore.fileio.atomic_write_text`), so a crash, a full disk or a value JSON cannot
hold never leaves half a file or replaces a good one. Standard library only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gencore.errors import CheckpointError, GencoreError
from gencore.fileio import atomic_write_text, check_output_target

__all__ = ["write_json", "read_json"]


def read_json(path: str | Path, error: type[GencoreError] = CheckpointError) -> dict[str, Any]:
    """The JSON object in ``path`` (a byte-order mark is fine); a missing, unreadable or non-object file raises
    ``error`` with one line naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except RecursionError:
        raise error(f"{path} is nested too deeply") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise error(f"{path} is unreadable or not JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise error(f"{path} does not hold a JSON object")
    return data


def write_json(path: str | Path, data: Any, *, indent: int | None = 2, sort_keys: bool = False) -> Path:
    """Write ``data`` to ``path`` as JSON (indented, a newline at the end), atomically; parent folders are made.

    Returns ``path``. A value JSON cannot hold raises ``TypeError`` before anything is written, and so does a path
    that would destroy something (:func:`gencore.fileio.check_output_target`: an existing file that is not JSON, a
    model's or a run's own file): OutputError.
    """
    text = json.dumps(data, indent=indent, sort_keys=sort_keys) + "\n"
    path = check_output_target(path, "json")
    atomic_write_text(path, text)
    return path
