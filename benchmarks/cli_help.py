"""Wall time of ``<cli> --help`` for the six console scripts, against ``python -c "import torch"`` in the same run.

Each CLI imports only click and light gencore modules at the top (the torch-heavy modules are imported by a
command's body when it runs), so ``--help`` should not pay for torch. Every command is run as a fresh subprocess,
``--repeats`` times per CLI (interleaved, so machine noise spreads over all of them), after one untimed warm-up
round that fills the OS file cache. Reports the median seconds per CLI and the median of the torch import as the
reference; goal: every CLI median under 0.5 s. Writes benchmarks/results/cli_help.json and prints it.

    .venv/bin/python benchmarks/cli_help.py [--repeats 5] [--out PATH]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmark_report import machine, write_report  # the sibling module (this script's folder is on sys.path)

from gencore.registry import packages

CLIS = list(packages())  # every registered package's console script (gencore's included)
REFERENCE = "python -c 'import torch'"
GOAL_S = 0.5


def script(name: str) -> str:
    """The console script installed beside this interpreter (the venv's bin/), else the one on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"console script {name!r} not found beside {sys.executable} or on PATH")
    return found


def timed(argv: list[str]) -> float:
    """Seconds one subprocess takes from start to exit; a failing command stops the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="Runs per command (median reported).")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cli_help.json")
    args = parser.parse_args()

    commands = {name: [script(name), "--help"] for name in CLIS}
    commands[REFERENCE] = [sys.executable, "-c", "import torch"]
    for argv in commands.values():  # warm-up: file cache, .pyc files
        timed(argv)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, argv in commands.items():
            times[name].append(timed(argv))

    medians = {name: statistics.median(times[name]) for name in CLIS}
    reference = statistics.median(times[REFERENCE])
    result = {
        "benchmark": "cli_help",
        "command": "<console-script> --help",
        "repeats": args.repeats,
        "goal_s": GOAL_S,
        "median_s": {name: round(value, 4) for name, value in medians.items()},
        "reference": {"command": REFERENCE, "median_s": round(reference, 4)},
        "ratio_to_reference": {name: round(value / reference, 3) for name, value in medians.items()},
        "all_under_goal": all(value < GOAL_S for value in medians.values()),
        "times_s": {name: [round(t, 4) for t in values] for name, values in times.items()},
        "machine": machine(),
    }
    write_report(args.out, result)


if __name__ == "__main__":
    main()
