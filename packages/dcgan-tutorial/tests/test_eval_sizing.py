"""The training-time evaluation is sized to the run by default (issue 23): a short run does not evaluate unless
asked, the feature network's length follows the run's, and every value the user sets is kept."""

from __future__ import annotations

import csv
import re

import pytest

import dcgan_tutorial.train as train_module
from dcgan_tutorial.config import FULL_FEATURE_STEPS, GANConfig, sized_eval
from dcgan_tutorial.package import TINY
from dcgan_tutorial.train import build_trainer, load_or_train_feature_net, prepare_data
from gencore.config import build_config


def _sized(*overrides: str):
    return sized_eval(build_config(GANConfig, overrides=list(overrides)))


@pytest.mark.parametrize(
    ("overrides", "during", "steps"),
    [
        ((), True, 60),  # the default run: 3,000 updates
        (("train.max_steps=32",), False, None),  # a short run: no evaluation, no feature network
        (("train.max_steps=999",), False, None),
        (("train.max_steps=1000",), True, 20),
        (("train.max_steps=10000",), True, 200),
        (("train.max_steps=100000",), True, FULL_FEATURE_STEPS),
        (("train.max_steps=32", "eval.during_training=true"), True, 20),  # asked for
        (("train.max_steps=4", "eval.feature_steps=20"), True, 20),  # set: kept, and the run evaluates
        (("eval.during_training=false",), False, None),
        (("eval.feature_steps=300",), True, 300),
        (("eval.during_training=false", "eval.feature_steps=7"), False, 7),
    ],
)
def test_the_evaluation_follows_the_run_length_unless_set(overrides, during, steps):
    e = _sized(*overrides)
    assert (e.during_training, e.feature_steps) == (during, steps)


def test_a_short_run_trains_no_feature_network_and_says_so(tmp_path, monkeypatch, capsys):
    calls: list[int] = []
    monkeypatch.setattr(train_module, "train_feature_net", lambda *a, **k: calls.append(1))
    tiny = [o for o in TINY if not o.startswith("eval.feature_steps")]
    config = build_config(GANConfig, overrides=[*tiny, f"train.output_dir={str(tmp_path / 'run')!r}"])
    trainer = build_trainer(config)
    assert trainer.eval_fn is None and trainer.run_config["eval"]["during_training"] is False
    result = trainer.fit()
    assert result.completed and result.metrics == {} and calls == []
    assert not (tmp_path / "run" / "feature_net").exists()
    with open(tmp_path / "run" / "metrics.csv") as f:
        assert not any(k.startswith("eval/") for k in csv.DictReader(f).fieldnames or [])
    assert "evaluation: none during training" in capsys.readouterr().out


def test_an_asked_for_evaluation_runs_and_is_timed(tmp_path, tiny_config, capsys, monkeypatch):
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path / "cache"))  # empty: the network is trained here
    config = tiny_config(tmp_path / "run", "train.max_steps=2")
    result = build_trainer(config).fit()
    assert {"fd", "fd_floor", "diversity"} <= set(result.metrics)
    out = capsys.readouterr().out
    assert "feature network trained (20 steps) in" in out
    assert re.search(r"evaluation: [0-9.]+ s of [0-9.]+ s \(\d+%\): feature network and real images [0-9.]+ s, "
                     r"1 evaluations [0-9.]+ s; training loop [0-9.]+ s", out)


def test_evaluate_after_a_run_without_evaluation_trains_the_full_network(tmp_path, monkeypatch):
    steps: list[int] = []
    real = train_module.train_feature_net

    def recorded(*args, **kwargs):
        steps.append(kwargs["steps"])
        return real(*args, **{**kwargs, "steps": 1})  # the length is under test, not the network

    monkeypatch.setattr(train_module, "train_feature_net", recorded)
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path / "cache"))
    config = build_config(GANConfig, overrides=[*[o for o in TINY if not o.startswith("eval.feature_steps")],
                                                f"train.output_dir={str(tmp_path / 'run')!r}"])  # fmt: skip
    train_set, _ = prepare_data(config)
    load_or_train_feature_net(tmp_path / "run", train_set, config, save=False)
    assert steps == [FULL_FEATURE_STEPS]
