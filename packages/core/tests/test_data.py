from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gencore.data import ImageFolderDataset, TensorImageDataset, load_image, split_indices
from gencore.errors import DataError


def _png(path, value=128, size=(8, 6)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


def test_class_folders(tmp_path):
    _png(tmp_path / "cat" / "a.png", 0)
    _png(tmp_path / "dog" / "sub" / "b.png", 255)
    ds = ImageFolderDataset(tmp_path, size=(4, 4))
    assert ds.classes == ["cat", "dog"] and len(ds) == 2
    x, y = ds[1]
    assert x.shape == (3, 4, 4) and y == 1 and x.min().item() == 1.0
    assert ds[0][0].max().item() == -1.0
    with pytest.raises(DataError, match="no folder for class"):
        ImageFolderDataset(tmp_path, classes=["cat", "bird"])


@pytest.mark.parametrize(("content", "reason"), [(b"", "empty file"), (b"not an image", "cannot identify")])
def test_bad_image_named_or_skipped(tmp_path, content, reason):
    _png(tmp_path / "c" / "good.png")
    bad = tmp_path / "c" / "bad.png"
    bad.write_bytes(content)
    ds = ImageFolderDataset(tmp_path)
    with pytest.raises(DataError, match=f"cannot read image .*bad.png: .*{reason}"):
        [ds[i] for i in range(len(ds))]
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        assert len(ImageFolderDataset(tmp_path, bad_files="skip")) == 1


def test_truncated_png_is_named(tmp_path):
    path = _png(tmp_path / "t.png", size=(64, 64))
    path.write_bytes(path.read_bytes()[:80])
    with pytest.raises(DataError, match="t.png"):
        load_image(path)


def test_splits_are_deterministic_disjoint_and_stratified():
    labels = [0] * 50 + [1] * 10
    a = split_indices(60, [0.8, 0.2], seed=3, labels=labels)
    assert a == split_indices(60, [0.8, 0.2], seed=3, labels=labels)
    assert sorted(a[0] + a[1]) == list(range(60))
    assert sum(labels[i] for i in a[1]) == 2 and len(a[1]) == 12
    with pytest.raises(ValueError):
        split_indices(10, [0.5, 0.6])


def test_tensor_dataset_checks_shapes():
    assert len(TensorImageDataset(torch.zeros(3, 1, 4, 4))) == 3
    with pytest.raises(DataError, match=r"\(N, C, H, W\)"):
        TensorImageDataset(torch.zeros(3, 4, 4))
