"""Commands that write a folder (m1 ``extract``, vqgan ``make-negatives``) or replace a file: they used to delete
whatever folder ``-o`` named, the user's files and the command's own input included. Now a folder is written only
when new or empty; an earlier output of the same command (known by its manifest) is replaced, whole and
atomically, only with ``--overwrite``; anything else is refused with one line and left as it was."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: make the sibling helper modules importable

from bad_inputs import _config, snapshot, tiny  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny trained m1 run and a tiny vqgan prior (first stage + transformer)."""
    from m1_hyperspectral.config import M1RunConfig
    from m1_hyperspectral.train import run_training as m1_train
    from vqgan_negatives import train as vq_train
    from vqgan_negatives import train_transformer as gpt_train
    from vqgan_negatives.config import TransformerRunConfig, VQGANConfig

    root = tmp_path_factory.mktemp("runs")
    few = ["train.max_steps=2", "train.checkpoint_every=2", "train.progress_bar=false"]
    m1_train(_config(M1RunConfig, tiny("m1"), root / "m1", *few))
    small = ["data.num_images=16", "data.holdout_fraction=0.25", "train.max_steps=1", "train.checkpoint_every=1"]
    vq_train.run_training(_config(VQGANConfig, tiny("vqgan", "TINY_VQ"), root / "vqgan", *small))
    vqgan = f"vqgan={str(root / 'vqgan')!r}"
    gpt_train.run_training(_config(TransformerRunConfig, tiny("vqgan", "TINY_GPT"), root / "gpt", *small, vqgan))
    return {"m1": root / "m1", "gpt": root / "gpt"}


def _invoke(package: str, args: list[str]):  # noqa: ANN202
    from bad_inputs import load_cli

    return CliRunner().invoke(load_cli(package), args, prog_name=package)


def _last_line(result) -> str:  # noqa: ANN001
    return (result.stderr.strip().splitlines() or [""])[-1]


COMMANDS = {
    "m1-extract-npy": ("m1", lambda r, out: ["extract", str(r["m1"]), "-o", str(out), "--format", "npy"]),
    "vqgan-make-negatives": ("vqgan", lambda r, out: ["make-negatives", str(r["gpt"]), "-n", "2", "-o", str(out),
                                                       "--batch-size", "8"]),
}  # fmt: skip


@pytest.mark.parametrize("command", list(COMMANDS))
def test_folder_output_rule(tmp_path: Path, runs: dict[str, Path], command: str) -> None:
    package, argv = COMMANDS[command]
    out = tmp_path / "out"

    # the user's folder (their notes and an input file): refused untouched, with or without --overwrite
    user = tmp_path / "user"
    user.mkdir()
    (user / "NOTES.txt").write_text("mine\n")
    (user / "scene.npy").write_bytes(b"\x93NUMPY not really")
    before = snapshot(tmp_path)
    for extra in ([], ["--overwrite"]):
        result = _invoke(package, [*argv(runs, user), *extra])
        assert result.exit_code == 2, result.output
        assert "already holds files this command did not write (NOTES.txt, scene.npy)" in _last_line(result)
    assert snapshot(tmp_path) == before

    # new folder: written; the same again: refused without --overwrite, replaced with it
    first = _invoke(package, argv(runs, out))
    assert first.exit_code == 0, first.output
    written = snapshot(out)
    again = _invoke(package, argv(runs, out))
    assert again.exit_code == 2 and "pass --overwrite to replace it" in _last_line(again), again.output
    assert snapshot(out) == written
    replaced = _invoke(package, [*argv(runs, out), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert sorted(snapshot(out)) == sorted(written)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".tmp-", ".old-"))]

    # a file the user added to an earlier output makes it theirs: refused even with --overwrite
    (out / "my_labels.csv").write_text("a,b\n")
    before = snapshot(tmp_path)
    result = _invoke(package, [*argv(runs, out), "--overwrite"])
    assert result.exit_code == 2 and "my_labels.csv" in _last_line(result), result.output
    assert snapshot(tmp_path) == before

    # an empty folder is fine
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _invoke(package, argv(runs, empty)).exit_code == 0


def test_h5_output_is_never_an_input_and_replaced_only_with_overwrite(tmp_path: Path, runs: dict[str, Path]) -> None:
    import numpy as np

    scene = tmp_path / "scene.npy"
    np.save(scene, np.random.default_rng(0).random((4, 4, 12)).astype(np.float32))
    before = scene.read_bytes()
    result = _invoke("m1", ["extract", str(runs["m1"]), str(scene), "-o", str(scene), "--format", "h5", "--overwrite"])
    assert result.exit_code == 2 and "is an input of this command" in _last_line(result), result.output
    assert scene.read_bytes() == before
    out = tmp_path / "features.h5"
    assert _invoke("m1", ["extract", str(runs["m1"]), str(scene), "-o", str(out)]).exit_code == 0
    result = _invoke("m1", ["extract", str(runs["m1"]), str(scene), "-o", str(out)])
    assert result.exit_code == 2 and "pass --overwrite" in _last_line(result)
    assert _invoke("m1", ["extract", str(runs["m1"]), str(scene), "-o", str(out), "--overwrite"]).exit_code == 0
