"""Training images/s of dcgan-tutorial's DCGAN against pytorch/examples' DCGAN, same architecture and batch.

The reference is not part of this repository: pass the path of its ``dcgan/main.py`` from a local checkout of
pytorch/examples (``--reference``). Its ``Generator``, ``Discriminator`` and ``weights_init`` definitions are read
from that file with ``ast`` and run unchanged; the reference's training step (BCELoss on sigmoid outputs, D on real
then fake, G with real labels, Adam 2e-4, beta1 0.5) is driven by a plain loop here. Ours trains through
gencore's Trainer (`dcgan_tutorial.train.build_trainer`), so its figure includes everything the Trainer does per
step. Both train on the same random 64×64 RGB images (the speed does not depend on the pixels), alternating
A/B over several repeats; the figure is batch / median step time. On a GPU, ours also runs with bf16 autocast
and channels_last (``--device cuda``).

    .venv/bin/python benchmarks/dcgan_vs_reference.py --reference /path/to/examples/dcgan/main.py
"""

from __future__ import annotations

import argparse
import ast
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from dcgan_tutorial.config import GANConfig
from dcgan_tutorial.data import ImageSet
from dcgan_tutorial.train import build_trainer
from gencore.config import build_config


def load_reference(path: Path, nz: int, ngf: int, ndf: int, nc: int) -> dict:
    """Exec only the model definitions of the reference script (its module-level training code never runs)."""
    tree = ast.parse(path.read_text())
    keep = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.Import, ast.ImportFrom))
            and getattr(n, "name", None) in (None, "Generator", "Discriminator", "weights_init")]  # fmt: skip
    namespace: dict = {"nz": nz, "ngf": ngf, "ndf": ndf, "nc": nc, "torch": torch, "nn": nn}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    missing = [k for k in ("Generator", "Discriminator", "weights_init") if k not in namespace]
    if missing:
        raise SystemExit(f"{path} does not define {missing}: is it pytorch/examples dcgan/main.py?")
    return namespace


def reference_steps(ref: dict, steps: int, batch: int, nz: int, device: str, data: torch.Tensor) -> list[float]:
    """Step-start timestamps of the reference algorithm."""
    torch.manual_seed(0)
    net_g, net_d = ref["Generator"](1).to(device), ref["Discriminator"](1).to(device)
    net_g.apply(ref["weights_init"])
    net_d.apply(ref["weights_init"])
    criterion = nn.BCELoss()
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    stamps = []
    for i in range(steps):
        stamps.append(_now(device))
        real = data[(i * batch) % (len(data) - batch) :][:batch].to(device)
        net_d.zero_grad()
        out = net_d(real)
        err_real = criterion(out, torch.full((batch,), 1.0, device=device))
        err_real.backward()
        fake = net_g(torch.randn(batch, nz, 1, 1, device=device))
        out = net_d(fake.detach())
        err_fake = criterion(out, torch.full((batch,), 0.0, device=device))
        err_fake.backward()
        opt_d.step()
        net_g.zero_grad()
        out = net_d(fake)
        err_g = criterion(out, torch.full((batch,), 1.0, device=device))
        err_g.backward()
        opt_g.step()
    stamps.append(_now(device))
    return stamps


def ours_steps(steps: int, batch: int, device: str, data: torch.Tensor, fast: bool) -> list[float]:
    """Step-start timestamps of dcgan-tutorial's training through the Trainer."""
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [
            "model.image_size=64", "model.channels=3", "model.ngf=64", "model.ndf=64", f"train.batch_size={batch}",
            f"train.max_steps={steps}",
            f"train.output_dir={tmp!r}", "train.log_every=1000000", "train.checkpoint_every=0", "eval.feature_steps=1",
            "train.progress_bar=false", "train.report_to=none", "data.num_images=160", "eval.samples=16",
            f"train.cpu={str(device == 'cpu').lower()}", f"train.precision={'bf16' if fast else 'no'}",
        ]  # fmt: skip
        trainer = build_trainer(build_config(GANConfig, overrides=overrides))
        counts = [sum(p.numel() for p in trainer.unwrap(n).parameters()) for n in ("G", "D")]
        if counts != [3_576_704, 2_765_568]:  # pytorch/examples' DCGAN at 64 px RGB, ngf = ndf = 64
            raise SystemExit(f"our models have {counts} parameters, not the reference's [3576704, 2765568]")
        trainer.eval_fn = trainer.sample_fn = None  # the reference neither evaluates nor samples per step
        trainer.loader.dataset.data = ImageSet(data, torch.zeros(len(data), dtype=torch.long), ["random"])
        trainer.sampler.num_samples = len(data)
        if fast:
            for m in trainer.models.values():
                m.to(memory_format=torch.channels_last)
        step_fn = trainer.step_fn

        def timed(ctx, b):
            stamps.append(_now(device))
            return step_fn(ctx, b)

        trainer.step_fn = timed
        trainer.fit()
        stamps.append(_now(device))
    return stamps


def _now(device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter()


def images_per_s(stamps: list[float], batch: int, warmup: int) -> float:
    gaps = [b - a for a, b in zip(stamps[warmup:-1], stamps[warmup + 1 :])]
    return batch / statistics.median(gaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="path to pytorch/examples dcgan/main.py")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "dcgan_vs_reference.json")
    args = parser.parse_args()
    if not args.reference.is_file():
        raise SystemExit(f"reference not found: {args.reference} (a local checkout of pytorch/examples)")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no GPU available here")
    torch.set_num_threads(args.threads)
    ref = load_reference(args.reference, nz=100, ngf=64, ndf=64, nc=3)
    data = torch.rand(args.batch * 8, 3, 64, 64) * 2 - 1
    warmup = 5
    rows: dict[str, list[float]] = {"reference": [], "ours": []}
    if args.device == "cuda":
        rows["ours_bf16_channels_last"] = []
    for _ in range(args.repeats):
        rows["reference"].append(
            images_per_s(reference_steps(ref, args.steps, args.batch, 100, args.device, data), args.batch, warmup)
        )
        rows["ours"].append(images_per_s(ours_steps(args.steps, args.batch, args.device, data, False), args.batch,
                                         warmup))  # fmt: skip
        if "ours_bf16_channels_last" in rows:
            rows["ours_bf16_channels_last"].append(
                images_per_s(ours_steps(args.steps, args.batch, args.device, data, True), args.batch, warmup)
            )
    medians = {k: statistics.median(v) for k, v in rows.items()}
    result = {
        "benchmark": "dcgan_vs_reference",
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "machine": platform.machine(),
        "torch_threads": args.threads,
        "torch": torch.__version__,
        "model": "DCGAN 64x64 RGB, nz 100, ngf = ndf = 64, Adam 2e-4",
        "batch": args.batch,
        "steps_per_repeat": args.steps,
        "repeats": args.repeats,
        **{f"{k}_images_per_s": round(v, 2) for k, v in medians.items()},
        "speedup": round(medians["ours"] / medians["reference"], 3),
    }
    if "ours_bf16_channels_last" in medians:
        result["speedup_bf16_channels_last"] = round(medians["ours_bf16_channels_last"] / medians["reference"], 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
