"""A real ``neurolake serve`` process on 127.0.0.1 for end-to-end tests (shared helpers).

Example::

    conf = write_service_conf(folder / "serve.yaml", warehouse, catalog_url, service={...})
    with serve(conf, folder) as app:                       # waits until /health answers
        httpx.get(f"{app.url}/ready")

The process runs the project venv's ``neurolake`` console script and logs (JSON lines) to a
file in ``folder``; :meth:`ServedApp.logs` shows them when a test fails.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from .cluster import ROOT, free_port

VENV_BIN = Path(sys.executable).parent


@dataclass
class ServedApp:
    url: str
    process: subprocess.Popen
    log: Path

    def logs(self, tail: int = 60) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(lines[-tail:])


def write_service_conf(
    path: Path, warehouse: Path, catalog_url: str, service: dict[str, Any], **sections: Any
) -> Path:
    """A settings file for ``neurolake serve`` on an existing warehouse and catalog."""
    conf = {
        "storage": {"warehouse": str(warehouse)},
        "catalog": {"url": catalog_url},
        "pipeline": str(ROOT / "conf" / "pipeline.yaml"),
        "quality": {"pii_policies": str(ROOT / "conf" / "pii.yaml")},  # the policies the nightly used
        "lineage": {"transports": [{"type": "catalog"}]},
        "service": service,
        **sections,
    }
    path.write_text(yaml.safe_dump(conf, sort_keys=False))
    return path


def copy_sqlite(source: Path, target: Path) -> Path:
    """A consistent copy of a SQLite catalog (WAL included), so tests never change the original."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"neurolake serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"neurolake serve did not answer on {url} within {timeout} s")


@contextmanager
def serve(conf: Path, folder: Path, *args: str) -> Iterator[ServedApp]:
    """Run ``neurolake serve --conf-file conf`` on a free port until the block ends (then SIGTERM)."""
    port = free_port()
    log = folder / f"serve-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(VENV_BIN / "neurolake"), "serve", "--conf-file", str(conf), "--port", str(port), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    app = ServedApp(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_until_up(app.url, process)
        yield app
    except BaseException:
        print(app.logs())
        raise
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def neurolake(conf: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run one ``neurolake`` command on ``conf``."""
    return subprocess.run(
        [str(VENV_BIN / "neurolake"), *args, "--conf-file", str(conf)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
