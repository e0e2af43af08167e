"""The prior over texts and layouts that makes a conditioned model a model of images alone."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from gencore.errors import CheckpointError, DataError
from hvae_captcha.textprior import TextPrior

VOCAB = "abc"


def test_text_probabilities_sum_to_one_and_follow_the_counts():
    prior = TextPrior.fit(["ab", "ab", "c", "abc"], VOCAB, text_length=3)
    total = sum(math.exp(prior.log_prob("".join(t))) for n in (1, 2, 3) for t in itertools.product(VOCAB, repeat=n))
    assert total == pytest.approx(1.0)
    assert prior.log_prob("ab") > prior.log_prob("cc")  # a and b were counted more often
    assert math.isfinite(prior.log_prob("ccc"))  # smoothed: nothing unseen is impossible
    assert prior.log_prob("abd") == -math.inf and prior.log_prob("aaaa") == -math.inf


def test_layout_probabilities_sum_to_one_over_the_lattice():
    prior = TextPrior.fit(["ab", "ba"], "ab", 2, layouts=[[0.1, 0.6], [0.2, 0.7]], width=4)
    total = 0.0
    for t in itertools.product("ab", repeat=2):
        for q0, q1 in itertools.product(range(4), range(-3, 7)):
            layout = [(q0 + 0.5) / 4, (q1 + 0.5) / 4]
            total += math.exp(prior.log_prob("".join(t), layout))
    # lengths 1 were never seen but are possible: their mass is what is missing from the two-character texts
    one = sum(math.exp(prior.log_prob(ch, [(q + 0.5) / 4])) for ch in "ab" for q in range(4))
    assert total + one == pytest.approx(1.0)
    assert prior.quantize([0.1, 0.6]) == [0.125, 0.625]
    with pytest.raises(ValueError, match="one centre per character"):
        prior.log_prob("ab", [0.5])


def test_samples_follow_the_counts_and_are_seeded():
    texts = ["abcab"] * 40 + ["abc"] * 10
    layouts = [[0.1, 0.3, 0.5, 0.7, 0.9]] * 40 + [[0.2, 0.5, 0.8]] * 10
    prior = TextPrior.fit(texts, VOCAB, 6, layouts=layouts, width=32)
    drawn, where = prior.sample(500, seed=3)
    assert (drawn, where) == prior.sample(500, seed=3) and drawn != prior.sample(500, seed=4)[0]
    assert 330 < sum(len(t) == 5 for t in drawn) < 470  # 40 of 51 counts are for length 5
    assert all(len(c) == len(t) and math.isfinite(prior.log_prob(t, c)) for t, c in zip(drawn, where))
    # 99% of layouts are training layouts (at their column centres), the rest from the smooth model
    real = [prior.quantize(c) for c in layouts[:1] + layouts[-1:]]
    assert sum(c in real for c in where) > 480
    # a training layout is far likelier than a layout only the smooth model knows
    assert prior.log_prob("abc", [0.2, 0.5, 0.8]) > prior.log_prob("abc", [0.2, 0.6, 0.8]) + 3


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="'d' not in the vocabulary"):
        TextPrior.fit(["abd"], VOCAB, 3)
    with pytest.raises(DataError, match="length not in 1..3"):
        TextPrior.fit(["abca"], VOCAB, 3)
    prior = TextPrior.fit(["ab"], VOCAB, 3, layouts=[[0.2, 0.4]], width=8)
    path = prior.save(tmp_path / "text_prior.json")
    assert TextPrior.load(path) == prior
    path.write_text('{"vocabulary": "ab", "length_counts": [1]}')
    with pytest.raises(CheckpointError, match="is not a text prior"):
        TextPrior.load(path)
    path.write_text("{broken")
    with pytest.raises(CheckpointError, match="text_prior.json is not a text prior"):
        TextPrior.load(path)
    raw = json.loads(prior.save(tmp_path / "ok.json").read_text())
    for key, value, message in [("layouts", 5, "layouts must be lists"), ("first_counts", ["a"] * 8, "first_counts"),
                                ("length_counts", [0, 1, 1], "positive numbers"), ("smooth", 2, "smooth")]:  # fmt: skip
        path.write_text(json.dumps({**raw, key: value}))
        with pytest.raises(CheckpointError, match=message):
            TextPrior.load(path)
    assert prior.fits(VOCAB, 3, 8) is None
    assert "vocabulary 'abc'" in prior.fits("ab", 3, 8) and "8 columns" in prior.fits(VOCAB, 3, 16)
