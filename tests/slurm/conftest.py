"""A real one-node Slurm cluster (Debian's slurm-wlm) in a scratch directory, for the tests of `slurm/*.sbatch`.

slurmctld and slurmd run in the foreground as children of the test process, with their configuration, state,
spool, logs and pid files under a temporary directory, `AuthType=auth/none` (no munge), no cgroups and loopback
ports only. The fixture shuts the cluster down whatever happened: it cancels the remaining jobs, runs
`scontrol shutdown` and kills the two daemons by pid if they are still there.

Where slurm-wlm is missing and this is root with apt-get, the fixture installs it (`apt-get install -y slurm-wlm`,
about 25 s); where it cannot be installed, the tests that need it skip with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BINARIES = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin"])
NODE = "localhost"
NODE_CPUS = 4  # more than the 2 cores CI has (config_overrides): a 2-task job and a 1-task job fit at once

SLURM_CONF = """\
ClusterName=gentest
SlurmctldHost={node}
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
SlurmdParameters=config_overrides
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=10
MinJobAge=600
NodeName={node} CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def which(name: str) -> str | None:
    return shutil.which(name, path=SEARCH_PATH)


def slurm_unavailable() -> str | None:
    """None when Slurm can run here (installing slurm-wlm first if needed and possible), else the reason why not."""
    missing = [b for b in BINARIES if which(b) is None]
    if missing:
        if os.geteuid() != 0:
            return f"Slurm is not installed ({', '.join(missing)} missing) and installing slurm-wlm needs root"
        if which("apt-get") is None:
            return f"Slurm is not installed ({', '.join(missing)} missing) and there is no apt-get to install it"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = ["apt-get", "install", "-y", "-q", "slurm-wlm"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        if proc.returncode != 0:  # a fresh machine may not have its package lists yet
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=300)
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        if proc.returncode != 0:
            return f"Slurm is not installed and `apt-get install slurm-wlm` failed: {proc.stderr.strip()[-300:]}"
        missing = [b for b in BINARIES if which(b) is None]
        if missing:
            return f"slurm-wlm installed, but {', '.join(missing)} not found"
    if os.geteuid() != 0:
        return "a local slurmd has to run as root to start jobs"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSlurm:
    """The running cluster: submit jobs, read their state, wait for them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.conf = root / "slurm.conf"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_"))}
        self.env["SLURM_CONF"] = str(self.conf)

    # --- daemons -----------------------------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> None:
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            SLURM_CONF.format(node=NODE, root=self.root, cpus=NODE_CPUS, ctld_port=free_port(), slurmd_port=free_port())
        )
        for name, args in (("slurmctld", ["-D", "-i"]), ("slurmd", ["-D", "-N", NODE])):
            out = open(self.root / "log" / f"{name}.console", "w")  # noqa: SIM115 (closed with the process)
            self.procs[name] = subprocess.Popen(
                [which(name), *args, "-f", str(self.conf)], stdout=out, stderr=subprocess.STDOUT, env=self.env
            )
            out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} at start\n{self.logs()}")
            state = self.cmd("sinfo", "-h", "-n", NODE, "-o", "%T", check=False).stdout.strip()
            if state == "idle":
                return
            time.sleep(0.3)
        raise RuntimeError(f"node {NODE} not idle after {timeout} s\n{self.logs()}")

    def shutdown(self) -> None:
        """Cancel what is left, stop both daemons (`scontrol shutdown`), kill them by pid if they do not stop."""
        if self.procs.get("slurmctld") is not None and self.procs["slurmctld"].poll() is None:
            jobs = self.cmd("squeue", "-h", "-o", "%i", check=False).stdout.split()
            if jobs:
                self.cmd("scancel", *jobs, check=False)
                deadline = time.monotonic() + 30
                while self.cmd("squeue", "-h", "-o", "%i", check=False).stdout.split():
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
            self.cmd("scontrol", "shutdown", check=False)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def logs(self) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            parts.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-30:]))
        return "\n".join(parts)

    # --- jobs --------------------------------------------------------------------------------------------------

    def cmd(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([which(args[0]) or args[0], *args[1:]], capture_output=True, text=True,
                              env=env or self.env, timeout=60)  # fmt: skip
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def submit(self, script: Path, args: list[str], env: dict[str, str], options: list[str]) -> int:
        """`sbatch --parsable OPTIONS SCRIPT ARGS` with ``env`` added to the cluster's environment; the job id."""
        proc = self.cmd("sbatch", "--parsable", *options, str(script), *args, env={**self.env, **env})
        return int(proc.stdout.strip().split(";")[0])

    def job(self, job_id: int) -> dict[str, str]:
        """`scontrol show job` as a dict (JobState, Reason, Restarts, ExitCode, ...)."""
        out = self.cmd("scontrol", "-o", "show", "job", str(job_id)).stdout
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def in_queue(self, job_id: int) -> bool:
        for _ in range(10):  # an answer, not an error (a busy slurmctld) taken for "gone"
            proc = self.cmd("squeue", "-h", "-j", str(job_id), check=False)
            if proc.returncode == 0:
                return bool(proc.stdout.strip())
            time.sleep(0.5)
        raise RuntimeError(f"squeue -j {job_id} keeps failing: {proc.stderr}")

    def wait_done(self, job_id: int, timeout: float, *, skip_requeue_delay: bool = False) -> dict[str, str]:
        """Poll until the job has left the queue; with ``skip_requeue_delay``, start a requeued job at once.

        Slurm holds a requeued job back for about two minutes (EligibleTime = requeue time + 121 s, reason
        BeginTime); the tests move its start time to now instead of waiting, but only 2 s after the requeue:
        slurmd refuses a job whose new credential dates from the same second as the revocation of its old one
        ("Killing non-startable batch JobId=N: Job credential revoked", seen here when started 0.4 s later).
        """
        deadline = time.monotonic() + timeout
        held_since = None
        while self.in_queue(job_id):
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still queued after {timeout} s: {self.job(job_id)}\n{self.logs()}")
            if skip_requeue_delay:
                info = self.job(job_id)
                if info.get("JobState") == "PENDING" and info.get("Reason") == "BeginTime":
                    held_since = held_since or time.monotonic()
                    if time.monotonic() - held_since > 2:
                        self.cmd("scontrol", "update", f"JobId={job_id}", "StartTime=now", check=False)
                else:
                    held_since = None
            time.sleep(0.3)
        return self.job(job_id)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    reason = slurm_unavailable()
    if reason:
        pytest.skip(reason)
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.shutdown()
