"""Docs that cannot go stale quietly: the root README quotes no test count (it changes with every commit; the
README says how to get it), and the core README's module table lists every public module of gencore.__all__."""

from __future__ import annotations

import re
from pathlib import Path

import gencore

ROOT = Path(__file__).resolve().parents[1]


def test_root_readme_quotes_no_test_count() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    counts = re.findall(r"\b\d[\d,]*\s+(?:of\s+\d[\d,]*\s+)?(?:tests?\b|passed\b)", text)
    assert not counts, f"README.md quotes test counts {counts}: say how to get the count instead"
    assert "pytest --collect-only -q" in text


def test_core_readme_lists_every_public_module() -> None:
    text = (ROOT / "packages" / "core" / "README.md").read_text(encoding="utf-8")
    section = text.split("## Modules", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `gencore\.(\w+)` \|", section, re.M))
    public = {name for name in gencore.__all__ if name[0].islower()}
    assert public <= rows, f"modules missing from the table in packages/core/README.md: {sorted(public - rows)}"
