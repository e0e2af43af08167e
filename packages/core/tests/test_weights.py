"""gencore.weights: foreign weight files loaded strictly, with one line naming the file and the mismatch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gencore.errors import CheckpointError
from gencore.weights import load_weights, weights_mismatch


def _net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1))


def test_loads_a_matching_state_with_a_prefix():
    source = _net()
    state = {f"features.{k}": v.clone() for k, v in source.state_dict().items()}
    state["classifier.weight"] = torch.zeros(3)  # outside the prefix: ignored
    target = load_weights(_net(), state, "vgg.pth", "the features", prefix="features.")
    assert all(torch.equal(a, b) for a, b in zip(target.state_dict().values(), source.state_dict().values()))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("features.0.bias"), r"1 missing key\(s\): features.0.bias"),
        (lambda s: s.update({"features.9.weight": torch.zeros(1)}), r"1 unexpected key\(s\): features.9.weight"),
        (
            lambda s: s.update({"features.2.weight": torch.zeros(2, 4, 3, 3)}),
            r"1 shape mismatch\(es\): features.2.weight is \(2, 4, 3, 3\) in the file, \(2, 4, 1, 1\) expected",
        ),
        (lambda s: s.update({"features.2.bias": [0.0, 0.0]}), r"not tensors: features.2.bias"),
    ],
    ids=["missing", "unexpected", "shape", "not-a-tensor"],
)
def test_mismatches_are_one_line_naming_the_file(change, message):
    state = {f"features.{k}": v for k, v in _net().state_dict().items()}
    change(state)
    with pytest.raises(CheckpointError, match=f"^weights/vgg.pth does not hold the features: {message}") as err:
        load_weights(_net(), state, "weights/vgg.pth", "the features", prefix="features.")
    assert "\n" not in str(err.value)


def test_not_a_state_dict_and_nothing_under_the_prefix():
    with pytest.raises(CheckpointError, match="holds a list, not a state dict"):
        load_weights(_net(), [1, 2], "x.pt", "VGG weights")
    with pytest.raises(CheckpointError, match=r"no key starts with 'features.' \(it has a, b\)"):
        load_weights(_net(), {"a": torch.zeros(1), "b": torch.zeros(1)}, "x.pt", "VGG weights", prefix="features.")
    with pytest.raises(CheckpointError, match="it holds no tensors"):
        load_weights(_net(), {}, "x.pt", "VGG weights")


def test_long_key_lists_are_shortened():
    expected = {f"k{i}": torch.zeros(1) for i in range(10)}
    assert weights_mismatch(expected, {}) == "10 missing key(s): k0, k1, k2 (+7 more)"
    assert weights_mismatch(expected, dict(expected)) is None
