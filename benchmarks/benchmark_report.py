"""What every benchmark's JSON ends with (the machine it ran on, written to ``--out`` and printed), and what the
benchmarks that run a package's console script as a whole process share."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
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


def default_preset(command: Any, preset: str | None = None) -> tuple[str | None, list[str]]:
    """The preset a training command's own command line trains here and its ``key=value`` overrides: ``preset``
    where the command has it (a benchmark's ``--preset`` names one for the commands that have it), else its
    ``cpu_preset`` where training runs on the CPU (``--preset auto``), else none (the config's defaults)."""
    if preset not in command.presets:
        preset = None
    if preset is None and command.cpu_preset is not None:
        from gencore.cli import trains_on_cpu

        preset = command.cpu_preset if trains_on_cpu() else None
    return preset, list(command.preset(preset)) if preset is not None else []


def console_script(name: str) -> str:
    """The console script ``name`` of the environment running this benchmark (else the one on PATH)."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def process_cpu(pid: int) -> tuple[float, float, float, float] | None:
    """CPU seconds of a running process: (user, system, its waited-for children's user, their system); None where
    /proc cannot tell (off Linux, or the process has ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return tuple(int(v) / tick for v in fields[11:15])  # utime, stime, cutime, cstime
