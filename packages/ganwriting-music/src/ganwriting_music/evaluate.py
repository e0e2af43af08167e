"""Using a trained generator: style references, generation, evaluation and the classifier study.

* Evaluation: the GAN's recognizer and an independent :class:`~ganwriting_music.model.SymbolClassifier` (trained
  here on the real training images) classify images generated for the test images' classes in their writers'
  styles; the Fréchet distance is taken between that classifier's features of real test images and of the
  generated ones (gencore.metrics.frechet_distance), or with ``features="inception"`` the standard FID on
  Inception v3 features from a weight file on disk (gencore.inception; the glyphs repeated to three channels).
* Classifier study: the symbol classifier trained on the original images, on as many generated images, and on
  both, tested on a writer (font) that neither the GAN nor the classifiers saw.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganwriting_music.config import FONTS, GanwritingConfig
from ganwriting_music.data import StyleDataset, SymbolSet, fit_square, font_symbols, ink_to_uint8, load_source
from ganwriting_music.model import Networks, SymbolClassifier
from ganwriting_music.train import generate, load_networks, prepare_data, recognizer_accuracy
from gencore.checkpoint import atomic_write_text
from gencore.config import fill_added_keys, from_dict, load_run_config
from gencore.data import IMAGE_EXTENSIONS, load_image
from gencore.errors import ConfigError, DataError
from gencore.metrics import frechet_distance
from gencore.progress import progress
from gencore.results import write_json
from gencore.seeding import local_rng


def run_config(run: str | Path) -> GanwritingConfig:
    """The config a run was trained with: ``RUN/config.json``; for a ``model/`` folder (in its run or copied alone)
    the networks' settings from its ``config.json`` and the data settings and seed from the training record of its
    ``model_info.json`` (the defaults at the model's size and classes where it has none)."""
    path = Path(run)
    try:
        saved = json.loads((path / "config.json").read_text(encoding="utf-8-sig"))
    except (OSError, ValueError, RecursionError):
        saved = None
    if not (isinstance(saved, dict) and "train" not in saved and (path / "model_info.json").is_file()):
        return load_run_config(GanwritingConfig, run)
    try:
        info = json.loads((path / "model_info.json").read_text(encoding="utf-8-sig"))
    except (OSError, ValueError, RecursionError):
        raise ConfigError(f"{path / 'model_info.json'} is not JSON") from None
    training = info.get("training") if isinstance(info, dict) else None
    data = training.get("data") if isinstance(training, dict) else None
    base = {"image_size": saved.get("image_size"), "classes": saved.get("classes")}
    layers = {"model": saved.get("model") or {}, "data": {**(data if isinstance(data, dict) else {}), **base}}
    config = from_dict(GanwritingConfig, fill_added_keys(GanwritingConfig, layers))
    seed = training.get("seed") if isinstance(training, dict) else None
    if isinstance(seed, int) and not isinstance(seed, bool):  # the run's seed draws its held-out renderings
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, seed=seed))
    return config


def output_root(run: str | Path) -> Path:
    """Where ``evaluate`` and ``classifier-study`` write: the run directory, or beside a ``model/`` folder given
    alone (never inside it: a model folder holds only what its manifest lists)."""
    run = Path(run)
    return run.parent if (run / "model_info.json").is_file() and (run / "manifest.json").is_file() else run


def style_references(spec: str, config: GanwritingConfig, seed: int = 0) -> torch.Tensor:
    """Reference images (N, 1, S, S) in [-1, 1] of one writer: ``font:NAME`` renders the embedded font NAME
    (e.g. the held-out ``font:Petaluma``); otherwise ``spec`` is a folder of that writer's images (any classes,
    searched recursively; ink is cropped and centred like the training data)."""
    size = config.data.image_size
    if spec.startswith("font:"):
        name = spec[5:]
        if name not in FONTS:
            raise DataError(f"unknown font {name!r} in --style-from (the verovio wheel ships {', '.join(FONTS)})")
        return font_symbols(config.data, [name], seed=seed + 17, per_class=2).floats()
    folder = Path(spec)
    if not folder.is_dir():
        raise DataError(f"style folder not found: {folder} (or use font:NAME, NAME one of {', '.join(FONTS)})")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"{folder} is an empty style folder (no images)")
    images = []
    for path in files:
        grey = np.asarray(load_image(path, "L"), np.float32) / 255
        try:
            ink = fit_square(1 - grey if grey.mean() > 0.5 else grey, size)
        except DataError:
            raise DataError(f"{path}: the image has no ink") from None
        images.append(ink_to_uint8(torch.from_numpy(ink))[None])
    return torch.stack(images).float() / 127.5 - 1.0


def generate_from_style(
    nets: Networks, refs: torch.Tensor, labels: torch.Tensor, k: int, seed: int = 0, batch_size: int = 64
) -> torch.Tensor:
    """Images (N, 1, S, S) in [-1, 1] for ``labels`` (N,), each from ``k`` references drawn from ``refs``."""
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randint(len(refs), (len(labels), k), generator=gen)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return generate(nets.gen, refs[pick], labels, batch_size)


# --- the symbol classifier -------------------------------------------------------------------------------------


def train_classifier(
    images: torch.Tensor, labels: torch.Tensor, num_classes: int, steps: int = 600, batch_size: int = 64,
    lr: float = 2e-3, seed: int = 0, channels: int = 16, device: str | torch.device = "cpu",
) -> SymbolClassifier:  # fmt: skip
    """Train a :class:`SymbolClassifier` on images in [-1, 1] with Adam and a cosine schedule (seeded). It is
    built and its batches and shifts drawn on the CPU (the same for every device), then trained on ``device``
    (each batch moved there) and returned there."""
    if len(images) < 2:
        raise DataError("the classifier needs at least two training images")
    with local_rng(seed, device) as gen:
        model = SymbolClassifier(num_classes, channels).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        model.train()
        for _ in progress(range(steps), total=steps, desc="symbol classifier"):
            idx = torch.randint(len(images), (min(batch_size, len(images)),), generator=gen)
            x = images[idx].to(device)
            # small random shifts, so the classifier does not key on exact positions
            dx, dy = torch.randint(-3, 4, (2,), generator=gen).tolist()
            x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(model(x), labels[idx].to(device), label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    return model


@torch.no_grad()
def classifier_features(model: SymbolClassifier, images: torch.Tensor) -> torch.Tensor:
    """Penultimate features (N, D) in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model.features(images[i : i + 256].to(device)) for i in range(0, len(images), 256)])


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` on ``images``."""
    return recognizer_accuracy(model, images, labels)


def per_class_accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                       classes: Sequence[str]) -> dict[str, float]:  # fmt: skip
    """Accuracy per class name."""
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        preds = torch.cat([model(images[i : i + 256].to(device)).argmax(1) for i in range(0, len(images), 256)]).cpu()
    return {c: float((preds[labels == i] == i).float().mean()) for i, c in enumerate(classes) if (labels == i).any()}


def synthesize_like(nets: Networks, data: SymbolSet, pool: SymbolSet, k: int, seed: int, copies: int = 1,
                    random_styles: bool = False) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """``copies`` generated images per image of ``data``, each of its class with fresh noise; in its writer's style
    (references from ``pool``), or with ``random_styles`` in the style of a writer of ``pool`` drawn at random for
    each image. Returns (images (copies·N, 1, S, S), labels (copies·N,)), copy by copy."""
    style = StyleDataset(pool, k)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        own = torch.tensor([pool.writer_names.index(data.writer_names[int(w)]) for w in data.writers.tolist()])
        images = []
        for _ in range(copies):
            writers = torch.randint(len(pool.writer_names), (len(data),)) if random_styles else own
            refs = torch.stack([style.references(int(w)) for w in writers.tolist()])
            images.append(generate(nets.gen, refs, data.labels).cpu())  # training data of the classifiers
    return torch.cat(images), data.labels.repeat(copies)


@torch.no_grad()
def variation(nets: Networks, data: SymbolSet, pool: SymbolSet, k: int, seed: int) -> dict[str, float]:
    """How much generated images vary, as mean absolute pixel differences (images in [-1, 1]), for the classes
    and writers of ``data`` with references from ``pool``:

    * ``noise_variation``: same references and class, other noise;
    * ``style_variation``: same noise and class, references of another writer (a random other one);
    * ``real_variation``: two real images of ``data`` of the same writer and class (what the noise should give);
    * ``real_writer_variation``: real images of the same class by two writers (what the style should give).
    """
    style = StyleDataset(pool, k)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        own = torch.tensor([pool.writer_names.index(data.writer_names[int(w)]) for w in data.writers.tolist()])
        other = (own + torch.randint(1, max(len(pool.writer_names), 2), own.shape)) % len(pool.writer_names)
        refs = torch.stack([style.references(int(w)) for w in own.tolist()])
        refs_other = torch.stack([style.references(int(w)) for w in other.tolist()])
        z1, z2 = nets.gen.noise(len(data), "cpu"), nets.gen.noise(len(data), "cpu")

    device = next(nets.gen.parameters()).device  # the noise is drawn on the CPU (the same everywhere), then moved

    def draw(r: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([nets.gen(r[i : i + 64].to(device), data.labels[i : i + 64].to(device),
                                   z[i : i + 64].to(device)).cpu()
                          for i in range(0, len(data), 64)])  # fmt: skip

    a, b, c = draw(refs, z1), draw(refs, z2), draw(refs_other, z1)
    x = data.floats()
    same, across = [], []
    for i in range(len(data)):  # real pairs: the first other image of the same class, same / other writer
        cls = data.labels == data.labels[i]
        mate = torch.nonzero(cls & (data.writers == data.writers[i]) & (torch.arange(len(data)) != i)).flatten()
        foreign = torch.nonzero(cls & (data.writers != data.writers[i])).flatten()
        if len(mate):
            same.append((x[i] - x[mate[i % len(mate)]]).abs().mean())
        if len(foreign):
            across.append((x[i] - x[foreign[i % len(foreign)]]).abs().mean())
    mean = lambda v: float(torch.stack(v).mean()) if v else float("nan")  # noqa: E731
    return {"noise_variation": float((a - b).abs().mean()), "style_variation": float((a - c).abs().mean()),
            "real_variation": mean(same), "real_writer_variation": mean(across)}  # fmt: skip


def evaluate_run(
    run: str | Path,
    classifier_steps: int = 600,
    seed: int = 0,
    device: str | torch.device = "cpu",
    features: str = "classifier",
    inception_weights: str | Path | None = None,
) -> dict[str, float]:
    """Recognizer accuracy on generated images, the Fréchet distance and how often a writer classifier names the
    reference writer of a generated image; written to ``RUN/eval/evaluation.json`` (``evaluation_inception.json``
    with Inception features). The networks run and the
    classifiers train on ``device``.

    ``features``: ``classifier`` (the distance on the symbol classifier's features: ``frechet_distance*``) or
    ``inception`` (standard FID on Inception v3 from ``inception_weights`` or the torch hub cache: ``fid*``)."""
    if features not in ("classifier", "inception"):
        raise ValueError(f"features must be classifier or inception, got {features!r}")
    run = Path(run)
    inception = None
    if features == "inception":  # before any work: a missing weight file fails at once
        from gencore.inception import inception_features, load_inception, to_uint8

        inception = load_inception(inception_weights, device)
    key = "fid" if features == "inception" else "frechet_distance"
    config = run_config(run)
    nets = load_networks(run, device)
    train_set, test_set = prepare_data(config)
    test_set = test_set if test_set is not None else train_set
    k = config.model.k_refs
    fake, _ = synthesize_like(nets, test_set, train_set, k, seed)
    real = test_set.floats()
    clf = train_classifier(train_set.floats(), train_set.labels, len(train_set.classes), classifier_steps,
                           seed=seed, device=device)  # fmt: skip

    def fd(a: torch.Tensor, b: torch.Tensor) -> float:  # the Fréchet distance on the chosen features
        if inception is not None:  # on 8-bit images, like the PNGs of `generate --save-dir` that external tools read
            fa, fb = (inception_features(inception, to_uint8(x), 32) for x in (a, b))
            return frechet_distance(fa, fb)
        return frechet_distance(classifier_features(clf, a), classifier_features(clf, b))

    result = {
        "gan_recognizer_acc_fake": recognizer_accuracy(nets.rec, fake, test_set.labels),
        "gan_recognizer_acc_real": recognizer_accuracy(nets.rec, real, test_set.labels),
        "classifier_acc_fake": accuracy(clf, fake, test_set.labels),
        "classifier_acc_real": accuracy(clf, real, test_set.labels),
        key: fd(real, fake),
        f"{key}_real_train_vs_test": fd(train_set.floats()[: len(real)], real),
        "images": len(real),
        **variation(nets, test_set, train_set, k, seed + 2),
    }
    if len(train_set.writer_names) > 1:  # style: does a writer classifier trained on real images name the writer?
        wclf = train_classifier(train_set.floats(), train_set.writers, len(train_set.writer_names), classifier_steps,
                                seed=seed + 5, device=device)  # fmt: skip
        result["writer_acc_real"] = accuracy(wclf, real, test_set.writers)
        result["writer_acc_fake"] = accuracy(wclf, fake, test_set.writers)
        result["writer_chance"] = 1 / len(train_set.writer_names)
    unseen = [w for w in config.data.holdout_writers if w in FONTS] if config.data.source == "fonts" else []
    if unseen:  # generation in the style of a writer the GAN never saw
        held = font_symbols(config.data, unseen, seed=config.train.seed)
        fake_unseen, _ = synthesize_like(nets, held, held, k, seed + 1)
        result["classifier_acc_fake_unseen_writer"] = accuracy(clf, fake_unseen, held.labels)
        result[f"{key}_unseen_writer"] = fd(held.floats(), fake_unseen)
    if inception is not None:
        result["features"] = f"inception_v3 ({inception.source})"
    out = output_root(run) / "eval"
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / ("evaluation_inception.json" if inception is not None else "evaluation.json"), result)
    return result


def classifier_study(
    run: str | Path,
    holdout: Sequence[str] | None = None,
    steps: int = 600,
    seed: int = 0,
    repeats: int = 1,
    copies: int = 1,
    random_styles: bool = False,
    device: str | torch.device = "cpu",
) -> dict[str, object]:
    """Original vs synthetic vs combined training data for the symbol classifier, tested on held-out writers.

    "original": the real images of the GAN's writers (training and test splits); "synthetic": ``copies``
    generated images per original image (same class; that writer's style, or with ``random_styles`` a random
    training writer's; fresh noise each); "combined": both. Each set gets ``steps`` updates per original-set
    size of images (the same number of passes over its data), and "original" is also trained as long as
    "combined" ("original_long"), so that a gain of "combined" is not just its longer training. The test writers
    (default: the run's ``data.holdout_writers``) were seen by neither the GAN nor the classifiers. Writes
    ``RUN/study/classifier_study.json`` and ``.md``. The generator runs and the classifiers train on ``device``.
    """
    run = Path(run)
    config = run_config(run)
    nets = load_networks(run, device)
    holdout = list(holdout or config.data.holdout_writers)
    if not holdout:
        raise DataError("classifier-study needs held-out writers: set --holdout or data.holdout_writers")
    seen = [w for w in holdout if w in nets.config.writers]
    if seen:  # the study's point is a writer neither the GAN nor the classifiers saw
        raise DataError(f"held-out writer(s) {seen} trained the GAN (its writers: {', '.join(nets.config.writers)}); "
                        "choose writers it never saw")  # fmt: skip
    if config.data.source == "fonts":
        original = font_symbols(config.data, config.data.fonts, seed=config.train.seed)
        test = font_symbols(config.data, holdout, seed=config.train.seed)
    else:
        data = load_source(config.data, seed=config.train.seed)
        missing = sorted(set(holdout) - set(data.writer_names))
        if missing:
            raise DataError(f"held-out writer(s) {missing} are not in {config.data.source}")
        test = data.of_writers(holdout)
        original = data.of_writers([w for w in data.writer_names if w not in holdout])
    synthetic, synthetic_labels = synthesize_like(nets, original, original, config.model.k_refs, seed, copies,
                                                  random_styles)  # fmt: skip
    sets = {
        "original": (original.floats(), original.labels, 1),
        "synthetic": (synthetic, synthetic_labels, copies),
        "combined": (torch.cat([original.floats(), synthetic]), torch.cat([original.labels, synthetic_labels]),
                     1 + copies),
        "original_long": (original.floats(), original.labels, 1 + copies),
    }  # fmt: skip
    results: dict[str, dict[str, float]] = {}
    for name, (x, y, passes) in sets.items():
        accs = []
        for r in range(repeats):
            clf = train_classifier(x, y, len(original.classes), steps * passes, seed=seed + r, device=device)
            accs.append(accuracy(clf, test.floats(), test.labels))
        results[name] = {"accuracy": float(np.mean(accs)), "std": float(np.std(accs)), "train_images": len(x),
                         "steps": steps * passes}  # fmt: skip
    base = results["original"]["accuracy"]
    summary = {
        "test_writers": holdout, "test_images": len(test), "train_writers": original.writer_names,
        "classifier_steps": steps, "repeats": repeats, "synthetic_per_image": copies,
        "random_styles": random_styles, "results": results,
        "synthetic_over_original": results["synthetic"]["accuracy"] / base if base > 0 else float("nan"),
        "combined_minus_original": results["combined"]["accuracy"] - base,
        "combined_minus_original_long": results["combined"]["accuracy"] - results["original_long"]["accuracy"],
    }  # fmt: skip
    out = output_root(run) / "study"
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "classifier_study.json", summary)
    atomic_write_text(out / "classifier_study.md", study_table(summary) + "\n")
    return summary


def study_table(summary: dict[str, object]) -> str:
    """The classifier study as a Markdown table."""
    lines = [f"Test writer(s): {', '.join(summary['test_writers'])} ({summary['test_images']} images, seen by "
             "neither GAN nor classifier)", "", "| training data | images | updates | accuracy |",
             "|---|---:|---:|---:|"]  # fmt: skip
    for name, r in summary["results"].items():
        spread = f" ± {r['std']:.3f}" if summary["repeats"] > 1 else ""
        lines.append(f"| {name} | {r['train_images']} | {r.get('steps', '')} | {r['accuracy']:.3f}{spread} |")
    lines.append("")
    lines.append(f"synthetic / original = {summary['synthetic_over_original']:.2f}; "
                 f"combined - original = {summary['combined_minus_original']:+.3f}; "
                 f"combined - original_long = {summary['combined_minus_original_long']:+.3f}")  # fmt: skip
    return "\n".join(lines)
