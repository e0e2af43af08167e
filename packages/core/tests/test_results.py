from __future__ import annotations

import json
import pathlib

import pytest

from gencore.results import write_json


def test_write_json_is_indented_with_a_trailing_newline_and_makes_folders(tmp_path):
    path = write_json(tmp_path / "eval" / "evaluation.json", {"fid": 1.5, "n": 3, "name": "ré"})
    assert path == tmp_path / "eval" / "evaluation.json"
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps({"fid": 1.5, "n": 3, "name": "ré"}, indent=2) + "\n"
    write_json(path, {"b": 1, "a": 2}, indent=1, sort_keys=True)
    assert path.read_text() == '{\n "a": 2,\n "b": 1\n}\n'
    assert [p.name for p in path.parent.iterdir()] == ["evaluation.json"]  # no temporary file left


def test_a_value_json_cannot_hold_leaves_the_old_file(tmp_path):
    path = write_json(tmp_path / "r.json", {"ok": 1})
    with pytest.raises(TypeError):
        write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1} and len(list(tmp_path.iterdir())) == 1


def test_a_crash_while_writing_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = write_json(tmp_path / "r.json", {"ok": 1})

    def crash(self, text, encoding=None):  # the disk fills up half way
        with open(self, "w") as fh:
            fh.write(text[: len(text) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_text", crash)
    with pytest.raises(OSError, match="No space"):
        write_json(path, {"new": list(range(100))})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"ok": 1} and len(list(tmp_path.iterdir())) == 1
