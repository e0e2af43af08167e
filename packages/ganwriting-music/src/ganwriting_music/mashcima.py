"""Generated symbols as Mashcima sprites: the files its symbol repository reads from ``mashcima/default_symbols``.

What Mashcima reads (``mashcima/SymbolRepository.py`` of github.com/Jirka-Mayer/Mashcima): for every symbol kind
that MUSCIMA++ gave it no sprite of, it loads ``default_symbols/<name>.png`` by a fixed file name (no folder
scan), as ``cv2.imread(path, IMREAD_GRAYSCALE) / 255``, used as a mask: ink is 1, so a sprite is white ink
(255) on black (0). An optional ``<name>.txt`` holds on its first line two integers ``X Y``, the sprite's origin
in pixels from its left and top edge (the point Mashcima places: a notehead's centre, the staff line a clef or
rest sits on); negative or outside values are allowed (a stem's origin is its notehead's centre). Without the
``.txt`` the origin is the image centre. The sprites are at MUSCIMA++'s scale (a staff space of about 20 px).

An export is ``DIR/set_NNNN/default_symbols/<name>.{png,txt}`` (one complete set of names per ``NNNN``) plus
``DIR/mashcima_export.json`` (the name -> class table, the classes without a Mashcima name, the names left to
Mashcima's own files); the folder follows gencore's output rule (written whole or not at all, ``--overwrite``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gencore.checkpoint import atomic_dir
from gencore.errors import DataError
from gencore.results import write_json

__all__ = [
    "MASHCIMA_NAMES", "MASHCIMA_ONLY", "PRODUCER", "Sprite", "check_layout", "mashcima_plan", "save_mashcima",
    "unmapped",
]

PRODUCER = "ganwriting-music export-mashcima"
SET_FOLDER = "set_{:04d}"
REPORT = "mashcima_export.json"


@dataclass(frozen=True)
class Sprite:
    """One Mashcima default-symbol name: the class drawn for it, its height in staff spaces and its origin rule
    (``center``, ``top``, ``bottom``, ``line:F`` = centred horizontally at F of the height from the top, or one
    of the note parts ``notehead``, ``stem``, ``flag_8``, ``flag_16`` placed around the notehead's centre)."""

    name: str
    cls: str
    height: float
    origin: str


#: Mashcima's default-symbol names that one of the 20 classes draws (the README's table).
MASHCIMA_NAMES: tuple[Sprite, ...] = (
    Sprite("clef_g", "gClef", 7.0, "line:0.62"),  # origin on the G line
    Sprite("clef_f", "fClef", 3.6, "line:0.28"),  # origin on the F line
    Sprite("clef_c", "cClef", 4.0, "center"),
    Sprite("rest_whole", "restWhole", 0.8, "top"),  # hangs from its line
    Sprite("rest_half", "restHalf", 0.8, "bottom"),  # sits on its line
    Sprite("rest_quarter", "restQuarter", 3.0, "center"),
    Sprite("rest_eighth", "rest8th", 2.0, "center"),
    Sprite("note_eighth_notehead", "noteheadBlack", 1.0, "notehead"),
    Sprite("note_eighth_stem", "stem", 3.2, "stem"),
    Sprite("note_eighth_flag_8", "flag8thUp", 2.2, "flag_8"),
    Sprite("note_sixteenth_notehead", "noteheadBlack", 1.0, "notehead"),
    Sprite("note_sixteenth_stem", "stem", 3.2, "stem"),
    Sprite("note_sixteenth_flag_8", "flag8thUp", 1.8, "flag_8"),
    Sprite("note_sixteenth_flag_16", "flag8thUp", 1.6, "flag_16"),  # Mashcima's 16th flag is the second single flag
)

#: Names Mashcima's loader asks for that no class draws: its own files stay in use for them.
MASHCIMA_ONLY: tuple[str, ...] = (
    "rest_longa", "rest_breve", "rest_sixteenth", *(f"time_{d}" for d in range(10)), "time_c",
)  # fmt: skip

#: Why a class has no Mashcima name (the loader has no default file for it; MUSCIMA++ alone supplies it).
_NO_COUNTERPART = {
    "accidentalFlat": "Mashcima takes accidentals from MUSCIMA++ only",
    "accidentalNatural": "Mashcima takes accidentals from MUSCIMA++ only",
    "accidentalSharp": "Mashcima takes accidentals from MUSCIMA++ only",
    "noteheadHalf": "Mashcima takes half and whole notes from MUSCIMA++ only",
    "noteheadWhole": "Mashcima takes half and whole notes from MUSCIMA++ only",
    "flag8thDown": "Mashcima flips up-stem notes for stems down",
    "flag16thDown": "Mashcima flips up-stem notes for stems down",
    "flag16thUp": "Mashcima draws a 16th note's flags as two single flags (flag8thUp)",
    "beam": "Mashcima draws beams itself",
    "barlineSingle": "Mashcima takes barlines from MUSCIMA++ only",
}


def unmapped(classes: Sequence[str]) -> dict[str, str]:
    """The classes among ``classes`` that no Mashcima name draws, with the reason."""
    drawn = {s.cls for s in MASHCIMA_NAMES}
    return {c: _NO_COUNTERPART.get(c, "no Mashcima symbol kind") for c in classes if c not in drawn}


def mashcima_plan(classes: Sequence[str], chosen: Sequence[str] | None = None) -> list[Sprite]:
    """The Mashcima names one set holds: those whose class is in ``classes`` (and in ``chosen`` when given). A note's
    parts (notehead, stem, flags) come all or none: Mashcima loads them together."""
    pick = set(classes if chosen is None else chosen) & set(classes)
    plan = [s for s in MASHCIMA_NAMES if s.cls in pick]
    for note in ("note_eighth_", "note_sixteenth_"):
        parts = [s for s in MASHCIMA_NAMES if s.name.startswith(note)]
        if not all(s in plan for s in parts):
            plan = [s for s in plan if s not in parts]
    return plan


def _mask(image: torch.Tensor, height: int, threshold: float) -> np.ndarray | None:
    """A generated image (1, S, S) in [-1, 1] -> uint8 mask (ink 255 on 0) cropped to the ink, ``height`` rows."""
    ink = ((1 - image[0].detach().float().cpu().clamp(-1, 1)) / 2).numpy()
    rows, cols = np.nonzero(ink > threshold)
    if len(rows) == 0:
        return None
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = crop.shape
    width = max(1, round(w * height / h))
    grey = Image.fromarray((crop * 255).round().astype(np.uint8)).resize((width, height), Image.Resampling.LANCZOS)
    mask = np.where(np.asarray(grey) > threshold * 255, 255, 0).astype(np.uint8)
    return mask if mask.any() else None


def _origins(plan: Sequence[Sprite], masks: dict[str, np.ndarray], sp: float) -> dict[str, tuple[int, int]]:
    """The ``X Y`` of every sprite: pixels from its left and top edge to the point Mashcima places."""
    out: dict[str, tuple[int, int]] = {}
    for sprite in plan:
        h, w = masks[sprite.name].shape
        if sprite.origin == "center":
            out[sprite.name] = (w // 2, h // 2)
        elif sprite.origin == "top":
            out[sprite.name] = (w // 2, 0)
        elif sprite.origin == "bottom":
            out[sprite.name] = (w // 2, h - 1)
        elif sprite.origin.startswith("line:"):
            out[sprite.name] = (w // 2, round(float(sprite.origin[5:]) * h))
        elif sprite.origin == "notehead":
            out[sprite.name] = (w // 2, h // 2)
    for note in ("note_eighth", "note_sixteenth"):  # stem and flags around the notehead's centre (stem up)
        head = masks.get(f"{note}_notehead")
        head_h, head_w = head.shape if head is not None else (round(sp), round(1.3 * sp))
        stem = masks.get(f"{note}_stem")
        stem_h, stem_w = stem.shape if stem is not None else (round(3.2 * sp), max(1, round(0.15 * sp)))
        stem_left, stem_top = head_w // 2 - stem_w, -(stem_h + head_h // 3)  # on the notehead's right edge
        if stem is not None:
            out[f"{note}_stem"] = (-stem_left, -stem_top)
        flag_left = stem_left + stem_w - 1
        if f"{note}_flag_8" in masks:
            out[f"{note}_flag_8"] = (-flag_left, -stem_top)
        if f"{note}_flag_16" in masks:
            out[f"{note}_flag_16"] = (-flag_left, -(stem_top + math.ceil(0.75 * sp)))
    return out


def save_mashcima(
    images: torch.Tensor, plan: Sequence[Sprite], out: str | Path, classes: Sequence[str],
    staff_space: float = 20.0, threshold: float = 0.5, overwrite: bool = False,
) -> dict[str, int]:  # fmt: skip
    """Write ``images`` (N, 1, S, S) in [-1, 1], generated for ``plan`` repeated N / len(plan) times (set after
    set), as ``out/set_NNNN/default_symbols/<name>.png`` and ``.txt``, plus ``out/mashcima_export.json``.

    Each sprite is the generated image's ink (darker than ``threshold``) cropped, scaled to its height in staff
    spaces times ``staff_space`` pixels and binarised; a set whose image for some name holds no ink raises
    DataError (Mashcima needs every file of a set). ``out`` follows gencore's output rule: an empty or new
    folder, or an earlier export replaced only with ``overwrite``; written whole or not at all. Returns
    ``{name: files written}``."""
    if not plan:
        raise DataError("none of the model's classes has a Mashcima symbol name (see the README's table)")
    if len(images) % len(plan):
        raise DataError(f"{len(images)} images do not make whole sets of {len(plan)} Mashcima symbols")
    sets = len(images) // len(plan)
    counts = {s.name: 0 for s in plan}
    with atomic_dir(out, overwrite=overwrite, producer=PRODUCER) as tmp:
        for index in range(sets):
            masks: dict[str, np.ndarray] = {}
            for sprite, image in zip(plan, images[index * len(plan) : (index + 1) * len(plan)]):
                mask = _mask(image, max(2, round(sprite.height * staff_space)), threshold)
                if mask is None:
                    raise DataError(f"set {index}: the generated {sprite.cls} for {sprite.name} has no ink darker "
                                    f"than --threshold {threshold}; lower it (nothing written)")  # fmt: skip
                masks[sprite.name] = mask
            folder = tmp / SET_FOLDER.format(index) / "default_symbols"
            folder.mkdir(parents=True)
            for name, (x, y) in _origins(plan, masks, staff_space).items():
                Image.fromarray(masks[name]).save(folder / f"{name}.png")
                (folder / f"{name}.txt").write_text(f"{x} {y}\n", encoding="ascii")
                counts[name] += 1
        write_json(tmp / REPORT, {
            "format": "Mashcima default_symbols: <name>.png grey, white ink (255) on black (0); <name>.txt 'X Y', "
                      "the origin in pixels from the left and top edge",
            "sets": [f"{SET_FOLDER.format(i)}/default_symbols" for i in range(sets)],
            "staff_space_px": staff_space,
            "names": {s.name: s.cls for s in plan},
            "classes_without_mashcima_name": unmapped(classes),
            "names_left_to_mashcima": [s.name for s in MASHCIMA_NAMES if s not in plan] + list(MASHCIMA_ONLY),
        }, indent=1)  # fmt: skip
    return counts


def check_layout(export: str | Path) -> dict[str, dict[str, int]]:
    """Check an export against what Mashcima's loader needs, without Mashcima: every ``set_NNNN`` holds a
    ``default_symbols`` folder of ``<name>.png`` files whose names Mashcima asks for, each a grey image of pure
    0/255 with white ink touching all four edges (cropped), an optional ``<name>.txt`` with two integers first,
    and a note's notehead, stem and flags together. Returns ``{set: {name: ink pixels}}``; DataError names the
    first broken rule."""
    export = Path(export)
    known = {s.name for s in MASHCIMA_NAMES} | set(MASHCIMA_ONLY)
    sets = sorted(p for p in export.iterdir() if p.is_dir() and p.name.startswith("set_"))
    if not sets:
        raise DataError(f"{export}: no set_NNNN folders")
    found: dict[str, dict[str, int]] = {}
    for folder in sets:
        symbols = folder / "default_symbols"
        if not symbols.is_dir():
            raise DataError(f"{folder}: no default_symbols folder")
        found[folder.name] = {}
        for path in sorted(symbols.iterdir()):
            if path.suffix not in (".png", ".txt") or path.stem not in known:
                raise DataError(f"{path}: not a file Mashcima's loader reads")
            if path.suffix == ".txt":
                if not path.with_suffix(".png").is_file():
                    raise DataError(f"{path}: an origin without its sprite")
                fields = path.read_text(encoding="ascii").splitlines()[0].split()
                if len(fields) != 2 or not all(f.lstrip("-").isdigit() for f in fields):
                    raise DataError(f"{path}: the first line must be two integers 'X Y'")
                continue
            with Image.open(path) as image:
                if image.mode != "L":
                    raise DataError(f"{path}: mode {image.mode}, expected grey (L)")
                mask = np.asarray(image)
            if not set(np.unique(mask).tolist()) <= {0, 255}:
                raise DataError(f"{path}: values other than 0 and 255")
            ink = mask == 255
            border = np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])
            if not (ink[0].any() and ink[-1].any() and ink[:, 0].any() and ink[:, -1].any()) or (
                border.all() and not ink.all()  # a white frame around black: black ink on white
            ):
                raise DataError(f"{path}: not cropped to its ink (white ink on black expected)")
            found[folder.name][path.stem] = int(ink.sum())
        names = set(found[folder.name])
        for note, parts in (("note_eighth", ("notehead", "stem", "flag_8")),
                            ("note_sixteenth", ("notehead", "stem", "flag_8", "flag_16"))):  # fmt: skip
            have = {p for p in parts if f"{note}_{p}" in names}
            if have and have != set(parts):
                raise DataError(f"{symbols}: {note} has {sorted(have)} but Mashcima loads all of {list(parts)}")
    return found
