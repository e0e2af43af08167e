"""Experiment trackers (``train.report_to``): TensorBoard, Weights & Biases, MLflow, through Accelerate's tracker
interface, each writing inside the run directory and never to the network unless its own variable says so.

The Trainer builds them with :func:`make_trackers` (an unknown or missing tracker is a one-line ConfigError before
anything runs), hands them to ``Accelerator(log_with=...)``, starts them with :func:`start_trackers` (which calls
``accelerator.init_trackers`` with the flattened run config), logs through ``accelerator.log`` and
:func:`log_image`, and ends them with :func:`end_trackers`. Every tracker runs on the main process only.

Where each one writes:
- TensorBoard: ``RUN/tensorboard`` (events after the resumed step are purged on resume).
- W&B: an offline run in ``RUN/wandb`` (``wandb sync RUN/wandb/offline-run-*`` uploads it) unless ``WANDB_MODE``
  is set; project ``WANDB_PROJECT`` or the package's name, run name the run directory's name.
- MLflow: the file store ``RUN/mlruns`` (``mlflow ui --backend-store-uri RUN/mlruns``) unless
  ``MLFLOW_TRACKING_URI`` is set; experiment ``MLFLOW_EXPERIMENT_NAME`` or the package's name.

A resumed run continues the same W&B and MLflow runs (their ids are kept in ``RUN/trackers.json``).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from accelerate.tracking import GeneralTracker, on_main_process

from gencore.errors import ConfigError
from gencore.fileio import atomic_write_text
from gencore.train.config import TRACKERS, parse_report_to

__all__ = ["make_trackers", "start_trackers", "end_trackers", "log_image", "flatten_config", "IDS_FILE"]

#: The run directory's record of the tracker runs it logs to, so that a resume continues them.
IDS_FILE = "trackers.json"

#: what a W&B or MLflow run id looks like (both write [0-9a-z]); anything else in trackers.json is not used
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")

#: tracker -> (module whose import proves it is installed, what to pip install)
_REQUIRES = {
    "tensorboard": ("torch.utils.tensorboard", "pip install tensorboard"),
    "wandb": ("wandb", "pip install 'gencore[wandb]'"),
    "mlflow": ("mlflow", "pip install 'gencore[mlflow]'"),
}


def _installed(name: str) -> bool:
    try:
        importlib.import_module(_REQUIRES[name][0])
    except ImportError:
        return False
    return True


def resolve_report_to(report_to: str) -> list[str]:
    """The trackers a ``train.report_to`` value selects here: ``auto`` = TensorBoard when installed, ``all`` = every
    installed one; a named tracker that is not installed is a one-line :class:`ConfigError` with the pip command."""
    try:
        words = parse_report_to(report_to)
    except ValueError as exc:
        raise ConfigError(f"train.{exc}") from None
    if words == ("auto",):
        return ["tensorboard"] if _installed("tensorboard") else []
    if words == ("all",):
        return [name for name in TRACKERS if _installed(name)]
    for name in words:
        if not _installed(name):
            package = _REQUIRES[name][0].split(".")[-1]
            raise ConfigError(
                f"train.report_to={report_to}: the {package} package is not installed ({_REQUIRES[name][1]})"
            )
    return list(words)


def make_trackers(report_to: str, run_dir: str | Path, project: str) -> list[GeneralTracker]:
    """Unstarted trackers for ``Accelerator(log_with=...)``; every process makes them (the same checks everywhere),
    only the main process starts and uses them."""
    classes = {"tensorboard": TensorBoardTracker, "wandb": WandbTracker, "mlflow": MlflowTracker}
    return [classes[name](Path(run_dir), project) for name in resolve_report_to(report_to)]


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict as dotted keys (``{"train": {"seed": 0}}`` -> ``{"train.seed": 0}``)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            out.update(flatten_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def start_trackers(
    accelerator: Accelerator, run_dir: str | Path, project: str, config: Mapping[str, Any], resume_step: int | None
) -> None:
    """Start the accelerator's trackers (main process): on resume the runs recorded in ``RUN/trackers.json``
    continue; the flattened ``config`` is logged as their hyper-parameters."""
    path = Path(run_dir) / IDS_FILE
    ids: dict[str, str] = {}
    if resume_step is not None and path.is_file():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            ids = {k: v for k, v in json.loads(path.read_text(encoding="utf-8-sig")).items() if isinstance(v, str)}
    for name, run_id in list(ids.items()):
        if not _RUN_ID.fullmatch(run_id):  # an edited or damaged record: a new tracker run, not a traceback
            accelerator.print(f"note: {path}: {name} run id {run_id[:40]!r} is not an id; a new {name} run starts")
            del ids[name]
    for tracker in accelerator.log_with:
        if isinstance(tracker, _Tracker):
            tracker.resume_step, tracker.run_id = resume_step, ids.get(tracker.name)
    try:
        accelerator.init_trackers(project, config=flatten_config(config))
    except Exception as exc:  # noqa: BLE001 - the trackers' own libraries raise their own classes
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ConfigError(f"--report-to: a tracker could not start its run ({type(exc).__name__}: {first})") from None
    started = {t.name: t.run_id for t in accelerator.trackers if isinstance(t, _Tracker) and t.run_id}
    if accelerator.is_main_process and (started or path.is_file()):
        atomic_write_text(path, json.dumps(started, indent=2) + "\n")


def end_trackers(accelerator: Accelerator, status: str = "completed") -> None:
    """Finish every started tracker (``status``: completed, stopped by a signal, or failed) and forget them, so a
    later ``fit`` starts them again. Not ``accelerator.end_training()``: that also ends the process group."""
    for tracker in accelerator.trackers:
        if isinstance(tracker, _Tracker):
            tracker.finish(status)
        else:
            tracker.finish()
    accelerator.trackers.clear()


def log_image(accelerator: Accelerator, key: str, path: str | Path, step: int) -> None:
    """Log the PNG at ``path`` (a sample grid just written) as image ``key`` to every started tracker."""
    trackers = [t for t in accelerator.trackers if hasattr(t, "log_images")]
    if not trackers:
        return
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        array = np.asarray(img.convert("RGB"))
    for tracker in trackers:
        tracker.log_images({key: [array]}, step=step)


class _Tracker(GeneralTracker):
    """What the three trackers share: the run directory, the project, and the run to continue on resume."""

    requires_logging_directory = False

    def __init__(self, run_dir: Path, project: str) -> None:
        super().__init__()
        self.run_dir, self.project = Path(run_dir), project
        self.resume_step: int | None = None
        self.run_id: str | None = None  # the tracker's own run id, kept in trackers.json

    def finish(self, status: str = "completed") -> None:
        """End the tracker's run; ``status``: completed, stopped (by a signal, to be resumed) or failed."""


class TensorBoardTracker(_Tracker):
    """Scalars, hyper-parameters (the HPARAMS tab) and images in ``RUN/tensorboard``."""

    name = "tensorboard"
    requires_logging_directory = True

    def __init__(self, run_dir: Path, project: str) -> None:
        super().__init__(run_dir, project)
        self.writer: Any = None

    @on_main_process
    def start(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops what an earlier segment logged after the checkpoint this run resumes from
        self.writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=self.resume_step)

    @property
    def tracker(self) -> Any:
        return self.writer

    @on_main_process
    def store_init_configuration(self, values: dict) -> None:
        from torch.utils.tensorboard.summary import hparams

        plain = {k: v if isinstance(v, (bool, int, float, str)) else _text(v) for k, v in values.items()}
        # written into this run's own event file: SummaryWriter.add_hparams would open a new run folder per call
        writer = self.writer._get_file_writer()
        for summary in hparams(plain, {}):
            writer.add_summary(summary)

    @on_main_process
    def log(self, values: dict, step: int | None = None, **kwargs: Any) -> None:
        for key, value in _numbers(values).items():
            self.writer.add_scalar(key, value, step)

    @on_main_process
    def log_images(self, values: dict, step: int | None = None, **kwargs: Any) -> None:
        for key, images in values.items():
            for i, image in enumerate(images):
                self.writer.add_image(key if len(images) == 1 else f"{key}/{i}", image, step, dataformats="HWC")

    @on_main_process
    def finish(self, status: str = "completed") -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class WandbTracker(_Tracker):
    """A W&B run in ``RUN/wandb``, offline unless ``WANDB_MODE`` says otherwise."""

    name = "wandb"

    def __init__(self, run_dir: Path, project: str) -> None:
        super().__init__(run_dir, project)
        self.run: Any = None

    @on_main_process
    def start(self) -> None:
        import wandb

        options: dict[str, Any] = {
            "project": os.environ.get("WANDB_PROJECT") or self.project,
            "dir": str(self.run_dir),
            "name": self.run_dir.name,
            # console="off": W&B would otherwise wrap stdout/stderr, under the progress bar and the CLI's errors
            "settings": wandb.Settings(console="off", quiet=True),
        }
        if not os.environ.get("WANDB_MODE"):
            options["mode"] = "offline"
        if self.run_id:
            options.update(id=self.run_id, resume="allow")
        self.run = wandb.init(**options)
        self.run_id = self.run.id

    @property
    def tracker(self) -> Any:
        return self.run

    @on_main_process
    def store_init_configuration(self, values: dict) -> None:
        self.run.config.update(values, allow_val_change=True)

    @on_main_process
    def log(self, values: dict, step: int | None = None, **kwargs: Any) -> None:
        self.run.log(_numbers(values), step=step)

    @on_main_process
    def log_images(self, values: dict, step: int | None = None, **kwargs: Any) -> None:
        import wandb

        logged = {k: [wandb.Image(i) for i in v] if len(v) > 1 else wandb.Image(v[0]) for k, v in values.items()}
        self.run.log(logged, step=step)

    @on_main_process
    def finish(self, status: str = "completed") -> None:
        if self.run is None:
            return
        if status == "stopped" and hasattr(self.run, "mark_preempting"):
            self.run.mark_preempting()  # W&B shows it as pre-empted, to be resumed, not as crashed
        self.run.finish(exit_code=1 if status == "failed" else 0)
        self.run = None


@contextlib.contextmanager
def _file_store_allowed(uri: str) -> Iterator[None]:
    """MLflow 3 refuses its file store unless ``MLFLOW_ALLOW_FILE_STORE`` is set; the store under the run directory
    is the point here (no server, no database to migrate), so allow it while the client builds it (MLflow caches
    the store), without leaving the variable set."""
    if not uri.startswith("file:") or "MLFLOW_ALLOW_FILE_STORE" in os.environ:
        yield
        return
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)


class MlflowTracker(_Tracker):
    """An MLflow run in the file store ``RUN/mlruns`` unless ``MLFLOW_TRACKING_URI`` points elsewhere. Uses an
    ``MlflowClient`` of its own, so the process-wide active run and tracking URI of MLflow stay untouched."""

    name = "mlflow"

    def __init__(self, run_dir: Path, project: str) -> None:
        super().__init__(run_dir, project)
        self.client: Any = None

    @on_main_process
    def start(self) -> None:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI") or (self.run_dir / "mlruns").resolve().as_uri()
        with _file_store_allowed(uri):
            self.client = MlflowClient(tracking_uri=uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or self.project
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment is not None else self.client.create_experiment(name)
        if self.run_id:
            try:
                self.client.update_run(self.run_id, status="RUNNING")
            except MlflowException:
                self.run_id = None  # the store was moved or cleared: a new run
        if not self.run_id:
            self.run_id = self.client.create_run(experiment_id, run_name=self.run_dir.name).info.run_id

    @property
    def tracker(self) -> Any:
        return self.client

    @on_main_process
    def store_init_configuration(self, values: dict) -> None:
        from mlflow.entities import Param

        # MLflow refuses to change a parameter: a resumed run adds the keys it lacks, and config.json (an artifact,
        # rewritten each time) holds the values of the latest segment
        known = self.client.get_run(self.run_id).data.params
        params = [Param(k, _text(v)) for k, v in values.items() if k not in known and len(_text(v)) <= 6000]
        for i in range(0, len(params), 100):  # MLflow's batch limit
            self.client.log_batch(self.run_id, params=params[i : i + 100])
        self.client.log_dict(self.run_id, dict(values), "config.json")

    @on_main_process
    def log(self, values: dict, step: int | None = None, **kwargs: Any) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step or 0) for k, v in _numbers(values).items() if math.isfinite(v)]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    @on_main_process
    def log_images(self, values: dict, step: int | None = None, **kwargs: Any) -> None:
        for key, images in values.items():
            for i, image in enumerate(images):
                self.client.log_image(self.run_id, image, key=key if len(images) == 1 else f"{key}_{i}", step=step)

    @on_main_process
    def finish(self, status: str = "completed") -> None:
        if self.client is None:
            return
        state = {"completed": "FINISHED", "stopped": "KILLED"}.get(status, "FAILED")
        self.client.set_terminated(self.run_id, status=state)
        self.client = None
