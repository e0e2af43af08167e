"""``dcgan-tutorial evaluate --features inception``: standard FID from a weight file on disk, never downloaded.

The weights here are a seeded random Inception v3 (no ImageNet file can be downloaded on these machines) with
BatchNorm statistics set from two noise images, so that the features have the scale of a trained network.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from dcgan_tutorial.cli import main
from dcgan_tutorial.package import SPEC
from gencore.testing import random_inception_weights


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    """A seeded random Inception v3 state dict (gencore.testing.random_inception_weights)."""
    return random_inception_weights(tmp_path_factory.mktemp("inception") / "inception_random.pth", aux_logits=False)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("dcgan") / "run"
    overrides = [arg for item in SPEC.preset("tiny") for arg in ("--set", item)]
    result = CliRunner().invoke(main, ["train", "--output-dir", str(run), *overrides, "--max-steps", "2"])
    assert result.exit_code == 0, result.output
    return run


def test_evaluate_with_inception_features(tiny_run, inception_file, tmp_path):
    out = tmp_path / "eval"
    args = [
        "evaluate",
        str(tiny_run),
        "-n",
        "16",
        "--features",
        "inception",
        "--inception-weights",
        str(inception_file),
    ]
    result = CliRunner().invoke(main, [*args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads((out / "evaluation_inception.json").read_text())
    assert figures["fid"] > 0 and figures["fid_floor"] > 0
    assert math.isfinite(figures["kid"]) and math.isfinite(figures["kid_floor"])
    assert figures["fid_over_floor"] == pytest.approx(figures["fid"] / figures["fid_floor"])
    assert figures["features"] == f"inception_v3 ({inception_file})" and figures["generated"] == 16
    assert not (out / "evaluation.json").exists()  # the feature network's figures are another file
    assert "fid" in result.output and "evaluation_inception.json" in result.output


def test_evaluate_without_inception_weights_is_one_line(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    result = CliRunner().invoke(main, ["evaluate", str(tiny_run), "--features", "inception"])
    assert result.exit_code == 2
    line = result.output.strip()
    assert len(line.splitlines()) == 1 and line.startswith("error: no Inception v3 weights")
    assert "--inception-weights" in line and str(tmp_path / "checkpoints") in line and "nothing is downloaded" in line

    result = CliRunner().invoke(main, ["evaluate", str(tiny_run), "--inception-weights", str(tmp_path / "x.pth")])
    assert result.exit_code == 2
    assert result.output.strip() == "error: --inception-weights is only read with --features inception"
