"""The command line: the data commands, training through the CLI, and bad input -> one line + exit 2."""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner

from vqgan_negatives.cli import main


def _run(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_data_render_and_noise(tmp_path):
    code, out = _run("data", "render", "-o", str(tmp_path / "mols"), "-n", "3", "--size", "32", "--no-atom-labels")
    assert code == 0, out
    assert len(list((tmp_path / "mols").glob("mol_*.png"))) == 3
    code, out = _run("noise", "-o", str(tmp_path / "noise"), "-n", "2", "--size", "32", "--perlin-scale", "8",
                     "--perlin-octaves", "2", "--threshold", "0")  # fmt: skip
    assert code == 0, out
    assert (tmp_path / "noise" / "grid.png").is_file() and len(list((tmp_path / "noise").glob("perlin_*"))) == 2
    assert _run("data", "perlin", "-o", str(tmp_path / "n2"), "-n", "1", "--kind", "gaussian")[0] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train-vqgan", "--data", "/no/such/folder", "--max-steps", "1"], "image folder not found"),
        (["train-vqgan", "--set", "model.quantizer.codebook_sise=3"], "unknown config key"),
        (["train-vqgan", "--set", "model.resolution=30"], "divisible"),
        (["sample", "/no/such/run"], "no trained transformer"),
        (["make-negatives", "/no/such/run"], "no trained transformer"),
        (["train-transformer", "--vqgan", "/no/such/run"], "no trained VQGAN"),
        (["experiment", "--model", "x", "--condition", "speckle"], "unknown condition"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    code, out = _run(*args)
    assert code == 2, out
    lines = [line for line in out.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], out
    assert "Traceback" not in out


def test_bad_image_file_is_named(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"not a png")
    code, out = _run("train-vqgan", "--data", str(folder), "--output-dir", str(tmp_path / "run"))
    assert code == 2 and "broken.png" in out


def test_sample_and_make_negatives_cli(trained_pipeline, tmp_path):
    gpt_dir = str(trained_pipeline[1])
    code, out = _run("sample", gpt_dir, "-n", "2", "--top-k", "8", "--perlin-scale", "8", "-o",
                     str(tmp_path / "s.png"), "--save-dir", str(tmp_path / "s"))  # fmt: skip
    assert code == 0, out
    assert (tmp_path / "s.png").is_file() and len(list((tmp_path / "s").glob("*.png"))) == 2
    code, out = _run("generate", gpt_dir, "-n", "1", "--condition", "gaussian", "-o", str(tmp_path / "g.png"))
    assert code == 0, out
    code, out = _run("make-negatives", gpt_dir, "-n", "3", "-o", str(tmp_path / "syn"), "--top-k", "8",
                     "--min-ink", "0", "--max-ink", "1", "--max-isolated", "1", "--max-hash-distance", "-1",
                     "--min-train-distance", "0", "--batch-size", "4")  # fmt: skip
    assert code == 0, out
    with open(tmp_path / "syn" / "manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sum(r["status"] == "kept" for r in rows) == 3
    assert len(list((tmp_path / "syn").glob("negative_*.png"))) == 3
    code, out = _run("make-negatives", gpt_dir, "-n", "2", "-o", str(tmp_path / "syn"), "--overwrite", "--top-k", "8",
                     "--condition", "gaussian", "--min-ink", "0", "--max-ink", "1", "--max-isolated", "1",
                     "--max-hash-distance", "-1", "--min-train-distance", "0", "--batch-size", "4")  # fmt: skip
    assert code == 0, out
    with open(tmp_path / "syn" / "manifest.csv") as fh:
        assert {r["condition"] for r in csv.DictReader(fh)} == {"gaussian"}
    code, out = _run("make-negatives", gpt_dir, "-o", str(tmp_path / "syn2"), "--condition", "speckle")
    assert code == 2 and "unknown condition" in out and not (tmp_path / "syn2").exists()


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("image:/no/such/picture.png", "not found"),
        ("perlin:scale=abc", "bad value for scale"),
        ("perlin:colour=3", "bad Perlin option"),
        ("perlin:octaves=0", "octaves >= 1"),
    ],
)
def test_bad_conditions_are_one_line_errors(trained_pipeline, tmp_path, condition, message):
    code, out = _run("sample", str(trained_pipeline[1]), "-n", "1", "--condition", condition,
                     "-o", str(tmp_path / "s.png"))  # fmt: skip
    assert code == 2 and message in out and "Traceback" not in out, out
    assert not (tmp_path / "s.png").exists()


def test_damaged_model_file_is_refused(trained_pipeline, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained_pipeline[1] / "model", run / "model")
    weights = run / "model" / "gpt" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    code, out = _run("sample", str(run), "-n", "1", "-o", str(tmp_path / "s.png"))
    assert code == 2 and "model.safetensors" in out and "Traceback" not in out, out
