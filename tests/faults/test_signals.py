"""Slurm pre-emption: SIGTERM (or the SIGUSR1 warning an sbatch script asks for) makes every package's training
write a checkpoint and exit within 30 s with the requeue code 75; the run then resumes with ``--resume auto``."""

from __future__ import annotations

import signal

import fault_jobs as jobs
import pytest

from gencore.train import PREEMPTED_EXIT_CODE

JOBS = jobs.jobs()
CASES = [(name, signal.SIGUSR1 if name == "hvae-captcha" else signal.SIGTERM) for name in JOBS]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "signum"), CASES, ids=[f"{n}-{s.name}" for n, s in CASES])
def test_preemption_signal_saves_and_exits_for_requeue(tmp_path, name, signum):
    trial = jobs.signal_trial(JOBS[name], tmp_path / "run", signum)
    assert trial.exit_code == PREEMPTED_EXIT_CODE, trial.output_tail
    assert trial.seconds_to_exit < 30, trial
    assert trial.intact and trial.checkpoint is not None, trial
    assert "resume with --resume auto" in trial.output_tail, trial.output_tail
    again = jobs.run(JOBS[name], tmp_path / "run")  # the normal (shorter) run: resumes and stops at once
    assert again.returncode == 0, again.stderr[-2000:]
