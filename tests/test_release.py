"""`make dist` builds publishable artefacts: every package's sdist and wheel with release metadata (gencore as a
version range, never a file:// path into this clone), passing `twine check --strict`; and a wheel built from such
an sdist elsewhere (what `pip install <name>.tar.gz` does) keeps the range."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = sorted(p.parent.name for p in ROOT.glob("packages/*/pyproject.toml"))


def _build(source: Path, out: Path, release: bool, args: tuple[str, ...] = (), readme_url: str = "") -> None:
    env = {**os.environ, "GENCORE_RELEASE": "1" if release else "0", "GENCORE_README_URL": readme_url}
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), *args, str(source)],
                          capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def _wheel_metadata(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()


def _sdist_metadata(sdist: Path) -> str:
    with tarfile.open(sdist) as tf:
        member = next(m for m in tf.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO"))
        return tf.extractfile(member).read().decode()  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    for folder in FOLDERS:
        _build(ROOT / "packages" / folder, out, release=True)
    return out


def test_every_package_builds_an_sdist_and_a_wheel_that_twine_accepts(dist):
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == len(sdists) == len(FOLDERS)
    proc = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, wheels + sdists)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_release_metadata_names_no_path_and_carries_the_license(dist):
    for artefact in [*dist.glob("*.whl"), *dist.glob("*.tar.gz")]:
        metadata = _wheel_metadata(artefact) if artefact.suffix == ".whl" else _sdist_metadata(artefact)
        assert "file://" not in metadata, artefact.name
        assert "License" in metadata and "Classifier: Programming Language :: Python :: 3" in metadata, artefact.name
        if not artefact.name.startswith("gencore-"):
            assert "Requires-Dist: gencore>=" in metadata, artefact.name
    for wheel in dist.glob("*.whl"):
        with zipfile.ZipFile(wheel) as zf:
            assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith("/LICENSE") for n in zf.namelist())


def test_a_wheel_built_from_the_sdist_elsewhere_keeps_the_range(dist, tmp_path):
    """No GENCORE_RELEASE and no core beside it: the build a user runs on a downloaded sdist."""
    sdist = next(p for p in dist.glob("*.tar.gz") if p.name.startswith("dcgan_tutorial-"))
    with tarfile.open(sdist) as tf:
        tf.extractall(tmp_path / "src", filter="data")
    (unpacked,) = (tmp_path / "src").iterdir()
    _build(unpacked, tmp_path / "out", release=False, args=("--wheel",))
    (wheel,) = (tmp_path / "out").glob("*.whl")
    assert "Requires-Dist: gencore>=" in _wheel_metadata(wheel)


def test_a_plain_sdist_build_in_the_clone_carries_the_range(tmp_path):
    """`python -m build --sdist` without GENCORE_RELEASE: the sdist is what gets uploaded, so it never names a path
    into this clone (a wheel built here still does: that is `pip install ./packages/<name>`)."""
    _build(ROOT / "packages" / "m1-hyperspectral", tmp_path / "out", release=False, args=("--sdist",))
    (sdist,) = (tmp_path / "out").glob("*.tar.gz")
    metadata = _sdist_metadata(sdist)
    assert "Requires-Dist: gencore>=" in metadata and "file://" not in metadata
    _build(ROOT / "packages" / "m1-hyperspectral", tmp_path / "wheel", release=False, args=("--wheel",))
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    assert "Requires-Dist: gencore @ file://" in _wheel_metadata(wheel)


def test_readme_pictures_point_at_the_given_address_and_stay_as_written_without_one(tmp_path):
    """An index shows the README from the metadata, where `docs/x.png` resolves to nothing: GENCORE_README_URL
    makes every picture and file link absolute (code blocks untouched); without it the README is carried as is."""
    import re

    folder = ROOT / "packages" / "dcgan-tutorial"
    _build(folder, tmp_path / "url", release=True, args=("--wheel",), readme_url="https://example.org/repo/v1/")
    _build(folder, tmp_path / "plain", release=True, args=("--wheel",))
    (with_url,), (plain,) = (tmp_path / "url").glob("*.whl"), (tmp_path / "plain").glob("*.whl")
    described = _wheel_metadata(with_url).split("\n\n", 1)[1]
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", described)
    assert pictures and all(p.startswith("https://example.org/repo/v1/docs/img/") for p in pictures), pictures
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert _wheel_metadata(plain).split("\n\n", 1)[1].strip() == readme.strip()
    assert 'images[0].save("sample.png")' in described  # code is not rewritten


def test_a_package_folder_copied_out_of_the_clone_builds_with_the_range(tmp_path):
    """The metadata hook emits the range whenever no core lies beside the package, release flag or not."""
    copy = tmp_path / "hvae-captcha"
    shutil.copytree(ROOT / "packages" / "hvae-captcha", copy, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    _build(copy, tmp_path / "out", release=False, args=("--wheel",))
    (wheel,) = (tmp_path / "out").glob("*.whl")
    assert "Requires-Dist: gencore>=" in _wheel_metadata(wheel)


def _fresh_venv(where: Path) -> Path:
    """A new virtual environment that sees the test environment's third-party packages (torch, accelerate...)
    through a .pth line, so nothing is downloaded; its editable gencore is invisible there (no import hooks)."""
    import site
    import venv

    venv.EnvBuilder(with_pip=True).create(where)
    py = where / "bin" / "python"
    purelib = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (Path(purelib) / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return where


@pytest.mark.slow
def test_the_release_wheels_install_by_name_from_a_wheel_folder_and_train(dist, tmp_path):
    """What a user of a package index gets: every package installed by its name from a folder of the release
    wheels (no index, no clone beside it), then each CLI's --help and a tiny training run from that environment."""
    from gencore.config import load_file
    from gencore.registry import get

    names = [load_file(ROOT / "packages" / f / "pyproject.toml")["project"]["name"] for f in FOLDERS]
    env = _fresh_venv(tmp_path / "venv")
    # --force-reinstall: the test environment's own gencore is visible through deps.pth and would otherwise count
    # as installed; --no-deps: torch & co. come from deps.pth, not from the wheel folder
    proc = subprocess.run([env / "bin" / "python", "-m", "pip", "install", "--no-index", "--find-links", dist,
                           "--force-reinstall", "--no-deps", "--quiet", *names],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for name in names:
        spec = get(name)
        probe = f"import {spec.import_name}, pathlib; print(pathlib.Path({spec.import_name}.__file__).resolve())"
        where = subprocess.run([env / "bin" / "python", "-c", probe], capture_output=True, text=True, check=True)
        assert Path(where.stdout.strip()).is_relative_to(env.resolve()), (name, where.stdout)
        script = env / "bin" / spec.name
        assert subprocess.run([script, "--help"], capture_output=True, timeout=120).returncode == 0, name
        command = spec.command()
        sets = [arg for kv in command.preset("tiny") for arg in ("--set", kv)]
        run = tmp_path / "runs" / name
        proc = subprocess.run([script, *command.head(), "--output-dir", run, *sets],
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert proc.returncode == 0, (name, proc.stdout[-1500:] + proc.stderr[-1500:])
        assert (run / "config.json").is_file() and (run / "metrics.csv").is_file(), name
