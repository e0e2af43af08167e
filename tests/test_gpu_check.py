"""benchmarks/gpu_check.py on CPU with the packages' tiny configurations: every package trains, evaluates and exports
with the precision, channels_last and torch.compile options on, and the script reports what it measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def registered_runs() -> set[str]:
    """The name of every training command of every registered package, as gpu_check.py reports it."""
    from gencore.registry import packages

    return {spec.label(command) for spec in packages().values() for command in spec.train_commands}


def test_every_package_trains_with_the_fast_options_and_the_report_says_so(tmp_path):
    out = tmp_path / "gpu_check.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--tiny", "--variants", "no,bf16+cl+aot_eager",
           "--steps", "3", "--warmup", "1", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["results"]) == registered_runs() >= {"gencore", "vqgan-negatives", "vqgan-negatives-prior"}
    for name, variants in report["results"].items():
        plain, fast = variants["no"], variants["bf16+cl+aot_eager"]
        assert plain["ok"] and fast["ok"], name
        assert plain["applied"] == {"precision": "no", "channels_last": False, "compile": "no"}, name
        assert fast["applied"] == {"precision": "bf16", "channels_last": True, "compile": "aot_eager"}, name
        assert fast["updates_timed"] == 2 and fast["samples_per_s"] > 0 and fast["peak_gpu_mem_gib"] is None
        assert fast["last_values"].keys() == plain["last_values"].keys() != set(), name
        assert set(report["summary"][name]["speedup_vs_no"]) == {"no", "bf16+cl+aot_eager"}


def test_a_failing_variant_is_recorded_with_its_error_and_the_exit_code_says_so(tmp_path):
    out = tmp_path / "gpu_check.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--tiny", "--packages", "m1-hyperspectral",
           "--variants", "no+turbo", "--steps", "2", "--warmup", "1", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1
    failed = json.loads(out.read_text())["results"]["m1-hyperspectral"]["no+turbo"]
    assert not failed["ok"] and "compile='turbo'" in failed["error"]


def test_runs_over_the_budget_are_listed_as_skipped(tmp_path):
    out = tmp_path / "gpu_check.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--tiny", "--packages", "m1-hyperspectral",
           "--variants", "no,bf16", "--steps", "2", "--warmup", "1", "--budget-s", "0", "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "skipped (over --budget-s 0)" in proc.stdout, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert report["skipped"] == ["m1-hyperspectral no", "m1-hyperspectral bf16"]
    assert report["results"] == {"m1-hyperspectral": {}}


def test_the_device_session_script_runs_the_check_and_records_the_environment(tmp_path):
    script = ROOT / "benchmarks" / "gpu_session.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path / "out"), "WHEELS": str(tmp_path / "none"),
           "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}  # fmt: skip
    cmd = ["bash", str(script), "--tiny", "--packages", "m1-hyperspectral", "--variants", "no", "--steps", "3",
           "--warmup", "1"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "torch" in (tmp_path / "out" / "environment.txt").read_text()
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert report["results"]["m1-hyperspectral"]["no"]["ok"] and report["steps"] == 3  # the caller's options win
    assert "m1-hyperspectral" in (tmp_path / "out" / "gpu_check.log").read_text()
    rows = json.loads((tmp_path / "out" / "scaling_estimate.json").read_text())["rows"]
    assert [r["package"] for r in rows if "single_gpu_update" in r] == ["m1-hyperspectral"]


def test_a_tree_on_pythonpath_without_entry_points_still_lists_every_package():
    """gpu_session.sh puts packages/*/src on PYTHONPATH without installing anything (no entry points there): the
    script then reads the specs from the packages' package.py modules."""
    code = (
        "import importlib.metadata as m, json, runpy, sys\n"
        "m.entry_points = lambda **kw: m.EntryPoints([])\n"
        f"names = runpy.run_path({str(ROOT / 'benchmarks' / 'gpu_check.py')!r})['PACKAGES']\n"
        "print(json.dumps(sorted(names)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(json.loads(proc.stdout)) == registered_runs()
