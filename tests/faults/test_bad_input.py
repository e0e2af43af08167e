"""Every CLI fed broken input: it must fail with one clear line (or click's short usage error), no traceback,
exit code 2, an error naming the problem, and no change to any input file.

The table is in bad_cases.py, the broken inputs and tiny trained runs in bad_inputs.py. Accepted failure
forms: gencore's ``error: <one line>`` (a problem with what a file or config holds), or click's own usage error
(``Usage:``/``Try``/``Error:``, at most three lines) for an option value that click's types already reject
(a choice, a range, an integer): both are short, name the option or file, and exit with code 2.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: make the sibling helper modules importable

from bad_cases import Case, all_cases  # noqa: E402
from bad_inputs import (  # noqa: E402
    build_inputs,
    damage_runs,
    diff_snapshots,
    failure_problems,
    load_cli,
    snapshot,
    train_runs,
)

CASES = all_cases()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The damaged inputs and the tiny runs (trained once for the module), and their snapshot."""
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("world")
    inputs = build_inputs(root / "in")
    runs = train_runs(root / "runs")
    damage_runs(runs, root / "runs" / "bad")
    return {"root": root, "in": inputs, "runs": root / "runs"}


def _expand(arg: str, world: dict[str, Path], out: Path) -> str:
    return arg.replace("$IN", str(world["in"])).replace("$RUNS", str(world["runs"])).replace("$OUT", str(out))


def test_table_size() -> None:
    """At least 100 cases, and every package has some; prints the count per package."""
    per_package = Counter(case.package for case in CASES)
    print(f"bad-input cases: {len(CASES)} ({', '.join(f'{k} {v}' for k, v in per_package.items())})")
    assert len(CASES) >= 100
    assert len({case.id for case in CASES}) == len(CASES), "case ids must be unique"
    assert set(per_package) == {"gencore", "dcgan", "hvae", "m1", "vqgan", "ganwriting"}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, world: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)  # default output paths (samples.png, runs/...) land in the case's own directory
    monkeypatch.delenv("GENCORE_DEBUG", raising=False)
    args = [_expand(a, world, out) for a in case.args]
    before = snapshot(world["root"])
    result = CliRunner().invoke(load_cli(case.package), args, prog_name=case.package)
    changes = diff_snapshots(before, snapshot(world["root"]))
    problems = failure_problems(result, _expand(case.expect, world, out))
    if changes:
        problems.append(f"inputs touched: {changes[:5]}")
    assert not problems, "\n".join([*problems, f"stdout: {result.stdout[-800:]}", f"stderr: {result.stderr[-800:]}"])


def test_checker_can_fail(tmp_path: Path) -> None:
    """The table's checks really bite: a traceback, two error lines, success, a wrong message and a touched
    input file are each reported."""
    import click
    from click.testing import CliRunner

    from gencore.cli import Command
    from gencore.errors import DataError

    @click.command(cls=Command)
    @click.argument("what")
    def probe(what: str) -> None:
        if what == "bug":
            raise ValueError("a bug")
        if what == "two":
            click.echo("error: one\nerror: two", err=True)
            raise SystemExit(2)
        if what == "data":
            raise DataError("file.png is broken")

    def problems(what: str, expect: str) -> list[str]:
        return failure_problems(CliRunner().invoke(probe, [what]), expect)

    assert any("uncaught ValueError" in p for p in problems("bug", "bug"))
    assert any("2 lines" in p for p in problems("two", "one"))
    assert any("exit code 0" in p for p in problems("ok", ""))
    assert any("does not name" in p for p in problems("data", "other.png"))
    assert problems("data", "file.png is broken") == []
    assert problems("--bogus", "No such option") == []  # click's usage error is accepted
    (tmp_path / "f").write_text("x")
    before = snapshot(tmp_path)
    (tmp_path / "f").write_text("y")
    assert diff_snapshots(before, snapshot(tmp_path)) == ["changed f"]
