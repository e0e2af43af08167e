"""``ganwriting-music``: read-classes, render-homus, export-fonts, clean, train, generate, export-mashcima,
evaluate, classifier-study.

Bad input (unknown class, empty folder, malformed HOMUS line, missing checkpoint...) ends with one line
``error: ...`` and exit code 2 (gencore's error path); ``--debug`` shows the traceback. A writer or class name
from the data that is not a plain folder name (``../x``, ``/abs``, a NUL byte) is refused before anything is
written: no value from a data file becomes a path outside the output folder.
"""

# Import rule (gencore.cli's module comment; tests/test_imports.py): no torch at the top, this package's
# config.py included; command bodies import what they run.

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import click

from ganwriting_music.config import PRESETS, GanwritingConfig
from ganwriting_music.package import SPEC
from gencore.cli import (
    SEED,
    ConfigFlag,
    Group,
    config_from_options,
    config_options,
    device_option,
    inception_weights_option,
    pick_preset,
    resolve_device,
    run_fit,
    training_options,
)
from gencore.config import build_config
from gencore.errors import ConfigError, DataError


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ganwriting-music")
def main() -> None:
    """GANwriting for handwritten music symbols: generate a requested symbol class (SMuFL names such as gClef,
    accidentalSharp, noteheadBlack) in the style of a few reference images of one writer.

    \b
    Data:   read-classes, render-homus, export-fonts, clean
    Train:  train START_EPOCH   (0 = fresh, N = resume epoch N, auto = newest)
    Use:    generate, export-mashcima, evaluate, classifier-study
    """


def _classes_option(fn):  # noqa: ANN001, ANN202
    return click.option("--classes", default=None, metavar="A,B,...",
                        help="Class names to accept [default: the 20 SMuFL classes of the original].")(fn)  # fmt: skip


def _class_list(text: str | None) -> list[str]:
    from ganwriting_music.config import CLASSES

    if text is None:
        return list(CLASSES)
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise ConfigError("--classes expects a comma-separated list of class names")
    return names


# --- data ----------------------------------------------------------------------------------------------------


@main.command("read-classes")
@click.argument("root", type=click.Path())
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Index file to write.")
@_classes_option
@click.option("--skip-unknown", is_flag=True, help="Leave out folders that are not a known class (else an error).")
def read_classes(root: str, output: str, classes: str | None, skip_unknown: bool) -> None:
    """Scan class folders under ROOT and write an index file of ``path<TAB>class<TAB>writer`` lines.

    ROOT is ``ROOT/<class>/*.png`` (one writer, named after ROOT) or ``ROOT/<writer>/<class>/*.png``. Class
    folder names match case-insensitively (gclef -> gClef). Train on it with ``--data index.txt``.
    """
    from ganwriting_music.data import read_class_folders, write_index

    entries = read_class_folders(root, _class_list(classes), skip_unknown)
    write_index(entries, output)
    per_class: dict[str, int] = {}
    for _, cls, _ in entries:
        per_class[cls] = per_class.get(cls, 0) + 1
    writers = sorted({w for _, _, w in entries})
    click.echo(f"wrote {output}: {len(entries)} images, {len(per_class)} classes, {len(writers)} writer(s)")
    click.echo("  " + ", ".join(f"{c} {n}" for c, n in sorted(per_class.items())))


def _write_set(data: Any, out: Path, index: bool = True, where: str = "") -> int:
    """Write a SymbolSet as ``out/<writer>/<class>/NNNNN.png`` (+ ``out/index.txt``); returns the image count.

    Writer and class names come from the data (an index file's columns, folder names): each must be a plain folder
    name inside ``out`` (gencore.paths), checked for every image before the first one is written; ``where`` (the
    source) prefixes the error.
    """
    from PIL import Image

    from ganwriting_music.data import check_index_target, write_index
    from gencore.errors import DataError, OutputError
    from gencore.paths import safe_join, safe_name

    planned = []
    counts: dict[tuple[int, int], int] = {}
    for img, label, writer in zip(data.images[:, 0].numpy(), data.labels.tolist(), data.writers.tolist()):
        cls, name = data.classes[label], data.writer_names[writer]
        n = counts.get((writer, label), 0)
        counts[(writer, label)] = n + 1
        try:
            path = safe_join(out, safe_name(name, "writer"), safe_name(cls, "class"), f"{n:05d}.png")
        except DataError as exc:
            raise DataError(f"{where}{exc}") from None
        planned.append((img, path, cls, name))
    taken = [path for _, path, _, _ in planned if path.exists() or path.is_symlink()]
    if taken:  # files are added beside the folder's others, never written over them
        raise OutputError(f"{out} already holds {taken[0]}" + (f" and {len(taken) - 1} more of the files to write"
                          if len(taken) > 1 else "") + "; choose a new or empty folder (nothing changed)")  # fmt: skip
    if index:
        check_index_target(out / "index.txt")
    entries = []
    for img, path, cls, name in planned:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path)
        entries.append((path, cls, name))
    if index:
        write_index(entries, out / "index.txt")
    return len(entries)


@main.command("render-homus")
@click.argument("root", type=click.Path())
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True, help="Folder for the PNGs.")
@click.option("--size", type=click.IntRange(8, 1024), default=128, show_default=True, help="Image side (pixels).")
@click.option("--stroke", type=click.IntRange(1, 64), default=3, show_default=True, help="Line width (pixels).")
@_classes_option
def render_homus(root: str, output: str, size: int, stroke: int, classes: str | None) -> None:
    """Render HOMUS stroke files under ROOT (one .txt per symbol: class name, then one ``x,y;x,y;...`` line per
    stroke) to OUTPUT/<writer>/<class>/*.png and OUTPUT/index.txt.

    HOMUS names are mapped to the SMuFL classes (G-Clef -> gClef, Sharp -> accidentalSharp, ...); HOMUS classes
    without a counterpart are skipped and counted.
    """
    from ganwriting_music.data import read_homus

    data, skipped = read_homus(root, _class_list(classes), size, stroke)
    n = _write_set(data, Path(output), where=f"{root}: ")
    click.echo(f"rendered {n} symbols of {len(data.writer_names)} writer(s) to {output} (index: {output}/index.txt)")
    if skipped:
        click.echo("skipped HOMUS classes without a SMuFL counterpart: "
                   + ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())))  # fmt: skip


@main.command("export-fonts")
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True, help="Folder for the PNGs.")
@click.option("--fonts", default=None, metavar="A,B", help="Fonts (writers) [default: all five].")
@click.option("--size", type=click.IntRange(16, 1024), default=128, show_default=True, help="Image side.")
@click.option("-n", "--per-class", type=click.IntRange(1, 100000), default=16, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@_classes_option
def export_fonts(output: str, fonts: str | None, size: int, per_class: int, seed: int, classes: str | None) -> None:
    """Write the embedded data (augmented glyphs of the verovio fonts) as OUTPUT/<font>/<class>/*.png."""
    from ganwriting_music.config import FONTS, DataConfig
    from ganwriting_music.data import font_symbols

    names = [f.strip() for f in fonts.split(",")] if fonts else list(FONTS)
    unknown = [n for n in names if n not in FONTS]
    if unknown:
        raise DataError(f"unknown font(s) {unknown} (the verovio wheel ships {', '.join(FONTS)})")
    cfg = DataConfig(image_size=size, classes=_class_list(classes), fonts=names, holdout_writers=[])
    n = _write_set(font_symbols(cfg, names, seed, per_class), Path(output))
    click.echo(f"wrote {n} images ({size}×{size}) of {len(names)} font(s) to {output}")


@main.command()
@click.argument("source", type=click.Path())
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True, help="Folder for the clean set.")
@click.option("--size", type=click.IntRange(8, 1024), default=128, show_default=True, help="Image side.")
@click.option("--binarize", is_flag=True, help="Threshold to pure black ink on white.")
@click.option("--min-ink", type=click.FloatRange(0, 1), default=0.002, show_default=True,
              help="Drop images whose ink covers less than this fraction (blank crops).")  # fmt: skip
@_classes_option
def clean(source: str, output: str, size: int, binarize: bool, min_ink: float, classes: str | None) -> None:
    """Clean and prepare SOURCE (index file, class folders or HOMUS folder) into OUTPUT.

    Every image is read as grey (white-on-black scans inverted), cropped to its ink, centred on a square and
    resized to SIZE; unreadable files, blank images and exact duplicates are dropped (and counted); the result
    is OUTPUT/<writer>/<class>/*.png with OUTPUT/index.txt.
    """
    import hashlib

    import torch

    from ganwriting_music.config import DataConfig
    from ganwriting_music.data import load_source

    cfg = DataConfig(source=source, image_size=size, classes=_class_list(classes), holdout_writers=[], bad_files="skip")
    data = load_source(cfg)
    images = data.images
    if binarize:
        images = torch.where(images < 128, 0, 255).to(torch.uint8)
    ink = (images < 128).float().mean((1, 2, 3))
    seen: set[str] = set()
    keep, blank, duplicate = [], 0, 0
    for i in range(len(images)):
        if ink[i] < min_ink:
            blank += 1
            continue
        digest = hashlib.sha1(images[i].numpy().tobytes() + bytes([int(data.labels[i])])).hexdigest()
        if digest in seen:
            duplicate += 1
            continue
        seen.add(digest)
        keep.append(i)
    if not keep:
        raise DataError(f"{source}: nothing left after cleaning ({blank} blank, {duplicate} duplicate)")
    data.images = images
    out = Path(output)
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out} is not empty; choose a new output folder")
    n = _write_set(data.subset(keep), out, where=f"{source}: ")
    click.echo(f"wrote {n} images to {output} (dropped {blank} blank, {duplicate} duplicate); index: "
               f"{output}/index.txt")  # fmt: skip


# --- training ------------------------------------------------------------------------------------------------


@main.command(context_settings={"ignore_unknown_options": False})
@click.argument("start_epoch", required=False, default="0")
@training_options("runs/ganwriting-music", exclude=("eval_every",))  # its own, in epochs
@click.option(
    "--preset",
    type=click.Choice(["auto", "original", "cpu"]),
    default="auto",
    show_default=True,
    help="original (128×128, batch 92, the original's learning rates: sized for a GPU, about 45 s an update on "
    "one CPU thread) or cpu (64×64, small networks, higher learning rates, 30 epochs: about 40 minutes on one "
    "CPU thread); auto picks original where training runs on a GPU and cpu where it runs on the CPU. "
    "--config/--set apply on top (e.g. --epochs 10 for a quick run); a continued run keeps its own settings.",
)
@config_options(
    GanwritingConfig,
    ConfigFlag("--data", "data.source", metavar="SOURCE",
               help="fonts (default: the embedded glyphs), an index file, a class-folder root or a HOMUS folder "
               "(data.source)."),
    ConfigFlag("--size", "data.image_size", type=click.IntRange(16, 1024),
               help="Image side, a multiple of 16 (data.image_size) [default: 128]."),
    ConfigFlag("--epochs", "train.max_epochs", type=click.IntRange(min=1),
               help="Epochs to train in total (train.max_epochs) [default: 100]."),
    ConfigFlag("--save-every", "train.checkpoint_every_epochs", metavar="N", type=click.IntRange(min=1),
               help="Save the full state (a start epoch) every N epochs (train.checkpoint_every_epochs) "
               "[default: 10]."),
    ConfigFlag("--eval-every", ("train.eval_every_epochs", "train.sample_every_epochs"), metavar="N",
               type=click.IntRange(min=0),
               help="Evaluate and write a sample grid every N epochs, 0 = only at the end "
               "(train.eval_every_epochs, train.sample_every_epochs) [default: 10]."),
    ConfigFlag("--lr-g", "optim.lr_g", aliases=("--lr-gen",)),
    ConfigFlag("--lr-d", "optim.lr_d", aliases=("--lr-dis",)),
    ConfigFlag("--lr-r", "optim.lr_r", aliases=("--lr-rec",)), ConfigFlag("--ema", "optim.ema_decay"),
    ConfigFlag("--w-rec", "loss.w_rec", help="Recognizer loss weight (loss.w_rec) [default: 2.5]."),
    ConfigFlag("--w-gp", "loss.w_gp", help="Gradient penalty weight (loss.w_gp) [default: 0.3]."),
    ConfigFlag("--w-l1", "loss.w_l1",
               help="L1 to a real image of the same writer and class (loss.w_l1) [default: 0]."),
    ConfigFlag("--k-refs", "model.k_refs", type=click.IntRange(min=1)),
)  # fmt: skip
def train(start_epoch: str, **options: Any) -> None:
    """Train generator, discriminator and recognizer from START_EPOCH (0 = fresh, N = continue from the state
    saved at the end of epoch N, auto = newest checkpoint or fresh).

    Writes config.json, metrics.csv, losses.png, samples/ (per writer: a row of real symbols, then a row generated
    in that writer's style), checkpoints/ (+ epochs.json) and model/ into the run directory. The same command runs
    as ``python -m ganwriting_music.train START_EPOCH`` and ``accelerate launch -m ganwriting_music.train
    START_EPOCH``. Every option is a config key too (see the README), e.g. --set loss.w_writer=0.5.
    """
    from ganwriting_music.train import run_training

    preset = about = options.pop("preset")
    if preset in (None, "auto"):  # by the device training will run on, which a config may set (train.cpu)
        probe = build_config(GanwritingConfig, options.get("config_file"), options.get("overrides", ()))
        preset = pick_preset(preset, SPEC.command("train").cpu_preset or "cpu", "original", probe.train.cpu)
        about = f"{preset} (--preset auto, " + ("training on the CPU; --preset original is the original's "
                                                "GPU-sized configuration)" if preset == "cpu" else "on a GPU)")
    options["base"] = PRESETS[preset]  # under --config, --set and the flags
    if str(start_epoch) != "0":  # a continued run keeps its own settings (gencore.cli.config_from_options)
        options["resume_config"] = "auto"
    config, resume = config_from_options(GanwritingConfig, options)
    run_fit(lambda: run_training(config, start_epoch, resume, preset=about))


# --- using a trained model -------------------------------------------------------------------------------------


def _style_option(fn):  # noqa: ANN001, ANN202
    return click.option("--style-from", default=None, metavar="DIR|font:NAME",
                        help="Reference images of one writer: a folder of images, or font:NAME for an embedded "
                        "font (font:Petaluma is the writer held out by default) [default: the run's first "
                        "training writer].")(fn)  # fmt: skip


def _style(run: str, spec: str | None, seed: int):  # noqa: ANN202
    from ganwriting_music.evaluate import run_config
    from ganwriting_music.pipeline import references

    config = run_config(run)
    return config, references(config, spec, seed)


def _labels(nets: Any, names: str, n: int):  # noqa: ANN202
    from ganwriting_music.pipeline import class_labels

    return class_labels(nets.config.classes, names, n)


@main.command()
@click.argument("run", type=click.Path())
@click.option("--class", "class_names", default="all", show_default=True, metavar="NAME[,NAME]|all",
              help="Symbol class(es) to draw, e.g. gClef or accidentalSharp,noteheadBlack.")  # fmt: skip
@_style_option
@click.option("-n", "--num", type=click.IntRange(1, 100000), default=64, show_default=True, help="Images.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="grid.png", show_default=True,
              help="PNG grid to write.")  # fmt: skip
@click.option("--save-dir", type=click.Path(file_okay=False), default=None, help="Also write each image as a PNG.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 65536), default=64, show_default=True,
              help="Images per generator call.")  # fmt: skip
@device_option
def generate(run: str, class_names: str, style_from: str | None, num: int, output: str, save_dir: str | None,
             seed: int, batch_size: int, device: str) -> None:  # fmt: skip
    """Generate NUM symbols of the requested class(es) in the style of the --style-from writer."""
    from PIL import Image

    from ganwriting_music.evaluate import generate_from_style
    from ganwriting_music.train import load_networks
    from gencore.paths import safe_name
    from gencore.viz import check_image_outputs, save_dir_files, save_image_grid

    check_image_outputs([output])
    nets = load_networks(run, resolve_device(device))
    config, refs = _style(run, style_from, seed)
    labels = _labels(nets, class_names, num)
    paths = []
    if save_dir is not None:  # class names come from the model's config.json: plain folder names, or refused
        paths = save_dir_files(save_dir, [f"{safe_name(nets.config.classes[label], 'class')}/{i:05d}.png"
                                          for i, label in enumerate(labels.tolist())])  # fmt: skip
    images = generate_from_style(nets, refs, labels, config.model.k_refs, seed, batch_size).cpu()
    ncol = len(set(labels.tolist())) if class_names == "all" else None
    save_image_grid(images, output, nrow=ncol, value_range=(-1, 1))
    if save_dir is not None:
        for img, path in zip(images, paths):
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(((img[0].numpy() + 1) * 127.5 + 0.5).clip(0, 255).astype("uint8")).save(path)
    click.echo(f"wrote {output} ({num} images)" + (f" and {save_dir}/<class>/*.png" if save_dir else ""))


@main.command("export-mashcima")
@click.argument("run", type=click.Path())
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True,
              help="Export folder: OUTPUT/set_NNNN/default_symbols/<name>.png|.txt.")  # fmt: skip
@click.option("-n", "--sets", "--per-class", "sets", type=click.IntRange(1, 10000), default=1, show_default=True,
              help="Complete sets of Mashcima symbols to write (each a default_symbols folder).")  # fmt: skip
@click.option("--class", "class_names", default="all", show_default=True, metavar="NAME[,NAME]|all")
@_style_option
@click.option("--staff-space", type=click.FloatRange(4, 200), default=20.0, show_default=True,
              help="Pixels per staff space of the sprites (MUSCIMA++'s scale: about 20).")  # fmt: skip
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.5,
              show_default=True, help="Ink darkness above which a pixel is ink.")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace an earlier export in OUTPUT.")
@click.option("--seed", type=SEED, default=0, show_default=True)
def export_mashcima(run: str, output: str, sets: int, class_names: str, style_from: str | None, staff_space: float,
                    threshold: float, overwrite: bool, seed: int) -> None:  # fmt: skip
    """Write generated symbols as Mashcima default symbols: OUTPUT/set_NNNN/default_symbols/<name>.png (white ink
    on black, scaled to MUSCIMA++'s staff space) with <name>.txt (the origin), one file per Mashcima name
    (clef_g, rest_quarter, note_eighth_stem...), and OUTPUT/mashcima_export.json. Copy a set's files into
    mashcima/default_symbols. Classes without a Mashcima name are listed, not written."""
    import torch

    from ganwriting_music.evaluate import generate_from_style
    from ganwriting_music.mashcima import PRODUCER, mashcima_plan, save_mashcima, unmapped
    from ganwriting_music.train import load_networks
    from gencore.checkpoint import check_output_dir

    check_output_dir(output, PRODUCER, overwrite)  # before minutes of generation
    nets = load_networks(run)
    classes = list(nets.config.classes)
    config, refs = _style(run, style_from, seed)
    chosen = [classes[i] for i in sorted(set(_labels(nets, class_names, len(classes)).tolist()))]
    plan = mashcima_plan(classes, chosen)
    labels = torch.tensor([classes.index(s.cls) for s in plan] * sets) if plan else torch.zeros(0, dtype=torch.long)
    images = generate_from_style(nets, refs, labels, config.model.k_refs, seed) if plan else labels
    counts = save_mashcima(images, plan, output, classes, staff_space, threshold, overwrite)
    click.echo(f"wrote {sets} set(s) of {len(counts)} Mashcima symbols to {output}/set_NNNN/default_symbols "
               f"({', '.join(counts)})")  # fmt: skip
    skipped = {c: why for c, why in unmapped(chosen).items()}
    if skipped:
        click.echo("classes without a Mashcima name (not written): "
                   + "; ".join(f"{c} ({why})" for c, why in skipped.items()))  # fmt: skip


@main.command()
@click.argument("run", type=click.Path())
@click.option("--classifier-steps", type=click.IntRange(1, 10**6), default=600, show_default=True,
              help="Updates of the symbol classifier trained here for the Fréchet distance.")  # fmt: skip
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--features", type=click.Choice(["classifier", "inception"]), default="classifier", show_default=True,
              help="Features of the Fréchet distance: the symbol classifier trained here, or Inception v3 (standard "
              "FID) from --inception-weights or the torch hub cache (never downloaded).")  # fmt: skip
@inception_weights_option
@device_option
def evaluate(run: str, classifier_steps: int, seed: int, device: str, features: str = "classifier",
             inception_weights: str | None = None) -> None:  # fmt: skip
    """Recognizer accuracy on generated images and Fréchet distance on features of a classifier trained here on
    the run's real training images (or on Inception v3: --features inception); writes RUN/eval/evaluation.json
    (evaluation_inception.json); eval/ beside a model/ folder given alone."""
    from ganwriting_music.evaluate import evaluate_run, output_root

    if inception_weights is not None and features != "inception":
        raise ConfigError("--inception-weights is only read with --features inception")
    result = evaluate_run(run, classifier_steps, seed, resolve_device(device), features, inception_weights)
    for key, value in result.items():
        click.echo(f"{key:40s} {value:.4f}" if isinstance(value, float) else f"{key:40s} {value}")
    name = "evaluation_inception.json" if features == "inception" else "evaluation.json"
    click.echo(f"wrote {output_root(run) / 'eval' / name}")


@main.command("classifier-study")
@click.argument("run", type=click.Path())
@click.option("--holdout", default=None, metavar="W1,W2", help="Test writers [default: the run's holdout_writers].")
@click.option("--steps", type=click.IntRange(1, 10**6), default=600, show_default=True, help="Classifier updates.")
@click.option("--repeats", type=click.IntRange(1, 20), default=1, show_default=True, help="Seeds per data set.")
@click.option(
    "--synthetic-per-image",
    type=click.IntRange(1, 16),
    default=1,
    show_default=True,
    help="Generated images per original image (fresh noise each).",
)
@click.option("--random-styles", is_flag=True, help="Each generated image in a random training writer's style.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@device_option
def classifier_study(run: str, holdout: str | None, steps: int, repeats: int, synthetic_per_image: int,
                     random_styles: bool, seed: int, device: str) -> None:  # fmt: skip
    """Train the symbol classifier on original, synthetic and combined data and test it on a writer that neither
    the GAN nor the classifier saw; prints a table, writes RUN/study/classifier_study.{json,md}."""
    from ganwriting_music.evaluate import classifier_study as study
    from ganwriting_music.evaluate import study_table

    names = [h.strip() for h in holdout.split(",") if h.strip()] if holdout is not None else None
    if names == []:
        raise ConfigError(f"--holdout {holdout!r} names no writer (comma-separated writer names)")
    summary = study(run, names, steps, seed, repeats, synthetic_per_image, random_styles,
                    device=resolve_device(device))  # fmt: skip
    click.echo(study_table(summary))


@main.command("clean-run")
@click.argument("run", type=click.Path())
@click.option("--yes", is_flag=True, help="Do it (without: only list what would be removed).")
def clean_run(run: str, yes: bool) -> None:
    """Remove a run's checkpoints and sample images (what the original's clean.py deleted); keeps model/.

    Only what training wrote goes (checkpoints/step_N that are checkpoints, checkpoints/epochs.json,
    samples/*step_N.png); other files in those folders stay, and so does a step_N folder holding anything its
    checkpoint manifest does not list. Refused for a folder that is not a training run, and while a training holds
    the run.
    """
    import re

    from ganwriting_music.train import EPOCHS_FILE
    from gencore.checkpoint import list_checkpoints, output_owner
    from gencore.errors import RunLockedError
    from gencore.fileio import is_run_config
    from gencore.train.rundir import lock_holder
    from gencore.train.trainer import CHECKPOINT_PRODUCER

    root = Path(run)
    if not (root / "config.json").is_file():
        raise DataError(f"{run} is not a run directory (no config.json)")
    if not is_run_config(root / "config.json"):
        raise DataError(f"{run} is not a training run (its config.json is not a run's); nothing removed")
    holder = lock_holder(root)
    if holder is not None:
        raise RunLockedError(f"{run} is in use by process {holder} (a training); clean it once that has ended")
    samples = root / "samples"
    targets = []
    for checkpoint in list_checkpoints(root / "checkpoints"):
        if output_owner(checkpoint) in (CHECKPOINT_PRODUCER, ""):
            targets.append(checkpoint)
        else:
            click.echo(f"kept {checkpoint} (holds files its checkpoint manifest does not list)")
    targets.append(root / "checkpoints" / EPOCHS_FILE)
    if samples.is_dir():
        targets += sorted(p for p in samples.iterdir() if p.is_file() and re.search(r"step_\d+\.png$", p.name))
    for target in targets:
        if target.exists():
            if yes:
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            click.echo(("removed " if yes else "would remove ") + str(target))
    for folder in (root / "checkpoints", samples):  # gone when nothing of the user's is left in them
        if yes and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
