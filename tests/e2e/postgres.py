"""A private PostgreSQL server for end-to-end tests (from the Debian packages, no Docker).

Example::

    with private_postgres() as url:   # postgresql+psycopg://neurolake:<password>@127.0.0.1:<port>/postgres
        ...
    with postgres_server() as server:  # the same, with server.stop() / server.start() to test outages
        ...

Tests that need it skip with ``needs_postgres`` when the server binaries are not installed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .cluster import free_port

POSTGRES_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
needs_postgres = pytest.mark.skipif(
    not POSTGRES_BIN, reason="PostgreSQL is not installed (apt-get install -y postgresql)"
)


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the 'postgres' user when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class PostgresServer:
    """A running private server; ``stop()`` and ``start()`` it again on the same port and data."""

    url: str
    folder: Path
    port: int
    bin_dir: Path

    def _run(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            _as_postgres([str(self.bin_dir / cmd[0]), *cmd[1:]]), capture_output=True, text=True, timeout=120
        )

    def start(self) -> None:
        done = self._run(
            "pg_ctl",
            "-D",
            str(self.folder / "data"),
            "-l",
            str(self.folder / "postgres.log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1",
            "start",
        )
        assert done.returncode == 0, done.stderr + (self.folder / "postgres.log").read_text()

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", mode, "-w", "stop")


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """initdb + pg_ctl start on a free port in a temp folder; yield the server (``url`` has a password)."""
    pytest.importorskip(
        "psycopg", reason="psycopg is needed for a PostgreSQL catalog: pip install 'psycopg[binary]'"
    )
    bin_dir = POSTGRES_BIN[-1].parent
    folder = Path(tempfile.mkdtemp(prefix="neurolake-pg-"))
    port, password = free_port(), secrets.token_hex(12)
    (folder / "pw").write_text(password)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(folder / "pw", "postgres")
    server = PostgresServer(
        f"postgresql+psycopg://neurolake:{password}@127.0.0.1:{port}/postgres", folder, port, bin_dir
    )
    done = server._run(
        "initdb",
        "-D",
        str(folder / "data"),
        "-U",
        "neurolake",
        "--auth=scram-sha-256",
        f"--pwfile={folder / 'pw'}",
    )
    assert done.returncode == 0, done.stderr
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def private_postgres() -> Iterator[str]:
    """A private server for the block; yields its SQLAlchemy URL (see :func:`postgres_server`)."""
    with postgres_server() as server:
        yield server.url
