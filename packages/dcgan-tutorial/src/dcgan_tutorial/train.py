"""Training of the lesson's GANs on gencore's Trainer, with every training tip as an option.

``python -m dcgan_tutorial.train [options]`` (and so ``accelerate launch -m dcgan_tutorial.train``) is the same as
``dcgan-tutorial train``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn

from dcgan_tutorial.config import EVAL_MIN_STEPS, FULL_FEATURE_STEPS, GANConfig, sized_eval
from dcgan_tutorial.data import ImageSet, TensorPairs, load_source, train_holdout
from dcgan_tutorial.diagnostics import feature_diagnostics
from dcgan_tutorial.features import FeatureNet, train_feature_net
from dcgan_tutorial.model import build_models
from gencore.data import announce
from gencore.distributed import is_launch_main, sharded_map
from gencore.errors import CheckpointError, OutputError
from gencore.fileio import cache_dir
from gencore.losses import d_loss, g_loss, gradient_penalty
from gencore.memory import require_batch_memory, require_memory, require_model_memory, tensor_bytes
from gencore.metrics import frechet_distance, kernel_inception_distance
from gencore.nn import evaluating
from gencore.progress import progress
from gencore.sampling import sampling_model
from gencore.train import FitResult, StepContext, Trainer, seed_everything


def prepare_data(config: GANConfig) -> tuple[ImageSet, ImageSet]:
    """Training and held-out images of the configured source at the model's size and channels."""
    m, d = config.model, config.data
    data = load_source(d.source, m.image_size, m.channels, d.num_images, seed=config.train.seed)
    return train_holdout(data, d.holdout_fraction, config.train.seed)


def instance_noise_std(config: GANConfig, step: int) -> float:
    """Std of the instance noise at ``step``: linear decay from ``tips.instance_noise`` to 0."""
    tips = config.tips
    if tips.instance_noise <= 0:
        return 0.0
    return tips.instance_noise * max(0.0, 1.0 - step / max(tips.instance_noise_steps, 1))


def make_step(config: GANConfig):
    """The step function: one D update (unless skipped) and one G update per batch."""
    tips, nz = config.tips, config.model.nz
    kind = "wgan" if tips.loss == "wgan-gp" else tips.loss

    def step(ctx: StepContext, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, Any]:
        real = batch[0]
        sigma = instance_noise_std(config, ctx.step)

        def noisy(x: torch.Tensor) -> torch.Tensor:
            return x + sigma * torch.randn_like(x) if sigma > 0 else x

        fake = ctx.models["G"](torch.randn(len(real), nz, device=ctx.device))
        skip = False
        if tips.d_skip_below > 0:  # decided on a no-grad probe, averaged over ranks, so all ranks agree
            with torch.no_grad():
                d_bare = ctx.module("D")
                probe = d_loss(d_bare(noisy(real)), d_bare(noisy(fake)), kind, tips.real_label)
            probe = ctx.accelerator.reduce(probe.reshape(1), "mean")[0]
            skip = bool(probe < tips.d_skip_below)
        if skip:
            loss_d, gp = probe, torch.zeros((), device=ctx.device)
        else:
            logits_real = ctx.models["D"](noisy(real))
            logits_fake = ctx.models["D"](noisy(fake.detach()))
            loss_d = d_loss(logits_real, logits_fake, kind, tips.real_label)
            total = loss_d
            gp = torch.zeros((), device=ctx.device)
            if tips.loss == "wgan-gp":
                gp = gradient_penalty(ctx.module("D"), real, fake)
                total = loss_d + tips.gp_weight * gp
            ctx.update("D", total)
        loss_g = g_loss(ctx.module("D")(noisy(fake)), kind)
        ctx.update("G", loss_g)
        return {"loss_d": loss_d, "loss_g": loss_g, "gp": gp, "d_skipped": float(skip), "noise_std": sigma}

    return step


def generator_for_sampling(trainer: Trainer) -> nn.Module:
    """``sampling_model(trainer, "G")``: the EMA generator when EMA is on, else the generator (in training mode
    during ``fit()``: callers use :func:`gencore.nn.evaluating`)."""
    return sampling_model(trainer, "G")


@torch.no_grad()
def generate(
    generator: nn.Module, n: int, seed: int, device: torch.device | str = "cpu", batch_size: int = 256
) -> torch.Tensor:
    """``n`` images in [-1, 1] from fixed noise (``seed``), ``batch_size`` per generator call, generator in eval
    mode, restored afterwards (the images do not depend on ``batch_size``)."""
    z = torch.randn(n, generator.config.nz, generator=torch.Generator().manual_seed(seed)).to(device)
    with evaluating(generator):
        chunks = z.split(batch_size)
        return torch.cat([generator(chunk) for chunk in progress(chunks, total=len(chunks), desc="generate")])


@torch.no_grad()
def generated_features(
    generator: nn.Module,
    net: FeatureNet,
    n: int,
    seed: int,
    batch_size: int = 256,
    accelerator: Accelerator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, predicted classes) of ``n`` images generated from fixed noise, as :func:`generate` makes them.

    The noise of all ``n`` images is drawn from ``seed`` on every process; with ``accelerator`` each process
    generates and featurises its share of the batches and the results are gathered (call it on every process).
    """
    device = next(generator.parameters()).device
    z = torch.randn(n, generator.config.nz, generator=torch.Generator().manual_seed(seed))

    def per_image(start: int, stop: int) -> dict[str, torch.Tensor]:
        features, predicted = net.predict(generator(z[start:stop].to(device)).cpu())
        return {"features": features, "predicted": predicted}

    with evaluating(generator):
        got = sharded_map(accelerator, n, per_image, batch_size)
    return got["features"], got["predicted"]


#: Part of the cache key of a feature network: raise it when FeatureNet or train_feature_net changes what a given
#: data set and seed give, so that no network of the earlier code is reused.
FEATURE_NET_VERSION = 1


def feature_net_key(images: torch.Tensor, labels: torch.Tensor, num_classes: int, steps: int, seed: int) -> str:
    """The content hash that names a feature network in the cache: the training images and labels (their bytes),
    the class count, the training length and the seed (what :func:`train_feature_net` depends on)."""
    digest = hashlib.sha256(f"{FEATURE_NET_VERSION}|{tuple(images.shape)}|{images.dtype}|{num_classes}|{steps}|"
                            f"{seed}".encode())  # fmt: skip
    digest.update(images.detach().cpu().contiguous().numpy().tobytes())
    digest.update(labels.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def load_or_train_feature_net(
    run_dir: Path, train_set: ImageSet, config: GANConfig, save: bool, device: str | torch.device = "cpu"
) -> FeatureNet:
    """The run's feature network: loaded from ``run_dir/feature_net``, else from the user's cache (the same data,
    classes, steps and seed trained it before: :func:`feature_net_key`, ``eval.feature_cache``), else trained (on
    ``device``; the same network as on the CPU up to the device's arithmetic); saved into the run (and the cache)
    when ``save``. The network is returned on ``device``. ``eval.feature_steps`` unset (a run that did not evaluate
    during training): the full FULL_FEATURE_STEPS. One line says where the network came from and in how long."""
    path = run_dir / "feature_net"
    start = time.perf_counter()
    if (path / "manifest.json").is_file():
        net = FeatureNet.from_pretrained(path, map_location=str(device)).eval()
        announce(f"feature network of the run: {path} in {time.perf_counter() - start:.1f} s")
        return net
    images, labels, classes = train_set.images, train_set.labels, len(train_set.classes)
    steps, seed = config.eval.feature_steps, config.train.seed
    steps = FULL_FEATURE_STEPS if steps is None else steps
    cached = cache_dir("dcgan-feature-net", feature_net_key(images, labels, classes, steps, seed))
    net = None
    if config.eval.feature_cache and (cached / "manifest.json").is_file():
        try:
            net = FeatureNet.from_pretrained(cached, map_location=str(device)).eval()
            announce(f"feature network from the cache: {cached} in {time.perf_counter() - start:.1f} s")
        except CheckpointError as exc:  # damaged: trained again, and the entry replaced
            announce(f"note: cached feature network not used ({exc}); training it again")
    if net is None:
        net, _ = train_feature_net(images, labels, classes, steps=steps, seed=seed, device=device,
                                   measure_accuracy=False)
        announce(f"feature network trained ({steps} steps) in {time.perf_counter() - start:.1f} s")
        if save and config.eval.feature_cache:
            # an earlier entry (a damaged one too) is a model folder of ours and is replaced atomically; a
            # folder holding anything else is left alone (OutputError), as is a read-only or full cache
            try:
                net.save_pretrained(cached)
            except (OSError, OutputError) as exc:
                announce(f"note: feature network not cached ({getattr(exc, 'strerror', None) or exc}: {cached})")
    if save:
        net.save_pretrained(path)
    return net


def require_memory_for(config: GANConfig) -> None:
    """Refuse, in one line and before anything is allocated, sizes at which one input batch, the built-in crops
    or the two models (weights, gradients, Adam moments) cannot fit in memory (:mod:`gencore.memory`)."""
    m, d = config.model, config.data
    item = (m.channels, m.image_size, m.image_size)
    require_batch_memory(config.train.batch_size, item, "images", "model.image_size")
    if d.source in ("textures", "photos"):  # float32 crops held for the whole run
        dims = "x".join(map(str, item))
        require_memory(tensor_bytes([d.num_images, *item]), f"{d.num_images} crops of {dims} (data.num_images)")
    widths = f"model.ngf={m.ngf}, model.ndf={m.ndf}" if m.kind == "dcgan" else f"model.fc_hidden={list(m.fc_hidden)}"
    what = f"{m.kind} generator and discriminator ({widths}, model.nz={m.nz}, model.image_size={m.image_size})"
    require_model_memory(lambda: build_models(m, wgan_gp=config.tips.loss == "wgan-gp"), what,
                         device="cpu" if config.train.cpu else None)  # fmt: skip


def build_trainer(config: GANConfig) -> Trainer:
    """Data, models, optimizers, feature network and the Trainer for ``config`` (nothing trained yet).

    The evaluation is sized to the run (:func:`dcgan_tutorial.config.sized_eval`); the sized values are part of the
    config saved with the run. A run that does not evaluate trains no feature network and has no ``eval_fn``."""
    config = dataclasses.replace(config, eval=sized_eval(config))
    seed_everything(config.train.seed)
    require_memory_for(config)
    train_set, holdout = prepare_data(config)
    generator, discriminator = build_models(config.model, wgan_gp=config.tips.loss == "wgan-gp")
    betas = (config.optim.beta1, config.optim.beta2)
    optimizers = {
        "G": torch.optim.Adam(generator.parameters(), config.optim.lr_g, betas=betas),
        "D": torch.optim.Adam(discriminator.parameters(), config.optim.lr_d, betas=betas),
    }
    clock = EvalClock()
    evaluate = build_evaluation(config, train_set, holdout, clock) if config.eval.during_training else None

    def samples(trainer: Trainer) -> torch.Tensor:
        return generate(sampling_model(trainer, "G"), 64, seed=0, device=trainer.accelerator.device) * 0.5 + 0.5

    def export(trainer: Trainer, result: FitResult) -> None:
        export_models(trainer, result)
        if result.completed:
            trainer.print(clock.summary(trainer.elapsed_s()))

    return Trainer(
        config.train, {"G": generator, "D": discriminator}, optimizers, make_step(config),
        TensorPairs(train_set, flip=True),
        ema={"G": config.optim.ema_decay} if config.optim.ema_decay > 0 else None,
        sample_fn=samples, eval_fn=evaluate, run_config=config, export_fn=export,
    )  # fmt: skip


@dataclasses.dataclass
class EvalClock:
    """Seconds a run spends on evaluation, for the closing line that says so (none: the run did not evaluate)."""

    setup_s: float | None = None  # feature network (trained, cached or the run's own) and the real images' figures
    eval_s: float = 0.0
    evaluations: int = 0

    def summary(self, loop_s: float) -> str:
        """The closing line: the seconds spent on evaluation in this process, of those of the evaluation's set-up
        plus the training loop (``loop_s``), e.g. ``evaluation: 27.5 s of 391.0 s (7%): feature network and real
        images 21.5 s, 6 evaluations 6.0 s; training loop 369.5 s``; or a note that the run did not evaluate."""
        if self.setup_s is None:
            return (f"evaluation: none during training (eval.during_training=false: the default below "
                    f"{EVAL_MIN_STEPS} updates; `dcgan-tutorial evaluate RUN` measures afterwards); "
                    f"training loop {loop_s:.1f} s")  # fmt: skip
        spent, total = self.setup_s + self.eval_s, self.setup_s + loop_s
        return (f"evaluation: {spent:.1f} s of {total:.1f} s ({spent / max(total, 1e-9):.0%}): feature network and "
                f"real images {self.setup_s:.1f} s, {self.evaluations} evaluations {self.eval_s:.1f} s; training loop "
                f"{loop_s:.1f} s")  # fmt: skip


def build_evaluation(config: GANConfig, train_set: ImageSet, holdout: ImageSet, clock: EvalClock):
    """The Trainer's ``eval_fn``: diversity, coverage, fd and kid of ``eval.samples`` generated images against the
    held-out images, with the real-vs-real floor. The feature network is trained (or loaded) here, before the loop
    (evaluation runs under no_grad), and saved with the run, so resumed runs and `dcgan-tutorial evaluate` measure
    with the very same features; the held-out images' features and the floor are computed once."""
    start = time.perf_counter()
    net = load_or_train_feature_net(Path(config.train.output_dir), train_set, config, save=is_launch_main())
    real_features, _ = net.predict(holdout.images)  # the network is frozen: once is enough
    floor = _floor(net.predict(train_set.images[: len(holdout.images)])[0], real_features)
    clock.setup_s = time.perf_counter() - start

    def evaluate(trainer: Trainer) -> dict[str, float]:
        began, e = time.perf_counter(), config.eval
        f_fake, p_fake = generated_features(sampling_model(trainer, "G"), net, e.samples, seed=1,
                                            batch_size=e.batch_size, accelerator=trainer.accelerator)  # fmt: skip
        out = {**feature_diagnostics(net, f_fake, p_fake, real_features, len(train_set.classes)), **floor}
        clock.eval_s += time.perf_counter() - began
        clock.evaluations += 1
        return out

    return evaluate


def _floor(f_train: torch.Tensor, f_real: torch.Tensor) -> dict[str, float]:
    """fd and kid between the features of training and held-out images (diagnostics.real_floor's figures, from
    features already computed)."""
    n = min(len(f_train), len(f_real))
    return {
        "fd_floor": frechet_distance(f_train, f_real),
        "kid_floor": kernel_inception_distance(f_train, f_real, subsets=10, subset_size=min(n, 500))[0],
    }


def export_models(trainer: Trainer, result: FitResult) -> None:
    """Write ``model/generator`` and ``model/discriminator`` once training is over (the Trainer's ``export_fn``)."""
    if not result.completed:
        return
    run_dir = trainer.run_dir
    record = trainer.training_record(result)
    sampling_model(trainer, "G").save_pretrained(run_dir / "model" / "generator", training=record)
    trainer.unwrap("D").save_pretrained(run_dir / "model" / "discriminator", training=record)
    m = result.metrics
    summary = ", ".join(f"{k} {m[k]:.4g}" for k in ("fd", "fd_floor", "kid", "diversity", "coverage") if k in m)
    trainer.print(f"done ({result.reason}) at step {result.step}: {run_dir}/samples, losses.png, model/; {summary}")


def run_training(config: GANConfig, resume: str | None = None) -> FitResult:
    """Train the configured GAN; writes the run directory, ``model/generator`` and ``model/discriminator``."""
    return build_trainer(config).fit(resume=resume)


if __name__ == "__main__":  # accelerate launch -m dcgan_tutorial.train [options]
    import sys

    from dcgan_tutorial.cli import main

    main(["train", *sys.argv[1:]])
