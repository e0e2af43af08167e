"""Each package installs from a clone into a fresh virtual environment and gives an importable module and CLI.

Installing torch anew would cost minutes, so the fresh environment sees the dependencies of the test
environment through a .pth line (a plain directory on sys.path: its editable-install hooks do not run), while the
packages under test are built as wheels and installed into the fresh environment.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from gencore.config import load_file
from gencore.registry import GROUP, get

ROOT = Path(__file__).resolve().parents[1]
#: A sub-command beyond training that a package's --help must list (its training commands otherwise).
HELP_LISTS = {"dcgan-tutorial": "collapse-demo", "hvae-captcha": "inspect-config", "m1-hyperspectral": "classify",
              "vqgan-negatives": "make-negatives", "ganwriting-music": "export-mashcima"}  # fmt: skip


def _packages() -> dict[str, tuple[str, str, str]]:
    """Every folder under packages/ with a pyproject.toml: (import name, console script, a sub-command its --help
    must list), from the package registry (tests/test_registry.py checks that every folder is registered)."""
    found = {}
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        spec = get(load_file(pyproject)["project"]["name"])
        found[pyproject.parent.name] = (spec.import_name, spec.name, HELP_LISTS.get(spec.name, spec.command().name))
    return found


PACKAGES = _packages()  # directory: (import name, console script, a sub-command its --help must list)


def _run(*cmd: str | Path, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def build_wheel(package: str, out: Path, release: bool = False) -> tuple[Path, list[str]]:
    """Build ``packages/<package>`` into ``out``; returns (wheel, its Requires-Dist lines)."""
    env = {**os.environ, "GENCORE_RELEASE": "1" if release else "0"}
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", out, ROOT / "packages" / package, env=env)
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith("METADATA"))).decode()
    return wheel, [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]


def wheel_entry_points(wheel: Path) -> str:
    """The entry_points.txt of a wheel."""
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt"))).decode()


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    purelib = _run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    (Path(purelib) / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # the test environment's gencore is an editable install, invisible through deps.pth: every package needs a
    # built one, whichever of the cases below runs first or alone
    core_wheel, _ = build_wheel("core", tmp_path_factory.mktemp("core-dist"))
    _run(env_dir / "bin" / "python", "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", core_wheel)
    return env_dir


@pytest.mark.slow
@pytest.mark.parametrize("package", list(PACKAGES))
def test_package_wheel_installs_into_a_fresh_venv(tmp_path, fresh_venv, package):
    module, script, command = PACKAGES[package]
    wheel, requires = build_wheel(package, tmp_path / "dist")
    assert any("torch" in r for r in requires)
    if package != "core":
        assert any(r.startswith("Requires-Dist: gencore @ file://") for r in requires)
    _run(fresh_venv / "bin" / "python", "-m", "pip", "install", "--force-reinstall", "--no-deps", "--no-index",
         "--quiet", wheel)  # fmt: skip
    probe = (
        f"import {module}, pathlib; "
        f"assert pathlib.Path({module}.__file__).is_relative_to(pathlib.Path(r'{fresh_venv}')), {module}.__file__; "
        f"print({module}.__version__)"
    )
    assert _run(fresh_venv / "bin" / "python", "-c", probe).stdout.strip() == "0.1.0"
    assert command in _run(fresh_venv / "bin" / script, "--help").stdout
    # the wheel registers the package (gencore.registry), under its name, pointing at its package.py
    assert f"[{GROUP}]\n{script} = {module}.package:SPEC" in wheel_entry_points(wheel)
    if package == "core":  # the modules DESIGN.md promises
        names = (
            "nn.evaluating losses.d_loss train.Trainer checkpoint.save_pretrained config.build_config "
            "data.ImageFolderDataset metrics.frechet_distance viz.save_image_grid cli.training_options"
        )
        _run(fresh_venv / "bin" / "python", "-c", "import gencore; " + "; ".join(f"gencore.{n}" for n in names.split()))


@pytest.mark.slow
def test_release_builds_depend_on_a_version_range_not_a_path(tmp_path):
    _, requires = build_wheel("dcgan-tutorial", tmp_path, release=True)
    assert "Requires-Dist: gencore>=0.1" in requires
    assert not any("file://" in r for r in requires)
