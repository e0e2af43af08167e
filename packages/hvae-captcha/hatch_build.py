"""Hatch metadata hook: how this package depends on gencore.

Built inside a clone (the default for `pip install ./packages/<name>`), the dependency points at the core beside
this package, so that command pulls it in by itself. Such a wheel records an absolute file:// path, which breaks
once the tree moves and which no index accepts, so two builds emit a plain version range instead
(`gencore>=<gencore-min-version>`, publishable): a release build (GENCORE_RELEASE=1, what `make dist` sets), every
sdist (an sdist is for publishing, never installed from inside a clone), and any build with no core beside it,
i.e. a wheel built from this package's sdist (what `python -m build` and `pip install <name>.tar.gz` do).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hatchling.metadata.plugin.interface import MetadataHookInterface


def _building_sdist() -> bool:
    """True inside a PEP 517 build_sdist call: pip and build run each backend hook through pyproject-hooks as
    `python _in_process.py <hook name> <control dir>` (the metadata hook is not told the build target)."""
    return sys.argv[1:2] == ["build_sdist"]


class CustomMetadataHook(MetadataHookInterface):
    def update(self, metadata: dict) -> None:
        deps = list(self.config.get("dependencies", []))
        core = (Path(self.root).parent / "core").resolve()
        release = os.environ.get("GENCORE_RELEASE", "") not in ("", "0")
        if release or _building_sdist() or not (core / "pyproject.toml").is_file():
            deps.append(f"gencore>={self.config['gencore-min-version']}")
        else:
            deps.append(f"gencore @ {core.as_uri()}")
        metadata["dependencies"] = deps
