"""Training M1 on all pixels (labeled or not) on gencore's Trainer, with the original's log and patience stop.

Every ``log_every`` (10) steps one line: step, elapsed seconds, the training batch ELBO, the validation
log-likelihood (a single-sample ELBO over the validation pixels, as the original's ``est_loglik`` with one
sample) and the number of evaluations without improvement; training stops after ``patience`` (100) of them.

With the ``original`` preset (``config.PRESETS``) a step of the log and of the patience is an evaluation every 10
epochs, as in gpulearn_z_x.py, and :class:`OriginalLog` writes the original's ``hook.txt``; :func:`resolve_run_dir`
names the run directory as the original's logdir.

``python -m m1_hyperspectral.train [DATA...] [options]`` (and so ``accelerate launch -m m1_hyperspectral.train``)
is the same as ``m1-hyperspectral train``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator

from gencore.distributed import sharded_map
from gencore.errors import CheckpointError
from gencore.fileio import atomic_write_text
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


def make_step(config: M1RunConfig, log: OriginalLog | None = None):
    """One Adam step on the negative mean ELBO of the batch (the weight prior lives in the optimizer).

    With ``data.binarize = "stochastic"`` the batch is first drawn as x ~ Bernoulli(x) (the original's
    ``bernoulli_x``) from the Trainer's RNG, which checkpoints save, so a resumed run draws what an unbroken one
    does. ``log`` (the original's hook.txt) is given the batch's ELBO for its per-epoch training value."""
    stochastic = config.data.binarize == "stochastic"

    def step(ctx: StepContext, x: torch.Tensor) -> dict[str, Any]:
        if stochastic:
            x = torch.bernoulli(x)
        terms = ctx.models["M1"](x)
        loss = -terms["elbo"].mean()
        ctx.update("M1", loss)
        if log is not None:
            log.add(ctx, terms["elbo"])
        return {"elbo": terms["elbo"].mean(), "rec": terms["rec"].mean(), "kl": terms["kl"].mean()}

    return step


def _py2_str(value: float) -> str:
    """A float as Python 2's ``print`` wrote it (``str``: 12 significant digits, ``1.0`` not ``1``)."""
    text = format(value, ".12g")
    return text + ".0" if text.lstrip("-").isdigit() else text


def data_name(config: M1RunConfig) -> str:
    """The data set's name in the original's logdir and hook.txt: the file names (without suffix) or synthetic."""
    if not config.data.paths:
        return "synthetic"
    return "+".join(Path(p).name.split(".")[0] for p in config.data.paths)


def original_header(config: M1RunConfig) -> str:
    """The first line of the original's hook.txt: ``learn_z_x n_z n_hidden dataset seed``."""
    return f"learn_z_x {config.model.latent} {list(config.model.hidden)} {data_name(config)} {config.train.seed}\n"


class OriginalLog(TrainerHook):
    """The original's text log ``hook.txt`` (gpulearn_z_x.py), one line per evaluation::

        learn_z_x 50 [500, 500] synthetic 0
        10 12.3456789012 101.234567891 103.456789012 [103.45678901234567, 0]
        ...
        Finished

    after the header (the latent size, the hidden widths, the data and the seed), per evaluation: the epoch, the
    training time in seconds (continued across resumes), the mean training ELBO per pixel of the latest epoch
    (the original's ``ll``), the validation log-likelihood and the original's ``ll_valid_stats``, [best value
    (-1e99 before the first), evaluations since it]; numbers as Python 2's ``print`` wrote them. The
    evaluation at which the patience runs out writes ``Finished`` instead of its line, as the original did
    before it exited. The header comes with the first line.

    The file is rewritten atomically at the first line a process writes (cut back to what the resumed checkpoint
    had seen, so lines written after that checkpoint are not repeated) and appended to after that; its length,
    the original's best/count and the epoch's ELBO sum are this hook's state, saved in every checkpoint.
    """

    def __init__(self, path: Path, header: str) -> None:
        self.path, self.header = path, header
        self.size: int | None = None  # bytes of hook.txt the training state has written (None: nothing yet)
        self.stats: list[float | int] = [-1e99, 0]  # the original's ll_valid_stats: best, evaluations since
        self.epoch, self.sums = -1, None  # the epoch being summed; (sum of ELBO, pixels) of it, all processes
        self.last_step = -1  # the step of the latest line (a resumed finished run does not write it twice)
        self.synced = False  # whether this process has cut the file back to ``size`` yet

    def add(self, ctx: StepContext, elbo: torch.Tensor) -> None:
        """Add a batch's per-pixel ELBO to the current epoch's sum (summed over the processes)."""
        values = torch.stack([elbo.detach().float().sum(), torch.tensor(float(elbo.numel()), device=elbo.device)])
        if ctx.accelerator.num_processes > 1:  # every rank holds the same sums (checkpoints compare the ranks)
            values = ctx.accelerator.reduce(values, "sum")
        if ctx.epoch != self.epoch or self.sums is None:
            self.epoch, self.sums = ctx.epoch, values
        else:
            self.sums = self.sums.to(values.device) + values

    def state_dict(self) -> dict[str, Any]:
        """The file's length, the original's statistics and the epoch's sums."""
        sums = None if self.sums is None else self.sums.detach().cpu()
        return {"size": self.size, "best": float(self.stats[0]), "count": int(self.stats[1]), "epoch": self.epoch,
                "sums": sums, "last_step": self.last_step}  # fmt: skip

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a checkpoint's state."""
        self.size, self.stats = state.get("size"), [float(state.get("best", -1e99)), int(state.get("count", 0))]
        self.epoch, self.sums = int(state.get("epoch", -1)), state.get("sums")
        self.last_step = int(state.get("last_step", -1))

    def line(self, trainer: Trainer, valid: float, improved: bool | None) -> str:
        """The text for this evaluation (also updates the original's statistics)."""
        if valid > self.stats[0]:  # the original's comparison (NaN is no improvement)
            self.stats = [valid, 0]
        else:
            self.stats[1] += 1
        cfg = trainer.config
        if improved is False and cfg.patience and trainer.bad_evals >= cfg.patience:
            return "Finished\n"
        epochs = trainer.step / max(trainer.steps_per_epoch, 1)
        epoch = str(int(epochs)) if epochs == int(epochs) else f"{epochs:.3f}"
        ll = float(self.sums[0] / self.sums[1]) if self.sums is not None and float(self.sums[1]) > 0 else math.nan
        best = float(self.stats[0])
        return (f"{epoch} {_py2_str(trainer.elapsed_s())} {_py2_str(ll)} {_py2_str(valid)} "
                f"[{best!r}, {self.stats[1]}]\n")  # fmt: skip

    def on_evaluate(self, trainer: Trainer, metrics: Mapping[str, float], improved: bool | None) -> None:
        """Write this evaluation's line (main process; every process keeps the same state)."""
        if trainer.step == self.last_step:
            return
        self.last_step = trainer.step
        text = self.line(trainer, metrics["valid_ll"], improved)
        if self.size is None:
            text = self.header + text
        start = self.size or 0
        self.size = start + len(text.encode())
        if not trainer.is_main:
            return
        if self.synced:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(text)
            return
        kept = b""
        if start and self.path.is_file():
            kept = self.path.read_bytes()[:start]
        atomic_write_text(self.path, kept.decode("utf-8", errors="replace") + text)
        self.synced = True


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
        self.best_step: int | None = None
        self.record: dict[str, Any] | None = None  # how the remembered weights were trained (the model card's)
        self.dirty, self.last_write = False, 0.0

    def state_dict(self) -> dict[str, float | None]:
        """The best validation value so far and its step."""
        return {"best": self.best, "best_step": self.best_step}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the best value of the resumed run."""
        self.best, self.best_step = state.get("best"), state.get("best_step")

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
        self.best, self.best_step = value, trainer.step
        if not trainer.is_main:
            return
        current = trainer.unwrap("M1")
        if self.model is None:  # a copy, not a new M1: building one would draw from the training RNG
            self.model = copy.deepcopy(current).cpu()
        else:
            self.model.load_state_dict({k: v.detach().cpu() for k, v in current.state_dict().items()})
        self.record = trainer.training_record(metrics=metrics)  # its row is not in metrics.csv yet
        self.dirty = True
        if time.monotonic() - self.last_write > self.min_interval:
            self.write()

    def write(self) -> None:
        """Save the remembered best weights (atomic) if they changed since the last write."""
        if self.dirty and self.model is not None:
            self.model.save_pretrained(self.path, training=self.record)
            self.dirty, self.last_write = False, time.monotonic()

    def on_fit_end(self, trainer: Trainer, result: FitResult) -> None:
        """Write the best weights, their card saying how long the run went on and how it ended; with no finite
        validation value at all, the final weights."""
        if not trainer.is_main:
            return
        if self.model is None and (self.path / "model_info.json").is_file() and self.best_step is not None:
            try:  # resumed, no better one since: the card gets the run's end
                self.model = M1.from_pretrained(self.path)
            except CheckpointError as exc:  # damaged since: left as it is, said, the run still ends cleanly
                trainer.print(f"note: {self.path} not rewritten with this run's record ({exc})")
        if self.model is not None:
            self.record, self.dirty = trainer.training_record(result, weights_step=self.best_step), True
        self.write()
        if not (self.path / "config.json").is_file():
            trainer.unwrap("M1").save_pretrained(self.path, training=trainer.training_record(result))


def build_trainer(config: M1RunConfig, prepared: Prepared | None = None) -> Trainer:
    """Data, model, optimiser and the Trainer for ``config`` (nothing trained yet)."""
    seed_everything(config.train.seed)
    prep = prepared or prepare_data(config)
    spectra = prep.pixels.spectra
    model = build_model(config, spectra[prep.train])
    x_train = model.normalize(torch.from_numpy(spectra[prep.train]))
    x_valid = model.normalize(torch.from_numpy(spectra[prep.valid]))
    if config.data.binarize == "threshold":
        x_train, x_valid = (x_train > 0.5).float(), (x_valid > 0.5).float()
    optimizer = make_optimizer(config, model, len(prep.train))
    scene = prep.scenes[0]

    run_dir = Path(config.train.output_dir)
    best = BestModel(run_dir)
    # after BestModel: a hook's place in the list names its state in checkpoints (runs without it still resume)
    log = OriginalLog(run_dir / "hook.txt", original_header(config)) if config.log.hook_txt else None

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

    trainer = Trainer(
        config.train, {"M1": model}, {"M1": optimizer}, make_step(config, log), Spectra(x_train),
        sample_fn=samples, eval_fn=evaluate, run_config=config, collate_fn=_as_batch,
        console_columns=CONSOLE, hooks=[best, *([log] if log else [])], export_fn=export,
    )  # fmt: skip
    if config.log.at_evaluations:  # one line per evaluation: the log cadence in updates, now that it is known
        every = config.train.eval_every or config.train.eval_every_epochs * trainer.steps_per_epoch
        if every > 0:
            trainer.config = dataclasses.replace(trainer.config, log_every=every)
    return trainer


def _shared_time(config: M1RunConfig) -> int:
    """The Unix time, the same on every process of a launch (rank 0's)."""
    stamp = int(time.time())
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState
        from accelerate.utils import broadcast_object_list

        PartialState(cpu=config.train.cpu)  # the state the Trainer's Accelerator takes over
        stamp = int(broadcast_object_list([stamp])[0])
    return stamp


def resolve_run_dir(config: M1RunConfig, resume: str | None = None) -> M1RunConfig:
    """With ``log.auto_name``, the config with its run directory named as the original's logdir.

    ``<train.output_dir>/gpulearn_z_x_<data>_<latent>-<hidden>_<comment>_<unix time>`` (the original's
    ``results/gpulearn_z_x_mnist_50-[500, 500]__1414259423``, spaces and brackets included); ``--resume auto``
    continues the newest such directory that has checkpoints, ``--resume PATH`` the run of that checkpoint. The
    returned config has ``log.auto_name`` off, so its config.json names the directory it was written in.
    """
    if not config.log.auto_name:
        return config
    parent = Path(config.train.output_dir)
    stem = f"gpulearn_z_x_{data_name(config)}_{config.model.latent}-{list(config.model.hidden)}_{config.log.comment}_"
    run_dir = None
    if resume == "auto" and parent.is_dir():
        runs = [p for p in parent.iterdir() if p.name.startswith(stem) and p.name[len(stem):].isdigit()
                and (p / "checkpoints").is_dir()]  # fmt: skip
        run_dir = max(runs, key=lambda p: int(p.name[len(stem):]), default=None)
    elif resume not in (None, "", "auto"):
        run_dir = Path(resume).parent.parent  # RUN/checkpoints/step_N
    if run_dir is None:
        run_dir = parent / f"{stem}{_shared_time(config)}"
    return dataclasses.replace(config, train=dataclasses.replace(config.train, output_dir=str(run_dir)),
                               log=dataclasses.replace(config.log, auto_name=False))  # fmt: skip


def run_training(config: M1RunConfig, resume: str | None = None) -> FitResult:
    """Train; writes the run directory and ``model/`` (the best validation weights with the normalisation).

    With ``log.auto_name`` the run directory is named by :func:`resolve_run_dir` (it is printed first)."""
    named = config.log.auto_name
    config = resolve_run_dir(config, resume)
    prep = prepare_data(config)
    trainer = build_trainer(config, prep)
    p = prep.pixels
    if named:  # as the original printed it
        trainer.print(f"logdir: {trainer.run_dir}")
    trainer.print(
        f"{len(p)} pixels x {p.bands} bands from {', '.join(p.files)}: {len(prep.train)} train, "
        f"{len(prep.valid)} validation, {len(prep.test)} test; {int((p.labels > 0).sum())} labeled"
    )
    return trainer.fit(resume=resume)


if __name__ == "__main__":  # accelerate launch -m m1_hyperspectral.train [DATA...] [options]
    import sys

    from m1_hyperspectral.cli import main

    main(["train", *sys.argv[1:]])
