"""`pip install ./packages/core` into a fresh virtual environment gives an importable gencore and its CLI.

Installing torch anew would cost minutes, so the fresh environment sees the dependencies of the test
environment through a .pth line (a plain directory on sys.path: its editable-install hooks do not run), while
gencore itself is built as a wheel and installed into the fresh environment.
"""

from __future__ import annotations

import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*cmd: str | Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


@pytest.mark.slow
def test_core_wheel_installs_into_a_fresh_venv(tmp_path):
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp_path / "dist", ROOT / "packages/core")
    (wheel,) = (tmp_path / "dist").glob("gencore-*.whl")
    metadata = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("METADATA")))
        .decode()
    )
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert any("torch" in r for r in requires) and any("accelerate" in r for r in requires)
    assert "file://" not in metadata

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    purelib = _run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    (Path(purelib) / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run(py, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", wheel)

    probe = (
        "import gencore, pathlib; "
        f"assert pathlib.Path(gencore.__file__).is_relative_to(pathlib.Path(r'{env_dir}')), gencore.__file__; "
        "mods = [gencore.nn, gencore.losses, gencore.train.Trainer, gencore.checkpoint.save_pretrained, "
        "gencore.config.build_config, gencore.data.ImageFolderDataset, gencore.metrics.frechet_distance, "
        "gencore.viz.save_image_grid]; print(gencore.__version__)"
    )
    assert _run(py, "-c", probe).stdout.strip() == "0.1.0"
    help_text = _run(env_dir / "bin" / "gencore", "--help").stdout
    assert "demo" in help_text and "verify" in help_text
