"""Broken inputs for the bad-input table (test_bad_input.py): damaged files, tiny trained runs and damaged copies
of them, a snapshot of the input tree, and the check that a command failed cleanly.

Everything here is written once per session under one ``world`` directory; a case may read it but must not
change it (the snapshot before and after each case proves that).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from gencore.registry import PackageSpec, packages

ROOT = Path(__file__).resolve().parents[2]


def _key(name: str) -> str:
    """The short key of a package in the case table and its ids: its name up to the first dash (``m1``)."""
    return name.partition("-")[0]


def _specs() -> dict[str, PackageSpec]:
    found: dict[str, PackageSpec] = {}
    for name, spec in packages().items():
        if _key(name) in found:
            raise RuntimeError(f"packages {found[_key(name)].name} and {name} share the short key {_key(name)!r}")
        found[_key(name)] = spec
    return found


#: Package key (the registered name up to its first dash: ``gencore``, ``dcgan``, ``m1`` ...) -> its spec.
SPECS = _specs()
#: Package key -> the click entry point of its console script.
CLIS = {key: spec.cli for key, spec in SPECS.items()}
#: The names of the conftests' lists that the case table still uses: training command of a two-stage package.
_LISTS = {"TINY_VQ": "train-vqgan", "TINY_GPT": "train-transformer"}


def tiny(package: str, command: str = "TINY") -> list[str]:
    """The tiny preset of ``package`` (a key of :data:`CLIS` or a registered name) for its training ``command``
    (``TINY``: the first one; ``TINY_VQ``/``TINY_GPT`` as the vqgan conftest names them), as ``key=value`` items.

    Read from the package registry, where the package's own tests read it too, so the two never drift apart.
    """
    spec = SPECS[package] if package in SPECS else packages()[package]
    return list(spec.preset("tiny", None if command == "TINY" else _LISTS.get(command, command)))


def as_sets(items: list[str]) -> list[str]:
    """``["a=1", "b=2"]`` -> ``["--set", "a=1", "--set", "b=2"]``."""
    return [arg for item in items for arg in ("--set", item)]


def load_cli(package: str) -> Callable[..., object]:
    """The click group of ``package`` (a key of :data:`CLIS`)."""
    module, _, attr = CLIS[package].partition(":")
    return getattr(importlib.import_module(module), attr)


# --- damaged files ------------------------------------------------------------------------------------------


def _png_bytes(size: int = 24, ink: bool = True) -> bytes:
    img = Image.new("L", (size, size), 255)
    if ink:
        img.paste(0, (size // 4, size // 4, 3 * size // 4, 3 * size // 4))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _jpg_bytes(size: int = 24) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (10, 200, 30)).save(buf, "JPEG")
    return buf.getvalue()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def build_images(root: Path) -> None:
    """Single images and image folders, each broken in one way."""
    good = _png_bytes()
    _write(root / "img" / "good.png", good)
    _write(root / "img" / "zero.png", b"")
    _write(root / "img" / "truncated.png", good[: len(good) // 2])
    _write(root / "img" / "truncated.jpg", _jpg_bytes()[:200])
    _write(root / "img" / "text.png", "this is not an image\n")
    _write(root / "img" / "blank.png", _png_bytes(ink=False))
    (root / "empty").mkdir()
    for name, bad in (("zero", b""), ("trunc", good[: len(good) // 2]), ("text", b"hello\n")):
        _write(root / f"flat_{name}" / "a.png", good)
        _write(root / f"flat_{name}" / "b.png", bad)
        _write(root / f"classes_{name}" / "one" / "a.png", good)
        _write(root / f"classes_{name}" / "one" / "b.png", bad)
    _write(root / "captcha_zero" / "ab12c.png", good)
    _write(root / "captcha_zero" / "2b827.png", b"")
    _write(root / "captcha_notimage" / "ab12c.png", good)
    _write(root / "captcha_notimage" / "README.txt", "labels are file names\n")
    _write(root / "captcha_trunc" / "ab12c.png", good[:40])
    _write(root / "captcha_badchar" / "AB!!9.png", good)
    _write(root / "captcha_badchar" / "abcde.png", good)


def build_configs(root: Path) -> None:
    """Config files: unknown and mistyped keys, wrong value types, broken syntax, wrong top-level shape."""
    c = root / "cfg"
    _write(c / "unknown.toml", "[train]\nmax_steps = 2\nbogus_option = 1\n")
    _write(c / "typo.toml", "[train]\nmax_step = 2\n")
    _write(c / "wrongtype.toml", '[train]\nseed = "zero"\n')
    _write(c / "table_as_value.toml", "train = 5\n")
    _write(c / "syntax.toml", "[train\nmax_steps = 2\n")
    _write(c / "nonutf8.toml", b"[train]\nmax_steps = 2 # \xff\xfe\n")
    _write(c / "unknown.json", json.dumps({"trian": {"max_steps": 2}}))
    _write(c / "wrongtype.json", json.dumps({"train": {"log_every": [8]}}))
    _write(c / "syntax.json", '{"train": {"max_steps": 2,}')
    _write(c / "list.json", "[1, 2, 3]")
    _write(c / "bool_for_int.json", json.dumps({"train": {"log_every": True}}))
    _write(c / "config.ini", "[train]\nmax_steps = 2\n")
    _write(c / "syntax.yaml", "train:\n  max_steps: [2\n")
    _write(c / "list.yaml", "- train\n- 2\n")
    _write(c / "deep.yaml", "train: " + "[" * 1000 + "]" * 1000 + "\n")
    _write(c / "aliases.yaml", "l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
           + "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9)))
    _write(c / "wrongtype.yaml", "train:\n  log_every: lots\n")
    _write(c / "deep.json", '{"train": ' + "[" * 1000 + "]" * 1000 + "}")
    _write(c / "deep.toml", "train = " + "[" * 1000 + "]" * 1000 + "\n")
    _write(c / "empty_name.toml", "")  # valid (empty) TOML: used with a bad --set so it still fails
    (c / "a_directory.toml").mkdir()


def build_arrays(root: Path) -> None:
    """Hyperspectral files: wrong shapes and dtypes, NaN cubes, missing keys, damaged containers."""
    import h5py
    import scipy.io

    a = _mkdir(root / "hsi")
    rng = np.random.default_rng(0)
    cube = rng.random((6, 5, 8)).astype(np.float32)
    gt = rng.integers(0, 3, (6, 5)).astype(np.uint8)
    np.save(a / "good.npy", cube)
    nan = cube.copy()
    nan[1, 2, 3] = np.nan
    np.save(a / "nan_cube.npy", nan)
    inf = cube.copy()
    inf[0, 0, 0] = np.inf
    scipy.io.savemat(a / "inf_cube.mat", {"cube": inf.astype(np.float64), "gt": gt})
    np.save(a / "flat_2d.npy", cube[:, :, 0])
    np.save(a / "four_d.npy", cube[None])
    np.save(a / "one_band.npy", cube[:, :, :1])
    np.save(a / "no_pixels.npy", np.zeros((0, 5, 8), np.float32))
    np.save(a / "strings.npy", np.full((2, 2, 3), "x", dtype="<U4"))
    np.save(a / "complex.npy", cube.astype(np.complex64) * 1j)
    np.save(a / "object.npy", np.array([[[None, 1]]], dtype=object), allow_pickle=True)
    raw = (a / "good.npy").read_bytes()
    _write(a / "truncated.npy", raw[: len(raw) // 2])
    _write(a / "zero.npy", b"")
    _write(a / "text.npy", "1 2 3\n")
    _write(a / "text.mat", "not a matlab file\n")
    _write(a / "text.h5", "not hdf5\n")
    np.save(a / "gt_scene.npy", cube)
    np.save(a / "gt_scene_gt.npy", np.full((6, 5), -1, np.int16))  # negative class ids in the sibling
    scipy.io.savemat(a / "no_cube.mat", {"gt": gt, "vector": np.arange(5.0)})
    scipy.io.savemat(a / "two_cubes.mat", {"first": cube, "second": cube * 2})
    scipy.io.savemat(a / "gt_fraction.mat", {"cube": cube, "gt": gt + 0.5})
    scipy.io.savemat(a / "gt_only.mat", {"labels": np.ones((3, 3), np.uint8)})
    scipy.io.savemat(a / "other_bands.mat", {"cube": rng.random((6, 5, 9))})
    scipy.io.savemat(a / "scene.mat", {"cube": cube, "gt": gt})
    with h5py.File(a / "strings.h5", "w") as fh:
        fh.create_dataset("names", data=np.array([b"a", b"b"]))
    raw = (a / "scene.mat").read_bytes()
    _write(a / "truncated.mat", raw[: len(raw) // 3])
    with h5py.File(a / "scene.h5", "w") as fh:
        fh.create_dataset("cube", data=cube)
    raw = (a / "scene.h5").read_bytes()
    _write(a / "truncated.h5", raw[: len(raw) // 2])


def build_ganwriting(root: Path) -> None:
    """Index files and HOMUS folders of ganwriting-music, each broken in one way."""
    g = root / "gw"
    good = _png_bytes()
    _write(g / "imgs" / "a.png", good)
    _write(g / "imgs" / "zero.png", b"")
    _write(g / "imgs" / "text.png", "not a png")
    _write(g / "imgs" / "blank.png", _png_bytes(ink=False))
    lines = {
        "one_field": "imgs/a.png\n",
        "four_fields": "imgs/a.png\tgClef\tw1\textra\n",
        "empty_field": "imgs/a.png\t\tw1\n",
        "unknown_class": "imgs/a.png\tgClefff\tw1\n",
        "missing_image": "imgs/missing.png\tgClef\tw1\nimgs/a.png\tgClef\tw1\n",
        "zero_image": "imgs/zero.png\tgClef\tw1\nimgs/a.png\tgClef\tw1\n",
        "text_image": "imgs/text.png\tgClef\tw1\n",
        "blank_image": "imgs/blank.png\tgClef\tw1\n",
        "comments_only": "# nothing here\n\n",
        "spaces_not_tabs": "imgs/a.png gClef w1\n",
    }
    for name, text in lines.items():
        _write(g / f"{name}.txt", text)
    _write(g / "nonutf8.txt", b"imgs/a.png\tgClef\xff\n")
    homus = {
        "bad_point": "G-Clef\n1,2;3;4,5\n",
        "letters": "G-Clef\nx,y;1,2\n",
        "three_coords": "Sharp\n1,2,3;4,5\n",
        "class_only": "Flat\n",
        "empty_file": "",
        "unknown_class": "Treble-Clef-ish\n1,2;3,4\n",
        "nan_point": "G-Clef\nnan,1;2,3\n",
        "inf_point": "G-Clef\n1,2;inf,3\n",
    }
    for name, text in homus.items():
        _write(g / "homus" / name / "w1" / f"{name}.txt", text)
    _write(g / "homus" / "nonutf8" / "w1" / "s.txt", b"G-Clef\n1,2;\xff\n")
    _write(g / "folders" / "unknown_class" / "notAClass" / "a.png", good)
    (g / "folders" / "empty_class" / "gClef").mkdir(parents=True)
    _write(g / "folders" / "zero_image" / "gClef" / "a.png", b"")
    _write(g / "folders" / "zero_image" / "gClef" / "b.png", good)


class _Payload:
    """Unpickling this writes ``marker``: proof that code from the file ran (the snapshot of the world sees it)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # noqa: ANN204
        return (exec, (f"open({self.marker!r}, 'w').write('the payload ran')",))


def build_data_rules(root: Path) -> None:
    """Inputs of the data rules: image folders that mix loose images with sub-folders, MNIST files that are empty,
    text or a crafted pickle (torchvision's old ``processed/training.pt``), weight files with the wrong keys."""
    import torch
    from safetensors.torch import save_file

    good = _png_bytes()
    for name in ("a", "b", "c"):  # 3 loose images beside a thumbs/ folder of 2: flat set or classes?
        _write(root / "mixed" / f"{name}b12c.png", good)
    for name in ("d", "e"):
        _write(root / "mixed" / "thumbs" / f"{name}b12c.png", good)
    _write(root / "only_subfolders" / "sub" / "ab12c.png", good)
    _write(root / "gw" / "folders" / "mixed" / "gClef" / "a.png", good)
    _write(root / "gw" / "folders" / "mixed" / "stray.png", good)
    _write(root / "gw" / "folders" / "nested" / "gClef" / "a.png", good)
    _write(root / "gw" / "folders" / "nested" / "gClef" / "thumbs" / "b.png", good)
    raw = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    for name in raw:
        _write(root / "mnist_zero" / "MNIST" / "raw" / name, b"")
        _write(root / "mnist_text" / "MNIST" / "raw" / name, "60000 images, honest\n")
    processed = _mkdir(root / "mnist_pickle" / "MNIST" / "processed")
    for name in ("training.pt", "test.pt"):
        torch.save(_Payload(root / "PAYLOAD_RAN"), processed / name)
    w = _mkdir(root / "weights")
    save_file({"features.0.weight": torch.zeros(2, 2), "bogus": torch.zeros(1)}, str(w / "wrong_keys.safetensors"))
    torch.save([1, 2, 3], w / "vgg19_list.pt")
    heads = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 128, 256, 512, 512))}
    save_file(heads, str(w / "heads.safetensors"))


def build_inputs(root: Path) -> Path:
    """Write every damaged input under ``root`` (created); returns it."""
    root.mkdir(parents=True)
    np.save(_mkdir(root / "hsi") / "good12.npy", np.random.default_rng(1).random((6, 5, 12)).astype(np.float32))
    build_images(root)
    build_configs(root)
    build_arrays(root)
    build_ganwriting(root)
    build_data_rules(root)
    user = _mkdir(root / "userdir")  # an output option pointed at the user's own folder must leave it alone
    np.save(user / "scene.npy", np.random.default_rng(2).random((6, 5, 12)).astype(np.float32))
    _write(user / "NOTES.txt", "my notes\n")
    return root


# --- tiny runs and damaged copies -------------------------------------------------------------------------------


def _config(cls: type, items: list[str], out: Path, *extra: str) -> object:
    from gencore.config import build_config

    return build_config(cls, overrides=[*items, f"train.output_dir={str(out)!r}", *extra])


def train_runs(root: Path) -> dict[str, Path]:
    """Train one tiny run per package (a few updates each, about 15 s in all); returns package -> run dir."""
    from dcgan_tutorial.config import GANConfig
    from dcgan_tutorial.train import run_training as dcgan_train
    from ganwriting_music.config import GanwritingConfig
    from ganwriting_music.train import run_training as gw_train
    from hvae_captcha.config import HVAEConfig
    from hvae_captcha.train import run_training as hvae_train
    from m1_hyperspectral.config import M1RunConfig
    from m1_hyperspectral.train import run_training as m1_train
    from vqgan_negatives import train as vq_train
    from vqgan_negatives import train_transformer as gpt_train
    from vqgan_negatives.config import TransformerRunConfig, VQGANConfig

    few = ["train.max_steps=2", "train.checkpoint_every=2"]
    runs = {k: root / k for k in ("dcgan", "hvae", "m1", "ganwriting", "vqgan", "gpt")}
    dcgan_train(_config(GANConfig, tiny("dcgan"), runs["dcgan"], *few))
    hvae_train(_config(HVAEConfig, tiny("hvae"), runs["hvae"], *few))
    m1_train(_config(M1RunConfig, tiny("m1"), runs["m1"], *few))
    gw_train(_config(GanwritingConfig, tiny("ganwriting"), runs["ganwriting"], "train.max_epochs=1",
                     "train.eval_every_epochs=0", "train.sample_every_epochs=0"), "0", None)  # fmt: skip
    small = ["data.num_images=16", "data.holdout_fraction=0.25", "train.max_steps=1", "train.checkpoint_every=1"]
    vq_train.run_training(_config(VQGANConfig, tiny("vqgan", "TINY_VQ"), runs["vqgan"], *small))
    vqgan = f"vqgan={str(runs['vqgan'])!r}"
    gpt_cfg = _config(TransformerRunConfig, tiny("vqgan", "TINY_GPT"), runs["gpt"], *small, vqgan)
    gpt_train.run_training(gpt_cfg)
    return runs


def write_manifest(directory: Path) -> None:
    """Rewrite ``directory/manifest.json`` to match its files as they are now (so a damaged file passes the
    manifest check and reaches the file's own parser)."""
    files = {}
    for item in sorted(directory.rglob("*")):
        if item.is_file() and item.name != "manifest.json":
            files[item.relative_to(directory).as_posix()] = {
                "bytes": item.stat().st_size, "sha256": hashlib.sha256(item.read_bytes()).hexdigest(),
            }  # fmt: skip
    (directory / "manifest.json").write_text(json.dumps({"format": 1, "files": files}, indent=1) + "\n")


def truncate(path: Path, keep: float = 0.5) -> None:
    """Cut ``path`` to ``keep`` of its size (as a crash or a full disk would leave it)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def damaged_copy(source: Path, dest: Path, rel: str, how: str) -> Path:
    """Copy the directory ``source`` to ``dest`` and damage the file ``rel`` in the copy.

    ``how``: ``truncate`` (manifest left stale), ``truncate+manifest`` (manifest rewritten, so the safetensors
    parser itself sees the cut file), ``garbage`` / ``garbage+manifest`` (the file replaced by broken JSON),
    ``wrongtype+manifest`` (a config value of the wrong type; ``rel`` is ``file:key``), ``none`` (an intact copy).
    """
    shutil.copytree(source, dest)
    rel, _, key = rel.partition(":")
    target = dest / rel
    if how.startswith("truncate"):
        truncate(target)
    elif how.startswith("garbage"):
        target.write_text("{ this is not json")
    elif how.startswith("wrongtype"):
        data = json.loads(target.read_text())
        data[key] = "big"
        target.write_text(json.dumps(data))
    if how.endswith("+manifest"):
        write_manifest(target.parent)
    return dest


def _checkpoint(run: Path) -> Path:
    return sorted((run / "checkpoints").glob("step_*"))[-1]


def foreign_first_stage(gpt_run: Path, dest: Path) -> Path:
    """A copy of a transformer run's ``model/`` whose ``vqgan/`` is another run's first stage (half the codes)."""
    import dataclasses

    import torch

    from vqgan_negatives.model import VQModel

    shutil.copytree(gpt_run / "model", dest)
    config = VQModel.from_pretrained(dest / "vqgan").config
    quantizer = dataclasses.replace(config.quantizer, codebook_size=config.quantizer.codebook_size // 2)
    shutil.rmtree(dest / "vqgan")
    torch.manual_seed(0)
    VQModel(dataclasses.replace(config, quantizer=quantizer)).save_pretrained(dest / "vqgan")
    return dest


def damage_runs(runs: dict[str, Path], bad: Path) -> None:
    """The damaged copies that the table names as ``$RUNS/bad/<name>`` (checkpoints as ``<name>/step``)."""
    st = "model.safetensors"
    models = {
        "dcgan_model_trunc": (runs["dcgan"] / "model" / "generator", st, "truncate"),
        "dcgan_model_trunc_m": (runs["dcgan"] / "model" / "generator", st, "truncate+manifest"),
        "dcgan_model_garbage": (runs["dcgan"] / "model" / "generator", "config.json", "garbage+manifest"),
        "dcgan_model_wrongtype": (runs["dcgan"] / "model" / "generator", "config.json:nz", "wrongtype+manifest"),
        "hvae_model_trunc": (runs["hvae"] / "model", st, "truncate"),
        "hvae_model_trunc_m": (runs["hvae"] / "model", st, "truncate+manifest"),
        "hvae_model_garbage": (runs["hvae"] / "model", "config.json", "garbage+manifest"),
        "hvae_bad_manifest": (runs["hvae"] / "model", "manifest.json", "garbage"),
        "m1_model_trunc": (runs["m1"] / "model", st, "truncate"),
        "m1_model_trunc_m": (runs["m1"] / "model", st, "truncate+manifest"),
        "gw_model_trunc": (runs["ganwriting"] / "model", st, "truncate"),
        "gw_model_trunc_m": (runs["ganwriting"] / "model", st, "truncate+manifest"),
        "vq_model_trunc": (runs["vqgan"] / "model" / "vqgan", st, "truncate"),
        "vq_model_trunc_m": (runs["vqgan"] / "model" / "vqgan", st, "truncate+manifest"),
        "gpt_model_trunc": (runs["gpt"] / "model", f"gpt/{st}", "truncate"),
    }
    for name, (source, rel, how) in models.items():
        damaged_copy(source, bad / name, rel, how)
    (bad / "hvae_no_manifest").mkdir()
    for item in (runs["hvae"] / "model").iterdir():
        if item.name != "manifest.json":
            shutil.copy2(item, bad / "hvae_no_manifest" / item.name)
    state = "state.safetensors"
    checkpoints = {
        "dcgan_ckpt_trunc": ("dcgan", "truncate"),
        "hvae_ckpt_trunc": ("hvae", "truncate"),
        "hvae_ckpt_trunc_m": ("hvae", "truncate+manifest"),
        "hvae_ckpt_ok": ("hvae", "none"),
        "m1_ckpt_trunc": ("m1", "truncate"),
        "gw_ckpt_trunc_m": ("ganwriting", "truncate+manifest"),
        "gpt_ckpt_trunc_m": ("gpt", "truncate+manifest"),
    }
    for name, (package, how) in checkpoints.items():
        damaged_copy(_checkpoint(runs[package]), bad / name / "step", state, how)
    # signed but of the wrong structure: a manifest without a table of files, one whose entry leaves the folder, a
    # training state whose tables or counters are of the wrong type, a model config nested 1,000 levels deep
    manifest_null = Path(shutil.copytree(runs["hvae"] / "model", bad / "hvae_manifest_files_null"))
    (manifest_null / "manifest.json").write_text('{"format": 1, "files": null}')
    escape = Path(shutil.copytree(runs["hvae"] / "model", bad / "hvae_manifest_escape"))
    (escape / "manifest.json").write_text(json.dumps({"format": 1, "files": {"../x": {"bytes": 1, "sha256": "0"}}}))
    for name in ("struct", "types"):  # the trainer table a list; its step a string
        step = Path(shutil.copytree(_checkpoint(runs["hvae"]), bad / f"hvae_ckpt_state_{name}" / "step"))
        tree = json.loads((step / "state.json").read_text())
        table = {k: v for k, v in tree["__dict__"]}
        if name == "types":
            table["trainer"] = {"__dict__": [[k, "5" if k == "step" else v] for k, v in table["trainer"]["__dict__"]]}
        else:
            table["trainer"] = [1, 2]
        (step / "state.json").write_text(json.dumps({"__dict__": [[k, v] for k, v in table.items()]}))
        write_manifest(step)
    for name, source, key, value in (("dcgan_model_huge", runs["dcgan"] / "model" / "generator", "ngf", 10**9),
                                     ("gw_model_huge", runs["ganwriting"] / "model", "gen_channels", 10**6)):
        huge = Path(shutil.copytree(source, bad / name))
        config = json.loads((huge / "config.json").read_text())
        section = config.get("model", config)  # ganwriting keeps its ModelConfig under "model"
        section[key] = value
        (huge / "config.json").write_text(json.dumps(config))
        write_manifest(huge)
    deep = Path(shutil.copytree(runs["m1"] / "model", bad / "m1_model_deep"))
    config = json.loads((deep / "config.json").read_text())
    (deep / "config.json").write_text(json.dumps(config)[:-1] + ', "hidden": ' + "[" * 1000 + "]" * 1000 + "}")
    write_manifest(deep)
    # a run directory whose own config.json is broken (evaluate reads it before anything else)
    (bad / "dcgan_run_garbage").mkdir()
    shutil.copytree(runs["dcgan"] / "model", bad / "dcgan_run_garbage" / "model")
    (bad / "dcgan_run_garbage" / "config.json").write_text("{ this is not json")
    foreign_first_stage(runs["gpt"], bad / "gpt_foreign_vqgan")  # model/vqgan from another run: other codebook


# --- before/after ------------------------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` -> (kind, size, mtime_ns, sha256) (directories: kind and mtime only)."""
    out: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = path.relative_to(root).as_posix()
        if path.is_dir():
            out[rel] = ("dir", 0, st.st_mtime_ns, "")
        else:
            out[rel] = ("file", st.st_size, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def diff_snapshots(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """Human-readable differences between two snapshots (empty when nothing changed)."""
    changes = [f"removed {k}" for k in before if k not in after]
    changes += [f"added {k}" for k in after if k not in before]
    changes += [f"changed {k}" for k in before if k in after and before[k] != after[k]]
    return changes


# --- what a clean failure looks like ------------------------------------------------------------------------------


def failure_problems(result: object, expect: str) -> list[str]:
    """Why a click ``Result`` is not a clean bad-input failure (empty list: it is one).

    Clean means: a non-zero exit code, no traceback (the only exception is click's SystemExit) and stderr that is
    either gencore's ``error: <one line>`` or click's short usage error (``Usage: ...``, ``Try ...``,
    ``Error: ...``: at most three lines, exit code 2), and the message contains ``expect``.
    """
    problems = []
    exc = getattr(result, "exception", None)
    if exc is not None and not isinstance(exc, SystemExit):
        problems.append(f"uncaught {type(exc).__name__}: {exc}")
    output = getattr(result, "output", "")
    if "Traceback" in output:
        problems.append("a traceback was printed")
    code = getattr(result, "exit_code", 0)
    if code == 0:
        problems.append("exit code 0")
    lines = [line for line in getattr(result, "stderr", "").splitlines() if line.strip()]
    if not lines:
        problems.append("nothing on stderr")
    elif lines[0].startswith("error: "):
        if len(lines) != 1:
            problems.append(f"stderr has {len(lines)} lines, expected one: {lines}")
        if code != 2:
            problems.append(f"exit code {code}, expected 2")
    elif lines[-1].startswith("Error: "):  # click's usage error
        if len(lines) > 3 or not lines[0].startswith("Usage: ") or code != 2:
            problems.append(f"not a short usage error (exit {code}): {lines}")
    else:
        problems.append(f"stderr is neither 'error: ...' nor a usage error: {lines[:3]}")
    message = lines[-1] if lines else ""
    if expect not in message:
        problems.append(f"message does not name the problem ({expect!r}): {message!r}")
    return problems
