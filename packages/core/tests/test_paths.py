"""gencore.paths (output paths that stay inside their root, listed read paths, BOM/CRLF-proof text) and the data
rules built on it in gencore.data (mixed image folders); index files saved by Windows tools are tested where they
are read (ganwriting-music's read_index)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gencore.data import ImageFolderDataset, count_summary, folder_layout, refuse_mixed
from gencore.errors import DataError
from gencore.paths import listed_path, read_text, read_text_lines, safe_join, safe_name


def _png(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 8, 3), value, np.uint8)).save(path)
    return path


# --- safe_name / safe_join ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gClef", "w 1", "Jan Novák", "3-4-Time", "a.b", "...", "3:4-Time", "ñ" * 120])
def test_safe_name_accepts_plain_names(name):
    assert safe_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("  ", "empty"),
        (".", "is not a name"),
        ("..", "is not a name"),
        ("../ds", "path separator"),
        ("/abs/path", "path separator"),
        ("a\\b", "path separator"),
        ("a/../../b", "path separator"),
        ("g\x00Clef", "NUL byte"),
        ("a\tb", "control character"),
        ("a\nb", "control character"),
        ("C:evil", "drive letter"),
        ("x" * 256, "longer than 255 bytes"),
        ("é" * 128, "longer than 255 bytes"),
    ],
)
def test_safe_name_refuses_what_is_not_one_name(name, reason):
    with pytest.raises(DataError, match=reason) as err:
        safe_name(name, "writer", where="index.txt:3: ")
    assert str(err.value).startswith("index.txt:3: writer ") and "\n" not in str(err.value)


def test_safe_join_stays_inside(tmp_path):
    assert safe_join(tmp_path, "w", "gClef", "00000.png") == tmp_path / "w" / "gClef" / "00000.png"
    assert safe_join(tmp_path, "a/../b", "c.png") == tmp_path / "b" / "c.png"
    assert safe_join(tmp_path, "sub\\x.png") == tmp_path / "sub" / "x.png"  # a Windows entry: the same folders
    assert safe_join(tmp_path, "./x.png") == tmp_path / "x.png"
    assert safe_join("relative/root", "a") == type(tmp_path)("relative/root/a")


@pytest.mark.parametrize(
    ("part", "reason"),
    [
        ("../x", "climbs out with '..'"),
        ("a/../../b", "climbs out with '..'"),
        ("..\\..\\x", "climbs out with '..'"),
        ("/etc/passwd", "absolute path"),
        ("\\\\server\\share", "absolute path"),
        ("C:\\Windows", "absolute path"),
        ("c:x", "absolute path"),
        ("a\x00b", "NUL byte"),
        ("", "empty"),
    ],
)
def test_safe_join_refuses_escapes(tmp_path, part, reason):
    with pytest.raises(DataError, match=reason):
        safe_join(tmp_path / "out", part, what="manifest entry")
    assert not (tmp_path / "out").exists()


def test_safe_join_refuses_a_symlink_that_leads_out(tmp_path):
    victim, out = tmp_path / "victim", tmp_path / "out"
    victim.mkdir()
    out.mkdir()
    (out / "gClef").symlink_to(victim)
    (out / "inside").symlink_to(out / "real", target_is_directory=True)
    with pytest.raises(DataError, match="symbolic link"):
        safe_join(out, "gClef", "0.png")
    assert safe_join(out, "inside", "0.png") == out / "inside" / "0.png"  # a link that stays inside is fine
    linked_root = tmp_path / "link_to_out"
    linked_root.symlink_to(out)
    assert safe_join(linked_root, "x.png") == linked_root / "x.png"  # the root itself may be a link


# --- listed_path (reads) -----------------------------------------------------------------------------------------


def test_listed_path_rules(tmp_path):
    assert listed_path(tmp_path, "imgs/a.png") == tmp_path / "imgs" / "a.png"
    assert listed_path(tmp_path, "../imgs/a.png") == tmp_path / ".." / "imgs" / "a.png"  # reads may climb
    assert listed_path(tmp_path, "/data/a.png") == type(tmp_path)("/data/a.png")  # absolute: as written
    _png(tmp_path / "imgs" / "b.png")
    assert listed_path(tmp_path, "imgs\\b.png") == tmp_path / "imgs" / "b.png"  # written on Windows
    with pytest.raises(DataError, match=r"idx.txt:2: path 'a\\x00.png' contains a NUL byte"):
        listed_path(tmp_path, "a\x00.png", where="idx.txt:2: ")


# --- text files --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"a\tb\nc\td\n", b"\xef\xbb\xbfa\tb\nc\td\n", b"a\tb\r\nc\td\r\n", b"\xef\xbb\xbfa\tb\r\nc\td", b"a\tb\rc\td\r"],
    ids=["lf", "bom", "crlf", "bom-crlf-no-final-newline", "cr"],
)
def test_read_text_lines_accepts_bom_and_line_ends(tmp_path, raw):
    (tmp_path / "f.txt").write_bytes(raw)
    assert read_text_lines(tmp_path / "f.txt") == ["a\tb", "c\td"]
    assert read_text(tmp_path / "f.txt") == "a\tb\nc\td" + ("\n" if raw.endswith((b"\n", b"\r")) else "")


def test_read_text_lines_keeps_unicode_separators_inside_values(tmp_path):
    (tmp_path / "f.txt").write_text("a\u2028b\x0cc\nd\n", encoding="utf-8")
    assert read_text_lines(tmp_path / "f.txt") == ["a\u2028b\x0cc", "d"]


def test_read_text_errors_are_one_line(tmp_path):
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(DataError, match=r"latin1.txt is not a UTF-8 text file \(byte 3\)"):
        read_text(tmp_path / "latin1.txt")
    with pytest.raises(DataError, match="index file not found: .*missing.txt"):
        read_text_lines(tmp_path / "missing.txt", "index file")
    with pytest.raises(DataError, match="is a folder, not a text file"):
        read_text(tmp_path)


# --- the data rules ----------------------------------------------------------------------------------------------


def _mixed(root):
    for i in range(3):
        _png(root / f"loose{i}.png")
    for i in range(2):
        _png(root / "thumbs" / f"t{i}.png")
    (root / "empty_dir").mkdir()
    _png(root / ".hidden" / "x.png")
    return root


def test_folder_layout_and_refuse_mixed(tmp_path):
    loose, folders = folder_layout(_mixed(tmp_path))
    assert [p.name for p in loose] == ["loose0.png", "loose1.png", "loose2.png"]
    assert list(folders) == ["thumbs"] and len(folders["thumbs"]) == 2  # empty and hidden folders are ignored
    with pytest.raises(DataError, match=r"holds 3 loose image\(s\) and sub-folder\(s\) with images \(thumbs/ 2\)"):
        refuse_mixed(tmp_path, loose, folders)
    refuse_mixed(tmp_path, loose, {})
    refuse_mixed(tmp_path, [], folders)
    assert count_summary({f"c{i}": i for i in range(10)}, limit=3) == "c0 0, c1 1, c2 2, ... (+7 more)"


def test_image_folder_dataset_refuses_a_mixed_folder(tmp_path):
    with pytest.raises(DataError, match="is ambiguous"):
        ImageFolderDataset(_mixed(tmp_path))


def test_image_folder_dataset_names_loose_images_without_classes(tmp_path):
    _png(tmp_path / "a.png")
    with pytest.raises(DataError, match=r"has no class folders .*, only 1 loose image\(s\)"):
        ImageFolderDataset(tmp_path)


def test_datasets_say_what_they_read(tmp_path, capsys, monkeypatch):
    _png(tmp_path / "cat" / "a.png")
    _png(tmp_path / "cat" / "b.png")
    _png(tmp_path / "dog" / "c.png")
    ImageFolderDataset(tmp_path)
    assert f"read 3 images of 2 class(es) from {tmp_path}: cat 2, dog 1" in capsys.readouterr().out
    monkeypatch.setenv("RANK", "1")  # other ranks of a launched job stay quiet
    ImageFolderDataset(tmp_path)
    assert capsys.readouterr().out == ""
