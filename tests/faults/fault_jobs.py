"""Tiny training jobs of every package, run as real CLI processes, for the fault tests and benchmarks/faults.py.

Each job is the package's own console command with the tiny preset of the package registry (gencore.registry: the
same settings the package's tests build, so the two never drift apart), as its spec's ``fault_job`` describes it,
checkpointing every update so that faults land in checkpoint writes as often as in training. Every registered
package has one, so a new package is covered by registering it. ``child.py`` runs a job with a fault switched on.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from safetensors.numpy import load_file

from gencore.registry import PackageSpec, packages

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("child.py")


class Subprocesses:
    """Starts every command as a fresh interpreter (:mod:`subprocess`); the fault tests' session swaps in a
    ``forkserver.ForkServer``, which has the same two methods, with :func:`started_by`."""

    def popen(self, cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
              stdout: int | None = None, stderr: int | None = None, text: bool = False,
              ) -> subprocess.Popen:  # fmt: skip
        """:class:`subprocess.Popen` of ``cmd``."""
        return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=stdout, stderr=stderr, text=text)

    def run(self, cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float | None = None) -> subprocess.CompletedProcess:  # fmt: skip
        """:func:`subprocess.run` of ``cmd``, output captured as text."""
        return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


FRESH = Subprocesses()
_starter: list = [FRESH]  # what starts the jobs' processes now (see started_by)


def processes() -> Subprocesses:
    """What starts the jobs' processes: fresh interpreters, or the session's fork server."""
    return _starter[-1]


@contextlib.contextmanager
def started_by(starter: Subprocesses) -> Iterator[None]:
    """Within the block, the jobs' processes are started by ``starter`` (a fork server)."""
    _starter.append(starter)
    try:
        yield
    finally:
        _starter.remove(starter)


def base_env() -> dict[str, str]:
    """The environment of every job: this one, one thread, no GPU, unbuffered output, no fault."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("GENCORE_FAULT", None)
    return env


def _sets(items: tuple[str, ...] | list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@dataclass(frozen=True)
class Job:
    """One package's training command: ``entry`` (module:function of its click CLI) and arguments."""

    name: str
    entry: str
    args: tuple[str, ...]
    steps: int  # updates of the whole run
    extra: tuple[str, ...] = field(default=())
    epochs: int | None = None  # an epoch-counted job (its length is ``train.max_epochs=N``, not ``--max-steps``)

    def argv(self, run_dir: Path, *more: str) -> list[str]:
        """Arguments of the CLI (without the program name) for a run in ``run_dir``."""
        return [*self.args, "--output-dir", str(run_dir), *self.extra, *more]

    def long(self) -> list[str]:
        """Arguments that make the run go on far longer than any test waits (it is stopped by a signal)."""
        return ["--set", "train.max_epochs=100000"] if self.epochs is not None else ["--max-steps", "1000000"]

    def longer(self) -> list[str]:
        """Arguments that make the run a little longer than the job (one more epoch, two more updates)."""
        if self.epochs is not None:
            return ["--set", f"train.max_epochs={self.epochs + 1}"]
        return ["--max-steps", str(self.steps + 2)]


def job_of(spec: PackageSpec) -> Job:
    """The fault job of a registered package, as its spec's ``fault_job`` describes it."""
    fault = spec.fault_job
    command = spec.command(fault.command)
    settings = [*command.preset("tiny"), *fault.overrides]
    if fault.epochs is None:  # a checkpoint every update, the last two kept
        length = [*_sets(["train.checkpoint_every=1", "train.keep_checkpoints=2"]), "--max-steps", str(fault.steps)]
    else:  # epoch-counted: its preset's checkpoint cadence; two kept, so that pruning is exercised too
        length = _sets([f"train.max_epochs={fault.epochs}", "train.keep_checkpoints=2"])
    args = (*command.head(), *_sets(settings), *length)
    return Job(spec.name, spec.cli, args, fault.steps, command.resume_args(), fault.epochs)


def jobs() -> dict[str, Job]:
    """The jobs by package name: one per registered package (gencore's demo included)."""
    return {name: job_of(spec) for name, spec in packages().items()}


def command(
    job: Job, run_dir: Path, fault: str | None = None, extra: tuple[str, ...] = ()
) -> tuple[list[str], dict[str, str]]:
    """The subprocess command line and environment of ``job`` in ``run_dir`` (+ ``extra`` arguments, a fault)."""
    env = base_env()
    if fault:
        env["GENCORE_FAULT"] = fault
    return [sys.executable, str(CHILD), job.entry, *job.argv(run_dir, *extra)], env


def run(
    job: Job, run_dir: Path, fault: str | None = None, timeout: float = 300, extra: tuple[str, ...] = (),
    starter: Subprocesses | None = None,
) -> subprocess.CompletedProcess:
    """Run ``job`` (+ ``extra`` arguments) to its end or its fault; returns the finished process.

    ``starter``: what starts the process (default :func:`processes`; ``FRESH`` for a fresh interpreter).
    """
    cmd, env = command(job, run_dir, fault, extra)
    return (starter or processes()).run(cmd, env=env, timeout=timeout)


def state_digest(run_dir: Path) -> dict[str, str]:
    """SHA-256 of every tensor of the newest checkpoint and of the exported model(s), by file and key.

    JSON parts (elapsed time, paths) are left out: only what training computed is compared.
    """
    from gencore.checkpoint import list_checkpoints

    named = {}
    if (run_dir / "model").is_dir():
        named.update({p.relative_to(run_dir).as_posix(): p for p in sorted((run_dir / "model").rglob("*.safetensors"))})
    ckpts = list_checkpoints(run_dir / "checkpoints")
    if ckpts:
        named.update({f"checkpoints/{ckpts[-1].name}/{p.name}": p for p in sorted(ckpts[-1].glob("*.safetensors"))})
    return {
        f"{name}:{key}": hashlib.sha256(value.tobytes()).hexdigest()
        for name, path in named.items()
        for key, value in load_file(str(path)).items()
    }


def damaged_checkpoints(run_dir: Path) -> list[str]:
    """Checkpoint directories under ``run_dir`` that look complete by name but fail verification."""
    from gencore.checkpoint import list_checkpoints, verify_dir
    from gencore.errors import CheckpointError

    bad = []
    for path in list_checkpoints(run_dir / "checkpoints"):
        try:
            verify_dir(path)
        except CheckpointError as exc:
            bad.append(f"{path.name}: {exc}")
    return bad


@dataclass
class KillTrial:
    """What one kill -9 and the ``--resume auto`` after it gave."""

    job: str
    fault: str
    killed: bool  # the process died of SIGKILL (not finished before the kill)
    damaged_on_disk: list[str]  # step_N directories that fail verification after the kill (skipped on resume)
    resumed: bool  # the resumed run finished with exit code 0
    resumed_from: str | None  # checkpoint the resumed run started from (None: started fresh)
    corrupt_taken: bool  # it started from one of the damaged checkpoints
    equal: bool  # its final tensors equal the unbroken run's, bit for bit
    message: str = ""


def kill_trial(job: Job, run_dir: Path, reference: dict[str, str], fault: str | None = None,
               delay: float | None = None, timeout: float = 300) -> KillTrial:  # fmt: skip
    """SIGKILL ``job`` (an injected ``fault``, or after ``delay`` s), resume it, compare it with ``reference``."""
    import re
    import signal
    import time

    cmd, env = command(job, run_dir, fault)
    proc = processes().popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if delay is not None:
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=timeout)
    time.sleep(0.05)
    killed = proc.returncode == -signal.SIGKILL
    damaged = damaged_checkpoints(run_dir)
    done = run(job, run_dir, timeout=timeout)
    found = re.search(r"resumed from (\S+)", done.stdout + done.stderr)
    start = Path(found.group(1)).name if found else None
    equal = done.returncode == 0 and state_digest(run_dir) == reference
    message = "" if done.returncode == 0 else (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    if not killed and proc.returncode not in (0, None):
        message = f"first run exited {proc.returncode}: {(err.strip().splitlines() or [''])[-1]}"
    return KillTrial(job.name, fault or f"random:{delay:.2f}s", killed, damaged, done.returncode == 0, start,
                     any(d.startswith(f"{start}:") for d in damaged), equal, message)  # fmt: skip


@dataclass
class SignalTrial:
    """What one signal to a training process gave."""

    job: str
    signal: str
    exit_code: int
    seconds_to_exit: float  # from the signal to the process's exit
    checkpoint: str | None  # newest checkpoint afterwards
    intact: bool  # it verifies against its manifest
    output_tail: str


def signal_trial(job: Job, run_dir: Path, signum: int, timeout: float = 120) -> SignalTrial:
    """Start a long run of ``job``, send ``signum`` once its first checkpoint exists, time its exit."""
    import signal as signals
    import time

    from gencore.checkpoint import list_checkpoints, verify_dir

    cmd, env = command(job, run_dir)
    long = job.long()
    proc = processes().popen([*cmd, *long], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + timeout
    while not list_checkpoints(run_dir / "checkpoints") and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    sent = time.time()
    proc.send_signal(signum)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    seconds = time.time() - sent
    found = list_checkpoints(run_dir / "checkpoints")
    intact = False
    if found:
        try:
            verify_dir(found[-1])
            intact = True
        except Exception:  # noqa: BLE001 - reported as not intact
            intact = False
    name = signals.Signals(signum).name
    return SignalTrial(job.name, name, proc.returncode, seconds, found[-1].name if found else None, intact, out[-1500:])


def debris(run_dir: Path) -> list[str]:
    """Temporary or half-replaced entries (``.tmp-*``, ``.old-*``) left in a run's checkpoint and model folders."""
    places = [run_dir, run_dir / "checkpoints", run_dir / "model"]
    return sorted(p.name for d in places if d.is_dir() for p in d.iterdir() if p.name.startswith((".tmp-", ".old-")))


@dataclass
class FaultTrial:
    """What one injected fault (a signal at a chosen moment) and the ``--resume auto`` after it gave."""

    job: str
    fault: str
    exit_code: int
    expected_code: int
    newest_step: int | None  # newest checkpoint after the fault
    intact: bool  # every checkpoint and exported model verifies against its manifest
    debris: list[str]
    resumed: bool  # the run afterwards (resume auto) exits 0
    equal: bool  # and ends bit-for-bit where the unbroken run ends

    @property
    def ok(self) -> bool:
        """As expected in every respect."""
        return self.exit_code == self.expected_code and self.intact and not self.debris and self.equal


def fault_trial(job: Job, run_dir: Path, fault: str, expected_code: int, reference: dict[str, str],
                extra: tuple[str, ...] = (), timeout: float = 300) -> FaultTrial:  # fmt: skip
    """Run ``job`` with ``fault`` (+ ``extra`` arguments), check what it left, resume it, compare with ``reference``."""
    from gencore.checkpoint import list_checkpoints, verify_dir
    from gencore.errors import CheckpointError

    done = run(job, run_dir, fault=fault, timeout=timeout, extra=extra)
    found = list_checkpoints(run_dir / "checkpoints")
    saved = [*found, *(p.parent for p in (run_dir / "model").rglob("manifest.json"))]
    try:
        for path in saved:
            verify_dir(path)
        intact = bool(found)
    except CheckpointError:
        intact = False
    left = debris(run_dir)
    again = run(job, run_dir, timeout=timeout)
    newest = int(found[-1].name.split("_")[1]) if found else None
    equal = again.returncode == 0 and state_digest(run_dir) == reference
    return FaultTrial(job.name, fault, done.returncode, expected_code, newest, intact, left, again.returncode == 0,
                      equal)  # fmt: skip


def start_long(job: Job, run_dir: Path, timeout: float = 120) -> subprocess.Popen:
    """Start a long run of ``job``; returns once its first checkpoint exists (it is then mid-training)."""
    import time

    from gencore.checkpoint import list_checkpoints

    cmd, env = command(job, run_dir)
    long = job.long()
    proc = processes().popen([*cmd, *long], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while not list_checkpoints(run_dir / "checkpoints") and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    return proc


@dataclass
class ConcurrentTrial:
    """A second training started in the directory of a running one."""

    job: str
    second_exit_code: int
    second_error: str  # its last line
    names_holder: bool  # the error names the first run's PID
    first_undisturbed: bool  # the first run was still training afterwards
    first_exit_code: int  # after its SIGTERM (75 expected)
    intact: bool  # every checkpoint verifies
    resumed: bool  # the second run, once the first is over, continues the run (exit 0)


def concurrent_trial(job: Job, run_dir: Path, timeout: float = 120) -> ConcurrentTrial:
    """Start ``job`` twice in ``run_dir``: the first trains, the second must be refused; then the first is stopped
    with SIGTERM and the second started again."""
    import signal

    from gencore.checkpoint import list_checkpoints, verify_dir
    from gencore.errors import CheckpointError

    first = start_long(job, run_dir, timeout)
    try:
        second = run(job, run_dir, timeout=timeout)
        undisturbed = first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=timeout)
    last = (second.stderr.strip().splitlines() or [""])[-1]
    try:
        for path in list_checkpoints(run_dir / "checkpoints"):
            verify_dir(path)
        intact = True
    except CheckpointError:
        intact = False
    again = run(job, run_dir, timeout=timeout)
    return ConcurrentTrial(job.name, second.returncode, last, f"in use by process {first.pid}" in last, undisturbed,
                           first.returncode, intact, again.returncode == 0)  # fmt: skip
