"""Throwaway backend services for the multi-process benchmarks: redis-server and PostgreSQL.

Each runs from a temp dir on a free 127.0.0.1 port, pinned to the server CPU with the app's
workers (the backend is part of what serves), without durability (no fsync, no persistence), and
is removed afterwards. PostgreSQL refuses to run as root: as root it runs as the ``postgres``
account the Debian package creates (or ``nobody``). Never the system's own Redis or cluster.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_port(port: int, process: subprocess.Popen[bytes] | None, what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen on {port}") from None
            time.sleep(0.05)


class RedisService:
    """``redis-server`` without persistence; ``url`` points at database 0."""

    def __init__(self, cpu: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (scripts/bench installs it)")
        self.dir = tempfile.mkdtemp(prefix="brillo-bench-redis-")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            ["taskset", "-c", cpu, binary, "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", self.dir, "--loglevel", "warning"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        _wait_port(self.port, self.process, "redis-server")

    def pids(self) -> list[int]:
        return [self.process.pid]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def postgres_bindir() -> str | None:
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return os.path.dirname(os.path.realpath(found))
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return os.path.dirname(versions[-1]) if versions else None


class PostgresService:
    """A PostgreSQL cluster of its own; ``url`` points at its ``postgres`` database."""

    def __init__(self, cpu: str) -> None:
        bindir = postgres_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (scripts/bench installs it)")
        self.bindir = bindir
        self.account: str | None = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    entry = pwd.getpwnam(name)
                except KeyError:
                    continue
                self.account = name
                break
        self.dir = tempfile.mkdtemp(prefix="brillo-bench-pg-")
        if self.account is not None:
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.url = f"postgresql://bench@127.0.0.1:{self.port}/postgres"
        self._run("initdb", "-D", self.data, "-U", "bench", "-A", "trust", "-E", "UTF8")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=300 -c shared_buffers=128MB"
        )
        log = os.path.join(self.dir, "server.log")
        self._run("pg_ctl", "start", "-D", self.data, "-w", "-l", log, "-o", options, cpu=cpu)
        _wait_port(self.port, None, "PostgreSQL")

    def _run(self, tool: str, *args: str, cpu: str | None = None) -> None:
        command = [os.path.join(self.bindir, tool), *args]
        if cpu is not None:
            command = ["taskset", "-c", cpu, *command]
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            user=self.account,
            cwd=self.dir,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stderr.decode(errors='replace')[-500:]}")

    def pids(self) -> list[int]:
        path = os.path.join(self.data, "postmaster.pid")
        try:
            with open(path) as fh:
                return [int(fh.readline())]
        except (OSError, ValueError):
            return []

    def stop(self) -> None:
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._run("pg_ctl", "stop", "-D", self.data, "-m", "immediate", "-w")
        shutil.rmtree(self.dir, ignore_errors=True)
