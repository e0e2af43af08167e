"""metrics.csv, written by the main process only (the experiment trackers are in gencore.train.trackers)."""

from __future__ import annotations

import csv
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any


class MetricsLogger:
    """Appends rows of named scalars to ``metrics.csv``; widens the header when a new name appears.

    On resume, rows later than the resumed step are dropped, so the file reads as one uninterrupted run. A log
    damaged by a crash (NUL bytes or half a row at the end, a stray line) never blocks a resume: the readable rows
    are kept, the original is set aside as ``metrics.csv.damaged`` and ``warn`` says so.
    """

    def __init__(
        self,
        run_dir: Path,
        resume_step: int | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(run_dir) / "metrics.csv"
        self.columns: list[str] = ["step"]
        self.rows: list[dict[str, Any]] = []
        if self.path.is_file() and resume_step is not None:
            self.columns, self.rows, dropped = read_metrics(self.path)
            self.rows = [r for r in self.rows if int(float(r["step"])) <= resume_step]
            if dropped:
                aside = self.path.with_name(self.path.name + ".damaged")
                shutil.copyfile(self.path, aside)
                if warn is not None:
                    warn(f"warning: {self.path} had {dropped} unreadable line(s) (a crash while writing?); kept the "
                         f"{len(self.rows)} readable rows, the original is in {aside.name}")  # fmt: skip
            self._rewrite()
        elif self.path.exists():
            self.path.unlink()  # a fresh run in an old directory starts a fresh log

    def _rewrite(self) -> None:
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows(self.rows)
        tmp.replace(self.path)

    def log(self, step: int, values: dict[str, float]) -> None:
        """Record ``values`` at ``step`` in the CSV file."""
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

    def close(self) -> None:
        """Nothing to flush: every row is on disk when :meth:`log` returns (kept for the Trainer's end of run)."""


def read_metrics(path: Path) -> tuple[list[str], list[dict[str, str]], int]:
    """(columns, rows, number of unreadable lines) of a ``metrics.csv``; a row counts as readable when it has the
    header's number of fields, an integer step and numbers (or nothing) in every other field."""
    lines = path.read_bytes().decode("utf-8", "replace").splitlines()
    damaged = sum(1 for line in lines if "\x00" in line)  # what a crash leaves: the file extended, never written
    lines = [line for line in lines if "\x00" not in line]
    if not lines:
        return ["step"], [], damaged
    header = next(csv.reader([lines[0]]), [])
    if not header or header[0].lstrip("\ufeff") != "step":
        return ["step"], [], len(lines)
    header[0] = "step"
    rows, dropped = [], damaged
    for fields in csv.reader(lines[1:]):
        if not fields:
            continue
        if len(fields) != len(header) or not _row_ok(fields):
            dropped += 1
            continue
        rows.append(dict(zip(header, fields)))
    return header, rows, dropped


def _row_ok(fields: list[str]) -> bool:
    try:
        if float(fields[0]) != int(float(fields[0])) or float(fields[0]) < 0:
            return False
        for value in fields[1:]:
            if value != "":
                float(value)
    except ValueError:
        return False
    return True


def format_line(step: int, max_steps: int, values: dict[str, float]) -> str:
    """One console line: ``step 100/1000 | loss_d 0.6931 | ...``."""
    width = len(str(max_steps))
    parts = [f"step {step:>{width}}/{max_steps}"]
    parts += [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()]
    return " | ".join(parts)
