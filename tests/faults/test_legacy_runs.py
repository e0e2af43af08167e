"""Runs saved by earlier layouts resume with today's code and end bit-for-bit where an unbroken run of today's
code with the same settings ends (fixtures in legacy_runs/, see its README): commit 99d0c99 (ganwriting's
EpochTrainer, m1's best model kept through an attribute of the Trainer) and commit a502ac7 (dcgan, hvae, vqgan: the
config keys before the shared vocabulary of options). A resumed run keeps its own settings where today's defaults
differ (dcgan and hvae train channels_last by default now; these runs did not), without a flag saying so, also for
keys added since (hvae's data.render_format: these runs rendered their data in one random stream)."""

from __future__ import annotations

import json
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
    job = jobs.jobs()[name]
    done = jobs.run(job, run_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed from" in done.stdout + done.stderr
    assert "channels_last" not in done.stdout + done.stderr  # no config change reported: the run kept its layout
    own = _added_values(name, _saved(run_dir))
    if _default_channels_last(name) == _saved(run_dir)["train"].get("channels_last", False) and not own:
        reference = references(name)
    else:  # an unbroken run of today's code with the run's own layout and the values of keys added since
        extra = ("--no-channels-last", *[arg for key, value in own for arg in ("--set", f"{key}={value}")])
        fresh = jobs.run(job, tmp_path / "reference", extra=extra)
        assert fresh.returncode == 0, fresh.stderr[-2000:]
        reference = jobs.state_digest(tmp_path / "reference")
    assert jobs.state_digest(run_dir) == reference


def _saved(run_dir: Path) -> dict:
    return json.loads((run_dir / "config.json").read_text())


def _config_class(name: str) -> type:
    from gencore.registry import packages

    return packages()[name].train_commands[0].config_class()


def _added_values(name: str, saved: dict) -> list[tuple[str, object]]:
    """(key, value) of the keys added after ``saved`` was written whose value for it is not today's default."""
    from gencore.config import default_value, fill_added_keys

    cls = _config_class(name)
    filled = fill_added_keys(cls, saved)
    out = []
    for added in getattr(cls, "added_keys", ()):
        node = filled
        for part in added.key.split("."):
            node = node[part]
        if node != default_value(cls, added.key):
            out.append((added.key, node))
    return out


def test_the_hvae_fixture_saved_before_the_render_format_reads_as_format_1():
    # the hvae fixture was saved before data.render_format existed: it must be read as the one-stream format
    assert _added_values("hvae-captcha", _saved(LEGACY / "hvae-captcha")) == [("data.render_format", 1)]


def _default_channels_last(name: str) -> bool:
    return bool(_config_class(name)().train.channels_last)
