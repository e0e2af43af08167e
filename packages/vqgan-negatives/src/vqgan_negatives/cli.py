"""``vqgan-negatives``: data render, noise, train-vqgan, train-transformer, sample, experiment, make-negatives."""

# Import rule (gencore.cli's module comment; tests/test_imports.py): no torch at the top, this package's
# config.py included; command bodies import what they run.

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from gencore.cli import (
    FINITE,
    SEED,
    ConfigFlag,
    Group,
    add_alias,
    config_from_options,
    config_options,
    device_option,
    resolve_device,
    run_fit,
    training_options,
)
from gencore.errors import ConfigError, DataError
from gencore.results import write_json
from vqgan_negatives.cli_import import import_taming
from vqgan_negatives.config import TransformerRunConfig, VQGANConfig


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vqgan-negatives")
def main() -> None:
    """VQGAN + conditional transformer that turn Perlin-noise images into molecule look-alikes (hard negatives)."""


def perlin_options(fn):
    """``--perlin-scale --perlin-octaves --perlin-persistence --perlin-lacunarity --perlin-seed --contrast
    --threshold``."""
    opts = [
        click.option("--perlin-scale", "scale", type=click.FloatRange(min=0, min_open=True), default=16.0,
                     show_default=True, help="Pixels per lattice cell of the first octave (bigger blobs)."),
        click.option("--perlin-octaves", "octaves", type=click.IntRange(1, 12), default=3, show_default=True),
        click.option("--perlin-persistence", "persistence", type=FINITE, default=0.5, show_default=True,
                     help="Amplitude factor per octave."),
        click.option("--perlin-lacunarity", "lacunarity", type=click.FloatRange(min=0, min_open=True), default=2.0,
                     show_default=True, help="Frequency factor per octave."),
        click.option("--perlin-seed", "perlin_seed", type=SEED, default=0, show_default=True,
                     help="Seed of the first image; image i uses seed + i."),
        click.option("--contrast", type=FINITE, default=2.0, show_default=True,
                     help="The field is multiplied by this before clipping to [-1, 1]."),
        click.option("--threshold", type=FINITE, default=None,
                     help="Make binary images: ink where the contrasted field is below this [default: off]."),
    ]  # fmt: skip
    for option in reversed(opts):
        fn = option(fn)
    return fn


def _perlin_params(options: dict[str, Any]):
    from vqgan_negatives.data import PerlinParams

    return PerlinParams(
        scale=options.pop("scale"), octaves=options.pop("octaves"), persistence=options.pop("persistence"),
        lacunarity=options.pop("lacunarity"), seed=options.pop("perlin_seed"), contrast=options.pop("contrast"),
        threshold=options.pop("threshold"),
    )  # fmt: skip


# --- data ------------------------------------------------------------------------------------------------------


@main.group(cls=Group)
def data() -> None:
    """Training data and conditioning images."""


@data.command("render")
@click.option("-o", "--output", type=click.Path(file_okay=False), default="data/molecules", show_default=True)
@click.option("-n", "--num", type=click.IntRange(1, 100000), default=2000, show_default=True)
@click.option("--size", type=click.IntRange(16, 1024), default=64, show_default=True, help="Side in pixels.")
@click.option("--line-width", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Bond line width in output pixels.")  # fmt: skip
@click.option("--max-rotation", type=click.FloatRange(0, 180), default=180.0, show_default=True,
              help="Random rotation in [-x, x] degrees.")  # fmt: skip
@click.option("--atom-labels/--no-atom-labels", default=True, show_default=True)
@click.option("--colour", is_flag=True, help="RDKit's coloured atom palette instead of black and white.")
@click.option("--seed", type=SEED, default=0, show_default=True)
def data_render(output: str, num: int, size: int, seed: int, **options: Any) -> None:
    """Render NUM molecules from RDKit's shipped SMILES (NCI set) to OUTPUT/*.png plus index.csv."""
    from vqgan_negatives.config import RenderConfig
    from vqgan_negatives.data import write_molecule_folder

    render = RenderConfig(size=size, **options)
    out = write_molecule_folder(output, num, render, seed)
    click.echo(f"wrote {num} molecule images and index.csv to {out}")


add_alias(data, data_render, "make", "data render")


@main.command("noise")
@click.option("-o", "--output", type=click.Path(file_okay=False), default="data/conditioning", show_default=True)
@click.option("-n", "--num", type=click.IntRange(1, 100000), default=16, show_default=True)
@click.option("--size", type=click.IntRange(8, 2048), default=64, show_default=True)
@click.option("--kind", type=click.Choice(["perlin", "gaussian"]), default="perlin", show_default=True)
@perlin_options
def noise(output: str, num: int, size: int, kind: str, **options: Any) -> None:
    """Write NUM conditioning images (Perlin with the given properties, or Gaussian) and a grid.png."""
    from gencore.viz import save_image_grid
    from vqgan_negatives.data import gaussian_images, perlin_images, save_tensor_image

    params = _perlin_params(options)
    images = perlin_images(num, size, params) if kind == "perlin" else gaussian_images(num, size, params.seed)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        save_tensor_image(img, out / f"{kind}_{i:05d}.png")
    save_image_grid(images[:64] * 0.5 + 0.5, out / "grid.png")
    click.echo(f"wrote {num} {kind} images and grid.png to {out}")


add_alias(data, noise, "perlin", "noise")


# --- training --------------------------------------------------------------------------------------------------


_DATA = ConfigFlag("--data", "data.source", metavar="SOURCE",
                   help="molecules (default: RDKit renders) | an image folder (data.source).")
_NUM_IMAGES = ConfigFlag("--num-images", "data.num_images", type=click.IntRange(min=2))


@main.command("train-vqgan")
@training_options("runs/vqgan-negatives/vqgan")
@config_options(
    VQGANConfig, _DATA, _NUM_IMAGES,
    ConfigFlag("--image-size", ("model.resolution", "data.render.size"),
               help="Training resolution (model.resolution, data.render.size) [default: 64]."),
    ConfigFlag("--codebook-size", "model.quantizer.codebook_size", type=click.IntRange(min=2)),
    ConfigFlag("--codebook-dim", "model.quantizer.codebook_dim", type=click.IntRange(min=1)),
    ConfigFlag("--codebook-ema", "model.quantizer.ema", aliases=("--ema",)),
    "model.quantizer.kmeans_init", "model.quantizer.restart_dead",
    ConfigFlag("--l2-codes", "model.quantizer.l2_normalize"),
    ConfigFlag("--disc-start", "loss.disc_start", type=click.IntRange(min=0)), "loss.perceptual",
    "optim.lr_g", "optim.lr_d",
)  # fmt: skip
def train_vqgan(**options: Any) -> None:
    """Train the first stage (VQGAN); writes samples/, metrics.csv, checkpoints/ and model/vqgan.

    Every option is also a config key (see the README), e.g. --set model.ch=32.
    """
    from vqgan_negatives.train import run_training

    config, resume = config_from_options(VQGANConfig, options)
    if config.model.in_channels != config.data.channels:
        raise ConfigError(f"model.in_channels ({config.model.in_channels}) != data.channels ({config.data.channels})")
    run_fit(lambda: run_training(config, resume))


add_alias(main, train_vqgan, "train", "train-vqgan")


@main.command("train-transformer")
@training_options("runs/vqgan-negatives/transformer")
@config_options(
    TransformerRunConfig, ConfigFlag("--vqgan", "vqgan", metavar="RUN"), _DATA, _NUM_IMAGES, "optim.lr",
)  # fmt: skip
def train_transformer(**options: Any) -> None:
    """Train the conditional prior over the codes of a trained VQGAN; writes model/gpt and model/vqgan."""
    from vqgan_negatives.train_transformer import run_training

    config, resume = config_from_options(TransformerRunConfig, options)
    run_fit(lambda: run_training(config, resume))


# --- generation ------------------------------------------------------------------------------------------------


def _on_device(pipe, device: str):  # noqa: ANN001, ANN202 - a sample.Pipeline, moved in place
    """A loaded pipeline (first stage and prior) moved to ``--device``."""
    where = resolve_device(device)
    pipe.vq.to(where)
    pipe.gpt.to(where)
    return pipe


def _sampling_options(fn):
    opts = [
        click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True),
        click.option("--top-k", type=click.IntRange(min=0), default=100, show_default=True, help="0 = off."),
        click.option("--seed", type=SEED, default=0, show_default=True, help="Sampling seed."),
    ]
    for option in reversed(opts):
        fn = option(fn)
    return fn


@main.command()
@click.argument("run", type=click.Path())
@click.option("--condition", default="perlin", show_default=True, metavar="perlin|gaussian|image:PATH",
              help="Conditioning images; perlin takes the --perlin-* options.")  # fmt: skip
@click.option("-n", "--num", type=click.IntRange(1, 4096), default=16, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="samples.png", show_default=True,
              help="Grid PNG: conditioning images in odd rows, generated images below them.")  # fmt: skip
@click.option("--save-dir", type=click.Path(file_okay=False), default=None, help="Also write each image here.")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=64, show_default=True,
              help="Images per model call.")  # fmt: skip
@perlin_options
@_sampling_options
@device_option
def sample(run: str, condition: str, num: int, output: str, save_dir: str | None, batch_size: int, device: str,
           **options: Any) -> None:  # fmt: skip
    """Generate NUM images from RUN (a transformer run) given conditioning images."""
    import torch

    from gencore.viz import check_image_outputs, save_dir_files, save_image_grid
    from vqgan_negatives.data import save_tensor_image
    from vqgan_negatives.negatives import parse_condition
    from vqgan_negatives.pipeline import NegativesPipeline

    params = _perlin_params(options)
    parse_condition(condition)  # a bad spec fails before the model is loaded
    check_image_outputs([output])
    each = save_dir_files(save_dir, [f"sample_{i:05d}.png" for i in range(num)]) if save_dir is not None else []
    pipe = NegativesPipeline.from_pretrained(run, resolve_device(device))
    cond = pipe.conditioning(condition, num, params)  # perlin:key=value,... wins over the --perlin-* defaults
    images = pipe.generate(cond, options["seed"], options["temperature"], options["top_k"] or None, batch_size).cpu()
    rows = [t for i in range(0, num, 8) for t in (cond[i : i + 8], images[i : i + 8])]
    save_image_grid(torch.cat(rows) * 0.5 + 0.5, output, nrow=8)
    if save_dir is not None:
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        for img, path in zip(images, each):
            save_tensor_image(img, path)
    click.echo(f"wrote {output}" + (f" and {num} images to {save_dir}" if save_dir else ""))


add_alias(main, sample, "generate", "sample")


def _real_images(source: str, pipe, num: int, seed: int):
    """Real molecules to compare against: rendered ("molecules") at the model's size, or a folder."""
    from vqgan_negatives.config import DataConfig
    from vqgan_negatives.data import load_training_images

    res, ch = pipe.vq.config.resolution, pipe.vq.config.in_channels
    return load_training_images(DataConfig(source=source, num_images=num, channels=ch), res, seed)


@main.command()
@click.option("--model", "models", multiple=True, required=True, metavar="RUN",
              help="Transformer run (repeat: data sets, training lengths).")  # fmt: skip
@click.option("--condition", "conditions", multiple=True, metavar="SPEC",
              help="perlin[:key=value,...] | gaussian | image:PATH (repeatable) "
                   "[default: perlin, perlin:threshold=0, perlin:scale=8,octaves=5, gaussian].")  # fmt: skip
@click.option("-n", "--num", type=click.IntRange(4, 4096), default=32, show_default=True, help="Images per cell.")
@click.option("-o", "--output", type=click.Path(file_okay=False), default="validation", show_default=True)
@click.option("--real", default="molecules", show_default=True, help="Reference molecules: molecules | a folder.")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=64, show_default=True,
              help="Images per model call, in generation (the samples depend on it, as in sample) and scoring.")
@_sampling_options
@device_option
def experiment(models: tuple[str, ...], conditions: tuple[str, ...], num: int, output: str, real: str,
               batch_size: int, device: str, **options: Any) -> None:  # fmt: skip
    """Compare models x conditioning kinds: OUTPUT/grid.png (rows: 4 conditions, 4 samples) and scores.csv."""
    from vqgan_negatives.negatives import parse_condition, run_experiment
    from vqgan_negatives.sample import load_pipeline

    conditions = conditions or ("perlin", "perlin:threshold=0", "perlin:scale=8,octaves=5", "gaussian")
    for spec in conditions:
        parse_condition(spec)  # bad specs fail before any model is loaded
    pipes = [_on_device(load_pipeline(m), device) for m in models]
    names = [p.name for p in pipes]
    for i, p in enumerate(pipes):  # distinct names in the table even for runs named alike
        if names.count(p.name) > 1:
            p.name = f"{Path(models[i]).parent.name}/{p.name}"
    reference = _real_images(real, pipes[0], 256, seed=12345)
    rows = run_experiment(pipes, conditions, reference, output, num, options["temperature"],
                          options["top_k"] or None, options["seed"], log=click.echo, batch_size=batch_size)  # fmt: skip
    eligible = [r for r in rows if r["pass_rate"] >= 0.5] or rows
    best = min(eligible, key=lambda r: r["kid"])
    click.echo(f"best: {best['model']} with {best['condition']} (kid {best['kid']}, pass rate {best['pass_rate']})")
    click.echo(f"wrote {Path(output) / 'grid.png'} and {Path(output) / 'scores.csv'}")


@main.command("make-negatives")
@click.argument("run", type=click.Path())
@click.option("-n", "--num", type=click.IntRange(1, 100000), default=400, show_default=True)
@click.option("-o", "--output", type=click.Path(file_okay=False), default="synthetic_dataset", show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 4096), default=64, show_default=True)
@click.option("--min-ink", type=FINITE, default=None, help="Reject below this ink fraction [default: 0.01].")
@click.option("--max-ink", type=FINITE, default=None, help="Reject above this ink fraction [default: 0.45].")
@click.option("--max-isolated", type=FINITE, default=None, help="Reject above this speckle fraction [default: 0.25].")
@click.option("--min-train-distance", type=FINITE, default=None,
              help="Reject closer than this to a training image [default: 0.08].")  # fmt: skip
@click.option("--max-hash-distance", type=int, default=None,
              help="Near-duplicate within this many hash bits [default: 24].")  # fmt: skip
@click.option("--classifier", type=click.Path(), default=None,
              help="Molecule classifier (classifier-study output, e.g. .../ordinary): reject images it scores "
                   "above --max-molecule-score as real molecules.")  # fmt: skip
@click.option("--max-molecule-score", type=FINITE, default=None, help="[default: 0.5]")
@click.option("--condition", default="perlin", show_default=True, metavar="SPEC",
              help="Conditioning images: perlin (the --perlin-* options) | perlin:key=value,... | gaussian | "
                   "image:PATH (a file or a folder, cycled); recorded per image in manifest.csv.")  # fmt: skip
@click.option("--overwrite", is_flag=True,
              help="Replace an earlier make-negatives output at OUTPUT (a folder holding anything else is refused).")
@perlin_options
@_sampling_options
@device_option
def make_negatives(run: str, num: int, output: str, batch_size: int, condition: str, overwrite: bool, device: str,
                   **options: Any) -> None:  # fmt: skip
    """Generate from conditioning images (Perlin by default) with RUN, clean, write exactly NUM images +
    manifest.csv to OUTPUT.

    OUTPUT must be new or empty, or an earlier output of make-negatives with --overwrite (replaced whole,
    atomically); a folder with anything else in it is refused untouched.
    """
    from dataclasses import replace

    from gencore.checkpoint import check_output_dir
    from vqgan_negatives.negatives import PRODUCER

    check_output_dir(output, PRODUCER, overwrite)  # before minutes of sampling, not after
    from vqgan_negatives.negatives import parse_condition

    parse_condition(condition)  # a bad spec fails before the model is loaded

    from gencore.config import from_dict
    from vqgan_negatives.clean import CleanConfig
    from vqgan_negatives.config import TransformerRunConfig
    from vqgan_negatives.data import load_training_images
    from vqgan_negatives.negatives import make_negatives as run_make
    from vqgan_negatives.sample import load_pipeline

    params = _perlin_params(options)
    thresholds = {k: options.pop(k) for k in ("min_ink", "max_ink", "max_isolated", "min_train_distance",
                                               "max_hash_distance", "max_molecule_score")}  # fmt: skip
    classifier_dir = options.pop("classifier")
    clean_config = replace(CleanConfig(), **{k: v for k, v in thresholds.items() if v is not None})
    pipe = _on_device(load_pipeline(run), device)
    run_config_file = Path(run) / "config.json"
    training = None
    if run_config_file.is_file():  # the prior's own training images, for the memorisation filter
        try:
            cfg = from_dict(TransformerRunConfig, json.loads(run_config_file.read_text(encoding="utf-8-sig")))
        except (ValueError, ConfigError) as exc:
            raise DataError(f"{run_config_file}: {exc}") from None
        training = load_training_images(cfg.data, pipe.vq.config.resolution, cfg.train.seed)
    else:
        click.echo("warning: no run config.json next to the model: the memorisation filter is off", err=True)
    scorer = None
    if classifier_dir:
        from vqgan_negatives.classifier import MoleculeClassifier

        where = str(next(pipe.gpt.parameters()).device)
        scorer = MoleculeClassifier.from_pretrained(classifier_dir, map_location=where).score
    counts = run_make(pipe, output, num, params, options["temperature"], options["top_k"] or None, options["seed"],
                      clean_config, training, scorer, batch_size=batch_size, log=click.echo,
                      overwrite=overwrite, condition=condition)  # fmt: skip
    rejected = {k: v for k, v in counts.items() if k not in ("kept", "surplus")}
    click.echo(f"wrote {num} images, manifest.csv and preview.png to {output} (rejected: {rejected or 'none'})")


add_alias(main, make_negatives, "sample-clean", "make-negatives")


@main.command("classifier-study")
@click.option("--negatives", type=click.Path(), default="synthetic_dataset", show_default=True,
              help="Hard negatives (make-negatives output).")  # fmt: skip
@click.option("--heldout-model", default=None, metavar="RUN",
              help="Also measure the false-positive rate on images of this transformer run or checkpoint "
                   "(another run than the one that made --negatives), with Perlin seeds 1,000,000 on.")  # fmt: skip
@click.option("-o", "--output", type=click.Path(file_okay=False), default="runs/vqgan-negatives/classifier-study",
              show_default=True)  # fmt: skip
@click.option("--n-train", type=click.IntRange(16, 100000), default=1200, show_default=True,
              help="Training images per class.")  # fmt: skip
@click.option("--n-test", type=click.IntRange(8, 100000), default=400, show_default=True)
@click.option("--steps", type=click.IntRange(1, 100000), default=600, show_default=True,
              help="Updates per classifier (at 300, B was unstable across seeds; see the README).")  # fmt: skip
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated training seeds.")
@click.option("--size", type=click.IntRange(16, 512), default=64, show_default=True)
@device_option
def classifier_study_cmd(negatives: str, heldout_model: str | None, output: str, n_train: int, n_test: int,
                         steps: int, seeds: str, size: int, device: str) -> None:  # fmt: skip
    """Train a molecule-vs-not classifier with and without the hard negatives; report accuracy and FPRs."""
    import torch

    from gencore.viz import save_image_grid
    from vqgan_negatives.classifier import classifier_study, fake_skeletons, load_negatives_folder
    from vqgan_negatives.data import PerlinParams
    from vqgan_negatives.sample import conditioning_images, generate, load_pipeline

    try:
        seed_list = tuple(int(s) for s in seeds.split(","))
    except ValueError:
        raise ConfigError(f"--seeds expects comma-separated integers, got {seeds!r}") from None
    hard = load_negatives_folder(negatives, size)
    heldout = {}
    if heldout_model:
        pipe = _on_device(load_pipeline(heldout_model), device)
        cond = conditioning_images("perlin", n_test, pipe.vq.config.resolution, pipe.vq.config.in_channels,
                                   PerlinParams(seed=1_000_000))  # fmt: skip
        images = generate(pipe.vq, pipe.gpt, cond, seed=1_000_000).cpu()
        heldout["other_generator_run"] = torch.nn.functional.interpolate(images, size=size, mode="area")
    out = Path(output)
    result = classifier_study(hard, size, heldout, n_train, n_test, steps, seed_list, log=click.echo, save_dir=out,
                              device=resolve_device(device))  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "study.json", result)
    examples = [hard[:8], fake_skeletons(8, size, seed=505), *[v[:8] for v in heldout.values()]]
    save_image_grid(torch.cat(examples) * 0.5 + 0.5, out / "lookalikes.png", nrow=8)
    for name, row in result["mean"].items():
        click.echo(f"{name:>20}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
    click.echo(f"wrote {out / 'study.json'} and {out / 'lookalikes.png'} (rows: hard negatives, fake skeletons, ...)")


main.add_command(import_taming)
