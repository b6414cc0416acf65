from pathlib import Path

import pytest

from neurolake_spark.config import load_settings, read_secret
from neurolake_spark.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "conf" / "local.yaml"


def test_local_defaults_anchor_relative_paths_to_the_file(tmp_path):
    settings = load_settings(LOCAL, env={})
    assert settings.warehouse == (ROOT / "warehouse").resolve()
    assert settings.pipeline == (ROOT / "conf" / "pipeline.yaml").resolve()
    assert settings.catalog_url == f"sqlite:///{settings.warehouse / 'catalog.db'}"
    assert settings.spark.master == "local[2]"


def test_cluster_settings_load():
    settings = load_settings(ROOT / "conf" / "cluster.yaml", env={})
    assert settings.spark.master.startswith("spark://")


def test_env_var_overrides_file_and_cli_overrides_env(tmp_path):
    env = {"NEUROLAKE__SPARK__SHUFFLE_PARTITIONS": "12", "NEUROLAKE__STORAGE__WAREHOUSE": str(tmp_path / "w")}
    settings = load_settings(LOCAL, env=env)
    assert settings.spark.shuffle_partitions == 12
    assert settings.warehouse == tmp_path / "w"
    settings = load_settings(LOCAL, overrides=["spark.shuffle_partitions=3"], env=env)
    assert settings.spark.shuffle_partitions == 3


def test_conf_file_from_environment(tmp_path):
    conf = tmp_path / "mine.yaml"
    conf.write_text("spark:\n  app_name: mine\n")
    settings = load_settings(env={"NEUROLAKE_CONF": str(conf)})
    assert settings.spark.app_name == "mine"
    assert settings.warehouse == (tmp_path / ".." / "warehouse").resolve()


@pytest.mark.parametrize(
    "content, expected",
    [
        ("spark:\n  shuffle_partitons: 4\n", "unknown setting 'spark.shuffle_partitons'"),
        ("spark:\n  shuffle_partitions: many\n", "setting 'spark.shuffle_partitions'"),
        ("nosuchsection:\n  a: 1\n", "unknown setting 'nosuchsection'"),
        ("spark: [1, 2\n", "is not valid YAML"),
        ("- a\n- b\n", "top level must be a mapping"),
    ],
)
def test_bad_file_names_key_and_file(tmp_path, content, expected):
    conf = tmp_path / "bad.yaml"
    conf.write_text(content)
    with pytest.raises(ConfigError) as error:
        load_settings(conf, env={})
    assert expected in str(error.value)
    assert str(conf) in str(error.value)
    assert "\n" not in str(error.value)


def test_bad_env_var_is_named():
    with pytest.raises(ConfigError, match="env var NEUROLAKE__SPARK__NOPE: unknown setting 'spark.nope'"):
        load_settings(LOCAL, env={"NEUROLAKE__SPARK__NOPE": "1"})


def test_bad_cli_override_is_named():
    with pytest.raises(ConfigError, match="--set maintenance.vacuum_retention_hours"):
        load_settings(LOCAL, overrides=["maintenance.vacuum_retention_hours=-5"], env={})
    with pytest.raises(ConfigError, match="expected SECTION.KEY=VALUE"):
        load_settings(LOCAL, overrides=["spark.master"], env={})


def test_missing_file():
    with pytest.raises(ConfigError, match="settings file not found"):
        load_settings("/nonexistent/conf.yaml", env={})


def test_secret_comes_from_env_or_file_and_has_no_default(tmp_path):
    assert read_secret("MY_SECRET", None, "salt", env={"MY_SECRET": "s3"}) == "s3"
    secret_file = tmp_path / "salt"
    secret_file.write_text("from-file\n")
    assert read_secret("MY_SECRET", secret_file, "salt", env={}) == "from-file"
    with pytest.raises(ConfigError) as error:
        read_secret("MY_SECRET", None, "PII salt", env={})
    assert "PII salt is not set" in str(error.value) and "MY_SECRET" in str(error.value)


def test_pipeline_definition_is_valid_and_cross_checked(tmp_path):
    settings = load_settings(LOCAL, env={})
    definition = settings.pipeline_definition()
    assert definition.sources["orders"].key == ["order_id"]
    assert definition.sources["orders"].silver in definition.tables

    bad = tmp_path / "pipeline.yaml"
    bad.write_text(
        "sources:\n  s:\n    format: csv\n    schema: 'a INT'\n    key: [a]\n    order_by: a\n"
        "    bronze: bronze.s\n    silver: silver.s\ntables:\n  bronze.s: {}\n"
    )
    with pytest.raises(ConfigError, match="silver table 'silver.s', which 'tables' does not declare"):
        load_settings(LOCAL, overrides={"pipeline": str(bad)}, env={}).pipeline_definition()
