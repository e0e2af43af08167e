from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from dcgan_tutorial.cli import main
from dcgan_tutorial.collapse import COLLAPSING, HEALTHY, mode_centres, mode_stats, train_ring
from dcgan_tutorial.data import load_source
from dcgan_tutorial.diagnostics import image_diagnostics
from dcgan_tutorial.features import train_feature_net
from dcgan_tutorial.train import build_trainer
from gencore.checkpoint import verify_dir
from gencore.testing import assert_resume_exact

TINY_CLI = [
    "--image-size",
    "16",
    "--set",
    "model.ngf=8",
    "--set",
    "model.ndf=8",
    "--set",
    "data.num_images=96",
    "--set",
    "eval.samples=64",
    "--set",
    "eval.feature_steps=20",
    "--batch-size",
    "16",
    "--set",
    "train.log_every=2",
    "--set",
    "train.progress_bar=false",
    "--set",
    "train.report_to=none",
]


def test_resume_equals_an_unbroken_run(tmp_path, tiny_config):
    def make(run_dir, max_steps):
        return build_trainer(
            tiny_config(run_dir, f"train.max_steps={max_steps}", "optim.ema_decay=0.9", "tips.instance_noise=0.1")
        )

    assert_resume_exact(make, tmp_path, stop_at=3, total=6)


def test_cli_train_sample_evaluate_round_trip(tmp_path):
    run = tmp_path / "run"
    args = [
        "train",
        "--output-dir",
        str(run),
        *TINY_CLI,
        "--set",
        "train.eval_every=4",
        "--set",
        "train.sample_every=4",
        "--set",
        "train.checkpoint_every=4",
    ]
    result = CliRunner().invoke(main, [*args, "--max-steps", "4"])
    assert result.exit_code == 0, result.output
    assert (run / "samples" / "step_000004.png").is_file() and (run / "losses.png").is_file()
    verify_dir(run / "model" / "generator")
    assert "fd" in result.output and "diversity" in result.output
    result = CliRunner().invoke(main, [*args, "--max-steps", "6", "--resume", "auto"])
    assert result.exit_code == 0 and "resumed from" in result.output
    out = tmp_path / "grid.png"
    result = CliRunner().invoke(main, ["sample", str(run), "-n", "9", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert Image.open(out).size[0] > 64
    result = CliRunner().invoke(main, ["evaluate", str(run), "-n", "32"])
    assert result.exit_code == 0, result.output
    figures = json.loads((run / "eval" / "evaluation.json").read_text())
    assert figures["fd"] > 0 and figures["fd_floor"] >= 0 and figures["generated"] == 32
    # the batch size changes how the images are made, not which: the same figures
    other = ["evaluate", str(run), "-n", "32", "--batch-size", "5", "-o", str(tmp_path / "e")]
    result = CliRunner().invoke(main, other)
    assert result.exit_code == 0, result.output
    again = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    assert again["fd"] == figures["fd"] and again["seed"] == 1


def test_fc_model_trains_from_the_cli(tmp_path):
    result = CliRunner().invoke(
        main, ["train", "--model", "fc", "--output-dir", str(tmp_path), *TINY_CLI, "--max-steps", "2"]
    )
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "/no/such/folder"], "error: data source '/no/such/folder' is neither a folder nor one of"),
        (["--image-size", "48"], "error: invalid model config: image_size must be a power of two from 16 to 256"),
        (["--set", "tips.los=hinge"], "error: unknown config key tips.los (did you mean tips.loss?)"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, args, message):
    result = CliRunner().invoke(main, ["train", "--output-dir", str(tmp_path / "r"), *TINY_CLI, *args])
    assert result.exit_code == 2
    assert result.output.strip().startswith(message) and len(result.output.strip().splitlines()) == 1


def test_non_image_files_in_the_data_folder(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.png").write_bytes(b"\x00" * 10)
    result = CliRunner().invoke(
        main, ["train", "--data", str(tmp_path / "data"), "--output-dir", str(tmp_path / "r"), *TINY_CLI]
    )
    assert result.exit_code == 2 and "cannot read image" in result.output and "notes.png" in result.output


def test_sample_and_evaluate_refuse_a_non_run(tmp_path):
    assert CliRunner().invoke(main, ["sample", str(tmp_path)]).exit_code == 2
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path)])
    assert result.exit_code == 2 and "not a run directory" in result.output


def test_mode_stats_counts_modes():
    centres = mode_centres()
    assert mode_stats(centres.repeat(50, 1))["modes"] == 8
    assert mode_stats(centres[:1].repeat(400, 1)) == {"modes": 1, "quality": 1.0}
    assert mode_stats(torch.zeros(100, 2))["quality"] == 0.0


def test_collapse_diagnostic_on_the_ring(tmp_path):
    collapsed = mode_stats(train_ring(COLLAPSING, tmp_path, steps=1000, seed=0)[-1][1])
    healthy = mode_stats(train_ring(HEALTHY, tmp_path, steps=1000, seed=0)[-1][1])
    assert collapsed["modes"] <= 2 and healthy["modes"] >= 7


def test_collapse_diagnostic_on_images():
    data = load_source("textures", 16, 1, 300)
    net, accuracy = train_feature_net(data.images, data.labels, 3, steps=60)
    assert accuracy > 0.6
    real_a, real_b = data.images[:150], data.images[150:]
    healthy = image_diagnostics(net, real_a, real_b, 3)
    collapsed = image_diagnostics(net, real_a[:1].repeat(150, 1, 1, 1), real_b, 3)
    assert healthy["diversity"] > 0.7 and collapsed["diversity"] < 0.05
    assert healthy["coverage"] == 1.0 and collapsed["coverage"] <= 1 / 3
    assert collapsed["fd"] > 3 * healthy["fd"]


def test_stylize_lowers_its_loss_and_names_its_features(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(tmp_path / "style.png")
    yy, xx = np.mgrid[0:48, 0:48]
    Image.fromarray(((xx // 12 + yy // 12) % 2 * 255).astype(np.uint8)).save(tmp_path / "content.png")
    result = CliRunner().invoke(
        main,
        [
            "stylize",
            str(tmp_path / "content.png"),
            str(tmp_path / "style.png"),
            "-o",
            str(tmp_path / "out.png"),
            "--size",
            "48",
            "--steps",
            "40",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "features: random multi-scale" in result.output
    first = float(result.output.split("style ")[-1].split(" -> ")[0])
    last = float(result.output.split("style ")[-1].split(" -> ")[1].split(",")[0])
    assert last < 0.5 * first
    assert Image.open(tmp_path / "out.png").size == (48, 48)
    bad = CliRunner().invoke(main, ["stylize", str(tmp_path / "nope.png"), str(tmp_path / "style.png")])
    assert bad.exit_code == 2 and "image not found" in bad.output


def test_stylize_can_start_from_noise(tmp_path):
    """Gatys et al. (and the lesson) start from white noise: the content term starts high and falls."""
    from dcgan_tutorial.style import stylize

    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "style.png")
    yy, xx = np.mgrid[0:32, 0:32]
    Image.fromarray(((xx // 8 + yy // 8) % 2 * 255).astype(np.uint8)).save(tmp_path / "content.png")
    runs = {init: stylize(tmp_path / "content.png", tmp_path / "style.png", tmp_path / f"{init}.png", size=32,
                          steps=30, init=init, log=lambda s: None) for init in ("content", "noise")}  # fmt: skip
    assert runs["content"]["first"]["content"] == 0.0 and runs["noise"]["first"]["content"] > 0
    assert runs["noise"]["last"]["content"] < runs["noise"]["first"]["content"]
    again = stylize(tmp_path / "content.png", tmp_path / "style.png", tmp_path / "again.png", size=32, steps=30,
                    init="noise", log=lambda s: None)  # fmt: skip
    assert again["last"] == runs["noise"]["last"]  # the noise is seeded
    result = CliRunner().invoke(main, ["stylize", str(tmp_path / "content.png"), str(tmp_path / "style.png"), "-o",
                                       str(tmp_path / "cli.png"), "--size", "32", "--steps", "2", "--init", "noise"])
    assert result.exit_code == 0 and "start: noise" in result.output, result.output


def test_stylize_uses_vgg_weights_from_the_torch_cache(tmp_path, monkeypatch):
    import torchvision

    from dcgan_tutorial.style import feature_extractor

    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    vgg = torchvision.models.vgg16(weights=None)
    torch.save(
        {k: v for k, v in vgg.state_dict().items() if k.startswith("features.")},
        tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth",
    )
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    net = feature_extractor(None)
    assert net.kind == "vgg" and net.name == "vgg16"
    styles, content = net(torch.rand(1, 3, 32, 32))
    assert len(styles) == 5 and content.shape[1] == 512


def test_corrupt_run_config_is_a_one_line_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    for command in (["evaluate", str(tmp_path)], ["sample", str(tmp_path)]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2, result.output
        assert "config.json is unreadable or not JSON" in result.output
        assert len(result.output.strip().splitlines()) == 1
