"""Whole-process wall time of a short DCGAN run: dcgan-tutorial against pytorch/examples' ``dcgan/main.py``, the same
number of updates (issue 23's goal: ours at most 1.5× the reference).

The reference is not part of this repository. Get it from a checkout of pytorch/examples (e.g. ``git clone
https://github.com/pytorch/examples``) and pass the path of its ``dcgan/main.py``:

    python benchmarks/short_run.py --reference PATH/examples/dcgan/main.py [--repeats 3] [--threads 1]

Ours: ``dcgan-tutorial train --data photos --image-size 64 --channels 3 --batch-size 64 --max-steps 32 --set
model.ngf=64 --set model.ndf=64`` in a fresh output folder. Reference: ``main.py --dataset fake --niter 2 --batchSize
64 --imageSize 64``: torchvision's FakeData holds 1,000 images by default, so an epoch is ceil(1000 / 64) = 16
updates and two epochs are 32 (checked here from the reference's own lines). Both are whole processes (start to
exit, interpreter start-up and imports included) with the same thread settings (``--threads`` sets
OMP_NUM_THREADS/MKL_NUM_THREADS for both); ours runs twice per repeat: with an empty ``$GENCORE_CACHE`` (cold: the
evaluation feature network, when one is needed, is trained) and then with the cache that run left (warm). Repeats
alternate the three runs; the figures are medians. CPU seconds (the process and the children it waited for) are
reported beside wall seconds, since wall time on a shared machine depends on the neighbours.

Ours's phases come from its console lines, stamped as they arrive, and the seconds its closing ``evaluation:`` line
names: start-up (process start to the training loop, less the evaluation's set-up), the evaluation's set-up (the
feature network and the real images' figures; none when the run does not evaluate), the updates (the training loop
less its evaluations; the final checkpoint and plot included), the evaluations, and the end (export, exit).
Writes ``benchmarks/results/short_run.json`` and prints it.
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

from benchmark_report import console_script, machine, write_report  # siblings: this folder is on sys.path

OURS = ["train", "--data", "photos", "--image-size", "64", "--channels", "3", "--batch-size", "64",
        "--max-steps", "32", "--set", "model.ngf=64", "--set", "model.ndf=64"]  # fmt: skip
REFERENCE = ["--dataset", "fake", "--niter", "2", "--batchSize", "64", "--imageSize", "64"]
UPDATES = 32

# dcgan-tutorial's line once its feature network is ready ("... feature network ... in 12.3 s"), and its closing
# line ("evaluation: 27.5 s of 391.0 s (7%): feature network and real images 21.5 s, 6 evaluations 6.0 s; training
# loop 369.5 s", or "evaluation: none during training (...); training loop 45.2 s")
FEATURE_LINE = re.compile(r"feature network.* in ([0-9.]+) s")
SETUP = re.compile(r"real images ([0-9.]+) s, (\d+) evaluations ([0-9.]+) s")
LOOP = re.compile(r"^evaluation: .*training loop ([0-9.]+) s")
# the reference's per-update line: [epoch/niter][i/len(dataloader)] Loss_D ...
REFERENCE_LINE = re.compile(r"^\[(\d+)/(\d+)\]\[(\d+)/(\d+)\] Loss_D")


def timed(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> dict:
    """Run ``argv`` as a whole process; its wall and CPU seconds, exit code and each output line with the seconds
    since the start at which it arrived."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[tuple[float, str]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append((time.perf_counter() - start, line.rstrip()))
        if time.perf_counter() - start > timeout:
            proc.kill()
            break
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "exit_code": proc.returncode, "lines": lines}


def our_phases(lines: list[tuple[float, str]], wall: float) -> dict[str, float | None]:
    """Phases of a dcgan-tutorial run from its stamped console lines: start-up (process start to the Trainer's
    loop, less the evaluation's set-up), the evaluation's set-up (of which the feature network), the training loop
    less the evaluations in it (updates, the final checkpoint and plot), the evaluations, and the end (export,
    exit). None where a phase did not happen or a line is missing."""
    feature = next((float(m.group(1)) for _, line in lines if (m := FEATURE_LINE.search(line))), None)
    closing = next(((t, line) for t, line in lines if LOOP.search(line)), None)
    if closing is None:
        return {"startup_s": None, "evaluation_setup_s": None, "feature_network_s": feature, "updates_s": None,
                "evaluations_s": None, "end_s": None}  # fmt: skip
    at, line = closing
    loop = float(LOOP.search(line).group(1))
    m = SETUP.search(line)
    setup, evals = (float(m.group(1)), float(m.group(3))) if m else (0.0, 0.0)
    phases = {
        "startup_s": at - loop - setup, "evaluation_setup_s": setup if m else None, "feature_network_s": feature,
        "updates_s": loop - evals, "evaluations_s": evals if m else None, "end_s": wall - at,
    }  # fmt: skip
    return {k: None if v is None else round(v, 2) for k, v in phases.items()}


def reference_updates(lines: list[tuple[float, str]]) -> int:
    """How many updates the reference printed (one line per update)."""
    return sum(1 for _, line in lines if REFERENCE_LINE.match(line))


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, type=Path, help="pytorch/examples' dcgan/main.py.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="OMP/MKL threads of both processes.")
    parser.add_argument("--timeout", type=float, default=1800, help="Seconds before a run is killed.")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/short_run.json"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="A config override for ours, e.g. eval.during_training=true (repeatable).")
    args = parser.parse_args()
    args.extra = [item for pair in args.overrides for item in ("--set", pair)]
    if not args.reference.is_file():
        raise SystemExit(f"--reference {args.reference}: no such file (pytorch/examples' dcgan/main.py)")
    threads = str(args.threads)
    base_env = {**os.environ, "PYTHONUNBUFFERED": "1", "GENCORE_PROGRESS": "0", "OMP_NUM_THREADS": threads,
                "MKL_NUM_THREADS": threads}  # fmt: skip
    runs: dict[str, list[dict]] = {"ours_cold": [], "ours_warm": [], "reference": []}
    with tempfile.TemporaryDirectory(prefix="short_run_") as tmp:
        root = Path(tmp)
        for r in range(args.repeats):
            cache = root / f"cache{r}"  # empty: the cold run fills it, the warm run reads it
            for kind in ("ours_cold", "ours_warm", "reference"):
                work = root / f"{kind}{r}"
                work.mkdir()
                if kind == "reference":
                    argv = [sys.executable, str(args.reference.resolve()), *REFERENCE, "--outf", str(work / "out")]
                    env = base_env
                else:
                    argv = [console_script("dcgan-tutorial"), *OURS, *args.extra, "--output-dir", str(work / "run")]
                    env = {**base_env, "GENCORE_CACHE": str(cache)}
                got = timed(argv, work, env, args.timeout)
                if got["exit_code"] != 0:
                    tail = "\n".join(line for _, line in got["lines"][-5:])
                    raise SystemExit(f"{kind} exited with {got['exit_code']}:\n{tail}")
                row = {"wall_s": round(got["wall_s"], 2), "cpu_s": round(got["cpu_s"], 2)}
                if kind == "reference":
                    row["updates"] = reference_updates(got["lines"])
                else:
                    row["phases"] = our_phases(got["lines"], got["wall_s"])
                    row["closing_line"] = next((line for _, line in got["lines"] if LOOP.search(line)), "")
                runs[kind].append(row)
                print(f"repeat {r + 1}/{args.repeats} {kind}: {row}", file=sys.stderr, flush=True)
                shutil.rmtree(work, ignore_errors=True)
            if r + 1 < args.repeats:
                summarize(runs, args)  # what was measured so far, in case the benchmark is stopped
    summarize(runs, args)


def summarize(runs: dict[str, list[dict]], args: argparse.Namespace) -> dict:
    """Medians and ratios of the runs so far; written to ``args.out`` (after every repeat, so that a long
    benchmark stopped early keeps what it measured) and returned."""
    ref_updates = {row["updates"] for row in runs["reference"]}
    if ref_updates - {UPDATES}:
        raise SystemExit(f"the reference made {sorted(ref_updates)} updates, not {UPDATES}: its default changed?")
    medians = {kind: {"wall_s": median([r["wall_s"] for r in rows]), "cpu_s": median([r["cpu_s"] for r in rows])}
               for kind, rows in runs.items()}  # fmt: skip
    for kind in ("ours_cold", "ours_warm"):
        keys = runs[kind][0]["phases"] if runs[kind] else {}
        medians[kind]["phases"] = {k: median([r["phases"][k] for r in runs[kind] if r["phases"][k] is not None])
                                   for k in keys}  # fmt: skip
    ref = medians["reference"]

    def ratio(kind: str, key: str) -> float | None:
        return round(medians[kind][key] / ref[key], 2) if medians[kind][key] and ref[key] else None

    result = {
        "ours": " ".join(["dcgan-tutorial", *OURS, *args.extra]),
        "reference": " ".join(["python", "main.py", *REFERENCE]),
        "updates": UPDATES, "threads": args.threads, "repeats": len(runs["reference"]),
        "goal": "ours/reference wall <= 1.5", "median": medians,
        "ratio_wall": {k: ratio(k, "wall_s") for k in ("ours_cold", "ours_warm")},
        "ratio_cpu": {k: ratio(k, "cpu_s") for k in ("ours_cold", "ours_warm")},
        "runs": runs,
        "machine": machine(load_average=os.getloadavg()),
    }  # fmt: skip
    write_report(args.out, result)
    return result


if __name__ == "__main__":
    main()
