"""Classifier study pieces: negatives, procedural look-alikes, the study's report, saved classifiers."""

from __future__ import annotations

import torch
from click.testing import CliRunner

from vqgan_negatives.classifier import MoleculeClassifier, classifier_study, fake_skeletons, ordinary_negatives
from vqgan_negatives.cli import main


def test_negative_sets_are_seeded_images():
    a, b = fake_skeletons(4, 32, seed=1), fake_skeletons(4, 32, seed=1)
    assert a.shape == (4, 1, 32, 32) and torch.equal(a, b)
    ink = (a < 0).float().mean((1, 2, 3))
    assert ((ink > 0.005) & (ink < 0.5)).all()
    neg = ordinary_negatives(9, 32, seed=0)
    assert neg.shape == (9, 1, 32, 32) and neg.abs().max() <= 1


def test_study_reports_both_classifiers(tmp_path):
    hard = fake_skeletons(8, 32, seed=9)
    result = classifier_study(hard, 32, {"other": fake_skeletons(4, 32, seed=3)}, n_train=24, n_test=8, steps=3,
                              seeds=(0,), log=lambda s: None, save_dir=tmp_path)  # fmt: skip
    assert set(result["mean"]) == {"ordinary", "with_hard_negatives"}
    row = result["mean"]["ordinary"]
    assert set(row) == {"molecule_accuracy", "ordinary_negative_accuracy", "fpr_fake_skeletons", "fpr_other"}
    assert all(0 <= v <= 1 for v in row.values())
    assert result["n_hard_negatives"] == 8
    assert result["n_negatives"] == {"ordinary": 24, "with_hard_negatives": 32}  # hard negatives added to all 24
    clf = MoleculeClassifier.from_pretrained(tmp_path / "ordinary")
    assert clf.score(hard).shape == (8,)


def test_cli_bad_seeds_and_missing_negatives(tmp_path):
    result = CliRunner().invoke(main, ["classifier-study", "--negatives", str(tmp_path / "none")])
    assert result.exit_code == 2 and "not found" in result.output
    (tmp_path / "neg").mkdir()
    fake = fake_skeletons(1, 32)
    from vqgan_negatives.data import save_tensor_image

    save_tensor_image(fake[0], tmp_path / "neg" / "negative_0000.png")
    result = CliRunner().invoke(main, ["classifier-study", "--negatives", str(tmp_path / "neg"), "--seeds", "a,b"])
    assert result.exit_code == 2 and "--seeds" in result.output


def test_negatives_folder_skips_the_preview_grid(tmp_path):
    from vqgan_negatives.classifier import load_negatives_folder
    from vqgan_negatives.data import save_tensor_image

    images = fake_skeletons(3, 32, seed=2)
    for i, img in enumerate(images):
        save_tensor_image(img, tmp_path / f"negative_{i:04d}.png")
    save_tensor_image(torch.ones(1, 64, 64), tmp_path / "preview.png")  # what make-negatives writes beside them
    assert load_negatives_folder(tmp_path, 32).shape == (3, 1, 32, 32)
    (tmp_path / "other").mkdir()
    save_tensor_image(images[0], tmp_path / "other" / "x.png")  # a folder of other origin: every image
    assert load_negatives_folder(tmp_path / "other", 32).shape == (1, 1, 32, 32)
