"""Secrets never leak: a nightly run with known secret values, then a grep of everything it left.

The secrets (PII salt, tokenization key, catalog database password, Pushgateway
credentials) are given by env vars only, as in production. The run's stdout/stderr, every
file of its warehouse (lineage spool, metrics, quality reports, Delta logs and data) and
every row of its PostgreSQL catalog must not contain any of them. The Pushgateway is a
stand-in HTTP endpoint here (no Pushgateway binary on this machine); it records the
Authorization header, which proves the credentials were really used.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy

from tests.e2e.cluster import LOCAL_CONF, VENV_BIN
from tests.e2e.postgres import needs_postgres, private_postgres

DAY = "2026-11-24"


class _StandInPushgateway(BaseHTTPRequestHandler):
    received: list[str] = []

    def do_PUT(self):
        self.received.append(self.headers.get("Authorization", ""))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()

    do_POST = do_PUT

    def log_message(self, *args):
        """Quiet."""


@pytest.fixture
def stand_in_pushgateway():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandInPushgateway)
    _StandInPushgateway.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _StandInPushgateway.received
    server.shutdown()


def _files_containing(folder: Path, needles: dict[str, str]) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{name} in {path}" for name, value in needles.items() if value.encode() in data]
    return found


@needs_postgres
def test_a_nightly_run_never_prints_logs_or_stores_its_secrets_with_a_stand_in_pushgateway(
    tmp_path, stand_in_pushgateway
):
    pushgateway_url, auth_headers = stand_in_pushgateway
    values = {
        "pii salt": f"salt-{secrets.token_hex(16)}",
        "token key": f"tok-{secrets.token_hex(16)}",
        "pushgateway password": f"push-{secrets.token_hex(16)}",
    }
    warehouse = tmp_path / "warehouse"
    with private_postgres() as catalog_url:
        values["catalog password"] = catalog_url.split(":", 2)[2].split("@", 1)[0]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("NEUROLAKE")},
            "NEUROLAKE_PII_SALT": values["pii salt"],
            "NEUROLAKE_TOKEN_KEY": values["token key"],
            "NEUROLAKE_PUSHGATEWAY_AUTH": f"neurolake:{values['pushgateway password']}",
            "NEUROLAKE__STORAGE__WAREHOUSE": str(warehouse),
            "NEUROLAKE__CATALOG__URL": catalog_url,
            "NEUROLAKE__METRICS__PUSHGATEWAY_URL": pushgateway_url,
            "NEUROLAKE__METRICS__PUSHGATEWAY_AUTH_ENV": "NEUROLAKE_PUSHGATEWAY_AUTH",
            "NEUROLAKE__SPARK__SHUFFLE_PARTITIONS": "2",
            "NEUROLAKE__SPARK__LOG_LEVEL": "INFO",
        }
        outputs = []
        for command in (["generate", "--date", DAY, "--scale", "0.02"], ["nightly", "--date", DAY]):
            done = subprocess.run(
                [str(VENV_BIN / "neurolake"), *command, "--conf-file", str(LOCAL_CONF)],
                env=env,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            assert done.returncode == 0, done.stderr[-6000:]
            outputs.append(done.stdout + done.stderr)

        wrong = f"wrong-{secrets.token_hex(8)}"
        refused = subprocess.run(
            [str(VENV_BIN / "neurolake"), "runs", "list", "--conf-file", str(LOCAL_CONF)],
            env={**env, "NEUROLAKE__CATALOG__URL": catalog_url.replace(values["catalog password"], wrong)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert refused.returncode != 0
        assert wrong not in refused.stdout + refused.stderr

        engine = sqlalchemy.create_engine(catalog_url)
        with engine.connect() as conn:
            catalog_rows = []
            for table in sqlalchemy.inspect(conn).get_table_names():
                catalog_rows += [
                    repr(tuple(row)) for row in conn.execute(sqlalchemy.text(f'SELECT * FROM "{table}"'))
                ]
        engine.dispose()

    assert catalog_rows, "the catalog recorded nothing"
    used = [base64.b64decode(h.split(" ", 1)[1]).decode() for h in auth_headers if h.startswith("Basic ")]
    assert f"neurolake:{values['pushgateway password']}" in used, "the Pushgateway credentials were not used"

    leaks = [f"{name} in the output" for name, value in values.items() for text in outputs if value in text]
    leaks += _files_containing(warehouse, values)
    leaks += [
        f"{name} in the catalog"
        for name, value in values.items()
        if any(value in row for row in catalog_rows)
    ]
    assert not leaks, leaks
