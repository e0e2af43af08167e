"""``dcgan-tutorial``: train, sample, evaluate, stylize, collapse-demo."""

# Import rule (gencore.cli's module comment; tests/test_imports.py): no torch at the top, this package's
# config.py included; command bodies import what they run.

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dcgan_tutorial.config import GANConfig
from gencore.cli import (
    FINITE,
    SEED,
    ConfigFlag,
    Group,
    config_from_options,
    config_options,
    device_option,
    inception_weights_option,
    resolve_device,
    run_fit,
    training_options,
)
from gencore.errors import ConfigError
from gencore.results import read_json, write_json


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dcgan-tutorial")
def main() -> None:
    """The classic GAN/DCGAN lesson: train GANs with the lesson's tips, watch mode collapse, transfer style."""


@main.command()
@training_options("runs/dcgan-tutorial")
@config_options(
    GANConfig,
    ConfigFlag("--model", "model.kind"),
    ConfigFlag("--data", "data.source", metavar="SOURCE",
               help="textures (default) | faces | photos | an image folder | mnist:ROOT, fashionmnist:ROOT, "
               "cifar10:ROOT, celeba:ROOT (files already on disk) (data.source)."),
    "model.image_size",
    ConfigFlag("--channels", "model.channels", type=click.Choice(["1", "3"]), convert=int),
    "tips.loss", "optim.lr_g", "optim.lr_d",
    ConfigFlag("--label-smoothing", "tips.real_label", metavar="REAL_LABEL"),
    "tips.instance_noise", "tips.d_skip_below",
    ConfigFlag("--ema", "optim.ema_decay"),
)  # fmt: skip
def train(**options: Any) -> None:
    """Train a GAN; writes samples/, metrics.csv, losses.png, checkpoints/ and model/ into the run directory.

    Every option is also a config key (see the package README), e.g. --set tips.instance_noise_steps=500.
    """
    from dcgan_tutorial.train import run_training

    config, resume = config_from_options(GANConfig, options)
    run_fit(lambda: run_training(config, resume))


def _generator(path: str, device: Any = "cpu"):
    from dcgan_tutorial.pipeline import load_generator

    return load_generator(path, device)


@main.command()
@click.argument("run", type=click.Path())
@click.option("-n", "--num", type=click.IntRange(1, 4096), default=64, show_default=True, help="Images.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="samples.png", show_default=True)
@click.option("--save-dir", type=click.Path(file_okay=False), default=None,
              help="Also write each image as DIR/000000.png ... (for external FID tools).")  # fmt: skip
@click.option("--batch-size", type=click.IntRange(1, 65536), default=256, show_default=True,
              help="Images per generator call (the images do not depend on it).")  # fmt: skip
@device_option
def sample(run: str, num: int, seed: int, output: str, save_dir: str | None, batch_size: int, device: str) -> None:
    """Write a grid of NUM generated images from RUN (a run directory or a model/generator directory)."""
    from dcgan_tutorial.pipeline import to_pil
    from dcgan_tutorial.train import generate
    from gencore.viz import check_image_outputs, save_dir_files, save_image_grid

    check_image_outputs([output])
    each = save_dir_files(save_dir, [f"{i:06d}.png" for i in range(num)]) if save_dir is not None else []
    where = resolve_device(device)
    images = generate(_generator(run, where), num, seed, where, batch_size).cpu()
    click.echo(f"wrote {save_image_grid(images * 0.5 + 0.5, output)}")
    if save_dir is not None:
        folder = Path(save_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for image, path in zip(to_pil(images), each):
            image.save(path)
        click.echo(f"wrote {num} images to {folder}")


@main.command()
@click.argument("run", type=click.Path())
@click.option(
    "-n",
    "--num",
    type=click.IntRange(16, 20000),
    default=1000,
    show_default=True,
    help="Generated images (and at most as many held-out real ones).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to write evaluation.json (evaluation_inception.json) and the sample grid [default: RUN/eval].",
)
@click.option("--seed", type=SEED, default=1, show_default=True, help="Seed of the generated images' noise.")
@click.option("--batch-size", type=click.IntRange(1, 65536), default=256, show_default=True,
              help="Images per generator call (the figures do not depend on it).")  # fmt: skip
@click.option("--features", type=click.Choice(["net", "inception"]), default="net", show_default=True,
              help="net: the feature network trained here on the run's data; inception: standard FID/KID on "
              "Inception v3 from --inception-weights or the torch hub cache (never downloaded).")  # fmt: skip
@inception_weights_option
@device_option
def evaluate(run: str, num: int, output: str | None, seed: int, batch_size: int, device: str, features: str = "net",
             inception_weights: str | None = None) -> None:  # fmt: skip
    """Fréchet distance and KID of RUN's generator against held-out real images, with the real-vs-real floor.

    --features inception gives the standard FID on Inception v3 features (a weight file on disk, see the README).
    """
    from dcgan_tutorial.config import GANConfig
    from dcgan_tutorial.diagnostics import image_diagnostics, real_floor
    from dcgan_tutorial.train import generate, load_or_train_feature_net, prepare_data
    from gencore.config import from_dict
    from gencore.viz import save_image_grid

    if inception_weights is not None and features != "inception":
        raise ConfigError("--inception-weights is only read with --features inception")
    run_dir = Path(run)
    if not (run_dir / "config.json").is_file():
        raise ConfigError(f"{run} is not a run directory (no config.json)")
    config = from_dict(GANConfig, read_json(run_dir / "config.json"))
    where = resolve_device(device)
    if features == "inception":  # before any work: a missing weight file fails at once
        from gencore.inception import load_inception

        inception = load_inception(inception_weights, where)
    train_set, holdout = prepare_data(config)
    if features == "net":
        net = load_or_train_feature_net(run_dir, train_set, config, save=True, device=where)
    generator = _generator(run, where)
    fake = generate(generator, num, seed=seed, device=where, batch_size=batch_size)
    real = holdout.images[:num]
    if features == "inception":
        from dcgan_tutorial.diagnostics import inception_diagnostics

        metrics = inception_diagnostics(inception, fake, real, train_set.images[: len(real)])
        metrics["features"] = f"inception_v3 ({inception.source})"
    else:
        metrics = {**image_diagnostics(net, fake, real, len(train_set.classes)),
                   **real_floor(net, train_set.images[: len(real)], real)}  # fmt: skip
        metrics["fd_over_floor"] = metrics["fd"] / max(metrics["fd_floor"], 1e-12)
    metrics.update({"generated": num, "held_out_real": len(real), "data": config.data.source, "seed": seed})
    out = Path(output) if output else run_dir / "eval"
    out.mkdir(parents=True, exist_ok=True)
    result = out / ("evaluation_inception.json" if features == "inception" else "evaluation.json")
    write_json(result, metrics)
    save_image_grid(fake[:64].cpu() * 0.5 + 0.5, out / "samples.png")
    for key, value in metrics.items():
        click.echo(f"{key:>15}: {value:.4g}" if isinstance(value, float) else f"{key:>15}: {value}")
    click.echo(f"wrote {result} and {out / 'samples.png'}")


@main.command()
@click.argument("content", type=click.Path())
@click.argument("style", type=click.Path())
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="stylized.png", show_default=True)
@click.option("--size", type=click.IntRange(32, 1024), default=256, show_default=True, help="Longer side in px.")
@click.option("--steps", type=click.IntRange(1, 10000), default=300, show_default=True)
@click.option("--style-weight", type=FINITE, default=None, help="Style loss weight [default: per feature kind].")
@click.option("--content-weight", type=FINITE, default=1.0, show_default=True)
@click.option("--tv-weight", type=FINITE, default=None, help="Total-variation weight [default: per feature kind].")
@click.option(
    "--vgg-weights",
    type=click.Path(dir_okay=False),
    default=None,
    help="torchvision VGG19 (or VGG16) ImageNet weights file; default: the torch cache if present.",
)
@click.option("--init", type=click.Choice(["content", "noise"]), default="content", show_default=True,
              help="Start from the content image, or from noise (Gatys et al., the lesson's setting: slower).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random features and the --init noise.")
@device_option
def stylize(content: str, style: str, output: str, device: str, **options: Any) -> None:
    """Paint CONTENT in the style of STYLE (Gatys et al.): content + Gram-matrix style + total variation."""
    from dcgan_tutorial.style import stylize as run_stylize

    where = resolve_device(device)
    result = run_stylize(Path(content), Path(style), Path(output), **options, log=click.echo, device=where)
    click.echo(
        f"wrote {output} (features: {result['features']}, start: {result['init']}; "
        + ", ".join(f"{k} {result['first'][k]:.4g} -> {result['last'][k]:.4g}" for k in result["first"])
        + ")"
    )


@main.command("collapse-demo")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False), default="runs/collapse-demo", show_default=True)
@click.option("--steps", type=click.IntRange(100, 100000), default=2000, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
def collapse_demo(output_dir: str, steps: int, seed: int) -> None:
    """Train a collapsing and a healthy GAN on a ring of 8 Gaussians and show them side by side (collapse.png)."""
    from dcgan_tutorial.collapse import run_collapse_demo

    summary = run_collapse_demo(Path(output_dir), steps, seed, log=click.echo)
    for name, row in summary.items():
        click.echo(f"{name:>10}: modes covered {row['modes']}/8, high-quality samples {row['quality']:.0%}")
    click.echo(f"wrote {Path(output_dir) / 'collapse.png'}")
