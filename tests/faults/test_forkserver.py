"""The fork server the fault tests start their CLI processes from behaves as :mod:`subprocess` does for every
property those tests rely on: exit codes (signals included), a real PID that signals reach, the environment, the
working directory, separate or merged output, timeouts, and a fresh interpreter where a fork would differ."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import fault_jobs as jobs
import forkserver
import pytest

PY = sys.executable


@pytest.fixture
def server(fork_server, tmp_path_factory):
    """The session's server; with GENCORE_TEST_FORK=0 (no session server) one of this test's own, bare."""
    if fork_server is not None:
        yield fork_server
        return
    own = forkserver.ForkServer(jobs.base_env(), [], tmp_path_factory.mktemp("own-forkserver"))
    try:
        yield own
    finally:
        own.close()


def _run(server, code: str, **kwargs) -> subprocess.CompletedProcess:
    forked = server.forked
    done = server.run([PY, "-c", code], env=kwargs.pop("env", jobs.base_env()), timeout=60, **kwargs)
    assert server.forked == forked + 1, f"ran as a plain subprocess: {server.last_fallback}"
    return done


EXITS = [("pass", 0), ("raise SystemExit(7)", 7), ("import sys; sys.exit('no')", 1), ("1/0", 1),
         ("raise KeyboardInterrupt", -signal.SIGINT),
         ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", -signal.SIGKILL)]  # fmt: skip


@pytest.mark.parametrize(("code", "expected"), EXITS)
def test_exit_codes_are_those_of_a_fresh_interpreter(server, code, expected):
    assert _run(server, code).returncode == expected


def test_a_traceback_shows_the_program_only(server):
    done = _run(server, "def f():\n    1/0\nf()")
    assert done.stderr.startswith("Traceback (most recent call last):\n  File \"<string>\", line 3")
    assert "forkserver" not in done.stderr and "runpy" not in done.stderr
    assert done.stderr.rstrip().endswith("ZeroDivisionError: division by zero")


def test_environment_directory_arguments_and_output(server, tmp_path):
    env = {**jobs.base_env(), "GENCORE_PROBE": "é 1"}
    script = tmp_path / "probe.py"
    script.write_text("import os, sys\nprint(os.environ['GENCORE_PROBE'], os.getcwd(), sys.argv, sys.path[0])\n"
                      "print('to stderr', file=sys.stderr)\nprint(os.getpid(), os.getppid())\n")  # fmt: skip
    forked = server.forked
    done = server.run([PY, str(script), "a b", "--x"], env=env, cwd=tmp_path, timeout=60)
    assert server.forked == forked + 1
    first, pids = done.stdout.splitlines()
    assert first == f"é 1 {tmp_path} {[str(script), 'a b', '--x']} {tmp_path}"
    assert done.stderr == "to stderr\n"
    assert int(pids.split()[0]) != os.getpid() and int(pids.split()[1]) != os.getpid()
    assert "GENCORE_PROBE" not in _run(server, "import os; print(sorted(os.environ))").stdout  # not left behind


def test_signals_reach_the_real_process_and_merge_and_devnull_work(server):
    proc = server.popen([PY, "-c", "import signal, sys, time\n"
                         "signal.signal(signal.SIGTERM, lambda *a: (print('term', flush=True), sys.exit(75)))\n"
                         "print('up', flush=True); print('err', file=sys.stderr, flush=True); time.sleep(60)"],
                        env=jobs.base_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    assert proc.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.2)
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline and "up" not in proc._output["stdout"].decode():
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)  # by PID, as the tests do
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 75 and err is None
    assert sorted(out.split()) == ["err", "term", "up"]
    quiet = server.popen([PY, "-c", "print('lost')"], env=jobs.base_env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert quiet.communicate(timeout=30) == (None, "")


def test_a_timeout_is_subprocess_timeout_expired(server):
    with pytest.raises(subprocess.TimeoutExpired):
        server.run([PY, "-c", "import time; time.sleep(60)"], env=jobs.base_env(), timeout=0.5)


def test_a_command_a_fork_cannot_honour_runs_in_a_fresh_interpreter(server):
    fallbacks = server.fallbacks
    done = server.run([PY, "-c", "import os; print(os.environ['PYTHONHASHSEED'])"],
                      env={**jobs.base_env(), "PYTHONHASHSEED": "123"}, timeout=60)  # fmt: skip
    assert done.stdout == "123\n" and server.fallbacks == fallbacks + 1
    assert server.last_fallback == "its environment differs from the server's in PYTHONHASHSEED"
    done = server.run(["bash", "-c", "exit 3"], env=jobs.base_env(), timeout=60)
    assert done.returncode == 3 and server.fallbacks == fallbacks + 2


def test_a_working_directory_that_does_not_exist_is_said(server, tmp_path):
    done = server.run([PY, "-c", "pass"], env=jobs.base_env(), cwd=tmp_path / "gone", timeout=60)
    assert done.returncode == 1 and "could not start" in done.stderr and "gone" in done.stderr
