"""Shared by the fault tests: tests/faults/fault_jobs.py made importable (pytest runs in importlib mode, so a test
folder is not on sys.path by itself), one fork server per test process that starts the jobs' CLI processes without
paying for ``import torch`` each time (tests/faults/forkserver.py), and one unbroken run of each package's tiny job
for the whole session."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import fault_jobs  # noqa: E402
import forkserver  # noqa: E402

# what every job imports before its first update (each package's CLI and training modules are added)
PRELOAD = ["torch", "accelerate", "safetensors.torch", "PIL.Image", "matplotlib.figure",
           "matplotlib.backends.backend_agg", "gencore.train", "gencore.checkpoint"]  # fmt: skip


def _preload() -> list[str]:
    import importlib.util

    from gencore.registry import packages

    modules = list(PRELOAD)
    for spec in packages().values():
        top = spec.cli.split(":")[0].split(".")[0]
        modules += [m for m in (spec.cli.split(":")[0], f"{top}.train", f"{top}.model")
                    if m not in modules and importlib.util.find_spec(m) is not None]  # fmt: skip
    return modules


@pytest.fixture(scope="session", autouse=True)
def fork_server(tmp_path_factory) -> Iterator[forkserver.ForkServer | None]:
    """The jobs' processes are forked from one pre-imported interpreter (GENCORE_TEST_FORK=0: fresh ones)."""
    import os

    if os.environ.get("GENCORE_TEST_FORK", "1") == "0":
        yield None
        return
    server = forkserver.ForkServer(fault_jobs.base_env(), _preload(), tmp_path_factory.mktemp("forkserver"))
    try:
        with fault_jobs.started_by(server):
            yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def unbroken_run(tmp_path_factory) -> Callable[[str], Path]:
    """``unbroken_run(name)``: the run directory of ``name``'s job run once to its end (do not modify it)."""
    root = tmp_path_factory.mktemp("unbroken")
    done_dirs: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in done_dirs:
            done = fault_jobs.run(fault_jobs.jobs()[name], root / name)
            assert done.returncode == 0, done.stderr[-2000:]
            done_dirs[name] = root / name
        return done_dirs[name]

    return get


@pytest.fixture
def references(unbroken_run) -> Callable[[str], dict[str, str]]:
    """``references(name)``: the tensor digests an unbroken run of ``name``'s job ends with."""
    return lambda name: fault_jobs.state_digest(unbroken_run(name))


@pytest.fixture
def trained(unbroken_run) -> Callable[[str, Path], Path]:
    """``trained(name, dest)``: a copy of the unbroken run of ``name`` at ``dest``, free to damage."""
    return lambda name, dest: Path(shutil.copytree(unbroken_run(name), dest))
