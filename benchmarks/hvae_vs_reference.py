"""hvae-captcha's compact HVAE against the original project's HVAE (Anzarts/ProyectoMSD7203), same data and machine.

The reference is not part of this repository: pass a local checkout of it (``--reference DIR``, the folder with
its ``model.py``). Its ``model.py`` is imported from there at run time and its ``HVAE()`` (default arguments: 3×50×250,
latent 512, spectral norm, AdamW 5e-5) runs unchanged; its training step (``model(X)``, ``model.loss(...,
terms=True)``, reconstruction + prior + consistency, ``model.optimizer.step()``) is driven by a plain loop here,
because its ``trainer.py`` imports ``gdown`` and hard-codes ``cuda``.

Both models train on the same rendered CAPTCHAs at the original's input size (RGB 50×250), each for the same
wall-clock budget, then are evaluated on the same held-out images:

* ``images_per_s``: training throughput (median over steps after warm-up);
* ``parameters``;
* ``test_bits_per_dim``: an importance-weighted bound (K samples) on the NLL of the 8-bit test images.
  Ours: its own bound (discretized logistic likelihood, top-down posterior). The reference's decoder outputs
  sigmoid means only and its loss is not a bound, so it is scored with the same estimator applied to its own
  networks: proposal = its encoder chain q(z1|x) q(z2|z1), target = p(z2) p(z1|z2) p(x|z1) with p(x|z1) a
  discretized logistic around its decoded mean whose single scale is fitted on training images (the most
  favourable scale for it). That is the likelihood the original model actually assigns; no training signal of
  its own ever asked the encoder's z1 to suit the decoder, which is the defect this package fixes.

    .venv/bin/python benchmarks/hvae_vs_reference.py --reference /path/to/ProyectoMSD7203 --budget 120
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from gencore.config import build_config
from gencore.metrics import bits_per_dim, iw_elbo
from gencore.sampling import sampling_model
from hvae_captcha.config import HVAEConfig
from hvae_captcha.data import CaptchaData, load_data, train_holdout
from hvae_captcha.evaluate import evaluate_model
from hvae_captcha.model import discretized_logistic_log_likelihood, gaussian_log_density
from hvae_captcha.train import build_trainer

ORIGINAL_SIZE = ["model.channels=3", "model.height=50", "model.width=250"]


def load_reference(folder: Path):  # noqa: ANN201 - the reference module
    """Import the reference's model.py from ``folder`` (never copied into this repository)."""
    path = folder / "model.py"
    if not path.is_file():
        raise SystemExit(f"{path} not found: pass --reference DIR, a checkout of Anzarts/ProyectoMSD7203")
    spec = importlib.util.spec_from_file_location("hvae_reference_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "HVAE"):
        raise SystemExit(f"{path} does not define HVAE: is it ProyectoMSD7203's model.py?")
    return module


def train_reference(ref, data: CaptchaData, batch: int, budget: float, seed: int):  # noqa: ANN001, ANN201
    """Train the reference HVAE() for ``budget`` seconds; returns (model, per-step seconds, steps)."""
    torch.manual_seed(seed)
    model = ref.HVAE()
    model.train()
    times, step, start = [], 0, time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    while time.perf_counter() - start < budget:
        t0 = time.perf_counter()
        idx = torch.randint(len(data.texts), (batch,), generator=gen)
        x = data.images[idx].float() / 255.0  # its ToTensor() input in [0, 1]
        model.optimizer.zero_grad()
        x_, mus, logvars = model(x)
        rec, prior, cons = model.loss(x, x_, mus, logvars, terms=True)
        loss = rec + prior + cons  # its default schedules are constant 1
        if not torch.isfinite(loss):
            print(f"reference: non-finite loss at step {step}, stopping as its trainer does")
            break
        loss.backward()
        model.optimizer.step()
        times.append(time.perf_counter() - t0)
        step += 1
    return model, times, step


@torch.no_grad()
def reference_log_weights(model, x01: torch.Tensor, k: int, log_scale: float) -> torch.Tensor:  # noqa: ANN001
    """(k, B) log p(x, z) - log q(z|x) of the reference's networks (see the module docstring)."""
    levels = model.lattents
    out = []
    for _ in range(k):
        h, log_q, zs = x01, 0.0, []
        for level in range(levels):  # its encoder chain: x -> z1 -> z2 ...
            h = model.encoder[level](h)
            mu, lv = model.mu_layers[level](h), model.lv_layers[level](h)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * lv)
            log_q = log_q + gaussian_log_density(z, mu, lv)
            zs.append(z)
            h = z
        log_p = gaussian_log_density(zs[-1], torch.zeros_like(zs[-1]), torch.zeros_like(zs[-1]))
        for i in range(levels - 1):  # its generation chain: z_{l+1} -> p(z_l | z_{l+1})
            g = model.decoder[i](zs[levels - 1 - i])
            mu, lv = model.mu_layers[levels + i](g), model.lv_layers[levels + i](g)
            log_p = log_p + gaussian_log_density(zs[levels - 2 - i], mu, lv)
        mean = model.decoder[-1](zs[0]) * 2 - 1
        log_px = discretized_logistic_log_likelihood(x01 * 2 - 1, mean, torch.full_like(mean, log_scale))
        out.append(log_px + log_p - log_q)
    return torch.stack(out)


@torch.no_grad()
def fit_reference_scale(model, x01: torch.Tensor) -> float:  # noqa: ANN001
    """The log-scale (one for all pixels) that maximises the reference's reconstruction likelihood on ``x01``."""
    x_, _, _ = model(x01)
    grid = torch.linspace(-6, 0, 25)
    target, mean = x01 * 2 - 1, x_ * 2 - 1
    scores = [discretized_logistic_log_likelihood(target, mean, torch.full_like(mean, s)).mean() for s in grid]
    return float(grid[int(torch.stack(scores).argmax())])


def ours(data_overrides: list[str], batch: int, budget: float, seed: int, holdout: CaptchaData, k: int) -> dict:
    """Calibrate our steps/s, then train for ``budget`` seconds through the Trainer and evaluate."""
    with tempfile.TemporaryDirectory() as tmp:
        common = [*ORIGINAL_SIZE, *data_overrides, f"train.batch_size={batch}", f"train.seed={seed}",
                  "train.progress_bar=false", "train.report_to=none", "train.checkpoint_every=0",
                  "train.eval_every=0", "train.sample_every=0", "train.log_every=1000000"]  # fmt: skip
        probe = build_trainer(build_config(HVAEConfig, overrides=[*common, f"train.output_dir='{tmp}/probe'",
                                                                  "train.max_steps=25"]))  # fmt: skip
        stamps: list[float] = []
        step_fn = probe.step_fn

        def timed(ctx, batch_):  # noqa: ANN001, ANN202
            stamps.append(time.perf_counter())
            return step_fn(ctx, batch_)

        probe.step_fn = timed
        probe.eval_fn = None
        probe.fit()
        per_step = statistics.median([b - a for a, b in zip(stamps[5:], stamps[6:])])
        steps = max(1, int(budget / per_step))
        start = time.perf_counter()
        trainer = build_trainer(build_config(HVAEConfig, overrides=[*common, f"train.output_dir='{tmp}/run'",
                                                                    f"train.max_steps={steps}"]))  # fmt: skip
        trainer.eval_fn = None
        trainer.fit()
        wall = time.perf_counter() - start
        model = sampling_model(trainer, "hvae")
        torch.manual_seed(seed)
        metrics = evaluate_model(model, holdout, k=k, batch_size=16)
    return {"parameters": sum(p.numel() for p in model.parameters()), "images_per_s": batch / per_step,
            "steps": steps, "train_wall_s": wall, "test_bits_per_dim": metrics["nll_bits_per_dim"],
            "test_elbo_bits_per_dim": metrics["elbo_bits_per_dim"], "psnr_db": metrics["psnr_db"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="checkout of Anzarts/ProyectoMSD7203")
    parser.add_argument("--budget", type=float, default=120.0, help="training seconds per model")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-images", type=int, default=2048)
    parser.add_argument("--test-images", type=int, default=64)
    parser.add_argument("-k", "--iw-samples", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "hvae_vs_reference.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ref = load_reference(args.reference)

    data_overrides = [f"data.num_images={args.num_images}", "data.holdout_fraction=0.1"]
    config = build_config(HVAEConfig, overrides=[*ORIGINAL_SIZE, *data_overrides, f"train.seed={args.seed}"])
    train_set, holdout = train_holdout(load_data(config.data, config.model, args.seed), 0.1, args.seed)
    holdout = holdout.subset(list(range(min(args.test_images, len(holdout.texts)))))
    dims = math.prod(holdout.images.shape[1:])

    print(f"reference: training {args.budget:.0f} s ...", flush=True)
    model, times, steps = train_reference(ref, train_set, args.batch_size, args.budget, args.seed)
    model.eval()
    log_scale = fit_reference_scale(model, train_set.images[:64].float() / 255.0)
    torch.manual_seed(args.seed)
    bounds = []
    for start in range(0, len(holdout.texts), 16):
        x01 = holdout.images[start : start + 16].float() / 255.0
        bounds.append(iw_elbo(reference_log_weights(model, x01, args.iw_samples, log_scale)))
    reference = {"parameters": sum(p.numel() for p in model.parameters()),
                 "images_per_s": args.batch_size / statistics.median(times[3:] or times), "steps": steps,
                 "test_bits_per_dim": bits_per_dim(torch.cat(bounds), dims), "fitted_log_scale": log_scale}  # fmt: skip

    print(f"ours: training {args.budget:.0f} s ...", flush=True)
    mine = ours(data_overrides, args.batch_size, args.budget, args.seed, holdout, args.iw_samples)

    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "device": "cpu", "input": "3x50x250 RGB rendered CAPTCHAs",
        "budget_s": args.budget, "batch_size": args.batch_size, "train_images": len(train_set.texts),
        "test_images": len(holdout.texts), "iw_samples": args.iw_samples, "reference": reference, "ours": mine,
        "speedup_images_per_s": mine["images_per_s"] / reference["images_per_s"],
        "parameter_ratio": reference["parameters"] / mine["parameters"],
        "bits_per_dim_better": mine["test_bits_per_dim"] <= reference["test_bits_per_dim"],
        "command": " ".join(sys.argv),
    }  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
