"""benchmarks/scaling_estimate.py: counted model sizes, and the all-reduce share of an update measured by gpu_check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def _script(name: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "benchmarks" / name), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)


def test_the_share_of_an_update_comes_from_a_gpu_check_report(tmp_path):
    check = tmp_path / "gpu_check.json"
    proc = _script("gpu_check.py", "--tiny", "--packages", "m1-hyperspectral", "--variants", "no,bf16", "--steps", "3",
                   "--warmup", "1", "--out", str(check))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = tmp_path / "scaling.json"
    proc = _script("scaling_estimate.py", "--gpu-check", str(check), "--step-ms", "vqgan-negatives-prior=5",
                   "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = {row["package"]: row for row in json.loads(out.read_text())["rows"]}
    m1, report = rows["m1-hyperspectral"], json.loads(check.read_text())
    fastest = report["summary"]["m1-hyperspectral"]["fastest"]
    assert m1["single_gpu_update"] == {"step_ms": report["results"]["m1-hyperspectral"][fastest]["step_ms"],
                                       "variant": fastest, "device": report["device"]}  # fmt: skip
    node = "8 GPUs, one node (NVLink)"
    share, ms = m1[f"share_of_update: {node}"], m1[f"allreduce_ms: {node}"]
    assert abs(share - ms / (ms + m1["single_gpu_update"]["step_ms"])) < 1e-12
    # the two vqgan stages are separate rows: a step time given for the prior is not the first stage's
    assert f"share_of_update: {node}" in rows["vqgan-negatives-prior"]
    assert f"share_of_update: {node}" not in rows["vqgan-negatives"]
    assert rows["ganwriting-music"]["parameters"] > rows["gencore"]["parameters"] > 0


def test_an_unknown_package_is_named(tmp_path):
    proc = _script("scaling_estimate.py", "--step-ms", "vqgan=3", "--out", str(tmp_path / "s.json"))
    assert proc.returncode == 1 and "unknown package(s) ['vqgan']" in proc.stderr


def test_bad_step_times_and_reports_are_one_line_errors(tmp_path):
    (tmp_path / "foreign.json").write_text('{"rows": []}')
    (tmp_path / "broken.json").write_text("{not json")
    cases = [
        (["--step-ms", "m1-hyperspectral=fast"], "--step-ms 'm1-hyperspectral=fast': expected PACKAGE=MILLISECONDS"),
        (["--step-ms", "m1-hyperspectral"], "expected PACKAGE=MILLISECONDS"),
        (["--gpu-check", str(tmp_path / "missing.json")], "cannot read"),
        (["--gpu-check", str(tmp_path / "foreign.json")], "is not a report of benchmarks/gpu_check.py"),
        (["--gpu-check", str(tmp_path / "broken.json")], "is not a report of benchmarks/gpu_check.py"),
    ]
    for args, message in cases:
        proc = _script("scaling_estimate.py", *args, "--out", str(tmp_path / "s.json"))
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "s.json").exists()
