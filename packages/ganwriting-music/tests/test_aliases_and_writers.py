"""DeepScores/MUSCIMA++ class names, the final epoch message and the held-out writer."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganwriting_music.cli import main
from ganwriting_music.config import CLASSES, DataConfig
from ganwriting_music.data import canonical_class, load_source, read_class_folders, read_index, split_by_writer
from ganwriting_music.train import read_epochs, run_training
from gencore.errors import DataError


def _img(path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.full((24, 24), 255, np.uint8)
    a[4 + seed % 5 : 18, 6 : 12 + seed % 6] = 0
    Image.fromarray(a).save(path)


def test_deepscores_and_muscima_names_map_to_the_classes():
    for name, cls in [("clefG", "gClef"), ("clefCAlto", "cClef"), ("noteheadBlackOnLine", "noteheadBlack"),
                      ("noteheadHalfInSpace", "noteheadHalf"), ("notehead-full", "noteheadBlack"),
                      ("g-clef", "gClef"), ("8th_rest", "rest8th"), ("keySharp", "accidentalSharp"),
                      ("thin_barline", "barlineSingle"), ("GCLEF", "gClef"), ("cleff", "fClef")]:  # fmt: skip
        assert canonical_class(name, CLASSES) == cls
    with pytest.raises(DataError, match=r"^x: class 'clef' is ambiguous: it could be gClef or fClef or cClef"):
        canonical_class("clef", CLASSES, where="x: ")
    with pytest.raises(DataError, match="'notehead-empty' is ambiguous: it could be noteheadHalf or noteheadWhole"):
        canonical_class("notehead-empty", CLASSES)
    with pytest.raises(DataError, match=r"unknown class 'clefPercussion'; nearest known: .*cClef"):
        canonical_class("clefPercussion", CLASSES)
    with pytest.raises(DataError, match="'clefF' means fClef, which is not among the classes"):
        canonical_class("clefF", ["gClef"])


def test_hidden_layout_deepscores_class_folders(tmp_path):
    """A folder named like DeepScoresV2 (two folders for one class) trains like SMuFL names; bad names are one line."""
    root = tmp_path / "ds"
    for i, folder in enumerate(["clefG", "noteheadBlackOnLine", "noteheadBlackInSpace", "stem"]):
        for j in range(2):
            _img(root / folder / f"{j}.png", i + j)
    classes = ["gClef", "noteheadBlack", "stem"]
    entries = read_class_folders(root, classes)
    assert sorted({c for _, c, _ in entries}) == classes and sum(c == "noteheadBlack" for _, c, _ in entries) == 4
    data = load_source(DataConfig(source=str(root), image_size=16, classes=classes, holdout_writers=[]))
    assert data.counts() == {"gClef": 2, "noteheadBlack": 4, "stem": 2}
    index = tmp_path / "index.txt"
    index.write_text(f"{root / 'clefG' / '0.png'}\tclefG\n{root / 'stem' / '0.png'}\tnotehead-full\n")
    assert [c for _, c, _ in read_index(index, classes)] == ["gClef", "noteheadBlack"]
    _img(root / "notehead-empty" / "0.png", 0)
    result = CliRunner().invoke(main, ["read-classes", str(root), "-o", str(tmp_path / "i.txt")])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "'notehead-empty' is ambiguous" in lines[0]
    result = CliRunner().invoke(main, ["read-classes", str(root), "-o", str(tmp_path / "i.txt"), "--skip-unknown"])
    assert result.exit_code == 0 and "3 classes" in result.output


def test_held_out_writer_is_no_model_writer(tmp_path, tiny_config, capsys):
    """A data folder with three writers, Petaluma held out: the model knows two; the final message counts epochs
    like epochs.json, also when --max-steps ends the run at the last update of an epoch."""
    root = tmp_path / "writers"
    for w, writer in enumerate(["Anna", "Ben", "Petaluma"]):
        for c, cls in enumerate(["gClef", "stem"]):
            for j in range(4):
                _img(root / writer / cls / f"{j}.png", w + c + j)
    data = load_source(DataConfig(source=str(root), image_size=16, classes=["gClef", "stem"], holdout_writers=[]))
    train, held = split_by_writer(data, ["Petaluma"])
    assert train.writer_names == ["Anna", "Ben"] and held.writer_names == ["Petaluma"]
    assert sorted(set(train.writers.tolist())) == [0, 1] and set(held.writers.tolist()) == {0}
    config = tiny_config(tmp_path / "run", f"data.source={str(root)!r}", 'data.classes=["gClef", "stem"]',
                         "data.test_fraction=0", "train.max_epochs=2", "train.max_steps=4")  # fmt: skip
    result = run_training(config, 0)
    out = capsys.readouterr().out
    assert "2 writer(s) (Anna, Ben; held out: Petaluma)" in out
    from ganwriting_music.train import load_networks

    assert load_networks(tmp_path / "run").config.writers == ["Anna", "Ben"]
    assert result.reason == "max_steps" and read_epochs(tmp_path / "run" / "checkpoints") == {"1": "step_000002",
                                                                                              "2": "step_000004"}
    assert "done (max_steps) after epoch 2, step 4" in out  # was "at epoch 1"
