"""Hatch metadata hook: how this package depends on gencore, and the README its metadata carries.

Built inside a clone (the default for `pip install ./packages/<name>`), the dependency points at the core beside
this package, so that command pulls it in by itself. Such a wheel records an absolute file:// path, which breaks
once the tree moves and which no index accepts, so two builds emit a plain version range instead
(`gencore>=<gencore-min-version>`, publishable): a release build (GENCORE_RELEASE=1, what `make dist` sets), every
sdist (an sdist is for publishing, never installed from inside a clone), and any build with no core beside it,
i.e. a wheel built from this package's sdist (what `python -m build` and `pip install <name>.tar.gz` do).

The README's pictures are files of the repository (`docs/...`, `../../docs/img/...`), which an index page cannot
reach. With GENCORE_README_URL set to the address that serves the repository's files at the released commit
(e.g. https://raw.githubusercontent.com/<org>/<repo>/<tag>), every relative image and link target becomes that
address plus its path in the repository (`packages/<name>/` is where this README sits). Unset, the README is
carried as it is.
"""

from __future__ import annotations

import os
import posixpath
import re
import sys
from pathlib import Path

from hatchling.metadata.plugin.interface import MetadataHookInterface


def _building_sdist() -> bool:
    """True inside a PEP 517 build_sdist call: pip and build run each backend hook through pyproject-hooks as
    `python _in_process.py <hook name> <control dir>` (the metadata hook is not told the build target)."""
    return sys.argv[1:2] == ["build_sdist"]


#: a Markdown image or link target, `](target)` or `](target "title")`, and an HTML src/href attribute
_TARGET = re.compile(r'(\]\(\s*)([^)\s]+)|((?:src|href)=")([^"]+)')


def absolute_readme(text: str, base: str, folder: str) -> str:
    """``text`` with every relative target (not a URL, not ``#anchor``, not ``mailto:``) made ``base`` + its path
    in the repository, for a README at ``folder`` (``packages/<name>``)."""

    def fix(match: re.Match) -> str:
        lead, target = (match.group(1), match.group(2)) if match.group(1) is not None else match.group(3, 4)
        if re.match(r"^([a-z][a-z0-9+.-]*:|#|/)", target, re.I):
            return match.group(0)
        path = posixpath.normpath(posixpath.join(folder, target))
        return f"{lead}{base.rstrip('/')}/{path.lstrip('./')}"

    out, fence = [], ""
    for line in text.splitlines(keepends=True):
        marker = re.match(r"^\s*(`{3,}|~{3,})", line)
        if fence and marker and marker.group(1)[0] == fence[0] and len(marker.group(1)) >= len(fence):
            fence = ""
        elif not fence and marker:
            fence = marker.group(1)
        elif not fence:
            line = _TARGET.sub(fix, line)  # code blocks are left alone: `d["x"](y)` is no link
        out.append(line)
    return "".join(out)


class CustomMetadataHook(MetadataHookInterface):
    def update(self, metadata: dict) -> None:
        text = (Path(self.root) / "README.md").read_text(encoding="utf-8")
        base = os.environ.get("GENCORE_README_URL", "")
        if base:
            text = absolute_readme(text, base, f"packages/{metadata['name']}")
        metadata["readme"] = {"content-type": "text/markdown", "text": text}
        deps = list(self.config.get("dependencies", []))
        core = (Path(self.root).parent / "core").resolve()
        release = os.environ.get("GENCORE_RELEASE", "") not in ("", "0")
        if release or _building_sdist() or not (core / "pyproject.toml").is_file():
            deps.append(f"gencore>={self.config['gencore-min-version']}")
        else:
            deps.append(f"gencore @ {core.as_uri()}")
        metadata["dependencies"] = deps
