from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganwriting_music.cli import main
from ganwriting_music.config import CLASSES, FONTS, DataConfig
from ganwriting_music.data import (
    HOMUS_TO_SMUFL,
    font_symbols,
    load_source,
    parse_homus,
    read_class_folders,
    read_homus,
    read_index,
    render_glyph,
    render_strokes,
    train_test_split,
    write_index,
)
from gencore.errors import DataError


def one_line_error(result, exit_code: int = 2) -> str:
    assert result.exit_code == exit_code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_every_class_renders_in_every_font():
    for font in FONTS:
        for name in CLASSES:
            ink = render_glyph(name, font, 32)
            assert ink.shape == (32, 32) and 0 <= ink.min() and ink.max() <= 1
            assert ink.sum() > 3, (font, name)
            # fitted with a margin: the outer rows and columns stay empty
            assert ink[0].max() < 0.05 and ink[:, -1].max() < 0.05


def test_embedded_data_is_seeded_shaped_and_varied():
    cfg = DataConfig(image_size=32, classes=["gClef", "beam"], fonts=["Bravura", "Petaluma"], holdout_writers=[])
    a = font_symbols(cfg, cfg.fonts, seed=3, per_class=5)
    b = font_symbols(cfg, cfg.fonts, seed=3, per_class=5)
    c = font_symbols(cfg, cfg.fonts, seed=4, per_class=5)
    assert a.images.shape == (20, 1, 32, 32) and a.images.dtype == torch.uint8
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    assert a.writer_names == ["Bravura", "Petaluma"] and a.counts() == {"gClef": 10, "beam": 10}
    # augmentation: two renderings of one glyph differ, and both have ink on white
    first = a.images[(a.labels == 0) & (a.writers == 0)]
    assert not torch.equal(first[0], first[1]) and (first < 128).any() and first[:, :, 0, 0].min() > 200
    # a font is a style: the mean glyph differs between fonts
    assert (a.floats()[a.writers == 0].mean(0) - a.floats()[a.writers == 1].mean(0)).abs().mean() > 0.02


def test_index_round_trip_through_the_cli(tmp_path):
    root = tmp_path / "fonts"
    result = CliRunner().invoke(main, ["export-fonts", "-o", str(root), "--fonts", "Bravura,Leland", "--size", "24",
                                       "-n", "3", "--classes", "gClef,fClef"])  # fmt: skip
    assert result.exit_code == 0, result.output
    index = tmp_path / "index.txt"
    result = CliRunner().invoke(main, ["read-classes", str(root), "-o", str(index), "--classes", "gClef,fClef"])
    assert result.exit_code == 0, result.output
    assert "12 images, 2 classes, 2 writer(s)" in result.output
    entries = read_index(index, ["gClef", "fClef"])
    assert sorted(entries) == sorted(read_class_folders(root, ["gClef", "fClef"]))
    assert {w for _, _, w in entries} == {"Bravura", "Leland"}
    # write -> read gives the same entries, and the original's class<TAB>path order is read too
    again = write_index(entries, tmp_path / "again.txt")
    assert read_index(again, ["gClef", "fClef"]) == entries
    assert read_index(write_index(entries, again), ["gClef", "fClef"]) == entries  # its own earlier index: replaced
    # never over what it did not write: a user's index, the images of an earlier export
    (tmp_path / "notes.txt").write_text("mine\n")
    for args, message in [(["read-classes", str(root), "-o", str(tmp_path / "notes.txt")], "is not an index file"),
                          (["read-classes", str(root), "-o", str(root / "Bravura" / "gClef" / "00000.png")],
                           "is not an index file"),
                          (["export-fonts", "-o", str(root), "--fonts", "Bravura", "--size", "24", "-n", "3"],
                           "already holds")]:  # fmt: skip
        result = CliRunner().invoke(main, [*args, "--classes", "gClef,fClef"])
        assert result.exit_code == 2 and message in result.output, result.output
    assert (tmp_path / "notes.txt").read_text() == "mine\n"
    assert sorted(read_class_folders(root, ["gClef", "fClef"])) == sorted(entries)
    swapped = tmp_path / "swapped.txt"
    swapped.write_text("".join(f"{c.lower()}\t{p.relative_to(tmp_path)}\n" for p, c, _ in entries))
    assert [(p, c) for p, c, _ in read_index(swapped, ["gClef", "fClef"])] == [(p, c) for p, c, _ in entries]
    # the index loads as the class folders do
    cfg = DataConfig(source=str(index), image_size=16, classes=["gClef", "fClef"], holdout_writers=[])
    data = load_source(cfg)
    assert (
        len(data) == 12 and data.images.shape[1:] == (1, 16, 16) and sorted(data.writer_names) == ["Bravura", "Leland"]
    )


def test_single_writer_class_folders_are_case_insensitive(tmp_path):
    for cls in ("gclef", "ACCIDENTALSHARP"):
        (tmp_path / "w" / cls).mkdir(parents=True)
        img = np.full((20, 12), 255, np.uint8)
        img[4:16, 5:7] = 0
        Image.fromarray(img).save(tmp_path / "w" / cls / "a.png")
    entries = read_class_folders(tmp_path / "w")
    assert sorted(c for _, c, _ in entries) == ["accidentalSharp", "gClef"] and {w for _, _, w in entries} == {"w"}


def write_homus(path, name: str, strokes: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([name, *strokes]) + "\n")


def test_homus_parse_and_render(tmp_path):
    f = tmp_path / "writer1" / "sym_1.txt"
    write_homus(f, "G-Clef", ["10,10;20,40;30,10;", "5,50;35,50", "18,60;"])
    name, strokes = parse_homus(f)
    assert name == "G-Clef" and len(strokes) == 3 and strokes[0] == [(10.0, 10.0), (20.0, 40.0), (30.0, 10.0)]
    img = render_strokes(strokes, 48, stroke_width=3)
    assert img.shape == (48, 48) and img.dtype == np.uint8
    ink = img < 128
    rows, cols = np.nonzero(ink)
    # uniform scale into the margin, centred: the tallest extent spans ~80% of the side
    assert rows.min() >= 3 and rows.max() <= 44 and (rows.max() - rows.min()) > 30
    assert abs((cols.min() + cols.max()) / 2 - 23.5) < 3
    thick = render_strokes(strokes, 48, stroke_width=7)
    assert (thick < 128).sum() > ink.sum() * 1.5
    # a dot (one-point stroke) is drawn too
    assert (render_strokes([[(0, 0)], [(10, 10)]], 32, 4) < 128).sum() >= 8


def test_homus_folder_maps_classes_and_renders_through_the_cli(tmp_path):
    root = tmp_path / "homus"
    write_homus(root / "1" / "a.txt", "Sharp", ["0,0;0,30", "10,0;10,30", "-5,10;15,8", "-5,20;15,18"])
    write_homus(root / "1" / "b.txt", "Quarter-Note", ["0,0;0,30"])  # no SMuFL counterpart here: skipped
    write_homus(root / "2" / "c.txt", "G-Clef", ["0,0;5,30;10,0;0,20"])
    data, skipped = read_homus(root, list(CLASSES), 32)
    assert len(data) == 2 and skipped == {"Quarter-Note": 1} and sorted(data.writer_names) == ["1", "2"]
    assert sorted(data.classes[i] for i in data.labels.tolist()) == ["accidentalSharp", "gClef"]
    assert HOMUS_TO_SMUFL["G-Clef"] == "gClef"
    out = tmp_path / "rendered"
    result = CliRunner().invoke(main, ["render-homus", str(root), "-o", str(out), "--size", "32"])
    assert result.exit_code == 0, result.output
    assert "Quarter-Note 1" in result.output and (out / "1" / "accidentalSharp" / "00000.png").is_file()
    assert len(read_index(out / "index.txt")) == 2


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["G-Clef", "1,2;3,x;"], "a.txt:2: malformed stroke point '3,x'"),
        (["G-Clef", "1,2;3,4,5"], "a.txt:2: malformed stroke point '3,4,5'"),
        (["G-Clef"], "no strokes after the class name"),
        (["Trumpet", "1,2;3,4"], "a.txt:1: unknown class 'Trumpet'"),
    ],
)
def test_bad_homus_files_are_one_line_errors(tmp_path, lines, message):
    write_homus(tmp_path / "h" / "a.txt", lines[0], lines[1:])
    result = CliRunner().invoke(main, ["render-homus", str(tmp_path / "h"), "-o", str(tmp_path / "o")])
    assert message in one_line_error(result)


def test_read_classes_errors(tmp_path):
    root = tmp_path / "root"
    (root / "gClef").mkdir(parents=True)
    line = one_line_error(CliRunner().invoke(main, ["read-classes", str(root), "-o", str(tmp_path / "i.txt")]))
    assert "gClef is an empty class folder" in line
    Image.new("L", (8, 8), 0).save(root / "gClef" / "x.png")
    (root / "trumpet").mkdir()
    Image.new("L", (8, 8), 0).save(root / "trumpet" / "x.png")
    line = one_line_error(CliRunner().invoke(main, ["read-classes", str(root), "-o", str(tmp_path / "i.txt")]))
    assert "unknown class 'trumpet'" in line
    result = CliRunner().invoke(main, ["read-classes", str(root), "-o", str(tmp_path / "i.txt"), "--skip-unknown"])
    assert result.exit_code == 0 and "1 images" in result.output
    (tmp_path / "empty").mkdir()
    assert "is empty" in one_line_error(CliRunner().invoke(main, ["read-classes", str(tmp_path / "empty"), "-o",
                                                                  str(tmp_path / "i.txt")]))  # fmt: skip
    assert not (tmp_path / "i2.txt").exists()


def test_index_errors_name_the_line(tmp_path):
    index = tmp_path / "index.txt"
    Image.new("L", (8, 8), 0).save(tmp_path / "a.png")
    index.write_text("a.png\tgClef\tw\na.png\tviolinKey\tw\n")
    with pytest.raises(DataError, match=r"index.txt:2: unknown class 'violinKey'"):
        read_index(index)
    index.write_text("just-one-field\n")
    with pytest.raises(DataError, match=r"index.txt:1: expected 'PATH<TAB>CLASS"):
        read_index(index)


def test_index_saved_by_windows_tools_with_listed_paths(tmp_path):
    """A byte-order mark and CRLF line ends (Notepad, Excel) and paths relative to the index file's folder or
    absolute (moved here from gencore's index-file data set, which had no user)."""
    for name in ("img/1.png", "img/2.png", "elsewhere/3.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.new("L", (8, 8), 0).save(tmp_path / name)
    sub = tmp_path / "lists"
    sub.mkdir()
    text = f"../img/1.png\tgClef\r\n../img/2.png\tfClef\tw2\r\n{tmp_path / 'elsewhere' / '3.png'}\tgClef\r\n"
    (sub / "index.txt").write_bytes(b"\xef\xbb\xbf" + text.encode())
    entries = read_index(sub / "index.txt", ["gClef", "fClef"])
    # the first line is not lost to the byte-order mark
    assert [(p.name, c, w) for p, c, w in entries] == [("1.png", "gClef", "default"), ("2.png", "fClef", "w2"),
                                                       ("3.png", "gClef", "default")]  # fmt: skip
    assert all(p.is_file() for p, _, _ in entries)
    (sub / "nul.txt").write_text("../img/1.png\tgClef\n../img/\x002.png\tgClef\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"nul.txt:2: path .* contains a NUL byte"):
        read_index(sub / "nul.txt", ["gClef", "fClef"])


def test_clean_drops_blank_duplicate_and_unreadable_images(tmp_path):
    src = tmp_path / "src" / "gClef"
    src.mkdir(parents=True)
    img = np.full((30, 20), 255, np.uint8)
    img[5:25, 8:11] = 0
    Image.fromarray(img).save(src / "a.png")
    Image.fromarray(img).save(src / "b.png")  # duplicate
    Image.fromarray(255 - img).save(src / "c_inverted.png")  # white on black: inverted, then a duplicate too
    img2 = img.copy()
    img2[5:8, 4:14] = 0
    Image.fromarray(img2).save(src / "d.png")
    (src / "e.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.warns(UserWarning, match="e.png"):
        result = CliRunner().invoke(main, ["clean", str(tmp_path / "src"), "-o", str(tmp_path / "out"), "--size",
                                           "32", "--binarize"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote 2 images" in result.output and "2 duplicate" in result.output
    files = sorted((tmp_path / "out").rglob("*.png"))
    assert len(files) == 2 and set(np.unique(np.asarray(Image.open(files[0])))) <= {0, 255}


def test_unreadable_image_in_training_data_is_one_line_error(tmp_path, tiny_cli):
    root = tmp_path / "data" / "w1" / "gClef"
    root.mkdir(parents=True)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = CliRunner().invoke(main, ["train", "0", "--data", str(tmp_path / "data"), "--output-dir",
                                       str(tmp_path / "run"), *tiny_cli])  # fmt: skip
    line = one_line_error(result)
    assert "broken.png" in line and "cannot read image" in line


def test_split_is_disjoint_stratified_and_seeded():
    cfg = DataConfig(image_size=16, classes=["gClef", "stem"], fonts=["Bravura", "Leipzig"], holdout_writers=[])
    data = font_symbols(cfg, cfg.fonts, per_class=10)
    data.images[:, 0, 0, 0] = torch.arange(len(data)).to(torch.uint8)  # tag every image
    train, test = train_test_split(data, 0.2, seed=1)
    tags = lambda s: set(s.images[:, 0, 0, 0].tolist())  # noqa: E731
    assert len(train) == 32 and len(test) == 8 and not tags(train) & tags(test)
    assert all(((test.writers == w) & (test.labels == c)).sum() == 2 for w in (0, 1) for c in (0, 1))
    again, _ = train_test_split(data, 0.2, seed=1)
    assert torch.equal(again.images, train.images)


def test_the_largest_seed_renders():
    """Every --seed the CLI takes (up to gencore's MAX_SEED, plus the style references' offset 17) renders: the
    per-(font, class) stream number seed * 1_000_003 + ... is folded into torch's seed range (it overflowed)."""
    from ganwriting_music.data import font_symbols
    from gencore.config import MAX_SEED

    config = DataConfig(image_size=16, samples_per_class=2, classes=["gClef", "stem"], fonts=["Bravura"])
    big = font_symbols(config, ["Bravura"], seed=MAX_SEED + 17, per_class=1)
    assert big.images.shape[0] == 2
