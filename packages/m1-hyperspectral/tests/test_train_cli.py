from __future__ import annotations

import csv
import json

import numpy as np
import torch
from click.testing import CliRunner

from gencore.testing import assert_resume_exact
from m1_hyperspectral.cli import main
from m1_hyperspectral.features import load_features
from m1_hyperspectral.train import build_trainer, run_training

TINY_FLAGS = [
    "--set", "data.synth.height=16", "--set", "data.synth.width=16", "--set", "data.synth.bands=12",
    "--set", "data.synth.scale=6", "--set", "model.hidden=[32, 32]", "--set", "model.latent=4",
    "--set", "train.progress_bar=false", "--set", "train.report_to=none", "--set", "train.sample_every=0",
    "--batch-size", "64",
]  # fmt: skip


def test_log_has_the_five_columns_and_patience_stops_training(tmp_path):
    # lr 0: the validation log-likelihood (fixed evaluation noise) never improves after the first evaluation.
    args = ["train", "--output-dir", str(tmp_path / "run"), *TINY_FLAGS, "--lr", "0", "--patience", "3"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("step")]
    assert len(lines) == 4  # steps 10, 20, 30, 40
    fields = [part.split()[0] for part in lines[0].split(" | ")]
    assert fields == ["step", "elapsed_s", "elbo", "eval/valid_ll", "eval/bad_evals"]
    assert lines[-1].split(" | ")[0].split() == ["step", "40/100000"] and lines[-1].endswith("eval/bad_evals 3")
    assert "done (early_stop) at step 40" in result.output
    with open(tmp_path / "run" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["eval/bad_evals"] for r in rows] == ["0", "1", "2", "3"]
    assert {"elapsed_s", "elbo", "eval/valid_ll", "kl", "rec"} <= set(rows[0])
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()


def test_training_raises_the_validation_likelihood_and_writes_pictures(tmp_path, tiny_config):
    config = tiny_config(tmp_path, "train.max_steps=60", "train.sample_every=60")
    result = run_training(config)
    with open(tmp_path / "metrics.csv") as fh:
        valid = [float(r["eval/valid_ll"]) for r in csv.DictReader(fh) if r.get("eval/valid_ll")]
    assert valid[-1] > valid[0] + 5 and result.step == 60
    assert {p.name for p in (tmp_path / "samples").iterdir()} == {"spectra_step_000060.png", "scene_step_000060.png"}


def test_resume_equals_an_unbroken_run(tmp_path, tiny_config):
    def make(run_dir, max_steps):
        return build_trainer(tiny_config(run_dir, f"train.max_steps={max_steps}", "train.checkpoint_every=5"))

    assert_resume_exact(make, tmp_path, stop_at=10, total=20)


def test_extract_classify_evaluate_sample_from_the_cli(tmp_path, tiny_config):
    run = tmp_path / "run"
    run_training(tiny_config(run, "train.max_steps=20"))
    runner = CliRunner()
    for fmt, out in (("h5", tmp_path / "f.h5"), ("npy", tmp_path / "fdir")):
        result = runner.invoke(main, ["extract", str(run), "-o", str(out), "--format", fmt, "--seed", "3"])
        assert result.exit_code == 0, result.output
    h5, files = load_features(tmp_path / "f.h5")
    npy, _ = load_features(tmp_path / "fdir")
    assert files == ["synthetic"] and h5["mean"].shape == (256, 4) and h5["coords"].shape == (256, 3)
    for key in h5:
        np.testing.assert_array_equal(h5[key], npy[key])
    assert not np.allclose(h5["z"], h5["mean"])  # sampled features differ from the mean...
    assert np.abs((h5["z"] - h5["mean"]) / np.exp(0.5 * h5["logvar"])).std() < 2  # ...by about one std

    result = runner.invoke(main, ["classify", str(run), "--labels-per-class", "2,5", "--repeats", "2"])
    assert result.exit_code == 0, result.output
    rows = json.loads((run / "classify.json").read_text())["rows"]
    assert [(r["features"], r["labels_per_class"]) for r in rows] == [
        ("M1 features", 2), ("raw spectra", 2), ("M1 features", 5), ("raw spectra", 5)]  # fmt: skip
    assert all(0 <= r["oa"] <= 1 and -1 <= r["kappa"] <= 1 for r in rows)
    assert "| M1 features | 5 |" in result.output

    result = runner.invoke(main, ["evaluate", str(run), "-k", "20"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "evaluation.json").read_text())
    assert metrics["iw_ll"] >= metrics["elbo"] and 0 <= metrics["active_units"] <= 4

    result = runner.invoke(main, ["sample", str(run), "-n", "5", "-o", str(tmp_path / "s.png"),
                                  "--npy", str(tmp_path / "s.npy")])  # fmt: skip
    assert result.exit_code == 0 and np.load(tmp_path / "s.npy").shape == (5, 12)


def test_training_on_files_by_name_alone(tmp_path, files):
    cube, gt = files.random_scene(12, 10, 9, classes=3)
    v5 = files.mat5(tmp_path / "Indian_pines.mat", {"indian_pines_corrected": cube, "indian_pines_gt": gt})
    v73 = files.mat73(tmp_path / "Indian_pines_73.mat", {"indian_pines_corrected": cube, "indian_pines_gt": gt})
    args = ["train", str(v5), str(v73), "--output-dir", str(tmp_path / "run"), *TINY_FLAGS, "--max-steps", "4"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "240 pixels x 9 bands from Indian_pines.mat, Indian_pines_73.mat" in result.output
    result = CliRunner().invoke(main, ["extract", str(tmp_path / "run"), str(v73), "-o", str(tmp_path / "f.h5")])
    assert result.exit_code == 0, result.output
    arrays, _ = load_features(tmp_path / "f.h5")
    np.testing.assert_array_equal(arrays["labels"], gt.reshape(-1))


def test_bad_input_is_one_line_and_nonzero(tmp_path, files):
    cube, _ = files.random_scene()
    bad = {
        "missing": tmp_path / "missing.mat",
        "nan": files.mat5(tmp_path / "nan.mat", {"cube": np.full((3, 3, 4), np.nan)}),
        "flat": files.mat5(tmp_path / "flat.mat", {"x": np.ones((3, 4))}),
    }
    a = files.mat5(tmp_path / "a.mat", {"c": cube})
    b = files.mat5(tmp_path / "b.mat", {"c": cube[..., :3]})
    cases = [
        (["train", str(bad["missing"])], "no such file"),
        (["train", str(bad["nan"])], "NaN/inf"),
        (["train", str(bad["flat"])], "no H×W×B cube"),
        (["train", str(a), str(b)], "all files must have the same bands"),
        (["train", str(a), "--cube-key", "nope"], "no variable 'nope'"),
        (["extract", str(tmp_path / "norun"), str(a)], "no M1 model"),
        (["classify", str(tmp_path), "--labels-per-class", "x"], "must be integers"),
    ]
    for args, message in cases:
        if args[0] == "train":
            args = [*args, "--output-dir", str(tmp_path / "run"), *TINY_FLAGS]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "run").exists()  # nothing written for bad data


def test_model_and_data_with_different_bands_is_a_clear_error(tmp_path, tiny_config, files):
    run_training(tiny_config(tmp_path / "run", "train.max_steps=5"))
    other = files.mat5(tmp_path / "o.mat", {"c": files.random_scene(b=7)[0]})
    result = CliRunner().invoke(main, ["extract", str(tmp_path / "run"), str(other)])
    assert result.exit_code == 2 and "expects 12 bands but the data has 7" in result.output


def test_weight_prior_shrinks_the_weights(tmp_path, tiny_config):
    norms = {}
    for sd in (0.0, 0.05):
        trainer = build_trainer(tiny_config(tmp_path / str(sd), f"optim.weight_prior_sd={sd}", "train.max_steps=30"))
        trainer.fit()
        norms[sd] = float(sum(p.pow(2).sum() for n, p in trainer.unwrap("M1").named_parameters() if "weight" in n))
    assert norms[0.05] < norms[0.0]
    torch.manual_seed(0)


def test_the_best_model_card_records_its_step_and_a_damaged_folder_is_left_with_a_note(tmp_path, tiny_config):
    from types import SimpleNamespace

    from m1_hyperspectral.train import BestModel

    run = tmp_path / "run"
    result = run_training(tiny_config(run, "train.max_steps=10"))
    record = json.loads((run / "model" / "model_info.json").read_text())["training"]
    assert record["updates"] == 10 and record["stopped_by"] == result.reason
    assert record["weights_step"] == record["metrics_step"] <= 10 and "valid_ll" in record["metrics"]
    with open(run / "model" / "model.safetensors", "ab") as fh:  # damaged after the run
        fh.write(b"x")
    hook, printed = BestModel(run), []
    hook.best_step = record["weights_step"]  # a resumed run whose best came before the resume
    hook.on_fit_end(SimpleNamespace(is_main=True, print=printed.append), result)
    assert len(printed) == 1 and "not rewritten with this run's record" in printed[0]
