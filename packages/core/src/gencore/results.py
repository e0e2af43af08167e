"""Result files of a command (evaluation.json, a study's summary): written whole or not at all.

:func:`write_json` serialises first, then writes through a temporary file beside the destination that is fsynced
and renamed into place (:func:`gencore.fileio.atomic_write_text`), so a crash, a full disk or a value JSON cannot
hold never leaves half a file or replaces a good one. Standard library only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gencore.fileio import atomic_write_text

__all__ = ["write_json"]


def write_json(path: str | Path, data: Any, *, indent: int | None = 2, sort_keys: bool = False) -> Path:
    """Write ``data`` to ``path`` as JSON (indented, a newline at the end), atomically; parent folders are made.

    Returns ``path``. A value JSON cannot hold raises ``TypeError`` before anything is written.
    """
    path = Path(path)
    atomic_write_text(path, json.dumps(data, indent=indent, sort_keys=sort_keys) + "\n")
    return path
