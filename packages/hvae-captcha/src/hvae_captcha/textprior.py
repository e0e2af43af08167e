"""A prior over CAPTCHA texts and layouts, so that a conditioned model is also a model of images alone.

A conditioned model gives p(x | t, ℓ): the image given its text t and, for rendered-layout models, the layout ℓ
(every character's centre). With a prior p(t) p(ℓ | t) fitted on the training set it becomes a generative model
of x with the text and layout as discrete latent variables that happen to be observed in training:

* sampling without a text draws t ~ p(t), ℓ ~ p(ℓ | t), then x ~ p(x | t, ℓ);
* since p(x) = Σ_{t,ℓ} p(t) p(ℓ|t) p(x|t,ℓ) ≥ p(t*) p(ℓ*|t*) p(x|t*,ℓ*) for the image's own (t*, ℓ*), the
  conditional bound plus -log p(t*) - log p(ℓ*|t*) bounds -log p(x): a likelihood comparable with an
  unconditioned model's.

The prior is deliberately simple (its cost is a few dozen bits per image, about 0.01 bits/dim at 32×128):
the length is a categorical over 1..text_length, characters are independent draws from one categorical over the
vocabulary, and the layout is quantized to the model's pixel columns — the first centre a categorical over the
columns, each next one its predecessor plus a categorical gap. Every count starts at 1 (add-one smoothing), so
no text or layout of a held-out image has probability 0. Layouts are a lattice of whole columns: a layout is
used at its column centres (:meth:`TextPrior.quantize`) wherever the bound is evaluated or a sample is drawn.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from gencore.checkpoint import atomic_write_text
from gencore.errors import CheckpointError, DataError

FILE_NAME = "text_prior.json"


@dataclass
class TextPrior:
    """Add-one-smoothed counts: text lengths 1..text_length, characters, first centre and gaps (in columns)."""

    vocabulary: str
    length_counts: list[int]  # index i: length i + 1
    char_counts: list[int]  # index i: vocabulary[i]
    width: int = 0  # columns of the layout lattice; 0 = no layout (slot models)
    first_counts: list[int] | None = None  # index q: first centre in column q
    gap_counts: list[int] | None = None  # index d + width - 1: next centre d columns further

    @classmethod
    def fit(
        cls, texts: list[str], vocabulary: str, text_length: int,
        layouts: list[list[float]] | None = None, width: int = 0,
    ) -> TextPrior:  # fmt: skip
        """Count the training texts (and layouts, at ``width`` columns); raises DataError on an unknown character."""
        index = {ch: i for i, ch in enumerate(vocabulary)}
        lengths, chars = [1] * text_length, [1] * len(vocabulary)
        for text in texts:
            if not 1 <= len(text) <= text_length:
                raise DataError(f"text {text!r}: length not in 1..{text_length}")
            lengths[len(text) - 1] += 1
            for ch in text:
                if ch not in index:
                    raise DataError(f"text {text!r}: character {ch!r} not in the vocabulary {vocabulary!r}")
                chars[index[ch]] += 1
        prior = cls(vocabulary, lengths, chars)
        if layouts is not None:
            if width < 1:
                raise ValueError("a layout prior needs the width of its lattice")
            prior.width, prior.first_counts, prior.gap_counts = width, [1] * width, [1] * (2 * width - 1)
            for layout in layouts:
                columns = prior.columns(layout)
                if columns:
                    prior.first_counts[min(max(columns[0], 0), width - 1)] += 1
                for a, b in zip(columns, columns[1:]):
                    prior.gap_counts[min(max(b - a, 1 - width), width - 1) + width - 1] += 1
        return prior

    def columns(self, layout: list[float]) -> list[int]:
        """A layout (centres as fractions of the width) -> the columns of the lattice it falls in."""
        return [math.floor(c * self.width) for c in layout]

    def quantize(self, layout: list[float]) -> list[float]:
        """A layout moved to the centres of its columns: the layout the bound and the samples use."""
        return [(q + 0.5) / self.width for q in self.columns(layout)]

    def log_prob(self, text: str, layout: list[float] | None = None) -> float:
        """log p(text) + log p(layout | text) in nats (the layout term only for a layout prior)."""
        lp = _log_p(self.length_counts, len(text) - 1) if 1 <= len(text) <= len(self.length_counts) else -math.inf
        index = {ch: i for i, ch in enumerate(self.vocabulary)}
        for ch in text:
            lp += _log_p(self.char_counts, index[ch]) if ch in index else -math.inf
        if self.width:
            if layout is None or len(layout) != len(text):
                raise ValueError(f"the layout prior needs one centre per character of {text!r}")
            columns = self.columns(layout)
            lp += _log_p(self.first_counts, columns[0]) if 0 <= columns[0] < self.width else -math.inf
            for a, b in zip(columns, columns[1:]):
                d = b - a + self.width - 1
                lp += _log_p(self.gap_counts, d) if 0 <= d < len(self.gap_counts) else -math.inf
        return lp

    def sample(self, n: int, seed: int) -> tuple[list[str], list[list[float]] | None]:
        """``n`` texts (and layouts at column centres, for a layout prior), deterministic in ``seed``."""
        rng = random.Random(seed)
        lengths = rng.choices(range(1, len(self.length_counts) + 1), weights=self.length_counts, k=n)
        texts = ["".join(rng.choices(self.vocabulary, weights=self.char_counts, k=k)) for k in lengths]
        if not self.width:
            return texts, None
        layouts = []
        for text in texts:
            q = rng.choices(range(self.width), weights=self.first_counts)[0]
            columns = [q]
            for _ in text[1:]:
                columns.append(columns[-1] + rng.choices(range(1 - self.width, self.width), weights=self.gap_counts)[0])
            layouts.append([(c + 0.5) / self.width for c in columns])
        return texts, layouts

    def save(self, path: str | Path) -> Path:
        """Write the counts as JSON (atomically)."""
        atomic_write_text(path, json.dumps(asdict(self)) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> TextPrior:
        """Read :meth:`save`'s file; a corrupt one raises CheckpointError naming it."""
        try:
            raw = json.loads(Path(path).read_text())
            prior = cls(**raw)
            if len(prior.char_counts) != len(prior.vocabulary) or not prior.length_counts:
                raise ValueError("counts do not match the vocabulary")
            if prior.width and (len(prior.first_counts or ()) != prior.width
                                or len(prior.gap_counts or ()) != 2 * prior.width - 1):  # fmt: skip
                raise ValueError("layout counts do not match the width")
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{path} is not a text prior ({str(exc).splitlines()[0]})") from None
        return prior


def _log_p(counts: list[int], i: int) -> float:
    return math.log(counts[i]) - math.log(sum(counts))
