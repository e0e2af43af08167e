"""Generation pipeline: conditioning images -> conditioning codes -> sampled target codes -> decoded images."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from gencore.errors import CheckpointError, ConfigError
from gencore.nn import evaluating
from vqgan_negatives.data import PerlinParams, gaussian_images, load_image_folder, perlin_images
from vqgan_negatives.model import VQModel
from vqgan_negatives.train_transformer import encode_codes, load_vqgan
from vqgan_negatives.transformer import CondGPT

__all__ = ["Pipeline", "load_pipeline", "check_pair", "generate", "conditioning_images"]


@dataclass
class Pipeline:
    """A trained prior with its first stage; ``name`` identifies it in manifests and experiment tables."""

    vq: VQModel
    gpt: CondGPT
    name: str
    first_stage: str = ""  # what the prior was trained on (its run config's ``vqgan``: a run or a checkpoint)


def load_pipeline(path: str | Path) -> Pipeline:
    """A transformer run directory (or its ``model/``, or one of its ``checkpoints/step_N``) -> frozen models.

    A checkpoint gives the prior as it was at that step (to compare training lengths); its first stage is the
    run's ``model/vqgan`` or, failing that, the ``vqgan`` path of the run's config.
    """
    path = Path(path)
    if (path / "state.safetensors").is_file():
        return _pipeline_from_checkpoint(path)
    root = path / "model" if (path / "model" / "gpt").is_dir() else path
    if not (root / "gpt" / "config.json").is_file():
        raise CheckpointError(f"no trained transformer in {path} (expected RUN_DIR/model/gpt and model/vqgan)")
    gpt = CondGPT.from_pretrained(root / "gpt").eval()
    vq = load_vqgan(root / "vqgan")
    check_pair(vq, gpt, root / "vqgan", root / "gpt")
    return Pipeline(vq, gpt, path.name, _first_stage(path))


def _first_stage(run: Path) -> str:
    """The ``vqgan`` of a transformer run's config.json ("" when the folder is not a run)."""
    try:
        value = json.loads((run / "config.json").read_text(encoding="utf-8-sig")).get("vqgan", "")
    except (OSError, ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def check_pair(vq: VQModel, gpt: CondGPT, vq_dir: str | Path, gpt_dir: str | Path) -> None:
    """The prior's token and position tables must fit the first stage's codebook and code grid: a first stage
    from another run (another codebook size, resolution or downsampling) is refused with one line naming both,
    instead of an IndexError deep inside sampling."""
    codes, side = vq.config.quantizer.codebook_size, vq.config.code_side
    vocab, block = gpt.config.vocab_size, gpt.config.block_size
    if vocab != 2 * codes or block != 2 * side * side:
        raise CheckpointError(
            f"{vq_dir} does not belong to the transformer in {gpt_dir}: the transformer reads "
            f"{vocab // 2} codes in {block // 2} positions, the VQGAN has {codes} codes in a {side}×{side} grid "
            f"({side * side} positions); use the model/vqgan saved with the transformer run"
        )


def _pipeline_from_checkpoint(path: Path) -> Pipeline:
    from gencore.checkpoint import load_tree, verify_dir
    from gencore.config import from_dict
    from vqgan_negatives.config import TransformerRunConfig

    verify_dir(path)
    try:
        config = from_dict(TransformerRunConfig, json.loads((path / "config.json").read_text(encoding="utf-8-sig")))
    except (OSError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"{path}/config.json is not a transformer run config ({exc})") from None
    gpt = CondGPT(config.gpt)
    try:
        gpt.load_state_dict(load_tree(path)["models"]["gpt"])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{path} holds no matching transformer ({str(exc).splitlines()[0]})") from None
    run_dir = path.parent.parent
    vq_dir = run_dir / "model" / "vqgan" if (run_dir / "model" / "vqgan").is_dir() else Path(config.vqgan)
    vq = load_vqgan(vq_dir)
    check_pair(vq, gpt, vq_dir, path)
    return Pipeline(vq, gpt.eval(), f"{run_dir.name}@{path.name}", config.vqgan)


@torch.no_grad()
def generate(
    vq: VQModel,
    gpt: CondGPT,
    cond_images: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = 100,
    seed: int = 0,
    batch_size: int = 64,
) -> torch.Tensor:
    """One generated image per conditioning image (N, C, H, W) in [-1, 1]; deterministic given ``seed``."""
    device = next(gpt.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    side = vq.config.code_side
    out = []
    with evaluating(vq):
        for chunk in cond_images.split(batch_size):
            cond = encode_codes(vq, chunk.to(device))
            codes = gpt.sample(cond, side * side, temperature, top_k, generator=gen)
            out.append(vq.decode_indices(codes.view(-1, side, side)).clamp(-1, 1))
    return torch.cat(out)


def conditioning_images(
    kind: str, n: int, size: int, channels: int = 1, perlin: PerlinParams | None = None, seed: int = 0
) -> torch.Tensor:
    """``n`` conditioning images: ``perlin`` (with ``perlin`` parameters), ``gaussian``, or ``image:PATH``.

    ``image:PATH`` takes a single image file or every image of a folder, cycled to ``n``.
    """
    if kind == "perlin":
        params = perlin or PerlinParams()
        return perlin_images(n, size, PerlinParams(**{**params.__dict__, "seed": params.seed + seed}), channels)
    if kind == "gaussian":
        return gaussian_images(n, size, seed=seed, channels=channels)
    if kind.startswith("image:"):
        path = Path(kind.removeprefix("image:"))
        if path.is_file():
            from gencore.data import image_to_tensor, load_image

            images = image_to_tensor(load_image(path, "L" if channels == 1 else "RGB", (size, size)))[None]
        else:
            images = load_image_folder(path, size, channels)
        reps = -(-n // len(images))
        return images.repeat(reps, 1, 1, 1)[:n]
    raise ConfigError(f"unknown condition {kind!r}: use perlin, gaussian or image:PATH")
