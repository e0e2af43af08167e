"""metrics.csv (always), TensorBoard (when installed and wanted), written by the main process only."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any


class MetricsLogger:
    """Appends rows of named scalars to ``metrics.csv``; widens the header when a new name appears.

    On resume, rows later than the resumed step are dropped, so the file reads as one uninterrupted run.
    """

    def __init__(self, run_dir: Path, tensorboard: bool = True, resume_step: int | None = None) -> None:
        self.path = Path(run_dir) / "metrics.csv"
        self.columns: list[str] = ["step"]
        self.rows: list[dict[str, Any]] = []
        if self.path.is_file() and resume_step is not None:
            with open(self.path, newline="") as fh:
                reader = csv.DictReader(fh)
                self.columns = list(reader.fieldnames or ["step"])
                self.rows = [r for r in reader if r.get("step") and int(float(r["step"])) <= resume_step]
            self._rewrite()
        elif self.path.exists():
            self.path.unlink()  # a fresh run in an old directory starts a fresh log
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self.tb = None
            else:
                self.tb = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=resume_step)

    def _rewrite(self) -> None:
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows(self.rows)
        tmp.replace(self.path)

    def log(self, step: int, values: dict[str, float]) -> None:
        """Record ``values`` at ``step`` in the CSV file and TensorBoard."""
        row: dict[str, Any] = {"step": step}
        row.update({k: (f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else v) for k, v in values.items()})
        new = [k for k in row if k not in self.columns]
        self.rows.append(row)
        if new:
            self.columns += new
            self._rewrite()
        else:
            with open(self.path, "a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=self.columns).writerow(row)
        if self.tb is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self.tb is not None:
            self.tb.close()
            self.tb = None


def format_line(step: int, max_steps: int, values: dict[str, float]) -> str:
    """One console line: ``step 100/1000 | loss_d 0.6931 | ...``."""
    width = len(str(max_steps))
    parts = [f"step {step:>{width}}/{max_steps}"]
    parts += [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()]
    return " | ".join(parts)
