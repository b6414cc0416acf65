"""A private PostgreSQL server for end-to-end tests (from the Debian packages, no Docker).

Example::

    with private_postgres() as url:   # postgresql+psycopg://neurolake:<password>@127.0.0.1:<port>/postgres
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


@contextmanager
def private_postgres() -> Iterator[str]:
    """initdb + pg_ctl start on a free port in a temp folder; yield a SQLAlchemy URL with a password."""
    pytest.importorskip(
        "psycopg", reason="psycopg is needed for a PostgreSQL catalog: pip install 'psycopg[binary]'"
    )
    bin_dir = POSTGRES_BIN[-1].parent
    folder = Path(tempfile.mkdtemp(prefix="neurolake-pg-"))
    data, port, password = folder / "data", free_port(), secrets.token_hex(12)
    (folder / "pw").write_text(password)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(folder / "pw", "postgres")
    run = lambda *cmd: subprocess.run(
        _as_postgres([str(bin_dir / cmd[0]), *cmd[1:]]), capture_output=True, text=True, timeout=120
    )
    done = run(
        "initdb", "-D", str(data), "-U", "neurolake", "--auth=scram-sha-256", f"--pwfile={folder / 'pw'}"
    )
    assert done.returncode == 0, done.stderr
    done = run(
        "pg_ctl",
        "-D",
        str(data),
        "-l",
        str(folder / "postgres.log"),
        "-w",
        "-o",
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1",
        "start",
    )
    assert done.returncode == 0, done.stderr + (folder / "postgres.log").read_text()
    try:
        yield f"postgresql+psycopg://neurolake:{password}@127.0.0.1:{port}/postgres"
    finally:
        run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
