"""gencore.progress: a bar on a terminal of the main process only, never in tests, pipes or logs."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable

import pytest

from gencore.progress import Counter, batches, progress, progress_enabled


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Callable[[], _Terminal]:
    """Call it in the test body: pytest's output capture sets sys.stderr again between setup and the test."""
    for name in ("RANK", "LOCAL_RANK", "GENCORE_PROGRESS"):
        monkeypatch.delenv(name, raising=False)

    def install() -> _Terminal:
        stream = _Terminal()
        monkeypatch.setattr(sys, "stderr", stream)
        return stream

    return install


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    items = [1, 2, 3]
    assert progress(items, total=3, desc="x") is items
    assert not progress_enabled()
    with Counter(3, "x") as bar:
        bar.update(2)
    assert sys.stderr.getvalue() == ""


def test_a_bar_on_a_terminal_and_the_same_items(terminal: Callable[[], _Terminal]) -> None:
    stream = terminal()
    assert progress_enabled()
    assert list(progress(range(5), total=5, desc="work")) == [0, 1, 2, 3, 4]
    assert "work" in stream.getvalue()
    assert list(batches(10, 4, desc="b")) == [0, 4, 8]
    with Counter(4, "kept") as bar:
        bar.update(4)
    assert "kept" in stream.getvalue()


@pytest.mark.parametrize(("name", "value"), [("RANK", "1"), ("LOCAL_RANK", "3"), ("GENCORE_PROGRESS", "0")])
def test_off_on_other_ranks_and_when_asked(terminal: Callable[[], _Terminal], monkeypatch: pytest.MonkeyPatch,
                                           name: str, value: str) -> None:  # fmt: skip
    stream = terminal()
    monkeypatch.setenv(name, value)
    items = [1]
    assert progress(items) is items
    assert stream.getvalue() == ""


def test_disable_is_quiet(terminal: Callable[[], _Terminal]) -> None:
    stream = terminal()
    items = [1]
    assert progress(items, disable=True) is items
    assert not progress_enabled(disable=True)
    assert stream.getvalue() == ""


def test_sharded_map_with_a_bar_gives_the_same_result(terminal: Callable[[], _Terminal]) -> None:
    stream = terminal()
    import torch

    from gencore.distributed import sharded_map

    def fn(start: int, stop: int) -> torch.Tensor:
        return torch.arange(start, stop)

    assert torch.equal(sharded_map(None, 10, fn, 3, desc="eval"), torch.arange(10))
    assert "eval" in stream.getvalue()


def test_every_command_takes_quiet_and_it_turns_the_bars_off(terminal: Callable[[], _Terminal]) -> None:
    """--quiet is added to every gencore command (gencore.cli.Command); a command that has its own keeps it."""
    import click

    from gencore.cli import Group

    seen: list[bool] = []

    @click.group(cls=Group)
    def cli() -> None:
        pass

    @cli.command()
    def work() -> None:
        seen.append(progress_enabled())

    @cli.command()
    @click.option("--quiet", is_flag=True, help="its own meaning")
    def own(quiet: bool) -> None:
        seen.append(quiet)

    terminal()
    for args in (["work"], ["work", "--quiet"], ["own", "--quiet"]):
        with pytest.raises(SystemExit) as done:
            cli.main(args, prog_name="cli")
        assert done.value.code == 0
    assert seen == [True, False, True]
    assert progress_enabled()  # outside a command again


def test_every_package_command_lists_quiet() -> None:
    import click
    from click.testing import CliRunner

    from gencore.registry import packages, resolve

    def commands(group: click.Group, path: list[str]):  # noqa: ANN202
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from commands(command, [*path, name])
            elif not command.hidden:
                yield [*path, name]

    for spec in packages().values():
        cli = resolve(spec.cli)
        for path in commands(cli, []):
            shown = CliRunner().invoke(cli, [*path, "--help"]).output
            assert "--quiet" in shown, f"{spec.name} {' '.join(path)}"
