"""The Mashcima export: the layout Mashcima's loader reads (checked without Mashcima), origins, the class table."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from ganwriting_music.config import CLASSES
from ganwriting_music.mashcima import MASHCIMA_NAMES, check_layout, mashcima_plan, save_mashcima, unmapped
from gencore.errors import DataError, OutputError


def _drawn(n: int, size: int = 32) -> torch.Tensor:
    """n images in [-1, 1]: dark blobs of different shapes on white (what the generator outputs)."""
    out = []
    for i in range(n):
        img = Image.new("L", (size, size), 255)
        ImageDraw.Draw(img).ellipse([4 + i % 5, 3, 20 + i % 7, 28 - i % 4], fill=0)
        out.append(torch.from_numpy(np.asarray(img, np.float32) / 127.5 - 1)[None])
    return torch.stack(out)


def _load_like_mashcima(folder, name):
    """Mashcima's loading rule (read as grey, /255, origin = -X, -Y of the .txt or the centre): mask, x, y."""
    mask = np.asarray(Image.open(folder / f"{name}.png").convert("L")) / 255
    x, y = -mask.shape[1] // 2, -mask.shape[0] // 2
    txt = folder / f"{name}.txt"
    if txt.is_file():
        fx, fy = txt.read_text().splitlines()[0].split()
        x, y = -int(fx), -int(fy)
    return mask, x, y


def test_every_class_is_mapped_or_reported():
    plan = mashcima_plan(CLASSES)
    assert [s.name for s in plan] == [s.name for s in MASHCIMA_NAMES]  # all 14 names drawable from the 20 classes
    drawn = {s.cls for s in plan}
    assert drawn | set(unmapped(CLASSES)) == set(CLASSES) and not drawn & set(unmapped(CLASSES))
    assert "flips" in unmapped(CLASSES)["flag8thDown"]
    # a note's parts come all or none: without flags, no eighth or sixteenth note
    assert [s.name for s in mashcima_plan(CLASSES, ["noteheadBlack", "stem", "gClef"])] == ["clef_g"]


def test_export_layout_sizes_and_origins(tmp_path):
    plan = mashcima_plan(CLASSES)
    out = tmp_path / "export"
    counts = save_mashcima(_drawn(2 * len(plan)), plan, out, CLASSES, staff_space=20)
    assert set(counts.values()) == {2}
    layout = check_layout(out)  # the rules Mashcima's loader needs
    assert sorted(layout) == ["set_0000", "set_0001"] and set(layout["set_0000"]) == {s.name for s in plan}
    folder = out / "set_0000" / "default_symbols"
    for sprite in plan:
        mask, x, y = _load_like_mashcima(folder, sprite.name)
        assert set(np.unique(mask)) == {0.0, 1.0} and mask.shape[0] == round(sprite.height * 20)
    head, hx, hy = _load_like_mashcima(folder, "note_eighth_notehead")
    stem, sx, sy = _load_like_mashcima(folder, "note_eighth_stem")
    flag, fx, fy = _load_like_mashcima(folder, "note_eighth_flag_8")
    assert (hx, hy) == (-(head.shape[1] // 2), -(head.shape[0] // 2))  # centred on the note's position
    assert sy + stem.shape[0] < 0 < sx + stem.shape[1] and fy == sy and fx > sx  # stem up on the right, flag on top
    _, _, wy = _load_like_mashcima(folder, "rest_whole")
    half, _, ly = _load_like_mashcima(folder, "rest_half")
    assert wy == 0 and ly == -(half.shape[0] - 1)  # whole rest hangs from its line, half rest sits on it
    report = json.loads((out / "mashcima_export.json").read_text())
    assert report["names"]["note_sixteenth_flag_16"] == "flag8thUp" and "time_c" in report["names_left_to_mashcima"]
    assert set(report["classes_without_mashcima_name"]) == set(unmapped(CLASSES))


def test_export_is_atomic_and_needs_overwrite(tmp_path):
    plan = mashcima_plan(["gClef", "restQuarter"])
    out = tmp_path / "export"
    save_mashcima(_drawn(len(plan)), plan, out, ["gClef", "restQuarter"])
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(OutputError, match="--overwrite"):
        save_mashcima(_drawn(len(plan)), plan, out, ["gClef", "restQuarter"])
    blank = torch.ones(len(plan), 1, 32, 32)  # no ink: refused, the earlier export untouched
    with pytest.raises(DataError, match="has no ink"):
        save_mashcima(blank, plan, out, ["gClef", "restQuarter"], overwrite=True)
    assert sorted(p.name for p in out.rglob("*")) == before
    save_mashcima(_drawn(2 * len(plan)), plan, out, ["gClef", "restQuarter"], overwrite=True)
    assert sorted(check_layout(out)) == ["set_0000", "set_0001"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(OutputError, match="did not write"):
        save_mashcima(_drawn(len(plan)), plan, tmp_path / "mine", ["gClef", "restQuarter"], overwrite=True)


def test_hidden_layout_rules_catch_what_mashcima_would_not_read(tmp_path):
    plan = mashcima_plan(CLASSES)
    out = tmp_path / "export"
    save_mashcima(_drawn(len(plan)), plan, out, CLASSES)
    folder = out / "set_0000" / "default_symbols"
    (folder / "note_eighth_flag_8.png").rename(tmp_path / "flag.png")
    (folder / "note_eighth_flag_8.txt").unlink()
    with pytest.raises(DataError, match="note_eighth has"):
        check_layout(out)
    Image.fromarray(np.full((5, 5), 128, np.uint8)).save(folder / "note_eighth_flag_8.png")
    with pytest.raises(DataError, match="other than 0 and 255"):
        check_layout(out)
    Image.open(tmp_path / "flag.png").save(folder / "note_eighth_flag_8.png")
    (folder / "clef_g.txt").write_text("30\n")
    with pytest.raises(DataError, match="two integers"):
        check_layout(out)
    (folder / "clef_g.txt").write_text("30 90\n")
    black_on_white = np.pad(255 - np.asarray(Image.open(folder / "clef_g.png")), 2, constant_values=255)
    Image.fromarray(black_on_white).save(folder / "clef_g.png")
    with pytest.raises(DataError, match="white ink"):
        check_layout(out)
