"""Experiment trackers (``train.report_to`` / ``--report-to``): a tiny ``gencore demo`` logs to W&B (offline),
MLflow (file store) and TensorBoard inside the run directory, and what they wrote, read back from the files,
holds metrics.csv's values, the run config and the sample grids; a resumed run continues the same tracker run;
a tracker that is not installed is a one-line error; the old ``train.tensorboard`` key still reads."""

from __future__ import annotations

import csv
import json
import os
import struct
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gencore.cli import main
from gencore.config import build_config
from gencore.demo import DemoConfig
from gencore.errors import ConfigError
from gencore.registry import packages
from gencore.train import TrainConfig
from gencore.train.config import parse_report_to

#: The registry's tiny demo (gencore.package.TINY) with a sample grid and a log row every 2 updates.
ARGS = [a for item in ("num_images=128", "train.batch_size=16", "eval.iw_samples=2", "train.progress_bar=false",
                       "train.eval_every=2", "train.sample_every=2", "train.log_every=2") for a in ("--set", item)]


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    """Whatever the machine's environment says, the trackers here write only under tmp_path."""
    for name in ("WANDB_MODE", "WANDB_PROJECT", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home"))
    # W&B's service writes its debug log under $XDG_CACHE_HOME; matplotlib keeps its font cache where it is
    import matplotlib

    monkeypatch.setenv("MPLCONFIGDIR", os.environ.get("MPLCONFIGDIR") or matplotlib.get_cachedir())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def demo(run_dir: Path, report_to: str, steps: int, *extra: str) -> None:
    result = CliRunner().invoke(
        main, ["demo", "--output-dir", str(run_dir), "--max-steps", str(steps), "--report-to", report_to, *ARGS, *extra]
    )
    assert result.exit_code == 0, result.output


def csv_values(run_dir: Path) -> dict[str, dict[int, float]]:
    """metrics.csv as column -> {step: value} (empty cells left out)."""
    out: dict[str, dict[int, float]] = {}
    with open(run_dir / "metrics.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            for key, value in row.items():
                if key != "step" and value != "":
                    out.setdefault(key, {})[int(row["step"])] = float(value)
    return out


def assert_same_as_csv(got: dict[str, dict[int, float]], run_dir: Path) -> None:
    expected = csv_values(run_dir)
    assert set(expected) <= set(got), sorted(set(expected) - set(got))
    for key, by_step in expected.items():
        assert set(by_step) == set(got[key]), (key, sorted(by_step), sorted(got[key]))
        for step, value in by_step.items():  # metrics.csv keeps 6 significant digits
            assert got[key][step] == pytest.approx(value, rel=1e-5, abs=1e-9), (key, step)


# --- the option -----------------------------------------------------------------------------------------------


def test_report_to_takes_a_word_or_a_comma_list_of_trackers():
    assert parse_report_to("auto") == ("auto",) and parse_report_to("none") == ()
    assert parse_report_to("wandb, mlflow,wandb") == ("wandb", "mlflow")
    for bad in ("wandbx", "all,wandb", "", "tensorboard,"):
        with pytest.raises(ValueError, match="report_to"):
            TrainConfig(report_to=bad)
    with pytest.raises(ConfigError, match="report_to: unknown tracker 'comet'"):
        build_config(DemoConfig, overrides=["train.report_to=comet"])


def test_the_earlier_tensorboard_key_still_reads(capsys):
    assert build_config(DemoConfig, overrides=["train.tensorboard=false"]).train.report_to == "none"
    assert build_config(DemoConfig, overrides=["train.tensorboard=true"]).train.report_to == "auto"
    assert "train.tensorboard -> train.report_to" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="expected true or false"):
        build_config(DemoConfig, overrides=["train.tensorboard=maybe"])
    assert TrainConfig(tensorboard=False).report_to == "none"  # the Python keyword of earlier code
    with pytest.raises(ValueError, match="report_to only"):
        TrainConfig(tensorboard=True, report_to="wandb")


def test_every_train_command_has_report_to():
    commands = [(spec, command) for spec in packages().values() for command in spec.train_commands]
    assert len(commands) >= 7
    for spec, command in commands:
        result = CliRunner().invoke(spec.load_cli(), [command.name, "--help"])
        assert result.exit_code == 0, result.output
        assert "--report-to" in result.output and "train.report_to" in result.output, f"{spec.name} {command.name}"


@pytest.mark.parametrize(("tracker", "package"), [("wandb", "wandb"), ("mlflow", "mlflow")])
def test_a_tracker_that_is_not_installed_is_one_line(tmp_path, monkeypatch, tracker, package):
    monkeypatch.setitem(sys.modules, package, None)  # makes `import wandb` fail as if it were not installed
    result = CliRunner().invoke(main, ["demo", "--output-dir", str(tmp_path / "run"), "--report-to", tracker, *ARGS])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: train.report_to={tracker}: the {package} package is not installed (pip install 'gencore[{tracker}]')"
    ]
    assert not (tmp_path / "run").exists()


def test_none_writes_no_tracker_files(tmp_path):
    run_dir = tmp_path / "run"
    demo(run_dir, "none", 2)
    assert not {"tensorboard", "wandb", "mlruns", "trackers.json"} & {p.name for p in run_dir.iterdir()}


# --- MLflow ---------------------------------------------------------------------------------------------------


def mlflow_run(run_dir: Path) -> Path:
    """The one MLflow run in the file store under ``run_dir`` (its folder)."""
    runs = [p.parent for p in (run_dir / "mlruns").glob("*/*/meta.yaml")]
    assert len(runs) == 1, runs
    return runs[0]


def mlflow_metrics(run: Path) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for path in (run / "metrics").rglob("*"):
        if path.is_file():
            key = path.relative_to(run / "metrics").as_posix()
            for line in path.read_text().splitlines():
                _, value, step = line.split()
                assert int(step) not in out.get(key, {}), f"{key} logged twice at step {step}"
                out.setdefault(key, {})[int(step)] = float(value)
    return out


def test_mlflow_file_store_holds_metrics_params_and_images_and_resume_continues_the_run(tmp_path):
    run_dir = tmp_path / "run"
    demo(run_dir, "mlflow", 4)
    run = mlflow_run(run_dir)
    assert_same_as_csv(mlflow_metrics(run), run_dir)
    assert (run / "params" / "train.seed").read_text() == "0"
    assert (run / "params" / "train.report_to").read_text() == "mlflow"
    assert json.loads((run / "artifacts" / "config.json").read_text())["train.max_steps"] == 4
    images = sorted(p.name for p in (run / "artifacts" / "images").glob("*.png"))
    assert any(n.startswith("samples~prior+step+4+") for n in images), images  # MLflow writes "/" as "~"
    assert "status: 3" in (run / "meta.yaml").read_text()  # FINISHED
    assert json.loads((run_dir / "trackers.json").read_text()) == {"mlflow": run.name}

    demo(run_dir, "mlflow", 6, "--resume", "auto")
    assert mlflow_run(run_dir) == run  # the same run, continued
    assert_same_as_csv(mlflow_metrics(run), run_dir)  # steps 2 to 6, each once
    assert json.loads((run / "artifacts" / "config.json").read_text())["train.max_steps"] == 6
    assert (run / "params" / "train.max_steps").read_text() == "4"  # MLflow keeps a parameter's first value


def test_a_damaged_trackers_record_starts_a_new_run_and_a_failing_tracker_is_one_line(tmp_path, monkeypatch):
    """trackers.json is a file of the run directory a user can edit or a crash can damage: an id that is no id
    (W&B refused "../x" with a traceback) starts a new tracker run with a note; a tracker library that raises while
    starting its run ends the command with one line and exit code 2."""
    run_dir = tmp_path / "run"
    demo(run_dir, "mlflow", 2)
    (run_dir / "trackers.json").write_text('{"mlflow": "../../not an id"}')
    result = CliRunner().invoke(main, ["demo", "--output-dir", str(run_dir), "--max-steps", "4", "--report-to",
                                       "mlflow", "--resume", "auto", *ARGS])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "mlflow run id '../../not an id' is not an id; a new mlflow run starts" in result.output
    assert json.loads((run_dir / "trackers.json").read_text())["mlflow"].isalnum()

    from gencore.train import trackers

    def refuse(self):  # noqa: ANN001, ANN202
        raise RuntimeError("the tracking server said no\nsecond line")

    monkeypatch.setattr(trackers.MlflowTracker, "start", refuse)
    result = CliRunner().invoke(main, ["demo", "--output-dir", str(tmp_path / "other"), "--max-steps", "2",
                                       "--report-to", "mlflow", *ARGS])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.output.strip() == ("error: --report-to: a tracker could not start its run (RuntimeError: the "
                                     "tracking server said no)")


# --- W&B ------------------------------------------------------------------------------------------------------


def wandb_records(path: Path) -> list:
    """The records of a W&B ``.wandb`` file: a LevelDB-style log (":W&B" header, 32 KiB blocks, each record a
    7-byte header of CRC, length and type, split over blocks as FIRST/MIDDLE/LAST) of protobuf ``Record`` s."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, pos, pending, block = [], 7, b"", 32768
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7]) if left >= 7 else (0, 0, 0)
        if left < 7 or (length == 0 and kind == 0):  # block trailer or zero padding
            pos += left
            continue
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def wandb_logged(run_folder: Path) -> tuple[dict[str, dict[int, float]], dict[str, str], dict[str, dict]]:
    """(numeric history by key and step, config key -> JSON value, non-numeric history items such as images)."""
    (file,) = run_folder.glob("run-*.wandb")
    history: dict[str, dict[int, float]] = {}
    config: dict[str, str] = {}
    media: dict[str, dict] = {}
    for record in wandb_records(file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            config.update({i.key: i.value_json for i in record.run.config.update})
        elif kind == "config":
            config.update({i.key: i.value_json for i in record.config.update})
        elif kind == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            step = int(items["_step"])
            images = {k[: -len("/_type")] for k in items if k.endswith("/_type")}
            for key, value in items.items():
                prefix, _, leaf = key.rpartition("/")
                if prefix in images:
                    media.setdefault(prefix, {})[leaf] = value
                elif not key.startswith("_") and isinstance(value, (int, float)):
                    history.setdefault(key, {})[step] = float(value)
    return history, config, media


def test_wandb_offline_run_holds_metrics_config_and_images_and_resume_continues_the_run(tmp_path):
    run_dir = tmp_path / "run"
    demo(run_dir, "wandb", 4)
    (first,) = (run_dir / "wandb").glob("offline-run-*")
    history, config, media = wandb_logged(first)
    assert_same_as_csv(history, run_dir)
    assert json.loads(config["train.seed"]) == 0 and json.loads(config["train.report_to"]) == "wandb"
    assert media["samples/prior"]["_type"] == "image-file"
    assert (first / "files" / media["samples/prior"]["path"]).is_file()
    run_id = json.loads((run_dir / "trackers.json").read_text())["wandb"]
    assert first.name.endswith(run_id)

    demo(run_dir, "wandb", 6, "--resume", "auto")
    folders = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(folders) == 2 and all(f.name.endswith(run_id) for f in folders)  # one W&B run, two segments
    history, _, _ = wandb_logged(next(f for f in folders if f != first))
    assert sorted(history["rec_nats"]) == [6]  # the resumed segment logs from after its checkpoint
    assert history["rec_nats"][6] == pytest.approx(csv_values(run_dir)["rec_nats"][6], rel=1e-5)


# --- TensorBoard ----------------------------------------------------------------------------------------------


def test_tensorboard_events_hold_metrics_config_and_images(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    demo(run_dir, "tensorboard", 4)
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()
    got = {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}
    assert_same_as_csv(got, run_dir)
    assert {"samples/prior", "samples/reconstruction"} <= set(events.Tags()["images"])
    assert b"train.seed" in events.PluginTagToContent("hparams")["_hparams_/session_start_info"]


# --- several processes ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_under_two_processes_only_rank_0_logs_one_run_per_tracker(tmp_path):
    from gencore.checkpoint import load_tree
    from gencore.testing import launch_cpu_processes

    run_dir = tmp_path / "run"
    done = launch_cpu_processes(["-m", "gencore.demo", "--output-dir", str(run_dir), "--max-steps", "4",
                                 "--report-to", "tensorboard,wandb,mlflow", *ARGS], timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert load_tree(run_dir / "checkpoints" / "step_000004")["trainer"]["world_size"] == 2
    assert len(list((run_dir / "tensorboard").iterdir())) == 1
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1
    assert_same_as_csv(mlflow_metrics(mlflow_run(run_dir)), run_dir)
