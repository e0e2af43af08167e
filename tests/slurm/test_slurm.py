"""The project's sbatch scripts under a real one-node Slurm (see conftest.py): train, pre-empt, requeue, resume.

Each job trains `gencore.demo` (a tiny VAE) with two gloo processes on the CPU. The unbroken run of the single-node
script is the reference; the pre-emption cycles (single-node script, and the multi-node script with two launchers
on this one node) get Slurm's warning signal as `scancel --signal=USR1 --batch` gives it, must save a checkpoint,
exit 75, requeue themselves, resume with `--resume auto` and end with bitwise the same weights as the reference.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from gencore.checkpoint import list_checkpoints, verify_dir
from gencore.testing import assert_same_tensors
from gencore.train import PREEMPTED_EXIT_CODE

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "slurm").glob("*.sbatch"))
SINGLE = REPO / "slurm" / "train_single_node.sbatch"
MULTI = REPO / "slurm" / "train_multi_node.sbatch"
MAX_STEPS = 100
DEMO_ARGS = ["--set", "num_images=256", "--set", "train.log_every=5", "--set", "train.progress_bar=false",
             "--set", "train.report_to=none"]  # fmt: skip


def job_env(run_dir: Path, **extra: str) -> dict[str, str]:
    """The settings the scripts read: this interpreter (the repo's .venv), CPU processes, one thread each."""
    return {"PYTHON": sys.executable, "USE_CPU": "1", "OMP_NUM_THREADS": "1", "RUN_DIR": str(run_dir),
            "SEED": "3", "MAX_STEPS": str(MAX_STEPS), **extra}  # fmt: skip


def rank_records(run_dir: Path, attempt: int) -> list[dict]:
    """What the scripts' rank wrapper wrote for one attempt: rank, world size, pid, host and exit code."""
    files = sorted((run_dir / "slurm" / f"attempt_{attempt}").glob("rank_*.exit"))
    return [json.loads(f.read_text()) for f in files]


def wait_for_training(run_dir: Path, job_id: int, slurm, timeout: float = 90) -> None:
    """Until the first logged step (step 5) is in metrics.csv: the trainer is inside its loop."""
    deadline = time.monotonic() + timeout
    metrics = run_dir / "metrics.csv"
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 2):
        assert slurm.in_queue(job_id), f"job {job_id} ended before training started: {slurm.job(job_id)}"
        assert time.monotonic() < deadline, f"no training step logged after {timeout} s\n{slurm.logs()}"
        time.sleep(0.1)


def weights(run_dir: Path):
    return load_file(run_dir / "model" / "model.safetensors")


@pytest.fixture(scope="module")
def unbroken(slurm, tmp_path_factory):
    """The reference: the single-node script, 2 processes, MAX_STEPS updates in one go."""
    work = tmp_path_factory.mktemp("unbroken")
    run_dir = work / "run"
    started = time.monotonic()
    options = ["--chdir", str(work), "--output", str(work / "job-%j.out"), "--cpus-per-task", "2"]
    job_id = slurm.submit(SINGLE, ["gencore.demo", *DEMO_ARGS], job_env(run_dir, NUM_PROCESSES="2"), options)
    info = slurm.wait_done(job_id, timeout=120)
    seconds = time.monotonic() - started
    log = (work / f"job-{job_id}.out").read_text()
    return {"job": info, "run_dir": run_dir, "log": log, "seconds": seconds}


def test_every_sbatch_script_parses_and_asks_for_the_warning_signal_and_requeue():
    assert {p.name for p in SCRIPTS} >= {"train_single_node.sbatch", "train_multi_node.sbatch"}
    for script in SCRIPTS:
        proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{script.name}: {proc.stderr}"
        text = script.read_text()
        assert "#SBATCH --signal=B:USR1@" in text and "#SBATCH --requeue" in text, script.name
        assert 'scontrol requeue "$SLURM_JOB_ID"' in text and "--resume auto" in text, script.name
    if shutil.which("shellcheck"):  # an extra lint where it is installed (apt-get install shellcheck)
        proc = subprocess.run(["shellcheck", "-s", "bash", "--severity=warning", *map(str, SCRIPTS)],
                              capture_output=True, text=True)  # fmt: skip
        assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("args, message", [([], "usage: sbatch"), (["gencore.demo", "--output-dir", "x"], "RUN_DIR"),
                                           (["gencore.demo", "--resume=auto"], "RUN_DIR")])  # fmt: skip
def test_single_node_script_refuses_bad_arguments_before_starting_anything(tmp_path, args, message):
    proc = subprocess.run(["bash", str(SINGLE), *args], capture_output=True, text=True, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "RUN_DIR": str(tmp_path / "run")})  # fmt: skip
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_single_node_job_trains_with_two_processes_and_writes_the_model(unbroken):
    job, run_dir, log = unbroken["job"], unbroken["run_dir"], unbroken["log"]
    assert job["JobState"] == "COMPLETED" and job["ExitCode"] == "0:0" and job["Restarts"] == "0", (job, log)
    records = rank_records(run_dir, 0)
    assert sorted(r["rank"] for r in records) == [0, 1], log
    assert all(r["world_size"] == 2 and r["exit_code"] == 0 for r in records), records
    assert f"done (max_steps) at step {MAX_STEPS}" in log and "rank exit codes: 0 0" in log, log
    assert [p.name for p in list_checkpoints(run_dir / "checkpoints")][-1] == f"step_{MAX_STEPS:06d}"
    verify_dir(run_dir / "checkpoints" / f"step_{MAX_STEPS:06d}")
    verify_dir(run_dir / "model")
    assert (run_dir / "metrics.csv").is_file() and (run_dir / "model" / "config.json").is_file()
    config = json.loads((run_dir / "config.json").read_text())  # settings and training options reached the trainer
    train = config["train"]
    assert (train["seed"], train["max_steps"], train["output_dir"]) == (3, MAX_STEPS, str(run_dir)), train
    assert config["num_images"] == 256 and train["log_every"] == 5, config
    assert unbroken["seconds"] < 120


def preemption_cycle(slurm, work: Path, script: Path, env: dict[str, str], options: list[str]) -> tuple[Path, str]:
    """Submit, send the warning once training runs, let the job requeue and resume; check each stage."""
    run_dir = work / "run"
    job_id = slurm.submit(script, ["gencore.demo", *DEMO_ARGS], job_env(run_dir, **env),
                          ["--chdir", str(work), "--output", str(work / "job-%j.out"), *options])  # fmt: skip
    wait_for_training(run_dir, job_id, slurm)
    slurm.cmd("scancel", "--signal=USR1", "--batch", str(job_id))
    job = slurm.wait_done(job_id, timeout=150, skip_requeue_delay=True)
    log = (work / f"job-{job_id}.out").read_text()
    assert job["JobState"] == "COMPLETED" and job["ExitCode"] == "0:0", (job, log)
    assert job["Restarts"] == "1", (job, log)

    # attempt 0: the warning reached the trainer, which saved a checkpoint mid-run and stopped with 75
    assert "warning signal: asking the training processes" in log and "stopped by signal 10" in log, log
    first = rank_records(run_dir, 0)
    assert first and all(r["exit_code"] == PREEMPTED_EXIT_CODE and r["world_size"] == 2 for r in first), first
    assert f"requeueing job {job_id}" in log, log
    steps = [int(p.name.split("_")[1]) for p in list_checkpoints(run_dir / "checkpoints")]
    assert steps[-1] == MAX_STEPS and 5 <= steps[0] < MAX_STEPS, steps
    verify_dir(run_dir / "checkpoints" / f"step_{steps[0]:06d}")

    # attempt 1: the same job id resumed from that checkpoint and finished
    assert f"resumed from {run_dir / 'checkpoints' / f'step_{steps[0]:06d}'} at step {steps[0]}" in log, log
    second = rank_records(run_dir, 1)
    assert sorted(r["rank"] for r in second) == [0, 1] and all(r["exit_code"] == 0 for r in second), second
    assert f"done (max_steps) at step {MAX_STEPS}" in log, log
    return run_dir, log


@pytest.mark.slow
def test_single_node_job_saves_on_the_warning_requeues_and_resumes_to_the_same_weights(slurm, unbroken, tmp_path):
    run_dir, _ = preemption_cycle(slurm, tmp_path, SINGLE, {"NUM_PROCESSES": "2"}, ["--cpus-per-task", "2"])
    assert_same_tensors(weights(run_dir), weights(unbroken["run_dir"]))


@pytest.mark.slow
def test_multi_node_script_two_launchers_preempt_requeue_and_resume_to_the_same_weights(slurm, unbroken, tmp_path):
    # Two "machines" on this one node: one launcher per task, machine rank from SLURM_PROCID, static rendezvous
    # at the first host of the node list (c10d, the default for real nodes, clashes with two launchers on one host).
    env = {"PROCS_PER_MACHINE": "1", "RDZV_BACKEND": "static"}
    options = ["--nodes", "1", "--ntasks", "2", "--ntasks-per-node", "2"]
    run_dir, log = preemption_cycle(slurm, tmp_path, MULTI, env, options)
    assert "2 launcher(s) x 1 process(es), rendezvous static at localhost:" in log, log
    records = rank_records(run_dir, 1)
    assert {r["local_rank"] for r in records} == {0}, records  # each rank is the only one of its launcher
    assert_same_tensors(weights(run_dir), weights(unbroken["run_dir"]))
