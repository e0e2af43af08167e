"""benchmarks/allocator_env.py: CPU seconds per update, user and system apart, and peak memory of a package's
default training command under named environments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_each_environment_is_one_run_with_its_updates_timed(tmp_path):
    out = tmp_path / "allocator.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "allocator_env.py"), "--package", "gencore", "--steps", "4",
           "--env", "default=", "--env", "keep=GLIBC_TUNABLES=glibc.malloc.trim_threshold=1073741824,GENCORE_X=1",
           "--args", "--seed 3", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    results = report["results"]
    assert list(results) == ["default", "keep"] and report["args"] == ["--seed", "3"]
    assert all(run["command"].startswith("demo --seed 3 --output-dir TMP/run") for run in results.values())
    assert results["keep"]["env"] == {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1073741824", "GENCORE_X": "1"}
    for run in results.values():
        assert run["exit_code"] == 0, run["last_lines"]
        assert len(run["updates_after_the_first"]) == 3  # updates 2, 3 and 4; not the evaluation's line
        assert all(u["user_s"] >= 0 and u["sys_s"] >= 0 for u in run["updates_after_the_first"])
        assert run["peak_resident_gib_at_last_update"] > 0


def test_an_unknown_package_or_a_malformed_environment_is_one_usage_line(tmp_path):
    script = str(ROOT / "benchmarks" / "allocator_env.py")
    for args, says in ((["--package", "nope"], "unknown package 'nope'"),
                       (["--package", "gencore", "--env", "x=NOVALUE"], "expected NAME=VAR=VALUE"),
                       (["--package", "gencore", "--env", "=A=1"], "expected NAME=VAR=VALUE"),
                       (["--package", "gencore", "--args", "--seed '3"], "No closing quotation")):  # fmt: skip
        proc = subprocess.run([sys.executable, script, *args, "--out", str(tmp_path / "o.json")], capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert not (tmp_path / "o.json").exists()
