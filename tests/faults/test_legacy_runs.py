"""Runs saved by earlier layouts resume with today's code and end bit-for-bit where an unbroken run of today's
code ends (fixtures in legacy_runs/, see its README): commit 99d0c99 (ganwriting's EpochTrainer, m1's best model
kept through an attribute of the Trainer) and commit a502ac7 (dcgan, hvae, vqgan: the config keys before the
shared vocabulary of options)."""

from __future__ import annotations

import shutil
from pathlib import Path

import fault_jobs as jobs
import pytest

LEGACY = Path(__file__).with_name("legacy_runs")
NAMES = sorted(p.name for p in LEGACY.iterdir() if p.is_dir())


def test_fixtures_are_there():
    assert NAMES == ["dcgan-tutorial", "ganwriting-music", "hvae-captcha", "m1-hyperspectral", "vqgan-negatives"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_a_run_of_the_earlier_layout_resumes_bitwise(tmp_path, references, name):
    run_dir = Path(shutil.copytree(LEGACY / name, tmp_path / "run"))
    done = jobs.run(jobs.jobs()[name], run_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed from" in done.stdout + done.stderr
    assert jobs.state_digest(run_dir) == references(name)
