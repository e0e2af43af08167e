"""benchmarks/profile_update.py: one update of a package's default setup, timed and profiled, per variant."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def _profile(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "profile_update.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)


def test_the_demo_is_timed_and_profiled_per_variant(tmp_path):
    out = tmp_path / "profile.json"
    proc = _profile("--packages", "gencore", "--variants", "loop,foreach", "--warmup", "1", "--timed", "2",
                    "--profiled", "1", "--repeats", "1", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = json.loads(out.read_text())["results"]["gencore"]
    assert set(rows) == {"loop", "foreach"}
    for row in rows.values():
        assert row["ms_per_update"] > 0 and len(row["ms_per_update_all"]) == 2
        assert row["top_ops"] and all(0 < op["share"] <= 1 for op in row["top_ops"])
        assert row["optimizer_ms_per_update"] > 0
    # torch's for-loop Adam reads each parameter's step counter with .item(): syncs the profile must see
    assert rows["loop"]["host_syncs_per_update"] >= 1
    # foreach Adam gives the same values on CPU, so the two runs log the same losses
    assert rows["loop"]["mean_values_timed"] == rows["foreach"]["mean_values_timed"]


def test_an_unknown_variant_is_refused_in_one_line():
    proc = _profile("--variants", "default,turbo")
    assert proc.returncode != 0 and "unknown variants ['turbo']" in proc.stderr


def test_benchmarks_build_what_the_command_line_trains_here(monkeypatch):
    """benchmarks/benchmark_report.default_preset: ganwriting-music's default on the CPU is its cpu preset (its
    --preset auto), on a GPU the config's defaults; a benchmark's --preset names another for the commands that have
    it, and leaves the others at their defaults."""
    import torch

    from gencore import cli
    from gencore.registry import packages

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from benchmark_report import default_preset

    gan, demo = packages()["ganwriting-music"].command(), packages()["gencore"].command()
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    monkeypatch.setattr(cli, "_auto_device", lambda: torch.device("cpu"))
    assert default_preset(gan) == ("cpu", list(gan.preset("cpu")))
    assert default_preset(gan, "original") == ("original", [])
    assert default_preset(demo) == (None, []) and default_preset(demo, "original") == (None, [])
    monkeypatch.setattr(cli, "_auto_device", lambda: torch.device("cuda"))
    assert default_preset(gan) == (None, [])
