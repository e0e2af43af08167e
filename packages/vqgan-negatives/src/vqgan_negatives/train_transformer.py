"""Conditional-prior training on gencore's Trainer, over codes of a frozen first stage.

Training pairs: each molecule image is the target; its conditioning image is made from it by
:func:`~vqgan_negatives.data.condition_from_target` (blurred ink map + Perlin noise), so that at generation time a
Perlin image is read as a layout of where strokes go. Both are encoded by the frozen first stage, each image once:
on demand, when a batch first needs it (:class:`LazyCodes`, in fixed chunks of :data:`ENCODE_CHUNK` images, so a
pair's codes do not depend on when it was first asked for, and a resumed run reads the same ones), so the first
update does not wait for the whole data set to be encoded. The GPT learns p(target codes | conditioning codes).

``python -m vqgan_negatives.train_transformer [options]`` is the same as ``vqgan-negatives train-transformer``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from gencore.checkpoint import load_tree, verify_dir
from gencore.config import from_dict, load_file
from gencore.data import split_indices
from gencore.distributed import sharded_map
from gencore.errors import CheckpointError, ConfigError
from gencore.nn import evaluating
from gencore.train import FitResult, StepContext, Trainer, seed_everything
from vqgan_negatives.config import TransformerRunConfig, VQGANConfig
from vqgan_negatives.data import PerlinParams, condition_from_target, load_training_images, perlin_images
from vqgan_negatives.model import VQModel
from vqgan_negatives.transformer import CondGPT

__all__ = ["load_vqgan", "encode_codes", "build_trainer", "run_training", "CodePairs", "LazyCodes", "LazyCodePairs",
           "validation_loss"]  # fmt: skip


def load_vqgan(path: str | Path) -> VQModel:
    """A trained first stage from a run directory, its ``model/`` or ``model/vqgan`` directory, or one of its
    checkpoints (``RUN/checkpoints/step_N``: the first stage as it was at that step, so that priors trained on
    first stages of different training lengths can be compared); frozen, eval mode."""
    path = Path(path)
    if (path / "state.safetensors").is_file():
        return _vqgan_from_checkpoint(path).eval().requires_grad_(False)
    for candidate in (path / "model" / "vqgan", path / "vqgan", path):
        if (candidate / "config.json").is_file() and (candidate / "model.safetensors").is_file():
            model = VQModel.from_pretrained(candidate).eval()
            return model.requires_grad_(False)
    raise CheckpointError(f"no trained VQGAN in {path} (expected RUN_DIR/model/vqgan with model.safetensors)")


def _vqgan_from_checkpoint(path: Path) -> VQModel:
    """The autoencoder of a first-stage checkpoint (verified), built from the run config saved in it."""
    verify_dir(path)
    try:
        config = from_dict(VQGANConfig, load_file(path / "config.json"))
    except (ConfigError, OSError) as exc:
        raise CheckpointError(f"{path} is not a checkpoint of a VQGAN run ({exc})") from None
    model = VQModel(config.model)
    try:
        model.load_state_dict(load_tree(path)["models"]["vq"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"{path} holds no matching VQGAN ({str(exc).splitlines()[0]})") from None
    return model


@torch.no_grad()
def encode_codes(model: VQModel, images: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """Code indices (N, h*w) of images (N, C, H, W) in raster order."""
    out = [model.encode(chunk)[2].flatten(1) for chunk in images.split(batch_size)]
    return torch.cat(out)


class CodePairs(torch.utils.data.Dataset):
    """(conditioning codes, target codes) pairs."""

    def __init__(self, cond: torch.Tensor, target: torch.Tensor) -> None:
        self.cond, self.target = cond, target

    def __len__(self) -> int:
        return len(self.target)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cond[i], self.target[i]


#: Images the first stage encodes together. Fixed, and counted from image 0 of the data set, so that every image's
#: codes come out of the same batch whatever asks for it first (a device's arithmetic may depend on the batch);
#: small, so that the first batch of a shuffled epoch needs only a small part of the data set encoded.
ENCODE_CHUNK = 8


class LazyCodes:
    """The codes of conditioning and target images (N, C, H, W), encoded by the frozen first stage on demand.

    :meth:`get` encodes the chunks of :data:`ENCODE_CHUNK` images that hold the requested pairs and have not been
    encoded yet (on the first stage's device) and keeps the codes, so each image is encoded once per run.
    """

    def __init__(self, vq: VQModel, cond: torch.Tensor, target: torch.Tensor) -> None:
        if len(cond) != len(target):
            raise ValueError(f"{len(cond)} conditioning images for {len(target)} targets")
        self.vq, self.images = vq, (cond, target)
        self.codes: torch.Tensor | None = None  # (N, 2, h*w) once the first chunk is encoded
        self.done = torch.zeros(-(-len(target) // ENCODE_CHUNK), dtype=torch.bool)

    def __len__(self) -> int:
        return len(self.images[1])

    @torch.no_grad()
    def get(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(conditioning codes, target codes) of the pairs ``index`` (1-D, any device), on the CPU."""
        index = index.detach().to("cpu", torch.long).flatten()
        device = next(self.vq.parameters()).device
        for chunk in torch.unique(index // ENCODE_CHUNK).tolist():
            if self.done[chunk]:
                continue
            part = slice(chunk * ENCODE_CHUNK, (chunk + 1) * ENCODE_CHUNK)
            got = torch.stack([self.vq.encode(x[part].to(device))[2].flatten(1).cpu() for x in self.images], 1)
            if self.codes is None:
                self.codes = torch.empty(len(self), 2, got.shape[-1], dtype=torch.long)
            self.codes[part] = got
            self.done[chunk] = True
        assert self.codes is not None or len(index) == 0
        picked = self.codes[index] if self.codes is not None else torch.empty(0, 2, 0, dtype=torch.long)
        return picked[:, 0], picked[:, 1]


class LazyCodePairs(torch.utils.data.Dataset):
    """The pairs ``index`` of :class:`LazyCodes`. Items are the pairs' positions in the whole set (cheap: nothing
    is encoded in a DataLoader worker); a step turns a batch of them into codes with :meth:`codes`. ``cond`` and
    ``target`` encode every pair of the subset (evaluation)."""

    def __init__(self, source: LazyCodes, index: list[int]) -> None:
        self.source, self.index = source, torch.as_tensor(index, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.index[i]

    def codes(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(conditioning codes, target codes) of a batch of items, on the batch's device."""
        cond, target = self.source.get(batch)
        return cond.to(batch.device), target.to(batch.device)

    @property
    def cond(self) -> torch.Tensor:
        return self.source.get(self.index)[0]

    @property
    def target(self) -> torch.Tensor:
        return self.source.get(self.index)[1]


def make_pairs(config: TransformerRunConfig, vq: VQModel) -> tuple[LazyCodePairs, LazyCodePairs]:
    """Training and held-out code pairs from the configured images (encoded on demand: :class:`LazyCodes`)."""
    images = load_training_images(config.data, vq.config.resolution, config.train.seed)
    cond = condition_from_target(images, config.condition, seed=config.train.seed)
    source = LazyCodes(vq, cond, images)
    train_idx, hold_idx = split_indices(len(images), [1 - config.data.holdout_fraction, config.data.holdout_fraction],
                                        seed=config.train.seed)  # fmt: skip
    return LazyCodePairs(source, train_idx), LazyCodePairs(source, hold_idx)


def build_trainer(config: TransformerRunConfig) -> tuple[Trainer, VQModel]:
    """Frozen first stage, code pairs, GPT and the Trainer (nothing trained yet)."""
    seed_everything(config.train.seed)
    vq = load_vqgan(config.vqgan)
    side, size = vq.config.code_side, vq.config.quantizer.codebook_size
    gpt_cfg = config.gpt
    if gpt_cfg.vocab_size != 2 * size or gpt_cfg.block_size != 2 * side * side:
        gpt_cfg = type(gpt_cfg)(**{**gpt_cfg.__dict__, "vocab_size": 2 * size, "block_size": 2 * side * side})
        config.gpt = gpt_cfg  # the sizes follow the first stage; saved so that from_pretrained rebuilds the same
    train_pairs, holdout = make_pairs(config, vq)
    gpt = CondGPT(gpt_cfg)
    o = config.optim
    optimizer = torch.optim.AdamW(gpt.parameters(), o.lr, betas=(0.9, 0.95), weight_decay=o.weight_decay)
    perlin = perlin_images(8, vq.config.resolution, PerlinParams(seed=10_000), vq.config.in_channels)

    def step(ctx: StepContext, batch: torch.Tensor) -> dict[str, Any]:
        cond, target = train_pairs.codes(batch)  # the pairs' positions -> their codes, encoded on first use
        loss = _loss(ctx.models["gpt"], cond, target)
        ctx.update("gpt", loss)
        return {"loss": loss}

    def evaluate(trainer: Trainer) -> dict[str, float]:
        loss = validation_loss(trainer.unwrap("gpt"), holdout, config.eval.batch_size, trainer.accelerator)
        return {"val_loss": loss}

    def samples(trainer: Trainer) -> torch.Tensor:
        from vqgan_negatives.sample import generate

        gen = generate(vq, trainer.unwrap("gpt"), perlin, config.temperature, config.top_k, seed=0).cpu()
        return torch.cat([perlin, gen]) * 0.5 + 0.5  # top row: Perlin conditioning, bottom row: generated

    trainer = Trainer(
        config.train, {"gpt": gpt}, {"gpt": optimizer}, step, train_pairs, sample_fn=samples, eval_fn=evaluate,
        run_config=config, export_fn=lambda trainer, result: export_models(trainer, result, vq),
    )  # fmt: skip
    vq.to(trainer.accelerator.device)
    return trainer, vq


@torch.no_grad()
def validation_loss(
    model: CondGPT, pairs: CodePairs | LazyCodePairs, batch_size: int = 128, accelerator: Accelerator | None = None
) -> float:
    """Mean cross-entropy per target code over ``pairs`` (model in eval mode during the call).

    With ``accelerator`` each process scores its share of the batches and the per-pair losses are gathered (call
    it on every process; all get the same value).
    """
    device = next(model.parameters()).device
    all_cond, all_target = pairs.cond, pairs.target  # lazy pairs encode their images here, once

    def per_pair(start: int, stop: int) -> torch.Tensor:
        cond, target = all_cond[start:stop].to(device), all_target[start:stop].to(device)
        logits = model(cond, target[:, :-1])
        return torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none").mean(1)

    with evaluating(model):
        losses = sharded_map(accelerator, len(pairs), per_pair, batch_size)
    return float(losses.mean())  # every pair has the same number of codes: the mean over all codes


def _loss(model: torch.nn.Module, cond: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # through forward (not .loss) so that a DDP wrapper sees the call
    logits = model(cond, target[:, :-1])
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten())


def export_models(trainer: Trainer, result: FitResult, vq: torch.nn.Module) -> None:
    """Once training is over write ``model/gpt`` and a copy of the first stage, ``model/vqgan`` (the prior is
    useless without its own first stage); the Trainer's ``export_fn``."""
    if not result.completed:
        return
    run_dir = Path(trainer.run_dir)
    trainer.unwrap("gpt").save_pretrained(run_dir / "model" / "gpt", training=trainer.training_record(result))
    vq.save_pretrained(run_dir / "model" / "vqgan")  # a copy: how it was trained is in the first stage run's card
    val = result.metrics.get("val_loss")
    trainer.print(f"done ({result.reason}) at step {result.step}: {run_dir}/model; val_loss {val:.4g}")


def run_training(config: TransformerRunConfig, resume: str | None = None) -> FitResult:
    """Train the prior; writes the run directory with ``model/gpt`` and a copy of the first stage, ``model/vqgan``."""
    trainer, _ = build_trainer(config)
    return trainer.fit(resume=resume)


if __name__ == "__main__":  # accelerate launch -m vqgan_negatives.train_transformer [options]
    import sys

    from vqgan_negatives.cli import main

    main(["train-transformer", *sys.argv[1:]])
