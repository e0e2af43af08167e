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


def _card_blocks(text: str) -> list[str]:
    return re.findall(r"````markdown\n(# \w+\n.*?)````", text, re.S)  # four: the card holds ``` fences


def test_every_package_readme_shows_a_model_card_with_its_training_record() -> None:
    """Each package README shows one of its model cards (gencore.modelcard) as written by a training run: the
    card's title is a model class of the package and it carries the Training and Metrics sections."""
    from gencore.registry import packages

    for spec in packages().values():
        folder = ROOT / "packages" / ("core" if spec.name == "gencore" else spec.name)
        readme = folder / "README.md"
        blocks = _card_blocks(readme.read_text(encoding="utf-8"))
        assert blocks, f"{readme} shows no model card (a ````markdown block starting with '# ClassName')"
        source = "".join(p.read_text(encoding="utf-8") for p in (folder / "src").rglob("*.py"))
        for block in blocks:
            title = block.split("\n", 1)[0][2:]
            assert f"class {title}(" in source, f"{readme}: the card's {title} is no class of the package"
            assert "## Training" in block and "Trained for " in block and "## Metrics" in block, readme
