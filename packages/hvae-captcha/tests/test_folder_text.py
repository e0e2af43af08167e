"""Folder data with its own characters (issue 26): vocabulary and text length inferred from the file names, the
case rule, the original's label rule, and a model/ folder that samples on its own."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from gencore.checkpoint import load_model as gencore_load_model
from gencore.checkpoint import verify_dir
from gencore.config import build_config
from hvae_captcha.cli import main
from hvae_captcha.config import DataConfig, HVAEConfig
from hvae_captcha.data import case_rule, folder_files, folder_texts, text_of
from hvae_captcha.model import HVAE
from hvae_captcha.package import SPEC
from hvae_captcha.train import infer_folder_text

KAGGLE = "2345678bcdefgmnpwxy"  # the characters of Kaggle's captcha_images_v2 (1,040 PNGs of 200x50)


def kaggle_like(folder: Path, n: int = 12, upper: bool = False, seed: int = 0) -> list[str]:
    """``n`` 200x50 PNGs named by a 5-character text over the Kaggle charset (upper-cased names if ``upper``)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    texts = []
    while len(texts) < n:
        text = "".join(rng.choice(KAGGLE) for _ in range(5))
        if text in texts:
            continue
        texts.append(text)
        img = Image.new("L", (200, 50), 230)
        ImageDraw.Draw(img).text((30 + rng.randrange(20), 18), " ".join(text), fill=20)
        img.save(folder / f"{text.upper() if upper else text}.png")
    return texts


def train(folder: Path, run: Path, tiny_cli: list[str], *extra: str):
    return CliRunner().invoke(main, ["train", "--data", str(folder), "--output-dir", str(run), *tiny_cli, *extra])


def one_line_exit_2(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output


@pytest.fixture(scope="module")
def kaggle_run(tmp_path_factory):
    """A text-aware run trained with ``--data DIR`` alone on a Kaggle-like folder with upper-case file names."""
    import torch

    root = tmp_path_factory.mktemp("kaggle")
    texts = kaggle_like(root / "captcha_images_v2", upper=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(root / "captcha_images_v2", root / "run", [a for x in SPEC.preset("tiny") for a in ("--set", x)])
    finally:
        torch.set_num_threads(threads)
    return root, texts, result


def test_a_kaggle_folder_trains_with_data_alone_and_records_the_inferred_vocabulary(kaggle_run, tiny_cli):
    root, texts, result = kaggle_run
    assert result.exit_code == 0, result.output
    vocabulary = "".join(sorted(set("".join(texts))))  # lower-cased: the file names were upper-case
    assert set(vocabulary) <= set(KAGGLE) and vocabulary == vocabulary.lower()
    line = [x for x in result.output.splitlines() if x.startswith("inferred from the file names")]
    assert len(line) == 1 and f"model.vocabulary={vocabulary!r}" in line[0] and "model.text_length=5" in line[0]
    assert "lower-cased" in line[0]
    run = root / "run"
    for config in (run / "config.json", run / "model" / "run_config.json"):  # recorded with the run and the model
        model = json.loads(config.read_text())["model"]
        assert model["vocabulary"] == vocabulary and model["text_length"] == 5 and model["conditioned"]
    assert json.loads((run / "model" / "config.json").read_text())["vocabulary"] == vocabulary
    assert json.loads((run / "model" / "text_prior.json").read_text())["vocabulary"] == vocabulary
    # a resume keeps the recorded values: nothing differs from the checkpoint's config
    result = train(root / "captcha_images_v2", run, tiny_cli, "--max-steps", "6", "--resume", "auto")
    assert result.exit_code == 0 and "resumed from" in result.output, result.output
    assert "model.vocabulary" not in result.output and "inferred" not in result.output


def test_sample_text_follows_the_case_rule(kaggle_run, tmp_path):
    root, texts, _ = kaggle_run
    out = tmp_path / "s.png"
    result = CliRunner().invoke(main, ["sample", str(root / "run"), "-n", "2", "--text", texts[0].upper(),
                                       "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0 and out.is_file(), result.output
    assert case_rule("B3CD", "bcd3") == "b3cd" and case_rule("B3cd", "Bbcd3") == "B3cd"  # kept for a cased model
    result = CliRunner().invoke(main, ["sample", str(root / "run"), "-n", "1", "--text", "a", "-o", str(out)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output


def test_a_model_folder_copied_alone_samples_reconstructs_and_evaluates(kaggle_run, tmp_path):
    root, texts, _ = kaggle_run
    copy = tmp_path / "elsewhere" / "model"
    shutil.copytree(root / "run" / "model", copy)
    verify_dir(copy)  # the text prior and the run's config are listed in the manifest
    listed = set(json.loads((copy / "manifest.json").read_text())["files"])
    assert {"text_prior.json", "run_config.json", "config.json", "model.safetensors"} <= listed
    # the layout every package's model folder has: it describes itself and loads without naming its class
    assert {"model_info.json", "README.md"} <= listed
    assert type(gencore_load_model(copy)).__name__ == "HVAE"
    for extra in ([], ["--text", texts[1]]):
        result = CliRunner().invoke(main, ["sample", str(copy), "-n", "3", "-o", str(tmp_path / "s.png"), *extra])
        assert result.exit_code == 0, result.output
    assert "texts from the run's text prior" in CliRunner().invoke(
        main, ["sample", str(copy), "-n", "2", "-o", str(tmp_path / "t.png")]).output  # fmt: skip
    data = root / "captcha_images_v2"
    result = CliRunner().invoke(main, ["reconstruct", str(copy), "-n", "2", "--data", str(data),
                                       "-o", str(tmp_path / "r.png")])  # fmt: skip
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["evaluate", str(copy), "-k", "1", "-n", "3", "--batch-size", "3",
                                       "--data", str(data)])  # fmt: skip
    assert result.exit_code == 0 and "nll_unconditional_bits_per_dim" in result.output, result.output
    assert (tmp_path / "elsewhere" / "eval" / "evaluation.json").is_file()  # beside the model folder, not in it
    verify_dir(copy)
    # the run's data folder is not where the copy is used: one line asking for --data
    data.rename(root / "hidden")
    try:
        result = CliRunner().invoke(main, ["reconstruct", str(copy), "-o", str(tmp_path / "r2.png")])
    finally:
        (root / "hidden").rename(data)
    one_line_exit_2(result, "pass --data DIR")


def test_a_model_folder_of_the_earlier_layout_still_works_from_its_run_directory(kaggle_run, tmp_path):
    """Model folders written before model/ held the text prior (config.json + model.safetensors only)."""
    root, _, _ = kaggle_run
    run = tmp_path / "run"
    shutil.copytree(root / "run", run)
    HVAE.from_pretrained(run / "model").save_pretrained(run / "model")  # rewritten without the extras
    assert not (run / "model" / "text_prior.json").exists() and (run / "text_prior.json").is_file()
    result = CliRunner().invoke(main, ["sample", str(run), "-n", "2", "-o", str(tmp_path / "s.png")])
    assert result.exit_code == 0 and "texts from the run's text prior" in result.output, result.output
    result = CliRunner().invoke(main, ["sample", str(run / "model"), "-n", "2", "-o", str(tmp_path / "m.png")])
    assert result.exit_code == 0, result.output  # model/ inside its run directory finds the run's prior
    alone = tmp_path / "alone"
    shutil.copytree(run / "model", alone)
    result = CliRunner().invoke(main, ["sample", str(alone), "-n", "2", "-o", str(tmp_path / "a.png")])
    one_line_exit_2(result, "drawing texts needs its run directory")


def test_keep_case_infers_a_cased_vocabulary(tmp_path):
    folder = tmp_path / "cased"
    folder.mkdir()
    for name in ("Ab3.png", "xY_2.png", "ab3_1.png"):
        Image.new("L", (40, 20), 200).save(folder / name)

    def config(*overrides: str) -> HVAEConfig:
        return build_config(HVAEConfig, overrides=[f"data.source={str(folder)!r}", "model.conditioned=true",
                                                    *overrides])  # fmt: skip

    notes: list[str] = []
    lower = infer_folder_text(config(), log=notes.append)
    assert (lower.model.vocabulary, lower.model.text_length) == ("3abxy", 3) and "lower-cased" in notes[0]
    cased = infer_folder_text(config("data.keep_case=true"), log=notes.append)
    assert (cased.model.vocabulary, cased.model.text_length) == ("3AYabx", 3) and "kept" in notes[1]
    # what the config sets is kept; only the other key is inferred
    mixed = infer_folder_text(config("model.text_length=7"), explicit={"model.text_length"}, log=notes.append)
    assert (mixed.model.vocabulary, mixed.model.text_length) == ("3abxy", 7)
    # unconditioned models and rendered data are left alone
    plain = config("model.conditioned=false")
    assert infer_folder_text(plain) is plain
    # the flags exist and set the keys
    result = CliRunner().invoke(main, ["train", "--data", str(folder), "--keep-case", "--label-rule", "original",
                                       "--print-config", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)["data"]
    assert data["keep_case"] is True and data["label_rule"] == "original"


def test_the_original_label_rule():
    names = ["captcha_2b827x.jpeg", "2B827.jpeg", "long_prefix_abcdefgh.jpeg", "2b827.png"]
    texts = [text_of(Path(n), "original") for n in names]
    # name[:-5][-6:], lower-cased: the 5-character ".jpeg" goes, and of a ".png" name also the stem's last character
    assert texts == ["2b827x", "2b827", "cdefgh", "2b82"]
    assert text_of(Path("2B827.jpeg"), "original", keep_case=True) == "2B827"
    assert [text_of(Path(n)) for n in ("2b827_3.png", "AB.png")] == ["2b827", "ab"]  # the default "stem" rule


def test_the_original_label_rule_trains(tmp_path, tiny_cli):
    folder = tmp_path / "jpegs"
    texts = kaggle_like(folder, n=12)
    for text in texts:  # named <prefix><6 characters>.jpeg: the rule keeps the 6 characters
        with Image.open(folder / f"{text}.png") as img:
            img.convert("RGB").save(folder / f"img{text}{text[0]}.jpeg")
        (folder / f"{text}.png").unlink()
    result = train(folder, tmp_path / "run", tiny_cli, "--label-rule", "original", "--max-steps", "1")
    assert result.exit_code == 0, result.output
    model = json.loads((tmp_path / "run" / "config.json").read_text())["model"]
    assert model["text_length"] == 6 and set(model["vocabulary"]) <= set(KAGGLE)
    prior = json.loads((tmp_path / "run" / "model" / "text_prior.json").read_text())
    assert len(prior["length_counts"]) == 6 and prior["length_counts"][5] > 9  # 9 training texts, all of length 6


@pytest.mark.parametrize(
    ("names", "extra", "message"),
    [
        ([], [], "error: no images in"),
        (["_1.png", "2b827.png"], [], '_1.png: the file name gives an empty text under data.label_rule "stem"'),
        (["a.png"], ["--label-rule", "original"], "a.png: the file name gives an empty text under data.label_rule"),
    ],
)
def test_folders_that_give_no_texts_are_one_line_errors(tmp_path, tiny_cli, names, extra, message):
    folder = tmp_path / "data"
    folder.mkdir()
    for name in names:
        Image.new("L", (40, 20), 200).save(folder / name)
    one_line_exit_2(train(folder, tmp_path / "run", tiny_cli, *extra), message)
    assert not (tmp_path / "run" / "model").exists()


def test_folder_texts_reads_names_only(tmp_path):
    kaggle_like(tmp_path / "d", n=3, upper=True)
    files = folder_files(tmp_path / "d")
    assert [t.upper() for t in folder_texts(files, DataConfig())] == [f.stem for f in files]
    assert folder_texts(files, DataConfig(keep_case=True)) == [f.stem for f in files]
