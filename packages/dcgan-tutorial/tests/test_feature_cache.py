"""The evaluation feature network is trained once per data set and reused from the user's cache (keyed by the
data's content, classes, steps and seed), verified before use; a damaged entry is trained again."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import dcgan_tutorial.train as train_module
from dcgan_tutorial.train import feature_net_key, load_or_train_feature_net, prepare_data

FAST = "eval.feature_steps=2"  # the cache is under test, not the network


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("GENCORE_CACHE", str(folder))
    return folder


def _counting(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = train_module.train_feature_net

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_feature_net", counted)
    return calls


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_a_second_run_on_the_same_data_reuses_the_network(tmp_path, tiny_config, cache, monkeypatch):
    calls = _counting(monkeypatch)
    config = tiny_config(tmp_path / "a", FAST)
    train_set, _ = prepare_data(config)
    load_or_train_feature_net(tmp_path / "a", train_set, config, save=True)
    load_or_train_feature_net(tmp_path / "b", train_set, tiny_config(tmp_path / "b", FAST), save=True)
    assert len(calls) == 1
    entries = list((cache / "dcgan-feature-net").iterdir())
    assert len(entries) == 1
    first, second = _weights(tmp_path / "a" / "feature_net"), _weights(tmp_path / "b" / "feature_net")
    assert all(torch.equal(first[k], second[k]) for k in first)  # the run keeps its own copy, the same bits
    # other data, steps or seed: another entry
    load_or_train_feature_net(tmp_path / "c", train_set, tiny_config(tmp_path / "c", FAST, "train.seed=1"), save=True)
    assert len(calls) == 2 and len(list((cache / "dcgan-feature-net").iterdir())) == 2


def test_the_key_follows_the_content(tiny_config, tmp_path):
    train_set, _ = prepare_data(tiny_config(tmp_path))
    images, labels = train_set.images, train_set.labels
    key = feature_net_key(images, labels, 3, 20, 0)
    assert key == feature_net_key(images.clone(), labels.clone(), 3, 20, 0)
    changed = images.clone()
    changed[0, 0, 0, 0] += 0.5
    assert len({key, feature_net_key(changed, labels, 3, 20, 0), feature_net_key(images, labels, 3, 21, 0)}) == 3


def test_a_damaged_entry_is_trained_again_and_replaced(tmp_path, tiny_config, cache, monkeypatch, capsys):
    calls = _counting(monkeypatch)
    config = tiny_config(tmp_path / "a", FAST)
    train_set, _ = prepare_data(config)
    load_or_train_feature_net(tmp_path / "a", train_set, config, save=True)
    (entry,) = (cache / "dcgan-feature-net").iterdir()
    (entry / "model.safetensors").write_bytes(b"garbage")
    load_or_train_feature_net(tmp_path / "b", train_set, tiny_config(tmp_path / "b", FAST), save=True)
    assert len(calls) == 2 and "cached feature network not used" in capsys.readouterr().out
    load_or_train_feature_net(tmp_path / "c", train_set, tiny_config(tmp_path / "c", FAST), save=True)
    assert len(calls) == 2  # the entry was replaced by a good one


def test_the_cache_can_be_turned_off(tmp_path, tiny_config, cache, monkeypatch):
    calls = _counting(monkeypatch)
    for name in ("a", "b"):
        config = tiny_config(tmp_path / name, FAST, "eval.feature_cache=false")
        train_set, _ = prepare_data(config)
        load_or_train_feature_net(tmp_path / name, train_set, config, save=True)
    assert len(calls) == 2 and not cache.exists()


def test_a_cache_entry_holding_other_files_is_left_alone(tmp_path, tiny_config, cache, monkeypatch, capsys):
    """The cache folder may be one the user pointed $GENCORE_CACHE at: only a model folder of ours is replaced."""
    config = tiny_config(tmp_path / "a", FAST)
    train_set, _ = prepare_data(config)
    images, labels = train_set.images, train_set.labels
    key = feature_net_key(images, labels, len(train_set.classes), 2, config.train.seed)
    entry = cache / "dcgan-feature-net" / key
    entry.mkdir(parents=True)
    (entry / "mine.txt").write_text("the user's")
    load_or_train_feature_net(tmp_path / "a", train_set, config, save=True)
    assert (entry / "mine.txt").read_text() == "the user's" and sorted(p.name for p in entry.iterdir()) == ["mine.txt"]
    assert "feature network not cached" in capsys.readouterr().out
    assert (tmp_path / "a" / "feature_net" / "manifest.json").is_file()  # the run itself is unaffected
