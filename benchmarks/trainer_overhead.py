"""Per-step overhead of gencore's Trainer against a bare PyTorch loop on the same toy model, in one run.

Both loops train the same MLP on the same data with Adam for the same number of steps. The headline figure is the
ratio of median steady-state step times (Trainer / bare; goal <= 1.05 on CPU), measured as the interval between
consecutive step-function entries, so it includes everything the loop does per step (data, logging, guards).
Runs alternate A/B to spread machine noise over both. Writes benchmarks/results/trainer_overhead.json.

    .venv/bin/python benchmarks/trainer_overhead.py [--steps 300] [--repeats 5] [--width 1024] [--batch 256]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from gencore.train import TrainConfig, Trainer, seed_everything


def make_model(width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(256, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))


def make_data(n: int) -> torch.utils.data.TensorDataset:
    gen = torch.Generator().manual_seed(0)
    return torch.utils.data.TensorDataset(torch.randn(n, 256, generator=gen), torch.randint(0, 10, (n,), generator=gen))


def bare_loop(steps: int, width: int, batch: int, data: torch.utils.data.Dataset) -> list[float]:
    seed_everything(0)
    model = make_model(width)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, drop_last=True)
    stamps: list[float] = []
    done = 0
    while done < steps:
        for x, y in loader:
            stamps.append(time.perf_counter())
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            done += 1
            if done == steps:
                break
    stamps.append(time.perf_counter())
    return stamps


def trainer_loop(steps: int, width: int, batch: int, data: torch.utils.data.Dataset, run_dir: str) -> list[float]:
    seed_everything(0)
    model = make_model(width)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    stamps: list[float] = []

    def step(ctx, b):
        stamps.append(time.perf_counter())
        x, y = b
        loss = nn.functional.cross_entropy(ctx.models["m"](x), y)
        ctx.update("m", loss)
        return {"loss": loss}

    cfg = TrainConfig(
        output_dir=run_dir,
        max_steps=steps,
        batch_size=batch,
        log_every=50,
        checkpoint_every=0,
        tensorboard=False,
        progress_bar=True,
        cpu=True,
    )
    trainer = Trainer(cfg, {"m": model}, {"m": opt}, step, data)
    t0 = time.perf_counter()
    trainer.fit()
    stamps.append(time.perf_counter())
    stamps.insert(0, t0)  # keep the total for the fit-overall figure
    return stamps


def steady_median(stamps: list[float], warmup: int) -> float:
    gaps = [b - a for a, b in zip(stamps[warmup:-2], stamps[warmup + 1 : -1])]
    return statistics.median(gaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "trainer_overhead.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = make_data(args.batch * 20)
    warmup = 20
    bare_steps, trainer_steps, bare_totals, trainer_totals = [], [], [], []
    for _ in range(args.repeats):
        b = bare_loop(args.steps, args.width, args.batch, data)
        bare_steps.append(steady_median(b, warmup))
        bare_totals.append(b[-1] - b[0])
        with tempfile.TemporaryDirectory() as tmp:
            t = trainer_loop(args.steps, args.width, args.batch, data, tmp)
        trainer_steps.append(steady_median(t[1:], warmup))
        trainer_totals.append(t[-1] - t[0])
    bare_ms, trainer_ms = statistics.median(bare_steps) * 1e3, statistics.median(trainer_steps) * 1e3
    result = {
        "benchmark": "trainer_overhead",
        "device": "cpu",
        "torch_threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "steps": args.steps,
        "repeats": args.repeats,
        "model": f"MLP 256-{args.width}-{args.width}-10, batch {args.batch}, Adam",
        "bare_step_ms_median": round(bare_ms, 4),
        "trainer_step_ms_median": round(trainer_ms, 4),
        "step_time_ratio": round(trainer_ms / bare_ms, 4),
        "bare_total_s_median": round(statistics.median(bare_totals), 4),
        "trainer_fit_total_s_median": round(statistics.median(trainer_totals), 4),
        "fit_total_ratio": round(statistics.median(trainer_totals) / statistics.median(bare_totals), 4),
        "goal_step_time_ratio_max": 1.05,
    }
    result["goal_met"] = result["step_time_ratio"] <= result["goal_step_time_ratio_max"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
