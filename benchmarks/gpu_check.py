"""Every package's training on the accelerator in several execution variants: does it run, how fast, how much memory.

    python benchmarks/gpu_check.py                                   # all packages, the default variants
    python benchmarks/gpu_check.py --packages hvae-captcha --variants no,bf16,bf16+cl --steps 60
    python benchmarks/gpu_check.py --tiny --variants no,bf16+cl+aot_eager --steps 4   # a CPU check of the script

Each run is the package's own console command (the same code path as a user's `train`) in a fresh process, with
``--max-steps``, a variant's ``--precision/--channels-last/--compile`` and one metrics row per update. A variant is
``+``-joined tokens: a precision (``no``, ``bf16``, ``fp16``), ``cl`` (channels_last) and a torch.compile backend
(``inductor``, ``aot_eager``). Step time is the median of the per-update rate over the updates after ``--warmup``
(compilation and cuDNN autotuning happen in those); images/s = batch size x accumulation / step time; peak memory
is the Trainer's ``gpu_mem_gib`` column (torch.cuda.max_memory_allocated). The run ends with the package's
evaluation, sample grid and model export on the same device, so a device mismatch anywhere fails the variant.
A variant whose logged training values (every metrics.csv column but the clock, epoch, memory, learning rates and
evaluation) are not all finite counts as failed; ``last_values`` holds the last update's values, to compare a fast
variant with the full-precision run before making it a default. A failed variant is recorded with its last error
line, not raised. Speed-ups are ratios to the ``no`` variant of the same package measured in the same invocation.
Results are written after every run, so a cut-off invocation keeps what it measured; with ``--budget-s`` no run
starts after that many seconds (runs go variant by variant over all packages, so a cut keeps every package's
baseline). Writes benchmarks/results/gpu_check.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("no", "bf16", "fp16")
DEFAULT_VARIANTS = "no,bf16,fp16,bf16+cl,bf16+inductor,bf16+cl+inductor"


@dataclass(frozen=True)
class Package:
    """How to train one package's training command: its CLI entry, the command, and the arguments of a real (or
    tiny) run; ``trains_on``: (name of the run it trains on, the option that names that run)."""

    entry: str
    command: tuple[str, ...]
    real: tuple[str, ...] = ()  # smaller data sets than the defaults where preparing them would dominate
    tiny: tuple[str, ...] = ()  # the package's test configuration
    unit: str = "images"
    trains_on: tuple[str, str] | None = None


def _sets(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(arg for item in items for arg in ("--set", item))


def registered() -> dict[str, Package]:
    """Every training command of every registered package (gencore.registry), by the name its spec gives it
    (``vqgan-negatives-prior`` is the vqgan transformer): presets ``bench`` (real runs) and ``tiny``."""
    import importlib

    from gencore.registry import packages

    specs = packages()
    # a tree used from PYTHONPATH without installing it (gpu_session.sh on a lent machine) has no entry points:
    # the specs of its packages are read from their package.py modules
    for path in sorted(ROOT.glob("packages/*/src/*/package.py")):
        if not any(spec.import_name == path.parent.name for spec in specs.values()):
            spec = importlib.import_module(f"{path.parent.name}.package").SPEC
            specs[spec.name] = spec
    found = {}
    for _, spec in sorted(specs.items()):
        for cmd in spec.train_commands:
            trains_on = None
            if cmd.trains_on is not None:
                trains_on = (spec.label(spec.command(cmd.trains_on[0])), cmd.trains_on[1])
            found[spec.label(cmd)] = Package(
                spec.cli, cmd.head(), _sets(cmd.preset("bench")) if "bench" in cmd.presets else (),
                _sets(cmd.preset("tiny")), cmd.unit, trains_on,
            )  # fmt: skip
    return found


PACKAGES = registered()
# every update logged (the step times come from metrics.csv), nothing else that would time disk or sampling
QUIET = ("log_every=1", "checkpoint_every=0", "eval_every=0", "sample_every=0", "progress_bar=false",
         "report_to=none")  # fmt: skip
COMMON = [flag for setting in QUIET for flag in ("--set", f"train.{setting}")]


def variant_flags(variant: str) -> list[str]:
    """CLI flags of a variant such as ``bf16+cl+inductor``."""
    tokens = variant.split("+")
    if tokens[0] not in PRECISIONS:
        raise SystemExit(f"variant {variant!r} must start with a precision: {', '.join(PRECISIONS)}")
    flags = ["--precision", tokens[0], "--channels-last" if "cl" in tokens[1:] else "--no-channels-last"]
    for token in tokens[1:]:
        flags += [] if token == "cl" else ["--compile", token]
    return flags


def package_args(name: str, tiny: bool, runs: dict[str, Path]) -> list[str]:
    """The command and arguments of package ``name`` (without output directory, steps and variant); ``runs``: the
    finished runs so far, by package name (for a command that trains on another's run)."""
    pkg = PACKAGES[name]
    args = [*pkg.command, *(pkg.tiny if tiny else pkg.real)]
    if pkg.trains_on is not None:
        args += [pkg.trains_on[1], str(runs[pkg.trains_on[0]])]
    return args


BOOKKEEPING = {"step", "epoch", "steps_per_s", "elapsed_s", "gpu_mem_gib"}  # metrics.csv columns that are no loss


def measure(run_dir: Path, warmup: int) -> dict[str, float]:
    """Step time, throughput and peak memory from a finished run's metrics.csv and config.json."""
    with open(run_dir / "metrics.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("steps_per_s")]
    rates = [float(r["steps_per_s"]) for r in rows[warmup:]] or [float(r["steps_per_s"]) for r in rows]
    train = json.loads((run_dir / "config.json").read_text())["train"]
    step_s = 1.0 / statistics.median(rates)
    trained = [k for k in rows[-1] if k not in BOOKKEEPING and not k.startswith(("lr_", "eval/"))]
    values = [float(r[k]) for r in rows for k in trained if r.get(k) not in ("", None)]
    mem = [float(r["gpu_mem_gib"]) for r in rows if r.get("gpu_mem_gib")]
    return {
        "updates_timed": len(rates),
        "step_ms": round(1000 * step_s, 3),
        "samples_per_s": round(train["batch_size"] * train["grad_accum_steps"] / step_s, 1),
        "batch_size": train["batch_size"],
        "peak_gpu_mem_gib": round(max(mem), 3) if mem else None,
        "losses_finite": all(math.isfinite(v) for v in values),
        # to compare with the full-precision run's: a fast variant is only a safe default if it trains alike
        "last_values": {k: float(rows[-1][k]) for k in trained if rows[-1][k] not in ("", None)},
        "applied": {k: train[k] for k in ("precision", "channels_last", "compile")},  # as the run saved them
    }


def run_variant(name: str, variant: str, args: list[str], run_dir: Path, steps: int, warmup: int,
                timeout: float) -> dict:  # fmt: skip
    """Train package ``name`` in ``variant`` for ``steps`` updates in a fresh process; its figures or its error."""
    module, function = PACKAGES[name].entry.split(":")
    launcher = f"import sys; from {module} import {function} as m; m(sys.argv[1:])"
    cmd = [sys.executable, "-c", launcher, *args, "--output-dir", str(run_dir), "--max-steps", str(steps),
           *COMMON, *variant_flags(variant)]  # fmt: skip
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=run_dir.parent)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f} s"}
    wall = round(time.perf_counter() - start, 1)
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        error = next((line for line in reversed(lines) if "Error" in line or line.startswith("error:")), lines[-1:])
        return {"ok": False, "wall_s": wall, "exit_code": proc.returncode, "error": str(error)[:400]}
    figures = measure(run_dir, warmup)
    return {"ok": figures["losses_finite"], "wall_s": wall, **figures}


def device_name() -> str:
    """The accelerator's name (the CPU's when there is none)."""
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}, torch {torch.__version__})"
    return f"CPU {platform.processor() or platform.machine()} x{os.cpu_count()} (torch {torch.__version__})"


def summarise(results: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """Per package: speed-up of every working variant over ``no`` and the fastest one whose losses stayed finite."""
    out = {}
    for name, variants in results.items():
        ok = {v: r for v, r in variants.items() if r.get("ok")}
        base = ok.get("no", {}).get("samples_per_s")
        out[name] = {
            "speedup_vs_no": {v: round(r["samples_per_s"] / base, 3) for v, r in ok.items()} if base else {},
            "fastest": max(ok, key=lambda v: ok[v]["samples_per_s"]) if ok else None,
            "failed": sorted(set(variants) - set(ok)),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packages", default=",".join(PACKAGES), help="comma-separated (default: all)")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated (default: {DEFAULT_VARIANTS})")
    parser.add_argument("--steps", type=int, default=40, help="updates per run (default 40)")
    parser.add_argument("--warmup", type=int, default=10, help="first updates left out of the timing (default 10)")
    parser.add_argument("--tiny", action="store_true", help="the packages' test configurations (a quick CPU check)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run (default 600)")
    skip_help = "start no run after this many seconds; the rest are listed as skipped (exit code 0)"
    parser.add_argument("--budget-s", type=float, default=None, help=skip_help)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_check.json")
    args = parser.parse_args(argv)
    names = [n for n in args.packages.split(",") if n]
    unknown = sorted(set(names) - set(PACKAGES))
    if unknown:
        raise SystemExit(f"unknown package(s) {unknown}; known: {', '.join(PACKAGES)}")
    for name in names:
        before = PACKAGES[name].trains_on
        if before is not None and before[0] not in names[: names.index(name)]:
            raise SystemExit(f"{name} trains on a run of {before[0]}: list {before[0]} before it")
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        variant_flags(v)
    if args.warmup >= args.steps:
        raise SystemExit(f"--warmup ({args.warmup}) must be below --steps ({args.steps})")

    report = {"device": device_name(), "steps": args.steps, "warmup": args.warmup, "tiny": args.tiny,
              "command": " ".join(["python", "benchmarks/gpu_check.py", *(argv if argv is not None else sys.argv[1:])]),
              "units": {n: PACKAGES[n].unit for n in names}, "results": {}}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report["results"] = {name: {} for name in names}
    report["skipped"] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        runs: dict[str, Path] = {}  # the first good run of each package, for the commands that train on one
        # variant by variant, so that a budget cut leaves every package with its baseline and the cheap variants
        for variant in variants:
            for name in names:
                if args.budget_s is not None and time.perf_counter() - start > args.budget_s:
                    report["skipped"].append(f"{name} {variant}")
                    continue
                run_dir = Path(tmp) / f"{name}-{variant}"
                before = PACKAGES[name].trains_on
                if before is not None and before[0] not in runs:
                    report["results"][name][variant] = {"ok": False, "error": f"no {before[0]} run to train on"}
                    continue
                result = run_variant(name, variant, package_args(name, args.tiny, runs), run_dir, args.steps,
                                     args.warmup, args.timeout)  # fmt: skip
                if result["ok"] and name not in runs:
                    runs[name] = run_dir
                report["results"][name][variant] = result
                shown = result["error"] if "step_ms" not in result else (
                    f"{result['samples_per_s']:>9.1f} {PACKAGES[name].unit}/s  {result['step_ms']:8.2f} ms/update"
                    f"  peak {result['peak_gpu_mem_gib']} GiB")  # fmt: skip
                print(f"{name:24s} {variant:18s} {'ok  ' if result['ok'] else 'FAIL'} {shown}", flush=True)
                report["summary"] = summarise(report["results"])
                args.out.write_text(json.dumps(report, indent=2) + "\n")
    report["summary"] = summarise(report["results"])
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))
    if report["skipped"]:
        print(f"skipped (over --budget-s {args.budget_s:g}): {', '.join(report['skipped'])}")
    print(f"wrote {args.out}")
    return 0 if all(r["ok"] for v in report["results"].values() for r in v.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
