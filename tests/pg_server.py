"""A throwaway PostgreSQL server for the integration tests (Debian's PostgreSQL 15 binaries).

PostgreSQL refuses to run as root, so when the tests run as root the binaries run as the ``postgres`` user
(``runuser -u postgres --``) on a data folder made for it under the system temp folder (pytest's own temp
folders are private to root). The server listens on 127.0.0.1 only, with trust authentication, no fsync (a test
server: its durability is not under test), and its Unix socket in its data folder::

    with PostgresServer() as server:
        url = server.create_database("analytics")   # postgresql://postgres@127.0.0.1:PORT/analytics
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from support import free_port

PG_BIN = Path(os.environ.get("ANALYTICS_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"


class PostgresServer:
    """Starts on ``start()`` (or ``with``), stops and deletes its data on ``stop()`` even after a failed start."""

    def __init__(self, *, bin_dir: Path = PG_BIN) -> None:
        missing = [name for name in ("initdb", "pg_ctl", "postgres") if not (bin_dir / name).is_file()]
        if missing:
            raise RuntimeError(f"PostgreSQL binaries {missing} not found in {bin_dir}; the machine image should "
                               "have Debian's postgresql-15 (or set ANALYTICS_PG_BIN to its bin folder)")
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="analytics-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_root = os.geteuid() == 0

    def _cmd(self, *args: str) -> list[str]:
        return (["runuser", "-u", PG_USER, "--"] if self._as_root else []) + list(args)

    def _run(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
                               f"\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return "server log:\n" + self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no server log)"

    def start(self) -> PostgresServer:
        if self._as_root:
            shutil.chown(self.root, PG_USER, PG_USER)
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", PG_USER, "-A", "trust",
                  "-E", "UTF8", "--no-locale", "--no-sync")
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.data} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run(str(self.bin_dir / "pg_ctl"), "start", "-D", str(self.data), "-l", str(self.log), "-w",
                  "-t", "60", "-o", options, timeout=90)
        return self

    @property
    def admin_url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its URL."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={PG_USER} dbname=postgres",
                             autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the server (fast shutdown, then SIGKILL of the postmaster) and delete its folder."""
        if (self.data / "postmaster.pid").exists():
            try:
                self._run(str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w",
                          "-t", "30", timeout=45)
            except (RuntimeError, subprocess.TimeoutExpired):
                self._kill_postmaster()
        shutil.rmtree(self.root, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)  # its backends notice the postmaster's death and exit
        except (OSError, ValueError, IndexError):
            pass

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *_exc: object) -> None:
        self.stop()
