"""Same seed, same machine: the same weights, the same metrics and the same sample images, for every package;
a different seed gives different ones (so these comparisons can fail).

Of the two runs compared, the first starts in a fresh interpreter and the second is forked from the fault tests'
pre-imported one (tests/faults/forkserver.py): equal results also show that a forked job computes what a fresh
process computes, which every other fault test relies on."""

from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path

import fault_jobs as jobs
import pytest
from click.testing import CliRunner

JOBS = jobs.jobs()
TIMING = {"steps_per_s", "elapsed_s"}  # wall-clock columns: the only ones allowed to differ
SAMPLE = {  # the package's sampling command on a finished run (vqgan-negatives samples need a prior: not here)
    "dcgan-tutorial": ["sample", "RUN", "-n", "8"],
    "hvae-captcha": ["sample", "RUN", "-n", "8"],
    "m1-hyperspectral": ["sample", "RUN", "-n", "8"],
    "ganwriting-music": ["generate", "RUN", "-n", "8"],
}


def _metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(fh)]


def _images(run_dir: Path) -> dict[str, bytes]:
    return {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in sorted((run_dir / "samples").rglob("*.png"))}


def _training(run_dir: Path) -> dict[str, dict]:
    """The training record of every exported model folder (its command line names the run directory: left out)."""
    records = {}
    for info in sorted((run_dir / "model").rglob("model_info.json")):
        record = json.loads(info.read_text())["training"]
        assert str(run_dir) in record.pop("command")
        assert "## Training" in info.with_name("README.md").read_text()
        records[info.parent.relative_to(run_dir).as_posix()] = record
    return records


def _sample(name: str, run_dir: Path, out: Path, seed: int) -> bytes:
    module, function = JOBS[name].entry.split(":")
    cli = getattr(importlib.import_module(module), function)
    args = [a.replace("RUN", str(run_dir)) for a in SAMPLE[name]]
    result = CliRunner().invoke(cli, [*args, "--seed", str(seed), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(JOBS))
def test_same_seed_gives_the_same_run(tmp_path, name, fork_server):
    runs = [tmp_path / "a", tmp_path / "b"]
    forked = fork_server.forked if fork_server else 0
    sample_every = ["--set", "train.sample_every=2"] if JOBS[name].epochs is None else []  # else: per epoch
    for run_dir, starter in zip(runs, (jobs.FRESH, None)):
        done = jobs.run(JOBS[name], run_dir, extra=tuple(sample_every), starter=starter)
        assert done.returncode == 0, done.stderr[-2000:]
    assert fork_server is None or fork_server.forked == forked + 1, f"not forked: {fork_server.last_fallback}"
    a, b = runs
    assert jobs.state_digest(a) == jobs.state_digest(b)
    assert _metrics(a) == _metrics(b) and len(_metrics(a)) > 0
    assert _images(a) == _images(b) and len(_images(a)) > 0
    records = _training(a)  # each model folder says how it was trained, the same for the same run
    assert records and records == _training(b)
    for record in records.values():
        assert record["stopped_by"] in ("max_steps", "max_epochs", "early_stop") and record["updates"] > 0
        assert JOBS[name].epochs is not None or record["updates"] == JOBS[name].steps
    if name in SAMPLE:
        # the same run twice: the figures of some packages name their run, so a and b differ in the title only;
        # their weights are equal above
        first, again = _sample(name, a, tmp_path / "1.png", 0), _sample(name, a, tmp_path / "2.png", 0)
        assert first == again
        assert _sample(name, a, tmp_path / "3.png", 1) != first


@pytest.mark.slow
def test_another_seed_gives_another_run(tmp_path):
    digests = []
    for seed in (0, 1):
        done = jobs.run(JOBS["dcgan-tutorial"], tmp_path / str(seed), extra=("--seed", str(seed)))
        assert done.returncode == 0, done.stderr[-2000:]
        digests.append(jobs.state_digest(tmp_path / str(seed)))
    assert digests[0].keys() == digests[1].keys() and digests[0] != digests[1]


@pytest.mark.slow
def test_glibc_allocator_settings_do_not_change_the_run(tmp_path, references):
    """packages/ganwriting-music/README.md advises keeping freed memory in the process (GLIBC_TUNABLES, read when a
    process starts, so this run is a fresh interpreter) for 1.7x faster CPU updates: the run must end bit for bit
    where the default allocator's run ends."""
    name = "ganwriting-music"
    cmd, env = jobs.command(JOBS[name], tmp_path / "run")
    env["GLIBC_TUNABLES"] = "glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295"
    done = jobs.FRESH.run(cmd, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert jobs.state_digest(tmp_path / "run") == references(name)
