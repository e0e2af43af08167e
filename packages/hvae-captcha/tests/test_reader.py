"""The CNN text reader behind ``evaluate --text-accuracy``."""

from __future__ import annotations

import torch

from hvae_captcha.config import DataConfig, ModelConfig
from hvae_captcha.data import load_data
from hvae_captcha.reader import ReaderConfig, text_accuracy, train_reader


def test_reader_learns_rendered_texts_and_scores_them():
    model = ModelConfig(height=16, width=64, inner_config=[], text_length=3)
    data = load_data(DataConfig(num_images=24, text_length=3, alphabet="ab2"), model, seed=0)
    config = ReaderConfig(1, 16, 64, "ab2", text_length=3, width_features=16)
    reader = train_reader(data.images, data.texts, config, steps=100, batch_size=24)
    seen = text_accuracy(reader, data.images.float() / 255, data.texts)
    assert seen["char_accuracy"] > 0.85  # it fits its own training images
    blank = text_accuracy(reader, torch.ones(24, 1, 16, 64), data.texts)
    assert 0 <= blank["text_accuracy"] <= blank["char_accuracy"] <= 0.6  # a white image is not the text
    read = reader.read(data.images[:4].float() / 255)
    assert len(read) == 4 and all(set(t) <= set("ab2") and len(t) <= 3 for t in read)
