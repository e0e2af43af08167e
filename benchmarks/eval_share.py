"""The share of a default training run's time that goes to evaluation, for every registered training command
(issue 23's goal: at most 10%).

    OMP_NUM_THREADS=1 python benchmarks/eval_share.py [--packages dcgan-tutorial,...] [--steps 20]

Each command's Trainer is built with its default configuration (only the output folder changed: a temporary one;
``$GENCORE_CACHE`` an empty temporary folder, so dcgan-tutorial's feature network is trained: the cold case; a
command with a ``cpu_preset``, which its ``--preset auto`` picks on the CPU, with that preset there), then trained
for ``--steps`` updates with no periodic sample, evaluation or checkpoint, so that the run ends with one evaluation.
The evaluation function and the step function are timed in CPU seconds of this process (with one thread this is the
wall time of an idle machine, and neighbours on a shared machine do not change it), as is any evaluation set-up
(dcgan-tutorial: its feature network and the real images' figures, built a second time from the cache for the warm
case). The default run's share is then

    (set-up + evaluations × seconds per evaluation) / (building + updates × seconds per update + the same)

with the default run's length (``train.max_steps``, or ``train.max_epochs`` epochs) and its evaluations
(``train.eval_every``/``eval_every_epochs`` plus the final one). Runs that stop early (m1-hyperspectral's patience)
are taken at their full length; their periodic share, evaluation ÷ (evaluation + the updates between two), does
not depend on it. Commands that train on another command's output (vqgan-negatives' prior) are left out. Writes
``benchmarks/results/eval_share.json`` and prints it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmark_report import default_preset, machine, write_report  # siblings: this folder is on sys.path

from gencore.config import build_config
from gencore.registry import packages


class Timed:
    """Wraps a function; the CPU seconds of each call."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.seconds = fn, []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds.append(time.process_time() - start)


def _trainer(built: Any) -> Any:
    return built[0] if isinstance(built, tuple) else built


def eval_count(cfg: Any, length: int, steps_per_epoch: int) -> int:
    """Evaluations of a run of ``length`` updates: every ``eval_every`` updates, at the end of every
    ``eval_every_epochs``-th epoch, and the final one."""
    at = set(range(cfg.eval_every, length + 1, cfg.eval_every)) if cfg.eval_every else set()
    if cfg.eval_every_epochs and steps_per_epoch:
        at |= set(range(cfg.eval_every_epochs * steps_per_epoch, length + 1, cfg.eval_every_epochs * steps_per_epoch))
    return len(at | {length})


def measure(
    spec_name: str, command: Any, steps: int, root: Path, overrides: list[str], preset: str | None = None
) -> dict:
    """Time one command's default run in pieces (see the module docstring); ``overrides`` on top of the defaults,
    ``preset`` (where the command has it) in place of the one its command line would pick."""
    config_class = command.config_class()
    module = importlib.import_module(command.module)
    out = root / f"{spec_name}-{command.name}"
    # the default run is the one the command line trains here
    preset, base = default_preset(command, preset)
    overrides = [*base, *overrides]
    config = build_config(config_class, overrides=[f"train.output_dir={str(out)!r}", "train.progress_bar=false",
                                                   *overrides])  # fmt: skip
    setup = Timed(module.build_evaluation) if hasattr(module, "build_evaluation") else None
    if setup is not None:  # dcgan-tutorial: the evaluation's own set-up inside build_trainer
        module.build_evaluation = setup
    try:
        start = time.process_time()
        trainer = _trainer(module.build_trainer(config))
        build_s = time.process_time() - start
        warm_setup_s = None
        if setup is not None:  # again, with the feature network now in the cache (a fresh output folder)
            config = build_config(config_class, overrides=[f"train.output_dir={str(out) + '-warm'!r}",
                                                           "train.progress_bar=false", *overrides])  # fmt: skip
            _trainer(module.build_trainer(config))
            warm_setup_s = setup.seconds[-1]
    finally:
        if setup is not None:
            module.build_evaluation = setup.fn
    cfg = trainer.config
    per_epoch = trainer.steps_per_epoch
    length = cfg.max_steps if cfg.max_epochs is None else min(cfg.max_steps, cfg.max_epochs * max(per_epoch, 1))
    evaluations = eval_count(cfg, length, per_epoch) if trainer.eval_fn is not None else 0
    every = cfg.eval_every or cfg.eval_every_epochs * per_epoch
    # the timed run: `steps` updates, one evaluation at the end, nothing else periodic
    cfg.max_steps, cfg.max_epochs = steps, None
    cfg.eval_every = cfg.eval_every_epochs = cfg.sample_every = cfg.sample_every_epochs = 0
    cfg.checkpoint_every = cfg.checkpoint_every_epochs = 0
    step_fn = trainer.step_fn = Timed(trainer.step_fn)
    eval_fn = None
    if trainer.eval_fn is not None:
        eval_fn = trainer.eval_fn = Timed(trainer.eval_fn)
    trainer.fit()
    step_s = statistics.median(step_fn.seconds[1:] or step_fn.seconds)  # the first carries one-off warm-up
    eval_s = eval_fn.seconds[-1] if eval_fn is not None and eval_fn.seconds else 0.0
    row = {
        "preset": preset, "default_updates": length, "evaluations": evaluations, "eval_every_updates": every or None,
        "build_s": round(build_s, 2), "seconds_per_update": round(step_s, 4),
        "seconds_per_evaluation": round(eval_s, 3),
        "periodic_share": round(eval_s / (eval_s + every * step_s), 4) if every and evaluations else None,
    }  # fmt: skip
    cases = {"": setup.seconds[0] if setup is not None else 0.0}
    if warm_setup_s is not None:
        cases = {"_cold": setup.seconds[0], "_warm": warm_setup_s}
    for suffix, setup_s in cases.items():
        evaluation = setup_s + evaluations * eval_s
        total = build_s - (setup.seconds[0] if setup is not None else 0.0) + setup_s + length * step_s + evaluation
        row[f"eval_setup_s{suffix}"] = round(setup_s, 2)
        row[f"default_run_s{suffix}"] = round(total, 1)
        row[f"evaluation_s{suffix}"] = round(evaluation, 1)
        row[f"share{suffix}"] = round(evaluation / total, 4)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", default="", help="Comma-separated package names [default: all].")
    parser.add_argument("--steps", type=int, default=20, help="Timed updates per command.")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="Config override for every measured command (with --packages: e.g. dcgan-tutorial's "
                        "eval.feature_steps=300, its default before the evaluation was sized to the run).")
    parser.add_argument("--preset", default=None, help="A package preset to measure, for the commands that have it "
                        "(e.g. ganwriting-music's original) [default: what the command line trains here].")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/eval_share.json"))
    args = parser.parse_args()
    wanted = {p for p in args.packages.split(",") if p}
    specs = packages()
    specs = specs.values() if isinstance(specs, dict) else specs
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="eval_share_") as tmp:
        os.environ["GENCORE_CACHE"] = str(Path(tmp) / "cache")  # cold: nothing cached before
        for spec in specs:
            if wanted and spec.name not in wanted:
                continue
            for command in spec.train_commands:
                if command.trains_on:
                    continue
                name = f"{spec.name} {command.name}"
                print(f"measuring {name} ...", file=sys.stderr, flush=True)
                results[name] = measure(spec.name, command, args.steps, Path(tmp), args.overrides, args.preset)
                print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
    result = {
        "goal": "evaluation <= 10% of a default run", "timed_updates": args.steps, "overrides": args.overrides,
        "results": results,
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "machine": machine(),
    }  # fmt: skip
    write_report(args.out, result)


if __name__ == "__main__":
    main()
