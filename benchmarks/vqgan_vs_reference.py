"""vqgan-negatives' encoder + quantizer + decoder against taming-transformers' modules, same configuration.

The reference is taming's own ``Encoder``/``Decoder`` (taming/modules/diffusionmodules/model.py) and
``VectorQuantizer2`` (taming/modules/vqvae/quantize.py), loaded by file path from a local checkout that is never
committed (its other modules need pytorch-lightning and are not used). Both autoencoders get the same architecture
(the parameter counts are asserted equal), the same rendered molecules in the same order, the same optimiser
(Adam 2e-4, betas 0.5/0.9, as taming) and the same loss (L1 + codebook/commitment; the perceptual and GAN terms
are identical code for both and left out). Steps alternate in chunks so that machine noise hits both alike.

Reported: training images/s of each and their ratio, and codebook usage (distinct codes over held-out images) and
perplexity after the same number of steps: ours with its defaults (l2-normalised codes, dead-code restart),
taming's as it is (legacy loss, plain Euclidean codes).

    git clone https://github.com/CompVis/taming-transformers /tmp/taming   # anywhere outside this repository
    python benchmarks/vqgan_vs_reference.py --reference /tmp/taming --steps 300
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gencore.config import build_config
from gencore.metrics import codebook_usage
from vqgan_negatives.config import RenderConfig, VQModelConfig
from vqgan_negatives.data import render_molecules
from vqgan_negatives.model import VQModel


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TamingAutoencoder(nn.Module):
    """taming's first stage without its Lightning wrapper: encoder, quant_conv, quantizer, post_quant_conv, decoder."""

    def __init__(self, root: Path, cfg: VQModelConfig) -> None:
        super().__init__()
        model = load_module(root / "taming/modules/diffusionmodules/model.py", "taming_model")
        quantize = load_module(root / "taming/modules/vqvae/quantize.py", "taming_quantize")
        dd = dict(ch=cfg.ch, out_ch=cfg.in_channels, ch_mult=list(cfg.ch_mult), num_res_blocks=cfg.num_res_blocks,
                  attn_resolutions=list(cfg.attn_resolutions), dropout=cfg.dropout, in_channels=cfg.in_channels,
                  resolution=cfg.resolution, z_channels=cfg.z_channels, double_z=False)  # fmt: skip
        q = cfg.quantizer
        self.encoder, self.decoder = model.Encoder(**dd), model.Decoder(**dd)
        self.quantize = quantize.VectorQuantizer2(q.codebook_size, q.codebook_dim, beta=q.beta)
        self.quant_conv = nn.Conv2d(cfg.z_channels, q.codebook_dim, 1)
        self.post_quant_conv = nn.Conv2d(q.codebook_dim, cfg.z_channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        quant, loss, (_, _, indices) = self.quantize(self.quant_conv(self.encoder(x)))
        return self.decoder(self.post_quant_conv(quant)), loss, indices.view(len(x), -1)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def train_chunk(model, opt, images, order, start, steps, batch) -> float:
    """``steps`` updates on batches order[start...]; returns seconds."""
    t0 = time.perf_counter()
    for s in range(start, start + steps):
        idx = order[(s * batch) % len(order) :][:batch]
        x = images[idx]
        rec, q_loss, _ = model(x)
        loss = (x - rec).abs().mean() + q_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


@torch.no_grad()
def usage(model, images, size: int) -> dict[str, float]:
    model.eval()
    idx = torch.cat([model(chunk)[2].flatten() for chunk in images.split(64)])
    rec = torch.cat([model(chunk)[0] for chunk in images.split(64)]).clamp(-1, 1)
    model.train()
    mse = F.mse_loss(rec * 0.5 + 0.5, images * 0.5 + 0.5)
    return {**codebook_usage(idx, size), "psnr": float(10 * torch.log10(1 / mse))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, help="Root of a taming-transformers checkout.")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--chunk", type=int, default=10, help="Steps per model before switching to the other.")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--images", type=int, default=1200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="VQModelConfig overrides, e.g. --set ch=64")  # fmt: skip
    parser.add_argument("--out", default="benchmarks/results/vqgan_vs_reference.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # taming's GroupNorm has 32 groups: every width must be a multiple of 32
    cfg = build_config(VQModelConfig, overrides=["ch=32", *args.overrides])
    data = render_molecules(args.images, RenderConfig(size=cfg.resolution), seed=0).images
    hold, train = data[:200], data[200:]

    torch.manual_seed(0)
    ours = VQModel(cfg)
    torch.manual_seed(0)
    ref = TamingAutoencoder(Path(args.reference), cfg)
    counts = {"ours": n_params(ours), "taming": n_params(ref)}
    assert counts["ours"] == counts["taming"], f"architectures differ: {counts}"
    models = {"ours": ours, "taming": ref}
    opts = {k: torch.optim.Adam(m.parameters(), 2e-4, betas=(0.5, 0.9)) for k, m in models.items()}
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
    rates: dict[str, list[float]] = {k: [] for k in models}
    for k in models:  # warm-up (allocator, first-call overheads), not timed
        train_chunk(models[k], opts[k], train, order, 0, 2, args.batch_size)
    for start in range(2, args.steps, args.chunk):
        steps = min(args.chunk, args.steps - start)
        for k in list(models) if (start // args.chunk) % 2 == 0 else list(models)[::-1]:
            seconds = train_chunk(models[k], opts[k], train, order, start, steps, args.batch_size)
            rates[k].append(steps * args.batch_size / seconds)
    size = cfg.quantizer.codebook_size
    report = {
        "config": {
            "resolution": cfg.resolution,
            "ch": cfg.ch,
            "ch_mult": list(cfg.ch_mult),
            "num_res_blocks": cfg.num_res_blocks,
            "attn_resolutions": list(cfg.attn_resolutions),
            "z_channels": cfg.z_channels,
            "codebook_size": size,
            "codebook_dim": cfg.quantizer.codebook_dim,
            "batch_size": args.batch_size,
            "steps": args.steps,
            "threads": args.threads,
        },  # fmt: skip
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, CPU",
        "parameters": counts,
        "images_per_s": {k: float(np.median(v)) for k, v in rates.items()},
        "after_same_steps_on_200_held_out_images": {k: usage(m, hold, size) for k, m in models.items()},
    }
    report["speed_ratio_ours_over_taming"] = report["images_per_s"]["ours"] / report["images_per_s"]["taming"]
    report["goal"] = "speed ratio >= 1.0 on CPU (>= 1.5 on a GPU with mixed precision)"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
