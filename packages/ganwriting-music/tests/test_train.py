from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import torch
from click.testing import CliRunner
from PIL import Image

from ganwriting_music.cli import main
from ganwriting_music.config import GanwritingConfig
from ganwriting_music.mashcima import check_layout
from ganwriting_music.model import Generator, Networks
from ganwriting_music.train import build_trainer, read_epochs, resolve_start, run_training
from gencore.checkpoint import load_tree, verify_dir
from gencore.testing import assert_same_tensors


def _state(checkpoint) -> dict[str, torch.Tensor]:
    tree = load_tree(checkpoint)
    out = {f"{n}.{k}": v for n, sd in tree["models"].items() for k, v in sd.items()}
    for n, sd in tree["optimizers"].items():
        for i, st in sd["state"].items():
            out.update({f"opt.{n}.{i}.{k}": torch.as_tensor(v) for k, v in st.items()})
    return out


def test_generator_shapes_and_style_dependence(tiny_config):
    config = tiny_config("unused")
    gen = Generator(config.model, 32, 5)
    refs, labels = torch.rand(3, 2, 1, 32, 32) * 2 - 1, torch.tensor([0, 3, 4])
    z = gen.noise(3, "cpu")
    out = gen(refs, labels, z)
    assert out.shape == (3, 1, 32, 32) and out.min() >= -1 and out.max() <= 1
    assert not torch.allclose(gen(refs.flip(0), labels, z), out)  # the style changes the image
    assert gen(refs[:, :1], labels, z).shape == out.shape  # any number of references
    images, classes = torch.rand(6, 1, 32, 32) * 2 - 1, torch.tensor([0, 0, 1, 1, 1, 3])
    gen.set_templates(images, classes)
    assert torch.allclose(gen.templates[1], images[2:5].mean(0)) and (gen.templates[2] == 1).all()
    assert "templates" in gen.state_dict()  # saved with the weights, so sampling needs no training data


def test_start_epoch_resume_equals_an_unbroken_run(tmp_path, tiny_config):
    """`train 0` for 3 epochs == `train 0` for 1 epoch, then `train 1` up to epoch 3 (bitwise, on CPU)."""
    full = tiny_config(tmp_path / "full", "train.max_epochs=3")
    run_training(full, 0)
    part = tiny_config(tmp_path / "part", "train.max_epochs=1")
    run_training(part, 0)
    assert read_epochs(tmp_path / "part" / "checkpoints") == {"1": "step_000003"}
    run_training(tiny_config(tmp_path / "part", "train.max_epochs=3"), 1)
    names = read_epochs(tmp_path / "full" / "checkpoints")
    assert names == read_epochs(tmp_path / "part" / "checkpoints") and set(names) == {"1", "2", "3"}
    last = names["3"]
    part_ckpt, full_ckpt = tmp_path / "part" / "checkpoints" / last, tmp_path / "full" / "checkpoints" / last
    assert_same_tensors(_state(part_ckpt), _state(full_ckpt))
    tree = load_tree(tmp_path / "part" / "checkpoints" / last)
    assert tree["trainer"]["step"] == 9 and tree["trainer"]["epoch"] == 2  # counters restored, not restarted
    assert tree["optimizers"]["D"]["param_groups"][0]["lr"] == 1e-3
    # `auto` picks the newest, and the model directory holds all three networks
    trainer = build_trainer(tiny_config(tmp_path / "part", "train.max_epochs=3"))
    assert resolve_start(trainer, "auto").endswith(last)
    nets = Networks.from_pretrained(tmp_path / "part" / "model")
    assert nets.config.writers == ["Bravura", "Leipzig"] and nets.config.classes[1] == "gClef"


def test_losses_fall_on_a_fixed_tiny_batch(tmp_path, tiny_config):
    config = tiny_config(tmp_path, "data.samples_per_class=2", "data.test_fraction=0", "train.batch_size=16",
                         "train.shuffle=false", "train.max_epochs=60", "train.checkpoint_every_epochs=60",
                         "train.eval_every_epochs=0", "train.sample_every_epochs=0", "train.log_every=5")  # fmt: skip
    result = run_training(config, 0)
    assert result.step == 60
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    rows = [r for r in rows if r.get("l1")]
    first, last = rows[0], rows[-1]
    assert float(last["l1"]) < 0.7 * float(first["l1"]), (first["l1"], last["l1"])
    assert float(last["rec_real"]) < float(first["rec_real"]) - 0.2
    assert float(last["rec_fake"]) < float(first["rec_fake"])


def test_learning_rates_are_floats_and_defaults_are_the_originals():
    config = GanwritingConfig()
    assert (config.optim.lr_d, config.optim.lr_g, config.optim.lr_r) == (1e-5, 1e-4, 1e-5)
    assert all(isinstance(v, float) for v in (config.optim.lr_d, config.optim.lr_g, config.optim.lr_r))
    assert (config.loss.w_rec, config.loss.label_smoothing, config.loss.w_gp) == (2.5, 0.1, 0.3)
    assert (config.data.image_size, config.train.batch_size) == (128, 92)


def test_preset_auto_is_cpu_on_the_cpu_and_original_on_a_gpu_and_a_continued_run_keeps_its_own(
    tmp_path, tiny_cli, monkeypatch
):
    """The default, --preset auto, trains the cpu preset where training runs on the CPU (the original's 128×128,
    batch 92 takes most of a minute an update there) and the original's configuration on a GPU; the run's first
    line says which. A continued run keeps the settings it was started with, whatever auto picks now."""
    from gencore import cli

    def shown(*args):
        result = CliRunner().invoke(main, ["train", *args, "--print-config", "json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    new = ["0", "--output-dir", str(tmp_path / "new")]
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    monkeypatch.setattr(cli, "_auto_device", lambda: torch.device("cpu"))
    assert (shown(*new)["data"]["image_size"], shown(*new)["train"]["batch_size"]) == (64, 32)
    assert shown(*new, "--preset", "original")["data"]["image_size"] == 128
    monkeypatch.setattr(cli, "_auto_device", lambda: torch.device("cuda"))  # as on a GPU machine
    assert (shown(*new)["data"]["image_size"], shown(*new)["train"]["batch_size"]) == (128, 92)
    assert shown(*new, "--set", "train.cpu=true")["data"]["image_size"] == 64  # told to train on the CPU
    assert shown(*new, "--preset", "cpu")["data"]["image_size"] == 64

    monkeypatch.setattr(cli, "_auto_device", lambda: torch.device("cpu"))
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "0", "--output-dir", str(run), *tiny_cli, "--set", "train.max_steps=2"])
    assert result.exit_code == 0, result.output
    assert "preset cpu (--preset auto, training on the CPU;" in result.output  # tiny sets what the preset sets
    again = shown("auto", "--output-dir", str(run))  # nothing but the run directory: the run's settings
    assert again["data"]["image_size"] == 16 and not again["model"]["style_writer_head"]
    continued = CliRunner().invoke(main, ["train", "auto", "--output-dir", str(run), "--set", "train.max_steps=3"])
    assert continued.exit_code == 0 and "resuming" in continued.output and "preset cpu" not in continued.output, (
        continued.output
    )


def test_cli_train_generate_export_evaluate_study(tmp_path, tiny_cli):
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "0", "--output-dir", str(run), "--lr-gen", "2e-3", *tiny_cli])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["optim"]["lr_g"] == 0.002
    assert (run / "samples").is_dir() and (run / "losses.png").is_file()
    verify_dir(run / "model")

    # a missing epoch, and a fresh start over existing checkpoints, are one-line errors
    for args, message in [(["train", "5"], "no checkpoint saved at epoch 5"),
                          (["train", "0"], "already holds checkpoints"),
                          (["train", "x1"], "start epoch must be")]:  # fmt: skip
        result = CliRunner().invoke(main, [*args, "--output-dir", str(run), *tiny_cli])
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(main, ["train", "2", "--output-dir", str(run), *tiny_cli, "--epochs", "3"])
    assert result.exit_code == 0 and "resuming" in result.output, result.output

    grid = tmp_path / "grid.png"
    result = CliRunner().invoke(main, ["generate", str(run), "--class", "gClef", "--style-from", "font:Petaluma",
                                       "-n", "6", "-o", str(grid), "--save-dir", str(tmp_path / "each")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert Image.open(grid).size[0] > 64 and len(list((tmp_path / "each" / "gClef").glob("*.png"))) == 6
    # the model/ folder copied alone: the same images (the data settings come from its model_info.json), and
    # evaluate writes eval/ beside it, never inside it
    alone = tmp_path / "elsewhere" / "mymodel"
    shutil.copytree(run / "model", alone)
    again = tmp_path / "again.png"
    result = CliRunner().invoke(main, ["generate", str(alone), "--class", "gClef", "--style-from", "font:Petaluma",
                                       "-n", "6", "-o", str(again)])  # fmt: skip
    assert result.exit_code == 0 and again.read_bytes() == grid.read_bytes(), result.output
    # an output that would destroy something is refused before any work, the file as it was
    weights = (run / "model" / "model.safetensors").read_bytes()
    for target, message in [(run / "model" / "model.safetensors", "not an image file name"),
                            (run / "config.json", "not an image file name"),
                            (run / "losses.png" / "x.png", "is a file")]:  # fmt: skip
        result = CliRunner().invoke(main, ["generate", str(run), "-n", "2", "-o", str(target)])
        assert result.exit_code == 2 and message in result.output, result.output
    assert (run / "model" / "model.safetensors").read_bytes() == weights
    style = tmp_path / "style"
    style.mkdir()
    img = np.full((20, 20), 255, np.uint8)
    img[3:17, 9:12] = 0
    Image.fromarray(img).save(style / "s.png")
    result = CliRunner().invoke(main, ["generate", str(run), "--style-from", str(style), "-n", "4", "-o", str(grid)])
    assert result.exit_code == 0, result.output
    for args, message in [(["--class", "trumpet"], "unknown class 'trumpet'"),
                          (["--style-from", str(tmp_path / "nope")], "style folder not found"),
                          (["--style-from", "font:Arial"], "unknown font 'Arial'")]:  # fmt: skip
        result = CliRunner().invoke(main, ["generate", str(run), *args, "-o", str(grid)])
        assert result.exit_code == 2 and message in result.output and len(result.output.splitlines()) == 1
    (tmp_path / "empty_style").mkdir()
    result = CliRunner().invoke(main, ["generate", str(run), "--style-from", str(tmp_path / "empty_style")])
    assert result.exit_code == 2 and "empty style folder" in result.output

    out = tmp_path / "mashcima"  # the tiny model's classes: gClef gives clef_g (the note parts need flags too)
    args = ["export-mashcima", str(run), "-o", str(out), "-n", "2", "--threshold", "0.3"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "clef_g" in result.output and "accidentalSharp (Mashcima takes accidentals" in result.output
    layout = check_layout(out)
    assert sorted(layout) == ["set_0000", "set_0001"] and all(list(v) == ["clef_g"] for v in layout.values())
    report = json.loads((out / "mashcima_export.json").read_text())
    assert report["names"] == {"clef_g": "gClef"} and "accidentalSharp" in report["classes_without_mashcima_name"]
    again = CliRunner().invoke(main, args)  # an earlier export: replaced with --overwrite only
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert CliRunner().invoke(main, [*args, "--overwrite"]).exit_code == 0

    result = CliRunner().invoke(main, ["evaluate", str(run), "--classifier-steps", "5"])
    assert result.exit_code == 0, result.output
    figures = json.loads((run / "eval" / "evaluation.json").read_text())
    assert 0 <= figures["classifier_acc_fake"] <= 1 and figures["frechet_distance"] >= 0
    assert "classifier_acc_fake_unseen_writer" in figures and figures["images"] == 8
    result = CliRunner().invoke(main, ["evaluate", str(alone), "--classifier-steps", "5"])  # the copy: the same
    assert result.exit_code == 0, result.output
    assert json.loads((alone.parent / "eval" / "evaluation.json").read_text()) == figures
    verify_dir(alone)  # nothing was written into it

    result = CliRunner().invoke(main, ["classifier-study", str(run), "--steps", "5"])
    assert result.exit_code == 0, result.output
    assert "| original |" in result.output and "| synthetic |" in result.output and "| combined |" in result.output
    study = json.loads((run / "study" / "classifier_study.json").read_text())
    assert study["test_writers"] == ["Petaluma"] and study["results"]["combined"]["train_images"] == 64
    for holdout, message in [("Bravura", "trained the GAN"), (",", "names no writer")]:  # not an unseen writer
        result = CliRunner().invoke(main, ["classifier-study", str(run), "--steps", "5", "--holdout", holdout])
        assert result.exit_code == 2 and message in result.output, result.output

    (run / "samples" / "my_notes.txt").write_text("mine\n")
    (run / "checkpoints" / "step_000123").mkdir()  # named like a checkpoint, but the user's
    (run / "checkpoints" / "step_000123" / "mine.txt").write_text("mine\n")
    result = CliRunner().invoke(main, ["clean-run", str(run), "--yes"])
    assert result.exit_code == 0 and (run / "model").is_dir(), result.output
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_000123"] and "kept" in result.output
    assert [p.name for p in (run / "samples").iterdir()] == ["my_notes.txt"]  # only what training wrote goes
    (run / "checkpoints" / "step_000123" / "mine.txt").unlink()
    (run / "checkpoints" / "step_000123").rmdir()

    # a folder that is not a run, laid out like one: nothing is removed
    other = tmp_path / "project"
    (other / "checkpoints" / "step_000001").mkdir(parents=True)
    (other / "checkpoints" / "step_000001" / "weights.bin").write_text("mine")
    (other / "config.json").write_text('{"name": "my web app"}')
    result = CliRunner().invoke(main, ["clean-run", str(other), "--yes"])
    assert result.exit_code == 2 and "is not a training run" in result.output
    assert (other / "checkpoints" / "step_000001" / "weights.bin").read_text() == "mine"
    # a fresh training there would replace the model clean-run kept: refused (it used to overwrite it)
    result = CliRunner().invoke(main, ["train", "0", "--output-dir", str(run), *tiny_cli])
    assert result.exit_code == 2 and "already holds a trained model" in result.output, result.output


def test_bad_options_are_one_line_errors(tmp_path, tiny_cli):
    for args, message in [
        (["--set", "optim.lr_g=-1.0"], "optim.lr_g: a learning rate cannot be negative"),
        (["--set", "data.image_size=20"], "multiple of 16"),
        (["--set", "data.fonts=['Arial']"], "unknown font 'Arial'"),
        (["--set", "loss.w_recc=1.0"], "did you mean loss.w_rec"),
        (["--set", "data.classes=['gClef', 'trumpet']"], "unknown class 'trumpet'"),
    ]:
        result = CliRunner().invoke(main, ["train", "0", "--output-dir", str(tmp_path / "r"), *tiny_cli, *args])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(main, ["generate", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "is not a ganwriting-music run" in result.output


def test_adain_starts_as_instance_norm():
    from ganwriting_music.model import AdaIN

    x = torch.randn(2, 16, 8, 8)
    ada = AdaIN(16, style_dim=4)
    assert torch.allclose(ada(x, torch.randn(2, 4)), torch.nn.InstanceNorm2d(16)(x), atol=1e-5)
