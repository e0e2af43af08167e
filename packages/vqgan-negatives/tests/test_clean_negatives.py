"""Cleaning filters on crafted images, the sampling experiment and the negatives folder with its manifest."""

from __future__ import annotations

import csv

import pytest
import torch

from gencore.errors import CheckpointError, ConfigError
from vqgan_negatives.clean import CleanConfig, average_hash, clean, ink_fraction, isolated_fraction, nearest_distance
from vqgan_negatives.data import PerlinParams
from vqgan_negatives.negatives import make_negatives, parse_condition, run_experiment
from vqgan_negatives.sample import load_pipeline


def _page() -> torch.Tensor:
    return torch.ones(1, 1, 32, 32)


def _drawing(offset: int = 0) -> torch.Tensor:
    """A few thick strokes: a plausible line drawing."""
    img = _page()
    img[0, 0, 8 + offset : 10 + offset, 4:28] = -1
    img[0, 0, 4:28, 14 + offset : 16 + offset] = -1
    return img


def test_ink_and_isolated_fractions():
    assert ink_fraction(_page()).item() == 0
    assert ink_fraction(-_page()).item() == 1
    assert isolated_fraction(_drawing()).item() == 0
    speckle = _page()
    speckle[0, 0, ::4, ::4] = -1
    assert isolated_fraction(speckle).item() == 1


def test_each_filter_on_crafted_images():
    cfg = CleanConfig()
    speckle = _page()
    speckle[0, 0, ::3, ::3] = -1
    train = _drawing(10)
    images = torch.cat([_page(), -_page(), speckle, _drawing(10), _drawing(0), _drawing(0).clone(), _drawing(3)])
    verdicts = clean(images, cfg, training_images=train)
    assert verdicts == ["empty", "saturated", "noisy", "memorised", "kept", "duplicate", "kept"]


def test_molecule_classifier_filter_and_earlier_hashes():
    images = torch.cat([_drawing(0), _drawing(4)])
    scores = lambda x: torch.tensor([0.9, 0.1])  # noqa: E731 - a stand-in classifier
    assert clean(images, CleanConfig(), molecule_score=scores) == ["molecule", "kept"]
    assert clean(images, CleanConfig(), kept_hashes=average_hash(images[:1])) == ["duplicate", "kept"]


def test_nearest_distance():
    a = torch.cat([_drawing(0), _drawing(8)])
    d = nearest_distance(a, a[:1])
    assert d[0] == 0 and d[1] > 0.1


def test_parse_condition():
    kind, p = parse_condition("perlin:scale=8,octaves=5,threshold=0")
    assert kind == "perlin" and p.scale == 8.0 and p.octaves == 5 and p.threshold == 0.0
    assert parse_condition("gaussian") == ("gaussian", None)
    assert parse_condition("image:x.png")[0] == "image:x.png"
    for bad in ("speckle", "perlin:size=3", "perlin:scale=abc", "perlin:scale=-1"):
        with pytest.raises(ConfigError):
            parse_condition(bad)


def test_experiment_writes_grid_and_scores(trained_pipeline, tmp_path):
    pipe = load_pipeline(trained_pipeline[1])
    real = torch.cat([_drawing(i) for i in range(8)])
    rows = run_experiment([pipe], ["perlin", "gaussian"], real, tmp_path / "val", n=4, top_k=8, log=lambda s: None)
    assert [r["condition"] for r in rows] == ["perlin", "gaussian"]
    assert (tmp_path / "val" / "grid.png").is_file()
    with open(tmp_path / "val" / "scores.csv") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 2 and {"model", "condition", "kid", "pass_rate", "ink"} <= set(table[0])


def test_priors_on_first_stages_of_different_lengths_are_compared(trained_pipeline, tmp_path):
    """A prior can be trained on a first-stage checkpoint (the first stage at that step); the experiment's table
    names each prior's first stage, so first-stage training lengths compare as prior ones do."""
    from gencore.checkpoint import list_checkpoints
    from gencore.config import build_config
    from vqgan_negatives import train_transformer
    from vqgan_negatives.config import TransformerRunConfig
    from vqgan_negatives.package import SPEC
    from vqgan_negatives.train_transformer import load_vqgan

    vq_run = trained_pipeline[0]
    early = list_checkpoints(vq_run / "checkpoints")[0]
    final, at_step = load_vqgan(vq_run), load_vqgan(early)
    assert not all(torch.equal(a, b) for a, b in zip(final.state_dict().values(), at_step.state_dict().values()))
    config = build_config(TransformerRunConfig, overrides=[*SPEC.preset("tiny", "train-transformer"),
                          f"train.output_dir={str(tmp_path / 'prior_early')!r}", f"vqgan={str(early)!r}"])  # fmt: skip
    train_transformer.run_training(config)
    pipes = [load_pipeline(trained_pipeline[1]), load_pipeline(tmp_path / "prior_early")]
    vq_early = pipes[1].vq.state_dict()
    assert all(torch.equal(vq_early[k], v) for k, v in at_step.state_dict().items())  # exported with the prior
    real = torch.cat([_drawing(i) for i in range(8)])
    rows = run_experiment(pipes, ["gaussian"], real, tmp_path / "val", n=4, top_k=8, log=lambda s: None)
    assert [r["first_stage"] for r in rows] == [str(vq_run), str(early)]
    with pytest.raises(CheckpointError, match="is not a checkpoint of a VQGAN run"):
        load_vqgan(list_checkpoints(trained_pipeline[1] / "checkpoints")[0])  # a prior's checkpoint is not one


def test_make_negatives_writes_exactly_n_and_a_manifest(trained_pipeline, tmp_path):
    pipe = load_pipeline(trained_pipeline[1])
    loose = CleanConfig(min_ink=0.0, max_ink=1.0, max_isolated=1.0, max_hash_distance=-1)
    out = tmp_path / "synthetic_dataset"
    counts = make_negatives(pipe, out, n=5, perlin=PerlinParams(scale=8.0, seed=7), top_k=8, clean_config=loose,
                            batch_size=4, log=lambda s: None)  # fmt: skip
    files = sorted(p.name for p in out.glob("negative_*.png"))
    assert len(files) == 5 and counts["kept"] == 5
    with open(out / "manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    kept = [r for r in rows if r["status"] == "kept"]
    assert sorted(r["file"] for r in kept) == files
    assert {r["perlin_seed"] for r in rows} == {str(7 + i) for i in range(len(rows))}
    assert all(r["model"] == pipe.name and r["perlin_scale"] == "8.0" for r in rows)


@pytest.mark.parametrize("condition", ["gaussian", "image:FOLDER", "perlin:scale=4,threshold=0"])
def test_make_negatives_takes_every_conditioning_kind_and_records_it(trained_pipeline, tmp_path, condition):
    """The sampling experiment's conditioning kinds (README: Gaussian scored best) are all available to
    make-negatives; each manifest row names its kind and the seed (or folder index) of its conditioning image."""
    from vqgan_negatives.data import save_tensor_image
    from vqgan_negatives.negatives import _conditions

    pipe = load_pipeline(trained_pipeline[1])
    res = pipe.vq.config.resolution
    folder = tmp_path / "conds"
    folder.mkdir()
    for i in range(3):
        save_tensor_image(torch.full((1, res, res), -1.0 + i), folder / f"c{i}.png")
    condition = condition.replace("FOLDER", str(folder))
    loose = CleanConfig(min_ink=0.0, max_ink=1.0, max_isolated=1.0, max_hash_distance=-1)
    out = tmp_path / "neg"
    make_negatives(pipe, out, n=5, perlin=PerlinParams(seed=3), top_k=8, clean_config=loose, batch_size=4,
                   log=lambda s: None, condition=condition)  # fmt: skip
    with open(out / "manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    kind = condition if not condition.startswith("perlin") else "perlin"
    assert {r["condition"] for r in rows} == {kind}
    if condition.startswith("image:"):
        assert [r["condition_seed"] for r in rows] == [str(i) for i in range(len(rows))]
    else:
        assert [r["condition_seed"] for r in rows] == [str(3 + i) for i in range(len(rows))]
    assert all(r["perlin_scale"] == ("4.0" if kind == "perlin" else "") for r in rows)
    # a row's seed alone gives its conditioning image, whatever batch it was drawn in
    first, again = _conditions("gaussian", PerlinParams(seed=3), 0, 4, res, 1), _conditions(
        "gaussian", PerlinParams(seed=3), 2, 2, res, 1)
    assert torch.equal(first[2:], again)


def test_make_negatives_refuses_an_unknown_condition(trained_pipeline, tmp_path):
    with pytest.raises(ConfigError, match="unknown condition"):
        make_negatives(load_pipeline(trained_pipeline[1]), tmp_path / "o", n=1, condition="speckle")
    assert not (tmp_path / "o").exists()


def test_make_negatives_fails_cleanly_when_nothing_passes(trained_pipeline, tmp_path):
    pipe = load_pipeline(trained_pipeline[1])
    impossible = CleanConfig(min_ink=2.0)
    with pytest.raises(ConfigError, match="passed cleaning"):
        make_negatives(pipe, tmp_path / "out", n=2, top_k=8, clean_config=impossible, batch_size=2, max_rounds=1,
                       log=lambda s: None)  # fmt: skip
    assert not (tmp_path / "out").exists()  # nothing half-written
