"""Run a package CLI (``child.py MODULE:FUNCTION ARGS...``) with one fault from $GENCORE_FAULT switched on.

Faults are installed by wrapping functions of this process only (nothing in the packages knows about them):

- ``kill:manifest:K``  SIGKILL on the K-th checkpoint, after its tensors are written, before its manifest
- ``kill:replace:K``   SIGKILL at the K-th rename of a checkpoint write (between "old moved away" and "new in place"
  when a directory is replaced)
- ``kill:prune:K``     SIGKILL half-way through deleting the K-th pruned checkpoint
- ``kill:save:K``      SIGKILL half-way through writing the K-th safetensors file
- ``enospc:K``         the K-th safetensors write fails with "No space left on device" after writing half a file
- ``nan:K``            every loss from update K on is multiplied by NaN
- ``signal:save:SIG:N:K``  N times SIG to itself while the K-th checkpoint is being written (before its manifest)
- ``signal:final-eval:SIG:N:K`` N times SIG to itself inside the final evaluation (K is unused: 1)
- ``signal:update:SIG:N:K`` N times SIG to itself in the K-th ``ctx.update`` call (mid-step)
"""

from __future__ import annotations

import errno
import importlib
import os
import signal
import sys


def _countdown(k: int):
    calls = {"n": 0}

    def hit() -> bool:
        calls["n"] += 1
        return calls["n"] == k

    return hit


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install(spec: str) -> None:
    """Switch on the fault described by ``spec`` (see the module docstring)."""
    import gencore.checkpoint as ckpt

    parts = spec.split(":")
    kind, k = parts[0], int(parts[-1])
    hit = _countdown(k)
    if kind == "kill" and parts[1] == "manifest":
        real_manifest = ckpt._write_manifest

        def manifest(directory, *args):  # noqa: ANN001, ANN002, ANN202
            if hit():
                _die()
            return real_manifest(directory, *args)

        ckpt._write_manifest = manifest
    elif kind == "kill" and parts[1] == "replace":
        real_replace = os.replace

        def replace(src, dst):  # noqa: ANN001, ANN202
            real_replace(src, dst)
            if hit():
                _die()

        ckpt.os.replace = replace  # the module's os is this process's os: every rename counts
    elif kind == "kill" and parts[1] == "prune":
        real_rmtree = ckpt.shutil.rmtree

        def rmtree(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            if "step_" in str(path) and hit():
                files = sorted(p.path for p in os.scandir(path) if p.is_file())
                if files:
                    os.unlink(files[0])
                _die()
            return real_rmtree(path, *args, **kwargs)

        ckpt.shutil.rmtree = rmtree
    elif kind in ("kill", "enospc"):
        real_save = ckpt._st_save

        def save(tensors, filename, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            if not hit():
                return real_save(tensors, filename, *args, **kwargs)
            real_save(tensors, filename, *args, **kwargs)
            size = os.path.getsize(filename)
            os.truncate(filename, size // 2)
            if kind == "kill":
                _die()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)

        ckpt._st_save = save
    elif kind == "signal" and parts[1] == "save":
        signum, times = getattr(signal, parts[2]), int(parts[3])
        real_manifest = ckpt._write_manifest

        def manifest(directory, *args):  # noqa: ANN001, ANN002, ANN202
            if hit():
                for _ in range(times):
                    os.kill(os.getpid(), signum)
            return real_manifest(directory, *args)

        ckpt._write_manifest = manifest
    elif kind == "signal" and parts[1] == "final-eval":
        from gencore.train import trainer

        signum, times = getattr(signal, parts[2]), int(parts[3])
        real_evaluate = trainer.Trainer._evaluate

        def evaluate(self):  # noqa: ANN001, ANN202
            if self.step >= self.config.max_steps:
                for _ in range(times):
                    os.kill(os.getpid(), signum)
            return real_evaluate(self)

        trainer.Trainer._evaluate = evaluate
    elif kind == "signal" and parts[1] == "update":
        from gencore.train import trainer

        signum, times = getattr(signal, parts[2]), int(parts[3])
        real_update = trainer.StepContext.update

        def update(self, name, loss, retain_graph=False):  # noqa: ANN001, ANN202
            if hit():
                for _ in range(times):
                    os.kill(os.getpid(), signum)
            return real_update(self, name, loss, retain_graph)

        trainer.StepContext.update = update
    elif kind == "nan":
        from gencore.train import trainer

        real_update = trainer.StepContext.update

        def update(self, name, loss, retain_graph=False):  # noqa: ANN001, ANN202
            if self.step + 1 >= k:
                loss = loss * float("nan")
            return real_update(self, name, loss, retain_graph)

        trainer.StepContext.update = update
    else:
        raise SystemExit(f"unknown fault {spec!r}")


def main() -> None:
    """Install the fault, then run the CLI entry point with the remaining arguments."""
    entry, *argv = sys.argv[1:]
    if os.environ.get("GENCORE_FAULT"):
        install(os.environ["GENCORE_FAULT"])
    module, function = entry.split(":")
    cli = getattr(importlib.import_module(module), function)
    sys.argv = [module, *argv]
    cli(prog_name=module.split(".")[0])


if __name__ == "__main__":
    main()
