"""CPU seconds per update (user and system apart) and peak memory of one training command under several
environments: what glibc's allocator settings change for a package whose updates allocate hundreds of MB at a time.

    OMP_NUM_THREADS=1 python benchmarks/allocator_env.py --package ganwriting-music --args "--preset original" \\
      --steps 4 --env default= \\
      --env keep=GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295

Each ``--env NAME=VAR=VALUE[,VAR=VALUE...]`` (``NAME=`` for the inherited environment) runs the package's default
training command, default data and config (and ``--args``), as a whole process with ``--max-steps`` and
``--log-every 1``, one after the other. From /proc (Linux) the user and system CPU seconds between consecutive
update lines are recorded (the first update, which also warms up, is not among them), and the process's peak
resident memory (VmHWM) at its last update line. Writes ``benchmarks/results/allocator_env.json`` and prints it.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmark_report import console_script, machine, process_cpu, write_report  # siblings: on sys.path

from gencore.registry import packages


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
            marks.append((time.perf_counter(), *(process_cpu(proc.pid) or (0.0, 0.0))[:2]))
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
    parser.add_argument("--args", default="", metavar="ARGS",
                        help='More arguments for the training command, e.g. --args "--preset original".')
    parser.add_argument("--out", default="benchmarks/results/allocator_env.json")
    args = parser.parse_args()
    try:
        more = shlex.split(args.args)
    except ValueError as exc:
        parser.error(f"--args {args.args!r}: {exc}")
    if args.package not in packages():
        parser.error(f"unknown package {args.package!r}; registered: {', '.join(packages())}")
    spec = packages()[args.package]
    command = spec.train_commands[0]
    script = console_script(spec.name)
    environments = {}
    for item in args.env or ["default="]:
        name, _, assignments = item.partition("=")
        pairs = [a for a in assignments.split(",") if a]
        if not name or any("=" not in a for a in pairs):
            parser.error(f"--env {item!r}: expected NAME=VAR=VALUE[,VAR=VALUE...] or NAME=")
        environments[name] = dict(a.split("=", 1) for a in pairs)
    results = {}
    for name, extra in environments.items():
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "GENCORE_PROGRESS": "0", **extra}
        with tempfile.TemporaryDirectory() as tmp:
            argv = [script, *command.head(), *more, "--output-dir", str(Path(tmp) / "run"), "--max-steps",
                    str(args.steps), "--log-every", "1"]  # fmt: skip
            results[name] = {"env": extra, "command": shlex.join(argv[1:]).replace(tmp, "TMP"), **run(argv, env)}
        print(name, results[name]["median_wall_s"], results[name]["median_sys_s"],
              results[name]["peak_resident_gib_at_last_update"], flush=True)  # fmt: skip
    write_report(args.out, {"package": args.package, "args": more, "steps": args.steps, "results": results,
                            "machine": machine(omp_num_threads=os.environ.get("OMP_NUM_THREADS"))})  # fmt: skip


if __name__ == "__main__":
    main()
