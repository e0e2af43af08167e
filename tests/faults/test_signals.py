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



# (package, K-th checkpoint write that the two signals hit): the second, past the first checkpoint in every job
SAVE = [(name, 2) for name in JOBS]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "k"), SAVE, ids=[n for n, _ in SAVE])
def test_second_sigterm_while_saving_does_not_cut_the_checkpoint(tmp_path, references, name, k):
    """Two SIGTERMs land while a checkpoint is being written (Slurm's scancel, then an impatient second one): the
    write completes, the process exits for requeue, and the resumed run ends bit-for-bit as an unbroken one."""
    trial = jobs.fault_trial(JOBS[name], tmp_path / "run", f"signal:save:SIGTERM:2:{k}", PREEMPTED_EXIT_CODE,
                             references(name))  # fmt: skip
    assert trial.ok, trial


@pytest.mark.slow
@pytest.mark.parametrize("name", list(JOBS))
def test_sigterm_during_the_final_evaluation_still_finishes_the_run(tmp_path, references, name):
    """SIGTERM (twice) inside the final evaluation: the evaluation, the final checkpoint and the exported model are
    all written (it used to die with 143 and neither), and the run ends where an unbroken one ends."""
    run_dir = tmp_path / "run"
    trial = jobs.fault_trial(JOBS[name], run_dir, "signal:final-eval:SIGTERM:2:1", 0, references(name))
    assert trial.ok and trial.newest_step == JOBS[name].steps, trial
    assert list((run_dir / "model").rglob("model.safetensors")), "no model/ exported"


# checkpoints only at the end (so a saved state proves the interrupt saved it); ganwriting counts in epochs
RARE = {"ganwriting-music": ("--set", "train.checkpoint_every_epochs=1000")}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(JOBS))
def test_ctrl_c_saves_then_exits_130_and_resumes_exactly(tmp_path, references, name):
    """Ctrl-C (SIGINT) mid-step used to lose every update since the last checkpoint: now the step finishes, a
    checkpoint is written, the exit code is 130, and ``--resume auto`` carries on to the unbroken run's end."""
    from gencore.train import INTERRUPTED_EXIT_CODE

    rare = RARE.get(name, ("--set", "train.checkpoint_every=1000"))
    trial = jobs.fault_trial(JOBS[name], tmp_path / "run", "signal:update:SIGINT:1:3", INTERRUPTED_EXIT_CODE,
                             references(name), extra=rare)  # fmt: skip
    assert trial.ok, trial
    assert trial.newest_step is not None and 1 <= trial.newest_step < JOBS[name].steps, trial
