"""Sizes that cannot fit in memory, and HDF5 files that point outside their folder, end in one line through the real
console scripts: exit code 2, ``error: ...`` naming the figure, no traceback, in seconds (gencore.memory).

Before the guard these cases ended in the allocator (a RuntimeError traceback), in a Cairo "PNG header not
recognized" traceback, or with the kernel's OOM killer after minutes of swapping (``--size 100000x100000``).
Two runs happen under ``ulimit -v`` set just above what the imports map, so the refusal must come from the
address-space limit (the RAM would hold the model): with the guard switched off the same run dies in the
allocator, which proves the limit is real and that the guard spoke first.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: make the sibling helper modules importable

from bad_inputs import as_sets, tiny, write_manifest  # noqa: E402

BIN = Path(sys.executable).parent  # the console scripts of the environment running the tests
QUICK_S = 45.0  # a refusal comes after the imports (2-5 s here); before the guard: minutes, or the OOM killer
GIB = 1024**3
FIGURE = r"needs [0-9.]+ [KMGTPE]iB of memory, [0-9.]+ [KMGTPE]?i?B"


def run_cli(
    args: list[str], cwd: Path, ulimit_kib: int | None = None, **env: str
) -> tuple[subprocess.CompletedProcess, float]:
    """Run a console script (``args[0]``) in ``cwd``, optionally under ``ulimit -v``; returns (result, seconds)."""
    cmd = [str(BIN / args[0]), *args[1:]]
    if ulimit_kib is not None:
        cmd = ["bash", "-c", f'ulimit -v {ulimit_kib} && exec "$@"', "bash", *cmd]
    environ = {k: v for k, v in os.environ.items() if k not in ("GENCORE_DEBUG", "GENCORE_MEMORY_GUARD")}
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env={**environ, **env})
    return done, time.monotonic() - start


def assert_refused(done: subprocess.CompletedProcess, seconds: float, *fragments: str, pattern: str = "") -> str:
    """Exit code 2, one ``error:`` line holding every fragment (and ``pattern``), no traceback, quick."""
    import re

    lines = [line for line in done.stderr.splitlines() if line.strip()]
    context = f"exit {done.returncode}, {seconds:.1f} s\nstderr: {done.stderr[-1500:]}\nstdout: {done.stdout[-500:]}"
    assert "Traceback" not in done.stderr + done.stdout, context
    assert done.returncode == 2, context
    assert len(lines) == 1 and lines[0].startswith("error: "), context
    for fragment in fragments:
        assert fragment in lines[0], context
    if pattern:
        assert re.search(pattern, lines[0]), context
    assert seconds < QUICK_S, context
    return lines[0]


# --- sizes typed by a user ------------------------------------------------------------------------------------------


def _m1_model_dir(root: Path) -> Path:
    """A saved M1 whose config.json then asks for hidden=[1e7, 1e7], its manifest re-signed so it verifies."""
    from m1_hyperspectral.model import M1, M1Config

    directory = root / "m1_model"
    M1(M1Config(bands=12, hidden=[8, 8], latent=2)).save_pretrained(directory)
    config = json.loads((directory / "config.json").read_text())
    config["hidden"] = [1e7, 1e7]
    (directory / "config.json").write_text(json.dumps(config))
    write_manifest(directory)
    return directory


CASES = {
    "hvae-size": (["hvae-captcha", "train", "--size", "100000x100000"],
                  ["one batch of 32 images of 1x100000x100000 (--size", "TiB"]),
    "hvae-latent-dim": (["hvae-captcha", "train", "--latent-dim", "100000000"], ["HVAE model", "latent_dim=100000000"]),
    "m1-latent": (["m1-hyperspectral", "train", *as_sets(tiny("m1")), "--latent", "1000000000000"],
                  ["M1 model with hidden=[32, 32], latent=1000000000000", "PiB"]),
    "m1-hidden": (["m1-hyperspectral", "train", *as_sets(tiny("m1")), "--set", "model.hidden=[1e7,1e7]"],
                  ["hidden=[10000000, 10000000]", "PiB"]),
    "m1-config-json": (["m1-hyperspectral", "sample", "$MODEL"],
                       ["m1_model/config.json: M1 model with hidden=[10000000, 10000000]", "TiB"]),
    "dcgan-ngf": (["dcgan-tutorial", "train", "--set", "model.ngf=1e9"], ["model.ngf=1000000000", "EiB"]),
    "vqgan-image-size": (["vqgan-negatives", "train-vqgan", "--image-size", "1048576"],
                         ["one batch of 16 images of 1x1048576x1048576 (--image-size", "TiB"]),
    "ganwriting-widths": (["ganwriting-music", "train", *as_sets(tiny("ganwriting")), "--set",
                           "model.gen_channels=1000000"], ["model.gen_channels=1000000", "PiB"]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_size_refused(name: str, tmp_path: Path) -> None:
    args, fragments = CASES[name]
    if "$MODEL" in args:
        args = [a.replace("$MODEL", str(_m1_model_dir(tmp_path))) for a in args]
    done, seconds = run_cli([*args, "--output-dir", str(tmp_path / "run")] if "train" in args[1] else args, tmp_path)
    assert_refused(done, seconds, *fragments, pattern=FIGURE)
    assert not (tmp_path / "run").exists(), "nothing may be written for a refused run"


def test_vqgan_canvas_beyond_cairo(tmp_path: Path) -> None:
    """A canvas Cairo cannot make used to end in 'PNG header not recognized': now the figure and the limit."""
    done, seconds = run_cli(["vqgan-negatives", "train-vqgan", "--set", "data.render.supersample=600",
                             "--output-dir", str(tmp_path / "run")], tmp_path)  # fmt: skip
    assert_refused(done, seconds, "64 x 600 = 38400 px", "at most 32767")


# --- the address-space limit ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def import_kib() -> int:
    """Address space (KiB) the m1 CLI maps once its modules are imported: ``ulimit -v`` must sit above it."""
    probe = ("import m1_hyperspectral.cli, m1_hyperspectral.train, h5py, scipy.io\n"
             "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmSize')][0])")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


def _need_linux_and_ram(gib: float) -> None:
    if not Path("/proc/meminfo").is_file():
        pytest.skip("needs Linux (/proc)")
    available = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemAvailable"))
    if available * 1024 < gib * GIB:
        pytest.skip(f"the RAM (not the ulimit) would be the limit: under {gib} GiB available")


def test_model_refused_under_ulimit(tmp_path: Path, import_kib: int) -> None:
    """ulimit -v = imports + 1 GiB; the model needs 2.9 GiB (which the RAM holds): refused by the limit."""
    _need_linux_and_ram(6)
    limit = import_kib + 1024**2
    args = ["m1-hyperspectral", "train", *as_sets(tiny("m1")), "--max-steps", "2", "--latent", "2000000"]
    done, seconds = run_cli([*args, "--output-dir", str(tmp_path / "run")], tmp_path, ulimit_kib=limit)
    line = assert_refused(done, seconds, "latent=2000000", "left under the address-space limit (ulimit -v)",
                          pattern=FIGURE)  # fmt: skip
    print(f"ulimit -v {limit}: {line} ({seconds:.1f} s)")
    # the same run without the guard dies in the allocator: the limit is real and the guard spoke first
    done, _ = run_cli([*args, "--output-dir", str(tmp_path / "unguarded")], tmp_path, ulimit_kib=limit,
                      GENCORE_MEMORY_GUARD="0")  # fmt: skip
    assert done.returncode not in (0, 2), done.stderr[-1500:]
    assert "MemoryError" in done.stderr or "allocate" in done.stderr, done.stderr[-1500:]


def test_file_refused_under_ulimit(tmp_path: Path, import_kib: int) -> None:
    """A .npy whose 2 GiB of data are all there (a sparse file) is refused before reading: header x dtype."""
    _need_linux_and_ram(6)
    path = tmp_path / "cube.npy"
    shape = (1024, 1024, 512)
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": shape})
        fh.truncate(fh.tell() + math.prod(shape) * 4)  # sparse: declared and stored, nothing on disk
    args = ["m1-hyperspectral", "train", *as_sets(tiny("m1")), str(path), "--output-dir", str(tmp_path / "run")]
    done, seconds = run_cli(args, tmp_path, ulimit_kib=import_kib + 1024**2)
    assert_refused(done, seconds, f"{path}: loading 'cube' (1024, 1024, 512) float32", "(ulimit -v)", pattern=FIGURE)


# --- HDF5 storage that points elsewhere (.h5 and MATLAB v7.3) ---------------------------------------------------------


def _mat73(path: Path) -> None:
    """Give an HDF5 file written with a 512-byte user block MATLAB v7.3's text header."""
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .")


@pytest.fixture
def hdf5_files(tmp_path: Path) -> dict[str, Path]:
    """Files in ``scene/`` whose storage lies outside it (and good ones), plus the secret they would read."""
    import h5py

    scene, outside = tmp_path / "scene", tmp_path / "outside"
    scene.mkdir()
    outside.mkdir()
    cube = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    secret = outside / "secret.bin"
    secret.write_bytes(cube.tobytes())  # stands for /etc/passwd: readable, but not the user's data
    (scene / "link.bin").symlink_to(secret)
    (scene / "raw.bin").write_bytes(cube.tobytes())
    with h5py.File(outside / "source.h5", "w") as fh:
        fh.create_dataset("cube", data=cube)
    with h5py.File(scene / "source.h5", "w") as fh:
        fh.create_dataset("cube", data=cube)
    files = {}

    def external(name: str, target: str, mat: bool = False) -> None:
        files[name] = scene / (name + (".mat" if mat else ".h5"))
        with h5py.File(files[name], "w", userblock_size=512 if mat else 0) as fh:
            fh.create_dataset("cube", shape=cube.shape, dtype="f4", external=[(target, 0, cube.nbytes)])
        if mat:
            _mat73(files[name])

    def virtual(name: str, source_file: str) -> None:
        files[name] = scene / f"{name}.h5"
        layout = h5py.VirtualLayout(shape=cube.shape, dtype="f4")
        layout[:] = h5py.VirtualSource(source_file, "cube", shape=cube.shape)
        with h5py.File(files[name], "w") as fh:
            fh.create_virtual_dataset("cube", layout)

    external("external_absolute", str(secret))
    external("external_relative", "../outside/secret.bin")
    external("external_symlink", "link.bin")
    external("external_mat73", str(secret), mat=True)
    external("external_beside", "raw.bin")
    virtual("virtual_outside", str(outside / "source.h5"))
    virtual("virtual_relative", "../outside/source.h5")
    virtual("virtual_missing", "nowhere.h5")
    virtual("virtual_beside", "source.h5")
    files["ordinary"] = scene / "ordinary.h5"
    with h5py.File(files["ordinary"], "w") as fh:
        fh.create_dataset("cube", data=cube)
    files["declared_only"] = scene / "declared_only.h5"  # 2 KB on disk, 7.5 GiB declared
    with h5py.File(files["declared_only"], "w") as fh:
        fh.create_dataset("cube", shape=(1000, 1000, 1000), dtype="f8")
    files["chunks_missing"] = scene / "chunks_missing.h5"
    with h5py.File(files["chunks_missing"], "w") as fh:
        fh.create_dataset("cube", shape=(40, 40, 40), dtype="f4", chunks=(10, 10, 10))[:10] = 1.0
    files["ordinary_mat73"] = scene / "ordinary.mat"
    with h5py.File(files["ordinary_mat73"], "w", userblock_size=512) as fh:
        fh.create_dataset("cube", data=cube.transpose())  # MATLAB's column-major order
    _mat73(files["ordinary_mat73"])
    return {**files, "cube": cube, "secret": secret}  # type: ignore[dict-item]


FOREIGN = {  # file -> what the one-line refusal says
    "external_absolute": "dataset 'cube' (external storage) reads {secret}, outside {scene}: refused",
    "external_relative": "(external storage) reads {scene}/../outside/secret.bin, outside {scene}: refused",
    "external_symlink": "(external storage) reads {scene}/link.bin, outside {scene}: refused",
    "external_mat73": "(external storage) reads {secret}, outside {scene}: refused",
    "virtual_outside": "dataset 'cube' (virtual dataset) reads {outside}/source.h5, outside {scene}: refused",
    "virtual_relative": "(virtual dataset) reads {scene}/../outside/source.h5, outside {scene}: refused",
    "virtual_missing": "(virtual dataset) reads {scene}/nowhere.h5, which does not exist",
    "declared_only": "declares (1000, 1000, 1000) float64 (7.5 GiB) but the file stores only 0 B of it",
    "chunks_missing": "declares (40, 40, 40) float32 (250.0 KiB) but the file stores only 16 of its 64 chunks",
}  # fmt: skip


@pytest.mark.parametrize("name", list(FOREIGN))
def test_reader_refuses_foreign_storage(name: str, hdf5_files: dict, monkeypatch) -> None:
    from gencore.errors import DataError
    from m1_hyperspectral.data import read_arrays

    path = hdf5_files[name]
    scene = path.parent.resolve()
    expect = FOREIGN[name].format(scene=scene, outside=scene.parent / "outside", secret=hdf5_files["secret"])
    monkeypatch.chdir(hdf5_files["secret"].parent)  # where HDF5 alone would look relative names up
    with pytest.raises(DataError) as info:
        read_arrays(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert expect in message, message


@pytest.mark.parametrize("name", ["ordinary", "external_beside", "virtual_beside", "ordinary_mat73"])
def test_reader_reads_storage_beside_the_file(name: str, hdf5_files: dict, tmp_path: Path, monkeypatch) -> None:
    """Ordinary files load; raw files and sources beside the file load from any working directory."""
    from m1_hyperspectral.data import load_scene

    monkeypatch.chdir(tmp_path)  # not the file's folder: relative names are looked up beside the file
    scene = load_scene(hdf5_files[name])
    np.testing.assert_array_equal(scene.cube, hdf5_files["cube"])


@pytest.mark.parametrize("name, expect", [("external_absolute", "outside"), ("declared_only", "7.5 GiB")],
                         ids=["external_absolute", "declared_only"])  # fmt: skip
def test_cli_refuses_foreign_storage(name: str, expect: str, hdf5_files: dict, tmp_path: Path) -> None:
    args = ["m1-hyperspectral", "train", *as_sets(tiny("m1")), str(hdf5_files[name]), "--output-dir",
            str(tmp_path / "run")]  # fmt: skip
    done, seconds = run_cli(args, tmp_path)
    assert_refused(done, seconds, str(hdf5_files[name]), expect)
    assert not (tmp_path / "run").exists()
