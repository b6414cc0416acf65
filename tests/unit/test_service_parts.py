"""The service's building blocks without a server: rate limits, keys on a real SQLite catalog,
secret scrubbing, page tokens, tenants, OpenLineage validation and the vendored files."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from neurolake_spark.catalog import pages
from neurolake_spark.catalog.store import CatalogStore
from neurolake_spark.config import RateLimitSettings
from neurolake_spark.service import intake
from neurolake_spark.service.audit import REMOVED, AuditLog, scrub
from neurolake_spark.service.catalog_gate import catalog_url_with_timeouts
from neurolake_spark.service.keys import KeyStore, ServiceError
from neurolake_spark.service.pagination import decode_token, encode_token
from neurolake_spark.service.problems import Problem
from neurolake_spark.service.ratelimit import RateLimiter
from neurolake_spark.service.tenants import TenantScope

from .test_catalog_events import T0, ds, run_events

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ROOT / "neurolake_spark" / "service"


@pytest.fixture
def store(tmp_path):
    catalog = CatalogStore(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield catalog
    catalog.close()


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_token_bucket_allows_a_burst_then_429_then_refills():
    clock = Clock()
    limiter = RateLimiter(RateLimitSettings(burst=3, per_second=2.0), clock=clock)
    verdicts = [limiter.take("key:a") for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert verdicts[2].remaining == 0 and verdicts[3].retry_after == 1
    assert verdicts[3].headers()["Retry-After"] == "1" and verdicts[3].headers()["X-RateLimit-Limit"] == "3"
    assert limiter.take("key:b").allowed  # buckets are per key
    clock.now += 0.5  # one token back
    assert limiter.take("key:a").allowed
    assert not limiter.take("key:a").allowed
    clock.now += 10
    assert limiter.take("key:a").remaining == 2  # full again (3) minus this request


def test_keys_are_stored_as_salted_hashes_and_checked(store, tmp_path):
    keys = KeyStore(store, ["default", "finance"])
    key, token = keys.create("ci-reader", "viewer", "finance", expires_days=30)
    _other, other_token = keys.create("ci-reader-2", "viewer")
    assert token.startswith(f"nlk_{key.key_id}_")
    secret = token.rsplit("_", 1)[1]
    raw = (tmp_path / "catalog.db").read_bytes() + (
        (tmp_path / "catalog.db-wal").read_bytes() if (tmp_path / "catalog.db-wal").exists() else b""
    )
    assert secret.encode() not in raw and token.encode() not in raw
    assert keys.verify(token).key_id == key.key_id and keys.verify(token).tenant == "finance"
    assert keys.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert keys.verify(f"nlk_{key.key_id}_{other_token.rsplit('_', 1)[1]}") is None  # another key's secret
    assert keys.verify("not a key") is None
    assert keys.revoke("ci-reader").revoked_at is not None
    assert keys.verify(token) is None and keys.verify(other_token) is not None
    with pytest.raises(ServiceError, match="no active key"):
        keys.revoke(key.key_id)
    with pytest.raises(ServiceError, match="unknown tenant 'nope'"):
        keys.create("x", "viewer", "nope")
    with pytest.raises(ServiceError, match="unknown role"):
        keys.create("x", "root")


def test_an_expired_key_stops_working(store):
    keys = KeyStore(store, ["default"])
    key, token = keys.create("short", "admin", expires_days=1)
    with sqlite3.connect(store.url[len("sqlite:///") :]) as conn:
        conn.execute("UPDATE api_keys SET expires_at = '2000-01-01 00:00:00' WHERE key_id = ?", (key.key_id,))
    assert keys.verify(token) is None
    assert not keys.list()[0].active


def test_audit_parameters_lose_their_secrets(store):
    key_like = "nlk_0123456789abcdef_" + "A" * 43
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    params = {
        "name": "gold.daily_revenue",
        "api_key": "anything",
        "nested": {"Authorization": "Bearer x", "note": key_like, "list": [jwt_like, "fine"]},
        "long": "x" * 2000,
    }
    clean = scrub(params)
    assert clean["name"] == "gold.daily_revenue" and clean["api_key"] == REMOVED
    assert clean["nested"] == {"Authorization": REMOVED, "note": REMOVED, "list": [REMOVED, "fine"]}
    assert len(clean["long"]) < 600
    AuditLog(store).record("tag.add", "someone", parameters=params, target=key_like)
    [record] = AuditLog(store).list()
    assert record.parameters == clean and record.target == REMOVED


def test_page_tokens_round_trip_and_forgeries_are_refused():
    assert decode_token(encode_token({"o": 150}), "o") == 150
    assert decode_token(None, "o") is None
    for forged in ("not-base64!", encode_token({"o": -1}), encode_token({"b": 3}), "e30"):
        with pytest.raises(Problem) as refused:
            decode_token(forged, "o")
        assert refused.value.status == 422


def test_tenant_patterns_and_namespaces():
    finance = TenantScope("finance", namespaces=("s3://fin",), tables=("gold.*", "silver.orders"))
    assert finance.sees("gold.daily_revenue") and finance.sees("GOLD.x") and finance.sees("silver.orders")
    assert not finance.sees("silver.orders_v2") and not finance.sees("bronze.orders")
    assert finance.sees("anything", "s3://fin") and not finance.sees("anything", "s3://other")
    assert TenantScope("all", tables=("*",)).unrestricted and not finance.unrestricted
    assert not TenantScope("none").sees("gold.x")


def test_scope_in_sql_matches_scope_in_python(store):
    names = [
        "gold.daily_revenue",
        "GOLD.upper",
        "gold_x.y",
        "silver.orders",
        "silver.orders_v2",
        "a%b.c",
        "raw.x",
    ]
    start, complete = run_events("writer", outputs=[ds(n) for n in names], start=T0)
    store.ingest(start)
    store.ingest(complete)
    for scope in (
        TenantScope("f", tables=("gold.*", "silver.orders")),
        TenantScope("p", tables=("a%b.*",)),
        TenantScope("q", tables=("silver.order?_v2",)),
        TenantScope("none"),
    ):
        in_sql = set(pages.visible_names(store, scope))
        assert in_sql == {n for n in names if scope.sees(n)}, scope


def test_text_filters_take_percent_and_underscore_literally(store):
    names = ["silver.orders", "gold.a_b", "gold.axb", "gold.100%"]
    start, complete = run_events("w", outputs=[ds(n) for n in names], start=T0)
    store.ingest(start)
    store.ingest(complete)

    def found(text):
        return [a.name for a in pages.asset_page(store, pages.AssetQuery(text=text, by="name")).items]

    assert found("a_b") == ["gold.a_b"]
    assert found("100%") == ["gold.100%"]
    assert found("%") == ["gold.100%"]
    assert found("'") == []
    first = pages.asset_page(store, pages.AssetQuery(layer="gold"), limit=2)
    rest = pages.asset_page(store, pages.AssetQuery(layer="gold"), offset=2, limit=2)
    assert first.has_more and not rest.has_more
    assert [a.name for a in first.items + rest.items] == ["gold.100%", "gold.a_b", "gold.axb"]


def test_intake_validates_against_the_openlineage_spec():
    start, complete = run_events("ingest", outputs=[ds("bronze.orders")], start=T0)
    assert intake.event_errors(start) == [] and intake.event_errors(complete) == []
    assert intake.event_errors([start]) and intake.event_errors("text")
    broken = {**start, "run": {"runId": "not-a-uuid"}}
    assert any("uuid" in e["message"] for e in intake.event_errors(broken))
    assert intake.event_errors({**start, "eventType": "EXPLODE"})
    without_time = {k: v for k, v in start.items() if k != "eventTime"}
    assert intake.event_errors(without_time)[0]["message"] == "'eventTime' is a required property"


def _sums(folder: Path) -> dict[str, str]:
    return dict(line.split()[::-1] for line in (folder / "SHA256SUMS").read_text().splitlines())


def test_vendored_files_are_unmodified():
    swagger = SERVICE / "static" / "swagger-ui"
    for name, digest in _sums(swagger).items():
        assert hashlib.sha256((swagger / name).read_bytes()).hexdigest() == digest, name
    spec = ROOT / "tests" / "openlineage_spec"
    shipped = SERVICE / "openlineage" / "OpenLineage.json"
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == _sums(spec)["OpenLineage.json"]
    assert (SERVICE / "openlineage" / "LICENSE").read_bytes() == (spec / "LICENSE").read_bytes()


def test_postgres_catalog_urls_get_timeouts_and_others_stay():
    url = catalog_url_with_timeouts("postgresql+psycopg://u:p@127.0.0.1:5432/db", 2.5)
    assert "connect_timeout=3" in url and "statement_timeout%3D2500" in url and "u:p@" in url
    assert catalog_url_with_timeouts("sqlite:////tmp/c.db", 2.5) == "sqlite:////tmp/c.db"


def test_service_settings_of_both_environments_and_bad_ones(tmp_path):
    from neurolake_spark.config import load_settings
    from neurolake_spark.errors import ConfigError

    local = load_settings(ROOT / "conf" / "local.yaml", env={}).service
    assert local.host == "127.0.0.1" and local.workers == 1 and set(local.tenants) == {"default"}
    cluster = load_settings(ROOT / "conf" / "cluster.yaml", env={}).service
    assert cluster.host == "0.0.0.0" and cluster.workers == 2 and cluster.behind_tls
    bad = tmp_path / "bad.yaml"
    bad.write_text("service:\n  tenants:\n    'a b': {tables: ['*']}\n")
    with pytest.raises(ConfigError, match="setting 'service.tenants'.*tenant name 'a b'"):
        load_settings(bad, env={})
    with pytest.raises(ConfigError, match="unknown setting 'service.tenants.x.patterns'"):
        bad.write_text("service:\n  tenants:\n    x: {patterns: ['*']}\n")
        load_settings(bad, env={})
    env = {"NEUROLAKE__SERVICE__TRUSTED_HOSTS": '["service", "localhost"]'}
    assert load_settings(ROOT / "conf" / "local.yaml", env=env).service.trusted_hosts == [
        "service",
        "localhost",
    ]
