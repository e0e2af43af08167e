"""Training of generator, discriminator and recognizer on gencore's Trainer.

``python -m ganwriting_music.train START_EPOCH [options]`` (and so ``accelerate launch -m ganwriting_music.train
START_EPOCH``) is ``ganwriting-music train START_EPOCH``, like the original ``python main_run.py <start_epoch>``:
0 starts fresh, N continues from the full state saved at the end of epoch N (weights, the three optimizers, RNG
streams, step and epoch counters, data position), ``auto`` from the newest checkpoint.

One update per batch of real images x (class y, writer w) and K other images of the same writer (the style):

* D: BCE on logits (real vs G(refs, y)) + 0.3 · gradient penalty + CE of its writer head on real images;
* R: CE with label smoothing 0.1 on the real images;
* G: w_dis · non-saturating adversarial + 2.5 · CE(R(G(refs, y)), y) with the *requested* classes y (the
  original scored images generated for random labels against the real labels) + w_writer · CE(W(fake), w)
  + w_l1 · |G(refs, y) - x| (x is a real image of that writer and class; 0 in the original);
* not in the original, off by default: w_ms · mode seeking on the noise (a second image of the first half of the
  batch with other noise), w_style · style reconstruction (the style encoder, detached, re-reads the generated
  image), w_writer_gen to weigh the writer term for G alone, and diff_augment (DiffAugment, gencore.augment, on
  every image D and R see, real and generated).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ganwriting_music.config import GanwritingConfig
from ganwriting_music.data import StyleDataset, SymbolSet, load_source, split_by_writer, train_test_split
from ganwriting_music.model import Networks, NetworksConfig
from gencore.augment import diff_augment
from gencore.checkpoint import latest_checkpoint, list_checkpoints
from gencore.distributed import sharded_map
from gencore.errors import CheckpointError, ConfigError, DataError
from gencore.losses import d_loss, g_loss, gradient_penalty
from gencore.memory import require_batch_memory, require_model_memory
from gencore.nn import evaluating
from gencore.paths import safe_name
from gencore.results import write_json
from gencore.sampling import sampling_model
from gencore.train import FitResult, StepContext, Trainer, TrainerHook, seed_everything
from gencore.viz import make_grid

EPOCHS_FILE = "epochs.json"


def prepare_data(config: GanwritingConfig) -> tuple[SymbolSet, SymbolSet | None]:
    """The GAN's training and test images: held-out writers removed, then a (writer, class)-stratified split."""
    data = load_source(config.data, seed=config.train.seed)
    data, _ = split_by_writer(data, config.data.holdout_writers)
    return train_test_split(data, config.data.test_fraction, config.train.seed)


def diversity_loss(fake_a: torch.Tensor, fake_b: torch.Tensor, z_a: torch.Tensor, z_b: torch.Tensor,
                   tau: float, pool: int = 1) -> torch.Tensor:  # fmt: skip
    """Mode seeking (Mao et al. 2019) in the bounded form of Yang et al. 2019: ``-min(|G(z_a) - G(z_b)| /
    |z_a - z_b|, tau)``, per pair, averaged. Two images of the same class and style that differ only in the noise
    should differ; the bound keeps the generator from buying diversity with noise once it has enough of it.
    The images are compared average-pooled by ``pool``: at full resolution the cheapest way to differ is
    noise-driven speckle in the background, not another shape."""
    if pool > 1:
        fake_a, fake_b = F.avg_pool2d(fake_a, pool), F.avg_pool2d(fake_b, pool)
    ratio = (fake_a - fake_b).abs().flatten(1).mean(1) / (z_a - z_b).abs().mean(1).clamp_min(1e-8)
    return -ratio.clamp(max=tau).mean()


def style_reconstruction_loss(gen: torch.nn.Module, fake: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """|E(fake) - E(refs)|, relative to the batch's spread of reference styles.

    The style encoder E re-reads each generated image (K = 1) with its weights *detached*: the loss trains the
    decoder to draw images that carry the reference style, never the encoder to make all styles alike (which
    would satisfy it trivially). Dividing by the mean distance between the batch's reference styles makes the
    figure scale-free, so a shrinking style vector does not lower it either."""
    params = {name: p.detach() for name, p in gen.style.named_parameters()}
    encode = lambda images: torch.func.functional_call(gen.style, params, (images,))  # noqa: E731
    target = encode(refs).detach()
    spread = (target - target.roll(1, 0)).abs().mean().clamp_min(1e-6)
    return (encode(fake[:, None]) - target).abs().mean() / spread


def make_step(config: GanwritingConfig):
    """The step function: one D, one R and one G update per batch."""
    loss = config.loss

    def seen(images: torch.Tensor) -> torch.Tensor:
        """What D and R look at: the images, DiffAugment-ed when loss.diff_augment is set (background fill)."""
        if not loss.diff_augment:
            return images
        return diff_augment(images, loss.diff_augment, loss.augment_translation, loss.augment_cutout, fill=1.0)

    def step(ctx: StepContext, batch: tuple[torch.Tensor, ...]) -> dict[str, Any]:
        x, y, w, refs = batch
        n = len(y)
        z = ctx.module("G").noise(n, y.device)
        heads = {"writer_logits": True} if ctx.module("G").style_writer is not None else {}
        if loss.w_ms > 0:  # a second image for the first half of the batch, same class and refs, other noise
            h = max(n // 2, 1)
            z2 = ctx.module("G").noise(h, y.device)
            # one forward pass over both (G has no batch statistics, so this equals two passes; DDP wants one)
            both = ctx.models["G"](torch.cat([refs, refs[:h]]), torch.cat([y, y[:h]]), torch.cat([z, z2]), **heads)
            both, style_writer = both if heads else (both, None)
            fake, fake2 = both[:n], both[n:]
        else:
            fake = ctx.models["G"](refs, y, z, **heads)
            fake, style_writer = fake if heads else (fake, None)

        real_logits, real_writer = ctx.models["D"](seen(x), y)
        fake_logits, _ = ctx.models["D"](seen(fake.detach()), y)
        loss_d = d_loss(real_logits, fake_logits)
        gp = gradient_penalty(lambda v: ctx.module("D").logits(v, y), x, fake)
        total_d = loss.w_dis * loss_d + loss.w_gp * gp
        logged: dict[str, Any] = {"loss_d": loss_d, "gp": gp}
        if real_writer is not None and loss.w_writer > 0:
            writer_d = F.cross_entropy(real_writer, w)
            total_d = total_d + loss.w_writer * writer_d
            logged["writer_acc_real"] = (real_writer.argmax(1) == w).float().mean()
        ctx.update("D", total_d)

        rec_logits = ctx.models["R"](seen(x))
        loss_r = F.cross_entropy(rec_logits, y, label_smoothing=loss.label_smoothing)
        ctx.update("R", loss_r)

        adv_logits, fake_writer = ctx.module("D")(seen(fake), y)
        adv = g_loss(adv_logits)
        fake_rec = ctx.module("R")(seen(fake))
        rec = F.cross_entropy(fake_rec, y, label_smoothing=loss.label_smoothing)  # the requested classes
        total_g = loss.w_dis * adv + loss.w_rec * rec
        if fake_writer is not None and loss.w_writer > 0:
            total_g = total_g + loss.w_writer * loss.w_writer_gen * F.cross_entropy(fake_writer, w)
            logged["writer_acc_fake"] = (fake_writer.argmax(1) == w).float().mean()
        if loss.w_l1 > 0:
            l1 = (fake - x).abs().mean()
            total_g = total_g + loss.w_l1 * l1
            logged["l1"] = l1
        if loss.w_ms > 0:
            div = diversity_loss(fake[:h], fake2, z[:h], z2, loss.ms_tau, loss.ms_pool)
            total_g = total_g + loss.w_ms * div
            logged["diversity"] = -div
        if style_writer is not None:
            sw = F.cross_entropy(style_writer[:n], w)
            total_g = total_g + loss.w_style_writer * sw
            logged["style_writer_acc"] = (style_writer[:n].argmax(1) == w).float().mean()
        if loss.w_style > 0:
            sty = style_reconstruction_loss(ctx.module("G"), fake, refs)
            total_g = total_g + loss.w_style * sty
            logged["style_rec"] = sty
        ctx.update("G", total_g)
        logged.update({"loss_g": adv, "rec_fake": rec, "rec_real": loss_r,
                       "acc_real": (rec_logits.argmax(1) == y).float().mean(),
                       "acc_fake": (fake_rec.argmax(1) == y).float().mean()})  # fmt: skip
        return logged

    return step


def epochs_done(trainer: Trainer) -> tuple[int, int]:
    """(finished epochs, batches of the next one already trained). The Trainer's epoch counter ticks only when the
    loop leaves an epoch, so a run stopped at the last update of an epoch (by ``--max-steps``, early stopping or a
    checkpoint written there) still counts it as unfinished: that epoch is finished here, as in ``epochs.json``."""
    if trainer.batch_in_epoch >= len(trainer.sampler):
        return trainer.epoch + 1, 0
    return trainer.epoch, trainer.batch_in_epoch


class EpochRecord(TrainerHook):
    """Notes which checkpoint holds the state at the end of which epoch (``checkpoints/epochs.json``), so that
    ``train N`` can start from epoch N like the original."""

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        """On an epoch boundary, record ``epoch -> checkpoint`` (main process)."""
        done, into_next = epochs_done(trainer)  # a step cadence writes before the epoch ticks
        if trainer.is_main and into_next == 0:
            record = read_epochs(trainer.ckpt_dir)
            record[str(done)] = path.name
            write_json(trainer.ckpt_dir / EPOCHS_FILE, record, indent=1, sort_keys=True)


def read_epochs(ckpt_dir: Path) -> dict[str, str]:
    """``{epoch: checkpoint directory name}`` of a run (empty when none was saved).

    Each entry must be an epoch number and the plain name of a folder in ``ckpt_dir`` (``step_000012``): a name
    that points elsewhere (``../other_run/...``, an absolute path) is refused, not followed.
    """
    path = Path(ckpt_dir) / EPOCHS_FILE
    if not path.is_file():
        return {}
    try:
        record = {str(k): str(v) for k, v in json.loads(path.read_text(encoding="utf-8-sig")).items()}
    except (ValueError, AttributeError):
        raise CheckpointError(f"{path} is corrupt") from None
    for epoch, name in record.items():
        if not epoch.isdigit():
            raise CheckpointError(f"{path} is corrupt: {epoch!r} is not an epoch number")
        try:
            safe_name(name, f"the checkpoint of epoch {epoch}")
        except DataError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
    return record


def resolve_start(trainer: Trainer, start_epoch: str | int | None) -> str | None:
    """The checkpoint to resume for a start epoch: 0/None fresh, ``auto`` newest (fresh if none), N epoch N."""
    text = "0" if start_epoch is None else str(start_epoch).strip()
    existing = list_checkpoints(trainer.ckpt_dir)
    if text == "0":
        if existing:
            saved = ", ".join(sorted(read_epochs(trainer.ckpt_dir), key=int)) or "none at an epoch end"
            raise ConfigError(
                f"{trainer.run_dir} already holds checkpoints (saved epochs: {saved}); continue with start epoch N "
                "or auto, or choose another --output-dir"
            )
        return None
    if text == "auto":
        found = latest_checkpoint(trainer.ckpt_dir, warn=trainer.print)
        return str(found) if found is not None else None
    if not (text.isascii() and text.isdigit()):  # '²' is a digit to str.isdigit, not to int()
        raise ConfigError(f"start epoch must be 0, a saved epoch N or 'auto', got {start_epoch!r}")
    record = read_epochs(trainer.ckpt_dir)
    name = record.get(str(int(text)))
    if name is None or not (trainer.ckpt_dir / name).is_dir():
        saved = ", ".join(e for e in sorted(record, key=int) if (trainer.ckpt_dir / record[e]).is_dir()) or "none"
        raise CheckpointError(f"no checkpoint saved at epoch {int(text)} in {trainer.ckpt_dir} (saved epochs: {saved})")
    return str(trainer.ckpt_dir / name)


@torch.no_grad()
def generate(gen: torch.nn.Module, refs: torch.Tensor, labels: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Images for ``labels`` (N,) in the style of ``refs`` (N, K, 1, S, S), in [-1, 1], in eval mode."""
    device = next(gen.parameters()).device  # the inputs follow the generator, batch by batch
    with evaluating(gen):
        out = [gen(refs[i : i + batch_size].to(device), labels[i : i + batch_size].to(device))
               for i in range(0, len(labels), batch_size)]  # fmt: skip
    return torch.cat(out)


def sample_sheet(gen: torch.nn.Module, data: StyleDataset, device: torch.device, writers: int = 4) -> torch.Tensor:
    """For each of the first ``writers`` writers: a row of its real images (one per class), then a row generated
    from K other images of that writer. In [0, 1], ``num_classes`` per row."""
    d = data.data
    rows = []
    for w in range(min(writers, len(d.writer_names))):
        idx = []
        for c in range(len(d.classes)):
            hit = torch.nonzero((d.writers == w) & (d.labels == c)).flatten()
            idx.append(int(hit[0]) if len(hit) else -1)
        have = [i for i in idx if i >= 0]
        if not have:
            continue
        real = torch.ones(len(idx), 1, *d.images.shape[-2:])
        real[[k for k, i in enumerate(idx) if i >= 0]] = d.floats(torch.tensor(have))
        refs = torch.stack([data.references(w) for _ in idx]).to(device)
        labels = torch.arange(len(d.classes), device=device)
        rows += [real.to(device), generate(gen, refs, labels)]
    return (torch.cat(rows) + 1) / 2


@torch.no_grad()
def recognizer_accuracy(rec: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``images`` that ``rec`` assigns to ``labels`` (eval mode)."""
    device = next(rec.parameters()).device  # the images follow the recognizer, batch by batch
    with evaluating(rec):
        preds = torch.cat([rec(images[i : i + 128].to(device)).argmax(1) for i in range(0, len(images), 128)])
    return float((preds == labels.to(device)).float().mean())


def eval_inputs(
    gen: torch.nn.Module, dataset: StyleDataset, evaluated: SymbolSet, n: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fixed inputs of a training-time evaluation: (refs (n, K, 1, S, S), noise (n, noise_dim), picked indices
    of ``evaluated``). Drawn on the CPU from ``seed`` with the global RNG restored afterwards, so every rank (and a
    later one-process re-evaluation) gets the same ones."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pick = torch.randperm(len(evaluated))[:n]
        refs = torch.stack([dataset.references(int(w)) for w in evaluated.writers[pick].tolist()])
        z = gen.noise(n, "cpu")
    return refs, z, pick


@torch.no_grad()
def evaluate_generator(
    gen: torch.nn.Module, rec: torch.nn.Module, refs: torch.Tensor, labels: torch.Tensor, z: torch.Tensor,
    real: torch.Tensor, accelerator: Any = None, batch_size: int = 64,
) -> dict[str, float]:  # fmt: skip
    """The recognizer's accuracy on images generated from (refs, labels, z) and on the real images ``real``.

    With ``accelerator`` the samples are split over the ranks with :func:`gencore.distributed.sharded_map`, each
    evaluated exactly once and gathered (a collective: call it on every rank); every rank gets the same figures.
    """
    device = next(gen.parameters()).device

    def per_sample(start: int, stop: int) -> dict[str, torch.Tensor]:
        y = labels[start:stop].to(device)
        fake = gen(refs[start:stop].to(device), y, z[start:stop].to(device))
        real_pred = rec(real[start:stop].to(device)).argmax(1)
        return {"fake_ok": (rec(fake).argmax(1) == y).float(), "real_ok": (real_pred == y).float()}

    with evaluating(gen, rec):
        got = sharded_map(accelerator, len(labels), per_sample, batch_size)
    return {"rec_acc_fake": float(got["fake_ok"].mean()), "rec_acc_real": float(got["real_ok"].mean())}


def build_trainer(config: GanwritingConfig) -> Trainer:
    """Data, networks, optimizers and the Trainer for ``config`` (nothing trained yet)."""
    seed_everything(config.train.seed)
    size, k = config.data.image_size, config.model.k_refs  # one batch: each image with its k style references
    require_batch_memory(config.train.batch_size, (1 + k, 1, size, size), "style sets",
                         f"an image and its {k} references; data.image_size, model.k_refs")  # fmt: skip
    train_set, test_set = prepare_data(config)
    arch = NetworksConfig(config.model, size, list(train_set.classes), list(train_set.writer_names))
    m = config.model
    require_model_memory(  # one line naming the widths, not the allocator's traceback
        lambda: Networks(arch), f"generator, discriminator and recognizer (model.gen_channels={m.gen_channels}, "
        f"model.dis_channels={m.dis_channels}, model.rec_channels={m.rec_channels}, data.image_size={size})",
        device="cpu" if config.train.cpu else None,
    )  # fmt: skip
    nets = Networks(arch)
    nets.gen.set_templates(train_set.floats(), train_set.labels)
    o = config.optim
    optimizers = {
        "G": torch.optim.Adam(nets.gen.parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2)),
        "D": torch.optim.Adam(nets.dis.parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2)),
        "R": torch.optim.Adam(nets.rec.parameters(), lr=o.lr_r, betas=(o.beta1, o.beta2)),
    }
    dataset = StyleDataset(train_set, config.model.k_refs)
    evaluated = test_set if test_set is not None else train_set
    n_eval = min(config.eval.samples, len(evaluated))

    def evaluate(trainer: Trainer) -> dict[str, float]:
        gen = sampling_model(trainer, "G")
        refs, z, pick = eval_inputs(gen, dataset, evaluated, n_eval, config.train.seed + 1)
        return evaluate_generator(gen, trainer.unwrap("R"), refs, evaluated.labels[pick], z,
                                  evaluated.floats(pick), trainer.accelerator, config.eval.batch_size)  # fmt: skip

    def samples(trainer: Trainer) -> torch.Tensor:
        torch.manual_seed(config.train.seed)
        sheet = sample_sheet(sampling_model(trainer, "G"), dataset, trainer.accelerator.device)
        # one row per class list: the Trainer writes a square grid, so hand it the finished sheet as one image
        return make_grid(sheet.cpu(), nrow=len(train_set.classes)).unsqueeze(0)

    return Trainer(
        config.train, {"G": nets.gen, "D": nets.dis, "R": nets.rec}, optimizers, make_step(config), dataset,
        sample_fn=samples, eval_fn=evaluate, run_config=config,
        ema={"G": config.optim.ema_decay} if config.optim.ema_decay > 0 else None, hooks=[EpochRecord()],
        export_fn=lambda trainer, result: export_networks(trainer, result, nets),
        console_columns=["loss_d", "loss_g", "rec_fake", "acc_fake", "acc_real", "l1", "gp", "steps_per_s",
                         "epoch", "eval/rec_acc_fake", "eval/rec_acc_real"],
    )  # fmt: skip


def run_training(
    config: GanwritingConfig, start_epoch: str | int | None = 0, resume: str | None = None, preset: str | None = None
) -> FitResult:
    """Train from ``start_epoch`` (or an explicit ``resume`` path); writes the run directory and ``model/``.
    ``preset``: how the command line's preset was chosen, named in the first line of a fresh run."""
    trainer = build_trainer(config)
    start = resume if resume is not None else resolve_start(trainer, start_epoch)
    if start is None and list_checkpoints(trainer.ckpt_dir):
        raise ConfigError(f"{trainer.run_dir} already holds checkpoints; pass a start epoch or 'auto'")
    writers = trainer.loader.dataset.data.writer_names  # the training writers: held-out ones are not among them
    held = [w for w in config.data.holdout_writers if w not in writers]
    trainer.print(
        "ganwriting-music: " + (f"preset {preset}, " if preset and not start else "")
        + f"{len(trainer.loader.dataset)} training images, {len(writers)} writer(s) "
        f"({', '.join(writers)}{'; held out: ' + ', '.join(held) if held else ''}), {trainer.steps_per_epoch} "
        f"updates/epoch on {trainer.accelerator.num_processes} process(es), {config.train.max_epochs} epochs"
        + (f", resuming {start}" if start else "")
    )
    return trainer.fit(resume=start)


def export_networks(trainer: Trainer, result: FitResult, nets: Networks) -> None:
    """Write ``model/`` once training is over (the Trainer's ``export_fn``); the saved generator is the averaged
    one when EMA is on, the one samples and evaluations used."""
    if not result.completed:
        return
    if "G" in trainer.ema:
        nets = copy.deepcopy(nets)
        nets.gen.load_state_dict(trainer.ema["G"].shadow.state_dict())
    nets.save_pretrained(trainer.run_dir / "model", training=trainer.training_record(result))
    m = result.metrics
    figures = ", ".join(f"{k} {m[k]:.3f}" for k in ("rec_acc_fake", "rec_acc_real") if k in m)
    done, into_next = epochs_done(trainer)
    where = f"after epoch {done}" + (f" and {into_next}/{len(trainer.sampler)} batches of epoch {done + 1}"
                                     if into_next else "")  # fmt: skip
    trainer.print(f"done ({result.reason}) {where}, step {result.step}: {trainer.run_dir}/model; {figures}")


def load_networks(run: str | Path, device: str | torch.device = "cpu") -> Networks:
    """The trained networks of a run directory (``RUN/model``) or of a ``model`` directory itself, on ``device``."""
    run = Path(run)
    directory = run / "model" if (run / "model").is_dir() else run
    if not (directory / "config.json").is_file():
        raise CheckpointError(f"{run} is not a ganwriting-music run or model directory (no model/config.json)")
    nets = Networks.from_pretrained(directory, map_location=str(device))
    nets.eval()
    return nets


if __name__ == "__main__":  # accelerate launch -m ganwriting_music.train START_EPOCH [options]
    import sys

    from ganwriting_music.cli import main

    main(["train", *sys.argv[1:]], prog_name="ganwriting-music")
