"""Codebook health of vqgan-negatives' quantizer remedies on the default molecule data (CPU, small budget).

Trains the first stage without the GAN term for the same number of steps under each remedy and reports the
fraction of the codebook used on held-out images (distinct codes over the set), the perplexity and the PSNR.

    OMP_NUM_THREADS=1 python benchmarks/vqgan_codebook.py --steps 300 --out benchmarks/results/vqgan_codebook.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from gencore.config import build_config
from vqgan_negatives.config import VQGANConfig
from vqgan_negatives.train import run_training

# taming's setting: codes as wide as the encoder output (z_channels = 64 here), plain Euclidean nearest code
PLAIN = ["model.quantizer.codebook_dim=64", "model.quantizer.l2_normalize=false", "model.quantizer.restart_dead=false"]
VARIANTS = {
    "plain (taming-like)": PLAIN,
    "ema": [*PLAIN, "model.quantizer.ema=true"],
    "kmeans_init": [*PLAIN, "model.quantizer.kmeans_init=true"],
    "restart_dead": [*PLAIN[:2], "model.quantizer.restart_dead=true"],
    "l2 + 8-dim codes": ["model.quantizer.restart_dead=false"],
    "default (l2 + 8-dim + restart)": [],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--num-images", type=int, default=2000)
    parser.add_argument("--only", nargs="*", default=None, help="Variant names to run (default: all).")
    parser.add_argument("--out", default="benchmarks/results/vqgan_codebook.json")
    args = parser.parse_args()
    results = {}
    for name, overrides in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            cfg = build_config(VQGANConfig, overrides=[
                f"train.max_steps={args.steps}", f"data.num_images={args.num_images}", "loss.disc_start=1000000",
                "train.log_every=100", "train.checkpoint_every=0", "train.progress_bar=false",
                "train.report_to=none", f"train.output_dir={tmp!r}", *overrides,
            ])  # fmt: skip
            t0 = time.perf_counter()
            result = run_training(cfg)
            m = result.metrics
            results[name] = {"usage": round(m["usage"], 4), "perplexity": round(m["perplexity"], 1),
                             "psnr": round(m["psnr"], 2), "seconds": round(time.perf_counter() - t0, 1),
                             "overrides": overrides}  # fmt: skip
            print(name, results[name], flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"steps": args.steps, "codebook_size": 256, "results": results}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
