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
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import sqlalchemy

from neurolake_spark.quality.pii import _derived_key
from tests.e2e.cluster import LOCAL_CONF, VENV_BIN
from tests.e2e.postgres import needs_postgres, private_postgres

DAY = "2026-11-24"


class _StandInPushgateway(BaseHTTPRequestHandler):
    received: ClassVar[list[str]] = []

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


PROBE = """
import sys
from pyspark.sql import functions as F
from neurolake_spark import Lakehouse
from neurolake_spark.quality.pii import Masker, SecretSource, detect_pii, load_policies

conf, warehouse, events, lineage_file = sys.argv[1:5]
lh = Lakehouse.open(conf, overrides={
    "storage.warehouse": warehouse,
    "spark.log_level": "INFO",
    "spark.conf": {"spark.eventLog.enabled": "true", "spark.eventLog.dir": events},
    "lineage.transports": [{"type": "catalog"}, {"type": "file", "location": lineage_file}],
})
df = lh.spark.createDataFrame(
    [(1, "Ana Smith", "ana@example.com", "+1-555-0000001", "1 Oak Street")],
    "customer_id BIGINT, name STRING, email STRING, phone STRING, address STRING",
)
masker = Masker(load_policies(lh.settings.quality.pii_policies), SecretSource(lh.settings.quality))
masked = masker.apply(df, masker.plan("bronze.customers", detect_pii(df, sample_rows=0), df.columns))
masked.explain(mode="extended")
masked.write.format("noop").mode("overwrite").save()
try:
    with lh.run("silver", run_date="2026-11-24"):
        masked.where("email + 1 > array(1)").count()
except Exception as exc:
    print("run failed as expected:", type(exc).__name__)
lh.spark.stop()
"""


def test_pii_secrets_reach_no_plan_event_log_run_error_lineage_event_or_log(tmp_path):
    """EXPLAIN, the Spark event log (what the Spark UI and history server show), a run failed by an
    analysis error (its stored error and lineage events) and the logs at INFO: no secret byte."""
    salt, key = f"salt-{secrets.token_hex(16)}", f"tok-{secrets.token_hex(16)}"
    forms = {"pii salt": salt, "token key": key}
    for purpose in ("token-iv", "token-enc"):
        derived = _derived_key(key, purpose).hex()
        forms[f"derived {purpose} key"], forms[f"derived {purpose} key (upper case)"] = (
            derived,
            derived.upper(),
        )
    (tmp_path / "salt").write_text(salt)
    (tmp_path / "key").write_text(key)
    events, warehouse = tmp_path / "events", tmp_path / "warehouse"
    events.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NEUROLAKE")},
        "NEUROLAKE__QUALITY__PII_SALT_FILE": str(tmp_path / "salt"),
        "NEUROLAKE__QUALITY__TOKEN_KEY_FILE": str(tmp_path / "key"),
        "NEUROLAKE__SPARK__SHUFFLE_PARTITIONS": "2",
    }
    (tmp_path / "probe.py").write_text(PROBE)
    done = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "probe.py"),
            str(LOCAL_CONF),
            str(warehouse),
            str(events),
            str(tmp_path / "lineage.jsonl"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    output = done.stdout + done.stderr
    lineage = (tmp_path / "lineage.jsonl").read_text()
    leaks = [f"{name} in the output" for name, value in forms.items() if value in output]
    leaks += [f"{name} in lineage events" for name, value in forms.items() if value in lineage]
    leaks += _files_containing(events, forms) + _files_containing(warehouse, forms)
    leaks += _files_containing(tmp_path, {n: v for n, v in forms.items() if "derived" in n})
    assert not leaks, leaks
    assert "== Physical Plan ==" in output and "pii_hash" in output and "pii_tokenize" in output
    assert "run failed as expected: AnalysisException" in output
    assert "email + 1" in lineage  # the failed run's error is in its events
    assert [p for p in events.rglob("*") if p.is_file()], "no Spark event log was written"
