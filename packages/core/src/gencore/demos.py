"""The demos of every registered package, run in order (``gencore demo-all``, which ``make demo`` runs).

Each package lists its demo in its registry entry (:attr:`gencore.registry.PackageSpec.demo`): invocations of its
own console script, sized so that all of them take about ten minutes on two CPU cores. ``gencore demo-all --full``
(``make demo-full``) runs :attr:`~gencore.registry.PackageSpec.demo_full` instead: the commands behind the
figures of each package's README, at their sizes (hours). They run here as ``python -m <package> <args>`` in a
child process each (the same interpreter, so the environment that has gencore has the packages), one after the
other; a failing step stops the demo with its exit code. Standard library and gencore.registry only: nothing heavy
is imported in this process.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from gencore.demo_report import write_report
from gencore.errors import GencoreError
from gencore.registry import PackageSpec, packages

__all__ = ["DemoStepError", "FULL_REPORT", "demo_specs", "demo_steps", "check_demo_step", "run_demos"]

#: Where ``gencore demo-all --full`` writes its page (the short demo's is :data:`gencore.demo_report.REPORT`).
FULL_REPORT = Path("runs/demo-full/index.html")


class DemoStepError(GencoreError):
    """A demo step that does not parse against its package's CLI, or that failed."""


def demo_specs(only: Sequence[str] = (), full: bool = False) -> list[PackageSpec]:
    """The registered packages with a demo (``full``: with a full demo), by name (``only``: just these; an unknown
    name is an error)."""
    found = packages()
    unknown = sorted(set(only) - set(found))
    if unknown:
        raise DemoStepError(f"no registered package named {', '.join(unknown)} (known: {', '.join(found)})")
    return [spec for name, spec in found.items() if demo_steps(spec, full) and (not only or name in only)]


def demo_steps(spec: PackageSpec, full: bool = False) -> tuple[tuple[str, ...], ...]:
    """The steps of the package's demo, or of its full demo."""
    return spec.demo_full if full else spec.demo


def check_demo_step(spec: PackageSpec, step: Sequence[str]) -> click.Command:
    """Parse ``step`` with the package's CLI without running it (subcommands, options and their types); returns
    the command it names. A step that would fail on usage is a :class:`DemoStepError` naming it."""
    command: click.Command = spec.load_cli()
    args = list(step)
    path = [spec.name]
    try:
        while isinstance(command, click.Group):
            if not args:
                raise click.UsageError("no command given")
            ctx = command.make_context(" ".join(path), [], resilient_parsing=True)
            sub = command.get_command(ctx, args[0])
            if sub is None:
                raise click.UsageError(f"no such command {args[0]!r}")
            path.append(args.pop(0))
            command = sub
        command.make_context(" ".join(path), args)
    except click.ClickException as exc:
        raise DemoStepError(f"demo step of {spec.name} ({' '.join(step)}): {exc.format_message()}") from None
    return command


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes of this process so far (NaN where the platform
    does not say: the ``resource`` module is POSIX-only)."""
    try:
        import resource
    except ImportError:
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_demos(
    only: Sequence[str] = (), echo: Callable[[str], None] = print, full: bool = False
) -> list[tuple[str, float]]:
    """Run the demo steps of every registered package (or of ``only``) in order, then write the report page
    (:mod:`gencore.demo_report`, ``runs/demo/index.html``; with ``full`` the full demos, ``runs/demo-full/``);
    returns (step, seconds) of each.

    Every step is parsed first, so that a broken step stops the demo before anything runs.
    """
    specs = demo_specs(only, full)
    for spec in specs:
        for step in demo_steps(spec, full):
            check_demo_step(spec, step)
    timings = []
    for spec in specs:
        for step in demo_steps(spec, full):
            shown = f"{spec.name} {' '.join(step)}"
            echo(f"== {shown}")
            start, cpu = time.perf_counter(), _children_cpu()
            done = subprocess.run([sys.executable, "-m", spec.import_name, *step], check=False)
            if done.returncode != 0:
                raise DemoStepError(f"demo step failed with exit code {done.returncode}: {shown}")
            timings.append((shown, time.perf_counter() - start))
            # CPU seconds as well: on a machine shared with other jobs the wall time says little about the step
            echo(f"-- {timings[-1][1]:.0f} s wall, {_children_cpu() - cpu:.0f} s CPU: {shown}")
    if full:  # the page shows a spec's demo and demo_outputs: give it the full ones
        specs = [dataclasses.replace(s, demo=s.demo_full, demo_outputs=s.demo_full_outputs) for s in specs]
    for spec in specs:
        if spec.demo_outputs:
            echo(f"{spec.name}: {', '.join(spec.demo_outputs)}")
    report = write_report(specs, dict(timings), FULL_REPORT) if full else write_report(specs, dict(timings))
    echo(f"report: {report} (open it in a browser)")
    return timings
