from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gencore.checkpoint import verify_dir
from gencore.errors import ConfigError
from gencore.testing import assert_resume_exact
from hvae_captcha.cli import main
from hvae_captcha.config import DataConfig, ModelConfig
from hvae_captcha.data import read_folder, render_captchas
from hvae_captcha.model import HVAE
from hvae_captcha.train import build_trainer


def test_resume_equals_an_unbroken_run(tmp_path, tiny_config):
    def make(run_dir, max_steps):
        return build_trainer(tiny_config(run_dir, f"train.max_steps={max_steps}", "optim.ema_decay=0.9",
                                         "train.sample_every=2", "train.eval_every=2"))  # fmt: skip

    assert_resume_exact(make, tmp_path, stop_at=3, total=5)


def test_three_term_objective_and_conditioning_train(tmp_path, tiny_config):
    config = tiny_config(tmp_path, "loss.objective='three-term'", "loss.prior_weight_start=0.2",
                         "loss.prior_weight_epochs=2", "model.conditioned=true", "train.max_steps=3")  # fmt: skip
    result = build_trainer(config).fit()
    assert result.step == 3 and result.metrics["nll_bits_per_dim"] > 0


def test_rendering_is_seeded_and_configurable():
    cfg = DataConfig(text_length=4, noise_dots=0, noise_curve=False)
    a, texts_a, layout_a = render_captchas(cfg, "ab26", 3, seed=5)
    b, texts_b, layout_b = render_captchas(cfg, "ab26", 3, seed=5)
    c, _, _ = render_captchas(cfg, "ab26", 3, seed=6)
    assert texts_a == texts_b and all(set(t) <= set("ab26") and len(t) == 4 for t in texts_a)
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(c[0]))
    assert a[0].size == (200, 50)


def test_data_make_then_train_on_the_folder(tmp_path, tiny_cli):
    folder = tmp_path / "captchas"
    result = CliRunner().invoke(main, ["data", "make", "-o", str(folder), "-n", "40", "--width", "100",
                                       "--height", "30"])  # fmt: skip
    assert result.exit_code == 0, result.output
    files = sorted(folder.glob("*.png"))
    assert len(files) == 40 and all(len(f.stem.split("_")[0]) == 5 for f in files)
    Image.new("L", (77, 19), 128).save(folder / "zz26q.jpg")  # another size and mode: resized, converted
    images, texts = read_folder(folder, ModelConfig(channels=3, height=16, width=32, inner_config=[]))
    assert images.shape == (41, 3, 16, 32) and images.dtype == np.uint8 and "zz26q" in texts
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--data", str(folder), "--output-dir", str(run), *tiny_cli])
    assert result.exit_code == 0, result.output
    verify_dir(run / "model")
    # text-aware at fixed slots (a folder has no layouts): the text prior holds texts only
    assert json.loads((run / "text_prior.json").read_text())["width"] == 0
    result = CliRunner().invoke(main, ["evaluate", str(run), "-k", "2", "-n", "4", "--batch-size", "2"])
    assert result.exit_code == 0 and "nll_unconditional_bits_per_dim" in result.output, result.output
    figures = json.loads((run / "eval" / "evaluation.json").read_text())  # no layout to snap: the same bound
    assert figures["nll_unconditional_bits_per_dim"] == figures["nll_bits_per_dim"] + figures["text_prior_bits_per_dim"]
    result = CliRunner().invoke(main, ["sample", str(run), "-n", "2", "-o", str(tmp_path / "s.png")])
    assert result.exit_code == 0 and "texts from the run's text prior" in result.output, result.output


def test_cli_train_sample_reconstruct_evaluate(tmp_path, tiny_cli):
    run = tmp_path / "run"
    args = ["train", "--output-dir", str(run), "--conditioned", *tiny_cli]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "nll_bits_per_dim" in result.output and (run / "samples").is_dir()
    model = json.loads((run / "model" / "config.json").read_text())  # what --conditioned turns on
    assert model["text_glyphs"] and model["text_map_every_stage"] and model["ar_prior_levels"] == [1]
    result = CliRunner().invoke(main, [*args, "--max-steps", "6", "--resume", "auto"])
    assert result.exit_code == 0 and "resumed from" in result.output
    grid = tmp_path / "grid.png"
    result = CliRunner().invoke(main, ["sample", str(run), "--text", "2b6qa", "-n", "4", "-o", str(grid)])
    assert result.exit_code == 0, result.output
    assert Image.open(grid).size[0] > 64
    result = CliRunner().invoke(main, ["sample", str(run), "--text", "AB!", "-o", str(grid)])
    assert result.exit_code == 2 and "not in the vocabulary" in result.output
    result = CliRunner().invoke(main, ["sample", str(run), "-n", "3", "-o", str(grid)])  # texts from the prior
    assert result.exit_code == 0 and "texts from the run's text prior: " in result.output, result.output
    drawn = result.output.split("prior: ")[1].strip(" ()\n").split()
    assert len(drawn) == 3 and all(len(t) == 5 and set(t) <= set(ModelConfig().vocabulary) for t in drawn)
    assert (run / "model" / "text_prior.json").read_text() == (run / "text_prior.json").read_text()
    HVAE.from_pretrained(run / "model").save_pretrained(run / "model")  # the earlier layout: the prior in RUN only
    prior = json.loads((run / "text_prior.json").read_text())
    (run / "text_prior.json").write_text(json.dumps({**prior, "vocabulary": "abc", "char_counts": [1, 1, 1]}))
    result = CliRunner().invoke(main, ["sample", str(run), "-n", "3", "-o", str(grid)])
    assert result.exit_code == 2 and "does not belong to this model" in result.output, result.output
    (run / "text_prior.json").unlink()  # a run saved before the file existed: counted again, same texts
    again = CliRunner().invoke(main, ["sample", str(run), "-n", "3", "-o", str(grid)])
    assert again.exit_code == 0 and "is missing: counting" in again.output and " ".join(drawn) in again.output
    shutil.copytree(run / "model", tmp_path / "bare")
    result = CliRunner().invoke(main, ["sample", str(tmp_path / "bare"), "-n", "3", "-o", str(grid)])
    assert result.exit_code == 2 and "bare model directory" in result.output
    result = CliRunner().invoke(main, ["reconstruct", str(run), "-n", "4", "-o", str(tmp_path / "rec.png")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["evaluate", str(run), "-k", "3", "-n", "8"])
    assert result.exit_code == 0, result.output
    figures = json.loads((run / "eval" / "evaluation.json").read_text())
    assert figures["nll_bits_per_dim"] > 0 and figures["iw_samples"] == 3 and figures["images"] == 8
    assert figures["nll_bits_per_dim"] <= figures["elbo_bits_per_dim"] + 0.05
    assert {"active_units_level1", "active_units_level2", "psnr_db", "kl_level1_nats"} <= set(figures)
    # the bound on the image alone adds the text prior's cost (about log2(28) per character over 512 pixels)
    cost = figures["text_prior_bits_per_dim"]
    assert 5 * math.log2(28) / 512 < cost < 5 * math.log2(28) / 512 + 0.05
    assert abs(figures["nll_unconditional_bits_per_dim"] - cost - figures["nll_bits_per_dim"]) < 0.05
    result = CliRunner().invoke(main, ["evaluate", str(run), "-k", "1", "-n", "8", "--text-accuracy",
                                       "--reader-steps", "2", "--temperature", "0.5"])  # fmt: skip
    assert result.exit_code == 0, result.output
    figures = json.loads((run / "eval" / "evaluation.json").read_text())
    keys = ("reader_char_accuracy_real", "reader_char_accuracy_reconstructions", "sample_char_accuracy",
            "sample_text_accuracy")  # fmt: skip
    assert all(0 <= figures[k] <= 1 for k in keys) and figures["sample_temperature"] == 0.5
    assert (run / "eval" / "reader_2" / "model.safetensors").is_file()  # cached for the next evaluation
    assert math.isfinite(figures["text_information_nats"])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (None, "error: data folder not found"),
        (lambda d: (d / "notes.txt").write_text("hi"), "notes.txt is not an image"),
        (lambda d: (d / "2b827.png").write_bytes(b"\x89PNG\r\n\x1a\n broken"), "cannot read image"),
        (lambda d: (d / "empty.png").write_bytes(b""), "empty.png: empty file"),
        (lambda d: None, "error: no images in"),
    ],
)
def test_bad_data_folder_is_one_line_exit_2(tmp_path, make, message, tiny_cli):
    folder = tmp_path / "data"
    if make is not None:
        folder.mkdir()
        make(folder)
    result = CliRunner().invoke(main, ["train", "--data", str(folder), "--output-dir", str(tmp_path / "r"), *tiny_cli])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_set_overrides_what_conditioned_turns_on(tmp_path, tiny_cli):
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--output-dir", str(run), "--conditioned", *tiny_cli, "--set",
                                       "model.text_glyphs=false", "--set", "model.ar_prior_levels=[]"])  # fmt: skip
    assert result.exit_code == 0, result.output
    model = json.loads((run / "model" / "config.json").read_text())
    assert not model["text_glyphs"] and model["text_map_every_stage"] and model["ar_prior_levels"] == []


def test_resuming_with_another_architecture_names_the_keys(tmp_path, tiny_cli):
    """A conditioned run from before --conditioned turned glyphs on resumes as it was (a resumed run keeps its own
    settings); asking it for glyphs on the command line cannot work: one line, exit 2, naming the keys."""
    run = tmp_path / "run"
    off = ["--set", "model.text_glyphs=false", "--set", "model.text_map_every_stage=false"]
    result = CliRunner().invoke(main, ["train", "--output-dir", str(run), "--conditioned", *tiny_cli, *off])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["train", "--output-dir", str(run), "--conditioned", *tiny_cli,
                                       "--max-steps", "5", "--resume", "auto"])  # fmt: skip
    assert result.exit_code == 0 and "text_glyphs" not in result.output, result.output  # only max_steps changed
    on = ["--set", "model.text_glyphs=true", "--set", "model.text_map_every_stage=true"]
    result = CliRunner().invoke(main, ["train", "--output-dir", str(run), "--conditioned", *tiny_cli, *on,
                                       "--max-steps", "6", "--resume", "auto"])  # fmt: skip
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "model.text_glyphs: false -> true; model.text_map_every_stage: false -> true" in result.output
    assert 'Missing key(s) in state_dict: "text_map.glyph_char.weight"' in result.output


def test_the_default_is_text_aware_and_a_resume_keeps_what_the_run_was(tmp_path, tiny_cli):
    def model_config(run):
        return json.loads((run / "model" / "config.json").read_text())

    text_aware, plain = tmp_path / "default", tmp_path / "plain"
    for run, flags in ((text_aware, []), (plain, ["--unconditioned"])):
        result = CliRunner().invoke(main, ["train", "--output-dir", str(run), *flags, *tiny_cli])
        assert result.exit_code == 0, result.output
    assert model_config(text_aware)["conditioned"] and model_config(text_aware)["ar_prior_levels"] == [1]
    assert (text_aware / "text_prior.json").is_file()
    assert not model_config(plain)["conditioned"] and model_config(plain)["ar_prior_levels"] == []
    assert not (plain / "text_prior.json").exists()
    for run in (text_aware, plain):  # no flag: each continues as it was trained
        result = CliRunner().invoke(main, ["train", "--output-dir", str(run), *tiny_cli, "--max-steps", "6",
                                           "--resume", "auto"])  # fmt: skip
        assert result.exit_code == 0 and "resumed from" in result.output, result.output
    config = tmp_path / "plain.toml"  # a config file that says decides
    config.write_text("[model]\nconditioned = false\n")
    run = tmp_path / "from-file"
    result = CliRunner().invoke(main, ["train", "--config", str(config), "--output-dir", str(run), *tiny_cli])
    assert result.exit_code == 0 and not model_config(run)["conditioned"], result.output


def test_conditioned_training_rejects_texts_outside_the_vocabulary(tmp_path, tiny_cli):
    folder = tmp_path / "data"
    folder.mkdir()
    Image.new("RGB", (200, 50), "white").save(folder / "AB9.png")
    result = CliRunner().invoke(main, ["train", "--data", str(folder), "--conditioned", "--output-dir",
                                       str(tmp_path / "r"), *tiny_cli, "--set", "model.vocabulary='ab'"])  # fmt: skip
    assert result.exit_code == 2 and "AB9.png" in result.output and "'9' not in model.vocabulary" in result.output


def test_bad_options_are_one_line_errors(tmp_path, tiny_cli):
    for args, message in [
        (["--set", "train.grad_clip=-1.0"], "grad_clip must be positive"),
        (["--set", "loss.objectiv='elbo'"], "unknown config key loss.objectiv"),
        (["--size", "abc"], "--size expects HxW"),
    ]:
        result = CliRunner().invoke(main, ["train", "--output-dir", str(tmp_path / "r"), *tiny_cli, *args])
        assert result.exit_code == 2 and message in result.output, result.output
    assert CliRunner().invoke(main, ["sample", str(tmp_path)]).exit_code == 2
    run = tmp_path / "plain"
    args = ["train", "--unconditioned", "--output-dir", str(run), *tiny_cli, "--max-steps", "1"]
    assert CliRunner().invoke(main, args).exit_code == 0
    result = CliRunner().invoke(main, ["evaluate", str(run), "-k", "1", "-n", "4", "--text-accuracy"])
    assert result.exit_code == 2 and "needs a model trained with --conditioned" in result.output


def test_gaussian_and_bernoulli_likelihoods_train(tmp_path, tiny_config):
    for likelihood in ("gaussian", "bernoulli"):
        config = tiny_config(tmp_path / likelihood, f"model.likelihood='{likelihood}'", "train.max_steps=2")
        result = build_trainer(config).fit()
        assert torch.isfinite(torch.tensor(result.metrics["nll_bits_per_dim"]))


def test_kl_weights_weigh_each_level_bottom_first(tmp_path, tiny_config):
    from hvae_captcha.config import LossConfig
    from hvae_captcha.train import loss_terms

    log_px = torch.tensor([-10.0, -12.0])
    kls = [torch.full((2, 3), 1.0), torch.full((2, 4), 2.0)]  # top level first: 3 nats, then z_1: 8 nats
    plain, logged = loss_terms(log_px, kls, LossConfig(kl_warmup_steps=0, free_bits=0.0), step=0, epoch=0)
    assert plain.item() == pytest.approx(11.0 + 3.0 + 8.0)
    weighted, logged_w = loss_terms(log_px, kls, LossConfig(kl_warmup_steps=0, free_bits=0.0, kl_weights=[3.0, 0.5]),
                                    step=0, epoch=0)  # fmt: skip
    assert weighted.item() == pytest.approx(11.0 + 0.5 * 3.0 + 3.0 * 8.0)
    assert logged_w["kl1_nats"] == logged["kl1_nats"] == 8.0  # the logged KLs (and so the ELBO) stay unweighted
    build_trainer(tiny_config(tmp_path, "loss.kl_weights=[2.0, 1.0]", "train.max_steps=1")).fit()
    with pytest.raises(ConfigError, match="3 weights for 2 latent levels"):
        tiny_config(tmp_path, "loss.kl_weights=[2.0, 1.0, 1.0]")
