"""Training M1 on all pixels (labeled or not) on gencore's Trainer, with the original's log and patience stop.

Every ``log_every`` (10) steps one line: step, elapsed seconds, the training batch ELBO, the validation
log-likelihood (a single-sample ELBO over the validation pixels, as the original's ``est_loglik`` with one
sample) and the number of evaluations without improvement; training stops after ``patience`` (100) of them.

``python -m m1_hyperspectral.train [DATA...] [options]`` (and so ``accelerate launch -m m1_hyperspectral.train``)
is the same as ``m1-hyperspectral train``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator

from gencore.distributed import sharded_map
from gencore.train import FitResult, StepContext, Trainer, TrainerHook, seed_everything
from m1_hyperspectral.config import M1RunConfig
from m1_hyperspectral.data import Pixels, Scene, load_scenes, pixels_from_scenes, split_pixels, synthetic_scenes
from m1_hyperspectral.model import M1, M1Config, require_memory_for
from m1_hyperspectral.plots import scene_figure, spectra_figure

CONSOLE = ["elapsed_s", "elbo", "eval/valid_ll", "eval/bad_evals"]


class Spectra(torch.utils.data.Dataset):
    """Normalised spectra; fetched a whole batch at a time (``__getitems__``), which matters at batch 1000."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]

    def __getitems__(self, indices: list[int]) -> torch.Tensor:
        return self.x[torch.as_tensor(indices)]


def _as_batch(batch: torch.Tensor) -> torch.Tensor:
    return batch


@dataclass
class Prepared:
    """The data of a run: the scenes, all pixels and the split indices."""

    scenes: list[Scene]
    pixels: Pixels
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def prepare_data(config: M1RunConfig) -> Prepared:
    """Load the configured files (or make the synthetic scene) and split the pixels with the run's seed."""
    d = config.data
    scenes = load_scenes(d.paths, d.cube_key, d.gt_key) if d.paths else synthetic_scenes(d.synth)
    pixels = pixels_from_scenes(scenes)
    train, valid, test = split_pixels(len(pixels), d.valid_fraction, d.test_fraction, config.train.seed)
    return Prepared(scenes, pixels, train, valid, test)


def build_model(config: M1RunConfig, train_spectra: np.ndarray) -> M1:
    """An M1 for these spectra, with the per-band normalisation of the training pixels stored inside."""
    m = config.model
    arch = M1Config(train_spectra.shape[1], list(m.hidden), m.latent, m.activation, m.likelihood)
    # one line naming the sizes, not the allocator's traceback
    require_memory_for(arch, training=True, device="cpu" if config.train.cpu else None)
    model = M1(arch)
    model.set_normalization(torch.from_numpy(train_spectra))
    return model


@torch.no_grad()
def mean_elbo(
    model: M1, x: torch.Tensor, seed: int, batch: int = 4096, accelerator: Accelerator | None = None
) -> float:
    """Mean single-sample ELBO (nats per pixel) of normalised ``x``, with fixed noise so evaluations compare.

    Each batch draws its noise from ``seed + first index`` (the global RNG is left as it was), so the value does
    not depend on how many processes share the work: with ``accelerator`` each rank does its share of the batches
    and the per-pixel values are gathered (call it on every process; all get the same value).
    """
    device = next(model.parameters()).device
    per_pixel = sharded_map(accelerator, len(x), lambda a, b: model.elbo(x[a:b].to(device))["elbo"], batch, seed=seed)
    # summed batch by batch, as the single-process loop always did, so one process gives the same digits
    return sum(float(chunk.sum()) for chunk in per_pixel.split(batch)) / len(x)


def weight_decay(config: M1RunConfig, n_train: int) -> float:
    """Adam weight decay equal to a N(0, sd^2) weight prior whose log density is scaled by batch/train size.

    The original maximises sum_batch ELBO + (batch/n_train) log p(w); per pixel that is mean ELBO + log p(w)/n_train,
    whose gradient adds -w / (sd^2 n_train).
    """
    return 1.0 / (config.optim.weight_prior_sd**2 * n_train) if config.optim.weight_prior_sd > 0 else 0.0


def make_optimizer(config: M1RunConfig, model: M1, n_train: int) -> torch.optim.Adam:
    """Adam (betas 0.9/0.999 as in the paper's code) with the weight prior as weight decay on the matrices."""
    return torch.optim.Adam(model.optimizer_groups(weight_decay(config, n_train)), config.optim.lr, betas=(0.9, 0.999))


def make_step(config: M1RunConfig):
    """One Adam step on the negative mean ELBO of the batch (the weight prior lives in the optimizer)."""

    def step(ctx: StepContext, x: torch.Tensor) -> dict[str, Any]:
        terms = ctx.models["M1"](x)
        loss = -terms["elbo"].mean()
        ctx.update("M1", loss)
        return {"elbo": terms["elbo"].mean(), "rec": terms["rec"].mean(), "kl": terms["kl"].mean()}

    return step


class BestModel(TrainerHook):
    """Keeps the weights of the best validation log-likelihood (the original's ``w_best``/``v_best``).

    They are written to ``run_dir/model`` at most every ``min_interval`` seconds and at the end of every fit
    (also one stopped by a signal), so frequent improvements early in training do not turn into a file write
    every 10 steps. The best value is this hook's state, saved in checkpoints: a resumed run keeps comparing
    against it, whatever the early-stopping settings.
    """

    def __init__(self, run_dir: Path, min_interval: float = 30.0) -> None:
        self.path, self.min_interval = run_dir / "model", min_interval
        self.model: M1 | None = None
        self.best: float | None = None
        self.dirty, self.last_write = False, 0.0

    def state_dict(self) -> dict[str, float | None]:
        """The best validation value so far."""
        return {"best": self.best}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the best value of the resumed run."""
        self.best = state.get("best")

    def on_evaluate(self, trainer: Trainer, metrics: Mapping[str, float], improved: bool | None) -> None:
        """Remember the current weights when ``valid_ll`` beats the best so far (main process keeps the copy).

        When the Trainer watches ``valid_ll`` (the default), its verdict ``improved`` decides: its best value is in
        every checkpoint, also in those written before this hook kept one; otherwise the hook's own best does."""
        value = metrics["valid_ll"]
        better = math.isfinite(value) and (self.best is None or value > self.best)
        if trainer.config.early_stop_metric == "valid_ll" and improved is not None:
            better = improved
        if not better:
            return
        self.best = value
        if not trainer.is_main:
            return
        current = trainer.unwrap("M1")
        if self.model is None:  # a copy, not a new M1: building one would draw from the training RNG
            self.model = copy.deepcopy(current).cpu()
        else:
            self.model.load_state_dict({k: v.detach().cpu() for k, v in current.state_dict().items()})
        self.dirty = True
        if time.monotonic() - self.last_write > self.min_interval:
            self.write()

    def write(self) -> None:
        """Save the remembered best weights (atomic) if they changed since the last write."""
        if self.dirty and self.model is not None:
            self.model.save_pretrained(self.path)
            self.dirty, self.last_write = False, time.monotonic()

    def on_fit_end(self, trainer: Trainer, result: FitResult) -> None:
        """Write the best weights; with no finite validation value at all, the final ones."""
        self.write()
        if not (self.path / "config.json").is_file():
            trainer.unwrap("M1").save_pretrained(self.path)


def build_trainer(config: M1RunConfig, prepared: Prepared | None = None) -> Trainer:
    """Data, model, optimiser and the Trainer for ``config`` (nothing trained yet)."""
    seed_everything(config.train.seed)
    prep = prepared or prepare_data(config)
    spectra = prep.pixels.spectra
    model = build_model(config, spectra[prep.train])
    x_train = model.normalize(torch.from_numpy(spectra[prep.train]))
    x_valid = model.normalize(torch.from_numpy(spectra[prep.valid]))
    optimizer = make_optimizer(config, model, len(prep.train))
    scene = prep.scenes[0]

    best = BestModel(Path(config.train.output_dir))

    def evaluate(trainer: Trainer) -> dict[str, float]:
        return {"valid_ll": mean_elbo(trainer.unwrap("M1"), x_valid, config.train.seed, config.eval.batch_size,
                                      trainer.accelerator)}  # fmt: skip

    def samples(trainer: Trainer) -> dict[str, torch.Tensor]:
        m = trainer.unwrap("M1")
        real = torch.from_numpy(spectra[prep.valid[:8]])
        fake = m.sample(8, torch.Generator().manual_seed(0)).cpu()
        return {
            "spectra": spectra_figure(real, fake, scene.wavelengths, f"step {trainer.step}")[None],
            "scene": scene_figure(m, scene)[None],
        }

    def export(trainer: Trainer, result: FitResult) -> None:
        if result.completed:
            trainer.print(
                f"done ({result.reason}) at step {result.step}: valid_ll "
                f"{result.metrics.get('valid_ll', float('nan')):.4g} nats/pixel (best {trainer.best:.4g}); "
                f"{trainer.run_dir}/model, samples/, metrics.csv, losses.png"
            )

    return Trainer(
        config.train, {"M1": model}, {"M1": optimizer}, make_step(config), Spectra(x_train),
        sample_fn=samples, eval_fn=evaluate, run_config=config, collate_fn=_as_batch,
        console_columns=CONSOLE, hooks=[best], export_fn=export,
    )  # fmt: skip


def run_training(config: M1RunConfig, resume: str | None = None) -> FitResult:
    """Train; writes the run directory and ``model/`` (the best validation weights with the normalisation)."""
    prep = prepare_data(config)
    trainer = build_trainer(config, prep)
    p = prep.pixels
    trainer.print(
        f"{len(p)} pixels x {p.bands} bands from {', '.join(p.files)}: {len(prep.train)} train, "
        f"{len(prep.valid)} validation, {len(prep.test)} test; {int((p.labels > 0).sum())} labeled"
    )
    return trainer.fit(resume=resume)


if __name__ == "__main__":  # accelerate launch -m m1_hyperspectral.train [DATA...] [options]
    import sys

    from m1_hyperspectral.cli import main

    main(["train", *sys.argv[1:]])
