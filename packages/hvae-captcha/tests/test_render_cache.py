"""Rendered data: each image is drawn the first time it is used (from a stream of its own), and the whole set is
kept in the user's cache once drawn, so that a later run reads the same images, texts and layouts."""

from __future__ import annotations

import json

import pytest
import torch

from gencore.config import to_dict
from gencore.errors import ConfigError
from hvae_captcha import data as data_module
from hvae_captcha.config import DataConfig, HVAEConfig, ModelConfig
from hvae_captcha.data import RENDER_CACHE, CaptchaDataset, LazyRenders, load_data, render_captchas, render_key
from hvae_captcha.model import encode_texts


def no_render(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
    raise AssertionError("rendered although the set is in the cache")


def test_a_second_load_reads_the_same_set_from_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path))
    data, model = DataConfig(num_images=12), ModelConfig()
    first = load_data(data, model, seed=3)
    assert not (tmp_path / RENDER_CACHE).exists()  # nothing drawn yet: nothing cached
    first.images  # noqa: B018 - draws every image
    entries = list((tmp_path / RENDER_CACHE).iterdir())
    assert [p.name for p in entries] == [render_key(data, model, model.vocabulary, 3)]

    monkeypatch.setattr(data_module, "render_one", no_render)
    again = load_data(data, model, seed=3)
    assert torch.equal(first.images, again.images) and first.texts == again.texts
    assert first.layouts == again.layouts

    with pytest.raises(AssertionError, match="rendered although"):  # another seed is another entry
        load_data(data, model, seed=4).image(0)
    assert render_key(data, model, model.vocabulary, 3) != render_key(DataConfig(num_images=12, noise_dots=0), model,
                                                                     model.vocabulary, 3)  # fmt: skip
    assert render_key(data, model, model.vocabulary, 3) != render_key(data, ModelConfig(channels=3),
                                                                     model.vocabulary, 3)  # fmt: skip


def test_a_damaged_entry_is_rendered_again_and_replaced(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path))
    data, model = DataConfig(num_images=8), ModelConfig()
    first = load_data(data, model, seed=0)
    first_images = first.images
    entry = tmp_path / RENDER_CACHE / render_key(data, model, model.vocabulary, 0)
    blob = entry / "render.safetensors"
    blob.write_bytes(blob.read_bytes()[:-5] + b"xxxxx")
    again = load_data(data, model, seed=0)
    assert "cached CAPTCHAs not used" in capsys.readouterr().out
    assert torch.equal(first_images, again.images) and first.layouts == again.layouts
    monkeypatch.setattr(data_module, "render_one", no_render)
    assert torch.equal(load_data(data, model, seed=0).images, first_images)  # the entry was replaced


def test_images_are_drawn_when_first_used_in_any_order_and_are_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path))
    data, model = DataConfig(num_images=10, text_length=4), ModelConfig()
    lazy = load_data(data, model, seed=5)
    renders = lazy._renders
    assert isinstance(renders, LazyRenders) and not bool(renders.done.any())
    assert len(lazy.texts) == 10 and all(len(t) == 4 for t in lazy.texts)  # texts without a single render
    held = lazy.subset([7, 2])
    x7 = held.image(0)
    assert renders.done.tolist() == [i == 7 for i in range(10)]  # only what was asked for
    pils, texts, layouts = render_captchas(data, model.vocabulary, 10, seed=5)  # drawn in order, all at once
    assert texts == lazy.texts and held.layouts == [layouts[7], layouts[2]]
    assert torch.equal(x7, torch.tensor(data_module._to_array(pils[7], model)))
    assert torch.equal(lazy.images, torch.stack([torch.tensor(data_module._to_array(p, model)) for p in pils]))
    assert lazy.layouts == layouts and bool(renders.done.all())
    # the first k of a larger set are the set of k
    assert render_captchas(data, model.vocabulary, 3, seed=5)[1] == texts[:3]


def test_the_training_set_renders_each_item_it_serves(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path))
    model = ModelConfig(conditioned=True, text_layout="rendered")
    data = load_data(DataConfig(num_images=6), model, seed=1)
    dataset = CaptchaDataset(data, model)
    x, y = dataset[4]
    assert x.shape == (1, model.height, model.width) and -1 <= x.min() < x.max() <= 1
    assert data._renders.done.tolist() == [False] * 4 + [True, False]
    assert torch.equal(y, encode_texts(model, [data.texts[4]], [data.layout(4)])[0])
    assert CaptchaDataset(data)[4][1].shape == (0,)  # unconditioned: an empty vector


def test_images_rendered_by_dataloader_workers_are_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path))
    data = load_data(DataConfig(num_images=8), ModelConfig(), seed=2)
    data.share_memory()
    loader = torch.utils.data.DataLoader(CaptchaDataset(data), batch_size=4, num_workers=2)
    served = torch.cat([x for x, _ in loader])
    assert bool(data._renders.done.all())  # drawn in the workers, seen here
    assert not (tmp_path / RENDER_CACHE).exists()  # a worker does not write the cache
    assert torch.equal(served, data.images.float() / 127.5 - 1)
    assert len(list((tmp_path / RENDER_CACHE).iterdir())) == 1  # the main process does, once it sees all drawn


def test_a_request_for_most_of_the_set_draws_and_caches_all_of_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path))
    data = load_data(DataConfig(num_images=10), ModelConfig(), seed=0)
    train = data.subset(list(range(5)))
    train.layouts  # noqa: B018 - what fitting a text prior asks for at the end of a run
    assert bool(data._renders.done.all()) and len(list((tmp_path / RENDER_CACHE).iterdir())) == 1


def test_format_1_draws_the_whole_set_from_one_stream_before_training(tmp_path, monkeypatch):
    """Runs saved before data.render_format existed read as format 1 (tests/faults/test_legacy_runs.py checks that
    such a run resumes bit for bit on its own images)."""
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path))
    data, model = DataConfig(num_images=6, render_format=1), ModelConfig()
    loaded = load_data(data, model, seed=0)
    assert loaded._renders is None and len(list((tmp_path / RENDER_CACHE).iterdir())) == 1  # drawn and cached
    _, texts, layouts = render_captchas(data, model.vocabulary, 6, seed=0)
    assert loaded.texts == texts and loaded.layouts == layouts
    assert texts != render_captchas(DataConfig(num_images=6), model.vocabulary, 6, seed=0)[1]  # format 2 differs
    assert render_key(data, model, model.vocabulary, 0) != render_key(DataConfig(num_images=6), model,
                                                                     model.vocabulary, 0)  # fmt: skip
    with pytest.raises(ConfigError, match="data.render_format must be one of 1, 2, got 3"):
        DataConfig(render_format=3)


def test_a_model_folder_saved_before_the_render_format_reads_as_format_1(tmp_path):
    from hvae_captcha.runs import run_config
    from hvae_captcha.train import RUN_CONFIG_FILE

    (tmp_path / "model").mkdir()
    saved = to_dict(HVAEConfig())
    del saved["data"]["render_format"]
    (tmp_path / "model" / RUN_CONFIG_FILE).write_text(json.dumps(saved))
    (tmp_path / "model" / "config.json").write_text("{}")
    assert run_config(tmp_path / "model").data.render_format == 1


def test_training_on_images_rendered_as_it_goes_equals_training_on_the_cached_set(tmp_path, monkeypatch, tiny_config):
    from gencore.testing import assert_resume_exact, assert_same_tensors, trainer_tensors
    from hvae_captcha.train import build_trainer

    caches = iter(range(10))

    def make(run_dir, max_steps):  # an empty cache for every Trainer: each renders its images as it goes
        monkeypatch.setenv("GENCORE_CACHE", str(tmp_path / f"cache{next(caches)}"))
        trainer = build_trainer(tiny_config(run_dir, f"train.max_steps={max_steps}", "train.eval_every=2"))
        assert isinstance(trainer.loader.dataset.data._renders, LazyRenders)
        return trainer

    assert_resume_exact(make, tmp_path, stop_at=3, total=5)  # the resumed Trainer renders them again
    lazy = make(tmp_path / "lazy", 5)
    lazy.fit()
    assert len(list((tmp_path / "cache3" / RENDER_CACHE).iterdir())) == 1  # the text prior drew the whole set
    cached = build_trainer(tiny_config(tmp_path / "cached", "train.max_steps=5", "train.eval_every=2"))
    assert cached.loader.dataset.data._renders is None  # read from cache3
    cached.fit()
    assert_same_tensors(trainer_tensors(cached), trainer_tensors(lazy))


def test_once_half_the_set_is_drawn_item_by_item_the_rest_is_drawn_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path))
    data = load_data(DataConfig(num_images=10), ModelConfig(), seed=0)
    dataset = CaptchaDataset(data)  # unconditioned: no text prior will ask for the whole set
    for i in range(4):
        dataset[i]
    assert int(data._renders.done.sum()) == 4 and not (tmp_path / RENDER_CACHE).exists()
    dataset[9]
    assert bool(data._renders.done.all()) and len(list((tmp_path / RENDER_CACHE).iterdir())) == 1
