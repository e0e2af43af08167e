"""Settings for every test of the repository (the root conftest: tests/ and packages/*/tests).

Artefacts that runs keep between them (``gencore.fileio.cache_dir``: e.g. dcgan's evaluation feature network)
go to one folder of this test session, never to the user's ~/.cache, and child processes inherit it. A network
reused from there is the one a test would have trained (same data, classes, steps and seed give the same bits).

Under pytest-xdist (`make test` runs one worker per core) each worker and the commands it starts get an equal
share of the cores as their thread count: torch's default (one thread per core in every worker) would
oversubscribe the machine and make the whole suite slower than running it serially.
"""

from __future__ import annotations

import os
import sys

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, _threads)
    if "torch" in sys.modules:  # a plugin imported it before this file: the variables came too late for it
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["GENCORE_CACHE"] = str(tmp_path_factory.mktemp("gencore-cache"))
