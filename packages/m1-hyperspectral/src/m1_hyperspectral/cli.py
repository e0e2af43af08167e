"""``m1-hyperspectral``: data synth, train, sample, extract, classify, evaluate."""

# Import rule (gencore.cli's module comment; tests/test_imports.py): no torch at the top, this package's
# config.py included; command bodies import what they run.

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gencore.cli import (
    FINITE,
    SEED,
    ConfigFlag,
    Group,
    config_from_options,
    config_options,
    device_option,
    resolve_device,
    run_fit,
    training_options,
)
from gencore.errors import ConfigError
from gencore.results import write_json
from m1_hyperspectral.cli_import import import_original
from m1_hyperspectral.config import PRESETS, M1RunConfig

CUBE_KEY = click.option("--cube-key", default=None, help="Variable/dataset name of the cube [default: detected].")
GT_KEY = click.option("--gt-key", default=None, help="Variable/dataset name of the ground truth [default: detected].")


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="m1-hyperspectral")
def main() -> None:
    """M1 (Kingma et al. 2014) on hyperspectral pixels: train on all pixels, extract latent features, classify."""


@main.group(cls=Group)
def data() -> None:
    """Make the embedded synthetic scene."""


@data.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="scene.h5", show_default=True)
@click.option("--height", type=click.IntRange(2, 4096), default=96, show_default=True)
@click.option("--width", type=click.IntRange(2, 4096), default=96, show_default=True)
@click.option("--bands", type=click.IntRange(2, 2000), default=100, show_default=True, help="From 400 to 2500 nm.")
@click.option("--endmembers", type=click.IntRange(1, 6), default=5, show_default=True, help="Materials = classes.")
@click.option("--scale", type=FINITE, default=24.0, show_default=True, help="Perlin cell size in pixels.")
@click.option("--sharpness", type=FINITE, default=6.0, show_default=True, help="Larger = purer patches.")
@click.option("--noise-std", type=FINITE, default=0.005, show_default=True, help="Reflectance noise.")
@click.option("--seed", type=SEED, default=0, show_default=True)
def synth(output: str, **options: Any) -> None:
    """Write a synthetic scene (cube, ground truth, wavelengths, endmembers, abundances) as HDF5, plus a preview PNG.

    How it is made is in the package README ("The embedded scene").
    """
    from m1_hyperspectral.config import SynthConfig
    from m1_hyperspectral.plots import preview_scene
    from m1_hyperspectral.synth import make_scene, save_scene

    config = SynthConfig(**options)
    scene = make_scene(config)
    save_scene(scene, output, config)
    png = preview_scene(scene.cube, scene.gt, scene.wavelengths, Path(output).with_suffix(".png"))
    labeled = int((scene.gt > 0).sum())
    click.echo(
        f"wrote {output} ({config.height}x{config.width} pixels, {config.bands} bands, {config.endmembers} classes: "
        f"{', '.join(scene.names)}; {labeled} labeled pixels) and {png}"
    )


@main.command()
@click.argument("data_files", nargs=-1, type=click.Path())
@training_options("runs/m1-hyperspectral")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default=None,
              help="original: the schedule of the original gpulearn_z_x.py (an evaluation every 10 epochs, patience "
              "1001 evaluations, its hook.txt and auto-named run directory under --output-dir); --config, --set "
              "and the flags apply on top [default: none, updates as steps].")  # fmt: skip
@CUBE_KEY
@GT_KEY
@config_options(
    M1RunConfig,
    "model.likelihood",
    ConfigFlag("--patience", "train.patience", type=click.IntRange(min=1),
               help="Stop after this many evaluations (every 10 steps; every 10 epochs with --preset original) "
               "without a better validation log-likelihood (train.patience) [default: 100; the paper's code "
               "stopped at its 1001st, i.e. 1001]."),
    ConfigFlag("--latent", "model.latent", type=click.IntRange(min=1)), "optim.lr",
    "data.binarize", "log.hook_txt", "log.auto_name", "log.comment",
)  # fmt: skip
def train(data_files: tuple[str, ...], **options: Any) -> None:
    """Train M1 on every pixel of DATA_FILES (.mat v5/v7.3, .h5, .npy), or on the embedded synthetic scene.

    Prints every 10 steps (once per evaluation with --preset original): step, elapsed seconds, training batch
    ELBO, validation log-likelihood and the number of evaluations without improvement; the same columns go to
    metrics.csv (and TensorBoard). Writes samples/ (sampled vs real spectra, the decoded scene), losses.png,
    checkpoints/ and model/ (the best validation weights, with the band normalisation) into the run directory,
    and with --hook-txt the original's hook.txt.
    """
    from m1_hyperspectral.train import run_training

    preset = options.pop("preset")
    options["base"] = PRESETS[preset] if preset else ()  # under --config, --set and the flags
    options["flags"] = {
        "data.paths": list(data_files) or None, "data.cube_key": options.pop("cube_key"),
        "data.gt_key": options.pop("gt_key"),
    }  # fmt: skip
    config, resume = config_from_options(M1RunConfig, options)
    run_fit(lambda: run_training(config, resume))


def _load(run: str, device: str):  # noqa: ANN202 - (M1, M1RunConfig | None)
    """The model of RUN (a run directory or a model directory) on ``--device``, and the run's config when there
    is one."""
    from m1_hyperspectral.pipeline import load_model

    return load_model(run, resolve_device(device))


def _pixels(run: str, data_files: tuple[str, ...], cube_key: str | None, gt_key: str | None, device: str):  # noqa: ANN202
    """(model, pixels, run config) for DATA_FILES, or for the run's own data when none are given."""
    from m1_hyperspectral.pipeline import pixels_of

    model, config = _load(run, device)
    return model, pixels_of(list(data_files), config, cube_key, gt_key, where=run), config


@main.command()
@click.argument("run", type=click.Path())
@click.option("-n", "--num", type=click.IntRange(1, 100000), default=8, show_default=True, help="Spectra.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="spectra.png", show_default=True)
@click.option("--npy", type=click.Path(dir_okay=False), default=None, help="Also save the spectra (N, bands) here.")
@device_option
def sample(run: str, num: int, seed: int, output: str, npy: str | None, device: str) -> None:
    """Draw NUM spectra from RUN's model (z ~ N(0, I), the mean of p(x|z), raw units) and plot them."""
    import numpy as np
    import torch

    from gencore.checkpoint import atomic_file
    from gencore.fileio import check_output_target
    from gencore.viz import check_image_outputs
    from m1_hyperspectral.plots import save_tensor_image, spectra_figure
    from m1_hyperspectral.train import prepare_data

    check_image_outputs([output])
    if npy:
        check_output_target(npy, "npy")
    model, config = _load(run, device)
    with torch.no_grad():
        fake = model.sample(num, torch.Generator().manual_seed(seed)).cpu()
    wavelengths, real = None, fake[:0]
    if config is not None:  # real spectra of the run's validation pixels for comparison
        prep = prepare_data(config)
        wavelengths = prep.scenes[0].wavelengths
        real = torch.from_numpy(prep.pixels.spectra[prep.valid[: min(num, 16)]])
    save_tensor_image(spectra_figure(real, fake[:16], wavelengths, f"{num} samples from {run}"), output)
    if npy:
        with atomic_file(npy) as tmp:
            np.save(tmp, fake.numpy())
    click.echo(f"wrote {output}" + (f" and {npy}" if npy else ""))


@main.command()
@click.argument("run", type=click.Path())
@click.argument("data_files", nargs=-1, type=click.Path())
@click.option("-o", "--output", type=click.Path(), default="features.h5", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["h5", "npy"]), default=None,
              help="h5 = one file, npy = a folder of .npy files [default: from the output's suffix].")  # fmt: skip
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the sampled features z.")
@click.option("--overwrite", is_flag=True,
              help="Replace an earlier output of extract at OUTPUT (anything else there is never replaced).")
@click.option("--variance", is_flag=True,
              help="Also write var = exp(logvar), the variance of q(z|x) (recorded in the output's list of arrays).")
@CUBE_KEY
@GT_KEY
@click.option("--batch-size", type=click.IntRange(1, 10_000_000), default=8192, show_default=True,
              help="Pixels per model call (the results do not depend on it).")  # fmt: skip
@device_option
def extract(run: str, data_files: tuple[str, ...], output: str, fmt: str | None, seed: int, overwrite: bool,
            variance: bool, batch_size: int, device: str, **keys: Any) -> None:  # fmt: skip
    """Latent features of every pixel of DATA_FILES (default: the run's data) with RUN's model.

    Writes mean and logvar of q(z|x) (with --variance also var), a sampled z = mean + std·eps, labels
    (0 = unlabeled) and pixel coordinates (file index, row, column). An existing OUTPUT is refused unless it is
    an earlier output of extract and --overwrite is given; then it is replaced whole, atomically.
    """
    from m1_hyperspectral.features import check_features_output, extract_features, feature_format, save_features

    fmt = feature_format(output, fmt)
    check_features_output(output, fmt, overwrite, data_files)  # before minutes of work, not after
    model, pixels, _ = _pixels(run, data_files, keys["cube_key"], keys["gt_key"], device)
    features = extract_features(model, pixels, seed, batch_size, variance=variance)
    path = save_features(features, pixels.files, output, fmt, overwrite)
    labeled = int((pixels.labels > 0).sum())
    click.echo(f"wrote {path}: {len(pixels)} pixels x {model.config.latent} latent units ({labeled} labeled)")


@main.command()
@click.argument("run", type=click.Path())
@click.argument("data_files", nargs=-1, type=click.Path())
@click.option("--labels-per-class", default="5,10,50", show_default=True, help="Comma-separated values of N.")
@click.option("--repeats", type=click.IntRange(1, 100), default=5, show_default=True, help="Random splits per N.")
@click.option("--classifier", type=click.Choice(["logreg", "svm"]), default="logreg", show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seed of the splits (seed + repeat) and of the sampled z.")
@click.option("--z", "z_kind", type=click.Choice(["mean", "sample"]), default="mean", show_default=True,
              help="M1 features: the posterior mean, or z sampled from q(z|x) once per pixel (noise of --seed), "
              "as the original's M1+M2 drew its inputs.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="JSON results [default: RUN/classify.json for a run directory].")  # fmt: skip
@CUBE_KEY
@GT_KEY
@click.option("--batch-size", type=click.IntRange(1, 10_000_000), default=8192, show_default=True,
              help="Pixels per model call (the results do not depend on it).")  # fmt: skip
@device_option
def classify(run: str, data_files: tuple[str, ...], labels_per_class: str, repeats: int, classifier: str,
             seed: int, z_kind: str, output: str | None, batch_size: int, device: str,
             **keys: Any) -> None:  # fmt: skip
    """Linear classifier with N labels per class on M1 features (posterior mean, or sampled z) vs raw spectra:
    OA, AA, kappa."""
    import torch

    from m1_hyperspectral.classify import TABLE_HEADER, compare
    from m1_hyperspectral.features import extract_features

    try:
        per_class = [int(v) for v in labels_per_class.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(
            f"--labels-per-class must be integers separated by commas, got {labels_per_class!r}"
        ) from None
    if not per_class or min(per_class) < 1:
        raise ConfigError("--labels-per-class needs positive integers")
    model, pixels, _ = _pixels(run, data_files, keys["cube_key"], keys["gt_key"], device)
    labeled = pixels.labels > 0
    if not labeled.any():
        raise ConfigError("the data has no ground truth (no labeled pixels): nothing to classify")
    features = extract_features(model, pixels.subset(labeled.nonzero()[0]), seed, batch_size)
    raw = model.normalize(torch.from_numpy(pixels.spectra[labeled]).to(model.band_min.device)).cpu().numpy()
    click.echo(TABLE_HEADER)
    name = "M1 features" if z_kind == "mean" else "M1 features (sampled z)"
    m1 = features["mean"] if z_kind == "mean" else features["z"]
    rows = compare({name: m1, "raw spectra": raw}, pixels.labels[labeled], per_class,
                   repeats, classifier, seed, progress=click.echo)  # fmt: skip
    out = Path(output) if output else (Path(run) / "classify.json" if (Path(run) / "model").is_dir() else None)
    if out is not None:
        write_json(out, {"classifier": classifier, "z": z_kind, "seed": seed, "files": pixels.files, "rows": rows})
        click.echo(f"wrote {out}")


@main.command()
@click.argument("run", type=click.Path())
@click.option("-k", "--samples", "k", type=click.IntRange(1, 100000), default=100, show_default=True,
              help="Importance samples K of the IW bound.")  # fmt: skip
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="JSON results [default: RUN/evaluation.json].")  # fmt: skip
@click.option("--batch-size", type=click.IntRange(1, 10_000_000), default=512, show_default=True,
              help="Pixels per model call (the results do not depend on it).")  # fmt: skip
@device_option
def evaluate(run: str, k: int, seed: int, output: str | None, batch_size: int, device: str) -> None:
    """Test-split ELBO, K-sample importance-weighted log-likelihood and active units of RUN (a run directory)."""
    import torch

    from m1_hyperspectral.evaluate import evaluate_model
    from m1_hyperspectral.train import prepare_data

    model, config = _load(run, device)
    if config is None:
        raise ConfigError(f"{run} is not a run directory: evaluate needs the run's test split")
    prep = prepare_data(config)
    if len(prep.test) == 0:
        raise ConfigError("the run has no test pixels (data.test_fraction = 0)")
    x = model.normalize(torch.from_numpy(prep.pixels.spectra[prep.test]).to(model.band_min.device))
    metrics = evaluate_model(model, x, k, seed, batch_size)
    for key, value in metrics.items():
        click.echo(f"{key:>13}: {value:.4f}" if isinstance(value, float) else f"{key:>13}: {value}")
    out = Path(output) if output else Path(run) / "evaluation.json"
    write_json(out, metrics)
    click.echo(f"wrote {out}")


main.add_command(import_original)
