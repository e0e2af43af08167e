"""What every benchmark's JSON ends with: the machine it ran on, written to ``--out`` and printed."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def machine(**extra: Any) -> dict[str, Any]:
    """Platform, CPU count and Python version (and ``extra``, e.g. the load average) of this machine."""
    return {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(), **extra}


def write_report(path: str | Path, report: dict[str, Any]) -> None:
    """Write ``report`` as JSON to ``path`` (its folder created) and print it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
