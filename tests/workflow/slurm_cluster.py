"""A real single-node SLURM cluster for the tests: munged, MariaDB, slurmdbd, slurmctld and
slurmd from Debian's packages, started in a temporary folder and stopped by their pids.

The node has the machine's CPUs and one GPU declared as a generic resource (no device file: the
machine has no GPU), so GPU requests (`--gpus=1`) are scheduled as on a GPU cluster while the
code inside falls back to the CPU. Accounting goes through slurmdbd, as on a production cluster,
so the executor plugin validates the account with sacctmgr and polls job states with sacct.

SLURM reads its configuration from /etc/slurm/slurm.conf (the job steps inside an allocation do
not see SLURM_CONF), so that file is written for the cluster's lifetime and the one that was
there, if any, is put back afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "mariadbd", "mariadb-install-db", "slurmdbd", "slurmctld", "slurmd")
ETC = Path("/etc/slurm")
MUNGE_KEY = Path("/etc/munge/munge.key")
MYSQL_SOCKET = Path("/run/mysqld/mysqld.sock")  # where slurmdbd looks for "localhost"


def unavailable() -> str | None:
    """Why this machine cannot run the cluster (None when it can)."""
    if os.geteuid() != 0:
        return "needs root (the daemons run as root and write /etc/slurm)"
    missing = [d for d in (*DAEMONS, "sbatch", "sacctmgr") if shutil.which(d) is None]
    if missing:
        packages = "slurm-wlm slurmdbd munge mariadb-server"
        return f"not installed: {', '.join(missing)} (apt-get install {packages})"
    if (ETC / "slurm.conf").exists() and "lstfill-test" not in (ETC / "slurm.conf").read_text():
        return "/etc/slurm/slurm.conf belongs to a real cluster on this machine"
    return None


def _run(*cmd: str, **kw) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


def _wait(what: str, check, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.5)
    raise RuntimeError(f"timed out waiting for {what}")


def _read_pid(path: Path, timeout: float = 30.0) -> int:
    _wait(f"pid file {path}", lambda: path.exists() and path.read_text().strip().isdigit(), timeout)
    return int(path.read_text().strip())


@dataclass
class SlurmCluster:
    """The cluster's folder, its account and partitions, and the pids it started."""

    root: Path
    account: str = "lstfill-ci"
    cpu_partition: str = "ci_cpu"
    gpu_partition: str = "ci_gpu"
    host: str = field(default_factory=socket.gethostname)
    pids: dict[str, int] = field(default_factory=dict)
    _saved_conf: str | None = None

    def start(self) -> SlurmCluster:
        stop_leftovers()
        self.root.mkdir(parents=True, exist_ok=True)
        for sub in ("state", "spool", "mysql", "logs"):
            (self.root / sub).mkdir(exist_ok=True)
        try:
            self._start_munge()
            self._start_database()
            self._write_configs()
            self._start_daemon("slurmdbd", ["slurmdbd"], self.root / "slurmdbd.pid")
            _wait("slurmdbd", lambda: self._sacctmgr_ok(), 60)
            self._register_account()
            self._start_daemon("slurmctld", ["slurmctld"], self.root / "slurmctld.pid")
            self._start_daemon("slurmd", ["slurmd"], self.root / "slurmd.pid")
            _wait("an idle node", self._node_idle, 60)
        except BaseException:
            self.stop()
            raise
        return self

    # -- daemons --------------------------------------------------------------------------

    def _start_munge(self) -> None:
        pidfile = Path("/run/munge/munged.pid")
        if pidfile.exists() and _alive(int(pidfile.read_text().strip() or 0)):
            return  # a munged of this machine is running: use it, and leave it running
        if not MUNGE_KEY.exists():
            MUNGE_KEY.parent.mkdir(parents=True, exist_ok=True)
            MUNGE_KEY.write_bytes(os.urandom(1024))
        for path in (
            MUNGE_KEY.parent,
            Path("/run/munge"),
            Path("/var/lib/munge"),
            Path("/var/log/munge"),
        ):
            path.mkdir(parents=True, exist_ok=True)
            shutil.chown(path, "munge", "munge")
        shutil.chown(MUNGE_KEY, "munge", "munge")
        MUNGE_KEY.chmod(0o400)
        pidfile.unlink(missing_ok=True)
        _run("runuser", "-u", "munge", "--", "munged", "--force")
        self.pids["munged"] = _read_pid(pidfile)

    def _start_database(self) -> None:
        ping = ["mariadb-admin", f"--socket={MYSQL_SOCKET}", "ping"]
        if MYSQL_SOCKET.exists() and subprocess.run(ping, capture_output=True).returncode == 0:
            return  # the machine's own MariaDB (root may log in by socket): use it, leave it
        data = self.root / "mysql"
        _run(
            "mariadb-install-db",
            "--user=root",
            f"--datadir={data}",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        )
        MYSQL_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        MYSQL_SOCKET.unlink(missing_ok=True)  # a stale one would pass for a ready server
        pidfile = self.root / "mariadbd.pid"
        log = open(self.root / "logs/mariadbd.log", "w")  # noqa: SIM115 (owned by the process)
        proc = subprocess.Popen(
            [
                "mariadbd",
                "--user=root",
                f"--datadir={data}",
                f"--socket={MYSQL_SOCKET}",
                f"--pid-file={pidfile}",
                "--skip-networking",
                "--innodb-buffer-pool-size=64M",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pids["mariadbd"] = proc.pid
        _wait("MariaDB", MYSQL_SOCKET.exists, 60)

    def _start_daemon(self, name: str, cmd: list[str], pidfile: Path) -> None:
        pidfile.unlink(missing_ok=True)
        _run(*cmd)
        self.pids[name] = _read_pid(pidfile)

    def stop(self) -> None:
        """Stop every daemon this cluster started (by pid, newest first) and restore
        /etc/slurm/slurm.conf."""
        for name in reversed(list(self.pids)):
            pid = self.pids.pop(name)
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
                try:
                    _wait(f"{name} to stop", lambda p=pid: not _alive(p), 30)
                except RuntimeError:
                    os.kill(pid, signal.SIGKILL)
        for conf in ("slurm.conf", "gres.conf", "slurmdbd.conf"):
            path = ETC / conf
            if path.exists() and "lstfill-test" in path.read_text():
                path.unlink()
        if self._saved_conf is not None:
            (ETC / "slurm.conf").write_text(self._saved_conf)

    # -- configuration --------------------------------------------------------------------

    def _write_configs(self) -> None:
        r = self.root
        cpus = os.cpu_count() or 1
        mem_mb = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * 0.8)
        ETC.mkdir(parents=True, exist_ok=True)
        conf = ETC / "slurm.conf"
        if conf.exists() and "lstfill-test" not in conf.read_text():
            self._saved_conf = conf.read_text()
        conf.write_text(
            f"""# lstfill-test: a single-node cluster of the test suite (tests/workflow)
ClusterName=lstfill
SlurmctldHost={self.host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/logs/slurmctld.log
SlurmdLogFile={r}/logs/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
ReturnToService=2
MinJobAge=600
KillWait=5
NodeName={self.host} CPUs={cpus} RealMemory={mem_mb} Gres=gpu:1 State=UNKNOWN
PartitionName={self.cpu_partition} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
PartitionName={self.gpu_partition} Nodes={self.host} MaxTime=INFINITE State=UP
"""
        )
        (ETC / "gres.conf").write_text(
            f"# lstfill-test\nAutoDetect=off\nNodeName={self.host} Name=gpu File=/dev/null\n"
        )
        dbd = ETC / "slurmdbd.conf"
        dbd.write_text(
            f"""# lstfill-test
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
PidFile={r}/slurmdbd.pid
LogFile={r}/logs/slurmdbd.log
"""
        )
        dbd.chmod(0o600)

    def _sacctmgr_ok(self) -> bool:
        proc = subprocess.run(["sacctmgr", "-n", "list", "cluster"], capture_output=True)
        return proc.returncode == 0

    def _register_account(self) -> None:
        _run("sacctmgr", "-i", "add", "cluster", "lstfill")
        _run("sacctmgr", "-i", "add", "account", self.account, "Cluster=lstfill")
        _run("sacctmgr", "-i", "add", "user", "root", f"Account={self.account}", "Cluster=lstfill")

    def _node_idle(self) -> bool:
        proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True)
        return proc.returncode == 0 and "idle" in proc.stdout

    def log(self, name: str) -> str:
        path = self.root / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def stop_leftovers() -> None:
    """Stop the daemons of an earlier test cluster whose test run was killed before it could
    stop them (its slurm.conf names its folder, which holds their pid files)."""
    conf = ETC / "slurm.conf"
    if not conf.exists() or "lstfill-test" not in conf.read_text():
        return
    root = None
    for line in conf.read_text().splitlines():
        if line.startswith("StateSaveLocation="):
            root = Path(line.split("=", 1)[1]).parent
    pidfiles = [root / f"{d}.pid" for d in ("slurmd", "slurmctld", "slurmdbd", "mariadbd")]
    for pidfile in [*pidfiles, Path("/run/munge/munged.pid")] if root else []:
        if pidfile.exists() and pidfile.read_text().strip().isdigit():
            pid = int(pidfile.read_text().strip())
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
                _wait(f"{pidfile.stem} to stop", lambda p=pid: not _alive(p), 30)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
