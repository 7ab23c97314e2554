"""A real PostgreSQL cluster for the tests: ``initdb`` in a temp dir, ``pg_ctl`` on 127.0.0.1.

The cluster lives in its own directory, listens on a free loopback port, keeps its Unix socket in
that directory and is never the system's cluster. PostgreSQL refuses to run as root, so when the
tests run as root the server runs as the ``postgres`` account the Debian package creates (or
``nobody``). Durability is switched off (``fsync``, ``full_page_writes``): the data only has to
survive a clean restart, which is what the tests do with it.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

USER = "brillo"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_bindir() -> str | None:
    """The directory of ``initdb`` and ``pg_ctl``: on PATH, else the newest Debian install."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return os.path.dirname(os.path.realpath(found))
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(path.split("/")[4]) if path.split("/")[4].isdigit() else 0,
    )
    return os.path.dirname(candidates[-1]) if candidates else None


def _server_account() -> str | None:
    """The account to run the server as when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and no 'postgres' or 'nobody' account to run PostgreSQL")


class PostgresServer:
    """One throwaway cluster; :meth:`stop` and :meth:`start` again keep its data."""

    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.account = _server_account()
        self.directory = tempfile.mkdtemp(prefix="brillo-pg-")
        self.data = os.path.join(self.directory, "data")
        self.port = _free_port()
        self._databases = 0
        if self.account is not None:
            entry = pwd.getpwnam(self.account)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "-D",
            self.data,
            "-U",
            USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )

    def _run(self, tool: str, *args: str, timeout: float = 60.0) -> None:
        result = subprocess.run(
            [os.path.join(self.bindir, tool), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            user=self.account,
            timeout=timeout,
            cwd=self.directory,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{tool} failed ({result.returncode}): {result.stderr.decode(errors='replace')}"
            )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.directory}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
                "-c shared_buffers=32MB",
            ]
        )
        log = os.path.join(self.directory, "server.log")
        self._run("pg_ctl", "start", "-D", self.data, "-w", "-t", "60", "-l", log, "-o", options)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnects every client at once); no-op when stopped."""
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._run("pg_ctl", "stop", "-D", self.data, "-m", mode, "-w", "-t", "60")

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def create_database(self) -> str:
        """A fresh, empty database; returns its URL (call outside any event loop)."""
        self._databases += 1
        name = f"t{os.getpid()}_{self._databases}"
        asyncio.run(self.execute(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        return self.url(name)

    async def execute(self, sql: str, database: str = "postgres") -> None:
        """Run one statement as the cluster's superuser."""
        connection = await asyncpg.connect(self.url(database), timeout=10)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()


@contextmanager
def running_cluster() -> Iterator[PostgresServer]:
    """A started cluster, removed afterwards; fails clearly when PostgreSQL is not installed."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL is not installed (scripts/install --test installs it: "
            "apt-get install postgresql)"
        )
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.remove()
