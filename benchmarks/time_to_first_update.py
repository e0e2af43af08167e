"""Time from the command to the first update of every registered training command, with its default data and
configuration (issue 23's goal: at most 10 s), as a user's whole process.

    python benchmarks/time_to_first_update.py [--packages dcgan-tutorial,...] [--out benchmarks/results/...json]

Each command runs as its console script in a fresh folder with `--max-steps 2 --log-every 1` (everything else
default), so its first console line of training is the first update; the script records the seconds from the
process start to that line, and to the process's end (the final evaluation and export included). The prior of
vqgan-negatives trains on the first stage trained just before it. Writes JSON and prints it.

Wall-clock seconds are what a user waits on a quiet machine; on a shared one other work stretches them. So the
process's CPU seconds (user + system, from /proc on Linux) at the first update are recorded too: with
``OMP_NUM_THREADS=1`` they are close to the quiet machine's wall time whatever else runs beside. Where one update
is long (ganwriting-music's original batch of 92 at 128×128 takes most of a minute on one thread), the start-up
alone is the CPU seconds to the first update less those of the second (an upper bound), and exactly: the wall
seconds to the first update less the seconds of training that update's line reports (``elapsed_s``, or
1 / ``steps_per_s``: the Trainer's clocks, started when training begins, data loaded and models built),
``seconds_before_training``.
``--extra "PACKAGE:ARGS"`` adds a row for the package's first train command with more arguments (e.g.
``--extra "ganwriting-music:--preset original"``, the GPU-sized configuration that its default, ``--preset auto``,
trains only on a GPU).
Caches (``GENCORE_CACHE``) are used as they are; point it at an empty folder to measure a first-ever run.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from benchmark_report import console_script, machine, process_cpu, write_report  # siblings: this folder is on sys.path

from gencore.registry import packages


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a running process (and its waited-for children), or None off Linux."""
    times = process_cpu(pid)
    return None if times is None else sum(times)


def first_update_seconds(line: str) -> float | None:
    """The Trainer's own seconds of training at its console line of update 1 (``--log-every 1``): its
    ``elapsed_s``, or where a package's line leaves that out, 1 / its ``steps_per_s`` (both clocks start when the
    training loop does); None if the line shows neither."""
    elapsed = re.search(r"\belapsed_s ([0-9.eE+-]+)", line)
    if elapsed:
        return float(elapsed.group(1))
    rate = re.search(r"\bsteps_per_s ([0-9.eE+-]+)", line)
    return 1 / float(rate.group(1)) if rate and float(rate.group(1)) > 0 else None


def timed_run(argv: list[str], cwd: Path, timeout: float) -> dict:
    """Run ``argv``; the seconds to the first update line and to the end, and the line itself."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "GENCORE_PROGRESS": "0"}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first, first_cpu, second_cpu, first_line, lines, training = None, None, None, "", [], None
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip())
        if first is None and line.strip().startswith("step 1/"):  # the Trainer's console line of update 1
            first, first_cpu, first_line = time.perf_counter() - start, cpu_seconds(proc.pid), line.strip()
            training = first_update_seconds(first_line)
        if second_cpu is None and line.strip().startswith("step 2/"):
            second_cpu = cpu_seconds(proc.pid)
        if time.perf_counter() - start > timeout:
            proc.kill()
            break
    code = proc.wait()
    return {
        "seconds_to_first_update": None if first is None else round(first, 1),
        "cpu_seconds_to_first_update": None if first_cpu is None else round(first_cpu, 1),
        # the start-up alone: to the first update less one update (the second's time; the first, which also warms
        # up, takes at least as long, so this is an upper bound)
        "cpu_seconds_before_first_update": None if None in (first_cpu, second_cpu)
        else round(max(0.0, 2 * first_cpu - second_cpu), 1),
        # the start-up exactly: to the first update less the Trainer's own seconds of training at that update
        "seconds_before_training": None if None in (first, training) else round(first - training, 1),
        "first_update_seconds": None if training is None else round(training, 1),
        "seconds_total": round(time.perf_counter() - start, 1), "exit_code": code,
        "first_update_line": first_line[:160], "last_lines": lines[-3:],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", default="", help="Comma-separated package names [default: all].")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--out", default="benchmarks/results/time_to_first_update.json")
    parser.add_argument("--extra", action="append", default=[], metavar="PACKAGE:ARGS",
                        help="Also time PACKAGE's first train command with ARGS added (repeatable).")
    args = parser.parse_args()
    wanted = {p for p in args.packages.split(",") if p}
    extras: dict[str, list[str]] = {}
    for item in args.extra:
        name, _, more = item.partition(":")
        if name not in packages() or not more.strip():
            parser.error(f"--extra {item!r}: expected PACKAGE:ARGS with a registered package")
        try:
            shlex.split(more)
        except ValueError as exc:
            parser.error(f"--extra {item!r}: {exc}")
        extras.setdefault(name, []).append(more)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, spec in packages().items():
            if wanted and name not in wanted:
                continue
            rows = [(spec.label(command), command, []) for command in spec.train_commands]
            rows += [(f"{spec.label(spec.train_commands[0])} {more}", spec.train_commands[0], shlex.split(more))
                     for more in extras.get(name, [])]  # fmt: skip
            for label, command, more in rows:
                run = root / label.replace(" ", "_")
                argv = [console_script(spec.name), *command.head(), *more, "--output-dir", str(run), "--max-steps",
                        "2", "--log-every", "1"]  # fmt: skip
                if command.trains_on is not None:  # the prior trains on the first stage trained just before
                    first_stage, option = command.trains_on
                    argv += [option, str(root / spec.label(spec.command(first_stage)))]
                results[label] = {"command": " ".join(argv[1:]).replace(str(root), "RUN_ROOT"),
                                  **timed_run(argv, root, args.timeout)}  # fmt: skip
                r = results[label]
                print(label, r["seconds_to_first_update"], r["seconds_before_training"],
                      r["cpu_seconds_to_first_update"], r["seconds_total"], flush=True)  # fmt: skip
    write_report(args.out, {"goal_seconds_to_first_update": 10, "results": results,
                            "machine": machine(load_average=[round(v, 1) for v in os.getloadavg()],
                                               omp_num_threads=os.environ.get("OMP_NUM_THREADS"))})  # fmt: skip

if __name__ == "__main__":
    main()
