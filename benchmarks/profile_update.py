"""Where one update's time goes: every registered training command, default config and data, in-process.

    .venv/bin/python benchmarks/profile_update.py [--packages dcgan-tutorial,...] [--variants default,foreach]
        [--warmup 3] [--timed 6] [--profiled 3] [--repeats 3] [--threads 1] [--out benchmarks/results/....json]

For each training command (and each variant) the script builds the package's own Trainer (``build_trainer`` of the
command's module) with the default config (what its command line trains here: ganwriting-music's ``--preset auto``
is its cpu preset on the CPU; ``--preset NAME`` another preset of the commands that have it), sets the cadences that
are not part of an update out of the way (no evaluation, samples, checkpoints or log lines until the end) and drops
the final evaluation and export, then trains ``warmup + timed + profiled`` updates. ``ms_per_update`` is the median
interval between consecutive step-function entries over the timed updates, so it holds everything the loop does per
update (data, step, optimizer, Trainer bookkeeping). The last updates run under ``torch.profiler`` (CPU): the top
ops by self CPU time with their share of the profiled time, and the host syncs per update
(``aten::_local_scalar_dense``, what ``.item()``/``float(tensor)`` end in; ``aten::item`` counted beside).

Variants, each a fresh Trainer measured in the same process so their ratios are comparable on a busy machine:
``default`` (as the package builds it); ``loop`` (every Adam/AdamW group with ``foreach=False``, torch's choice on
CPU); ``foreach`` (``foreach=True``: the same values on CPU, torch's choice on GPU);
``fused`` (``fused=True``); ``channels_last`` (``train.channels_last=true``); ``bf16`` (``train.precision=bf16``,
CPU autocast). The prior of vqgan-negatives trains on a tiny first stage trained here first. Writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from benchmark_report import default_preset  # a sibling module: this script's folder is on sys.path
from torch.profiler import ProfilerActivity, profile

from gencore.config import build_config
from gencore.registry import PackageSpec, TrainCommand, packages, resolve

VARIANTS = {
    "default": (),
    "loop": (),
    "foreach": (),
    "fused": (),
    "channels_last": ("train.channels_last=true",),
    "bf16": ("train.precision=bf16",),
}
SYNC_OPS = ("aten::_local_scalar_dense", "aten::item")


def _quiet(total: int, run_dir: Path) -> list[str]:
    """Overrides that keep evaluation, samples, checkpoints and logging out of the measured updates."""
    far = total + 1
    return [f"train.output_dir={run_dir}", f"train.max_steps={total}", f"train.log_every={far}",
            f"train.eval_every={far}", f"train.sample_every={far}", f"train.checkpoint_every={far}",
            "train.eval_every_epochs=0", "train.sample_every_epochs=0", f"train.checkpoint_every_epochs={far}",
            "train.progress_bar=false", "train.report_to=none", "train.cpu=true"]  # fmt: skip


def _first_stage(spec: PackageSpec, command: TrainCommand, root: Path) -> list[str]:
    """For a command that trains on another command's run: train that one (tiny preset) and point at it."""
    if command.trains_on is None:
        return []
    name, option = command.trains_on
    first = spec.command(name)
    run = root / f"{spec.name}-{name}-tiny"
    if not (run / "model").exists():
        config = first.build("tiny", f"train.output_dir={run}", "train.progress_bar=false")
        resolve(f"{first.module}:run_training")(config)
    return [f"{option.lstrip('-').replace('-', '_')}={run}"]


def _set_optimizer(trainer: Any, variant: str) -> None:
    """Switch every Adam/AdamW group of the trainer to the per-tensor loop, the multi-tensor (foreach) or the fused
    CPU kernel."""
    for opt in trainer.optimizers.values():
        inner = getattr(opt, "optimizer", opt)  # accelerate wraps it
        for group in [inner.defaults, *inner.param_groups]:
            if "foreach" in group:
                group["foreach"] = variant == "foreach"
                group["fused"] = variant == "fused"


def measure(
    spec: PackageSpec, command: TrainCommand, variant: str, args: argparse.Namespace, root: Path, repeat: int = 0
) -> dict:
    """Train the command's default setup for a few updates; time them, then profile the last ones."""
    total = args.warmup + args.timed + args.profiled + 1
    run_dir = root / f"{spec.name}-{command.name}-{variant}-{repeat}"
    preset, base = default_preset(command, args.preset)
    overrides = [*base, *_quiet(total, run_dir), *VARIANTS[variant], *_first_stage(spec, command, root)]
    config = build_config(command.config_class(), overrides=overrides)
    built = resolve(f"{command.module}:build_trainer")(config)
    trainer = built[0] if isinstance(built, tuple) else built
    trainer.eval_fn, trainer.sample_fn, trainer.hooks = None, None, []  # the final evaluation and export: not an update
    if variant in ("loop", "foreach", "fused"):
        _set_optimizer(trainer, variant)
    inner_step = trainer.step_fn
    stamps: list[float] = []
    prof = profile(activities=[ProfilerActivity.CPU])
    first_profiled = args.warmup + args.timed + 1  # the call that opens the profiled window
    losses: list[dict[str, torch.Tensor]] = []

    def step(ctx, batch):
        stamps.append(time.perf_counter())
        n = len(stamps)
        if n == first_profiled:
            prof.start()
        elif n == first_profiled + args.profiled:
            prof.stop()
        values = inner_step(ctx, batch)
        if args.warmup < n < first_profiled:  # kept as tensors: reading them here would add a host sync
            losses.append({k: v.detach().clone() for k, v in values.items() if torch.is_tensor(v) and v.numel() == 1})
        return values

    trainer.step_fn = step
    trainer.fit()
    gaps = [b - a for a, b in zip(stamps[args.warmup : first_profiled - 1], stamps[args.warmup + 1 : first_profiled])]
    events = prof.key_averages()
    self_total = sum(e.self_cpu_time_total for e in events) or 1.0
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[: args.top]
    syncs = {op: sum(e.count for e in events if e.key == op) / args.profiled for op in SYNC_OPS}
    return {
        "preset": preset,
        "ms_per_update": round(statistics.median(gaps) * 1e3, 2),
        "ms_per_update_all": [round(g * 1e3, 1) for g in gaps],
        "profiled_ms_per_update": round(self_total / 1e3 / args.profiled, 2),
        "top_ops": [
            {
                "op": e.key,
                "share": round(e.self_cpu_time_total / self_total, 3),
                "ms_per_update": round(e.self_cpu_time_total / 1e3 / args.profiled, 2),
                "calls_per_update": round(e.count / args.profiled, 1),
            }
            for e in top
        ],
        # the optimizers' own time (their record_function ranges, children included): the foreach/fused share
        "optimizer_ms_per_update": round(
            sum(e.cpu_time_total for e in events if e.key.startswith("Optimizer.step#")) / 1e3 / args.profiled, 2
        ),
        "host_syncs_per_update": syncs["aten::_local_scalar_dense"],
        "item_calls_per_update": syncs["aten::item"],
        "mean_values_timed": {k: round(statistics.fmean(float(d[k]) for d in losses), 5) for k in losses[0]},
        "batch_size": config.train.batch_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", default="", help="Comma-separated package names [default: all].")
    parser.add_argument("--commands", default="", help="Comma-separated training commands [default: all].")
    parser.add_argument("--variants", default="default,foreach,channels_last,bf16",
                        help=f"Comma-separated, of {', '.join(VARIANTS)}.")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--timed", type=int, default=6)
    parser.add_argument("--profiled", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="Fresh Trainers per variant, alternating.")
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--preset", default=None, help="A package preset to train, for the commands that have it "
                        "(e.g. ganwriting-music's original) [default: what the command line trains here].")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "profile_update.json"))
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or min(args.warmup, args.timed - 2, args.profiled - 1, args.repeats - 1) < 0:
        parser.error(f"unknown variants {unknown}" if unknown else "need --timed >= 2, --profiled and --repeats >= 1")
    torch.set_num_threads(args.threads)
    wanted = {p for p in args.packages.split(",") if p}
    commands = {c for c in args.commands.split(",") if c}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, spec in packages().items():
            if wanted and name not in wanted:
                continue
            for command in spec.train_commands:
                if commands and command.name not in commands:
                    continue
                label = spec.label(command)
                runs: dict[str, list[dict]] = {v: [] for v in variants}
                for repeat in range(args.repeats):  # variants alternate, so a busy spell of the machine hits them all
                    for variant in variants:
                        r = measure(spec, command, variant, args, root, repeat)
                        runs[variant].append(r)
                        ops = ", ".join(f"{o['op']} {o['share']:.0%}" for o in r["top_ops"][:3])
                        print(f"{label} {variant}: {r['ms_per_update']} ms/update, syncs "
                              f"{r['host_syncs_per_update']}/update; {ops}", flush=True)  # fmt: skip
                results[label] = {}
                for variant, rs in runs.items():
                    # the profile of the repeat with the median time; the time itself is the median of repeats
                    ms = [r["ms_per_update"] for r in rs]
                    r = dict(sorted(rs, key=lambda r: r["ms_per_update"])[len(rs) // 2])
                    r["ms_per_update"], r["ms_per_update_repeats"] = round(statistics.median(ms), 2), ms
                    results[label][variant] = r
                base = results[label].get("default", {}).get("ms_per_update")
                for r in results[label].values():
                    r["speedup_vs_default"] = round(base / r["ms_per_update"], 3) if base else None
    report = {"benchmark": "profile_update", "torch": torch.__version__, "torch_threads": args.threads,
              "warmup": args.warmup, "timed": args.timed, "profiled": args.profiled, "repeats": args.repeats,
              "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                          "load_average": [round(v, 1) for v in os.getloadavg()]},
              "results": results}  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
