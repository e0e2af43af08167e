"""Training of the hierarchical VAE on gencore's Trainer.

``python -m hvae_captcha.train [options]`` (and so ``accelerate launch -m hvae_captcha.train``) is the same as
``hvae-captcha train``. The loss is per image (reconstruction and every KL summed over their dimensions, then
averaged over the batch), divided by the number of pixel dimensions so the learning rate does not depend on the
image size; the logged ``elbo_bpd`` is the unweighted training bound in bits per dimension.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from gencore.checkpoint import writing_model_folder
from gencore.config import from_dict, to_dict
from gencore.data import announce
from gencore.losses import free_bits, kl_warmup
from gencore.memory import require_batch_memory, require_memory, require_model_memory, tensor_bytes
from gencore.nn import evaluating
from gencore.sampling import sampling_model
from gencore.train import FitResult, StepContext, Trainer, seed_everything
from hvae_captcha.config import HVAEConfig, LossConfig
from hvae_captcha.data import CaptchaData, CaptchaDataset, infer_text_settings, load_data, to_float, train_holdout
from hvae_captcha.evaluate import evaluate_model
from hvae_captcha.model import HVAE
from hvae_captcha.textprior import FILE_NAME as TEXT_PRIOR_FILE
from hvae_captcha.textprior import TextPrior

RUN_CONFIG_FILE = "run_config.json"  # the run's whole config, inside model/


class GuardedAdamW(torch.optim.AdamW):
    """AdamW that measures the gradient norm, skips the update when it exceeds ``skip_threshold`` (or is not
    finite), and otherwise clips it to ``grad_clip`` (VDVAE practice: a rare huge gradient is dropped, not applied
    shrunk). ``last_grad_norm`` / ``last_skipped`` describe the latest call; ``skipped`` counts skips."""

    skips_nonfinite = True  # the Trainer leaves non-finite gradients to this optimizer (they are skipped, not fatal)
    clips_grad_norm = True  # ... and train.grad_clip: the skip decision needs the norm before clipping

    def __init__(
        self, params: Any, *, grad_clip: float | None = None, skip_threshold: float = 0.0, **kwargs: Any
    ) -> None:
        super().__init__(params, **kwargs)
        self.grad_clip, self.skip_threshold = grad_clip, skip_threshold
        self.last_grad_norm, self.last_skipped, self.skipped = 0.0, False, 0

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return super().step(closure)
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
        value = float(norm)  # one device sync per update
        self.last_grad_norm = value
        self.last_skipped = not math.isfinite(value) or (self.skip_threshold > 0 and value > self.skip_threshold)
        if self.last_skipped:
            self.skipped += 1
            return None
        if self.grad_clip is not None and value > self.grad_clip:
            torch._foreach_mul_(grads, self.grad_clip / (value + 1e-6))
        return super().step(closure)


def ramp(epoch: int, start: float, epochs: int) -> float:
    """The original's per-epoch weight schedules as a linear ramp from ``start`` to 1 over ``epochs``."""
    return 1.0 if epochs <= 0 else min(1.0, start + (1.0 - start) * epoch / epochs)


def kl_penalty(kl_units: torch.Tensor, nats: float) -> torch.Tensor:
    """Per-image KL of one level (mean over the batch), with free bits per latent unit when ``nats`` > 0."""
    return free_bits(kl_units, nats) if nats > 0 else kl_units.flatten(1).sum(1).mean()


def loss_terms(
    log_px: torch.Tensor, kls: list[torch.Tensor], loss: LossConfig, step: int, epoch: int
) -> tuple[torch.Tensor, dict[str, Any]]:
    """The weighted objective (nats per image) and the values to log; ``kls`` come top level first."""
    rec = -log_px.mean()
    level_weights = list(reversed(loss.kl_weights)) or [1.0] * len(kls)  # kls are top first, weights bottom first
    penalties = [w * kl_penalty(k, loss.free_bits) for w, k in zip(level_weights, kls)]
    if loss.objective == "elbo":
        weights = {"kl_weight": kl_warmup(step, loss.kl_warmup_steps)}
        total = rec + weights["kl_weight"] * sum(penalties)
    else:  # the original's reconstruction + prior matching (top level) + consistency (the levels below)
        weights = {"prior_weight": ramp(epoch, loss.prior_weight_start, loss.prior_weight_epochs),
                   "consistency_weight": ramp(epoch, loss.consistency_start, loss.consistency_epochs)}  # fmt: skip
        total = rec + weights["prior_weight"] * penalties[0] + weights["consistency_weight"] * sum(penalties[1:])
    logged: dict[str, Any] = {"rec_nats": rec, **weights}
    for i, k in enumerate(kls):
        logged[f"kl{len(kls) - i}_nats"] = k.flatten(1).sum(1).mean()
    return total, logged


@contextlib.contextmanager
def isolated_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seeded random draws that leave the training run's random streams untouched (so resume stays exact)."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def infer_folder_text(config: HVAEConfig, explicit: Iterable[str] = (), recorded: dict[str, Any] | None = None,
                      log: Callable[[str], None] = announce) -> HVAEConfig:  # fmt: skip
    """A text-aware model on a folder: ``model.vocabulary`` and ``model.text_length`` taken from the file names
    (the sorted characters of the texts, the longest text; :func:`~hvae_captcha.data.infer_text_settings`), each
    unless it is in ``explicit`` (the config set it). ``recorded``: the ``model`` table of the run being resumed,
    whose values are kept instead, so the resumed run and its saved model agree. Returns the checked config, with
    the values in it (saved with the run); other configs come back as they were."""
    keys = [k for k in ("vocabulary", "text_length") if f"model.{k}" not in set(explicit)]
    if not config.model.conditioned or config.data.source == "render" or not keys:
        return config
    raw = to_dict(config)
    if recorded is not None and all(k in recorded for k in keys):
        raw["model"].update({k: recorded[k] for k in keys})
        return from_dict(HVAEConfig, raw)
    vocabulary, length, count = infer_text_settings(config.data.source, config.data)
    inferred = {"vocabulary": vocabulary, "text_length": length}
    raw["model"].update({k: inferred[k] for k in keys})
    shown = ", ".join(f"model.{k}={inferred[k]!r}" for k in keys)
    case = "kept" if config.data.keep_case else "lower-cased"
    log(f"inferred from the file names of {count} images in {config.data.source} (texts {case}, label rule "
        f"{config.data.label_rule!r}): {shown}")  # fmt: skip
    return from_dict(HVAEConfig, raw)


def prepare_data(config: HVAEConfig) -> tuple[CaptchaData, CaptchaData]:
    """Training and held-out images of the configured source."""
    data = load_data(config.data, config.model, seed=config.train.seed)
    return train_holdout(data, config.data.holdout_fraction, config.train.seed)


def make_dataset(model: HVAE, data: CaptchaData, workers: int = 0) -> CaptchaDataset:
    """The training set; conditioned models get the one-hot texts. Lazy (first-run) images rendered by ``workers``
    DataLoader worker processes go to shared memory, so that each is rendered once."""
    if workers > 0:
        data.share_memory()
    return CaptchaDataset(data, model.config if model.config.conditioned else None)


def make_step(config: HVAEConfig, optimizer: GuardedAdamW):
    """The step function: one posterior pass, the objective, one guarded update."""
    dims = config.model.channels * config.model.height * config.model.width
    conditioned = config.model.conditioned

    def step(ctx: StepContext, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, Any]:
        x, y = batch
        log_px, levels = ctx.models["hvae"](x, y if conditioned else None)
        kls = [level.kl() for level in levels]
        total, logged = loss_terms(log_px, kls, config.loss, ctx.step, ctx.epoch)
        ctx.update("hvae", total / dims)
        elbo = logged["rec_nats"] + sum(logged[k] for k in logged if k.startswith("kl") and k.endswith("_nats"))
        logged.update({"elbo_bpd": elbo / (dims * math.log(2)), "grad_norm": optimizer.last_grad_norm,
                       "skipped": float(optimizer.last_skipped)})  # fmt: skip
        return logged

    return step


@torch.no_grad()
def sample_grid_images(model: HVAE, holdout: CaptchaData, n: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Prior samples (for the held-out texts when conditioned) and held-out/reconstruction pairs, in [0, 1]."""
    shown = holdout.subset(list(range(min(n, len(holdout.texts)))))
    texts = shown.texts if model.config.conditioned else None
    layouts = shown.layouts if texts is not None and shown.layouts is not None else None
    with evaluating(model):
        prior, _ = model.sample(n if texts is None else len(texts), texts, layouts=layouts)
        pairs_of = holdout.subset(list(range(min(16, len(holdout.texts)))))  # lazy data renders these alone
        x = to_float(pairs_of.images).to(device)
        y = model.encode_data(pairs_of)
        pairs = torch.stack([model.binarize_if_needed(x), model.reconstruct(x, y)], 1).flatten(0, 1)
    return {"prior": prior, "reconstruction": pairs}


def require_memory_for(config: HVAEConfig) -> None:
    """Refuse, in one line and before anything is allocated, a size (``--size``, ``model.height``/``width``) at
    which one input batch, the rendered images, the glyph bank or the model (weights, gradients, AdamW moments,
    EMA) cannot fit in memory (:mod:`gencore.memory`)."""
    m, d = config.model, config.data
    item = (m.channels, m.height, m.width)
    size = f"{m.channels}x{m.height}x{m.width}"
    require_batch_memory(config.train.batch_size, item, "images", "--size, model.height x model.width")
    if d.source == "render":  # kept as uint8 (N, C, H, W) for the whole run
        require_memory(tensor_bytes([d.num_images, *item], 1), f"{d.num_images} rendered images of {size} "
                       "(data.num_images, --size)")  # fmt: skip
    if m.conditioned and m.text_glyphs:  # one float plane of height x height per vocabulary character
        require_memory(tensor_bytes([len(m.vocabulary) + 2, m.height, m.height]),
                       f"the glyph bank of {len(m.vocabulary) + 1} characters at height {m.height}")  # fmt: skip
    ema = 1 if config.optim.ema_decay > 0 else 0
    require_model_memory(lambda: HVAE(m), f"HVAE model for {size} images, latent_dim={m.latent_dim}", extra_copies=ema,
                         device="cpu" if config.train.cpu else None)  # fmt: skip


def build_trainer(config: HVAEConfig, notes: Iterable[str] = ()) -> Trainer:
    """Data, model, optimiser, schedule and the Trainer for ``config`` (nothing trained yet); ``notes`` (e.g. what
    :func:`infer_folder_text` inferred) are printed once the data has loaded, so bad data stays a one-line error."""
    seed_everything(config.train.seed)
    config.resolve_text_layout()  # saved resolved with the run, so that a resume and the model agree
    require_memory_for(config)
    train_set, holdout = prepare_data(config)
    for note in notes:
        announce(note)
    model = HVAE(config.model)
    o = config.optim
    optimizer = GuardedAdamW(model.parameters(), lr=o.lr, betas=(o.beta1, o.beta2), weight_decay=o.weight_decay,
                             grad_clip=config.train.grad_clip, skip_threshold=o.skip_threshold)  # fmt: skip
    warm = max(o.lr_warmup_steps, 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warm))
    evaluated = holdout.subset(list(range(min(config.eval.samples, len(holdout.texts)))))

    def evaluate(trainer: Trainer) -> dict[str, float]:
        # split over the processes; seeded per batch, so the figures are the same on any number of them
        acc = trainer.accelerator
        e = config.eval
        metrics = evaluate_model(sampling_model(trainer, "hvae"), evaluated, e.iw_samples, e.batch_size, acc.device,
                                 accelerator=acc, seed=config.train.seed + 1)  # fmt: skip
        return {k: v for k, v in metrics.items() if not k.startswith("units_") and k != "iw_samples"}

    def samples(trainer: Trainer) -> dict[str, torch.Tensor]:
        device = trainer.accelerator.device
        with isolated_rng(config.train.seed, device):
            return sample_grid_images(sampling_model(trainer, "hvae"), holdout, 32, device)

    return Trainer(
        config.train, {"hvae": model}, {"hvae": optimizer}, make_step(config, optimizer),
        make_dataset(model, train_set, config.train.num_workers),
        schedulers={"hvae": schedule}, ema={"hvae": o.ema_decay} if o.ema_decay > 0 else None,
        sample_fn=samples, eval_fn=evaluate, run_config=config,
        export_fn=lambda trainer, result: export_model(trainer, result, config),
    )  # fmt: skip


def fit_text_prior(config: HVAEConfig, data: CaptchaData) -> TextPrior:
    """The prior over texts (and layouts, for a rendered-layout model) of a conditioned model, counted on ``data``
    (its training images): what makes it a model of images alone (:mod:`hvae_captcha.textprior`)."""
    m = config.model
    rendered = m.text_layout == "rendered"
    return TextPrior.fit(data.texts, m.vocabulary, m.text_length, data.layouts if rendered else None, m.width)


def save_model_folder(
    model: HVAE, directory: str | Path, config: HVAEConfig, prior: TextPrior | None = None,
    training: Mapping[str, Any] | None = None,
) -> Path:  # fmt: skip
    """Write a model folder that samples, reconstructs and evaluates on its own, atomically (one manifest):
    ``config.json`` + ``model.safetensors`` (``HVAE.from_pretrained``), ``run_config.json`` (the run's whole
    config: the data settings that layouts are rendered with, the label rule and case, the seed and hold-out) and,
    for a text-aware model, ``text_prior.json`` (the texts and layouts sampling draws); ``training``
    (``Trainer.training_record``) goes into the model card."""
    with writing_model_folder(model, directory, to_dict(model.config), training=training) as tmp:
        (tmp / RUN_CONFIG_FILE).write_text(json.dumps(to_dict(config), indent=2) + "\n")
        if prior is not None:
            prior.save(tmp / TEXT_PRIOR_FILE)
    return Path(directory)


def export_model(trainer: Trainer, result: FitResult, config: HVAEConfig) -> None:
    """Write the self-contained ``model/`` (:func:`save_model_folder`; the EMA weights when EMA is on) and, for a
    conditioned model, ``text_prior.json`` (:func:`fit_text_prior`) also beside it in the run directory, once
    training is over (the Trainer's ``export_fn``)."""
    if not result.completed:
        return
    prior = fit_text_prior(config, trainer.loader.dataset.data) if config.model.conditioned else None
    save_model_folder(sampling_model(trainer, "hvae"), trainer.run_dir / "model", config, prior,
                      trainer.training_record(result))  # fmt: skip
    if prior is not None:
        prior.save(trainer.run_dir / TEXT_PRIOR_FILE)
    m = result.metrics
    figures = ", ".join(f"{k} {m[k]:.4g}" for k in ("nll_bits_per_dim", "elbo_bits_per_dim", "psnr_db") if k in m)
    trainer.print(f"done ({result.reason}) at step {result.step}: {trainer.run_dir}/model, samples/; {figures}")


def run_training(config: HVAEConfig, resume: str | None = None, notes: Iterable[str] = ()) -> FitResult:
    """Train; writes the run directory and ``model/`` (see :func:`export_model`)."""
    return build_trainer(config, notes).fit(resume=resume)


if __name__ == "__main__":  # accelerate launch -m hvae_captcha.train [options]
    import sys

    from hvae_captcha.cli import main

    main(["train", *sys.argv[1:]])
