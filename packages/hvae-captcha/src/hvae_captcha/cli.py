"""``hvae-captcha``: data make, train, sample, reconstruct, evaluate, inspect-config."""

# Import rule (gencore.cli's module comment; tests/test_imports.py): no torch at the top, this package's
# config.py included; command bodies import what they run.

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gencore.cli import (
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
from gencore.results import read_json, write_json
from hvae_captcha.cli_import import import_original
from hvae_captcha.config import PRESETS, HVAEConfig, parse_layers


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hvae-captcha")
def main() -> None:
    """A hierarchical VAE, built from a layer config, that generates CAPTCHA images."""


# --- data ----------------------------------------------------------------------------------------------------


@main.group(cls=Group)
def data() -> None:
    """Render the embedded CAPTCHA data set."""


@data.command("make")
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True, help="Folder to write PNGs to.")
@click.option("-n", "--num", type=click.IntRange(1, 10_000_000), default=1000, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--text-length", type=click.IntRange(1, 32), default=5, show_default=True)
@click.option("--alphabet", default=None, help="Characters to draw from [default: qwertyuiopasdfghjklzxcvbnm26].")
@click.option("--width", type=click.IntRange(8, 4096), default=200, show_default=True, help="Render width.")
@click.option("--height", type=click.IntRange(8, 4096), default=50, show_default=True, help="Render height.")
@click.option("--noise-dots", type=click.IntRange(0, 10_000), default=30, show_default=True)
@click.option("--no-curve", is_flag=True, help="Leave out the random arc.")
def data_make(output: str, num: int, seed: int, text_length: int, alphabet: str | None, width: int, height: int,
              noise_dots: int, no_curve: bool) -> None:  # fmt: skip
    """Render NUM CAPTCHAs into OUTPUT as <text>.png (the layout of the public CAPTCHA sets)."""
    from hvae_captcha.config import ORIGINAL_VOCABULARY, DataConfig
    from hvae_captcha.data import render_captchas, write_folder

    cfg = DataConfig(text_length=text_length, render_width=width, render_height=height, noise_dots=noise_dots,
                     noise_curve=not no_curve)  # fmt: skip
    images, texts, _ = render_captchas(cfg, alphabet or ORIGINAL_VOCABULARY, num, seed)
    paths = write_folder(Path(output), images, texts)
    click.echo(f"wrote {len(paths)} images ({width}×{height}) to {output}")


# --- train ---------------------------------------------------------------------------------------------------


def _preset_option(fn):  # noqa: ANN001, ANN202
    return click.option(
        "--preset", type=click.Choice(["compact", "original"]), default=None,
        help="Starting configuration: compact (default) or the original project's (3×50×250, latent 512, ~1.1e8 "
        "parameters); --config/--set apply on top.",
    )(fn)  # fmt: skip


# What the text-aware model turns on besides the text itself (README, "How the text-aware model came about": glyphs
# in the text map at every stage and an autoregressive prior over z_1 made the characters readable most often; with
# no KL warm-up the model used the text more, at a better likelihood).
CONDITIONED_DEFAULTS = ("model.text_glyphs=true", "model.text_map_every_stage=true", "model.ar_prior_levels=[1]",
                        "loss.kl_warmup_steps=0")  # fmt: skip
DEFAULT_RUN_DIR = "runs/hvae-captcha"


def _resumed_run_config(options: dict[str, Any]) -> dict[str, Any]:
    """The saved config.json of the run that ``--resume`` continues ({} when not resuming or there is none)."""
    resume = options.get("resume")
    if resume:
        run = Path(options.get("output_dir") or DEFAULT_RUN_DIR) if resume == "auto" else Path(resume).parent.parent
        if (run / "config.json").is_file():
            saved = read_json(run / "config.json")
            return saved if isinstance(saved, dict) else {}
    return {}


def _explicit_keys(options: dict[str, Any]) -> set[str]:
    """The dotted config keys that --set or the --config file give a value (before the options are consumed)."""
    from gencore.config import load_file

    keys = {o.split("=", 1)[0].strip() for o in options.get("overrides", ())}
    if options.get("config_file"):
        for section, table in load_file(options["config_file"]).items():
            if isinstance(table, dict):
                keys |= {f"{section}.{key}" for key in table}
    return keys


def _default_conditioned(preset: str, options: dict[str, Any]) -> bool | None:
    """Whether ``train`` without --conditioned/--unconditioned builds the text-aware model: the run's own choice
    when it resumes one, else yes for the compact preset unless a config file or --set says; None = leave it to
    the config (the original preset is unconditioned)."""
    saved = _resumed_run_config(options)
    if saved:
        model = saved.get("model", {})
        return bool(model.get("conditioned", False)) if isinstance(model, dict) else False
    said = "model.conditioned" in _explicit_keys(options)
    return True if preset == "compact" and not said else None


def _conditioned_option(fn):  # noqa: ANN001, ANN202
    return click.option(
        "--conditioned/--unconditioned", default=None,
        help="Text-aware (default for the compact preset): condition prior and decoder on the CAPTCHA text and its "
        "layout, with each character's glyph painted into the text map at every stage and an autoregressive prior "
        "over z1; sample without --text then draws texts from the run's text prior. --unconditioned: the plain "
        "HVAE of x (the original preset's default). A resumed run keeps what it was trained as.",
    )(fn)  # fmt: skip


def _conditioning_overrides(conditioned: bool | None) -> tuple[str, ...]:
    """The overrides --conditioned/--unconditioned stand for (under --config and --set: an explicit value wins)."""
    if conditioned is None:
        return ()
    return ("model.conditioned=true", *CONDITIONED_DEFAULTS) if conditioned else ("model.conditioned=false",)


def _layer_options(fn):  # noqa: ANN001, ANN202
    fn = click.option("--inner", default=None, metavar="LAYERS",
                      help='Inner blocks, e.g. "pool 2, conv 64; pool 2, conv 64" (";" between blocks, "" = none).'
                      )(fn)  # fmt: skip
    return click.option(
        "--outer", default=None, metavar="LAYERS", help='Outer block, e.g. "conv 32, pool 2, conv 64".'
    )(fn)


def _layer_flags(outer: str | None, inner: str | None) -> dict[str, Any]:
    """The config values of --outer/--inner (dotted key -> layer lists)."""
    out: dict[str, Any] = {}
    if outer is not None:
        out["model.outer_config"] = parse_layers(outer)[0]
    if inner is not None:
        out["model.inner_config"] = [b for b in parse_layers(inner) if b]
    return out


@main.command()
@training_options(DEFAULT_RUN_DIR)
@_preset_option
@_layer_options
@config_options(
    HVAEConfig,
    ConfigFlag("--data", "data.source", metavar="SOURCE",
               help="render (default: CAPTCHAs drawn by the captcha library) or a folder of <text>.png images "
               "(data.source)."),
    "model.likelihood", ConfigFlag("--latent-dim", "model.latent_dim", type=click.IntRange(min=1)), "optim.lr",
    ConfigFlag("--ema", "optim.ema_decay"), "data.keep_case",
    "data.label_rule",
)  # fmt: skip
@_conditioned_option
@click.option("--rgb", is_flag=True, default=None, help="Three colour channels instead of grey (the original).")
@click.option("--size", default=None, metavar="HxW", help="Model input size [default: 32x128].")
def train(**options: Any) -> None:
    """Train; writes config.json, metrics.csv, losses.png, samples/, checkpoints/ and model/ into the run directory.

    Every option is also a config key (see the package README), e.g. --set loss.free_bits=0.05. A text-aware
    model on a folder takes model.vocabulary and model.text_length from its file names unless they are set.
    """
    from hvae_captcha.train import infer_folder_text, run_training

    explicit = _explicit_keys(options)
    recorded = _resumed_run_config(options).get("model")
    recorded = recorded if isinstance(recorded, dict) else None

    size = options.pop("size")
    height = width = None
    if size is not None:
        try:
            height, width = (int(v) for v in size.lower().split("x"))
        except ValueError:
            raise ConfigError(f"--size expects HxW such as 32x128, got {size!r}") from None
    preset_name = options.pop("preset") or "compact"
    conditioned = options.pop("conditioned")
    if conditioned is None:
        conditioned = _default_conditioned(preset_name, options)
    options["flags"] = {
        "model.channels": 3 if options.pop("rgb") else None, "model.height": height, "model.width": width,
        **_layer_flags(options.pop("outer"), options.pop("inner")),
    }  # fmt: skip
    # the preset and what the text-aware model turns on sit under --config, which sits under --set and the flags
    options["base"] = (*PRESETS[preset_name], *_conditioning_overrides(conditioned))
    config, resume = config_from_options(HVAEConfig, options)
    notes: list[str] = []  # printed once the images have loaded
    config = infer_folder_text(config, explicit, recorded if resume else None, log=notes.append)
    run_fit(lambda: run_training(config, resume, notes))


# --- using a trained model -------------------------------------------------------------------------------------


def _grid_columns(width: int, height: int) -> int:
    return max(1, round(8 * height / width * 2)) if width > height else 8


@main.command()
@click.argument("run", type=click.Path())
@click.option("-n", "--num", type=click.IntRange(1, 4096), default=64, show_default=True, help="Images.")
@click.option(
    "--text",
    default=None,
    help="Text to draw (conditioned models only), e.g. --text 2b8c7 (lower-cased unless the model's vocabulary "
    "has upper-case letters); without it a conditioned model draws a text and layout per sample from the text "
    "prior (model/text_prior.json).",
)
@click.option(
    "--temperature",
    type=click.FloatRange(0, 10),
    default=1.0,
    show_default=True,
    help="Scales the prior's standard deviations (lower = cleaner, less varied).",
)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="samples.png", show_default=True)
@click.option("--save-dir", type=click.Path(file_okay=False), default=None,
              help="Also write each sample as DIR/000000.png ... (for external FID tools).")  # fmt: skip
@click.option("--batch-size", type=click.IntRange(1, 4096), default=None,
              help="Samples per model call [default: all at once]; the samples depend on it.")  # fmt: skip
@device_option
def sample(run: str, num: int, text: str | None, temperature: float, seed: int, output: str, save_dir: str | None,
           batch_size: int | None, device: str) -> None:  # fmt: skip
    """Write a grid of NUM samples from RUN (a run directory, or a model/ folder, also copied alone): decoder
    means."""
    from gencore.viz import check_image_outputs, save_dir_files, save_image_grid
    from hvae_captcha.pipeline import HVAEPipeline, to_pil

    check_image_outputs([output])
    each = save_dir_files(save_dir, [f"{i:06d}.png" for i in range(num)]) if save_dir is not None else []
    pipe = HVAEPipeline.from_pretrained(run, resolve_device(device))
    images, texts = pipe.sample(num, text, temperature, seed, batch_size)
    drawn = texts if text is None else None  # drawn from the run's text prior
    cfg = pipe.model.config
    save_image_grid(images, output, nrow=_grid_columns(cfg.width, cfg.height))
    if save_dir is not None:
        folder = Path(save_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for image, path in zip(to_pil(images), each):
            image.save(path)
        click.echo(f"wrote {num} images to {folder}")
    shown = f" (texts from the run's text prior: {' '.join(drawn[:8])}{' ...' * (num > 8)})" if drawn else ""
    click.echo(f"wrote {output}{shown}")


@main.command()
@click.argument("run", type=click.Path())
@click.option("-n", "--num", type=click.IntRange(1, 1024), default=16, show_default=True)
@click.option("--data", "source", default=None, help="A folder of <text>.png images [default: the run's hold-out].")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="reconstructions.png", show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 4096), default=None,
              help="Images per model call [default: all at once]; the reconstructions depend on it.")  # fmt: skip
@device_option
def reconstruct(run: str, num: int, source: str | None, seed: int, output: str, batch_size: int | None,
                device: str) -> None:  # fmt: skip
    """Write images next to their reconstructions (decoded from one posterior sample) from RUN's model."""
    import torch

    from gencore.viz import save_image_grid
    from hvae_captcha import runs
    from hvae_captcha.data import to_float

    model = runs.load_model(run, resolve_device(device))
    _, data = runs.held_out(run, source, num)
    torch.manual_seed(seed)
    x = to_float(data.images)
    step = batch_size or max(len(x), 1)
    try:
        ys = [model.encode_data(data, i, i + step) for i in range(0, len(x), step)]
    except ValueError as exc:  # a rendered-layout model and a folder of images
        raise ConfigError(str(exc)) from None
    recon = torch.cat([model.reconstruct(x[i : i + step].to(model.device), y).cpu()
                       for i, y in zip(range(0, len(x), step), ys)])  # fmt: skip
    pairs = torch.stack([model.binarize_if_needed(x), recon], 1).flatten(0, 1)
    save_image_grid(pairs, output, nrow=2 * max(1, _grid_columns(model.config.width, model.config.height) // 2))
    click.echo(f"wrote {output} (left: image, right: reconstruction)")


@main.command()
@click.argument("run", type=click.Path())
@click.option(
    "-k",
    "--iw-samples",
    type=click.IntRange(1, 10_000),
    default=64,
    show_default=True,
    help="Importance samples K of the IWAE bound.",
)
@click.option(
    "-n", "--num", type=click.IntRange(1, 100_000), default=512, show_default=True, help="Held-out images evaluated."
)
@click.option("--data", "source", default=None, help="A folder of <text>.png images [default: the run's hold-out].")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="JSON file to write [default: RUN/eval/evaluation.json; eval/ beside a model folder given alone].",
)
@click.option(
    "--text-accuracy",
    "read_text",
    is_flag=True,
    help="Conditioned models: train a CNN reader on the run's real training CAPTCHAs (cached in RUN/eval/) and "
    "report how often it reads the requested text in samples drawn for the held-out texts, and in the real images.",
)
@click.option("--reader-steps", type=click.IntRange(1, 1_000_000), default=1500, show_default=True)
@click.option(
    "--temperature",
    type=click.FloatRange(0, 10),
    default=1.0,
    show_default=True,
    help="Prior temperature of the --text-accuracy samples.",
)
@device_option
def evaluate(run: str, iw_samples: int, num: int, source: str | None, batch_size: int, seed: int,
             output: str | None, read_text: bool, reader_steps: int, temperature: float,
             device: str) -> None:  # fmt: skip
    """IWAE negative log-likelihood (bits/dim), ELBO, per-level KL and active units, reconstruction PSNR."""
    import torch

    from hvae_captcha import runs
    from hvae_captcha.evaluate import evaluate_model

    model = runs.load_model(run, resolve_device(device))
    if read_text and not model.config.conditioned:
        raise ConfigError("--text-accuracy needs a model trained with --conditioned")
    config, data = runs.held_out(run, source, num)
    torch.manual_seed(seed)
    metrics: dict[str, Any] = evaluate_model(model, data, iw_samples, batch_size, model.device, desc="evaluate")
    if model.config.conditioned:
        from hvae_captcha.evaluate import unconditional_bound

        try:
            prior = runs.text_prior(run, model)
            reuse = metrics["nll_bits_per_dim"]
            metrics.update(unconditional_bound(model, data, prior, iw_samples, batch_size, seed, reuse))
        except ValueError as exc:  # a rendered-layout model and a folder of images
            raise ConfigError(str(exc)) from None
    if read_text:
        metrics.update(runs.reader_metrics(run, config, model, data, reader_steps, temperature, seed))
    metrics.update({"images": len(data.texts), "data": source or config.data.source,
                    "parameters": sum(p.numel() for p in model.parameters()),
                    "input": f"{model.config.channels}x{model.config.height}x{model.config.width}"})  # fmt: skip
    out = Path(output) if output else runs.eval_dir(run) / "evaluation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, metrics)
    for key, value in metrics.items():
        click.echo(f"{key:>24}: {value:.4f}" if isinstance(value, float) else f"{key:>24}: {value}")
    click.echo(f"wrote {out}")


@main.command("inspect-config")
@_preset_option
@_conditioned_option
@_layer_options
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML, JSON or YAML config.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override one config value.")
@click.option("--quiet", is_flag=True, help="Only the per-block summary and the parameter count.")
def inspect_config(preset: str | None, conditioned: bool | None, outer: str | None, inner: str | None,
                   config_file: str | None, overrides: tuple[str, ...], quiet: bool) -> None:  # fmt: skip
    """Print the layer table (every layer, its parameters) and the parameter count of a configuration (the model
    ``train`` builds with the same options)."""
    from gencore.config import build_config
    from hvae_captcha.model import HVAE, parameter_table

    preset = preset or "compact"
    if conditioned is None:
        conditioned = _default_conditioned(preset, {"config_file": config_file, "overrides": overrides})
    config = build_config(HVAEConfig, config_file, overrides, _layer_flags(outer, inner),
                          base=[*PRESETS[preset], *_conditioning_overrides(conditioned)])  # fmt: skip
    m = config.model
    model = HVAE(m)
    rows = parameter_table(model)
    click.echo(f"input {m.channels}×{m.height}×{m.width}, {m.levels} latent level(s), {m.latent} latents, "
               f"likelihood {m.likelihood}")  # fmt: skip
    for level, shape in enumerate(model.latent_shapes, 1):
        block = "×".join(map(str, model.level_shapes[level - 1]))
        click.echo(f"  z{level}: {'×'.join(map(str, shape))}  (block output {block})")
    if not quiet:
        width = max(len(r[0]) for r in rows)
        click.echo(f"{'module':<{width}}  {'layer':<34} {'parameters':>12}")
        for name, label, count in rows:
            click.echo(f"{name:<{width}}  {label:<34} {count:>12,}")
    blocks: dict[str, int] = {}
    for name, _, count in rows:
        blocks[name.split(".")[0]] = blocks.get(name.split(".")[0], 0) + count
    click.echo("per part: " + ", ".join(f"{k} {v:,}" for k, v in blocks.items()))
    total = sum(p.numel() for p in model.parameters())
    click.echo(f"layers: {len(rows)}  parameters: {total:,} ({total:.2e})")


main.add_command(import_original)
