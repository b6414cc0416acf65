"""The image and compose files: parsed and checked for the topology the runbooks rely on.

``docker compose config`` validates the compose file when the compose plugin is installed;
without it (this machine has the docker client only) the structure is checked with PyYAML.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
SECRET_NAMES = ("pii_salt", "token_key", "backup_key", "catalog_db_password")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _compose_plugin() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(
    not _compose_plugin(), reason="the docker compose plugin is not installed (structure checked below)"
)
def test_docker_compose_config_accepts_the_file(tmp_path):
    secrets = DOCKER / "secrets"
    created = not secrets.exists()
    secrets.mkdir(exist_ok=True)
    try:
        for name in SECRET_NAMES:
            (secrets / name).touch()
        env = {
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "NEUROLAKE_CATALOG_URL": "postgresql+psycopg://u:p@catalog-db/n",
        }
        done = subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE), "config", "-q"], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    finally:
        if created:
            shutil.rmtree(secrets)


def test_compose_runs_master_two_workers_airflow_catalog_pushgateway_and_prometheus(compose):
    services = compose["services"]
    assert set(services) == {
        "spark-master",
        "spark-worker-1",
        "spark-worker-2",
        "airflow",
        "catalog-db",
        "service",
        "pushgateway",
        "prometheus",
    }
    master = services["spark-master"]["command"]
    assert "org.apache.spark.deploy.master.Master" in master and master[master.index("--port") + 1] == "7077"
    for worker in ("spark-worker-1", "spark-worker-2"):
        command = services[worker]["command"]
        assert "org.apache.spark.deploy.worker.Worker" in command and "spark://spark-master:7077" in command
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source.startswith(".") or source in compose["volumes"], (
                f"{name}: undeclared volume {source}"
            )
            if source.startswith("."):
                assert (DOCKER / source).exists(), f"{name} mounts missing file {source}"
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"]
    airflow_env = services["airflow"]["environment"]
    assert airflow_env["AIRFLOW__CORE__DAGS_FOLDER"].endswith("airflow_dags")
    assert "spark-master" in airflow_env["AIRFLOW_CONN_NEUROLAKE_SPARK"]


def test_prometheus_scrapes_the_pushgateway_and_the_service(compose):
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    targets = [t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    port = compose["services"]["pushgateway"]["ports"][0].split(":")[-1]
    assert f"pushgateway:{port}" in targets
    service = compose["services"]["service"]
    command = service["command"]
    assert command[:2] == ["neurolake", "serve"] and command[command.index("--host") + 1] == "0.0.0.0"
    assert f"service:{command[command.index('--port') + 1]}" in targets
    assert "catalog-db" in service["depends_on"]


def test_compose_has_no_secret_values_only_files_and_required_env(compose):
    sensitive = re.compile(r"(?i)password|secret|token|salt|auth|_url$")
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if sensitive.search(key) and not key.startswith("AIRFLOW_"):
                assert str(value).startswith(("/run/secrets/", "${", "http://")), (
                    f"{name}: {key} holds a value"
                )
    env = compose["x-neurolake"]["environment"]
    assert env["NEUROLAKE__CATALOG__URL"].startswith("${NEUROLAKE_CATALOG_URL:?")
    for setting in ("NEUROLAKE__QUALITY__PII_SALT_FILE", "NEUROLAKE__QUALITY__TOKEN_KEY_FILE"):
        assert env[setting].startswith("/run/secrets/")
    for name, spec in compose["secrets"].items():
        assert set(spec) == {"file"}, f"secret {name} must come from a file"


def test_dockerfile_builds_python_311_java_17_wheel_and_bakes_the_jars():
    lines = [
        line.strip()
        for line in DOCKERFILE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    froms = [line for line in lines if line.startswith("FROM ")]
    assert froms and all(line.split()[1].startswith("python:3.11") for line in froms)
    text = "\n".join(lines)
    assert "openjdk-17" in text
    assert re.search(r"pip wheel .*--wheel-dir", text) and "pip install /tmp/neurolake_spark-" in text
    assert "RUN neurolake jars" in text and "NEUROLAKE__JVM__JARS_DIR" in text
    for line in lines:
        if line.startswith("COPY") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"COPY source {source} is not in the repository"
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
