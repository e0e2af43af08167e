"""CPU seconds per update (user and system apart) and peak memory of one training command under several
environments: what glibc's allocator settings change for a package whose updates allocate hundreds of MB at a time.

    OMP_NUM_THREADS=1 python benchmarks/allocator_env.py --package ganwriting-music --steps 4 --env default= \\
      --env keep=GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295

Each ``--env NAME=VAR=VALUE[,VAR=VALUE...]`` (``NAME=`` for the inherited environment) runs the package's default
training command, default data and config, as a whole process with ``--max-steps`` and ``--log-every 1``, one after
the other. From /proc (Linux) the user and system CPU seconds between consecutive update lines are recorded (the
first update, which also warms up, is not among them), and the process's peak resident memory (VmHWM) at its last
update line. Writes ``benchmarks/results/allocator_env.json``
and prints it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark_report import machine, write_report  # the sibling module (this script's folder is on sys.path)

from gencore.registry import packages


def _cpu(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _peak_kib(pid: int) -> int | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def run(argv: list[str], env: dict[str, str]) -> dict:
    """One run: per-update wall, user and system seconds, and the peak resident memory in GiB."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    marks, peak, tail = [], None, []
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = [*tail[-4:], line.rstrip()]
        found = re.match(r"step (\d+)/", line)
        if found and int(found.group(1)) > len(marks):  # update N's line (not the evaluation's, which repeats N)
            marks.append((time.perf_counter(), *_cpu(proc.pid)))
            peak = _peak_kib(proc.pid) or peak
    code = proc.wait()
    updates = [{"wall_s": round(b[0] - a[0], 1), "user_s": round(b[1] - a[1], 1), "sys_s": round(b[2] - a[2], 1)}
               for a, b in zip(marks, marks[1:])]  # fmt: skip
    return {"exit_code": code, "updates_after_the_first": updates,
            "median_wall_s": statistics.median(u["wall_s"] for u in updates) if updates else None,
            "median_sys_s": statistics.median(u["sys_s"] for u in updates) if updates else None,
            "peak_resident_gib_at_last_update": None if peak is None else round(peak / 2**20, 2),
            "last_lines": tail}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default="ganwriting-music")
    parser.add_argument("--steps", type=int, default=4, help="Updates per run (the first one is not timed).")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VAR=VALUE,...",
                        help="A named environment to run under (repeatable); NAME= is the inherited one.")  # fmt: skip
    parser.add_argument("--out", default="benchmarks/results/allocator_env.json")
    args = parser.parse_args()
    spec = packages()[args.package]
    command = spec.train_commands[0]
    script = str(Path(sys.executable).parent / spec.name)
    script = script if Path(script).exists() else (shutil.which(spec.name) or spec.name)
    results = {}
    for item in args.env or ["default="]:
        name, _, assignments = item.partition("=")
        extra = dict(a.split("=", 1) for a in assignments.split(",") if a)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "GENCORE_PROGRESS": "0", **extra}
        with tempfile.TemporaryDirectory() as tmp:
            argv = [script, *command.head(), "--output-dir", str(Path(tmp) / "run"), "--max-steps", str(args.steps),
                    "--log-every", "1"]  # fmt: skip
            results[name] = {"env": extra, **run(argv, env)}
        print(name, results[name]["median_wall_s"], results[name]["median_sys_s"],
              results[name]["peak_resident_gib_at_last_update"], flush=True)  # fmt: skip
    write_report(args.out, {"package": args.package, "steps": args.steps, "results": results,
                            "machine": machine(omp_num_threads=os.environ.get("OMP_NUM_THREADS"))})  # fmt: skip


if __name__ == "__main__":
    main()
