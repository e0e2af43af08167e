"""Publishable metadata: one version per package (pyproject.toml, read at run time through importlib.metadata),
an MIT LICENSE in the root and in every package folder (inside the built metadata too), authors and classifiers.
No [project.urls]: the repository's metadata names no public address."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from pathlib import Path

import pytest

from gencore.config import load_file
from gencore.lazy import package_version
from gencore.registry import packages

ROOT = Path(__file__).resolve().parents[1]
SPECS = packages()
FOLDERS = sorted(path.parent for path in ROOT.glob("packages/*/pyproject.toml"))


@pytest.mark.parametrize("name", list(SPECS))
def test_version_comes_from_the_distribution(name: str) -> None:
    module = importlib.import_module(SPECS[name].import_name)
    assert module.__version__ == importlib.metadata.version(name)


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_one_version_string_per_package(folder: Path) -> None:
    project = load_file(folder / "pyproject.toml")["project"]
    assert project["version"] == importlib.metadata.version(project["name"]), "reinstall: pip install --no-deps -e"
    for path in (folder / "src").rglob("*.py"):
        assert not re.search(r"^__version__\s*=\s*['\"]", path.read_text(encoding="utf-8"), re.M), (
            f"{path}: a hard-coded __version__; use gencore.lazy.package_version"
        )


def test_source_tree_fallback_reads_the_pyproject(tmp_path: Path) -> None:
    init = tmp_path / "src" / "not_installed_pkg" / "__init__.py"
    init.parent.mkdir(parents=True)
    init.write_text("")
    assert package_version("not-installed-pkg", str(init)) == "0+unknown"  # no pyproject.toml
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "not-installed-pkg"\nversion = "1.2.3"\n')
    assert package_version("not-installed-pkg", str(init)) == "1.2.3"
    assert package_version("another-name", str(init)) == "0+unknown"  # someone else's pyproject


@pytest.mark.parametrize("folder", [ROOT, *FOLDERS], ids=["root", *[f.name for f in FOLDERS]])
def test_mit_license_file(folder: Path) -> None:
    text = (folder / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the gencore authors" in text
    assert "THE SOFTWARE IS PROVIDED \"AS IS\"" in text
    assert text == (ROOT / "LICENSE").read_text(encoding="utf-8")


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_pyproject_metadata(folder: Path) -> None:
    project = load_file(folder / "pyproject.toml")["project"]
    assert project["license"] == {"text": "MIT"}
    assert project["authors"] == [{"name": "the gencore authors"}]
    classifiers = project["classifiers"]
    assert "License :: OSI Approved :: MIT License" in classifiers
    assert "Programming Language :: Python :: 3 :: Only" in classifiers
    assert classifiers == sorted(set(classifiers), key=classifiers.index)  # no repeats
    assert "urls" not in project  # no address to point them at (see the module docstring)


@pytest.mark.parametrize("name", list(SPECS))
def test_installed_metadata_carries_the_license(name: str) -> None:
    dist = importlib.metadata.distribution(name)
    assert any(Path(str(f)).name == "LICENSE" for f in dist.files or []), f"{name}: reinstall to pick up LICENSE"
    assert "License :: OSI Approved :: MIT License" in (dist.metadata.get_all("Classifier") or [])
