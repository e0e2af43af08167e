"""kill -9 in the middle of training and of checkpoint writes, then ``--resume auto``: the run finishes and
ends bit-for-bit where an unbroken run ends. benchmarks/faults.py runs the same trials many more times."""

from __future__ import annotations

import fault_jobs as jobs
import pytest

JOBS = jobs.jobs()
# one package per fault, so that every package and every fault is covered once; the benchmark crosses them all
CHOSEN = {
    "gencore": "kill:prune:1",
    "dcgan-tutorial": "kill:manifest:3",
    "hvae-captcha": "kill:replace:3",
    "m1-hyperspectral": "kill:save:5",
    "vqgan-negatives": "kill:manifest:2",
    "ganwriting-music": "kill:replace:2",
}
# every registered package: one not chosen above is killed before the manifest of its second checkpoint
CASES = [(name, CHOSEN.get(name, "kill:manifest:2")) for name in JOBS]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "fault"), CASES, ids=[f"{n}-{f}" for n, f in CASES])
def test_kill_during_a_checkpoint_write_then_resume_is_exact(tmp_path, references, name, fault):
    trial = jobs.kill_trial(JOBS[name], tmp_path / "run", references(name), fault=fault)
    assert trial.killed, trial
    assert not trial.damaged_on_disk, trial  # checkpoints appear and disappear whole
    assert trial.resumed and not trial.corrupt_taken, trial
    assert trial.equal, trial


@pytest.mark.slow
def test_kill_at_a_random_moment_then_resume_is_exact(tmp_path, references):
    import random

    delay = random.Random(0).uniform(3.0, 5.0)  # after imports, while it trains and checkpoints every update
    trial = jobs.kill_trial(JOBS["dcgan-tutorial"], tmp_path / "run", references("dcgan-tutorial"), delay=delay)
    assert trial.resumed and not trial.corrupt_taken and trial.equal, trial


def test_the_fault_switch_really_kills(tmp_path):
    """The injected fault fires (otherwise the tests above would pass without testing anything)."""
    done = jobs.run(JOBS["gencore"], tmp_path / "run", fault="kill:manifest:1")
    assert done.returncode == -9
    from gencore.checkpoint import list_checkpoints

    assert not list_checkpoints(tmp_path / "run" / "checkpoints")
