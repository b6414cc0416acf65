"""URL credentials never reach a message: the masking helper, and lineage delivery with the catalog down.

The catalog is a real PostgreSQL URL with a password that points at a closed port on
127.0.0.1 (nothing listens, so psycopg's connection is refused at once), next to an HTTP
backend whose URL carries credentials, on another closed port.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import pytest

from neurolake_spark.cli import main
from neurolake_spark.config import load_settings
from neurolake_spark.lineage.delivery import LineageEmitter, replay
from neurolake_spark.lineage.listener import LineageListener
from neurolake_spark.lineage.transport_config import CatalogTransportConfig
from neurolake_spark.lineage.transports import CatalogTransport, DeliveryError
from neurolake_spark.redaction import mask_credentials
from neurolake_spark.runs import JobRun
from tests.unit.test_lineage_delivery import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "text, masked",
    [
        ("postgresql+psycopg://lake:s3cr3t@db:5432/cat", "postgresql+psycopg://lake:***@db:5432/cat"),
        ("https://u:p%40ss/w:rd@marquez/api", "https://u:***@marquez/api"),
        ("catalog sqlite:////srv/wh/catalog.db: locked", "catalog sqlite:////srv/wh/catalog.db: locked"),
        ("http://host:8080/x and a@b.org", "http://host:8080/x and a@b.org"),
        ("postgresql+psycopg//lake:s3cr3t@db/cat", "postgresql+psycopg//lake:***@db/cat"),
        ("a postgresql://x:1@h/d, b http://y:2@h2/", "a postgresql://x:***@h/d, b http://y:***@h2/"),
        (
            "postgresql://h/db?sslmode=require&password=pw&x=1",
            "postgresql://h/db?sslmode=require&password=***&x=1",
        ),
        ("http://h/?api_key=k&token=t", "http://h/?api_key=***&token=***"),
        ("postgresql://lake@db/cat", "postgresql://lake@db/cat"),
    ],
)
def test_mask_credentials_hides_passwords_and_keeps_what_names_the_backend(text, masked):
    assert mask_credentials(text) == masked


def test_a_catalog_on_a_closed_port_never_shows_its_password(tmp_path, caplog, capsys):
    password = f"pw-{secrets.token_hex(12)}"
    http_token = f"tok-{secrets.token_hex(12)}"
    catalog_url = f"postgresql+psycopg://neurolake:{password}@127.0.0.1:{free_port()}/catalog"
    overrides = [
        f"storage.warehouse={tmp_path / 'wh'}",
        "metrics.enabled=false",
        f"catalog.url={catalog_url}",
        "lineage.failure_threshold=100",
        "lineage.transports=[{type: catalog}, "
        f"{{type: http, url: 'http://lake:{http_token}@127.0.0.1:{free_port()}', timeout: 1}}]",
    ]
    settings = load_settings(ROOT / "conf" / "local.yaml", overrides=overrides, env={})
    caplog.set_level(logging.DEBUG)

    evidence = []
    with pytest.raises(DeliveryError) as refused:
        CatalogTransport(CatalogTransportConfig(type="catalog"), settings).send({"eventType": "START"}, "key")
    evidence.append(str(refused.value))
    assert "127.0.0.1" in str(refused.value) and "***" in str(refused.value)

    for night in ("first", "second"):  # the catalog stays down for two runs
        with JobRun(night, settings, run_date="2026-11-24", listeners=[LineageListener(settings)]) as run:
            run.add_output(f"silver.{night}", version=1, rows=5, bytes=50, files=1, schema=[("id", "bigint")])
    report = replay(settings, LineageEmitter(settings), force=True)
    assert report.pending == 8 and all(result.error for result in report.results)
    evidence += [repr(result) for result in report.results]

    command = ["lineage", "replay", "-c", str(ROOT / "conf" / "local.yaml")]
    assert main([*command, *[x for o in overrides for x in ("--set", o)]]) == 1
    printed = capsys.readouterr()
    assert "still waiting" in printed.out
    evidence += [printed.out, printed.err]

    records = [r for r in caplog.records if r.name.startswith("neurolake_spark")]
    assert any("failed, event spooled" in r.getMessage() for r in records)
    evidence += [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    evidence += [p.read_text(errors="replace") for p in settings.lineage_spool_dir.rglob("*") if p.is_file()]
    for secret in (password, http_token):
        assert not [text for text in evidence if secret in text]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg//lake:s3cr3t-pw@db/cat",  # "://" mistyped: SQLAlchemy cannot parse it
        "postgresql+psycopg://lake:s3cr3t-pw@db:notaport/cat",  # a port that is not a number
    ],
)
def test_a_catalog_url_that_cannot_be_used_is_a_one_line_error_without_its_password(url):
    from neurolake_spark.catalog.db import CatalogDatabase
    from neurolake_spark.catalog.errors import CatalogError

    with pytest.raises(CatalogError) as raised:
        CatalogDatabase(url)
    message = str(raised.value)
    assert "s3cr3t-pw" not in message and "\n" not in message
    assert "lake:***@db" in message
