"""The rule for an option that names one output file (gencore.fileio.check_output_target) and the image writer
that applies it (gencore.viz.save_image_grid): nothing a command was not asked to replace is lost."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from gencore.checkpoint import save_pretrained
from gencore.errors import OutputError
from gencore.fileio import check_output_target
from gencore.viz import check_image_outputs, save_image_grid

IMAGES = torch.rand(4, 1, 8, 8)


def test_what_is_refused_and_nothing_is_touched(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    model = save_pretrained(torch.nn.Linear(2, 2), tmp_path / "model", {"kind": "linear"})
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"train": {"seed": 0}}))
    (run / "metrics.csv").write_text("step\n")
    (tmp_path / "data.npy").write_bytes(b"\x93NUMPY" + b"\0" * 10)
    cases = [
        ("", "json", "an output path is empty"),
        (tmp_path, "json", "is a folder"),
        (notes / "x.json", "json", "is a file, not a folder"),
        (notes, "json", "exists and is not a JSON file"),
        (model / "config.json", "json", "listed in its manifest.json"),
        (model / "manifest.json", "json", "listed in its manifest.json"),
        (run / "config.json", "json", "a training run's own file"),
        (run / "metrics.csv", "json", "a training run's own file"),
        (tmp_path / "data.npy", "image", "exists and is not an image"),
        (notes, "npy", "exists and is not a .npy array"),
    ]
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for path, kind, message in cases:
        with pytest.raises(OutputError, match=message):
            check_output_target(path, kind)
    with pytest.raises(OutputError, match="is an input of this command"):
        check_output_target(tmp_path / "data.npy", "npy", inputs=(tmp_path / "data.npy",))
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_an_earlier_output_of_the_same_kind_is_replaced(tmp_path):
    (tmp_path / "results.json").write_text('{"a": 1}')
    np.save(tmp_path / "spectra.npy", np.zeros(3))
    assert check_output_target(tmp_path / "results.json", "json") == tmp_path / "results.json"
    check_output_target(tmp_path / "spectra.npy", "npy")
    check_output_target(tmp_path / "new" / "file.json", "json")  # nothing there yet
    index = tmp_path / "index.txt"
    index.write_text("# my index\n")
    with pytest.raises(OutputError, match="is not an index"):  # the command's own test of what it wrote
        check_output_target(index, "an index", same=lambda p: p.read_text().startswith("# ours"))
    index.write_text("# ours\n")
    check_output_target(index, "an index", same=lambda p: p.read_text().startswith("# ours"))


def test_save_image_grid_writes_the_suffix_format_and_refuses_what_is_not_an_image(tmp_path):
    jpg = save_image_grid(IMAGES, tmp_path / "grid.jpg")
    assert Image.open(jpg).format == "JPEG"
    png = save_image_grid(IMAGES, tmp_path / "grid.png")
    save_image_grid(IMAGES, png)  # an earlier grid: replaced
    assert Image.open(png).format == "PNG"
    (tmp_path / "fake.png").write_text("not a picture")
    for path, message in [(tmp_path / "notes.txt", "not an image file name"),
                          (tmp_path / "weights", "not an image file name"),
                          (tmp_path / "fake.png", "exists and is not an image"),
                          ("", "an output path is empty")]:  # fmt: skip
        with pytest.raises(OutputError, match=message):
            save_image_grid(IMAGES, path)
    assert (tmp_path / "fake.png").read_text() == "not a picture"
    with pytest.raises(OutputError, match="is an input of this command"):
        save_image_grid(IMAGES, png, inputs=(png,))
    with pytest.raises(OutputError, match=r"fake.png/x.png.*|fake.png is a file"):
        check_image_outputs([tmp_path / "ok.png", tmp_path / "fake.png" / "x.png"])
    assert not (tmp_path / "ok.png").exists()


def test_an_unwritable_place_is_named_not_the_temporary_file():
    # no file can be made in /proc, even by root
    with pytest.raises(OutputError, match="^cannot write /proc/grid.png: "):
        save_image_grid(IMAGES, "/proc/grid.png")


def test_a_full_disk_under_safetensors_is_the_oserror_it_is(tmp_path, monkeypatch):
    """safetensors reports a full disk as its own SafetensorError; gencore raises it as OSError (ENOSPC), so a cache
    write only gets a note and a checkpoint write is the one-line disk-full error, not a traceback."""
    import errno

    from safetensors import SafetensorError

    from gencore import checkpoint

    def full(tensors, path):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(checkpoint, "_safetensors_save", full)
    with pytest.raises(OSError) as raised:
        checkpoint.save_tree({"x": torch.zeros(2)}, tmp_path, "state")
    assert raised.value.errno == errno.ENOSPC and raised.value.strerror == os.strerror(errno.ENOSPC)

    def other(tensors, path):
        raise SafetensorError("tensor is not contiguous")

    monkeypatch.setattr(checkpoint, "_safetensors_save", other)
    with pytest.raises(SafetensorError):
        checkpoint.save_tree({"x": torch.zeros(2)}, tmp_path, "state")


def test_a_damaged_cache_entry_is_replaced_not_refused_for_ever(tmp_path):
    """atomic_cache_dir: an entry of the user's cache whose manifest is corrupt (or lists other files) is replaced
    by the next write, as an intact earlier entry is; plain atomic_dir refuses such a folder, so every later run
    rendered again and could never cache. A folder holding any other file, or a file where the entry should be,
    is still refused and left as it was."""
    from gencore.checkpoint import atomic_cache_dir, atomic_dir, output_owner, save_tree

    entry = tmp_path / "cache" / "renders" / "0123abcd"
    for damage in ("", "{not json", '{"files": {}}'):
        entry.mkdir(parents=True, exist_ok=True)
        (entry / "manifest.json").write_text(damage)
        (entry / "render.safetensors").write_text("half")
        with pytest.raises(OutputError):
            with atomic_dir(entry, overwrite=True, producer="test cache"):
                pass
        with atomic_cache_dir(entry, "test cache", "render") as tmp:
            save_tree({"x": torch.zeros(2)}, tmp, "render")
        assert output_owner(entry) == "test cache" and sorted(p.name for p in entry.parent.iterdir()) == [entry.name]
    with atomic_cache_dir(entry, "test cache", "render") as tmp:  # an intact earlier entry: replaced too
        save_tree({"x": torch.ones(2)}, tmp, "render")
    assert output_owner(entry) == "test cache"
    (entry / "manifest.json").write_text("{}")  # damaged, and holding a file no cache entry has: left alone
    (entry / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="already holds files this command did not write"):
        with atomic_cache_dir(entry, "test cache", "render"):
            pass
    assert (entry / "notes.txt").read_text() == "mine" and (entry / "render.safetensors").is_file()
    import shutil

    shutil.rmtree(entry)
    entry.write_text("a file")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        with atomic_cache_dir(entry, "test cache", "render"):
            pass
    assert entry.read_text() == "a file"


def test_save_dir_files_stay_inside_and_an_empty_folder_is_refused(tmp_path):
    from gencore.errors import DataError
    from gencore.viz import save_dir_files

    paths = save_dir_files(tmp_path / "each", ["gClef/00000.png", "stem/00001.png"])
    assert paths == [tmp_path / "each" / "gClef" / "00000.png", tmp_path / "each" / "stem" / "00001.png"]
    with pytest.raises(OutputError, match="--save-dir is empty"):
        save_dir_files("", ["00000.png"])
    with pytest.raises(DataError):  # a name read from a model may not lead out of the folder
        save_dir_files(tmp_path / "each", ["../../outside.png"])
    (tmp_path / "each").mkdir()
    (tmp_path / "each" / "00000.png").write_text("mine")
    with pytest.raises(OutputError, match="exists and is not an image"):
        save_dir_files(tmp_path / "each", ["00000.png"])
