"""Untrusted files: a pickle crafted to run code when unpickled is refused by every load path of every package
(trained-model folders, checkpoints to resume, weight files, arrays) and its payload never runs.

Checkpoints and exported models are safetensors + JSON: the payload goes where a safetensors file belongs, with
a manifest rewritten to match (whoever crafts a checkpoint can forge its manifest too). Weight files that are
pickles by nature (torchvision's VGG) are read by PyTorch's weights-only unpickler, which refuses the payload.
"""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path

import fault_jobs as jobs
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gencore.checkpoint import _write_manifest, list_checkpoints

JOBS = jobs.jobs()


class Payload:
    """Unpickling this writes ``marker``: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # noqa: ANN204
        return (exec, (f"open({self.marker!r}, 'w').write('the payload ran')",))


def _cli(name: str):  # noqa: ANN202
    module, function = JOBS[name].entry.split(":")
    return getattr(importlib.import_module(module), function)


def _poison(folder: Path, marker: Path, as_zip: bool) -> list[Path]:
    """Replace every safetensors file in ``folder`` by the payload (torch zip or bare pickle), forge the manifest."""
    hit = sorted(folder.glob("*.safetensors"))
    assert hit, f"no safetensors file in {folder}"
    for path in hit:
        if as_zip:
            torch.save(Payload(marker), path)
        else:
            path.write_bytes(pickle.dumps(Payload(marker)))
    if (folder / "manifest.json").is_file():
        _write_manifest(folder)
    return hit


# (package, folder of the run to poison, command that loads it: RUN stands for the run directory; None: the
# package's own training command resuming the run, as in fault_jobs). Every registered package's checkpoints,
# and the exported models of these:
MODEL_LOADS = [
    ("dcgan-tutorial", "model/generator", ["sample", "RUN", "-n", "4", "-o", "RUN/x.png"]),
    ("hvae-captcha", "model", ["sample", "RUN", "-n", "4", "-o", "RUN/x.png"]),
    ("m1-hyperspectral", "model", ["sample", "RUN", "-n", "4", "-o", "RUN/x.png"]),
    ("vqgan-negatives", "model/vqgan", ["train-transformer", "--vqgan", "RUN/model/vqgan", "--output-dir", "RUN/gpt"]),
    ("ganwriting-music", "model", ["generate", "RUN", "-n", "4", "-o", "RUN/x.png"]),
]
LOADS = sorted([*MODEL_LOADS, *[(name, "checkpoint", None) for name in JOBS]], key=lambda load: load[0])


@pytest.mark.slow
@pytest.mark.parametrize("as_zip", [True, False], ids=["torch-zip", "bare-pickle"])
@pytest.mark.parametrize(("name", "folder", "args"), LOADS, ids=[f"{n}-{f}" for n, f, _ in LOADS])
def test_crafted_pickle_in_a_run_is_refused_and_never_runs(tmp_path, trained, name, folder, args, as_zip):
    run = trained(name, tmp_path / "run")
    marker = tmp_path / "PAYLOAD_RAN"
    if folder == "checkpoint":  # every checkpoint poisoned: --resume auto has no clean one to fall back on
        for ckpt in list_checkpoints(run / "checkpoints"):
            _poison(ckpt, marker, as_zip)
        argv = JOBS[name].argv(run, *JOBS[name].longer())
    else:
        _poison(run / folder, marker, as_zip)
        argv = [a.replace("RUN", str(run)) for a in args]
    result = CliRunner().invoke(_cli(name), argv)
    assert not marker.exists(), "the pickle's code ran"
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error:") and ".safetensors" in line, line


def _weights_payloads(tmp_path: Path, marker: Path) -> list[Path]:
    zipped, bare = tmp_path / "vgg19-dcbb9e9d.pth", tmp_path / "vgg16-397923af.pth"
    torch.save({"features.0.weight": Payload(marker)}, zipped)
    bare.write_bytes(pickle.dumps({"features.0.weight": Payload(marker)}))
    return [zipped, bare]


@pytest.mark.parametrize("which", [0, 1], ids=["torch-zip", "bare-pickle"])
def test_crafted_vgg_weights_for_style_transfer_are_refused(tmp_path, which):
    from PIL import Image

    marker = tmp_path / "PAYLOAD_RAN"
    weights = _weights_payloads(tmp_path, marker)[which]
    for stem in ("content", "style"):
        Image.new("RGB", (40, 40), (120, 30, 200)).save(tmp_path / f"{stem}.png")
    args = ["stylize", str(tmp_path / "content.png"), str(tmp_path / "style.png"), "--vgg-weights", str(weights),
            "--steps", "1", "--size", "32", "-o", str(tmp_path / "out.png")]  # fmt: skip
    result = CliRunner().invoke(_cli("dcgan-tutorial"), args)
    assert not marker.exists(), "the pickle's code ran"
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: cannot load {weights}")


@pytest.mark.slow
@pytest.mark.parametrize("which", [0, 1], ids=["torch-zip", "bare-pickle"])
def test_crafted_perceptual_weights_for_the_vqgan_are_refused(tmp_path, which):
    marker = tmp_path / "PAYLOAD_RAN"
    weights = _weights_payloads(tmp_path, marker)[which]
    args = [*JOBS["vqgan-negatives"].args, "--output-dir", str(tmp_path / "run"), "--set", "loss.perceptual=lpips",
            "--set", f"loss.vgg_weights={str(weights)!r}", "--set", f"loss.lpips_weights={str(weights)!r}"]  # fmt: skip
    result = CliRunner().invoke(_cli("vqgan-negatives"), args)
    assert not marker.exists(), "the pickle's code ran"
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "cannot load" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("command", ["train", "extract"])
def test_pickled_object_array_is_refused_by_the_hyperspectral_reader(tmp_path, trained, command):
    marker = tmp_path / "PAYLOAD_RAN"
    np.save(tmp_path / "cube.npy", np.array([Payload(marker)], dtype=object), allow_pickle=True)
    args = ["train", str(tmp_path / "cube.npy"), "--output-dir", str(tmp_path / "run")]
    if command == "extract":  # a trained run: the array is the only thing wrong
        run = trained("m1-hyperspectral", tmp_path / "run")
        args = ["extract", str(run), str(tmp_path / "cube.npy"), "-o", str(tmp_path / "f.h5")]
    result = CliRunner().invoke(_cli("m1-hyperspectral"), args)
    assert not marker.exists(), "the pickle's code ran"
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert result.stderr.strip().startswith("error:")
