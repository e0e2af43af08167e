"""Fault trials across every package: kill -9 (at random moments and inside checkpoint writes), SIGTERM, a full
disk while saving, a NaN loss, two trainings in one directory, a second SIGTERM while saving, SIGTERM during the
final evaluation, Ctrl-C. Each trial runs the package's real CLI in a subprocess (tests/faults/fault_jobs.py).

    python benchmarks/faults.py                      # 20 random kills + 24 targeted ones + the rest, ~10 min
    python benchmarks/faults.py --random-kills 6 --packages gencore,hvae-captcha
    python benchmarks/faults.py --trials reliability       # only issue 21's trials, ~10 min

Writes benchmarks/results/faults.json (every trial and the totals) and prints the totals. Goals (issue 9): all
killed runs resume, no corrupt checkpoint is taken as good, every resumed run ends bit-for-bit where an unbroken
run ends; SIGTERM exits with 75 within 30 s with an intact checkpoint. Issue 21: a second training in a running
one's directory is refused naming its PID and disturbs nothing; a second SIGTERM never cuts the checkpoint; a
SIGTERM during the final evaluation still ends the run (checkpoint and model written); Ctrl-C saves and exits 130.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "faults"))
import fault_jobs as jobs  # noqa: E402

TARGETED = ["kill:manifest:{k}", "kill:replace:{k}", "kill:prune:1", "kill:save:{k}"]


def _reference(job: jobs.Job, root: Path) -> tuple[dict[str, str], float]:
    start = time.perf_counter()
    done = jobs.run(job, root / f"{job.name}-reference")
    if done.returncode != 0:
        raise SystemExit(f"{job.name}: the unbroken run failed: {done.stderr.strip().splitlines()[-1:]}")
    return jobs.state_digest(root / f"{job.name}-reference"), time.perf_counter() - start


def kill_trials(selected: dict[str, jobs.Job], root: Path, n_random: int, rng: random.Random) -> list[dict]:
    """Random-moment kills spread round-robin over the packages, then every targeted fault in every package."""
    refs = {name: _reference(job, root) for name, job in selected.items()}
    trials = []
    names = list(selected)
    draws = 0
    for i in range(n_random):
        name = names[i % len(names)]
        digest, seconds = refs[name]
        while True:  # a kill drawn after the run has already ended is no trial: draw again, count the draws
            draws += 1
            delay = rng.uniform(0.1, 0.9) * seconds  # imports included: some kills land before the first save
            run_dir = root / f"random-{i}-{draws}"
            trial = jobs.kill_trial(selected[name], run_dir, digest, delay=delay)
            if trial.killed:
                break
            print(f"  ({name} had finished before {delay:.1f}s: drawn again)", flush=True)
        trials.append({"kind": "random", "draws_so_far": draws, **asdict(trial)})
        print(f"  random kill {i + 1}/{n_random}: {name} after {delay:.1f}s -> equal={trial.equal}", flush=True)
    for name, job in selected.items():
        for pattern in TARGETED:
            fault = pattern.format(k=rng.randint(2, 4))
            trial = jobs.kill_trial(job, root / f"{name}-{fault.replace(':', '_')}", refs[name][0], fault=fault)
            trials.append({"kind": "targeted", **asdict(trial)})
            print(f"  {name} {fault}: killed={trial.killed} equal={trial.equal}", flush=True)
    return trials


def signal_trials(selected: dict[str, jobs.Job], root: Path) -> list[dict]:
    """SIGTERM to every package's training once its first checkpoint exists."""
    out = []
    for name, job in selected.items():
        trial = jobs.signal_trial(job, root / f"{name}-sigterm", signal.SIGTERM)
        out.append({k: v for k, v in asdict(trial).items() if k != "output_tail"})
        print(f"  {name} SIGTERM: exit {trial.exit_code} after {trial.seconds_to_exit:.2f}s", flush=True)
    return out


def disk_and_nan_trials(selected: dict[str, jobs.Job], root: Path) -> list[dict]:
    """The 3rd safetensors write fails with ENOSPC; separately, the loss of update 5 is NaN (every job has saved
    by then: ganwriting-music saves once an epoch of 3 updates)."""
    out = []
    for name, job in selected.items():
        digest, _ = _reference(job, root / "again")
        for fault, code in (("enospc:3", 2), ("nan:5", 3)):
            run_dir = root / f"{name}-{fault.replace(':', '_')}"
            done = jobs.run(job, run_dir, fault=fault)
            last = (done.stderr.strip().splitlines() or [""])[-1]
            intact = not jobs.damaged_checkpoints(run_dir) and bool(list((run_dir / "checkpoints").glob("step_*")))
            again = jobs.run(job, run_dir)
            out.append({
                "job": name, "fault": fault, "exit_code": done.returncode, "expected_code": code,
                "one_line_error": last.startswith("error:") and "Traceback" not in done.stderr, "error": last,
                "previous_checkpoint_intact": intact, "resumed": again.returncode == 0,
                "equal_after_resume": again.returncode == 0 and jobs.state_digest(run_dir) == digest,
            })  # fmt: skip
            print(f"  {name} {fault}: exit {done.returncode}, {last[:90]}", flush=True)
    return out


# (fault, expected exit code, extra arguments): checkpoints every update except for the Ctrl-C trial, so that the
# checkpoint found afterwards is the one the interrupt wrote
SIGNAL_FAULTS = [
    ("signal:save:SIGTERM:2:3", 75, ()),
    ("signal:final-eval:SIGTERM:2:1", 0, ()),
    ("signal:update:SIGINT:1:3", 130, ("--set", "train.checkpoint_every=1000")),
]


def reliability_trials(selected: dict[str, jobs.Job], root: Path) -> tuple[list[dict], list[dict]]:
    """Two trainings in one directory, then the signal faults of :data:`SIGNAL_FAULTS`, for every package."""
    concurrent, faults = [], []
    for name, job in selected.items():
        trial = jobs.concurrent_trial(job, root / f"{name}-concurrent")
        concurrent.append(asdict(trial))
        print(f"  {name} second run: exit {trial.second_exit_code}, {trial.second_error[:90]}", flush=True)
        digest, _ = _reference(job, root / "reference")
        for fault, code, extra in SIGNAL_FAULTS:
            if job.name == "ganwriting-music" and extra:
                extra = ("--set", "train.checkpoint_every_epochs=1000")  # it counts checkpoints in epochs
            run_dir = root / f"{name}-{fault.replace(':', '_')}"
            trial = jobs.fault_trial(job, run_dir, fault, code, digest, extra=extra)
            faults.append({**asdict(trial), "ok": trial.ok})
            print(f"  {name} {fault}: exit {trial.exit_code} (expected {code}), equal={trial.equal}", flush=True)
    return concurrent, faults


def summarise(kills: list[dict], signals: list[dict], others: list[dict], concurrent: list[dict],
              faults: list[dict]) -> dict:  # fmt: skip
    """The totals the issue asks for."""
    killed = [t for t in kills if t["killed"]]
    return {
        "kill_trials": len(kills),
        "kill_trials_random": sum(t["kind"] == "random" for t in kills),
        "random_draws": max((t.get("draws_so_far", 0) for t in kills), default=0),
        "killed_before_finishing": len(killed),
        "resumed": sum(t["resumed"] for t in killed),
        "corrupt_checkpoints_taken_as_good": sum(t["corrupt_taken"] for t in kills),
        "damaged_checkpoints_left_on_disk": sum(len(t["damaged_on_disk"]) for t in kills),
        "resumed_equal_to_unbroken_run": sum(t["equal"] for t in killed),
        "sigterm_trials": len(signals),
        "sigterm_exit_75": sum(t["exit_code"] == 75 for t in signals),
        "sigterm_max_seconds_to_exit": max((t["seconds_to_exit"] for t in signals), default=None),
        "sigterm_checkpoint_intact": sum(t["intact"] for t in signals),
        "disk_and_nan_trials": len(others),
        "disk_and_nan_as_expected": sum(
            t["exit_code"] == t["expected_code"]
            and t["one_line_error"]
            and t["previous_checkpoint_intact"]
            and t["equal_after_resume"]
            for t in others
        ),  # fmt: skip
        "concurrent_trials": len(concurrent),
        "concurrent_second_refused_naming_pid": sum(
            t["second_exit_code"] == 2 and t["names_holder"] for t in concurrent
        ),
        "concurrent_first_undisturbed_and_intact": sum(
            t["first_undisturbed"] and t["intact"] and t["first_exit_code"] == 75 for t in concurrent
        ),
        **{
            f"{kind}_as_expected": f"{sum(t['ok'] for t in faults if t['fault'] == fault)}"
            f"/{sum(t['fault'] == fault for t in faults)}"
            for kind, fault in (("double_sigterm_while_saving", SIGNAL_FAULTS[0][0]),
                                ("sigterm_in_final_evaluation", SIGNAL_FAULTS[1][0]),
                                ("sigint", SIGNAL_FAULTS[2][0]))
        },  # fmt: skip
    }


def main() -> None:
    """Run the trials and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--random-kills", type=int, default=20)
    parser.add_argument("--packages", default=",".join(jobs.jobs()), help="comma-separated job names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", default="kill,signal,other,reliability",
                        help="comma-separated kinds: kill (kill -9), signal (SIGTERM), other (disk full, NaN), "
                             "reliability (two runs in one directory, signals while saving/evaluating, Ctrl-C)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "faults.json"))
    args = parser.parse_args()
    every = jobs.jobs()
    unknown = [n for n in args.packages.split(",") if n not in every]
    if unknown:
        raise SystemExit(f"unknown package(s) {unknown}; known: {sorted(every)}")
    selected = {n: every[n] for n in args.packages.split(",")}
    kinds = set(args.trials.split(","))
    if kinds - {"kill", "signal", "other", "reliability"}:
        raise SystemExit(f"unknown trial kind(s) {sorted(kinds - {'kill', 'signal', 'other', 'reliability'})}")
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="gencore-faults-"))
    started = time.perf_counter()
    kills, signals, others, concurrent, faults = [], [], [], [], []
    try:
        if "kill" in kinds:
            print("kill -9 trials", flush=True)
            kills = kill_trials(selected, root / "kill", args.random_kills, rng)
        if "signal" in kinds:
            print("SIGTERM trials", flush=True)
            signals = signal_trials(selected, root / "signal")
        if "other" in kinds:
            print("disk-full and NaN trials", flush=True)
            others = disk_and_nan_trials(selected, root / "other")
        if "reliability" in kinds:
            print("two runs in one directory; a second SIGTERM while saving; SIGTERM in the final evaluation; Ctrl-C")
            concurrent, faults = reliability_trials(selected, root / "reliability")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "command": " ".join(["python", *sys.argv]),
        "seconds": round(time.perf_counter() - started, 1),
        "summary": summarise(kills, signals, others, concurrent, faults),
        "kill_trials": kills, "signal_trials": signals, "disk_and_nan_trials": others,
        "concurrent_trials": concurrent, "signal_fault_trials": faults,
    }  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"], indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
