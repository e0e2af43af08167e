"""``experiment --batch-size``: how many images go through the generator and the KID feature network at a time."""

from __future__ import annotations

import csv

import numpy as np
import torch
from click.testing import CliRunner
from PIL import Image

from vqgan_negatives import negatives
from vqgan_negatives.cli import main
from vqgan_negatives.perceptual import RandomFeatureLoss


def test_experiment_generates_and_scores_in_batches_of_batch_size(trained_pipeline, tmp_path, monkeypatch):
    generated: list[tuple[int, int]] = []  # (images asked for, batch size) per generate call
    featured: list[int] = []  # images per feature-network call
    real_generate, real_features = negatives.generate, negatives.image_features

    def spy_generate(vq, gpt, cond, temperature, top_k, seed, batch_size=64):  # noqa: ANN001, ANN202
        generated.append((len(cond), batch_size))
        return real_generate(vq, gpt, cond, temperature, top_k, seed, batch_size)

    def spy_features(images, net=None):  # noqa: ANN001, ANN202
        featured.append(len(images))
        return real_features(images, net)

    monkeypatch.setattr(negatives, "generate", spy_generate)
    monkeypatch.setattr(negatives, "image_features", spy_features)
    real = tmp_path / "real"  # a few reference images: rendering the default 256 molecules would be slow
    real.mkdir()
    for i in range(7):
        Image.fromarray(np.full((16, 16), 40 * i, np.uint8)).save(real / f"r{i}.png")
    result = CliRunner().invoke(main, ["experiment", "--model", str(trained_pipeline[1]), "--condition", "gaussian",
                                       "-n", "5", "--top-k", "8", "--batch-size", "2", "--real", str(real),
                                       "-o", str(tmp_path / "exp")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert generated == [(5, 2)]
    assert featured == [2, 2, 2, 1, 2, 2, 1]  # the 7 reference images, then the 5 generated ones
    with open(tmp_path / "exp" / "scores.csv") as fh:
        assert [row["n"] for row in csv.DictReader(fh)] == ["5"]


def test_the_default_batch_size_is_the_one_the_experiment_always_used():
    """generate's own default (64): the figures of runs made before the option are reproduced."""
    defaults = {param.name: param.default for param in main.commands["experiment"].params}
    assert defaults["batch_size"] == 64 == negatives.run_experiment.__defaults__[-1]


def test_features_in_batches_equal_the_features_of_the_whole_set():
    images = torch.rand(7, 1, 16, 16) * 2 - 1
    net = RandomFeatureLoss()
    whole = negatives.image_features(images, net)
    assert torch.allclose(negatives._features_in_batches(images, net, 3), whole, atol=1e-6)


def test_a_batch_size_below_one_is_refused():
    result = CliRunner().invoke(main, ["experiment", "--model", "x", "--batch-size", "0"])
    assert result.exit_code == 2 and "--batch-size" in result.output
