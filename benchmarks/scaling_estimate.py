"""Gradient all-reduce cost per update of every package's default models, on 8 GPUs of one node and on 4 nodes.

    python benchmarks/scaling_estimate.py                   # the table (parameters counted from the defaults)
    python benchmarks/scaling_estimate.py --step-ms dcgan-tutorial=12.5 --step-ms hvae-captcha=30
    python benchmarks/scaling_estimate.py --gpu-check benchmarks/results/gpu_check.json   # step times measured there

The parameter counts are measured (the default configurations are built); the link figures are stated
assumptions, printed with the table. With ``--step-ms`` (a single-GPU step time measured elsewhere) or
``--gpu-check`` (the report of benchmarks/gpu_check.py: each package's fastest working variant) it also gives
the all-reduce share of each update. Packages are named as gpu_check.py names them (``vqgan-negatives`` is the
first stage, ``vqgan-negatives-prior`` the transformer). Ring all-reduce of S bytes over N ranks moves
2(N-1)/N * S per rank; across nodes a hierarchical all-reduce sends that over each node's network links, with M
nodes in place of N. DDP overlaps it with the backward pass in 25 MB buckets, so these are upper bounds of the
exposed time.
Writes benchmarks/results/scaling_estimate.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

# Effective NCCL ring bus bandwidth on 8 NVLink-4 GPUs (H100/H200): ~370 GB/s (NVIDIA/nccl-tests issue #212, NCCL
# maintainer's figure; ~475 GB/s peak with NVLink SHARP in nccl-tests issue #272 on 8x H200). Small messages do not
# reach it: the per-call latency term below is an assumption of the order nccl-tests reports for small sizes.
LINKS = {
    "8 GPUs, one node (NVLink)": {"ranks": 8, "bytes_per_s": 370e9, "latency_s": 20e-6},
    "4 nodes x 8 GPUs, 1x 200 Gb/s NIC per node": {"ranks": 4, "bytes_per_s": 25e9, "latency_s": 50e-6, "intra": True},
    "4 nodes x 8 GPUs, 8x 400 Gb/s NICs per node": {
        "ranks": 4,
        "bytes_per_s": 400e9,
        "latency_s": 50e-6,
        "intra": True,
    },  # fmt: skip
}


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def model_sizes() -> dict[str, dict[str, int]]:
    """Trainable parameters of every model each package updates (and all-reduces) in one update, by name."""
    from dcgan_tutorial.config import GANConfig
    from dcgan_tutorial.model import build_models
    from ganwriting_music.config import CLASSES, GanwritingConfig
    from ganwriting_music.model import Networks, NetworksConfig
    from gencore.demo import DemoConfig, ShapesVAE
    from hvae_captcha.config import HVAEConfig
    from hvae_captcha.model import HVAE
    from m1_hyperspectral.config import M1RunConfig
    from m1_hyperspectral.model import M1, M1Config
    from vqgan_negatives.config import TransformerRunConfig, VQGANConfig
    from vqgan_negatives.model import PatchDiscriminator, VQModel
    from vqgan_negatives.transformer import CondGPT

    g, d = build_models(GANConfig().model)
    m1 = M1RunConfig().model
    vq_cfg = VQGANConfig()
    vq = VQModel(vq_cfg.model)
    side, codes = vq.config.code_side, vq.config.quantizer.codebook_size
    gpt_cfg = TransformerRunConfig().gpt
    gpt_cfg = type(gpt_cfg)(**{**gpt_cfg.__dict__, "vocab_size": 2 * codes, "block_size": 2 * side * side})
    gw = GanwritingConfig()
    nets = Networks(NetworksConfig(gw.model, gw.data.image_size, list(CLASSES), list(gw.data.fonts)))
    return {  # keyed as benchmarks/gpu_check.py names the packages
        "gencore": {"vae": _count(ShapesVAE(DemoConfig().model))},
        "dcgan-tutorial": {"G": _count(g), "D": _count(d)},
        "hvae-captcha": {"hvae": _count(HVAE(HVAEConfig().model))},
        "m1-hyperspectral": {"M1": _count(M1(M1Config(M1RunConfig().data.synth.bands, list(m1.hidden), m1.latent)))},
        "vqgan-negatives": {"vq": _count(vq), "D": _count(PatchDiscriminator(vq_cfg.disc))},
        "vqgan-negatives-prior": {"gpt": _count(CondGPT(gpt_cfg))},
        "ganwriting-music": {"G": _count(nets.gen), "D": _count(nets.dis), "R": _count(nets.rec)},
    }


def allreduce_seconds(n_bytes: float, link: dict) -> float:
    """Ring all-reduce time of ``n_bytes`` (one call per model) over ``link``; the node-local stage is added when
    ``link`` spans nodes."""
    n = link["ranks"]
    t = link["latency_s"] + 2 * (n - 1) / n * n_bytes / link["bytes_per_s"]
    if link.get("intra"):
        t += allreduce_seconds(n_bytes, LINKS["8 GPUs, one node (NVLink)"])
    return t


def measured_step_ms(report: dict) -> dict[str, dict]:
    """Per package of a gpu_check.py report: the step time of its fastest working variant, which one, and where."""
    out = {}
    for name, variants in report["results"].items():
        fastest = report.get("summary", {}).get(name, {}).get("fastest")
        if fastest is not None:
            out[name] = {"step_ms": variants[fastest]["step_ms"], "variant": fastest, "device": report["device"]}
    return out


def read_gpu_check(path: Path) -> dict[str, dict]:
    """:func:`measured_step_ms` of the report at ``path``; a missing or foreign file ends in a one-line error."""
    try:
        return measured_step_ms(json.loads(path.read_text()))
    except OSError as exc:
        raise SystemExit(f"--gpu-check: cannot read {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SystemExit(f"--gpu-check: {path} is not a report of benchmarks/gpu_check.py") from None


def main(argv: list[str] | None = None) -> None:
    """Print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--step-ms", action="append", default=[], metavar="PACKAGE=MS",
                        help="a measured single-GPU step time, to give the all-reduce share")  # fmt: skip
    parser.add_argument("--gpu-check", type=Path, default=None, metavar="JSON",
                        help="take the step times from a benchmarks/gpu_check.py report")  # fmt: skip
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "scaling_estimate.json"))
    args = parser.parse_args(argv)
    measured = read_gpu_check(args.gpu_check) if args.gpu_check else {}
    for item in args.step_ms:
        name, _, value = item.partition("=")
        try:
            measured[name] = {"step_ms": float(value), "variant": "given", "device": "given"}
        except ValueError:
            raise SystemExit(f"--step-ms {item!r}: expected PACKAGE=MILLISECONDS, e.g. dcgan-tutorial=12.5") from None
    sizes = model_sizes()
    unknown = sorted(set(measured) - set(sizes))
    if unknown:
        raise SystemExit(f"unknown package(s) {unknown}; known: {', '.join(sizes)}")
    rows = []
    for package, models in sizes.items():
        params = sum(models.values())
        grad_bytes = 4 * params  # fp32 gradients: autocast keeps parameters and gradients in fp32
        row = {"package": package, "models": models, "parameters": params, "gradient_MB": grad_bytes / 1e6,
               "adam_state_MB_per_gpu": 16 * params / 1e6}  # fmt: skip
        for name, link in LINKS.items():
            ms = sum(allreduce_seconds(4 * p, link) for p in models.values()) * 1e3
            row[f"allreduce_ms: {name}"] = ms
            row[f"update_ms_below_which_allreduce_exceeds_10pct: {name}"] = 9 * ms  # ms / (ms + step) = 0.1
            if package in measured:
                row[f"share_of_update: {name}"] = ms / (ms + measured[package]["step_ms"])
        if package in measured:
            row["single_gpu_update"] = measured[package]
        rows.append(row)
    print("assumed links:", json.dumps(LINKS))
    header = ["package", "parameters", "gradient_MB", *[f"allreduce_ms: {n}" for n in LINKS]]
    if measured:
        header += [f"share_of_update: {n}" for n in LINKS]
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(f"{row[h]:.3g}" if isinstance(row.get(h), float) else str(row.get(h, "-")) for h in header))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"links": LINKS, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
