"""The four auxiliary training loops (dcgan's feature network, hvae's reader, vqgan's and ganwriting's study
classifiers) hand their device to ``gencore.seeding.local_rng``, so that on an accelerator their dropout draws from a
seeded device generator too (issue 24; what local_rng does with it: packages/core/tests/test_seeding.py)."""

from __future__ import annotations

import importlib

import pytest
import torch


def _feature_net(train):  # noqa: ANN001, ANN202
    net, _ = train(torch.rand(8, 1, 16, 16) * 2 - 1, torch.zeros(8, dtype=torch.long), 1, steps=1, seed=3,
                   device="cpu", measure_accuracy=False)  # fmt: skip
    return net


def _reader(train):  # noqa: ANN001, ANN202
    from hvae_captcha.reader import ReaderConfig

    config = ReaderConfig(height=16, width=32, vocabulary="ab", text_length=2, width_features=8)
    images = torch.randint(0, 256, (4, 1, 16, 32), dtype=torch.uint8)
    return train(images, ["ab", "ba", "a", "b"], config, steps=1, batch_size=2, seed=3, device="cpu")


def _molecule_classifier(train):  # noqa: ANN001, ANN202
    return train(torch.rand(4, 1, 16, 16), torch.rand(4, 1, 16, 16), steps=1, batch_size=4, seed=3, device="cpu")


def _symbol_classifier(train):  # noqa: ANN001, ANN202
    return train(torch.rand(4, 1, 16, 16) * 2 - 1, torch.tensor([0, 1, 0, 1]), 2, steps=1, batch_size=4, seed=3,
                 channels=4, device="cpu")  # fmt: skip


LOOPS = [
    ("dcgan_tutorial.features", "train_feature_net", _feature_net),
    ("hvae_captcha.reader", "train_reader", _reader),
    ("vqgan_negatives.classifier", "train_classifier", _molecule_classifier),
    ("ganwriting_music.evaluate", "train_classifier", _symbol_classifier),
]


@pytest.mark.parametrize(("module_name", "function", "call"), LOOPS, ids=[m for m, _, _ in LOOPS])
def test_the_loop_seeds_the_device_it_trains_on(monkeypatch, module_name, function, call):
    module = importlib.import_module(module_name)
    real = module.local_rng
    seen: list[tuple[int, object]] = []

    def spy(seed, device=None):  # noqa: ANN001, ANN202
        seen.append((seed, device))
        return real(seed, device)

    monkeypatch.setattr(module, "local_rng", spy)
    model = call(getattr(module, function))
    assert seen == [(3, "cpu")]
    assert next(model.parameters()).device.type == "cpu"
