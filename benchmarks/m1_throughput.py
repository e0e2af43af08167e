"""Training throughput of the M1 step at batch 1000 against the machine's own matrix-multiply FLOP/s.

    python benchmarks/m1_throughput.py [--bands 200] [--batch 1000] [--seconds 10] [--out benchmarks/results]

Measured in the same run, on the same threads:
- peak: FLOP/s of a large float32 matrix multiply (n = 2048, torch.mm), the best the BLAS does here;
- the M1 training step (forward, backward, Adam) of the paper's network (bands-500-500-50, softplus, Gaussian
  likelihood), timed bare and through gencore's Trainer (the path `m1-hyperspectral train` takes).
FLOPs of one step are counted from the linear layers (2 per multiply-add; backward = 2x forward, the usual
count); element-wise work is not counted, so the achieved figure is a lower bound on the work really done.
Goal (issue 6): the step reaches >= 50% of the matmul peak on CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from gencore.train import TrainConfig, Trainer
from m1_hyperspectral.config import M1RunConfig
from m1_hyperspectral.model import M1, M1Config
from m1_hyperspectral.train import Spectra, _as_batch, make_optimizer, make_step


def timed(fn, seconds: float, min_reps: int = 3) -> float:
    """Median seconds per call of ``fn`` over about ``seconds`` of calls (after two warm-up calls)."""
    fn()
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < min_reps:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def matmul_peak(seconds: float, n: int = 2048) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / timed(lambda: torch.mm(a, b), seconds)


def step_flops(model: M1, batch: int) -> float:
    macs = sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))
    return 3 * 2 * macs * batch  # forward + backward (2x forward)


def trainer_step_time(bands: int, batch: int, steps: float) -> float:
    """Median seconds per update of `m1-hyperspectral train`'s step run by gencore's Trainer (no eval/logging)."""
    steps = max(int(steps), 20)
    model = M1(M1Config(bands=bands))
    data = Spectra(torch.rand(20 * batch, bands))
    inner = make_step(M1RunConfig())
    stamps: list[float] = []

    def step(ctx, x):  # noqa: ANN001, ANN202
        stamps.append(time.perf_counter())
        return inner(ctx, x)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(output_dir=tmp, max_steps=steps, batch_size=batch, log_every=10**6, checkpoint_every=0,
                          tensorboard=False, progress_bar=False)  # fmt: skip
        opt = make_optimizer(M1RunConfig(), model, len(data))
        Trainer(cfg, {"M1": model}, {"M1": opt}, step, data, collate_fn=_as_batch).fit()
    deltas = sorted(b - a for a, b in zip(stamps[2:], stamps[3:]))  # step to step, after two warm-up steps
    return deltas[len(deltas) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bands", type=int, default=200, help="Indian Pines has 200 (corrected)")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0, help="timing budget per measurement")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    torch.manual_seed(0)

    peak = matmul_peak(args.seconds)
    model = M1(M1Config(bands=args.bands))
    x = torch.rand(args.batch, args.bands)
    opt = make_optimizer(M1RunConfig(), model, 20 * args.batch)

    def bare_step() -> None:
        loss = -model.elbo(x)["elbo"].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    bare = timed(bare_step, args.seconds)
    trainer_step = trainer_step_time(args.bands, args.batch, args.seconds / bare)
    flops = step_flops(model, args.batch)
    result = {
        "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "bands": args.bands, "batch": args.batch,
        "matmul_peak_gflops": peak / 1e9, "step_gflop": flops / 1e9,
        "bare_step_s": bare, "bare_samples_per_s": args.batch / bare, "bare_gflops": flops / bare / 1e9,
        "bare_fraction_of_peak": flops / bare / peak,
        "trainer_step_s": trainer_step, "trainer_samples_per_s": args.batch / trainer_step,
        "trainer_gflops": flops / trainer_step / 1e9, "trainer_fraction_of_peak": flops / trainer_step / peak,
        "goal_fraction": 0.5,
    }  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "m1_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key:>26}: {value:.4g}" if isinstance(value, float) else f"{key:>26}: {value}")
    print(f"wrote {out / 'm1_throughput.json'}")


if __name__ == "__main__":
    main()
