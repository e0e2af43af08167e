"""Settings for every test of the repository (the root conftest: tests/ and packages/*/tests).

Artefacts that runs keep between them (``gencore.fileio.cache_dir``: e.g. dcgan's evaluation feature network)
go to one folder of this test session, never to the user's ~/.cache, and child processes inherit it. A network
reused from there is the one a test would have trained (same data, classes, steps and seed give the same bits).
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["GENCORE_CACHE"] = str(tmp_path_factory.mktemp("gencore-cache"))
