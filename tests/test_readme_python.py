"""The Python examples of the package READMEs run: every ```python block of a README's "## Python" section is
executed, in order and in one namespace (as a reader pastes them into one session), against a model trained here
with the package's tiny preset (gencore.registry), so an example that goes stale fails this test.

Convention for the blocks: relative paths are what the CLI's defaults write, and the blocks run in a working
directory that holds them: ``runs/<package>`` (``runs/vqgan-negatives/transformer`` and ``.../vqgan``) is a run
as ``train`` writes it with its default ``--output-dir``. Inputs the README names besides a run are made here too:
``scene.h5`` (as ``m1-hyperspectral data synth`` writes it, with the tiny run's bands) and ``my_writer/`` (a
folder of one writer's symbol images for ganwriting-music).

Also checked on the entry points themselves: what the call returns, and that ``from_pretrained(..., device=...)``
places every parameter and buffer there (the ``meta`` device stands in for an accelerator on a CPU machine).
"""

from __future__ import annotations

import importlib
import re
import traceback
from dataclasses import replace
from pathlib import Path

import pytest

from gencore.registry import get

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["dcgan-tutorial", "hvae-captcha", "m1-hyperspectral", "vqgan-negatives", "ganwriting-music"]

#: The run directory each README's examples load (the default ``--output-dir`` of its training command).
RUN = {
    "dcgan-tutorial": "runs/dcgan-tutorial",
    "hvae-captcha": "runs/hvae-captcha",
    "m1-hyperspectral": "runs/m1-hyperspectral",
    "vqgan-negatives": "runs/vqgan-negatives/transformer",
    "ganwriting-music": "runs/ganwriting-music",
}


def python_blocks(package: str) -> list[str]:
    """The ```python blocks of the "## Python" section of ``packages/<package>/README.md``."""
    text = (ROOT / "packages" / package / "README.md").read_text(encoding="utf-8")
    parts = re.split(r"^## Python[ \t]*$", text, maxsplit=1, flags=re.M)
    assert len(parts) == 2, f"packages/{package}/README.md has no '## Python' section"
    section = re.split(r"^## ", parts[1], maxsplit=1, flags=re.M)[0]
    return re.findall(r"^```python[ \t]*\n(.*?)^```[ \t]*$", section, flags=re.M | re.S)


def _train(package: str, command: str, run_dir: Path, *overrides: str) -> None:
    """Train ``package``'s ``command`` with its registry tiny preset into ``run_dir`` (in this process)."""
    spec = get(package).command(command)
    config = spec.build("tiny", f"train.output_dir={str(run_dir)!r}", *overrides)
    importlib.import_module(spec.module).run_training(config)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: one thread is faster than two and immune to spin-waiting on a shared machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def workdir(request, tmp_path_factory, one_thread) -> Path:
    """A working directory holding a tiny trained run of the package at its default path (and the README's
    other inputs); shared by the tests of one package."""
    package = request.param
    root = tmp_path_factory.mktemp(package)
    if package == "vqgan-negatives":
        _train(package, "train-vqgan", root / "runs/vqgan-negatives/vqgan")
        _train(package, "train-transformer", root / RUN[package], f"vqgan={str(root / 'runs/vqgan-negatives/vqgan')!r}")
    elif package == "hvae-captcha":  # text-aware, as `hvae-captcha train` builds it by default
        from hvae_captcha.cli import CONDITIONED_DEFAULTS

        _train(package, "train", root / RUN[package], "model.conditioned=true", *CONDITIONED_DEFAULTS)
    else:
        _train(package, get(package).command().name, root / RUN[package])
    if package == "m1-hyperspectral":
        from m1_hyperspectral.synth import make_scene, save_scene

        synth = get(package).command().build("tiny").data.synth
        save_scene(make_scene(synth), str(root / "scene.h5"), synth)
    if package == "ganwriting-music":
        from PIL import Image

        from ganwriting_music.data import font_symbols

        data = replace(get(package).command().build("tiny").data, image_size=64)  # scans are larger than the model
        folder = root / "my_writer"
        folder.mkdir()
        for i, image in enumerate(font_symbols(data, ["Leipzig"], seed=3, per_class=1).images[:, 0].numpy()):
            Image.fromarray(image).save(folder / f"{i:03d}.png")
    return root


@pytest.mark.parametrize("workdir", PACKAGES, indirect=True)
def test_readme_python_blocks_run(workdir, monkeypatch, request):
    package = request.node.callspec.params["workdir"]
    blocks = python_blocks(package)
    assert blocks, f"packages/{package}/README.md: the '## Python' section has no ```python block"
    monkeypatch.chdir(workdir)
    namespace: dict = {"__name__": "__readme__"}
    for i, code in enumerate(blocks, 1):
        name = f"packages/{package}/README.md, ## Python, block {i}"
        try:
            exec(compile(code, name, "exec"), namespace)
        except Exception:  # noqa: BLE001 - reported with the block's own line numbers
            pytest.fail(f"{name} failed:\n{code}\n{traceback.format_exc(limit=-3)}", pytrace=False)


def _pipeline(package: str):
    return {
        "dcgan-tutorial": ("dcgan_tutorial", "DCGANPipeline"),
        "hvae-captcha": ("hvae_captcha", "HVAEPipeline"),
        "m1-hyperspectral": ("m1_hyperspectral", "M1Pipeline"),
        "vqgan-negatives": ("vqgan_negatives", "NegativesPipeline"),
        "ganwriting-music": ("ganwriting_music", "GanwritingPipeline"),
    }[package]


@pytest.mark.parametrize("workdir", PACKAGES, indirect=True)
def test_from_pretrained_places_the_model_on_the_device(workdir, request):
    import torch

    package = request.node.callspec.params["workdir"]
    module, name = _pipeline(package)
    pipeline = getattr(importlib.import_module(module), name)  # the lazy export of the package
    for path in (workdir / RUN[package], workdir / RUN[package] / "model"):
        pipe = pipeline.from_pretrained(path, device="meta")
        modules = [m for m in vars(pipe).values() if isinstance(m, torch.nn.Module)]
        assert modules and pipe.device == torch.device("meta")
        tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
        assert tensors and all(t.device.type == "meta" for t in tensors), f"{name} left tensors off the device"


@pytest.mark.parametrize("workdir", PACKAGES, indirect=True)
def test_pipelines_return_what_they_document(workdir, request):
    import numpy as np
    from PIL import Image

    package = request.node.callspec.params["workdir"]
    module, name = _pipeline(package)
    pipe = getattr(importlib.import_module(module), name).from_pretrained(workdir / RUN[package])
    if package == "m1-hyperspectral":
        features = pipe()
        bands, latent = pipe.model.config.bands, pipe.model.config.latent
        assert features["mean"].shape == features["z"].shape == (len(features["labels"]), latent)
        assert features["coords"].shape == (len(features["labels"]), 3)
        cube = np.random.default_rng(0).uniform(0, 1, (3, 5, bands)).astype(np.float32)
        assert pipe(cube)["mean"].shape == (15, latent)
        assert np.array_equal(pipe(cube)["z"], pipe(cube.reshape(15, bands))["z"])  # same pixels, same order
        assert pipe.sample(4).shape == (4, bands)
        return
    kwargs = {"symbol": "gClef", "style": "font:Petaluma"} if package == "ganwriting-music" else {}
    images = pipe(num_images=3, seed=1, **kwargs)
    assert len(images) == 3 and all(isinstance(im, Image.Image) for im in images)
    tensor = pipe(num_images=3, seed=1, output_type="pt", **kwargs)
    low = 0.0 if package == "hvae-captcha" else -1.0  # hvae's decoder means are in [0, 1]
    assert tensor.shape[0] == 3 and float(tensor.min()) >= low and float(tensor.max()) <= 1
    assert images[0].size == tuple(tensor.shape[-1:-3:-1])
    assert images[0].mode == ("L" if tensor.shape[1] == 1 else "RGB")
    again = np.asarray(pipe(num_images=3, seed=1, **kwargs)[2])
    assert np.array_equal(np.asarray(images[2]), again)  # seeded
    pixels = tensor[2].permute(1, 2, 0).squeeze(-1).numpy()
    expected = np.round(pixels * 255 if low == 0 else (pixels + 1) * 127.5).astype(np.uint8)
    assert np.abs(np.asarray(images[2]).astype(int) - expected).max() <= 1


@pytest.mark.parametrize("workdir", PACKAGES, indirect=True)
def test_the_registry_loads_what_the_readme_loads(workdir, request):
    """``PackageSpec.load`` (the registry's way in, for tools that iterate the packages) gives the package's own
    pipeline for a trained run."""
    package = request.node.callspec.params["workdir"]
    module, name = _pipeline(package)
    loaded = get(package).load(str(workdir / RUN[package]))
    assert type(loaded).__name__ == name and type(loaded).__module__.startswith(module)
