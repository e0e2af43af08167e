"""The original's semantics (gpulearn_z_x.py): the `original` preset's epoch cadence, patience and hook.txt,
its auto-named run directory and exact resume; extract --variance; classify on sampled z; binarised inputs."""

from __future__ import annotations

import csv
import json
import re

import h5py
import numpy as np
import torch
from click.testing import CliRunner

from gencore.config import build_config
from gencore.testing import assert_resume_exact
from m1_hyperspectral.cli import main
from m1_hyperspectral.config import PRESETS, M1RunConfig
from m1_hyperspectral.features import extract_features, load_features
from m1_hyperspectral.package import SPEC
from m1_hyperspectral.pipeline import load_model, pixels_of
from m1_hyperspectral.train import build_trainer, run_training

TINY = list(SPEC.preset("tiny"))  # 204 training pixels, batch 64: 4 updates an epoch
ORIGINAL = list(SPEC.preset("original"))
STEPS_PER_EPOCH = 4


def _original(parent, *overrides: str) -> M1RunConfig:
    return build_config(M1RunConfig, overrides=[*TINY, *ORIGINAL, f"train.output_dir={str(parent)!r}", *overrides])


def _hook_lines(parent) -> tuple[str, list[str]]:
    (run,) = [p for p in parent.iterdir() if p.is_dir()]
    return run.name, (run / "hook.txt").read_text().splitlines()


def test_the_registry_preset_is_the_cli_preset():
    assert ORIGINAL == PRESETS["original"]
    config = build_config(M1RunConfig, overrides=ORIGINAL)
    t = config.train
    assert (t.eval_every, t.eval_every_epochs, t.patience, t.checkpoint_every_epochs) == (0, 10, 1001, 10)
    assert config.log.hook_txt and config.log.auto_name and config.log.at_evaluations


def test_original_preset_evaluates_every_10_epochs_and_counts_patience_in_evaluations(tmp_path):
    # lr 0: the validation value (fixed noise) never improves after the first evaluation; patience 3 is the
    # original's `ll_valid_stats[1] > 2`: it stops at the 3rd evaluation in a row without improvement
    # --set sits above the preset: the tiny scene and model, not the tiny schedule
    sets = [s for s in TINY if not s.startswith(("train.max_steps", "train.log_every", "train.eval_every",
                                                 "train.checkpoint_every"))]  # fmt: skip
    args = ["train", "--preset", "original", "--output-dir", str(tmp_path), *(a for s in sets for a in ("--set", s)),
            "--lr", "0", "--patience", "3", "--comment", "t"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("step")]
    # one line per evaluation (every 10 epochs = 40 updates), with the package's columns
    assert [int(line.split()[1].split("/")[0]) for line in lines] == [40, 80, 120, 160]
    for line in lines:
        assert [part.split()[0] for part in line.split(" | ")] == [
            "step", "elapsed_s", "elbo", "eval/valid_ll", "eval/bad_evals"]  # fmt: skip
    assert lines[-1].endswith("eval/bad_evals 3") and "done (early_stop) at step 160" in result.output
    name, hook = _hook_lines(tmp_path)
    assert re.fullmatch(r"gpulearn_z_x_synthetic_4-\[32, 32\]_t_\d{10}", name), name
    assert f"logdir: {tmp_path / name}" in result.output
    with open(tmp_path / name / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == ["40", "80", "120", "160"] and [r["eval/bad_evals"] for r in rows] == [
        "0", "1", "2", "3"]  # fmt: skip
    # hook.txt: the header, "epoch t ll ll_valid [best, count]" per evaluation, Finished instead of the last
    assert hook[0] == "learn_z_x 4 [32, 32] synthetic 0" and hook[-1] == "Finished" and len(hook) == 5
    parsed = [line.split(" ", 4) for line in hook[1:4]]
    assert [p[0] for p in parsed] == ["10", "20", "30"]
    best = float(parsed[0][4][1:].split(",")[0])  # the list as Python prints it (repr), the rest as str (12 digits)
    assert parsed[0][3] == format(best, ".12g") and abs(float(rows[0]["eval/valid_ll"]) - best) < 1e-3
    assert [p[4] for p in parsed] == [f"[{best!r}, {k}]" for k in range(3)]
    assert all(float(p[1]) > 0 and np.isfinite(float(p[2])) for p in parsed)
    config = json.loads((tmp_path / name / "config.json").read_text())
    assert config["train"]["output_dir"] == str(tmp_path / name) and config["log"]["auto_name"] is False


def test_hook_txt_resume_appends_exactly(tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    run_training(_original(whole, "train.max_epochs=40"))
    run_training(_original(parts, "train.max_epochs=20"))
    name, first = _hook_lines(parts)
    assert len(first) == 3  # header, epochs 10 and 20 (the checkpoint of epoch 20 holds the file's length)
    with open(parts / name / "hook.txt", "a") as fh:  # a line written after the last checkpoint, then a crash
        fh.write("30 9.9 1.0 1.0 [1.0, 0]\n")
    run_training(_original(parts, "train.max_epochs=40"), resume="auto")  # finds the auto-named directory
    assert [p.name for p in parts.iterdir()] == [name]
    _, resumed = _hook_lines(parts)
    _, unbroken = _hook_lines(whole)

    def without_time(lines):
        return [line if i == 0 else " ".join(line.split(" ")[:1] + line.split(" ")[2:]) for i, line in
                enumerate(lines)]  # fmt: skip

    assert len(resumed) == 5 and resumed[:3] == first
    assert without_time(resumed) == without_time(unbroken)
    # resuming the finished run writes nothing more
    run_training(_original(parts, "train.max_epochs=40"), resume="auto")
    assert _hook_lines(parts)[1] == resumed


def test_extract_writes_the_variance_on_request(tmp_path):
    run = tmp_path / "run"
    run_training(build_config(M1RunConfig, overrides=[*TINY, f"train.output_dir={str(run)!r}"]))
    runner = CliRunner()
    for fmt, out in (("h5", tmp_path / "f.h5"), ("npy", tmp_path / "fdir")):
        result = runner.invoke(main, ["extract", str(run), "-o", str(out), "--format", fmt, "--variance"])
        assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["extract", str(run), "-o", str(tmp_path / "plain.h5")])
    assert result.exit_code == 0, result.output
    h5, _ = load_features(tmp_path / "f.h5")
    npy, _ = load_features(tmp_path / "fdir")
    plain, _ = load_features(tmp_path / "plain.h5")
    assert "var" not in plain and set(h5) == set(plain) | {"var"}
    np.testing.assert_allclose(h5["var"], np.exp(h5["logvar"]), rtol=1e-6)
    for key in h5:
        np.testing.assert_array_equal(h5[key], npy[key])
    np.testing.assert_array_equal(h5["z"], plain["z"])  # the same noise with or without the variance
    with h5py.File(tmp_path / "f.h5") as fh:
        assert json.loads(fh.attrs["arrays"])[-1] == "var"
    manifest = json.loads((tmp_path / "fdir" / "manifest.json").read_text())
    assert "var.npy" in manifest["files"]


def test_classify_on_sampled_z_is_seeded(tmp_path):
    run = tmp_path / "run"
    run_training(build_config(M1RunConfig, overrides=[*TINY, f"train.output_dir={str(run)!r}"]))
    model, config = load_model(run)
    pixels = pixels_of([], config, None, None, where=str(run))
    a, b = extract_features(model, pixels, 5), extract_features(model, pixels, 6)
    assert not np.allclose(a["z"], a["mean"]) and not np.allclose(a["z"], b["z"])  # the z differ from the mean

    def classify(*extra):
        out = tmp_path / f"c{len(list(tmp_path.iterdir()))}.json"
        args = ["classify", str(run), "--labels-per-class", "2", "--repeats", "2", "-o", str(out), *extra]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        return json.loads(out.read_text())

    sampled, again = classify("--z", "sample", "--seed", "1"), classify("--z", "sample", "--seed", "1")
    mean = classify("--seed", "1")
    assert sampled == again and sampled["z"] == "sample" and mean["z"] == "mean"
    assert sampled["rows"][0]["features"] == "M1 features (sampled z)"
    assert mean["rows"][0]["features"] == "M1 features"
    assert sampled["rows"][1] == mean["rows"][1]  # the raw spectra on the same splits


def test_stochastic_binarisation_trains_and_resumes_bitwise(tmp_path):
    overrides = [*TINY, "data.binarize=stochastic", "model.likelihood=bernoulli"]

    def make(run_dir, max_steps):
        config = build_config(M1RunConfig, overrides=[*overrides, f"train.output_dir={str(run_dir)!r}",
                                                      f"train.max_steps={max_steps}", "train.checkpoint_every=5"])
        return build_trainer(config)

    assert_resume_exact(make, tmp_path, stop_at=10, total=20)
    # the draws differ from the values: a run on the grey values ends elsewhere
    plain = build_trainer(build_config(M1RunConfig, overrides=[
        *TINY, "model.likelihood=bernoulli", f"train.output_dir={str(tmp_path / 'plain')!r}"]))  # fmt: skip
    plain.fit()
    binarised = make(tmp_path / "again", 20)
    binarised.fit()
    assert not torch.equal(plain.unwrap("M1").q_head.weight, binarised.unwrap("M1").q_head.weight)


def test_threshold_binarisation_binarises_train_and_validation(tmp_path):
    config = build_config(M1RunConfig, overrides=[*TINY, "data.binarize=threshold",
                                                  f"train.output_dir={str(tmp_path)!r}"])  # fmt: skip
    trainer = build_trainer(config)
    x = trainer.loader.dataset.x
    assert set(torch.unique(x).tolist()) <= {0.0, 1.0}
    result = trainer.fit()
    assert result.step == 20 and np.isfinite(result.metrics["valid_ll"])
