"""Making hard negatives: the sampling experiment (models x conditioning kinds) and generate-clean-write.

Conditioning specs (``--condition``): ``perlin`` or ``perlin:scale=8,octaves=4,threshold=0`` (any
:class:`PerlinParams` field), ``gaussian``, ``image:PATH`` (a file or a folder).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
from pathlib import Path

import torch

from gencore.checkpoint import atomic_dir
from gencore.errors import ConfigError
from gencore.metrics import kernel_inception_distance
from gencore.progress import Counter
from gencore.seeding import torch_seed
from vqgan_negatives.clean import CleanConfig, average_hash, clean, ink_fraction, isolated_fraction
from vqgan_negatives.data import PerlinParams, save_tensor_image
from vqgan_negatives.perceptual import RandomFeatureLoss, _normalize_channels, _to_rgb
from vqgan_negatives.sample import Pipeline, conditioning_images, generate

__all__ = ["parse_condition", "image_features", "run_experiment", "make_negatives"]


def parse_condition(spec: str) -> tuple[str, PerlinParams | None]:
    """``perlin[:k=v,...]`` | ``gaussian`` | ``image:PATH`` -> (kind, Perlin parameters or None)."""
    if spec.startswith("image:") or spec == "gaussian":
        return spec, None
    kind, _, rest = spec.partition(":")
    if kind != "perlin":
        raise ConfigError(f"unknown condition {spec!r}: use perlin[:key=value,...], gaussian or image:PATH")
    types = {f.name: f.type for f in fields(PerlinParams)}
    values: dict[str, float | int | None] = {}
    for item in filter(None, rest.split(",")):
        key, eq, raw = item.partition("=")
        if not eq or key not in types:
            raise ConfigError(f"bad Perlin option {item!r} in {spec!r} (known: {', '.join(types)})")
        try:
            values[key] = int(raw) if key in ("octaves", "seed") else (None if raw == "none" else float(raw))
        except ValueError:
            raise ConfigError(f"bad value for {key} in {spec!r}: {raw!r}") from None
    try:
        params = PerlinParams(**values)
    except TypeError as exc:
        raise ConfigError(f"{spec}: {exc}") from None
    if params.scale <= 0 or params.octaves < 1 or params.lacunarity <= 0:
        raise ConfigError(f"{spec}: need scale > 0, octaves >= 1, lacunarity > 0")
    return "perlin", params


@torch.no_grad()
def image_features(images: torch.Tensor, net: RandomFeatureLoss | None = None) -> torch.Tensor:
    """(N, D) features for KID: spatial means and stds of each stage of the random-feature network."""
    net = net or RandomFeatureLoss()
    feats, x = [], _to_rgb(images)
    for stage in net.stages:
        x = stage(x)
        f = _normalize_channels(x)
        feats += [f.mean((2, 3)), f.std((2, 3))]
    return torch.cat(feats, 1)


def _features_in_batches(images: torch.Tensor, net: RandomFeatureLoss, batch_size: int) -> torch.Tensor:
    # features are per image, so the batches only bound the memory of the activations
    return torch.cat([image_features(chunk, net) for chunk in images.split(batch_size)])


def run_experiment(
    pipelines: Sequence[Pipeline],
    conditions: Sequence[str],
    real: torch.Tensor,
    out_dir: str | Path,
    n: int = 32,
    temperature: float = 1.0,
    top_k: int | None = 100,
    seed: int = 0,
    clean_config: CleanConfig | None = None,
    log: Callable[[str], None] = print,
    batch_size: int = 64,
) -> list[dict]:
    """Generate ``n`` images per (model, condition) and score them; writes ``grid.png`` and ``scores.csv``.

    ``batch_size`` images go through a model at a time: the generator (whose samples depend on it, as with
    ``sample``: a seed and a batch size give the same images) and the KID feature network (whose features do not).

    Scores: ``kid`` between generated and real molecules (random-feature KID, lower = closer to molecule
    statistics, i.e. a harder negative), ``pass_rate`` (fraction the cleaner keeps, duplicates and memorised copies
    included as rejections) and ``ink`` (mean ink fraction). Rows of ``grid.png`` follow the rows of the CSV.
    """
    from gencore.viz import save_image_grid

    clean_config = clean_config or CleanConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net = RandomFeatureLoss()
    real_feats = _features_in_batches(real, net, batch_size)
    rows, tiles = [], []
    for pipe in pipelines:
        res, ch = pipe.vq.config.resolution, pipe.vq.config.in_channels
        for spec in conditions:
            kind, params = parse_condition(spec)
            cond = conditioning_images(kind, n, res, ch, params, seed)
            images = generate(pipe.vq, pipe.gpt, cond, temperature, top_k, seed, batch_size).cpu()  # scored on the CPU
            verdicts = clean(images, clean_config, real)
            kid, _ = kernel_inception_distance(_features_in_batches(images, net, batch_size), real_feats, subsets=10,
                                               subset_size=min(n, len(real)))  # fmt: skip
            row = {"model": pipe.name, "first_stage": pipe.first_stage, "condition": spec, "n": n, "kid": round(kid, 5),
                   "pass_rate": round(verdicts.count("kept") / n, 3),
                   "ink": round(float(ink_fraction(images).mean()), 4)}  # fmt: skip
            rows.append(row)
            log(", ".join(f"{k} {v}" for k, v in row.items()))
            tiles += [cond[:4], images[:4]]
    save_image_grid(torch.cat(tiles) * 0.5 + 0.5, out / "grid.png", nrow=8)
    with open(out / "scores.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


MANIFEST_FIELDS = [
    "index", "file", "status", "model", "sample_seed", "condition", "perlin_scale", "perlin_octaves",
    "perlin_persistence", "perlin_lacunarity", "perlin_seed", "perlin_contrast", "perlin_threshold",
    "temperature", "top_k", "ink", "isolated", "condition_seed",
]  # fmt: skip


#: The producer named in the output folder's manifest: only such a folder is ever replaced (``overwrite``).
PRODUCER = "vqgan-negatives make-negatives"


def _conditions(kind: str, perlin: PerlinParams, first: int, n: int, size: int, channels: int) -> torch.Tensor:
    """The conditioning images ``first .. first + n - 1`` of a make-negatives run: image ``i`` of Perlin and
    Gaussian noise is drawn from seed ``perlin.seed + i`` alone (so a manifest row reproduces it), of a folder it
    is image ``i`` (cycled)."""
    if kind == "perlin":
        params = PerlinParams(**{**asdict(perlin), "seed": perlin.seed + first})
        return conditioning_images(kind, n, size, channels, params)
    if kind == "gaussian":
        seeds = range(perlin.seed + first, perlin.seed + first + n)
        return torch.cat([conditioning_images(kind, 1, size, channels, seed=s) for s in seeds])
    return conditioning_images(kind, first + n, size, channels)[first:]


def make_negatives(
    pipeline: Pipeline,
    out_dir: str | Path,
    n: int = 400,
    perlin: PerlinParams | None = None,
    temperature: float = 1.0,
    top_k: int | None = 100,
    seed: int = 0,
    clean_config: CleanConfig | None = None,
    training_images: torch.Tensor | None = None,
    molecule_score: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 64,
    max_rounds: int = 20,
    log: Callable[[str], None] = print,
    overwrite: bool = False,
    condition: str = "perlin",
) -> dict[str, int]:
    """Generate from conditioning images in batches, clean, and write exactly ``n`` kept images plus
    ``manifest.csv``.

    ``condition`` is any kind of the sampling experiment (:func:`parse_condition`): ``perlin`` (with ``perlin``),
    ``perlin:key=value,...`` (its own parameters), ``gaussian`` or ``image:PATH``. Every generated image gets a
    manifest row (kept ones with their file name, rejected ones with the filter that rejected them) with the
    model, sampling seed and conditioning that reproduce it: image ``i`` uses conditioning seed ``perlin.seed + i``
    (Perlin and Gaussian; for ``image:`` the index of the image in the folder, cycled) and the sampling seed of
    its batch. The folder appears only when complete.
    """
    clean_config = clean_config or CleanConfig()
    kind, spec_params = parse_condition(condition)
    perlin = perlin or PerlinParams()
    if spec_params is not None and ":" in condition:  # perlin:key=value,... sets its keys; the seed stays ours
        own_seed = any(item.strip().startswith("seed=") for item in condition.partition(":")[2].split(","))
        perlin = spec_params if own_seed else PerlinParams(**{**asdict(spec_params), "seed": perlin.seed})
    is_perlin = kind == "perlin"
    res, ch = pipeline.vq.config.resolution, pipeline.vq.config.in_channels
    rows: list[dict] = []
    counts: dict[str, int] = {}
    kept_images: list[torch.Tensor] = []
    kept_hashes = torch.zeros(0, 256, dtype=torch.bool)
    with atomic_dir(out_dir, overwrite=overwrite, producer=PRODUCER) as tmp, Counter(n, "kept images") as bar:
        for round_ in range(max_rounds):
            missing = n - len(kept_images)
            if missing <= 0:
                break
            size = min(batch_size, max(8, math.ceil(missing * 1.5)))
            first, first_kept = len(rows), len(kept_images)
            cond = _conditions(kind, perlin, first, size, res, ch)
            batch_seed = torch_seed(seed * 100_003 + round_)
            # cleaned (and written) on the CPU
            images = generate(pipeline.vq, pipeline.gpt, cond, temperature, top_k, batch_seed).cpu()
            verdicts = clean(images, clean_config, training_images, molecule_score, kept_hashes)
            ink, iso = ink_fraction(images), isolated_fraction(images)
            hashes = average_hash(images)
            for j, verdict in enumerate(verdicts):
                if verdict == "kept" and len(kept_images) >= n:
                    verdict = "surplus"
                counts[verdict] = counts.get(verdict, 0) + 1
                name = ""
                if verdict == "kept":
                    name = f"negative_{len(kept_images):04d}.png"
                    save_tensor_image(images[j], tmp / name)
                    kept_images.append(images[j])
                    kept_hashes = torch.cat([kept_hashes, hashes[j : j + 1]])
                rows.append({
                    "index": first + j, "file": name, "status": verdict, "model": pipeline.name,
                    "sample_seed": batch_seed, "condition": kind, "temperature": temperature, "top_k": top_k,
                    "ink": round(float(ink[j]), 4), "isolated": round(float(iso[j]), 4),
                    "condition_seed": (first + j) if kind.startswith("image:") else perlin.seed + first + j,
                    **({"perlin_scale": perlin.scale, "perlin_octaves": perlin.octaves,
                        "perlin_persistence": perlin.persistence, "perlin_lacunarity": perlin.lacunarity,
                        "perlin_seed": perlin.seed + first + j, "perlin_contrast": perlin.contrast,
                        "perlin_threshold": perlin.threshold} if is_perlin else {}),
                })  # fmt: skip
            bar.update(min(n, len(kept_images)) - min(n, first_kept))
            log(f"round {round_ + 1}: generated {len(rows)}, kept {len(kept_images)}/{n} ({counts})")
        if len(kept_images) < n:
            raise ConfigError(
                f"only {len(kept_images)} of {n} images passed cleaning after {max_rounds} rounds ({counts}); "
                "loosen the cleaning thresholds or change the conditioning (--condition, the Perlin parameters)"
            )
        with open(tmp / "manifest.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, MANIFEST_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        from gencore.viz import save_image_grid

        save_image_grid(torch.stack(kept_images[:64]) * 0.5 + 0.5, tmp / "preview.png", nrow=8)
    return counts
