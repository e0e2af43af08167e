"""The hostile path table: values read from data files that try to leave the output folder, and text files saved
the way Windows tools save them, each run through a package's real console script in a process of its own (forked
from the fault tests' pre-imported interpreter, tests/faults/forkserver.py).

Data values that become output paths: writer and class names of ganwriting-music index files (``clean``), the class
list of a trained model's config.json (``generate --save-dir``; ``export-mashcima`` names its files by Mashcima's
symbol names, never by the model's), the checkpoint names of a run's epochs.json (``train N``), CAPTCHA texts that
become file names (``hvae-captcha data make``). Each is tried with ``../x``, an absolute path, ``a/../../b``, a NUL
byte, and (for the output folder) a symbolic link that leads out. Read paths of index files follow
gencore.paths.listed_path: relative to the index file's folder, ``..`` and absolute paths allowed (reading cannot
damage anything; a file that is not an image is refused by name), NUL refused. Text: a byte-order mark, CRLF and
both together must lose nothing (the first line included).

Every row asserts the exit code (2: refused with one line ``error: ...`` containing ``expect``, nothing written
at all; 0: accepted, ``expect`` in stdout), no traceback, nothing written outside the output root (the case
directory holds nothing but ``out/``), and every input plus a sibling ``victim/`` folder unchanged (SHA-256 of
each file before and after). Names are never rewritten (sanitised) here: in these layouts a folder or file name
is the label, so a changed name would be a silently changed label; every hostile value is refused instead.

Where the class does not apply: dcgan-tutorial, m1-hyperspectral and vqgan-negatives name every output file
themselves (grid.png, mean.npy, negative_0000.png, manifest.csv ...) and build no output path from a data value;
their data rules (mixed folders, damaged MNIST files, weight files, foreign first stages) are rows of the
bad-input table (bad_cases.data_rule_cases) and of the tests below the table.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import fault_jobs as jobs
import pytest
from bad_inputs import _png_bytes, as_sets, tiny, write_manifest

BIN = Path(sys.executable).parent
SCRIPTS = {"ganwriting": "ganwriting-music", "hvae": "hvae-captcha"}


@dataclass(frozen=True)
class Hostile:
    """``package`` run with ``args`` exits with ``code``; ``expect`` is in its error line (2) or stdout (0).
    ``setup`` prepares ``$OUT`` first (a copy of a trained run, damaged)."""

    package: str
    name: str
    args: tuple[str, ...]
    code: int
    expect: str
    setup: str | None = None

    @property
    def id(self) -> str:
        return f"{self.package}-{self.name}"


def _rows() -> list[Hostile]:
    refused = "cannot be used as a file or folder name"
    clean = ["-o", "$OUT/c"]  # after the source: ganwriting-music clean SOURCE -o $OUT/c
    rows = [
        # writers of an index file, written as OUT/<writer>/<class>/*.png by clean
        ("writer-dotdot-slash", "$IN/writer_dotdot.txt", 2, f"writer '../x' {refused}: it contains a path"),
        ("writer-absolute", "$IN/writer_abs.txt", 2, f"'$VICTIM/abs' {refused}: it contains a path"),
        ("writer-climbs", "$IN/writer_climb.txt", 2, f"writer 'a/../../b' {refused}"),
        ("writer-dotdot", "$IN/writer_dots.txt", 2, f"writer '..' {refused}: '..' is not a name"),
        ("writer-nul", "$IN/writer_nul.txt", 2, f"{refused}: it contains a NUL byte"),
        ("writer-backslash", "$IN/writer_backslash.txt", 2, f"{refused}: it contains a path separator"),
        # paths in an index file (reads): relative to its folder, '..' and absolute allowed, NUL refused
        ("path-nul", "$IN/path_nul.txt", 2, "path_nul.txt:1: path 'imgs/a\\x00.png' contains a NUL byte"),
        ("path-climbs-to-images", "$IN/lists/up.txt", 0, "wrote 2 images to $OUT/c"),
        ("path-absolute", "$IN/abs_path.txt", 0, "wrote 2 images to $OUT/c"),
        # text files saved with a byte-order mark and CRLF: nothing lost, the first line included
        ("index-bom", "$IN/bom.txt", 0, "wrote 3 images to $OUT/c"),
        ("index-crlf", "$IN/crlf.txt", 0, "wrote 3 images to $OUT/c"),
        ("index-bom-crlf", "$IN/bom_crlf.txt", 0, "wrote 3 images to $OUT/c"),
    ]
    found = [Hostile("ganwriting", name, ("clean", source, *clean), code, expect)
             for name, source, code, expect in rows]  # fmt: skip
    tiny_gw = as_sets(tiny("ganwriting"))
    run = "$OUT/run"
    generate = ["generate", run, "-n", "4", "--save-dir", "$OUT/s", "-o", "$OUT/g.png"]
    mashcima = ["export-mashcima", run, "-o", "$OUT/m", "-n", "1"]
    more = [
        ("homus-bom-crlf", ["render-homus", "$IN/homus", "-o", "$OUT/h"], 0, "rendered 2 symbols of 1 writer(s)",
         None),
        ("path-to-a-secret", ["train", *tiny_gw, "--data", "$IN/secret.txt", "--output-dir", run], 2,
         "cannot read image $VICTIM/secret.txt", None),
        # a trained model's class list (model/config.json, its manifest forged to match) becomes folder names
        ("model-class-dotdot", generate, 2, f"class '../x' {refused}", "class:../x"),
        ("model-class-absolute", generate, 2, f"class '$VICTIM' {refused}", "class:$VICTIM"),
        ("model-class-climbs", generate, 2, f"class 'a/../../b' {refused}", "class:a/../../b"),
        # the Mashcima export names its files by Mashcima's symbol names, never by the model's class names
        ("model-class-mashcima", mashcima, 2, "none of the model's classes has a Mashcima symbol name",
         "class:a/../../b"),
        ("model-class-nul", generate, 2, f"{refused}: it contains a NUL byte", "class:g\x00Clef"),
        ("output-symlink-out", generate, 2, "a symbolic link in $OUT/s/gClef/00001.png leads outside it", "symlink"),
        # a run's epochs.json names the checkpoint folder of each epoch: a name that points elsewhere is refused
        ("epochs-entry-dotdot", ["train", "1", *tiny_gw, "--output-dir", run], 2,
         "epochs.json: the checkpoint of epoch 1 '../../../victim' cannot be used", "epochs:../../../victim"),
        ("epochs-entry-absolute", ["train", "1", *tiny_gw, "--output-dir", run], 2,
         "epochs.json: the checkpoint of epoch 1 '$VICTIM' cannot be used", "epochs:$VICTIM"),
    ]  # fmt: skip
    found += [Hostile("ganwriting", name, tuple(args), code, expect, setup)
              for name, args, code, expect, setup in more]  # fmt: skip
    make = ["data", "make", "-o", "$OUT/c", "-n", "6", "--text-length", "3"]
    found += [  # CAPTCHA texts are file names: <text>.png
        Hostile("hvae", "captcha-text-separators", (*make, "--alphabet", "/."), 2,
                "cannot be used as a file or folder name: it contains a path separator"),
        Hostile("hvae", "captcha-text-dots-only", (*make, "--alphabet", "."), 2, "CAPTCHA text '...' cannot be a file "
                "name <text>.png: it starts with '.'"),
        Hostile("hvae", "captcha-text-underscore", (*make, "--alphabet", "_a"), 2, "contains '_' (read back as the "
                "text before it)"),
    ]  # fmt: skip
    return found


ROWS = _rows()


def _files(root: Path) -> dict[str, str]:
    """Every file under ``root`` -> SHA-256 (links: their target), for the before/after comparison."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = "link->" + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Inputs (``in/``) and a sibling folder the hostile values aim at (``victim/``)."""
    root = tmp_path_factory.mktemp("hostile")
    src, victim = root / "in", root / "victim"
    (src / "imgs").mkdir(parents=True)
    (src / "lists").mkdir()
    victim.mkdir()
    for i, name in enumerate("abc"):
        (src / "imgs" / f"{name}.png").write_bytes(_png_bytes(24 + 4 * i))
    (victim / "keep.png").write_bytes(_png_bytes(40))
    (victim / "secret.txt").write_text("root:x:0:0\n")

    def index(name: str, lines: list[str], bom: bool = False, newline: str = "\n") -> None:
        text = "".join(line + newline for line in lines)
        (src / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))

    good = "imgs/b.png\tgClef\tw"
    index("writer_dotdot.txt", ["imgs/a.png\tgClef\t../x", good])
    index("writer_abs.txt", [f"imgs/a.png\tgClef\t{victim}/abs", good])
    index("writer_climb.txt", ["imgs/a.png\tgClef\ta/../../b", good])
    index("writer_dots.txt", ["imgs/a.png\tgClef\t..", good])
    index("writer_nul.txt", ["imgs/a.png\tgClef\tw\x00x", good])
    index("writer_backslash.txt", ["imgs/a.png\tgClef\t..\\..\\x", good])
    index("path_nul.txt", ["imgs/a\x00.png\tgClef\tw", good])
    index("lists/up.txt", ["../imgs/a.png\tgClef\tw", "../imgs/b.png\tfClef\tw"])
    index("abs_path.txt", [f"{src}/imgs/a.png\tgClef\tw", f"{src}/imgs/b.png\tfClef\tw"])
    index("secret.txt", ["imgs/a.png\tgClef\tw", f"{victim}/secret.txt\tgClef\tw", "imgs/b.png\tgClef\tw"])
    three = ["imgs/a.png\tgClef\tw", "imgs/b.png\tgClef\tw", "imgs/c.png\tfClef\tw"]
    index("bom.txt", three, bom=True)
    index("crlf.txt", three, newline="\r\n")
    index("bom_crlf.txt", three, bom=True, newline="\r\n")
    (src / "homus" / "w1").mkdir(parents=True)
    (src / "homus" / "w1" / "1.txt").write_bytes(b"\xef\xbb\xbfG-Clef\r\n1,2;3,4;5,9\r\n2,2;8,8\r\n")
    (src / "homus" / "w1" / "2.txt").write_bytes(b"\xef\xbb\xbfSharp\r\n1,1;1,9\r\n4,1;4,9\r\n")
    return {"root": root, "in": src, "victim": victim}


def _expand(text: str, world: dict[str, Path], out: Path) -> str:
    return text.replace("$IN", str(world["in"])).replace("$VICTIM", str(world["victim"])).replace("$OUT", str(out))


def _setup(spec: str, out: Path, world: dict[str, Path], trained: Callable[[str, Path], Path]) -> None:
    """Prepare ``out`` for a row: a copy of the trained ganwriting run at ``out/run``, damaged as ``spec`` says."""
    run = trained("ganwriting-music", out / "run")
    kind, _, value = spec.partition(":")
    value = _expand(value, world, out)
    if kind == "class":  # one class name of the model replaced, the manifest forged to match
        path = run / "model" / "config.json"
        config = json.loads(path.read_text())
        config["classes"][1] = value
        path.write_text(json.dumps(config))
        write_manifest(run / "model")
    elif kind == "symlink":  # the output folder's class folder is a link to the victim
        (out / "s").mkdir()
        (out / "s" / "gClef").symlink_to(world["victim"], target_is_directory=True)
    elif kind == "epochs":
        (run / "checkpoints" / "epochs.json").write_text(json.dumps({"1": value}))


def _run(package: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("GENCORE_DEBUG", None)
    return jobs.processes().run([str(BIN / SCRIPTS[package]), *args], env=env, cwd=cwd, timeout=300)


def test_table_covers_every_hostile_kind() -> None:
    names = " ".join(row.name for row in ROWS)
    for kind in ("dotdot", "absolute", "climbs", "nul", "bom", "crlf", "symlink"):
        assert kind in names, kind
    assert len({row.id for row in ROWS}) == len(ROWS)
    print(f"hostile path cases: {len(ROWS)}")


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_hostile_path(row: Hostile, world: dict[str, Path], tmp_path: Path, trained) -> None:
    case, out = tmp_path / "case", tmp_path / "case" / "out"
    out.mkdir(parents=True)
    if row.setup:
        _setup(row.setup, out, world, trained)
    before_world, before_out = _files(world["root"]), _files(out)
    done = _run(row.package, [_expand(a, world, out) for a in row.args], cwd=case)
    expect = _expand(row.expect, world, out)
    problems = []
    if done.returncode != row.code:
        problems.append(f"exit code {done.returncode}, expected {row.code}")
    if "Traceback" in done.stdout + done.stderr:
        problems.append("a traceback was printed")
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    if row.code == 2:
        if len(errors) != 1 or not errors[0].startswith("error: "):
            problems.append(f"stderr is not one 'error: ...' line: {errors[:4]}")
        elif expect not in errors[0]:
            problems.append(f"the error does not say {expect!r}")
        written = sorted(set(_files(out).items()) ^ set(before_out.items()))
        if written:
            problems.append(f"a refused command wrote into the output root: {written[:5]}")
    elif expect not in done.stdout:
        problems.append(f"stdout does not say {expect!r}")
    outside = sorted(p.name for p in case.iterdir() if p.name != "out")
    if outside:
        problems.append(f"written outside the output root: {outside}")
    if _files(world["root"]) != before_world:
        changed = set(_files(world["root"]).items()) ^ set(before_world.items())
        problems.append(f"inputs or the victim folder changed: {sorted(changed)[:5]}")
    assert not problems, "\n".join([*problems, f"stdout: {done.stdout[-600:]}", f"stderr: {done.stderr[-600:]}"])


@pytest.mark.slow
def test_vqgan_takes_every_image_of_a_mixed_folder_and_says_so(world: dict[str, Path], tmp_path: Path) -> None:
    """vqgan-negatives reads image folders recursively and has no classes: loose images beside a sub-folder are not
    ambiguous there, so all of them are taken, and the command prints where they came from."""
    data = tmp_path / "mixed"
    for i in range(3):
        (data / f"loose{i}.png").parent.mkdir(parents=True, exist_ok=True)
        (data / f"loose{i}.png").write_bytes(_png_bytes(24 + 2 * i))
    (data / "thumbs").mkdir()
    for i in range(2):
        (data / "thumbs" / f"t{i}.png").write_bytes(_png_bytes(30 + 2 * i))
    args = ["train-vqgan", *as_sets(tiny("vqgan", "TINY_VQ")), "--data", str(data), "--max-steps", "1",
            "--batch-size", "2", "--output-dir", str(tmp_path / "run")]  # fmt: skip
    before = _files(data)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = jobs.processes().run([str(BIN / "vqgan-negatives"), *args], env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-800:]
    assert f"read 5 images from {data}: loose 3, thumbs/ 2" in done.stdout
    assert _files(data) == before
