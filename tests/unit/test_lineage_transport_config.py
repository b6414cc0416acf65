"""Typed transport configs: one class per type with its defaults, errors naming the transport and option,
and spool queue names unchanged by the typing."""

import hashlib
import json
from pathlib import Path

import pytest

from neurolake_spark.config import load_settings
from neurolake_spark.errors import ConfigError
from neurolake_spark.lineage.transport_config import (
    TRANSPORT_CONFIGS,
    CompositeTransportConfig,
    FileTransportConfig,
    HttpTransportConfig,
    leaf_transports,
    parse_transport,
)
from neurolake_spark.lineage.transports import TRANSPORT_TYPES, build_transports, transport_id

ROOT = Path(__file__).resolve().parents[2]


def settings_with(tmp_path, transports):
    overrides = {"storage.warehouse": str(tmp_path), "lineage.transports": transports}
    return load_settings(ROOT / "conf" / "local.yaml", overrides=overrides, env={})


def test_every_type_but_composite_has_a_transport_that_sends_with_its_config():
    sent_by = {config.model_fields["type"].annotation.__args__[0] for config in TRANSPORT_TYPES}
    assert sent_by == set(TRANSPORT_CONFIGS) - {"composite"}


def test_defaults_live_in_the_config_class(tmp_path):
    settings = settings_with(tmp_path, [{"type": "http", "url": "http://marquez:5000/"}])
    (http,) = settings.lineage.transports
    assert isinstance(http, HttpTransportConfig)
    assert (http.endpoint, http.timeout, http.auth_env, http.auth_file) == ("api/v1/lineage", 5, None, None)
    (transport,) = build_transports(settings)
    assert transport.endpoint_url == "http://marquez:5000/api/v1/lineage"


def test_composites_are_typed_and_flattened(tmp_path):
    settings = settings_with(
        tmp_path,
        [{"type": "composite", "transports": [{"type": "file", "location": "a.jsonl"}, {"type": "console"}]}],
    )
    (composite,) = settings.lineage.transports
    assert isinstance(composite, CompositeTransportConfig)
    assert [c.type for c in leaf_transports(settings.lineage.transports)] == ["file", "console"]
    assert isinstance(leaf_transports(settings.lineage.transports)[0], FileTransportConfig)


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "catalog"},
        {"type": "http", "url": "http://127.0.0.1:5000", "timeout": 2},
        {"type": "http", "url": "http://127.0.0.1:5000", "timeout": 2.5, "endpoint": "x"},
        {"type": "file", "location": "../lineage/events.jsonl"},
    ],
)
def test_a_queue_keeps_the_name_it_had_before_configs_were_typed(raw):
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
    assert transport_id(parse_transport(raw, "transport 1")) == f"{raw['type']}-{digest[:10]}"
    assert parse_transport(raw, "transport 1").options() == raw
    assert transport_id(parse_transport({**raw, "name": "mine"}, "transport 1")) == "mine"


@pytest.mark.parametrize(
    ("transports", "message"),
    [
        ([{"type": "http", "url": 5}], "transport 1 (http): url: input should be a valid string"),
        (
            [{"type": "file", "location": ["a"]}],
            "transport 1 (file): location: input should be a valid string",
        ),
        (
            [{"type": "http", "url": "http://x", "timeout": True}],
            "timeout must be a positive number of seconds, got True",
        ),
        ([{"type": "console"}, "file"], "transport 2: must be a mapping with a type"),
        (
            [{"type": "composite", "transports": {"type": "file"}}],
            "transport 1 (composite): transports must be a list",
        ),
        ([{"type": "composite", "transports": [{"type": "nope"}]}], "transport 1.1: type must be one of"),
    ],
)
def test_a_bad_option_is_a_one_line_error_naming_the_transport_and_the_option(tmp_path, transports, message):
    with pytest.raises(ConfigError) as error:
        settings_with(tmp_path, transports)
    assert "setting 'lineage.transports'" in str(error.value)
    assert message.lower() in str(error.value).lower() and "\n" not in str(error.value)
