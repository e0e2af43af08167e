"""A pre-imported Python that forks the fault tests' CLI processes, so each one skips the ~2.5 s of ``import torch``
and torch._dynamo (which torch's optimizers import on construction) that a fresh interpreter pays.

Each forked process is a real process with its own PID, started from the command line the test would have run:
``[python, script, ...]``, ``[python, -m, module, ...]``, ``[python, -c, code, ...]`` or a console script of this
interpreter. Signals and SIGKILL reach it as they would a fresh one, its exit code (``-N`` after signal N) comes
back as from :class:`subprocess.Popen`, and it gets the test's environment, working directory and pipes. What it
cannot have is the interpreter start itself: a command whose environment changes how an interpreter starts
(``PYTHON*``, ``OMP_*``, ``MKL_*``, ``LD_*``...) runs as a plain subprocess, and so does any other command.
The determinism test runs one of its two runs fresh and one forked and compares them bit for bit.

The server is ``python forkserver.py SOCKET [MODULE ...]``: it imports the modules, says ``ready`` and forks one
child per request. A request is a JSON header and three file descriptors (stdin, stdout, stderr) sent over a Unix
socket; the reply is ``pid N`` and, once the child is reaped, ``exit STATUS`` (the raw wait status).
"""

from __future__ import annotations

import io
import json
import locale
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

HEADER = struct.Struct("!I")
# environment variables an interpreter or a native library reads when it starts: a command that sets them
# differently from the server cannot be forked from it
# (not KMP_*: Intel OpenMP's, which scikit-learn and threadpoolctl set in the test process when imported; torch's
# wheels load GNU OpenMP, GOMP_*)
STARTUP_PREFIXES = ("PYTHON", "OMP_", "MKL_", "LD_", "MALLOC", "GLIBC_", "GOMP_", "TORCH_", "PYTORCH_")
CHILD_HANDLED = {"PYTHONUNBUFFERED"}  # the forked child sets its streams' buffering itself


def startup_env(env: dict[str, str]) -> dict[str, str]:
    """The part of ``env`` that takes effect when an interpreter starts (see ``STARTUP_PREFIXES``)."""
    return {k: v for k, v in env.items() if k.startswith(STARTUP_PREFIXES) and k not in CHILD_HANDLED}


def how_to_run(cmd: Sequence[str]) -> tuple[str, str, list[str]] | None:
    """``(kind, target, argv)`` for a command this interpreter can run after a fork, or None.

    kind is "path" (a script), "module" (``-m``) or "code" (``-c``); argv is the child's ``sys.argv``.
    """
    cmd = [str(c) for c in cmd]
    if not cmd:
        return None
    if os.path.realpath(cmd[0]) == os.path.realpath(sys.executable) or cmd[0] == sys.executable:
        rest = cmd[1:]
        if len(rest) >= 2 and rest[0] == "-m":
            return "module", rest[1], [rest[1], *rest[2:]]
        if len(rest) >= 2 and rest[0] == "-c":
            return "code", rest[1], ["-c", *rest[2:]]
        if rest and not rest[0].startswith("-") and os.path.isfile(rest[0]):
            return "path", rest[0], rest
        return None
    try:  # a console script of this venv: "#!<this interpreter>" on its first line
        with open(cmd[0], "rb") as fh:
            first = fh.readline(512).decode("utf-8", "replace").strip()
    except OSError:
        return None
    if first.startswith("#!") and first[2:].strip() in (sys.executable, os.path.realpath(sys.executable)):
        return "path", cmd[0], cmd
    return None


# --------------------------------------------------------------------------------------------------- the server


def _std_streams(env: dict[str, str]) -> None:
    """New sys.stdout/sys.stderr on the child's fds 1 and 2, buffered as a fresh interpreter with ``env`` would."""
    unbuffered = bool(env.get("PYTHONUNBUFFERED"))
    encoding = locale.getpreferredencoding(False)
    for fd, name, errors in ((1, "stdout", "strict"), (2, "stderr", "backslashreplace")):
        raw = io.FileIO(fd, "w", closefd=False)
        buffered = raw if unbuffered else io.BufferedWriter(raw)
        stream = io.TextIOWrapper(buffered, encoding=encoding, errors=errors, line_buffering=name == "stderr",
                                  write_through=unbuffered)  # fmt: skip
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _run_child(request: dict) -> int:
    """Run the request's program in this (forked) process as ``python`` would; returns the exit code."""
    import runpy

    kind, target, argv = request["kind"], request["target"], request["argv"]
    sys.argv = argv
    sys.path[0] = {"path": os.path.dirname(os.path.abspath(target)), "module": os.getcwd(), "code": ""}[kind]
    try:
        if kind == "path":
            runpy.run_path(target, run_name="__main__")
        elif kind == "module":
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            exec(compile(target, "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException as exc:  # noqa: BLE001 - uncaught: its traceback, then exit 1 (death by SIGINT for ^C)
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename in (__file__, runpy.__file__, "<frozen runpy>"):
            tb = tb.tb_next  # the frames a fresh interpreter would not have
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        code = -signal.SIGINT if isinstance(exc, KeyboardInterrupt) else 1
    return code


def _finish(code: int) -> None:
    """End the child as an interpreter ends: threads joined, atexit handlers run, streams flushed; never returns."""
    import atexit

    try:
        shutdown = getattr(threading, "_shutdown", None)
        if shutdown is not None:
            shutdown()
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001, S110 - a closed pipe: nothing left to tell
                pass
    finally:
        if code < 0:
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code)


def _child(request: dict, fds: list[int], close: list[socket.socket]) -> None:
    code = 1
    try:
        for sock in close:
            sock.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in set(fds):
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        _std_streams(request["env"])
        code = _run_child(request)
    except BaseException as exc:  # noqa: BLE001 - e.g. a working directory that does not exist: say so, exit 1
        os.write(2, f"forkserver: could not start {request.get('argv')}: {exc}\n".encode())
    finally:
        _finish(code)


def _recv_request(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    while len(data) < HEADER.size:
        more = conn.recv(1 << 16)
        if not more:
            raise EOFError
        data += more
    (size,) = HEADER.unpack_from(data)
    while len(data) < HEADER.size + size:
        more = conn.recv(1 << 16)
        if not more:
            raise EOFError
        data += more
    return json.loads(data[HEADER.size : HEADER.size + size]), list(fds)


def serve(path: str, modules: Sequence[str]) -> None:
    """Import ``modules``, listen on the Unix socket ``path`` and fork a child per request until stdin closes."""
    import importlib

    for name in modules:
        importlib.import_module(name)
    if "torch" in sys.modules:  # torch's optimizers import torch._dynamo (~1 s) when they are constructed
        import torch

        torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "listen")
    selector.register(sys.stdin, selectors.EVENT_READ, "stdin")
    children: dict[int, socket.socket] = {}
    print("ready", json.dumps(dict(os.environ)), flush=True)  # with what the imports set in it
    while True:
        for key, _ in selector.select(timeout=0.01):
            if key.data == "stdin":
                if not sys.stdin.buffer.read1(1 << 10):  # the test session is over
                    for pid in children:
                        os.kill(pid, signal.SIGKILL)
                    return
                continue
            conn, _ = listener.accept()
            try:
                request, fds = _recv_request(conn)
            except (EOFError, OSError, ValueError):
                conn.close()
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(request, fds, [listener, conn, *children.values()])
            for fd in fds:
                os.close(fd)
            children[pid] = conn
            try:
                conn.sendall(f"pid {pid}\n".encode())
            except OSError:  # the test went away; its child is reaped below all the same
                pass
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = children.pop(pid, None)
            if conn is not None:
                try:
                    conn.sendall(f"exit {status}\n".encode())
                except OSError:
                    pass
                conn.close()


# --------------------------------------------------------------------------------------------------- the client


class ForkedProcess:
    """A process forked by the server, used as a :class:`subprocess.Popen` (the part the fault tests use)."""

    def __init__(self, args: list[str], conn: socket.socket, pipes: dict[str, int], text: bool) -> None:
        self.args = args
        self.returncode: int | None = None
        self._conn = conn
        self._text = text
        self._buffer = b""
        self._output: dict[str, bytearray] = {name: bytearray() for name in pipes}
        self._readers = [threading.Thread(target=self._drain, args=(name, fd), daemon=True)
                         for name, fd in pipes.items()]  # fmt: skip
        for reader in self._readers:
            reader.start()
        line = self._line(None)
        if line is None or not line.startswith("pid "):
            raise OSError(f"the fork server did not start {args[:3]}: {line!r}")
        self.pid = int(line.split()[1])

    def _drain(self, name: str, fd: int) -> None:
        with open(fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                self._output[name] += chunk

    def _line(self, timeout: float | None) -> str | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._conn.settimeout(left)
            try:
                chunk = self._conn.recv(1 << 10)
            except (TimeoutError, BlockingIOError):
                return None
            if not chunk:
                raise OSError("the fork server went away")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""
        if self.returncode is None:
            line = self._line(0.0)
            if line is not None:
                self.returncode = os.waitstatus_to_exitcode(int(line.split()[1]))
                self._conn.close()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit code; :class:`subprocess.TimeoutExpired` after ``timeout`` seconds."""
        if self.returncode is None:
            line = self._line(timeout)
            if line is None:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self.returncode = os.waitstatus_to_exitcode(int(line.split()[1]))
            self._conn.close()
        return self.returncode

    def _decoded(self, name: str) -> str | bytes | None:
        if name not in self._output:
            return None
        data = bytes(self._output[name])
        if not self._text:
            return data
        return io.TextIOWrapper(io.BytesIO(data), encoding=locale.getpreferredencoding(False)).read()

    def communicate(self, input: None = None, timeout: float | None = None) -> tuple:  # noqa: A002 - Popen's name
        """Wait for the exit and the end of its output; ``(stdout, stderr)`` as :meth:`subprocess.Popen.communicate`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.wait(timeout)
        for reader in self._readers:
            reader.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if reader.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout)
        return self._decoded("stdout"), self._decoded("stderr")

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the process unless it is known to have ended."""
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM."""
        self.send_signal(signal.SIGTERM)


class ForkServer:
    """A server process with ``modules`` imported, started with ``env``; :meth:`popen` and :meth:`run` fork from
    it where they can and start a plain subprocess where they cannot. Close it with :meth:`close`."""

    def __init__(self, env: dict[str, str], modules: Sequence[str], socket_dir: Path) -> None:
        self.env = dict(env)
        self.path = str(socket_dir / "forkserver.sock")
        self.forked = 0
        self.fallbacks = 0
        self.last_fallback: str | None = None  # why the last command ran as a plain subprocess
        self._proc = subprocess.Popen([sys.executable, __file__, self.path, *modules], env=self.env,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
        word, _, loaded = self._proc.stdout.readline().partition(" ")
        if word != "ready":
            self._proc.kill()
            raise RuntimeError(f"the fork server did not start (it said {word!r})")
        # what a command's environment is compared with: the server's after its imports, which set variables of
        # their own (TORCHINDUCTOR_CACHE_DIR...) as they do in the test process
        self.loaded_env = json.loads(loaded)

    def close(self) -> None:
        """Stop the server (and kill whatever it still runs)."""
        if self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()

    def why_not(self, cmd: Sequence[str], env: dict[str, str] | None) -> str | None:
        """Why ``cmd`` with ``env`` cannot be forked from the server (it then runs as a plain subprocess), or None."""
        if self._proc.poll() is not None:  # a test that silently fell back to fresh processes would hide this
            raise RuntimeError(f"the fork server ended (exit code {self._proc.returncode}); see its output above")
        if how_to_run(cmd) is None:
            return f"not a command of this interpreter: {list(map(str, cmd[:2]))}"
        mine, server = startup_env(dict(os.environ) if env is None else env), startup_env(self.loaded_env)
        differ = sorted(k for k in set(mine) | set(server) if mine.get(k) != server.get(k))
        return f"its environment differs from the server's in {', '.join(differ)}" if differ else None

    def popen(self, cmd: Sequence[str], env: dict[str, str] | None = None, cwd: str | Path | None = None,
              stdout: int | None = None, stderr: int | None = None, text: bool = False,
              ) -> ForkedProcess | subprocess.Popen:  # fmt: skip
        """Start ``cmd`` as :class:`subprocess.Popen` would (stdout/stderr: None, PIPE, DEVNULL or STDOUT)."""
        self.last_fallback = self.why_not(cmd, env)
        if self.last_fallback is not None:
            self.fallbacks += 1
            return subprocess.Popen(list(cmd), env=env, cwd=cwd, stdout=stdout, stderr=stderr, text=text)
        kind, target, argv = how_to_run(cmd)
        request = {"kind": kind, "target": target, "argv": argv, "cwd": str(cwd or os.getcwd()),
                   "env": dict(os.environ) if env is None else env}  # fmt: skip
        mine, theirs, pipes = [], [], {}
        null = os.open(os.devnull, os.O_RDWR)
        mine.append(null)
        theirs.append(null)
        for name, how, inherited in (("stdout", stdout, 1), ("stderr", stderr, 2)):
            if how == subprocess.PIPE:
                read, write = os.pipe()
                pipes[name] = read
                mine.append(write)
                theirs.append(write)
            elif how == subprocess.DEVNULL:
                theirs.append(null)
            elif how == subprocess.STDOUT and name == "stderr":
                theirs.append(theirs[1])
            elif how is None:
                theirs.append(inherited)
            else:
                raise ValueError(f"unsupported {name}={how!r}")
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(self.path)
            body = json.dumps(request).encode()
            socket.send_fds(conn, [HEADER.pack(len(body)) + body], theirs)
        finally:
            for fd in mine:
                os.close(fd)
        self.forked += 1
        return ForkedProcess(list(map(str, cmd)), conn, pipes, text)

    def run(self, cmd: Sequence[str], env: dict[str, str] | None = None, cwd: str | Path | None = None,
            timeout: float | None = None) -> subprocess.CompletedProcess:  # fmt: skip
        """:func:`subprocess.run` with ``capture_output=True, text=True``."""
        proc = self.popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        return subprocess.CompletedProcess(list(map(str, cmd)), proc.returncode, out, err)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2:])
