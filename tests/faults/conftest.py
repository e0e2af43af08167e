"""Makes tests/faults/fault_jobs.py importable by the fault tests (pytest runs in importlib mode, so a test
folder is not on sys.path by itself)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
