"""A prior over CAPTCHA texts and layouts, so that a conditioned model is also a model of images alone.

A conditioned model gives p(x | t, ℓ): the image given its text t and, for rendered-layout models, the layout ℓ
(every character's centre). With a prior p(t) p(ℓ | t) fitted on the training set it becomes a generative model
of x with the text and layout as discrete latent variables that happen to be observed in training:

* sampling without a text draws t ~ p(t), ℓ ~ p(ℓ | t), then x ~ p(x | t, ℓ);
* since p(x) = Σ_{t,ℓ} p(t) p(ℓ|t) p(x|t,ℓ) ≥ p(t*) p(ℓ*|t*) p(x|t*,ℓ*) for the image's own (t*, ℓ*), the
  conditional bound plus -log p(t*) - log p(ℓ*|t*) bounds -log p(x): a likelihood comparable with an
  unconditioned model's.

The prior is deliberately simple (it costs a few dozen bits per image, about 0.01 bits/dim at 32×128). The length
is a categorical over 1..text_length and the characters independent draws from one categorical over the
vocabulary. Layouts live on a lattice of whole pixel columns (:meth:`TextPrior.quantize`: a layout is used at its
column centres wherever the bound is evaluated or a sample is drawn), and p(ℓ | t) is a mixture:

* with weight 1 - ``smooth``, one of the training layouts with as many characters, uniformly: real layouts, whose
  gaps are not independent (the renderer squeezes the whole text into the width);
* with weight ``smooth``, a smooth model that gives every layout a probability: the first centre a categorical
  over the columns, each next one its predecessor plus a categorical gap.

Every categorical starts with one observation spread evenly over its bins (a pseudo-count of 1/bins each), so no
text or layout has probability 0 (add-one smoothing would give the 255 gap bins the weight of 255 observations).
A held-out layout is rarely a training one, so it costs about log(1/smooth) nats more than under the smooth model
alone: 0.002 bits/dim at ``smooth`` = 0.01.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gencore.checkpoint import atomic_write_text
from gencore.errors import CheckpointError, DataError

FILE_NAME = "text_prior.json"
SMOOTH = 0.01


@dataclass
class TextPrior:
    """Smoothed counts of text lengths 1..text_length and characters, and for a layout prior the training layouts
    (in columns) and the counts of the smooth layout model (first centre, gaps)."""

    vocabulary: str
    length_counts: list[float]  # index i: length i + 1
    char_counts: list[float]  # index i: vocabulary[i]
    width: int = 0  # columns of the layout lattice; 0 = no layout (slot models)
    layouts: list[list[int]] = field(default_factory=list)  # the training layouts, in columns
    smooth: float = SMOOTH  # weight of the smooth layout model in the mixture
    first_counts: list[float] = field(default_factory=list)  # index q: first centre in column q
    gap_counts: list[float] = field(default_factory=list)  # index d + width - 1: next centre d columns further
    _seen: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def fit(
        cls, texts: list[str], vocabulary: str, text_length: int,
        layouts: list[list[float]] | None = None, width: int = 0,
    ) -> TextPrior:  # fmt: skip
        """Count the training texts (and layouts, at ``width`` columns); raises DataError on an unknown character."""
        index = {ch: i for i, ch in enumerate(vocabulary)}
        lengths, chars = _smoothing(text_length), _smoothing(len(vocabulary))
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
            prior.width, prior.first_counts, prior.gap_counts = width, _smoothing(width), _smoothing(2 * width - 1)
            for layout in layouts:
                columns = [min(max(q, 0), width - 1) for q in prior.columns(layout)]
                prior.layouts.append(columns)
                if columns:
                    prior.first_counts[columns[0]] += 1
                for a, b in zip(columns, columns[1:]):
                    prior.gap_counts[b - a + width - 1] += 1
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
            lp += self._layout_log_prob(self.columns(layout))
        return lp

    def _layout_log_prob(self, columns: list[int]) -> float:
        smooth = _log_p(self.first_counts, columns[0]) if 0 <= columns[0] < self.width else -math.inf
        for a, b in zip(columns, columns[1:]):
            d = b - a + self.width - 1
            smooth += _log_p(self.gap_counts, d) if 0 <= d < len(self.gap_counts) else -math.inf
        seen = self._layout_counts()
        same_length = seen.get(len(columns), Counter())
        if not same_length:
            return smooth
        empirical = same_length.get(tuple(columns), 0) / sum(same_length.values())
        if empirical == 0:
            return math.log(self.smooth) + smooth
        return math.log((1 - self.smooth) * empirical + self.smooth * math.exp(smooth))  # smooth > -inf: >= 1 count

    def _layout_counts(self) -> dict[int, Counter]:
        """Training layouts by number of characters (counted once, on first use)."""
        if not self._seen and self.layouts:
            for columns in self.layouts:
                self._seen.setdefault(len(columns), Counter())[tuple(columns)] += 1
        return self._seen

    def sample(self, n: int, seed: int) -> tuple[list[str], list[list[float]] | None]:
        """``n`` texts (and layouts at column centres, for a layout prior), deterministic in ``seed``."""
        rng = random.Random(seed)
        lengths = rng.choices(range(1, len(self.length_counts) + 1), weights=self.length_counts, k=n)
        texts = ["".join(rng.choices(self.vocabulary, weights=self.char_counts, k=k)) for k in lengths]
        if not self.width:
            return texts, None
        by_length: dict[int, list[list[int]]] = {}
        for columns in self.layouts:  # every training layout once: uniform over the training images
            by_length.setdefault(len(columns), []).append(columns)
        layouts = []
        for text in texts:
            known = by_length.get(len(text))
            if known and rng.random() >= self.smooth:
                columns = list(rng.choice(known))
            else:
                columns = rng.choices(range(self.width), weights=self.first_counts)
                gaps = rng.choices(range(1 - self.width, self.width), weights=self.gap_counts, k=len(text) - 1)
                for gap in gaps:
                    columns.append(columns[-1] + gap)
            layouts.append([(c + 0.5) / self.width for c in columns])
        return texts, layouts

    def save(self, path: str | Path) -> Path:
        """Write the prior as JSON (atomically)."""
        raw = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        atomic_write_text(path, json.dumps(raw) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> TextPrior:
        """Read :meth:`save`'s file; a corrupt one raises CheckpointError naming it."""
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8-sig"))
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            prior = cls(**raw)
            prior._check()
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{path} is not a text prior ({str(exc).splitlines()[0]})") from None
        return prior

    def _check(self) -> None:
        """ValueError unless every field has the type and size :meth:`fit` gives it."""
        if not isinstance(self.vocabulary, str) or not isinstance(self.width, int) or self.width < 0:
            raise ValueError("vocabulary must be a string and width a count")
        counts = {"length_counts": self.length_counts, "char_counts": self.char_counts}
        if self.width:
            counts.update(first_counts=self.first_counts, gap_counts=self.gap_counts)
        for name, values in counts.items():
            if not isinstance(values, list) or not values or not all(_positive(v) for v in values):
                raise ValueError(f"{name} must be a non-empty list of positive numbers")
        if len(self.char_counts) != len(self.vocabulary):
            raise ValueError("char_counts do not match the vocabulary")
        if self.width and (len(self.first_counts) != self.width or len(self.gap_counts) != 2 * self.width - 1):
            raise ValueError("layout counts do not match the width")
        if not (_positive(self.smooth) and self.smooth <= 1):
            raise ValueError("smooth must be in (0, 1]")
        if not isinstance(self.layouts, list) or not all(
            isinstance(c, list) and all(isinstance(q, int) and 0 <= q < max(self.width, 1) for q in c)
            for c in self.layouts
        ):
            raise ValueError("layouts must be lists of columns within the width")

    def fits(self, vocabulary: str, text_length: int, width: int) -> str | None:
        """Why this prior cannot serve a model with these settings (None if it can)."""
        if self.vocabulary != vocabulary or len(self.length_counts) != text_length:
            return f"counted for vocabulary {self.vocabulary!r} and text length {len(self.length_counts)}"
        if self.width not in (0, width):
            return f"counted for {self.width} columns, the model is {width} wide"
        return None


def _smoothing(bins: int) -> list[float]:
    """One observation's worth of pseudo-counts, spread evenly over ``bins``."""
    return [1.0 / bins] * bins


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf


def _log_p(counts: list[float], i: int) -> float:
    return math.log(counts[i]) - math.log(sum(counts))
