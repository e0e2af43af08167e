"""``ganwriting-music evaluate --features inception``: standard FID on the glyphs (repeated to three channels).

The weights are a seeded random Inception v3 (no ImageNet file can be downloaded on these machines) with
BatchNorm statistics set from two noise images, so that the features have the scale of a trained network.
"""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from ganwriting_music.cli import main
from gencore.testing import random_inception_weights


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    """A seeded random Inception v3 state dict (gencore.testing.random_inception_weights)."""
    return random_inception_weights(tmp_path_factory.mktemp("inception") / "inception_random.pth", aux_logits=False)


def test_evaluate_with_inception_features(tmp_path, tiny_cli, inception_file, monkeypatch):
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "0", "--output-dir", str(run), *tiny_cli])
    assert result.exit_code == 0, result.output

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    result = CliRunner().invoke(main, ["evaluate", str(run), "--features", "inception"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "no Inception v3 weights" in result.output and str(tmp_path / "hub" / "checkpoints") in result.output
    result = CliRunner().invoke(main, ["evaluate", str(run), "--inception-weights", str(inception_file)])
    assert result.exit_code == 2 and "only read with --features inception" in result.output

    args = ["evaluate", str(run), "--classifier-steps", "5", "--features", "inception"]
    result = CliRunner().invoke(main, [*args, "--inception-weights", str(inception_file)])
    assert result.exit_code == 0, result.output
    figures = json.loads((run / "eval" / "evaluation_inception.json").read_text())
    assert figures["fid"] > 0 and figures["fid_real_train_vs_test"] > 0 and figures["fid_unseen_writer"] > 0
    assert not any(k.startswith("frechet_distance") for k in figures)
    assert figures["features"] == f"inception_v3 ({inception_file})" and 0 <= figures["classifier_acc_fake"] <= 1
    assert not (run / "eval" / "evaluation.json").exists()
