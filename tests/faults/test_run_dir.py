"""The run directory and the user's folders: one training per directory (a lock), no fresh start over a trained
model or over files that are not a run's, a damaged metrics.csv never blocks a resume, and what is written
follows the umask. Every package trains through the same Trainer, so each case runs for every package's job."""

from __future__ import annotations

import os
import subprocess
import sys

import fault_jobs as jobs
import pytest

from gencore.train import PREEMPTED_EXIT_CODE

JOBS = jobs.jobs()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(JOBS))
def test_a_second_training_in_the_same_directory_is_refused(tmp_path, name):
    """Two trainings in one --output-dir used to interleave checkpoints and delete each other's files: the second
    now stops at once with one line naming the first one's PID, and the first carries on untouched."""
    trial = jobs.concurrent_trial(JOBS[name], tmp_path / "run")
    assert trial.second_exit_code == 2 and trial.second_error.startswith("error:"), trial
    assert trial.names_holder and trial.first_undisturbed, trial
    assert trial.first_exit_code == PREEMPTED_EXIT_CODE and trial.intact, trial
    assert not (tmp_path / "run" / ".lock").exists(), "the lock file outlived its run"
    assert trial.resumed, trial  # the refused run, once the first one is over, continues that run


def test_a_lock_left_by_a_killed_process_blocks_nobody(tmp_path):
    """The lock dies with its process (kill -9 included): a stale .lock file holding a dead PID is no obstacle."""
    from gencore.train.rundir import lock_holder, run_lock

    run_dir = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys,time; from gencore.train.rundir import run_lock\n"
         "with run_lock(sys.argv[1]):\n print('held', flush=True); time.sleep(60)", str(run_dir)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "held"
        assert lock_holder(run_dir) == child.pid
        from gencore.errors import RunLockedError

        with pytest.raises(RunLockedError, match=f"process {child.pid}"), run_lock(run_dir):
            pass
    finally:
        child.kill()
        child.wait()
    assert (run_dir / ".lock").exists()  # left behind by SIGKILL ...
    assert lock_holder(run_dir) is None  # ... and held by nobody
    with run_lock(run_dir):
        assert lock_holder(run_dir) == os.getpid()
    assert not (run_dir / ".lock").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(JOBS))
def test_fresh_start_never_replaces_a_model_or_the_users_files(tmp_path, unbroken_run, name):
    """A fresh run (no --resume) into a directory that holds an exported model (what clean-run keeps) or a
    config.json that is not a run's is refused untouched; other files of the user stay next to a new run."""
    import shutil

    # a finished run whose checkpoints were removed (clean-run): model/ must survive a fresh `train`
    kept = tmp_path / "kept"
    shutil.copytree(unbroken_run(name), kept)
    shutil.rmtree(kept / "checkpoints")
    before = {p: p.read_bytes() for p in (kept / "model").rglob("*") if p.is_file()}
    # with --resume auto (ganwriting: start epoch auto) and no checkpoint left, this is a fresh start
    done = jobs.run(JOBS[name], kept)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "already holds a trained model" in done.stderr.strip().splitlines()[-1]
    assert {p: p.read_bytes() for p in (kept / "model").rglob("*") if p.is_file()} == before

    # the user's own folder: a config.json of theirs is never rewritten, their notes stay beside a new run
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text('{"my": "settings"}\n')
    (mine / "NOTES.txt").write_text("keep me\n")
    done = jobs.run(JOBS[name], mine)
    assert done.returncode == 2 and "not a training run's" in done.stderr.strip().splitlines()[-1], done.stderr[-800:]
    assert (mine / "config.json").read_text() == '{"my": "settings"}\n'
    (mine / "config.json").unlink()
    done = jobs.run(JOBS[name], mine)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (mine / "NOTES.txt").read_text() == "keep me\n"


@pytest.mark.slow
@pytest.mark.parametrize("damage", [b"\x00\x00\x00\x00", b"1,2,3,4,5,6,7,8,9,10,11,12,13,oops\n", b"step,\n12"])
def test_a_damaged_metrics_csv_never_blocks_a_resume(tmp_path, references, damage):
    """What a crash leaves at the end of the append-only log (NUL bytes, a junk row, half a row) used to stop
    --resume auto with a traceback: the readable rows are kept, the original is set aside, the run ends exactly."""
    name = "m1-hyperspectral"
    run_dir = tmp_path / "run"
    cut = jobs.run(JOBS[name], run_dir, extra=("--max-steps", "6"))
    assert cut.returncode == 0, cut.stderr[-2000:]
    with open(run_dir / "metrics.csv", "ab") as fh:
        fh.write(damage)
    done = jobs.run(JOBS[name], run_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "unreadable line" in done.stdout + done.stderr
    assert (run_dir / "metrics.csv.damaged").read_bytes().endswith(damage)
    text = (run_dir / "metrics.csv").read_text()
    assert "\x00" not in text and "oops" not in text
    assert jobs.state_digest(run_dir) == references(name)


@pytest.mark.slow
def test_outputs_follow_the_umask(tmp_path):
    """Under umask 022 the model files used to be 0600 and their folders 0700 (temporary-file modes), so a
    cluster group could not read a model: every file of a run is now group- and world-readable."""
    import stat

    run_dir = tmp_path / "run"
    cmd, env = jobs.command(JOBS["gencore"], run_dir)
    done = subprocess.run(["bash", "-c", 'umask 022 && exec "$@"', "_", *cmd], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    modes = {p.relative_to(run_dir).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in run_dir.rglob("*")}
    wrong = {k: oct(m) for k, m in modes.items() if m != (0o755 if (run_dir / k).is_dir() else 0o644)}
    assert not wrong, wrong
