"""Hatch metadata hook: how this package depends on gencore.

From a clone (the default) the dependency points at the core beside this package, so
`pip install ./packages/<name>` pulls it in by itself. A wheel built that way records an absolute file:// path,
which breaks once the tree moves and which no index accepts, so release builds (GENCORE_RELEASE=1) emit a plain
version range instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from hatchling.metadata.plugin.interface import MetadataHookInterface


class CustomMetadataHook(MetadataHookInterface):
    def update(self, metadata: dict) -> None:
        deps = list(self.config.get("dependencies", []))
        if os.environ.get("GENCORE_RELEASE", "") not in ("", "0"):
            deps.append(f"gencore>={self.config['gencore-min-version']}")
        else:
            core = (Path(self.root).parent / "core").resolve()
            deps.append(f"gencore @ {core.as_uri()}")
        metadata["dependencies"] = deps
