"""A model folder exported by a training run says how it was trained: data settings, updates, how the run stopped,
the metrics of its last evaluation and the command line (``model_info.json`` and the card)."""

from __future__ import annotations

import json
import sys

from gencore.demo import DemoConfig, ShapesVAE, VAEConfig, run_demo
from gencore.modelcard import invocation, training_record

RUN_CONFIG = {"data": {"path": "shapes|v2", "size": 32}, "train": {"seed": 7}}


def _metrics(run_dir, rows):
    run_dir.mkdir(parents=True, exist_ok=True)
    header = "step,loss,steps_per_s,eval/fd,eval/psnr,eval/bad_evals"
    (run_dir / "metrics.csv").write_text("\n".join([header, *rows]) + "\n")


def test_the_record_takes_the_last_evaluation_at_or_before_the_weights_step(tmp_path):
    _metrics(tmp_path, ["5,1.0,3.1,,,", "10,0.9,3.2,,,", "10,,,12.5,20.1,0", "15,0.8,3.3,,,", "20,,,9.5,22.0,1"])
    final = training_record(tmp_path, RUN_CONFIG, updates=20, epochs=2, reason="max_steps", command="x train")
    assert final["metrics_step"] == 20 and final["metrics"] == {"fd": 9.5, "psnr": 22.0}  # no timing, no counter
    assert final["data"] == RUN_CONFIG["data"] and final["seed"] == 7 and final["stopped_by"] == "max_steps"
    best = training_record(tmp_path, RUN_CONFIG, updates=20, epochs=2, weights_step=15, command="x train")
    assert best["weights_step"] == 15 and best["metrics_step"] == 10 and best["metrics"]["fd"] == 12.5
    early = training_record(tmp_path, RUN_CONFIG, updates=20, epochs=2, weights_step=9, command="x")
    assert early["metrics_step"] is None and early["metrics"] == {}
    given = training_record(tmp_path, RUN_CONFIG, updates=20, epochs=2, metrics={"fd": 1}, command="x")
    assert given["metrics_step"] == 20 and given["metrics"] == {"fd": 1.0}


def test_a_record_without_metrics_csv_or_data_section_still_describes_the_run(tmp_path):
    got = training_record(tmp_path / "none", {}, updates=3, epochs=1, command="x")
    assert got["data"] == {} and got["seed"] is None and got["metrics"] == {} and got["updates"] == 3


def test_the_record_lands_in_model_info_and_in_the_card(tmp_path):
    _metrics(tmp_path / "run", ["10,,,12.5,20.1,0"])
    record = training_record(tmp_path / "run", RUN_CONFIG, updates=10, epochs=1, reason="early_stop",
                             command="pkg train --data 'my photos'")  # fmt: skip
    model = ShapesVAE(VAEConfig(latent_dim=4, channels=8))
    model.save_pretrained(tmp_path / "m", training=record)
    info = json.loads((tmp_path / "m" / "model_info.json").read_text())
    assert info["training"] == record
    card = (tmp_path / "m" / "README.md").read_text()
    assert "Trained for 10 updates (1 epochs, stopped by early_stop), seed 7" in card
    assert "pkg train --data 'my photos'" in card and "| `fd` | 12.5 |" in card
    assert '| `data.path` | `"shapes\\|v2"` |' in card  # a | in a value does not split the table's cell
    model.save_pretrained(tmp_path / "plain")
    plain = (tmp_path / "plain" / "README.md").read_text()
    assert "## Training" not in plain
    assert "training" not in json.loads((tmp_path / "plain" / "model_info.json").read_text())


def test_invocation_is_the_command_line_a_user_types_again(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/bin/dcgan-tutorial", "train", "--data", "my photos"])
    monkeypatch.setitem(sys.modules, "__main__", type(sys)("__main__"))
    assert invocation() == "dcgan-tutorial train --data 'my photos'"
    module = type(sys)("__main__")
    module.__spec__ = type("Spec", (), {"name": "ganwriting_music.train"})()
    monkeypatch.setitem(sys.modules, "__main__", module)
    monkeypatch.setattr(sys, "argv", ["/x/ganwriting_music/train.py", "0"])
    assert invocation() == "python -m ganwriting_music.train 0"


def test_a_trained_demo_exports_a_card_with_its_run(tmp_path):
    config = DemoConfig(num_images=64)
    config.train.output_dir, config.train.max_steps, config.train.batch_size = str(tmp_path / "run"), 6, 16
    config.train.eval_every, config.train.progress_bar, config.train.report_to = 3, False, "none"
    config.iw_samples = 2
    result = run_demo(config)
    info = json.loads((tmp_path / "run" / "model" / "model_info.json").read_text())
    record = info["training"]
    assert record["updates"] == result.step == 6 and record["stopped_by"] == "max_steps"
    assert record["metrics_step"] == 6 and set(record["metrics"]) == set(result.metrics)
    for key, value in result.metrics.items():  # metrics.csv keeps 6 significant digits
        assert abs(record["metrics"][key] - value) <= 1e-5 * max(1.0, abs(value))
    assert "## Metrics" in (tmp_path / "run" / "model" / "README.md").read_text()
