from __future__ import annotations

import json
import pickle
import random

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from gencore.checkpoint import (
    atomic_dir,
    latest_checkpoint,
    load_pretrained,
    load_torch_file,
    load_tree,
    prune_checkpoints,
    save_pretrained,
    save_tree,
    verify_dir,
)
from gencore.demo import ShapesVAE, VAEConfig
from gencore.errors import CheckpointError


def test_tree_round_trip_keeps_types(tmp_path):
    tree = {
        "w": torch.randn(3, 4),
        "step": torch.tensor(5.0),
        "nested": {0: [1, 2.5, None, "x"], "t": (1, torch.ones(2, dtype=torch.int64))},
        "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()},
    }
    with atomic_dir(tmp_path / "ck") as tmp:
        save_tree(tree, tmp)
    verify_dir(tmp_path / "ck")
    back = load_tree(tmp_path / "ck")
    assert torch.equal(back["w"], tree["w"]) and back["step"].item() == 5.0
    assert back["nested"][0] == [1, 2.5, None, "x"] and isinstance(back["nested"]["t"], tuple)
    np.random.set_state(back["rng"]["numpy"])
    a = np.random.rand()
    np.random.set_state(tree["rng"]["numpy"])
    assert np.random.rand() == a
    torch.set_rng_state(back["rng"]["torch"])


def test_atomic_dir_leaves_nothing_and_keeps_the_old_version_on_failure(tmp_path):
    with atomic_dir(tmp_path / "ck") as tmp:
        save_tree({"v": torch.zeros(2)}, tmp)
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "ck") as tmp:
        save_tree({"v": torch.ones(2)}, tmp)
        raise RuntimeError("crash mid-write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]
    assert torch.equal(load_tree(tmp_path / "ck")["v"], torch.zeros(2))


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete_manifest", "delete_file"])
def test_damaged_checkpoint_is_detected(tmp_path, damage):
    with atomic_dir(tmp_path / "ck") as tmp:
        save_tree({"v": torch.randn(1000)}, tmp)
    target = tmp_path / "ck" / "state.safetensors"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:-100])
        match = "truncated"
    elif damage == "flip":
        data = bytearray(target.read_bytes())
        data[-5] ^= 0xFF
        target.write_bytes(bytes(data))
        match = "SHA-256"
    elif damage == "delete_manifest":
        (tmp_path / "ck" / "manifest.json").unlink()
        match = "incomplete"
    else:
        target.unlink()
        match = "missing"
    with pytest.raises(CheckpointError, match=match):
        verify_dir(tmp_path / "ck")


def test_truncated_safetensors_without_manifest_is_a_clear_error(tmp_path):
    path = tmp_path / "w.safetensors"
    from safetensors.torch import save_file

    save_file({"a": torch.randn(100)}, str(path))
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_torch_file(path)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))  # unpickling creates the marker file


@pytest.mark.parametrize("suffix", [".pt", ".ckpt", ".bin", ".safetensors.bak"])
def test_pickle_is_refused_and_never_runs_without_opt_in(tmp_path, suffix):
    marker = tmp_path / "payload_ran"
    path = tmp_path / f"evil{suffix}"
    path.write_bytes(pickle.dumps({"state": _Payload(marker)}, protocol=4))
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_torch_file(path)
    assert not marker.exists()
    torch.save({"w": torch.ones(2)}, tmp_path / "zip.pt")  # torch's zip format is pickle too
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_torch_file(tmp_path / "zip.pt")


def test_pickle_loads_with_explicit_opt_in(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pt")
    assert torch.equal(load_torch_file(tmp_path / "ok.pt", allow_pickle=True)["w"], torch.ones(2))


def test_pretrained_round_trip_and_mismatch(tmp_path):
    model = ShapesVAE(VAEConfig(latent_dim=4, channels=8))
    model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "README.md", "config.json", "manifest.json", "model.safetensors", "model_info.json",
    ]  # fmt: skip
    back = ShapesVAE.from_pretrained(tmp_path / "m")
    assert back.config == model.config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), back.state_dict().values()))
    with pytest.raises(CheckpointError, match="does not match"):
        load_pretrained(tmp_path / "m", lambda cfg: nn.Linear(2, 2))
    save_pretrained(nn.Linear(2, 2), tmp_path / "lin", {"bogus_key": 1})
    with pytest.raises(CheckpointError, match="Linear, not gencore's ShapesVAE"):  # refused by its description
        ShapesVAE.from_pretrained(tmp_path / "lin")
    from gencore.checkpoint import _write_manifest

    (tmp_path / "lin" / "model_info.json").unlink()  # undescribed (an earlier version's): its config is checked
    _write_manifest(tmp_path / "lin", "gencore model")
    with pytest.raises(CheckpointError, match="unknown config key bogus_key"):
        ShapesVAE.from_pretrained(tmp_path / "lin")


def test_latest_skips_damaged_and_prune_keeps_newest(tmp_path):
    for step in (1, 2, 3):
        with atomic_dir(tmp_path / f"step_{step:06d}") as tmp:
            save_tree({"s": torch.tensor(step)}, tmp)
    (tmp_path / ".tmp-step_000004-abc").mkdir()  # an interrupted write is never a candidate
    (tmp_path / "step_000003" / "manifest.json").unlink()
    warnings = []
    assert latest_checkpoint(tmp_path, warn=warnings.append).name == "step_000002"
    assert "step_000003" in warnings[0]
    removed = prune_checkpoints(tmp_path, keep=1)
    assert [p.name for p in removed] == ["step_000001", "step_000002"]
    # renamed away before deletion, and the debris of the interrupted write is cleared with them
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_000003"]


def test_weights_only_reads_plain_weights_but_never_runs_a_payload(tmp_path):
    torch.save({"w": torch.arange(3)}, tmp_path / "plain.pth")
    assert torch.equal(load_torch_file(tmp_path / "plain.pth", weights_only=True)["w"], torch.arange(3))
    marker = tmp_path / "payload_ran"
    torch.save({"state": _Payload(marker)}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="cannot load"):
        load_torch_file(tmp_path / "evil.pth", weights_only=True)
    assert not marker.exists()


def test_atomic_file_replaces_only_on_success(tmp_path):
    from gencore.checkpoint import atomic_file

    target = tmp_path / "sub" / "out.npy"
    with atomic_file(target) as tmp:
        assert tmp.suffix == ".npy" and tmp.parent == target.parent
        np.save(tmp, np.arange(3))
    np.testing.assert_array_equal(np.load(target), np.arange(3))
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        np.save(tmp, np.zeros(5))
        raise RuntimeError("writer failed half-way")
    np.testing.assert_array_equal(np.load(target), np.arange(3))  # the old file is intact
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.npy"]  # no temporary left behind


def test_from_pretrained_places_the_model_on_map_location(tmp_path, monkeypatch):
    """map_location used to load the tensors there and copy them into a model left on the CPU."""
    from torch import nn

    from gencore.checkpoint import load_pretrained, save_pretrained

    save_pretrained(nn.Linear(2, 2), tmp_path / "m", {"a": 1})
    moved = []
    real_to = nn.Module.to

    def to(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        moved.append(str(args[0]) if args else str(kwargs.get("device")))
        return self if moved[-1] == "cuda:3" else real_to(self, *args, **kwargs)

    monkeypatch.setattr(nn.Module, "to", to)
    model = load_pretrained(tmp_path / "m", lambda cfg: nn.Linear(2, 2), map_location="cuda:3")
    assert moved == ["cuda:3"] and isinstance(model, nn.Linear)
    load_pretrained(tmp_path / "m", lambda cfg: nn.Linear(2, 2))
    assert moved == ["cuda:3"]  # the CPU default moves nothing


def test_a_model_folder_describes_itself_and_loads_by_its_description(tmp_path):
    from gencore.checkpoint import load_model

    model = ShapesVAE(VAEConfig(latent_dim=4, channels=8))
    model.save_pretrained(tmp_path / "m")
    info = json.loads((tmp_path / "m" / "model_info.json").read_text())
    assert info["class"] == "gencore.demo:ShapesVAE" and info["package"] == "gencore"
    assert info["parameters"] == sum(p.numel() for p in model.parameters()) and info["dtype"] == "float32"
    card = (tmp_path / "m" / "README.md").read_text()
    assert "from gencore.demo import ShapesVAE" in card and "| `latent_dim` | `4` |" in card
    back = load_model(tmp_path / "m")
    assert isinstance(back, ShapesVAE) and back.config == model.config
    model.save_pretrained(tmp_path / "again")  # no date, no host: the same model gives the same files
    for name in ("model_info.json", "README.md", "config.json", "model.safetensors"):
        assert (tmp_path / "m" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


def _folder(path, info):
    from gencore.checkpoint import MODEL_PRODUCER, atomic_dir

    model = ShapesVAE(VAEConfig(latent_dim=4, channels=8))
    with atomic_dir(path, producer=MODEL_PRODUCER) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps({"latent_dim": 4, "channels": 8}))
        if info is not None:
            (tmp / "model_info.json").write_text(json.dumps(info))


@pytest.mark.parametrize(
    ("info", "message"),
    [
        (None, "has no model_info.json"),
        ({"class": "os:system"}, "not a class of gencore or of a registered package"),
        ({"class": "gencore.config:Renamed"}, "not a model class"),
        ({"class": "gencore.demo:NoSuchClass"}, "cannot import"),
        ({"klass": "x"}, "not a model description"),
    ],
)
def test_load_model_refuses_what_it_cannot_trust(tmp_path, info, message):
    from gencore.checkpoint import load_model

    _folder(tmp_path / "m", info)
    with pytest.raises(CheckpointError, match=message):
        load_model(tmp_path / "m")
    if info is None:  # a folder of an earlier version still loads through its class
        assert isinstance(ShapesVAE.from_pretrained(tmp_path / "m"), ShapesVAE)


def test_from_pretrained_refuses_a_folder_of_another_class_or_a_newer_format_before_building(tmp_path):
    from gencore.checkpoint import check_model_info

    class Other(ShapesVAE):
        built = 0

        def __init__(self, config):  # noqa: ANN001
            Other.built += 1
            super().__init__(config)

    ShapesVAE(VAEConfig(latent_dim=4, channels=8)).save_pretrained(tmp_path / "m")
    with pytest.raises(CheckpointError, match=r"holds gencore [\d.]*'s ShapesVAE, not .*Other"):
        Other.from_pretrained(tmp_path / "m")
    assert Other.built == 0  # refused by name, nothing was built
    info_path = tmp_path / "m" / "model_info.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "format": 99}))
    with pytest.raises(CheckpointError, match="format 99 .* upgrade"):
        check_model_info(tmp_path / "m", ShapesVAE)
    info_path.unlink()  # a folder of an earlier version, before folders described themselves: loads as before
    (tmp_path / "m" / "manifest.json").unlink()
    from gencore.checkpoint import _write_manifest

    _write_manifest(tmp_path / "m", "gencore model")
    assert isinstance(ShapesVAE.from_pretrained(tmp_path / "m"), ShapesVAE)


def test_a_run_directory_given_as_a_model_folder_names_the_model_folders_it_holds(tmp_path):
    ShapesVAE(VAEConfig(latent_dim=4, channels=8)).save_pretrained(tmp_path / "run" / "model")
    holds = r"run is not a model folder .* holds .*run/model \(gencore's ShapesVAE\)"
    with pytest.raises(CheckpointError, match=holds):
        ShapesVAE.from_pretrained(tmp_path / "run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="incomplete: no manifest.json"):
        ShapesVAE.from_pretrained(tmp_path / "empty")
