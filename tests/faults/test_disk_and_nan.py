"""A full disk or an unwritable run directory while saving, and a NaN loss: a clear one-line error, a non-zero
exit code, and the last good checkpoint intact and resumable (it still ends where an unbroken run ends)."""

from __future__ import annotations

import fault_jobs as jobs
import pytest

from gencore.checkpoint import list_checkpoints, verify_dir

JOBS = jobs.jobs()
# the K-th safetensors write: the checkpoint of update K-1 for a single model file, earlier for packages that
# export models on the way; any K past the first checkpoint leaves an older one to fall back on
ENOSPC = [("gencore", 3), ("hvae-captcha", 2), ("vqgan-negatives", 4), ("ganwriting-music", 2)]
# (package, update that goes NaN, newest checkpoint expected: ganwriting-music saves once an epoch of 3 updates)
NAN = [("dcgan-tutorial", 3, 2), ("m1-hyperspectral", 4, 3), ("hvae-captcha", 3, 2), ("ganwriting-music", 5, 3)]


def _snapshot(run_dir):
    """Bytes of every file of every checkpoint."""
    return {p: p.read_bytes() for c in list_checkpoints(run_dir / "checkpoints") for p in sorted(c.rglob("*"))
            if p.is_file()}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("name", "k"), ENOSPC, ids=[n for n, _ in ENOSPC])
def test_disk_full_while_saving_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, references, name, k):
    run_dir = tmp_path / "run"
    done = jobs.run(JOBS[name], run_dir, fault=f"enospc:{k}")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert lines[-1].startswith("error:") and "No space left on device" in lines[-1], lines[-3:]
    assert "Traceback" not in done.stderr
    found = list_checkpoints(run_dir / "checkpoints")
    assert found, "the checkpoint before the failed one is gone"
    for path in found:
        verify_dir(path)
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")], "temporary files left"
    again = jobs.run(JOBS[name], run_dir)  # the disk has room again
    assert again.returncode == 0, again.stderr[-2000:]
    assert jobs.state_digest(run_dir) == references(name)


@pytest.mark.slow
def test_output_directory_that_cannot_be_created_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = jobs.run(JOBS["m1-hyperspectral"], blocker / "run")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("error:") and str(blocker) in line, line
    assert blocker.read_text() == "not a directory"


@pytest.mark.slow
def test_checkpoint_folder_that_is_a_file_is_a_clear_error(tmp_path):
    """Where the checkpoints should go cannot be written (as root, a read-only mode would not stop the write)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoints").write_text("in the way")
    done = jobs.run(JOBS["gencore"], run_dir)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("error:") and "checkpoints" in line, line
    assert (run_dir / "checkpoints").read_text() == "in the way"


@pytest.mark.slow
@pytest.mark.parametrize(("name", "k", "last"), NAN, ids=[n for n, *_ in NAN])
def test_nan_loss_stops_with_a_message_and_the_last_good_checkpoint(tmp_path, references, name, k, last):
    run_dir = tmp_path / "run"
    done = jobs.run(JOBS[name], run_dir, fault=f"nan:{k}")
    assert done.returncode == 3, done.stderr[-2000:]
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("error:") and "non-finite loss" in line and f"step {k}" in line, line
    found = list_checkpoints(run_dir / "checkpoints")
    assert found and int(found[-1].name.split("_")[1]) == last, [p.name for p in found]
    verify_dir(found[-1])
    before = _snapshot(run_dir)
    again = jobs.run(JOBS[name], run_dir)  # the cause removed: the good checkpoint carries on to the same end
    assert again.returncode == 0, again.stderr[-2000:]
    assert jobs.state_digest(run_dir) == references(name)
    assert all(p.read_bytes() == b for p, b in before.items() if p.exists())
