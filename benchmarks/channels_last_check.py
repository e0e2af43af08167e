"""Does channels_last keep a CPU run's numbers, and what does it save? For each chosen training command, the same
short default run (``--steps`` updates, one evaluation at the end, nothing else periodic) with
``train.channels_last`` off and on, for each of ``--seeds``, in one process, alternating.

    OMP_NUM_THREADS=1 python benchmarks/channels_last_check.py --packages hvae-captcha,dcgan-tutorial \\
        --steps 200 --seeds 0,1,2,3 [--set PKG:KEY=VALUE ...]

Per run: the final evaluation's metrics, the last logged training values and the CPU seconds per update (median of
the step function's calls after the first; with one thread the wall time of an idle machine). Per command: the
speed-up (off ÷ on, per seed, and their median) and, for every number, its mean and standard deviation over the
seeds with channels_last off and on. Rounding differences grow over a run into differences the size of a new
seed's, so the question is whether the on runs are distributed like the off runs: a number ``shifts`` when its two
means differ by more than twice the standard error of that difference (and by more than 1% of its size).
``keeps_numbers`` is true when no evaluation metric shifts. Writes ``benchmarks/results/channels_last_check.json``
and prints it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmark_report import machine, write_report  # siblings: this script's folder is on sys.path
from eval_share import Timed

from gencore.config import build_config
from gencore.registry import packages
from gencore.train.logger import read_metrics

TIMING = {"steps_per_s", "elapsed_s", "epoch", "step"}
QUIET = ("train.progress_bar=false", "train.report_to=none", "train.log_every=10", "train.sample_every=0",
         "train.checkpoint_every=0", "train.eval_every=0", "train.eval_every_epochs=0", "train.sample_every_epochs=0",
         "train.checkpoint_every_epochs=0")  # fmt: skip


def _last_train_values(run_dir: Path) -> dict[str, float]:
    _, rows, _ = read_metrics(run_dir / "metrics.csv")
    last: dict[str, float] = {}
    for row in rows:
        for key, value in row.items():
            if key and key not in TIMING and not key.startswith(("eval/", "lr_")) and value not in ("", None):
                last[key] = float(value)
    return last


def run_once(command: Any, out: Path, steps: int, seed: int, on: bool, extra: list[str]) -> dict[str, Any]:
    """One run of ``command``'s default config for ``steps`` updates; its numbers and CPU seconds per update."""
    module = importlib.import_module(command.module)
    overrides = [f"train.output_dir={str(out)!r}", f"train.max_steps={steps}", f"train.seed={seed}",
                 f"train.channels_last={'true' if on else 'false'}", *QUIET, *extra]  # fmt: skip
    config = build_config(command.config_class(), overrides=overrides)
    built = module.build_trainer(config)
    trainer = built[0] if isinstance(built, tuple) else built
    step_fn = trainer.step_fn = Timed(trainer.step_fn)
    result = trainer.fit()
    return {
        "seed": seed, "channels_last": on, "updates": result.step,
        "seconds_per_update": round(statistics.median(step_fn.seconds[1:] or step_fn.seconds), 4),
        "numbers": {**{f"eval/{k}": v for k, v in result.metrics.items()}, **_last_train_values(out)},
    }  # fmt: skip


def compare(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Speed-up and, per number, the means and deviations over the seeds with channels_last off and on."""
    off = {r["seed"]: r for r in runs if not r["channels_last"]}
    on = {r["seed"]: r for r in runs if r["channels_last"]}
    seeds = sorted(off.keys() & on.keys())
    speedups = [off[s]["seconds_per_update"] / on[s]["seconds_per_update"] for s in seeds]
    numbers: dict[str, Any] = {}
    keeps = True
    for key in sorted(set.intersection(*(set(r["numbers"]) for r in runs))):
        a, b = [off[s]["numbers"][key] for s in seeds], [on[s]["numbers"][key] for s in seeds]
        sd_a, sd_b = (statistics.stdev(a), statistics.stdev(b)) if len(seeds) > 1 else (0.0, 0.0)
        delta = statistics.mean(b) - statistics.mean(a)
        se = (sd_a**2 / len(a) + sd_b**2 / len(b)) ** 0.5
        shifts = abs(delta) > 2 * se and abs(delta) > 0.01 * max(abs(v) for v in a + b)
        numbers[key] = {"mean_off": round(statistics.mean(a), 6), "sd_off": round(sd_a, 6),
                        "mean_on": round(statistics.mean(b), 6), "sd_on": round(sd_b, 6),
                        "on_minus_off": round(delta, 6), "shifts": shifts}  # fmt: skip
        keeps = keeps and not (shifts and key.startswith("eval/"))
    return {"speedup_per_seed": [round(x, 3) for x in speedups],
            "speedup": round(statistics.median(speedups), 3) if speedups else None,
            "keeps_numbers": keeps, "numbers": numbers}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", default="hvae-captcha,dcgan-tutorial", help="Comma-separated package names.")
    parser.add_argument("--steps", type=int, default=200, help="Updates per run.")
    parser.add_argument("--seeds", default="0,1,2,3", help="Comma-separated seeds (at least two).")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="PKG:KEY=VALUE",
                        help="A config override for one package's runs (dcgan-tutorial:eval.during_training=true).")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/channels_last_check.json"))
    args = parser.parse_args()
    wanted = [p for p in args.packages.split(",") if p]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    specs = packages()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="channels_last_") as tmp:
        os.environ.setdefault("GENCORE_CACHE", str(Path(tmp) / "cache"))
        for name in wanted:
            spec = specs[name]
            extra = [o.split(":", 1)[1] for o in args.overrides if o.split(":", 1)[0] == name]
            for command in spec.train_commands:
                if command.trains_on:
                    continue
                label = spec.label(command)
                runs = []
                for seed in seeds:
                    for on in (False, True):
                        print(f"{label}: seed {seed}, channels_last {on} ...", file=sys.stderr, flush=True)
                        out = Path(tmp) / f"{label}-{seed}-{int(on)}".replace(" ", "_")
                        runs.append(run_once(command, out, args.steps, seed, on, extra))
                results[label] = {"overrides": extra, "runs": runs, **compare(runs)}
    report = {
        "steps": args.steps, "seeds": seeds, "results": results, "threads": os.environ.get("OMP_NUM_THREADS"),
        "command": "python " + " ".join(sys.argv),
        "machine": machine(),
    }  # fmt: skip
    write_report(args.out, report)


if __name__ == "__main__":
    main()
