"""Music-symbol data: the embedded font glyphs, class folders, the index file and HOMUS stroke files.

Every source becomes a :class:`SymbolSet`: grey uint8 images (N, 1, S, S) with white background and black ink,
a class index and a writer index per image. The generator draws its style from other images of the same writer.

* Embedded default: the SMuFL glyphs of the music fonts that the ``verovio`` wheel ships (the WOFF2 embedded in
  ``verovio/data/<Font>.css``, loaded by Pillow), each font a writer, with handwriting-like augmentation (elastic
  distortion, stroke width, rotation, shear, scale). ``beam``, ``stem`` and ``barlineSingle`` are not font glyphs
  in SMuFL and are drawn as strokes with the font's pen; the rests get the staff line that tells a whole rest
  (hanging below it) from a half rest (sitting on it).
* Class folders: ``<root>/<class>/*.png`` (one writer, named after the root) or ``<root>/<writer>/<class>/*.png``.
  A folder holds images or sub-folders, never both (gencore.data.refuse_mixed): loose images beside class or
  writer folders, or image sub-folders inside a class folder, are refused instead of silently left out.
  Rendering the original preset's 4 fonts at 128×128 takes about 15 s on one CPU thread, so the training set is
  kept in the user's cache (``gencore.fileio.cache_dir()``, folder ``ganwriting-music-glyphs``) under a hash of
  everything it depends on (:func:`glyph_key`); a later run with the same settings and seed reads the very same
  images from there (verified against the entry's manifest; a damaged entry is rendered again and replaced).
* Index file: lines ``path<TAB>class[<TAB>writer]`` (written by ``ganwriting-music read-classes``); UTF-8 with or
  without a byte-order mark, LF or CRLF. Paths are relative to the index file's folder, absolute ones are read as
  they are (gencore.paths.listed_path).
* HOMUS: one ``.txt`` per symbol, line 1 the class name, each further line one stroke ``x,y;x,y;...``; the folder
  above a file is its writer.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch.utils.data import Dataset

from ganwriting_music.config import CLASSES, FONTS, DataConfig
from gencore.checkpoint import atomic_cache_dir, load_tree, save_tree, verify_dir
from gencore.data import (
    IMAGE_EXTENSIONS,
    announce,
    count_summary,
    folder_layout,
    load_image,
    refuse_mixed,
    split_indices,
)
from gencore.distributed import is_launch_main
from gencore.errors import CheckpointError, DataError, OutputError
from gencore.fileio import cache_dir
from gencore.paths import listed_path, read_text_lines
from gencore.seeding import torch_seed

__all__ = [
    "AMBIGUOUS_CLASSES", "CLASS_ALIASES", "CODEPOINTS", "HOMUS_TO_SMUFL", "SymbolSet", "resolve_class",
    "nearest_classes", "StyleDataset", "canonical_class", "load_font", "render_glyph",
    "augment", "font_symbols", "cached_font_symbols", "read_class_folders", "write_index", "read_index",
    "parse_homus", "render_strokes",
    "read_homus", "load_source", "fit_square", "split_by_writer", "train_test_split",
]  # fmt: skip

#: SMuFL code points of the glyph classes (beam, stem and barlineSingle are drawn, see :func:`render_glyph`).
CODEPOINTS: dict[str, int] = {
    "accidentalFlat": 0xE260, "accidentalNatural": 0xE261, "accidentalSharp": 0xE262, "cClef": 0xE05C,
    "fClef": 0xE062, "gClef": 0xE050, "flag8thUp": 0xE240, "flag8thDown": 0xE241, "flag16thUp": 0xE242,
    "flag16thDown": 0xE243, "noteheadWhole": 0xE0A2, "noteheadHalf": 0xE0A3, "noteheadBlack": 0xE0A4,
    "restWhole": 0xE4E3, "restHalf": 0xE4E4, "restQuarter": 0xE4E5, "rest8th": 0xE4E6,
}  # fmt: skip

#: Line thickness of the drawn classes in staff spaces (SMuFL engraving defaults), and a per-font pen factor:
#: the handwritten-looking fonts draw with a heavier, rounder pen.
_LINE_SP = {"stem": 0.12, "barlineSingle": 0.16, "beam": 0.5, "staffLine": 0.13}
_PEN = {"Bravura": 1.0, "Leipzig": 1.1, "Leland": 1.15, "Gootville": 1.6, "Petaluma": 1.7}

#: HOMUS class names that have a SMuFL counterpart among the 20 classes; other HOMUS classes keep their name.
HOMUS_TO_SMUFL: dict[str, str] = {
    "Barline": "barlineSingle", "C-Clef": "cClef", "F-Clef": "fClef", "G-Clef": "gClef", "Flat": "accidentalFlat",
    "Natural": "accidentalNatural", "Sharp": "accidentalSharp", "Eighth-Rest": "rest8th",
    "Quarter-Rest": "restQuarter", "Whole-Note": "noteheadWhole",
}  # fmt: skip
HOMUS_CLASSES = (
    "12-8-Time",
    "2-2-Time",
    "2-4-Time",
    "3-4-Time",
    "3-8-Time",
    "4-4-Time",
    "6-8-Time",
    "9-8-Time",
    "Barline",
    "C-Clef",
    "Common-Time",
    "Cut-Time",
    "Dot",
    "Double-Sharp",
    "Eighth-Note",
    "Eighth-Rest",
    "F-Clef",
    "Flat",
    "G-Clef",
    "Half-Note",
    "Natural",
    "Quarter-Note",
    "Quarter-Rest",
    "Sharp",
    "Sixteenth-Note",
    "Sixteenth-Rest",
    "Sixty-Four-Note",
    "Sixty-Four-Rest",
    "Thirty-Two-Note",
    "Thirty-Two-Rest",
    "Whole-Half-Rest",
    "Whole-Note",
)


#: Class names of other data sets that name one of the 20 classes (matched like the classes themselves: case,
#: ``-``, ``_`` and spaces ignored). DeepScoresV2 splits noteheads by staff position and size and names clefs by
#: kind; MUSCIMA++ 2.0 uses SMuFL-like names; MUSCIMA++ 1.0 (what Mashcima reads) uses its own.
CLASS_ALIASES: dict[str, str] = {
    # DeepScoresV2
    "clefG": "gClef", "clefF": "fClef", "clefCAlto": "cClef", "clefCTenor": "cClef",
    "noteheadBlackOnLine": "noteheadBlack", "noteheadBlackInSpace": "noteheadBlack",
    "noteheadBlackOnLineSmall": "noteheadBlack", "noteheadBlackInSpaceSmall": "noteheadBlack",
    "noteheadHalfOnLine": "noteheadHalf", "noteheadHalfInSpace": "noteheadHalf",
    "noteheadHalfOnLineSmall": "noteheadHalf", "noteheadHalfInSpaceSmall": "noteheadHalf",
    "noteheadWholeOnLine": "noteheadWhole", "noteheadWholeInSpace": "noteheadWhole",
    "noteheadWholeOnLineSmall": "noteheadWhole", "noteheadWholeInSpaceSmall": "noteheadWhole",
    "accidentalFlatSmall": "accidentalFlat", "accidentalNaturalSmall": "accidentalNatural",
    "accidentalSharpSmall": "accidentalSharp", "keyFlat": "accidentalFlat", "keyNatural": "accidentalNatural",
    "keySharp": "accidentalSharp",
    # MUSCIMA++ 2.0
    "noteheadFull": "noteheadBlack", "barline": "barlineSingle",
    # MUSCIMA++ 1.0 (g-clef, f-clef and c-clef already match gClef, fClef and cClef)
    "notehead-full": "noteheadBlack", "sharp": "accidentalSharp", "flat": "accidentalFlat",
    "natural": "accidentalNatural", "whole_rest": "restWhole", "half_rest": "restHalf",
    "quarter_rest": "restQuarter", "8th_rest": "rest8th", "thin_barline": "barlineSingle",
}  # fmt: skip

#: Names that could be more than one class: refused with the candidates, never guessed.
AMBIGUOUS_CLASSES: dict[str, tuple[str, ...]] = {
    "notehead-empty": ("noteheadHalf", "noteheadWhole"),  # MUSCIMA++ 1.0: half and whole noteheads alike
    "8th_flag": ("flag8thUp", "flag8thDown"), "16th_flag": ("flag16thUp", "flag16thDown"),  # MUSCIMA++ 1.0
    "clef": ("gClef", "fClef", "cClef"),  # (``cleff`` is DeepScoresV2's clefF in lower case: fClef)
    "notehead": ("noteheadBlack", "noteheadHalf", "noteheadWhole"), "rest": ("restWhole", "restHalf",
    "restQuarter", "rest8th"), "flag": ("flag8thUp", "flag8thDown", "flag16thUp", "flag16thDown"),
    "accidental": ("accidentalFlat", "accidentalNatural", "accidentalSharp"),
}  # fmt: skip


def _key(name: str) -> str:
    """How class names are compared: lower case, without ``-``, ``_``, spaces and dots."""
    return re.sub(r"[\s\-_.]+", "", name.strip().lower())


def resolve_class(name: str, classes: Sequence[str]) -> str | None:
    """The class in ``classes`` that ``name`` names (a class name in any case, or a :data:`CLASS_ALIASES` name),
    or None; an ambiguous name (:data:`AMBIGUOUS_CLASSES`) also gives None (:func:`canonical_class` says why)."""
    key = _key(name)
    by_key = {_key(c): c for c in classes}
    if key in by_key:
        return by_key[key]
    target = {_key(a): t for a, t in CLASS_ALIASES.items()}.get(key)
    return by_key.get(_key(target)) if target is not None else None


def nearest_classes(name: str, classes: Sequence[str], n: int = 3) -> list[str]:
    """Up to ``n`` classes whose names (or alias names) look most like ``name``."""
    import difflib

    candidates = {_key(c): c for c in classes}
    for alias, target in CLASS_ALIASES.items():
        if target in classes:
            candidates.setdefault(_key(alias), target)
    found: list[str] = []
    for key in difflib.get_close_matches(_key(name), list(candidates), n=3 * n, cutoff=0.4):
        if candidates[key] not in found:
            found.append(candidates[key])
    return found[:n]


def canonical_class(name: str, classes: Sequence[str], where: str = "") -> str:
    """The class in ``classes`` that ``name`` names: case-insensitively (``gclef`` -> ``gClef``), or through
    :data:`CLASS_ALIASES` (DeepScoresV2 ``clefG``, ``noteheadBlackOnLine``; MUSCIMA++ ``notehead-full``...).

    An ambiguous name (``notehead-empty``, ``clef``) or one that names no class raises DataError: one line
    naming the name and the nearest known classes."""
    found = resolve_class(name, classes)
    if found is not None:
        return found
    key = _key(name)
    ambiguous = {_key(a): c for a, c in AMBIGUOUS_CLASSES.items()}.get(key)
    if ambiguous is not None:
        options = [c for c in ambiguous if c in classes] or list(ambiguous)
        raise DataError(f"{where}class {name!r} is ambiguous: it could be {' or '.join(options)}; rename it to "
                        "one of them")  # fmt: skip
    target = {_key(a): t for a, t in CLASS_ALIASES.items()}.get(key)
    if target is not None:
        raise DataError(f"{where}class {name!r} means {target}, which is not among the classes "
                        f"({', '.join(classes)})")  # fmt: skip
    close = nearest_classes(name, classes) if name.strip() else []
    hint = f"; nearest known: {', '.join(close)}" if close else ""
    raise DataError(f"{where}unknown class {name!r}{hint} (all: {', '.join(classes)}; aliases: see README)")


# --- the symbol set ------------------------------------------------------------------------------------------


@dataclass
class SymbolSet:
    """Images (N, 1, S, S) uint8 (255 = background), labels and writers (N,) int64, and their names."""

    images: torch.Tensor
    labels: torch.Tensor
    writers: torch.Tensor
    classes: list[str]
    writer_names: list[str]

    def __post_init__(self) -> None:
        if not (len(self.images) == len(self.labels) == len(self.writers)):
            raise DataError(f"{len(self.images)} images, {len(self.labels)} labels, {len(self.writers)} writers")
        if len(self.images) == 0:
            raise DataError("the data set is empty")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: Sequence[int] | torch.Tensor) -> SymbolSet:
        """The images at ``indices`` (same class and writer names)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return SymbolSet(self.images[idx], self.labels[idx], self.writers[idx], self.classes, self.writer_names)

    def of_writers(self, names: Sequence[str]) -> SymbolSet:
        """Only the images of the named writers, whose names alone the result lists (renumbered in the data's
        order); unknown names raise DataError."""
        unknown = sorted(set(names) - set(self.writer_names))
        if unknown:
            raise DataError(f"unknown writer(s) {unknown}; this data has {self.writer_names}")
        kept = [n for n in self.writer_names if n in set(names)]  # the data's order
        keep = torch.tensor([self.writer_names.index(n) for n in kept])
        part = self.subset(torch.nonzero(torch.isin(self.writers, keep)).flatten())
        # renumbered: the other writers are gone from the names too (a held-out writer is no model writer)
        remap = torch.full((len(self.writer_names),), -1, dtype=torch.long)
        remap[keep] = torch.arange(len(kept))
        return SymbolSet(part.images, part.labels, remap[part.writers], part.classes, kept)

    def floats(self, indices: torch.Tensor | None = None) -> torch.Tensor:
        """Images as float in [-1, 1] (background +1, ink -1)."""
        x = self.images if indices is None else self.images[indices]
        return x.float() / 127.5 - 1.0

    def counts(self) -> dict[str, int]:
        """Images per class name."""
        return {c: int((self.labels == i).sum()) for i, c in enumerate(self.classes)}


def concat(sets: Sequence[SymbolSet]) -> SymbolSet:
    """Join symbol sets with the same classes; writers are merged by name."""
    classes = sets[0].classes
    names: list[str] = []
    for s in sets:
        if s.classes != classes:
            raise DataError("cannot join symbol sets with different class lists")
        names += [n for n in s.writer_names if n not in names]
    writers = [torch.tensor([names.index(s.writer_names[w]) for w in s.writers.tolist()], dtype=torch.long)
               for s in sets]  # fmt: skip
    return SymbolSet(torch.cat([s.images for s in sets]), torch.cat([s.labels for s in sets]), torch.cat(writers),
                     list(classes), names)  # fmt: skip


# --- fonts and glyphs ---------------------------------------------------------------------------------------


def _verovio_data() -> Path:
    try:
        import verovio
    except ImportError:  # pragma: no cover - verovio is a dependency
        raise DataError("the embedded data needs the verovio package: pip install verovio") from None
    return Path(verovio.__file__).parent / "data"


@functools.lru_cache(maxsize=16)
def _font_bytes(name: str) -> bytes:
    if name not in FONTS:
        raise DataError(f"unknown font {name!r} (the verovio wheel ships {', '.join(FONTS)})")
    css = _verovio_data() / f"{name}.css"
    try:
        match = re.search(r"base64,([A-Za-z0-9+/=]+)", css.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read {css}: {exc.strerror or exc}") from None
    if match is None:
        raise DataError(f"{css} holds no embedded font")
    return base64.b64decode(match.group(1))


def load_font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """The verovio font ``name`` (one of :data:`FONTS`) at ``size`` pixels per em (an em is 4 staff spaces)."""
    return ImageFont.truetype(io.BytesIO(_font_bytes(name)), size)


def fit_square(ink: np.ndarray, size: int, margin: float = 0.1) -> np.ndarray:
    """Crop an ink map (H, W, float, 1 = ink) to its bounding box, pad it to a centred square with ``margin``
    of the side on each edge, and resize to ``size`` (area filter); all-empty maps raise DataError."""
    rows, cols = np.nonzero(ink > 0.05)
    if len(rows) == 0:
        raise DataError("the symbol has no ink")
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = crop.shape
    side = int(math.ceil(max(h, w) / (1 - 2 * margin)))
    canvas = np.zeros((side, side), np.float32)
    y0, x0 = (side - h) // 2, (side - w) // 2
    canvas[y0 : y0 + h, x0 : x0 + w] = crop
    t = torch.from_numpy(canvas)[None, None]
    return F.interpolate(t, size=(size, size), mode="area")[0, 0].numpy()


def _draw_line_class(name: str, font: str, sp: float, rng: np.random.Generator) -> np.ndarray:
    """Ink map of a stroke-drawn class at ``sp`` pixels per staff space."""
    pen = _PEN[font]
    if name == "beam":  # a thick slanted bar between two stems
        length, rise = 3.2 * sp, float(rng.uniform(-0.9, 0.9)) * sp
        thick = _LINE_SP["beam"] * sp * (0.9 + 0.2 * pen / 1.7)
        w, h = int(length + 4), int(abs(rise) + thick + 4)
        img = Image.new("L", (w, h), 0)
        y_left = 2 + (abs(rise) if rise > 0 else 0)
        y_right = y_left - rise
        ImageDraw.Draw(img).polygon([(2, y_left), (w - 2, y_right), (w - 2, y_right + thick), (2, y_left + thick)],
                                    fill=255)  # fmt: skip
        return np.asarray(img, np.float32) / 255
    height = (4.0 if name == "barlineSingle" else 3.5) * sp
    thick = max(1.0, _LINE_SP[name] * sp * pen)
    img = Image.new("L", (int(thick + 4), int(height + 4)), 0)
    ImageDraw.Draw(img).rectangle([2, 2, 2 + thick, 2 + height], fill=255)
    return np.asarray(img, np.float32) / 255


def render_glyph(name: str, font: str, size: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """One class drawn with ``font``: an ink map (size, size) float in [0, 1], cropped and fitted to a square."""
    rng = rng or np.random.default_rng(0)
    em = 200  # render large, then fit: glyphs extend far above and below the baseline
    sp = em / 4
    if name in ("beam", "stem", "barlineSingle"):
        return fit_square(_draw_line_class(name, font, sp, rng), size)
    if name not in CODEPOINTS:
        raise DataError(f"unknown class {name!r} for the embedded fonts (known: {', '.join(CLASSES)})")
    glyph = chr(CODEPOINTS[name])
    f = load_font(font, em)
    img = Image.new("L", (4 * em, 4 * em), 0)
    draw = ImageDraw.Draw(img)
    draw.text((em, 2 * em), glyph, font=f, fill=255, anchor="ls")
    box = img.getbbox()
    if box is None:
        raise DataError(f"font {font} has no glyph for {name}")
    if name in ("restWhole", "restHalf"):  # the staff line: whole rests hang from it, half rests sit on it
        x0, y0, x1, y1 = box
        y = y0 if name == "restWhole" else y1
        t = max(1.0, _LINE_SP["staffLine"] * sp * _PEN[font])
        ext = 0.45 * (x1 - x0)
        draw.rectangle([x0 - ext, y - t / 2, x1 + ext, y + t / 2], fill=255)
    return fit_square(np.asarray(img, np.float32) / 255, size)


@dataclass(frozen=True)
class WriterPen:
    """The habits of one writer that every symbol it draws shares: slant (shear), tilt (degrees), width/height
    ratio and stroke width change (pixels of the 2× master raster). All zero: no habit (plain augmentation)."""

    slant: float = 0.0
    tilt: float = 0.0
    aspect: float = 1.0
    stroke: int = 0


def writer_pen(name: str, strength: float) -> WriterPen:
    """A writer's fixed :class:`WriterPen`, drawn from a generator seeded by the writer's name (so a font has the
    same habits in every run and split); ``strength`` scales them (0: none)."""
    if strength <= 0:
        return WriterPen()
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    slant, tilt, aspect, stroke = (float(v) for v in rng.uniform(-1, 1, 4))
    # slant up to ±0.3 shear, tilt ±5°, aspect 0.8..1.25, stroke -1..+2 px at strength 1
    return WriterPen(slant=0.3 * strength * slant, tilt=5.0 * strength * tilt,
                     aspect=math.exp(0.22 * strength * aspect),
                     stroke=int(round(strength * (0.5 + 1.5 * stroke))))  # fmt: skip


def augment(ink: torch.Tensor, config: DataConfig, size: int, generator: torch.Generator,
            pen: WriterPen | None = None) -> torch.Tensor:  # fmt: skip
    """Handwriting-like variations of ink maps (N, 1, M, M) at the 2× master size M -> (N, 1, size, size).

    One ``grid_sample`` applies a random affine map (rotation, shear, anisotropic scale, a small shift) plus a
    smooth elastic displacement field; stroke width changes by dilation/erosion with a square kernel; the result
    is area-downsampled, which also smooths the edges like a scanned pen stroke. ``pen`` adds the writer's fixed
    habits on top of the random variation.
    """
    n, _, m, _ = ink.shape
    pen = pen or WriterPen()

    def uniform(lo: float, hi: float, shape: tuple[int, ...] = ()) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand((n, *shape), generator=generator)

    angle = (uniform(-config.rotation, config.rotation) + pen.tilt) * math.pi / 180
    sx = uniform(*config.scale)
    sy = sx * uniform(0.92, 1.08) * pen.aspect
    shear = uniform(-config.shear, config.shear) + pen.slant
    shift = uniform(-0.05, 0.05, (2,))
    cos, sin = angle.cos(), angle.sin()
    # theta maps output coordinates to input ones, so the inverse scale enlarges the glyph
    a = torch.stack([torch.stack([cos / sx, (-sin + shear) / sx, shift[:, 0]], 1),
                     torch.stack([sin / sy, cos / sy, shift[:, 1]], 1)], 1)  # fmt: skip
    # Build the sampling grid on a coarse lattice and upsample it: an affine map is exact under bilinear
    # interpolation, the elastic field is smooth anyway, and a full-size affine_grid costs far more.
    g = max(config.elastic_grid, 2)
    lin = torch.linspace(-1, 1, g)
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    base = torch.stack([xx, yy, torch.ones_like(xx)], -1).reshape(1, g * g, 3)
    coarse = (base @ a.transpose(1, 2)).reshape(n, g, g, 2).permute(0, 3, 1, 2)
    if config.elastic > 0:
        coarse = coarse + torch.randn((n, 2, g, g), generator=generator) * config.elastic * 2
    # align_corners=True keeps the lattice's end points on the image's corner pixels
    grid = F.interpolate(coarse, size=(m, m), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
    out = F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    lo, hi = config.stroke
    widths = torch.randint(lo, hi + 1, (n,), generator=generator) + pen.stroke
    for k in widths.unique().tolist():
        sel = widths == k
        if k > 0:
            out[sel] = F.max_pool2d(out[sel], 2 * k + 1, stride=1, padding=k)
        elif k < 0:
            out[sel] = -F.max_pool2d(-out[sel], 2 * -k + 1, stride=1, padding=-k)
    return F.interpolate(out, size=(size, size), mode="area").clamp(0, 1)


def ink_to_uint8(ink: torch.Tensor) -> torch.Tensor:
    """Ink maps in [0, 1] -> grey uint8 images, white background."""
    return ((1 - ink) * 255 + 0.5).clamp(0, 255).to(torch.uint8)


def font_symbols(config: DataConfig, fonts: Sequence[str], seed: int = 0, per_class: int | None = None) -> SymbolSet:
    """The embedded data: ``per_class`` augmented renderings of every class of ``config.classes`` per font."""
    unknown = [f for f in fonts if f not in FONTS]
    if unknown:
        raise DataError(f"unknown font(s) {unknown} (the verovio wheel ships {', '.join(FONTS)})")
    per_class = per_class or config.samples_per_class
    size, master = config.image_size, min(2 * config.image_size, 256)
    images, labels, writers = [], [], []
    for w, font in enumerate(fonts):
        for c, name in enumerate(config.classes):
            if name not in CODEPOINTS and name not in ("beam", "stem", "barlineSingle"):
                raise DataError(f"unknown class {name!r} for the embedded fonts (known: {', '.join(CLASSES)})")
            # a separate stream per (font, class), so a subset of fonts or classes renders the same images
            key = seed * 1_000_003 + FONTS.index(font) * 1009 + CLASSES.index(name) if name in CLASSES else seed
            gen = torch.Generator().manual_seed(torch_seed(key))
            rng = np.random.default_rng(torch_seed(key))
            if name == "beam":  # each beam its own slope
                bases = [torch.from_numpy(render_glyph(name, font, master, rng)) for _ in range(per_class)]
                base = torch.stack(bases)[:, None]
            else:
                base = torch.from_numpy(render_glyph(name, font, master, rng))[None, None].expand(per_class, 1, -1, -1)
            pen = writer_pen(font, config.writer_pen)
            images.append(ink_to_uint8(augment(base.contiguous(), config, size, gen, pen)))
            labels.append(torch.full((per_class,), c, dtype=torch.long))
            writers.append(torch.full((per_class,), w, dtype=torch.long))
    return SymbolSet(torch.cat(images), torch.cat(labels), torch.cat(writers), list(config.classes), list(fonts))


#: Part of the cache key of a rendered glyph set: raise it when rendering or augmentation changes what given settings
#: and seed give, so that no set made by the earlier code is reused.
GLYPH_CACHE_VERSION = 1
GLYPH_CACHE = "ganwriting-music-glyphs"  # the folder under gencore.fileio.cache_dir()
_CACHE_PRODUCER = "ganwriting-music glyph cache"


def glyph_key(config: DataConfig, fonts: Sequence[str], seed: int) -> str:
    """The hash that names a :func:`font_symbols` set in the cache: the fonts, classes, size, count and
    augmentation settings, the seed and the versions of what draws the images (verovio's fonts, Pillow, torch)."""
    from importlib.metadata import PackageNotFoundError, version

    import PIL

    try:
        verovio = version("verovio")
    except PackageNotFoundError:  # pragma: no cover - a dependency; font_symbols names it if it is missing
        verovio = "?"
    fields = ("image_size", "classes", "samples_per_class", "rotation", "scale", "shear", "elastic", "elastic_grid",
              "stroke", "writer_pen")  # fmt: skip
    record = {name: getattr(config, name) for name in fields}
    record.update(version=GLYPH_CACHE_VERSION, fonts=list(fonts), seed=seed, torch=torch.__version__,
                  pillow=PIL.__version__, verovio=verovio)  # fmt: skip
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=list).encode()).hexdigest()[:32]


def cached_font_symbols(config: DataConfig, fonts: Sequence[str], seed: int = 0) -> SymbolSet:
    """:func:`font_symbols` of ``fonts``: from the user's cache when the same settings made it before
    (:func:`glyph_key`), else rendered (and cached by the launch's main process; a read-only or full cache only
    gets a note). The images are the same either way."""
    fonts = list(fonts)
    entry = cache_dir(GLYPH_CACHE, glyph_key(config, fonts, seed))
    if (entry / "manifest.json").is_file():
        try:
            verify_dir(entry)
            tree = load_tree(entry, "glyphs")
            if tree["classes"] != list(config.classes) or tree["writer_names"] != fonts:
                raise CheckpointError(f"{entry} holds other classes or fonts")
            return SymbolSet(tree["images"], tree["labels"], tree["writers"], tree["classes"], tree["writer_names"])
        except (CheckpointError, DataError, KeyError, TypeError) as exc:
            announce(f"note: cached glyphs not used ({exc}); rendering them again")
    data = font_symbols(config, fonts, seed)
    if is_launch_main():
        tree = {"images": data.images, "labels": data.labels, "writers": data.writers, "classes": data.classes,
                "writer_names": data.writer_names}  # fmt: skip
        try:
            with atomic_cache_dir(entry, _CACHE_PRODUCER, "glyphs") as tmp:
                save_tree(tree, tmp, "glyphs")
        except (OSError, OutputError) as exc:
            announce(f"note: rendered glyphs not cached ({getattr(exc, 'strerror', None) or exc}: {entry})")
    return data


# --- class folders and index files ------------------------------------------------------------------------------


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _refuse_mixed(folder: Path) -> None:
    """Loose images beside sub-folders of images: ambiguous (DataError), see gencore.data.refuse_mixed."""
    loose, subfolders = folder_layout(folder)
    refuse_mixed(folder, loose, subfolders)


def read_class_folders(
    root: str | Path, classes: Sequence[str] = CLASSES, skip_unknown: bool = False
) -> list[tuple[Path, str, str]]:
    """Scan ``root/<class>/*`` (writer = the root's name) or ``root/<writer>/<class>/*``: (path, class, writer).

    Class folder names match case-insensitively, or through :data:`CLASS_ALIASES` (DeepScoresV2 and MUSCIMA++
    names; several folders may map to one class). An unknown or ambiguous class folder raises DataError unless
    ``skip_unknown``; an empty class folder, or a root with no class folders, raises DataError.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"folder not found: {root}")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise DataError(f"{root} is empty: expected {root}/<class>/<image> or {root}/<writer>/<class>/<image>")
    _refuse_mixed(root)
    if any(resolve_class(p.name, classes) is not None for p in subdirs):
        groups = [(root.name, root)]
    else:  # writer folders: every subfolder must itself hold class folders
        groups = [(p.name, p) for p in subdirs]
    found: list[tuple[Path, str, str]] = []
    for writer, folder in groups:
        class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not class_dirs and folder != root and _images_in(folder):  # images here: a class folder, misnamed
            canonical_class(folder.name, classes, where=f"{folder}: ")
        if not class_dirs:
            raise DataError(f"{folder} holds no class folders")
        if folder != root:
            _refuse_mixed(folder)
        for class_dir in class_dirs:
            if resolve_class(class_dir.name, classes) is None:
                if skip_unknown:
                    continue
                canonical_class(class_dir.name, classes, where=f"{class_dir}: ")
            name = canonical_class(class_dir.name, classes)
            _refuse_mixed(class_dir)
            files = _images_in(class_dir)
            if not files:
                raise DataError(f"{class_dir} is an empty class folder (no images)")
            found += [(p, name, writer) for p in files]
    if not found:
        raise DataError(f"no images of the known classes under {root}")
    return found


INDEX_HEADER = "# ganwriting-music index: path<TAB>class<TAB>writer"


def check_index_target(index_file: str | Path) -> Path:
    """``index_file`` when an index may be written there (:func:`gencore.fileio.check_output_target`): new, or an
    index this package wrote before (its first line); anything else is OutputError, untouched."""
    from gencore.fileio import check_output_target

    def earlier_index(path: Path) -> bool:
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.readline().startswith(INDEX_HEADER)
        except (OSError, ValueError):
            return False

    return check_output_target(index_file, "an index file written by ganwriting-music", same=earlier_index)


def write_index(entries: Sequence[tuple[Path, str, str]], index_file: str | Path) -> Path:
    """Write ``path<TAB>class<TAB>writer`` lines (paths relative to the index file's folder when inside it)."""
    from gencore.checkpoint import atomic_write_text

    index_file = check_index_target(index_file)
    base = index_file.parent.resolve()
    lines = [INDEX_HEADER]
    for path, cls, writer in entries:
        p = Path(path).resolve()
        try:
            p = p.relative_to(base)
        except ValueError:
            pass
        for value in (str(p), cls, writer):
            if "\t" in value or "\n" in value:
                raise DataError(f"{value!r} contains a tab or newline and cannot be written to an index file")
        lines.append(f"{p.as_posix()}\t{cls}\t{writer}")
    index_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(index_file, "\n".join(lines) + "\n")
    return index_file


def read_index(index_file: str | Path, classes: Sequence[str] = CLASSES) -> list[tuple[Path, str, str]]:
    """Read an index file: ``path<TAB>class[<TAB>writer]`` per line (``#`` comments and blank lines skipped).

    Relative paths are read from the index file's folder, absolute ones as they are; a missing writer column means
    writer ``default``. Also accepts the original's ``class<TAB>path`` order (recognised by the path being the
    field that exists). A byte-order mark and CRLF line ends are fine. Writer and class names are not checked as
    folder names here (training never makes paths of them); whatever writes them as folders does.
    """
    index_file = Path(index_file)
    if not index_file.is_file():
        raise DataError(f"index file not found: {index_file}")
    lines = read_text_lines(index_file, "index file")  # a byte-order mark and CRLF line ends are fine
    base = index_file.parent
    out = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = [p.strip() for p in text.split("\t")]
        if len(parts) not in (2, 3) or not all(parts):
            raise DataError(f"{index_file}:{number}: expected 'PATH<TAB>CLASS[<TAB>WRITER]', got {text!r}")
        path_text, cls = parts[0], parts[1]
        where = f"{index_file}:{number}: "
        path = listed_path(base, path_text, where)
        if not path.exists() and "\x00" not in cls and listed_path(base, cls, where).exists():
            path_text, cls = cls, path_text  # the original's class<TAB>path order
            path = listed_path(base, path_text, where)
        name = canonical_class(cls, classes, where=where)
        out.append((path, name, parts[2] if len(parts) == 3 else "default"))
    if not out:
        raise DataError(f"{index_file} lists no images")
    return out


def load_images(
    entries: Sequence[tuple[Path, str, str]], classes: Sequence[str], size: int, bad_files: str = "raise"
) -> SymbolSet:
    """Load (path, class, writer) entries as grey images fitted to ``size`` (ink cropped and centred)."""
    import warnings

    images, labels, writers, names = [], [], [], []
    for path, cls, writer in entries:
        try:
            grey = np.asarray(load_image(path, "L"), np.float32) / 255
            ink = fit_square(1 - grey if grey.mean() > 0.5 else grey, size)  # white-on-black scans are inverted
        except DataError as exc:
            message = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            if bad_files == "skip":
                warnings.warn(f"skipping {message}", stacklevel=2)
                continue
            raise DataError(message) from None
        if writer not in names:
            names.append(writer)
        images.append(ink_to_uint8(torch.from_numpy(ink))[None])
        labels.append(list(classes).index(cls))
        writers.append(names.index(writer))
    if not images:
        raise DataError("no readable images")
    return SymbolSet(torch.stack(images), torch.tensor(labels), torch.tensor(writers), list(classes), names)


# --- HOMUS -----------------------------------------------------------------------------------------------------

Stroke = list[tuple[float, float]]


def parse_homus(path: str | Path) -> tuple[str, list[Stroke]]:
    """Read a HOMUS file: (class name as written, strokes); malformed lines raise DataError naming file and line."""
    path = Path(path)
    lines = read_text_lines(path, "HOMUS file")  # a byte-order mark and CRLF line ends are fine
    if not lines or not lines[0].strip():
        raise DataError(f"{path}:1: expected the class name on the first line")
    strokes: list[Stroke] = []
    for number, line in enumerate(lines[1:], 2):
        text = line.strip()
        if not text:
            continue
        stroke = []
        for point in text.rstrip(";").split(";"):
            xy = point.split(",")
            try:
                x, y = float(xy[0]), float(xy[1])
                if len(xy) != 2 or not (math.isfinite(x) and math.isfinite(y)):  # nan/inf parse as floats
                    raise ValueError
                stroke.append((x, y))
            except (ValueError, IndexError):
                raise DataError(
                    f"{path}:{number}: malformed stroke point {point.strip()!r} (expected finite numbers x,y)"
                ) from None
        strokes.append(stroke)
    if not strokes:
        raise DataError(f"{path}: no strokes after the class name")
    return lines[0].strip(), strokes


def render_strokes(strokes: Sequence[Stroke], size: int, stroke_width: int = 3, margin: float = 0.1) -> np.ndarray:
    """Draw strokes as lines of ``stroke_width`` pixels into a ``size`` square grey uint8 image (ink black),
    scaled uniformly to fit inside ``margin`` of the side and centred."""
    pts = np.array([p for s in strokes for p in s], np.float64)
    lo, hi = pts.min(0), pts.max(0)
    span = max(float((hi - lo).max()), 1e-6)
    inner = size * (1 - 2 * margin) - stroke_width
    scale = inner / span
    offset = (size - (hi - lo) * scale) / 2
    img = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(img)
    for s in strokes:
        xy = [tuple(((np.array(p) - lo) * scale + offset).tolist()) for p in s]
        if len(xy) == 1:
            x, y = xy[0]
            r = stroke_width / 2
            draw.ellipse([x - r, y - r, x + r, y + r], fill=0)
        else:
            draw.line(xy, fill=0, width=stroke_width, joint="curve")
            for x, y in (xy[0], xy[-1]):  # round caps
                r = stroke_width / 2
                draw.ellipse([x - r, y - r, x + r, y + r], fill=0)
    return np.asarray(img)


def read_homus(
    root: str | Path, classes: Sequence[str], size: int, stroke_width: int = 3
) -> tuple[SymbolSet, dict[str, int]]:
    """Render every HOMUS file under ``root``; the folder holding a file is its writer.

    HOMUS classes are mapped to SMuFL names by :data:`HOMUS_TO_SMUFL` (or taken as written when ``classes``
    lists them); HOMUS classes outside ``classes`` are skipped and counted; a name that is neither a HOMUS
    class nor in ``classes`` raises DataError. Returns the set and the skipped counts per HOMUS class.
    """
    root = Path(root)
    files = sorted(root.rglob("*.txt"))
    if not files:
        raise DataError(f"no HOMUS .txt files under {root}")
    images, labels, writers, names, skipped = [], [], [], [], {}
    lower = {c.lower(): c for c in classes}
    for path in files:
        raw, strokes = parse_homus(path)
        name = lower.get(raw.lower()) or lower.get(HOMUS_TO_SMUFL.get(raw, "").lower())
        if name is None:
            if raw in HOMUS_CLASSES:
                skipped[raw] = skipped.get(raw, 0) + 1
                continue
            canonical_class(raw, classes, where=f"{path}:1: ")
        writer = path.parent.name if path.parent != root else root.name
        if writer not in names:
            names.append(writer)
        images.append(torch.from_numpy(render_strokes(strokes, size, stroke_width).copy())[None])
        labels.append(list(classes).index(name))
        writers.append(names.index(writer))
    if not images:
        raise DataError(f"{root}: none of the HOMUS symbols is among the classes {', '.join(classes)}")
    return SymbolSet(torch.stack(images), torch.tensor(labels), torch.tensor(writers), list(classes), names), skipped


def _is_homus_folder(root: Path) -> bool:
    return (
        root.is_dir()
        and any(root.rglob("*.txt"))
        and not any(p.suffix.lower() in IMAGE_EXTENSIONS for p in root.rglob("*") if p.is_file())
    )


def load_source(config: DataConfig, seed: int = 0, writers: Sequence[str] | None = None) -> SymbolSet:
    """The configured data: embedded fonts (``writers`` or ``config.fonts``), an index file, class folders or
    HOMUS files (all writers)."""
    if config.source == "fonts":
        return cached_font_symbols(config, list(writers or config.fonts), seed)
    path = Path(config.source)
    if path.is_file():
        data = load_images(read_index(path, config.classes), config.classes, config.image_size, config.bad_files)
    elif not path.exists():
        raise DataError(f"data source not found: {path} (use 'fonts', an index file or a folder)")
    elif _is_homus_folder(path):
        data = read_homus(path, config.classes, config.image_size, config.homus_stroke)[0]
    else:
        entries = read_class_folders(path, config.classes)
        data = load_images(entries, config.classes, config.image_size, config.bad_files)
    counts = {c: n for c, n in data.counts().items() if n}
    announce(f"read {len(data)} images of {len(counts)} class(es) and {len(data.writer_names)} writer(s) from "
             f"{path}: {count_summary(counts)}")  # fmt: skip
    return data


def train_test_split(data: SymbolSet, test_fraction: float, seed: int) -> tuple[SymbolSet, SymbolSet | None]:
    """Deterministic split stratified by (writer, class); ``test_fraction`` 0 gives no test set."""
    if test_fraction <= 0:
        return data, None
    strata = (data.writers * len(data.classes) + data.labels).tolist()
    train, test = split_indices(len(data), [1 - test_fraction, test_fraction], seed=seed, labels=strata)
    if not test:
        return data, None
    return data.subset(train), data.subset(test)


def split_by_writer(data: SymbolSet, holdout: Sequence[str]) -> tuple[SymbolSet, SymbolSet | None]:
    """(images of the other writers, images of the ``holdout`` writers or None)."""
    held = [w for w in holdout if w in data.writer_names]
    if not held:
        return data, None
    rest = [w for w in data.writer_names if w not in held]
    if not rest:
        raise DataError(f"every writer is held out ({held}); nothing is left to train on")
    return data.of_writers(rest), data.of_writers(held)


# --- what the generator trains on ----------------------------------------------------------------------------


class StyleDataset(Dataset):
    """Items ``(image, class, writer, refs)``: a real image, and ``k`` other images of the same writer (the style
    references; drawn with torch's global RNG, which the Trainer seeds, checkpoints and restores)."""

    def __init__(self, data: SymbolSet, k: int) -> None:
        self.data, self.k = data, k
        self.pools = [torch.nonzero(data.writers == w).flatten() for w in range(len(data.writer_names))]
        small = [data.writer_names[w] for w, p in enumerate(self.pools) if 0 < len(p) < 2]
        if small:
            raise DataError(f"writer(s) {small} have a single image: style references need at least two")

    def __len__(self) -> int:
        return len(self.data)

    def references(self, writer: int, exclude: int | None = None, k: int | None = None) -> torch.Tensor:
        """``k`` images of ``writer`` in [-1, 1] (K, 1, S, S), never the image ``exclude``."""
        pool = self.pools[writer]
        if exclude is not None:
            pool = pool[pool != exclude]
        pick = pool[torch.randint(len(pool), (k or self.k,))]
        return self.data.floats(pick)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        w = int(self.data.writers[index])
        return self.data.floats(torch.tensor([index]))[0], self.data.labels[index], self.data.writers[index], \
            self.references(w, exclude=index)  # fmt: skip
